"""``tickpipe replay PATH...``: feed a recording through the client's own pipeline (see
``tickpipe.record.replay``) and print what ``tickpipe watch`` printed live: the same events,
ticker and trade lines and ``final_book`` lines, each ``t`` the recorded receive time (two
replays print byte-identical output). ``--parquet DIR`` writes research tables.

Exit status: 0 when replayed (also when a part was cut short: replayed up to its last whole
record, said on stderr); 2 on a usage error or a PATH that is not a recording.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from tickpipe.cli.watch import FINAL_DEPTH, Printer, final_book_line
from tickpipe.client.dispatch import TickerUpdate, TradeUpdate
from tickpipe.client.events import ClientEvent
from tickpipe.client.views import BookView
from tickpipe.errors import ConfigError

EXIT_OK, EXIT_USAGE = 0, 2


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="replay a recording through the same pipeline as live data",
        description="Replay recording parts (files, or directories of *.tpr.zst) written by "
        "`tickpipe record` through the client's own decode, sync machine and events, and "
        "print what `tickpipe watch` printed live (same events, final_book lines), with the "
        "recorded times: two replays print identical output. --parquet DIR also writes "
        "research tables (top of book, top-N levels, trades, tickers, health).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="a part file or a directory")
    p.add_argument(
        "--speed",
        default="max",
        metavar="X|max",
        help="max: as fast as the CPU allows, frames/s reported on stderr (default); "
        "X: X times the recorded pace (1 = as recorded)",
    )
    p.add_argument(
        "--jsonl",
        action="store_true",
        help="one JSON object a line on stdout, as `tickpipe watch --jsonl`",
    )
    p.add_argument(
        "--parquet",
        default=None,
        metavar="DIR",
        help="write top_of_book, levels, trades, tickers and health tables (Parquet) to DIR",
    )
    p.add_argument(
        "--depth",
        type=int,
        default=FINAL_DEPTH,
        metavar="N",
        help="levels a side in final_book lines and in the Parquet levels table "
        "(default: %(default)s, as watch)",
    )
    p.add_argument(
        "--every-ms",
        type=float,
        default=None,
        metavar="MS",
        help="Parquet book tables: at most one row a book per MS milliseconds of recorded "
        "time (default: a row at every update)",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="print no events (with --parquet: only write the tables)",
    )
    p.set_defaults(func=run)


def _usage(msg: str) -> int:
    print(f"tickpipe replay: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


class PrintSink:
    """Events and ticker/trade lines as `watch` prints them, with the recorded ``t``."""

    def __init__(self, printer: Printer | None, tables: Any = None) -> None:
        self.printer = printer
        self.tables = tables

    def event(self, ev: ClientEvent, t: float) -> None:
        if self.printer is not None:
            d = ev.to_dict()
            d["t"] = t
            self.printer.write(d)
        if self.tables is not None:
            self.tables.event(ev, t)

    def data(self, item: TickerUpdate | TradeUpdate, t: float) -> None:
        if self.printer is not None:
            self.printer.data(item, t)
        if self.tables is not None:
            self.tables.data(item, t)

    def book(self, view: BookView, t: float, mono_ns: int) -> None:
        if self.tables is not None:
            self.tables.book(view, t, mono_ns)


def run(args: argparse.Namespace) -> int:
    from tickpipe.record import format as fmt
    from tickpipe.record.reader import PartReader, find_parts
    from tickpipe.record.replay import Replay

    speed: float | None
    if args.speed == "max":
        speed = None
    else:
        try:
            speed = float(args.speed)
        except ValueError:
            speed = -1.0
        if not 0 < speed < float("inf"):
            return _usage(f"--speed must be max or a number > 0, got {args.speed!r}")
    if args.depth < 1:
        return _usage(f"--depth must be >= 1, got {args.depth}")
    if args.every_ms is not None and not args.every_ms > 0:
        return _usage(f"--every-ms must be > 0, got {args.every_ms}")
    try:
        paths = find_parts(args.paths)
        parts = [PartReader(p) for p in paths]
    except (ConfigError, fmt.FormatError, OSError) as exc:
        return _usage(str(exc))
    runs = {p.header.started_wall_ns for p in parts}
    if len(runs) > 1:
        return _usage(
            f"the PATHs hold parts of {len(runs)} recordings: replay one at a time "
            f"({', '.join(str(p.path) for p in parts if p.header.part == 1)})"
        )
    tables = None
    if args.parquet is not None:
        try:
            from tickpipe.record.parquet import ParquetTables
        except ImportError as exc:
            return _usage(
                f"--parquet needs pyarrow ({exc}): pip install 'tickpipe[parquet]' "
                "(setup.sh installs it)"
            )
        tables = ParquetTables(args.depth, args.every_ms)
    printer = None if args.quiet else Printer(sys.stdout, jsonl=args.jsonl)
    sink = PrintSink(printer, tables)
    replay = Replay(sink, speed)
    if tables is not None:
        tables.wall_ns = lambda: replay.wall_ns
    try:
        stats = asyncio.run(replay.run(parts))
    except fmt.FormatError as exc:
        return _usage(str(exc))
    header = replay.header
    if printer is not None and header is not None:
        views = replay.views()
        for ch in header.channels:
            if ch.startswith("orderbook:"):
                printer.write(final_book_line(views.get(ch), ch, replay.wall, args.depth))
    if tables is not None and header is not None:
        try:
            written = tables.write(args.parquet, header, replay)
        except OSError as exc:
            print(f"tickpipe replay: cannot write --parquet {args.parquet}: {exc}", file=sys.stderr)
            return 1
        for path in written:
            print(f"tickpipe replay: wrote {path}", file=sys.stderr)
    for part in parts:
        if part.truncated:
            print(
                f"tickpipe replay: {part.path} was cut short: replayed up to its last whole "
                f"record ({part.records} records)",
                file=sys.stderr,
            )
    rate = f", {stats.frames_per_s:,.0f} frames/s" if speed is None else ""
    print(
        f"tickpipe replay: {stats.parts} part(s), {stats.records} records, {stats.frames} "
        f"frames in {stats.wall_s:.3f}s{rate}",
        file=sys.stderr,
    )
    return EXIT_OK
