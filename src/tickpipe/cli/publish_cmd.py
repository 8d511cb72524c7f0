"""``tickpipe publish CHANNEL... --nats URL[,URL...]``: a collector. Keeps the channels' books
exactly as ``tickpipe watch`` does (same events and ``final_book`` lines on stdout) and
publishes them to NATS JetStream for any number of consumers (``tickpipe watch --source``,
``Client(source=...)``); see ``tickpipe.bus.collector`` and docs/bus.md.

Extra JSONL lines: ``bus_connected {nats, stream, collector}`` once NATS is up,
``bus_overflow {dropped, failed, books}`` when messages could not be published (those books
get a reset snapshot), and at the end ``published {messages, dropped, failed}``. Exit status as
``tickpipe watch``; 1 also when NATS cannot be reached at start.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from tickpipe.bus import schema
from tickpipe.bus.collector import (
    DEFAULT_HEARTBEAT_EVERY_S,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_SNAPSHOT_EVERY_S,
    Collector,
)
from tickpipe.bus.link import split_servers
from tickpipe.cli import watch as watch_cmd
from tickpipe.cli.logfmt import add_observe_args
from tickpipe.cli.watch import Printer, Watch
from tickpipe.client.client import Client
from tickpipe.errors import ConfigError, StreamError
from tickpipe.venues.registry import VENUES, venue_named

EXIT_USAGE = 2
EXIT_UNREACHABLE = 1


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "publish",
        help="keep exact books from a venue and publish them to NATS JetStream",
        description="Subscribe to CHANNELs as `tickpipe watch --jsonl` does and publish each "
        "book (a snapshot on every (re)sync, then its deltas, each numbered per book), tickers, "
        "trades and book state changes to NATS JetStream, where any number of consumers "
        "(`tickpipe watch --source nats://...`) rebuild the same books. See docs/bus.md.",
    )
    p.add_argument("channels", nargs="+", metavar="CHANNEL", help="e.g. orderbook:BTCUSDT")
    p.add_argument("--venue", default="vts", choices=list(VENUES), help="default: %(default)s")
    p.add_argument(
        "--nats", required=True, metavar="URL[,URL...]", help="NATS server(s): nats://HOST:PORT"
    )
    p.add_argument("--stream-url", default=None, help="as for watch")
    p.add_argument("--rest-url", default=None, help="as for watch")
    p.add_argument("--key", default=None, help="API key (default: $TICKPIPE_KEY)")
    p.add_argument("--secret", default=None, help="secret (default: $TICKPIPE_SECRET)")
    p.add_argument(
        "--stream",
        default=schema.DEFAULT_STREAM,
        help="the JetStream stream (created if missing; default: %(default)s)",
    )
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="the stream's replicas when it is created (3 on a 3-node cluster; default: 1)",
    )
    p.add_argument(
        "--snapshot-every-s",
        type=float,
        default=DEFAULT_SNAPSHOT_EVERY_S,
        metavar="S",
        help="a periodic snapshot of each book this often: a late consumer replays at most "
        "this long of deltas (default: %(default)g)",
    )
    p.add_argument(
        "--queue-size",
        type=int,
        default=DEFAULT_QUEUE_SIZE,
        metavar="N",
        help="messages waiting for NATS at most; past it they are dropped and the books "
        "concerned re-published whole (default: %(default)d)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop this many seconds after start (default: until Ctrl-C or SIGTERM)",
    )
    p.add_argument("--jsonl", action="store_true", help="JSON lines on stdout, as watch")
    add_observe_args(p)
    p.set_defaults(func=run)


def _usage(msg: str) -> int:
    print(f"tickpipe publish: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        venue = venue_named(args.venue)
        split_servers(args.nats)
    except (ConfigError, ValueError) as exc:
        return _usage(f"--nats: {exc}" if isinstance(exc, ValueError) else str(exc))
    for ch in args.channels:
        try:
            venue.parse_channel(ch)
        except ValueError as exc:
            return _usage(str(exc))
    if args.duration is not None and not 0 < args.duration < float("inf"):
        return _usage(f"--duration must be a number of seconds > 0, got {args.duration}")
    if not args.snapshot_every_s > 0 or args.queue_size < 1 or args.replicas < 1:
        return _usage("--snapshot-every-s must be > 0, --queue-size and --replicas >= 1")
    channels = list(dict.fromkeys(args.channels))
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
    collector = Collector(
        client,
        args.nats,
        channels,
        stream=args.stream,
        replicas=args.replicas,
        queue_size=args.queue_size,
        snapshot_every_s=args.snapshot_every_s,
        heartbeat_every_s=DEFAULT_HEARTBEAT_EVERY_S,
        on_event=printer.write,
    )
    deadline = None if args.duration is None else started + args.duration
    w = Watch(client, channels, args.duration, deadline, printer)
    w.metrics_port = args.metrics_port
    w.log_events = args.log_format == "json"

    async def main() -> int:
        try:
            await collector.start()
        except StreamError as exc:
            print(f"tickpipe publish: {exc}", file=sys.stderr, flush=True)
            await client.close()
            return EXIT_UNREACHABLE
        printer.write(
            {"event": "bus_connected", "t": time.time(), "nats": args.nats,
             "stream": args.stream, "collector": collector.id}
        )  # fmt: skip
        try:
            return await w.run()
        finally:
            await collector.close()
            st = collector.stats
            printer.write(
                {"event": "published", "t": time.time(), "messages": dict(st.published),
                 "dropped": st.dropped, "failed": st.failed}
            )  # fmt: skip

    return watch_cmd._run_loop(main())
