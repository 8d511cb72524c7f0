"""``tickpipe publish CHANNEL... --nats URL[,URL...]``: a collector. Keeps the channels' books
exactly as ``tickpipe watch`` does and publishes them, with trades and tickers, to NATS
JetStream (``tickpipe.bus.collector``; subjects, stream and schema in ``docs/bus.md``).

stdout: what ``watch`` prints (``--jsonl``: the same JSON lines, ``final_book`` lines at the
end) and the bus's own events: ``bus_connected {url, stream, collector, venue, group,
differences}`` (``differences``: how an existing stream's settings differ from those asked; it
is used as it is), ``bus_disconnected``, ``bus_reconnected {url}``, ``role {role, group}``
(with ``--group``: ``active`` or ``standby``), ``bus_overflow {dropped, books, reasons}`` (the
queue overflowed or publishes failed: the books named were re-seeded on the bus), and at the
very end ``published {messages, by_kind, bytes, dropped, retries, resets, queue_depth, active,
collector, group}``.

Exit status as ``tickpipe watch`` (0 at the end of ``--duration`` or on Ctrl-C/SIGTERM, 3 after
``auth_failed``, 2 on a usage error, 1 when the venue cannot be reached); also 2 for a bad
``--nats`` URL and 1 when NATS cannot be reached at start (within 5 s; the message names the
URLs) or refuses the stream.

``--metrics-port P``: the client's metrics and ``tickpipe_bus_published_total{venue,kind}``,
``tickpipe_bus_dropped_total{venue}``, ``tickpipe_bus_queue_depth{venue}``,
``tickpipe_bus_active{venue,group}`` (``bus/prometheus.py``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any

from tickpipe.bus.collector import DEFAULT_SNAPSHOT_EVERY_S, Collector, CollectorConfig
from tickpipe.bus.connect import parse_servers
from tickpipe.bus.schema import DEFAULT_STREAM
from tickpipe.bus.streams import StreamSettings
from tickpipe.cli import watch as watch_cmd
from tickpipe.cli.common_args import check_stream_args
from tickpipe.cli.logfmt import add_observe_args, log_event, setup_logging
from tickpipe.cli.watch import EXIT_UNREACHABLE, EXIT_USAGE, Printer, Watch, _Stopped
from tickpipe.client.client import Client
from tickpipe.client.credentials import resolve_credentials
from tickpipe.errors import BusError, ConfigError
from tickpipe.venues.registry import VENUES

log = logging.getLogger("tickpipe.cli.publish")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "publish",
        help="keep exact books and publish them to NATS JetStream (a collector)",
        description="Subscribe to CHANNELs as `tickpipe watch` does and publish every exact "
        "book (a snapshot on each (re)sync, then deltas, each with its own contiguous seq), "
        "book state changes, trades and tickers to NATS JetStream, where any number of "
        "`tickpipe watch --source nats://...` processes rebuild them (docs/bus.md). Prints "
        "what watch prints plus the bus's events; --duration bounds the run; Ctrl-C or "
        "SIGTERM stops it, flushing what is queued (5 s at most). Exit 0 at the end of "
        "--duration or on a signal, 3 after auth_failed, 2 on a usage error (a bad --nats "
        "URL), 1 if the venue or NATS cannot be reached.",
    )
    p.add_argument("channels", nargs="+", metavar="CHANNEL", help="e.g. orderbook:AAPL")
    p.add_argument(
        "--venue",
        default="vts",
        choices=list(VENUES),
        help="the venue's protocol, as for watch; also the venue token of the subjects "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--nats",
        required=True,
        metavar="URL[,URL...]",
        help="NATS servers, e.g. nats://127.0.0.1:4222,nats://10.0.0.2:4222 (JetStream on)",
    )
    p.add_argument("--stream-url", default=None, help="as for watch")
    p.add_argument("--rest-url", default=None, help="as for watch")
    p.add_argument("--key", default=None, help="API key (default: $TICKPIPE_KEY)")
    p.add_argument("--secret", default=None, help="secret (default: $TICKPIPE_SECRET)")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop this many seconds after start (default: until Ctrl-C or SIGTERM)",
    )
    p.add_argument("--jsonl", action="store_true", help="one JSON object a line on stdout")
    p.add_argument(
        "--group",
        default=None,
        metavar="NAME",
        help="active-passive: collectors started with the same NAME elect one active "
        "publisher through a JetStream key-value lease (3 s); the others keep their books "
        "and take over within about the lease when it stops (default: always active)",
    )
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        metavar="N",
        help="replicas of the stream and of the leader bucket when this creates them "
        "(3 on a 3-node cluster survives a node; default: %(default)s)",
    )
    p.add_argument(
        "--stream",
        default=DEFAULT_STREAM,
        metavar="NAME",
        help="the JetStream stream (created when missing: 15 min, 1 GiB, file storage; an "
        "existing one is used as it is; default: %(default)s)",
    )
    p.add_argument(
        "--snapshot-every-s",
        type=float,
        default=DEFAULT_SNAPSHOT_EVERY_S,
        metavar="S",
        help="a snapshot of every exact book this often, so a consumer joining late replays "
        "at most this long of deltas (default: %(default)g)",
    )
    add_observe_args(p)
    p.set_defaults(func=run)


def _usage(msg: str) -> int:
    print(f"tickpipe publish: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _say(msg: str, event: str = "error") -> None:
    if watch_cmd._json_logs:
        log_event(log, event, msg, logging.WARNING)
        return
    print(f"tickpipe publish: {msg}", file=sys.stderr, flush=True)


class Publish(Watch):
    """One run of ``tickpipe publish``: watch's run, with the collector started first (NATS
    reached or exit 1) and closed last (queue flushed), its events printed as they come."""

    def __init__(
        self,
        client: Client,
        channels: list[str],
        duration: float | None,
        deadline: float | None,
        printer: Printer,
        collector_config: CollectorConfig,
        servers: list[str],
    ) -> None:
        super().__init__(client, channels, duration, deadline, printer)
        self.collector = Collector(client, servers, collector_config, on_event=self.bus_event)
        self.bus_metrics_port: int | None = None

    def bus_event(self, ev: dict[str, Any]) -> None:
        if self.printing:
            self.printer.write(ev)
        if self.log_events:
            d = dict(ev)
            name = d.pop("event")
            d.pop("t", None)
            warn = name in ("bus_overflow", "bus_disconnected")
            level = logging.WARNING if warn else logging.INFO
            log_event(log, name, name, level, **d)

    async def run(self) -> int:
        metrics = None
        if self.bus_metrics_port is not None:
            from tickpipe.bus.prometheus import BusMetrics
            from tickpipe.client.prometheus import MetricsServer, client_registry

            registry = client_registry(self.client)
            registry.register(BusMetrics(self.collector))
            metrics = MetricsServer(registry, self.bus_metrics_port)
            try:
                await metrics.start()
            except OSError as exc:
                why = os.strerror(exc.errno) if exc.errno else str(exc)
                _say(
                    f"cannot listen on 127.0.0.1:{self.bus_metrics_port} (--metrics-port): {why}",
                    "metrics_error",
                )
                await self.client.close()
                return EXIT_UNREACHABLE
            self.printer.write(
                {"event": "metrics", "t": time.time(), "url": metrics.url, "port": metrics.port}
            )
        try:
            code = await super().run()
        finally:
            self.printing = False
            await self.collector.close()
            if metrics is not None:
                await metrics.stop()
        self.printer.write({"event": "published", "t": time.time(), **self.collector.stats()})
        return code

    async def _run(self, feed: Any) -> int:
        try:
            await self._until_stop(self.collector.start())
        except BusError as exc:
            _say(str(exc), "unreachable")
            return EXIT_UNREACHABLE
        except _Stopped:
            if self.signalled:
                return self.code
            _say(f"NATS not reached within --duration {self.duration:g} s", "unreachable")
            return EXIT_UNREACHABLE
        return await super()._run(feed)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    venue = check_stream_args(args)
    if isinstance(venue, str):
        return _usage(venue)
    if not 0 < args.snapshot_every_s < float("inf"):
        return _usage(f"--snapshot-every-s must be a number of seconds > 0, got "
                      f"{args.snapshot_every_s}")  # fmt: skip
    try:
        servers = parse_servers(args.nats)
        config = CollectorConfig(
            venue=venue.name,
            stream=StreamSettings(name=args.stream, replicas=args.replicas),
            snapshot_every_s=args.snapshot_every_s,
            group=args.group,
        )
    except (ConfigError, ValueError) as exc:
        return _usage(str(exc))
    if args.log_format == "json":
        watch_cmd._json_logs = True
        try:
            _, secret = resolve_credentials(args.key, args.secret)
        except ConfigError:
            secret = args.secret
        setup_logging("json", logging.INFO, secrets=[secret])
        logging.getLogger("picows").setLevel(logging.WARNING)
    try:
        client = Client(
            stream_url=args.stream_url,
            rest_url=args.rest_url,
            key=args.key,
            secret=args.secret,
            venue=venue,
        )
    except ConfigError as exc:
        return _usage(str(exc))
    printer = Printer(sys.stdout, jsonl=args.jsonl)
    deadline = None if args.duration is None else started + args.duration
    channels = list(dict.fromkeys(args.channels))
    pub = Publish(client, channels, args.duration, deadline, printer, config, servers)
    pub.bus_metrics_port = args.metrics_port  # watch's own metrics server stays off
    pub.log_events = args.log_format == "json"
    return watch_cmd._run_loop(pub.run())
