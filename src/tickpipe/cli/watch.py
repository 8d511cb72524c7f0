"""``tickpipe watch CHANNEL...``: stream channels through :class:`tickpipe.Client` and print
what happens, for a person or (``--jsonl``) one JSON object a line for a program.

JSONL: each line is a :class:`~tickpipe.client.events.ClientEvent` ``to_dict()`` (``event``,
``t`` and its fields; see ``client/events.py``); for ticker channels one
``ticker {channel, seq, bid, ask, last}`` and for trades channels one
``trade {channel, seq, price, size, side}`` per frame (prices and sizes as decimal strings;
read through the client's bounded feeds: a reader that falls behind sees ``overflow``), and
when it stops one ``final_book {channel, synced, seq, exact_depth, bids, asks}`` per accepted
book channel, top 10 levels as decimal strings, best first (``exact_depth``: null for a book
seeded whole, else the levels a side its snapshot carried: only those are known exact).

``--duration`` bounds the whole run, connecting included; SIGINT/SIGTERM stop it at once, in
any phase. Refused channels are named on stderr with the gateway's code and the symbols it
lists; the accepted ones are watched (exit 2 when every channel is refused).

Exit status: 0 at the end of ``--duration`` or on Ctrl-C / SIGTERM; 3 after ``auth_failed``;
2 on a usage error or when every channel is refused; 1 when the gateway cannot be reached at
start (also when ``--duration`` ends before a connection was made, and at once when the stream
URL answers a permanent HTTP 4xx such as 404).

``--metrics-port P`` serves Prometheus metrics at ``http://127.0.0.1:P/metrics`` (0: any free
port) from the start, and writes one ``metrics {url, port}`` line on stdout (JSONL or human)
before connecting; a port that cannot be bound exits 1 naming the flag. ``--log-format json``
writes stderr as one JSON object a line (see ``cli/logfmt.py``), and mirrors each client event
there too (``event`` = the JSONL name).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Coroutine
from decimal import Decimal
from typing import Any, TextIO, TypeVar

from tickpipe.cli.common_args import check_stream_args
from tickpipe.cli.logfmt import add_observe_args, log_event, setup_logging
from tickpipe.client.client import DEFAULT_REST_URL, DEFAULT_STREAM_URL, Client
from tickpipe.client.credentials import DEFAULT_KEY, DEFAULT_SECRET, resolve_credentials
from tickpipe.client.dispatch import TickerUpdate, TradeUpdate
from tickpipe.client.events import AuthFailed, ClientEvent
from tickpipe.client.views import BookView
from tickpipe.errors import AuthError, ConfigError, StreamError
from tickpipe.venues.registry import VENUES

T = TypeVar("T")

log = logging.getLogger("tickpipe.cli.watch")
event_log = logging.getLogger("tickpipe.events")
_json_logs = False  # --log-format json: stderr messages go through the JSON logger
WARNING_EVENTS = frozenset(
    {
        "auth_failed",
        "bad_frame",
        "connect_retry",
        "disconnected",
        "gap",
        "overflow",
        "reconnecting",
        "snapshot_error",
        "stale",
        "subscribe_error",
        "trades_missed",
    }
)

EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, EXIT_AUTH = 0, 1, 2, 3
FINAL_DEPTH = 10


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "watch",
        help="stream channels and print events, tickers and trades",
        description="Subscribe to CHANNELs (KIND:SYMBOL, KIND = orderbook|ticker|trades) over "
        "one connection and print what happens: connection events, book sync, gaps, "
        "staleness, reconnects, one line per ticker and per trade, and each book's top levels "
        "at the end. Refused channels are named on stderr (with the symbols the gateway "
        "lists) and the others watched. --duration bounds the whole run, connecting "
        "included; Ctrl-C or SIGTERM stops it at once. Exit 0 at the end of --duration or "
        "on Ctrl-C/SIGTERM, 3 after auth_failed, 2 on a usage error or when every channel is "
        "refused, 1 if the gateway cannot be reached (or the stream URL answers HTTP 4xx).",
    )
    p.add_argument("channels", nargs="+", metavar="CHANNEL", help="e.g. orderbook:AAPL")
    p.add_argument(
        "--venue",
        default="vts",
        choices=list(VENUES),
        help="the venue's protocol (default: %(default)s, the reference gateway's VTS/1); "
        "channels use the venue's own symbols (binance, binance-usdm, bybit, bybit-linear: "
        "orderbook:BTCUSDT; okx: orderbook:BTC-USDT; kraken: orderbook:BTC/USD; coinbase: "
        "orderbook:BTC-USD)",
    )
    p.add_argument(
        "--stream-url",
        default=None,
        help=f"vts: the stream URL (default: {DEFAULT_STREAM_URL}); another venue: its scheme, "
        "host and port only, the documented path is appended (default: the venue's own)",
    )
    p.add_argument(
        "--rest-url",
        default=None,
        help=f"vts: the REST URL (default: {DEFAULT_REST_URL}); another venue: scheme, host and "
        "port only (default: the venue's own)",
    )
    p.add_argument(
        "--source",
        default=None,
        metavar="nats://HOST:PORT[,...]",
        help="rebuild the books from a NATS JetStream bus that `tickpipe publish --venue NAME` "
        "feeds, instead of connecting to the venue (same events and final_book lines; the "
        "venue is never asked, so --stream-url, --rest-url, --key do not apply)",
    )
    p.add_argument(
        "--ca-file",
        default=None,
        metavar="PEM",
        help="verify wss:// and https:// against the CA certificates in this PEM file instead "
        "of the system's store (a testnet or local gateway with a private CA; SSL_CERT_FILE "
        "works too); certificates are always verified",
    )
    p.add_argument(
        "--key", default=None, help=f"API key (default: $TICKPIPE_KEY, else {DEFAULT_KEY})"
    )
    p.add_argument(
        "--secret",
        default=None,
        help=f"secret (default: $TICKPIPE_SECRET, else {DEFAULT_SECRET})",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop this many seconds after start, connecting included (default: until Ctrl-C)",
    )
    p.add_argument(
        "--stale-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="flag a channel silent this long as stale (reason silent)",
    )
    p.add_argument(
        "--jsonl",
        action="store_true",
        help="one JSON object a line on stdout: the client's events, ticker and trade lines, "
        "final_book",
    )
    add_observe_args(p)
    p.set_defaults(func=run)


def _usage(msg: str) -> int:
    print(f"tickpipe watch: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    venue = check_stream_args(args)
    if isinstance(venue, str):
        return _usage(venue)
    if args.stale_after is not None and not args.stale_after > 0:
        return _usage(f"--stale-after must be > 0, got {args.stale_after}")
    if args.log_format == "json":
        global _json_logs
        _json_logs = True
        try:
            _, secret = resolve_credentials(args.key, args.secret)
        except ConfigError:
            secret = args.secret
        setup_logging("json", logging.INFO, secrets=[secret])
        logging.getLogger("picows").setLevel(logging.WARNING)  # one line a connect otherwise
    try:
        client = Client(
            stream_url=args.stream_url,
            rest_url=args.rest_url,
            key=args.key,
            secret=args.secret,
            venue=venue,
            stale_after_s=args.stale_after,
            ca_file=args.ca_file,
            source=args.source,
        )
    except ConfigError as exc:
        return _usage(str(exc))
    printer = Printer(sys.stdout, jsonl=args.jsonl)
    deadline = None if args.duration is None else started + args.duration
    channels = list(dict.fromkeys(args.channels))
    watch = Watch(client, channels, args.duration, deadline, printer)
    watch.metrics_port = args.metrics_port
    watch.log_events = args.log_format == "json"
    return _run_loop(watch.run())


def _run_loop(coro: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when installed (faster loop; ``TICKPIPE_NO_UVLOOP=1`` to opt out)."""
    factory = None
    if not os.environ.get("TICKPIPE_NO_UVLOOP"):
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def _human_value(key: str, value: Any) -> tuple[str, str]:
    """One field for a person: seconds rounded with their unit, lists joined, no reprs."""
    if isinstance(value, bool):
        return key, "yes" if value else "no"
    if isinstance(value, float):
        if key.endswith("_s"):
            return key[:-2], f"{value:.2f}s"
        return key, f"{value:.4g}"
    if isinstance(value, list | tuple):
        parts = [_human_value(key, v)[1] for v in value]
        return key, ",".join(parts) if parts else "none"
    text = str(value)
    return key, json.dumps(text) if (" " in text or not text) else text


