"""Which order-book structure, and what a delta costs: the micro-benchmark behind book.py.

Builds a realistic book (``--levels`` a side, tick 0.01, lot 0.001), then a stream of deltas of
1-4 levels each whose prices cluster near the top (distance from the best price drawn from a
geometric law, mean ``--mean-depth`` ticks), with inserts, changes and removals, and the VTS/1
CRC-32 after each delta computed by a plain-dict reference. Then, for each structure:

- µs per delta applied with the checksum OFF (apply only) and ON (apply + CRC-32 + compare);
  every checksum is compared with the reference, so a wrong structure cannot win;
- µs per frame decoded (msgspec typed struct + ``parse_levels`` of both sides), against orjson.

Run:  .venv/bin/python benchmarks/bench_book.py [--levels 1000] [--deltas 50000] [--repeat 5]
Prints one table; the figures that decided book.py are in benchmarks/RESULTS-core.md.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
import zlib
from bisect import bisect_left
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from tickpipe.protocol import frames
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument, format_units
from tickpipe.protocol.sync import BookSync

INSTRUMENT = Instrument("BENCH-USD", "crypto", "0.01", "0.001")
Level = tuple[int, int]
RawDelta = tuple[list[Level], list[Level], int]


# -- the market ------------------------------------------------------------------------------
def reference_checksum(bids: dict[int, int], asks: dict[int, int]) -> int:
    """VTS/1 section 5 from plain dicts, written independently of book.py."""
    top_b = sorted(bids, reverse=True)[:10]
    top_a = sorted(asks)[:10]
    parts = []
    for i in range(max(len(top_b), len(top_a))):
        for side, top in ((bids, top_b), (asks, top_a)):
            if i < len(top):
                p = top[i]
                parts.append(f"{format_units(p, 2)}:{format_units(side[p], 3)}")
    return zlib.crc32(":".join(parts).encode())


def make_market(
    levels: int, n_deltas: int, mean_depth: float, seed: int
) -> tuple[list[Level], list[Level], list[RawDelta]]:
    """A starting book and ``n_deltas`` deltas with reference checksums."""
    rng = random.Random(seed)
    mid = 10_000_00  # 10,000.00 in ticks of 0.01
    bids = {mid - 1 - i: rng.randint(1, 5_000) for i in range(levels)}
    asks = {mid + 1 + i: rng.randint(1, 5_000) for i in range(levels)}
    start_b, start_a = sorted(bids.items(), reverse=True), sorted(asks.items())
    p_geo = 1.0 / mean_depth
    deltas: list[RawDelta] = []
    for _ in range(n_deltas):
        d_b: list[Level] = []
        d_a: list[Level] = []
        for _ in range(rng.randint(1, 4)):
            is_bid = rng.random() < 0.5
            side = bids if is_bid else asks
            best = max(bids) if is_bid else min(asks)
            dist = 0
            while rng.random() > p_geo:
                dist += 1
            # occasionally improve the price (a new best level), never cross
            if rng.random() < 0.05:
                dist = -1
            price = best - dist if is_bid else best + dist
            if is_bid and asks and price >= min(asks):
                price = min(asks) - 1
            if not is_bid and bids and price <= max(bids):
                price = max(bids) + 1
            remove = price in side and rng.random() < 0.3 and len(side) > levels // 2
            size = 0 if remove else rng.randint(1, 5_000)
            if size:
                side[price] = size
            else:
                side.pop(price, None)
            (d_b if is_bid else d_a).append((price, size))
        deltas.append((d_b, d_a, reference_checksum(bids, asks)))
    return start_b, start_a, deltas


# -- candidate structures --------------------------------------------------------------------
class Book(Protocol):
    def load(self, bids: list[Level], asks: list[Level]) -> None: ...
    def apply(self, bids: list[Level], asks: list[Level]) -> None: ...
    def checksum(self) -> int: ...


def _fmt_top(bids: list[Level], asks: list[Level]) -> int:
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        if i < len(bids):
            p, s = bids[i]
            parts.append(f"{format_units(p, 2)}:{format_units(s, 3)}")
        if i < len(asks):
            p, s = asks[i]
            parts.append(f"{format_units(p, 2)}:{format_units(s, 3)}")
    return zlib.crc32(":".join(parts).encode())


class NaiveBisectBook:
    """dict + ascending bisect list per side, checksum formatted in full each delta (v0)."""

    def __init__(self) -> None:
        self.b: dict[int, int] = {}
        self.a: dict[int, int] = {}
        self.bp: list[int] = []
        self.ap: list[int] = []

    def load(self, bids: list[Level], asks: list[Level]) -> None:
        self.b, self.a = dict(bids), dict(asks)
        self.bp, self.ap = sorted(self.b), sorted(self.a)

    @staticmethod
    def _set(levels: dict[int, int], prices: list[int], p: int, s: int) -> None:
        if s:
            if p not in levels:
                prices.insert(bisect_left(prices, p), p)
            levels[p] = s
        elif p in levels:
            del levels[p]
            del prices[bisect_left(prices, p)]

    def apply(self, bids: list[Level], asks: list[Level]) -> None:
        for p, s in bids:
            self._set(self.b, self.bp, p, s)
        for p, s in asks:
            self._set(self.a, self.ap, p, s)

    def checksum(self) -> int:
        b, a = self.b, self.a
        return _fmt_top([(p, b[p]) for p in self.bp[:-11:-1]], [(p, a[p]) for p in self.ap[:10]])


class SortedDictBook:
    """sortedcontainers.SortedDict per side (a B-tree-ish list of lists in pure Python)."""

    def __init__(self) -> None:
        from sortedcontainers import SortedDict

        self._sd = SortedDict
        self.b: Any = SortedDict()
        self.a: Any = SortedDict()

    def load(self, bids: list[Level], asks: list[Level]) -> None:
        self.b, self.a = self._sd(bids), self._sd(asks)

    def apply(self, bids: list[Level], asks: list[Level]) -> None:
        for side, levels in ((self.b, bids), (self.a, asks)):
            for p, s in levels:
                if s:
                    side[p] = s
                else:
                    side.pop(p, None)

    def checksum(self) -> int:
        b, a = self.b, self.a
        bk = b.keys()
        ak = a.keys()
        top_b = [(p, b[p]) for p in bk[-1:-11:-1]]
        top_a = [(p, a[p]) for p in ak[:10]]
        return _fmt_top(top_b, top_a)


class COrderBook:
    """bmoscon's order_book C extension (cryptofeed's book), integer keys."""

    def __init__(self) -> None:
        import order_book

        self._mk = order_book.OrderBook
        self.ob: Any = order_book.OrderBook()

    def load(self, bids: list[Level], asks: list[Level]) -> None:
        self.ob = self._mk()
        for p, s in bids:
            self.ob.bids[p] = s
        for p, s in asks:
            self.ob.asks[p] = s

    def apply(self, bids: list[Level], asks: list[Level]) -> None:
        ob = self.ob
        for side, levels in ((ob.bids, bids), (ob.asks, asks)):
            for p, s in levels:
                if s:
                    side[p] = s
                elif p in side:
                    del side[p]

    def checksum(self) -> int:
        ob = self.ob
        nb, na = min(10, len(ob.bids)), min(10, len(ob.asks))
        return _fmt_top(
            [ob.bids.index(i) for i in range(nb)], [ob.asks.index(i) for i in range(na)]
        )


class TickpipeBook:
    """tickpipe.protocol.book.OrderBook as shipped."""

    def __init__(self) -> None:
        self.ob = OrderBook(INSTRUMENT)

    def load(self, bids: list[Level], asks: list[Level]) -> None:
        self.ob.load(bids, asks)

    def apply(self, bids: list[Level], asks: list[Level]) -> None:
        self.ob.apply(bids, asks)

    def checksum(self) -> int:
        return self.ob.checksum()


CANDIDATES: dict[str, Callable[[], Book]] = {
    "dict+bisect, full checksum (v0)": NaiveBisectBook,
    "sortedcontainers.SortedDict": SortedDictBook,
    "order_book (C ext)": COrderBook,
    "tickpipe OrderBook (shipped)": TickpipeBook,
}


# -- timing -----------------------------------------------------------------------------------
def time_apply(
    make: Callable[[], Book],
    start: tuple[list[Level], list[Level]],
    deltas: list[RawDelta],
    checksum: bool,
    repeat: int,
) -> float:
    """Best-of-``repeat`` µs per delta; verifies every checksum against the reference."""
    runs = []
    for _ in range(repeat):
        book = make()
        book.load(*start)
        t0 = time.perf_counter()
        if checksum:
            for b, a, cs in deltas:
                book.apply(b, a)
                if book.checksum() != cs:
                    raise SystemExit(f"{make.__name__}: checksum mismatch")
        else:
            for b, a, _cs in deltas:
                book.apply(b, a)
        runs.append(time.perf_counter() - t0)
        if not checksum and book.checksum() != deltas[-1][2]:
            raise SystemExit(f"{make.__name__}: final book differs from the reference")
    return min(runs) / len(deltas) * 1e6


def make_frames(deltas: list[RawDelta], n: int) -> list[bytes]:
    out = []
    for seq, (b, a, cs) in enumerate(deltas[:n], start=1):
        out.append(
            orjson.dumps(
                {
                    "type": "delta",
                    "channel": "orderbook:BENCH-USD",
                    "seq": seq,
                    "ts": 1_700_000_000_000_000_000 + seq,
                    "bids": [[format_units(p, 2), format_units(s, 3)] for p, s in b],
                    "asks": [[format_units(p, 2), format_units(s, 3)] for p, s in a],
                    "checksum": cs,
                }
            )
        )
    return out


def time_hot_path(start: tuple[list[Level], list[Level]], raw: list[bytes], repeat: int) -> float:
    """µs per frame through everything the client's read path runs in the core: decode,
    parse_levels of both sides, BookSync.on_delta with the checksum verified."""
    runs = []
    for _ in range(repeat):
        sync = BookSync("orderbook:BENCH-USD", INSTRUMENT, lambda: 0.5)
        sync.start()
        sync.on_snapshot(sync.epoch, 0, *start)
        t0 = time.perf_counter()
        for r in raw:
            f = frames.decode_server_frame(r)
            assert isinstance(f, frames.Delta)
            bids = frames.parse_levels(f.bids, INSTRUMENT, f.channel, "bids")
            asks = frames.parse_levels(f.asks, INSTRUMENT, f.channel, "asks")
            sync.on_delta(f.seq, bids, asks, f.checksum)
        runs.append(time.perf_counter() - t0)
        if not sync.synced or sync.stats.applied != len(raw):
            raise SystemExit("hot path: the book did not stay synced")
    return min(runs) / len(raw) * 1e6


def time_decode(raw: list[bytes], repeat: int) -> dict[str, float]:
    inst = INSTRUMENT
    parse = frames.parse_levels
    decode = frames.decode_server_frame

    def msgspec_only() -> None:
        for r in raw:
            decode(r)

    def msgspec_parse() -> None:
        for r in raw:
            f = decode(r)
            assert isinstance(f, frames.Delta)
            parse(f.bids, inst, f.channel, "bids")
            parse(f.asks, inst, f.channel, "asks")

    def orjson_parse() -> None:
        for r in raw:
            d = orjson.loads(r)
            ch = d["channel"]
            parse(d["bids"], inst, ch, "bids")
            parse(d["asks"], inst, ch, "asks")

    out = {}
    for name, fn in (
        ("msgspec struct decode only", msgspec_only),
        ("msgspec struct decode + parse_levels", msgspec_parse),
        ("orjson.loads + parse_levels (no validation)", orjson_parse),
    ):
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
        out[name] = min(runs) / len(raw) * 1e6
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--levels", type=int, nargs="+", default=[200, 1000, 5000])
    ap.add_argument("--deltas", type=int, default=30_000)
    ap.add_argument("--mean-depth", type=float, default=3.0, help="mean distance from best, ticks")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", default="", help="run only candidates whose name contains this")
    args = ap.parse_args(argv)

    print(f"python {sys.version.split()[0]} on {platform.machine()} {platform.processor()}")
    print(f"deltas {args.deltas}, 1-4 levels each, mean distance from best {args.mean_depth} ticks")
    print("µs per delta, best of", args.repeat, "(lower is better)\n")
    for levels in args.levels:
        start_b, start_a, deltas = make_market(levels, args.deltas, args.mean_depth, args.seed)
        touched_top = sum(1 for b, a, _ in deltas if b or a)
        print(f"## {levels} levels a side ({touched_top} deltas)")
        print(f"{'structure':<40} {'checksum OFF':>13} {'checksum ON':>12}")
        for name, make in CANDIDATES.items():
            if args.only and args.only not in name:
                continue
            off = time_apply(make, (start_b, start_a), deltas, False, args.repeat)
            on = time_apply(make, (start_b, start_a), deltas, True, args.repeat)
            print(f"{name:<40} {off:>13.2f} {on:>12.2f}")
        print()
    start_b, start_a, deltas = make_market(1000, 20_000, args.mean_depth, args.seed)
    raw = make_frames(deltas, 20_000)
    sizes = statistics.mean(len(r) for r in raw)
    print(f"## decode, µs per delta frame (mean {sizes:.0f} bytes)")
    for name, us in time_decode(raw, args.repeat).items():
        print(f"{name:<46} {us:>8.2f}")
    hot = time_hot_path((start_b, start_a), raw, args.repeat)
    print("\n## hot path: decode + parse_levels + BookSync.on_delta (checksum ON), 1000 levels")
    print(f"{'µs per frame':<46} {hot:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
