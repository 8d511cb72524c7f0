"""``tickpipe record CHANNEL... --out DIR``: watch channels as ``tickpipe watch --jsonl`` does
(same events and ``final_book`` lines on stdout) and record everything the books depend on,
as received, into ``DIR`` (see ``tickpipe.record``; replay with ``tickpipe replay DIR``).

Extra JSONL lines: ``recording {path}`` when a part is opened (at start and at each
rotation), ``overflow {queue: "recording", dropped}`` when the disk falls behind (records are
dropped, never the live path blocked), and at the end ``recorded {parts, records, frames,
dropped, bytes}``. Exit status as ``tickpipe watch``; 2 also when ``--out`` cannot be created.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from tickpipe.cli import watch as watch_cmd
from tickpipe.cli.common_args import check_stream_args
from tickpipe.cli.logfmt import add_observe_args, setup_logging
from tickpipe.cli.watch import Printer, Watch
from tickpipe.client.client import Client
from tickpipe.client.credentials import resolve_credentials
from tickpipe.client.events import ClientEvent
from tickpipe.errors import ConfigError
from tickpipe.record.writer import DEFAULT_ROTATE_MB, RecordingWriter
from tickpipe.venues.registry import VENUES

EXIT_USAGE = 2


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "record",
        help="watch channels and record what is received, for replay",
        description="Subscribe to CHANNELs as `tickpipe watch --jsonl` does and record "
        "every stream frame (with its receive time), every REST snapshot and instruments "
        "answer, connects, disconnects and subscribe answers into --out DIR: zstd-compressed, "
        "rotated at --rotate-mb, safe against kill -9 (a cut part replays up to its last "
        "whole record). Replay with `tickpipe replay DIR`.",
    )
    p.add_argument("channels", nargs="+", metavar="CHANNEL", help="e.g. orderbook:AAPL")
    p.add_argument("--venue", default="vts", choices=list(VENUES), help="default: %(default)s")
    p.add_argument("--stream-url", default=None, help="as for watch")
    p.add_argument("--rest-url", default=None, help="as for watch")
    p.add_argument("--key", default=None, help="API key (default: $TICKPIPE_KEY)")
    p.add_argument("--secret", default=None, help="secret (default: $TICKPIPE_SECRET)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the parts")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop this many seconds after start (default: until Ctrl-C or SIGTERM)",
    )
    p.add_argument(
        "--rotate-mb",
        type=float,
        default=DEFAULT_ROTATE_MB,
        metavar="MB",
        help="start a new part once one holds this many MiB, compressed (default: %(default)g)",
    )
    add_observe_args(p)
    p.set_defaults(func=run)


def _usage(msg: str) -> int:
    print(f"tickpipe record: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


class RecordPrinter(Printer):
    """watch's JSONL printer; also hands each event to the recording (gaps seen live), and
    ends the recording when the final books are printed (the close that follows is not part
    of the session)."""

    def __init__(self, writer: RecordingWriter) -> None:
        super().__init__(sys.stdout, jsonl=True)
        self.writer = writer

    def event(self, ev: ClientEvent) -> None:
        self.writer.event(ev.to_dict())
        super().event(ev)

    def write(self, d: dict[str, Any]) -> None:
        if d.get("event") == "final_book":
            self.writer.end("stopped")
        super().write(d)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    venue = check_stream_args(args)
    if isinstance(venue, str):
        return _usage(venue)
    if not 0 < args.rotate_mb < float("inf"):
        return _usage(f"--rotate-mb must be a number of MiB > 0, got {args.rotate_mb}")
    if args.log_format == "json":
        try:
            _, secret = resolve_credentials(args.key, args.secret)
        except ConfigError:
            secret = args.secret
        setup_logging("json", logging.INFO, secrets=[secret])
        logging.getLogger("picows").setLevel(logging.WARNING)
    channels = list(dict.fromkeys(args.channels))
    holder: dict[str, RecordPrinter] = {}

    def on_part(path: Path) -> None:
        line = {"event": "recording", "t": time.time(), "path": str(path)}
        p = holder.get("printer")
        if p is not None:
            p.write(line)

    def on_overflow(dropped: int) -> None:
        p = holder.get("printer")
        if p is not None:
            p.write(
                {"event": "overflow", "t": time.time(), "queue": "recording", "dropped": dropped}
            )

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
    writer = RecordingWriter(
        args.out,
        venue=venue.name,
        channels=channels,
        stream_url=client.stream_url,
        rest_url=client.rest_url,
        instruments_target=venue.instruments_target(),
        snapshot_depth=client.config.snapshot_depth,
        max_snapshot_levels=client.config.max_snapshot_levels,
        rotate_mb=args.rotate_mb,
        on_overflow=on_overflow,
        on_part=on_part,
    )
    printer = RecordPrinter(writer)
    holder["printer"] = printer
    try:
        writer.start()
    except OSError as exc:
        return _usage(f"cannot record into --out {args.out}: {exc}")
    client.recorder = writer
    deadline = None if args.duration is None else started + args.duration
    w = Watch(client, channels, args.duration, deadline, printer)
    w.metrics_port = args.metrics_port
    w.log_events = args.log_format == "json"
    try:
        code = watch_cmd._run_loop(w.run())
    finally:
        writer.close()
    printer.write(
        {
            "event": "recorded",
            "t": time.time(),
            "parts": [str(p) for p in writer.parts],
            "records": writer.records,
            "frames": writer.frames,
            "dropped": writer.dropped,
            "bytes": writer.bytes_written,
            "error": writer.error,
        }
    )
    return code