class Printer:
    """Writes events as JSONL or as short human lines; flushes each line."""

    def __init__(self, out: TextIO, jsonl: bool) -> None:
        self.out = out
        self.jsonl = jsonl

    def event(self, ev: ClientEvent) -> None:
        self.write(ev.to_dict())

    def data(self, item: TickerUpdate | TradeUpdate, t: float | None = None) -> None:
        """One ticker or trade: a few fields as decimal strings (cheap: no book work). ``t``:
        when it was received (default now; a replay passes the recorded time)."""
        t = time.time() if t is None else t
        if isinstance(item, TickerUpdate):
            d: dict[str, Any] = {
                "event": "ticker",
                "t": t,
                "channel": item.channel,
                "seq": item.seq,
                "bid": _dec(item.bid),
                "ask": _dec(item.ask),
                "last": None if item.last is None else _dec(item.last),
            }
        else:
            d = {
                "event": "trade",
                "t": t,
                "channel": item.channel,
                "seq": item.seq,
                "price": _dec(item.price),
                "size": _dec(item.size),
                "side": item.side,
            }
        self.write(d)

    def write(self, d: dict[str, Any]) -> None:
        line = json.dumps(d, separators=(",", ":"), default=str) if self.jsonl else self._human(d)
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except BrokenPipeError:
            pass

    @staticmethod
    def _human(d: dict[str, Any]) -> str:
        stamp = (
            time.strftime("%H:%M:%S", time.localtime(d["t"])) + f".{int(d['t'] * 1000) % 1000:03d}"
        )
        name = d["event"]
        if name == "final_book":
            head = (
                f"{stamp} final_book {d['channel']} "
                f"{'synced' if d['synced'] else 'NOT SYNCED'} seq={d['seq']}"
            )
            rows = [head, f"    {'bid size':>14} {'bid':>14} | {'ask':<14} {'ask size':<14}"]
            bids, asks = d["bids"], d["asks"]
            for i in range(max(len(bids), len(asks))):
                b = bids[i] if i < len(bids) else ["", ""]
                a = asks[i] if i < len(asks) else ["", ""]
                rows.append(f"    {b[1]:>14} {b[0]:>14} | {a[0]:<14} {a[1]:<14}")
            return "\n".join(rows)
        if name == "ticker":
            return (
                f"{stamp} {'ticker':<16} {d['channel']} bid {d['bid']} ask {d['ask']} "
                f"last {d['last']} seq={d['seq']}"
            )
        if name == "trade":
            return (
                f"{stamp} {'trade':<16} {d['channel']} {d['side']} {d['size']} @ {d['price']} "
                f"seq={d['seq']}"
            )
        fields = " ".join(
            "=".join(_human_value(k, v))
            for k, v in d.items()
            if k not in ("event", "t") and v is not None
        )
        return f"{stamp} {name:<16} {fields}"


