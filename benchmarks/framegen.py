"""Pre-generated, realistic VTS/1 traffic for the benchmark suite, cached in a temp file.

What it makes (deterministic for a given :class:`CorpusSpec`):

- ``books`` order-book symbols across four asset classes, each seeded with a book of ``depth``
  levels a side (a REST snapshot body at seq ``S``), plus ``tickers`` ticker channels and
  ``trades`` trade channels on the first symbols: 150 + 25 + 25 = 200 channels by default, the
  VTS/1 maximum for one connection.
- ``frames`` data frames in the order the gateway would send them: deltas of 1-4 levels a side
  (updates, removals and inserts clustered near the top, the book kept around ``depth`` deep and
  never crossed), tickers and trades. Every seq follows the snapshot's by exactly one and every
  delta carries the VTS/1 checksum computed with :class:`tickpipe.protocol.book.OrderBook`, so a
  correct client never resyncs.

Each frame's ``ts`` is a 19-digit placeholder at a recorded byte offset: the sender overwrites it
with its clock at send (fixed-rate mode) without re-encoding the frame.

The corpus is written once to ``$TMPDIR/tickpipe-bench-<hash>/`` (``snapshots.msgpack``, small,
read by every receiver; ``frames.msgpack``, read by the sender only) so that every run of the suite
replays byte-identical traffic. Generating 400k frames takes a few seconds; loading them ~0.2 s.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import msgspec

from tickpipe.protocol import frames as vts
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument

TS_DIGITS = 19
TS_PLACEHOLDER = 1_700_000_000_000_000_000  # 19 digits; replaced at send in fixed-rate mode
CORPUS_VERSION = 1


@dataclass(frozen=True)
class CorpusSpec:
    """The knobs of the generated traffic.

    - ``frames`` (default 400_000): data frames generated; runs replay a prefix of them.
    - ``books`` (150), ``tickers`` (25), ``trades`` (25): channels per kind (200 in all).
    - ``depth`` (300): levels a side in each snapshot; deltas keep books within ±10 % of it.
    - ``delta_share`` (0.8): share of frames that are deltas; tickers and trades split the rest.
    - ``seed`` (7): the random seed; a different seed is a different corpus (and cache file).
    """

    frames: int = 400_000
    books: int = 150
    tickers: int = 25
    trades: int = 25
    depth: int = 300
    delta_share: float = 0.8
    seed: int = 7

    def cache_key(self) -> str:
        text = repr((CORPUS_VERSION, sorted(asdict(self).items())))
        return hashlib.sha1(text.encode()).hexdigest()[:12]


class Snapshots(msgspec.Struct):
    """What a receiver needs: instruments, snapshot bodies, channel lists, seqs."""

    instruments: list[dict[str, str]]
    snapshots: dict[str, bytes]  # symbol -> REST body of GET /v1/orderbook/{symbol}
    book_channels: list[str]
    ticker_channels: list[str]
    trade_channels: list[str]
    first_seq: dict[str, int]  # channel -> seq of its first frame in the stream

    @property
    def channels(self) -> list[str]:
        return self.book_channels + self.ticker_channels + self.trade_channels


class Frames(msgspec.Struct):
    """What the sender needs: encoded frames, their channels and ``ts`` offsets."""

    frames: list[bytes]
    channel_index: list[int]  # index into Snapshots.channels, one per frame
    ts_offsets: list[int]


# (asset class, symbol pattern, tick, lot, mid price in ticks, max lots a level)
_CLASSES = (
    ("crypto", "C{:03d}-USD", "0.01", "0.00001", 3_000_000, 400),
    ("equity", "EQ{:03d}", "0.01", "1", 18_000, 900),
    ("metal", "M{:03d}-USD", "0.05", "0.01", 40_000, 300),
    ("fx", "FX{:03d}-USD", "0.00001", "1000", 110_000, 50),
)


def _instruments(n: int) -> list[tuple[Instrument, int, int]]:
    out = []
    for i in range(n):
        cls, pat, tick, lot, mid, max_lots = _CLASSES[i % len(_CLASSES)]
        inst = Instrument(pat.format(i), cls, tick, lot)
        out.append((inst, mid + i, max_lots))
    return out


class _BookGen:
    """One symbol's evolving book in tick and lot counts (prices never cross the mid)."""

    def __init__(
        self, inst: Instrument, mid: int, max_lots: int, depth: int, rnd: random.Random
    ) -> None:
        self.inst, self.mid, self.max_lots, self.depth, self.rnd = inst, mid, max_lots, depth, rnd
        self.book = OrderBook(inst)
        tick, lot = inst.tick_units, inst.lot_units
        span = int(depth * 1.3)
        bids = [(mid - k) * tick for k in sorted(rnd.sample(range(1, span), depth))]
        asks = [(mid + k) * tick for k in sorted(rnd.sample(range(1, span), depth))]
        self.book.load(
            [(p, rnd.randint(1, max_lots) * lot) for p in bids],
            [(p, rnd.randint(1, max_lots) * lot) for p in asks],
        )

    def _side_changes(self, bid: bool) -> list[tuple[int, int]]:
        rnd, side = self.rnd, self.book.bids if bid else self.book.asks
        tick, lot = self.inst.tick_units, self.inst.lot_units
        changes: dict[int, int] = {}
        for _ in range(rnd.randint(1, 4)):
            n = len(side)
            roll = rnd.random()
            if n > self.depth * 1.1:
                roll = min(roll, 0.79)  # no inserts while too deep
            if n < self.depth * 0.9 and roll < 0.2:
                roll = 0.5  # no removals while too shallow: an update instead
            if roll >= 0.8 or n == 0:  # insert near the top
                k = 1 + int(rnd.expovariate(1 / 8))
                price = (self.mid - k if bid else self.mid + k) * tick
                changes[price] = rnd.randint(1, self.max_lots) * lot
                continue
            i = min(int(rnd.expovariate(1 / 6)), n - 1)
            price = side.top(i + 1)[-1][0]
            changes[price] = 0 if roll < 0.2 else rnd.randint(1, self.max_lots) * lot
        return list(changes.items())

    def delta(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids, asks = self._side_changes(True), self._side_changes(False)
        self.book.apply(bids, asks)
        return bids, asks

    def wire(self, levels: list[tuple[int, int]]) -> list[tuple[str, str]]:
        fp, fs = self.inst.format_price, self.inst.format_size
        return [(fp(p), fs(s)) for p, s in levels]


def generate(spec: CorpusSpec) -> tuple[Snapshots, Frames]:
    """Build the corpus in memory (a few seconds for 400k frames)."""
    rnd = random.Random(spec.seed)
    insts = _instruments(spec.books)
    gens = [_BookGen(inst, mid, lots, spec.depth, rnd) for inst, mid, lots in insts]
    book_ch = [f"orderbook:{g.inst.symbol}" for g in gens]
    ticker_ch = [f"ticker:{g.inst.symbol}" for g in gens[: spec.tickers]]
    trade_ch = [f"trades:{g.inst.symbol}" for g in gens[: spec.trades]]
    channels = book_ch + ticker_ch + trade_ch
    first_seq = {ch: rnd.randint(1_000, 1_000_000) for ch in channels}
    seq = {ch: s - 1 for ch, s in first_seq.items()}
    snapshots: dict[str, bytes] = {}
    for g, ch in zip(gens, book_ch, strict=True):
        bids, asks = g.book.to_lists()
        body = vts.Snapshot(g.inst.symbol, seq[ch], TS_PLACEHOLDER, g.wire(bids), g.wire(asks))
        snapshots[g.inst.symbol] = vts.encode(body)
    snap = Snapshots(
        instruments=[g.inst.to_wire() for g in gens],
        snapshots=snapshots,
        book_channels=book_ch,
        ticker_channels=ticker_ch,
        trade_channels=trade_ch,
        first_seq=first_seq,
    )
    out: list[bytes] = []
    idx: list[int] = []
    offs: list[int] = []
    volume = [0] * len(gens)
    n_books = len(book_ch)
    for _ in range(spec.frames):
        r = rnd.random()
        if r < spec.delta_share or not (ticker_ch or trade_ch):
            ci = rnd.randrange(n_books)
            g = gens[ci]
            bids, asks = g.delta()
            ch = book_ch[ci]
            seq[ch] += 1
            frame: msgspec.Struct = vts.Delta(
                ch, seq[ch], TS_PLACEHOLDER, g.wire(bids), g.wire(asks), g.book.checksum()
            )
        elif r < spec.delta_share + (1 - spec.delta_share) / 2 and ticker_ch:
            ti = rnd.randrange(len(ticker_ch))
            g, ch, ci = gens[ti], ticker_ch[ti], n_books + ti
            seq[ch] += 1
            bb, ba = g.book.best_bid(), g.book.best_ask()
            assert bb is not None and ba is not None
            volume[ti] += g.inst.lot_units * rnd.randint(1, 50)
            frame = vts.Ticker(
                ch,
                seq[ch],
                TS_PLACEHOLDER,
                g.inst.format_price(bb[0]),
                g.inst.format_size(bb[1]),
                g.inst.format_price(ba[0]),
                g.inst.format_size(ba[1]),
                g.inst.format_price(bb[0] if rnd.random() < 0.5 else ba[0]),
                g.inst.format_size(volume[ti]),
            )
        else:
            ti = rnd.randrange(len(trade_ch)) if trade_ch else 0
            g, ch, ci = gens[ti], trade_ch[ti], n_books + len(ticker_ch) + ti
            seq[ch] += 1
            bb, ba = g.book.best_bid(), g.book.best_ask()
            assert bb is not None and ba is not None
            side: Literal["buy", "sell"] = "buy" if rnd.random() < 0.5 else "sell"
            frame = vts.Trade(
                ch,
                seq[ch],
                TS_PLACEHOLDER,
                f"T{seq[ch]}",
                g.inst.format_price(ba[0] if side == "buy" else bb[0]),
                g.inst.format_size(g.inst.lot_units * rnd.randint(1, 20)),
                side,
            )
        data = vts.encode(frame)
        out.append(data)
        idx.append(ci)
        offs.append(data.index(b'"ts":') + 5)
    return snap, Frames(out, idx, offs)


def cache_dir(spec: CorpusSpec) -> Path:
    return Path(tempfile.gettempdir()) / f"tickpipe-bench-{spec.cache_key()}"


def ensure(spec: CorpusSpec) -> Path:
    """Generate the corpus into its cache directory unless it is already there; return it."""
    d = cache_dir(spec)
    if (d / "frames.msgpack").exists() and (d / "snapshots.msgpack").exists():
        return d
    snap, frm = generate(spec)
    d.mkdir(parents=True, exist_ok=True)
    for name, obj in (("snapshots.msgpack", snap), ("frames.msgpack", frm)):
        tmp = d / f"{name}.{os.getpid()}.tmp"
        tmp.write_bytes(msgspec.msgpack.encode(obj))
        tmp.replace(d / name)  # atomic: a concurrent reader never sees half a file
    return d


def load_snapshots(d: Path) -> Snapshots:
    return msgspec.msgpack.decode((d / "snapshots.msgpack").read_bytes(), type=Snapshots)


def load_frames(d: Path) -> Frames:
    return msgspec.msgpack.decode((d / "frames.msgpack").read_bytes(), type=Frames)


def verify(d: Path, limit: int = 20_000) -> int:
    """Replay the first ``limit`` frames into core books and check seqs and checksums.

    Returns the number of deltas checked; raises AssertionError on the first mismatch. Used by
    the smoke test so a generator bug cannot silently make every row resync.
    """
    snap, frm = load_snapshots(d), load_frames(d)
    insts = {i["symbol"]: Instrument.from_wire(dict(i)) for i in snap.instruments}
    books: dict[str, OrderBook] = {}
    last: dict[str, int] = {}
    for sym, body in snap.snapshots.items():
        s = vts.decode_snapshot(body)
        b = OrderBook(insts[sym])
        inst = insts[sym]
        b.load(
            vts.parse_levels(s.bids, inst, sym, "bids"),
            vts.parse_levels(s.asks, inst, sym, "asks"),
        )
        books[f"orderbook:{sym}"] = b
        last[f"orderbook:{sym}"] = s.seq
    for ch in snap.ticker_channels + snap.trade_channels:
        last[ch] = snap.first_seq[ch] - 1
    checked = 0
    for data in frm.frames[:limit]:
        f = vts.decode_server_frame(data)
        assert isinstance(f, vts.Delta | vts.Ticker | vts.Trade)
        assert f.seq == last[f.channel] + 1, (f.channel, f.seq, last[f.channel])
        last[f.channel] = f.seq
        if isinstance(f, vts.Delta):
            b = books[f.channel]
            inst = b.instrument
            b.apply(
                vts.parse_levels(f.bids, inst, f.channel, "bids"),
                vts.parse_levels(f.asks, inst, f.channel, "asks"),
            )
            assert f.checksum == zlib.crc32(b.checksum_string().encode()), f.channel
            assert not b.is_crossed(), f.channel
            checked += 1
    return checked


if __name__ == "__main__":
    import sys
    import time

    t = time.perf_counter()
    spec = CorpusSpec(frames=int(sys.argv[1]) if len(sys.argv) > 1 else CorpusSpec.frames)
    path = ensure(spec)
    print(f"corpus at {path} in {time.perf_counter() - t:.1f}s; verified {verify(path)} deltas")
