"""``tickpipe watch CHANNEL...``: stream channels through :class:`tickpipe.Client` and print
what happens, for a person or (``--jsonl``) one JSON object a line for a program.

JSONL: each line is a :class:`~tickpipe.client.events.ClientEvent` ``to_dict()`` (``event``,
``t`` and its fields; see ``client/events.py``), and when it stops one
``final_book {channel, synced, seq, bids, asks}`` per book channel, top 10 levels as
decimal strings, best first.

Exit status: 0 at the end of ``--duration`` or on Ctrl-C / SIGTERM; 3 after ``auth_failed``;
2 on a usage error; 1 when the gateway cannot be reached at start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Coroutine
from typing import Any, TextIO

from tickpipe.client.client import DEFAULT_REST_URL, DEFAULT_STREAM_URL, Client
from tickpipe.client.events import AuthFailed, ClientEvent
from tickpipe.errors import AuthError, ConfigError, StreamError
from tickpipe.protocol.frames import split_channel

EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, EXIT_AUTH = 0, 1, 2, 3
FINAL_DEPTH = 10


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "watch",
        help="stream channels and print events (books, gaps, staleness, reconnects)",
        description="Subscribe to CHANNELs (KIND:SYMBOL, KIND = orderbook|ticker|trades) over "
        "one connection and print what happens. Exit 0 at the end of --duration or on Ctrl-C, "
        "3 after auth_failed, 2 on a usage error, 1 if the gateway cannot be reached.",
    )
    p.add_argument("channels", nargs="+", metavar="CHANNEL", help="e.g. orderbook:AAPL")
    p.add_argument("--stream-url", default=DEFAULT_STREAM_URL, help="default: %(default)s")
    p.add_argument("--rest-url", default=DEFAULT_REST_URL, help="default: %(default)s")
    p.add_argument("--key", default=None, help="API key (default: $TICKPIPE_KEY, else demo)")
    p.add_argument("--secret", default=None, help="secret (default: $TICKPIPE_SECRET, else demo)")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    p.add_argument(
        "--stale-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="flag a channel silent this long as stale (reason silent)",
    )
    p.add_argument("--jsonl", action="store_true", help="one JSON object a line on stdout")
    p.set_defaults(func=run)


def _usage(msg: str) -> int:
    print(f"tickpipe watch: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    for ch in args.channels:
        try:
            split_channel(ch)
        except ValueError as exc:
            return _usage(str(exc))
    if args.duration is not None and not args.duration > 0:
        return _usage(f"--duration must be > 0, got {args.duration}")
    if args.stale_after is not None and not args.stale_after > 0:
        return _usage(f"--stale-after must be > 0, got {args.stale_after}")
    try:
        client = Client(
            stream_url=args.stream_url,
            rest_url=args.rest_url,
            key=args.key,
            secret=args.secret,
            stale_after_s=args.stale_after,
        )
    except ConfigError as exc:
        return _usage(str(exc))
    printer = Printer(sys.stdout, jsonl=args.jsonl)
    return _run_loop(_watch(client, list(dict.fromkeys(args.channels)), args.duration, printer))


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


class Printer:
    """Writes events as JSONL or as short human lines; flushes each line."""

    def __init__(self, out: TextIO, jsonl: bool) -> None:
        self.out = out
        self.jsonl = jsonl

    def event(self, ev: ClientEvent) -> None:
        self.write(ev.to_dict())

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
        fields = " ".join(f"{k}={v}" for k, v in d.items() if k not in ("event", "t"))
        return f"{stamp} {name:<16} {fields}"


async def _watch(
    client: Client, channels: list[str], duration: float | None, printer: Printer
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    code = EXIT_OK
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    feed = client.events()
    printing = True

    async def pump() -> None:
        nonlocal code
        async for ev in feed:
            if printing:
                printer.event(ev)
            if isinstance(ev, AuthFailed):
                code = EXIT_AUTH
                stop.set()

    pump_task = asyncio.create_task(pump())
    try:
        try:
            await client.start()
        except AuthError:
            await _flush(feed, printer)
            return EXIT_AUTH
        except StreamError as exc:
            await _flush(feed, printer)
            print(f"tickpipe watch: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE
        sub = asyncio.create_task(client.subscribe(channels))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)
        if not sub.done():
            sub.cancel()
        with contextlib.suppress(asyncio.CancelledError, StreamError):
            await sub
        await asyncio.sleep(0)  # let the dispatcher hand over what is queued
        await _flush(feed, printer)
        printing = False
        for ch in channels:
            if ch.startswith("orderbook:"):
                printer.write(_final_book(client, ch))
        return code
    finally:
        printing = False
        await client.close()
        pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump_task
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


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
        view = client.book(channel)
    except ConfigError:
        return {
            "event": "final_book",
            "t": time.time(),
            "channel": channel,
            "synced": False,
            "seq": None,
            "bids": [],
            "asks": [],
        }
    bids, asks = view.text_levels(FINAL_DEPTH)
    return {
        "event": "final_book",
        "t": time.time(),
        "channel": channel,
        "synced": view.synced,
        "seq": view.seq,
        "bids": bids,
        "asks": asks,
    }