def _dec(x: Decimal | None) -> str | None:
    return None if x is None else format(x, "f")


class _Stopped(Exception):
    """The run was stopped (signal or --duration) while waiting for something."""


class Watch:
    """One run of ``tickpipe watch``: connect, subscribe, print, stop; see the module doc."""

    def __init__(
        self,
        client: Client,
        channels: list[str],
        duration: float | None,
        deadline: float | None,
        printer: Printer,
    ) -> None:
        self.client = client
        self.channels = channels
        self.duration = duration
        self.deadline = deadline  # time.monotonic() when --duration ends
        self.printer = printer
        self.stop = asyncio.Event()
        self.signalled = False
        self.code = EXIT_OK
        self.printing = True
        self.metrics_port: int | None = None  # --metrics-port
        self.log_events = False  # --log-format json: each client event also logged on stderr

    def _on_signal(self) -> None:
        self.signalled = True
        self.stop.set()

    async def _until_stop(self, aw: Awaitable[T]) -> T:
        """``await aw``, unless a signal, auth_failed or the deadline comes first: then it is
        cancelled and :class:`_Stopped` raised."""
        task = asyncio.ensure_future(aw)
        stopper = asyncio.create_task(self.stop.wait())
        timeout = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
        try:
            await asyncio.wait({task, stopper}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            stopper.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise _Stopped

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal)
        client = self.client
        feed = client.events()
        data_feeds = []
        kinds = {ch.partition(":")[0] for ch in self.channels}
        if "ticker" in kinds:
            data_feeds.append(client.tickers())
        if "trades" in kinds:
            data_feeds.append(client.trades())

        async def pump() -> None:
            async for ev in feed:
                if self.printing:
                    self.printer.event(ev)
                if self.log_events:
                    _log_client_event(ev)
                if isinstance(ev, AuthFailed):
                    self.code = EXIT_AUTH
                    self.stop.set()

        async def pump_data(f: Any) -> None:
            async for item in f:
                if not self.printing:
                    continue
                if isinstance(item, ClientEvent):  # overflow: this reader fell behind
                    self.printer.event(item)
                else:
                    self.printer.data(item)

        metrics = None
        if self.metrics_port is not None:
            from tickpipe.client.prometheus import MetricsServer, client_registry

            metrics = MetricsServer(client_registry(client), self.metrics_port)
            try:
                await metrics.start()
            except OSError as exc:
                why = os.strerror(exc.errno) if exc.errno else str(exc)
                _say(
                    f"cannot listen on 127.0.0.1:{self.metrics_port} (--metrics-port): {why}",
                    "metrics_error",
                )
                await client.close()
                return EXIT_UNREACHABLE
            self.printer.write(
                {"event": "metrics", "t": time.time(), "url": metrics.url, "port": metrics.port}
            )
            if self.log_events:
                log_event(log, "metrics", f"metrics at {metrics.url}", url=metrics.url,
                          port=metrics.port)  # fmt: skip
        pumps = [asyncio.create_task(pump())]
        pumps += [asyncio.create_task(pump_data(f)) for f in data_feeds]
        try:
            return await self._run(feed)
        finally:
            self.printing = False
            await client.close()
            if metrics is not None:
                await metrics.stop()
            for t in pumps:
                t.cancel()
            for t in pumps:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)

    async def _run(self, feed: Any) -> int:
        client, printer = self.client, self.printer
        try:
            await self._until_stop(client.start())
        except AuthError:
            await _flush(feed, printer)
            return EXIT_AUTH
        except StreamError as exc:
            await _flush(feed, printer)
            _say(str(exc), "unreachable")
            return EXIT_UNREACHABLE
        except _Stopped:
            await _flush(feed, printer)
            if self.code == EXIT_AUTH or self.signalled:  # auth_failed seen first, or a signal
                return self.code
            _say(
                f"not connected to {client.stream_url} within --duration {self.duration:g} s "
                "(see the connect_retry lines)",
                "unreachable",
            )
            return EXIT_UNREACHABLE
        watched = list(self.channels)
        try:
            result = await self._until_stop(client.subscribe(self.channels))
        except _Stopped:
            result = None
        except StreamError as exc:  # lost before the answer: re-subscribed on reconnect
            _say(f"{exc}; the channels are asked for again after a reconnect", "subscribe_error")
            result = None
        if result is not None and result.refused:
            await _flush(feed, printer)
            refused = ", ".join(f"{ch} ({code})" for ch, code in result.refused.items())
            symbols = ", ".join(sorted(client.instruments)) or "none"
            watched = [ch for ch in self.channels if ch not in result.refused]
            if not watched:
                _say(
                    f"error: the gateway refused every channel: {refused}; symbols: {symbols}",
                    "subscribe_error",
                )
                return EXIT_USAGE
            _say(
                f"refused {refused}; symbols the gateway lists: {symbols}; "
                f"watching the other {len(watched)}: {', '.join(watched)}",
                "subscribe_error",
            )
        with contextlib.suppress(_Stopped):
            await self._until_stop(asyncio.Event().wait())  # until a signal or the deadline
        await asyncio.sleep(0)  # let the dispatcher hand over what is queued
        await _flush(feed, printer)
        self.printing = False
        for ch in watched:
            if ch.startswith("orderbook:"):
                printer.write(_final_book(client, ch))
        return self.code


def _say(msg: str, event: str = "error") -> None:
    """A message for the person on stderr; with ``--log-format json`` a JSON line whose
    ``event`` names what it is about (``subscribe_error``, ``unreachable``...)."""
    if _json_logs:
        log_event(log, event, msg, logging.WARNING)
        return
    print(f"tickpipe watch: {msg}", file=sys.stderr, flush=True)


def _log_client_event(ev: ClientEvent) -> None:
    d = ev.to_dict()
    name = d.pop("event")
    d.pop("t", None)
    level = logging.WARNING if name in WARNING_EVENTS else logging.INFO
    log_event(event_log, name, name, level, **d)


async def _flush(feed: Any, printer: Printer) -> None:
    """Print the events already queued (the pump may not have run since they arrived)."""
    await asyncio.sleep(0)
    while True:
        ev = feed.get_nowait()
        if ev is None:
            return
        printer.event(ev)


def _final_book(client: Client, channel: str) -> dict[str, Any]:
    try:
        view: BookView | None = client.book(channel)
    except ConfigError:
        view = None
    return final_book_line(view, channel, time.time())


def final_book_line(
    view: BookView | None, channel: str, t: float, depth: int = FINAL_DEPTH
) -> dict[str, Any]:
    """The ``final_book`` line of ``channel`` (``tickpipe replay`` prints the same)."""
    if view is None:
        return {
            "event": "final_book",
            "t": t,
            "channel": channel,
            "synced": False,
            "seq": None,
            "bids": [],
            "asks": [],
        }
    bids, asks = view.text_levels(depth)
    return {
        "event": "final_book",
        "t": t,
        "channel": channel,
        "synced": view.synced,
        "seq": view.seq,
        "exact_depth": view.exact_depth,
        "bids": bids,
        "asks": asks,
    }
