"""Trivially correct models for the core's tests: a plain-dict book and a true delta stream.

Written without tickpipe.protocol.book so that a bug there cannot hide in the model too.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from decimal import Decimal

from tickpipe.protocol.instruments import Instrument

Level = tuple[int, int]


def fixed(units: int, decimals: int) -> str:
    return f"{Decimal(units).scaleb(-decimals):.{decimals}f}"


def ref_checksum(inst: Instrument, bids: dict[int, int], asks: dict[int, int]) -> int:
    """VTS/1 section 5 CRC-32 from plain dicts."""
    top_b = sorted(bids, reverse=True)[:10]
    top_a = sorted(asks)[:10]
    parts = []
    for i in range(10):
        if i < len(top_b):
            p = top_b[i]
            parts.append(f"{fixed(p, inst.price_decimals)}:{fixed(bids[p], inst.size_decimals)}")
        if i < len(top_a):
            p = top_a[i]
            parts.append(f"{fixed(p, inst.price_decimals)}:{fixed(asks[p], inst.size_decimals)}")
    return zlib.crc32(":".join(parts).encode("utf-8"))


@dataclass(frozen=True)
class TrueDelta:
    seq: int
    bids: list[Level]
    asks: list[Level]
    checksum: int


@dataclass
class TrueStream:
    """The gateway's truth: a small random market and the book after every seq.

    ``book_at(seq)`` is the (bids, asks) dicts after delta ``seq``; seq ``start_seq`` is the
    initial book. Prices are multiples of the tick in ``[1, width]`` ticks; bids below
    ``width // 2``, asks above, so the book never crosses.
    """

    instrument: Instrument
    rng: random.Random
    width: int = 24
    start_seq: int = 100
    deltas: dict[int, TrueDelta] = field(default_factory=dict)
    books: dict[int, tuple[dict[int, int], dict[int, int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tick, lot = self.instrument.tick_units, self.instrument.lot_units
        half = self.width // 2
        bids = {k * tick: self.rng.randint(1, 5) * lot for k in range(1, half + 1)
                if self.rng.random() < 0.7}  # fmt: skip
        asks = {k * tick: self.rng.randint(1, 5) * lot for k in range(half + 1, self.width + 1)
                if self.rng.random() < 0.7}  # fmt: skip
        self.books[self.start_seq] = (bids, asks)
        self.seq = self.start_seq

    def book_at(self, seq: int) -> tuple[dict[int, int], dict[int, int]]:
        return self.books[seq]

    def advance(self) -> TrueDelta:
        """The gateway's next delta: 1-4 levels, sizes 0 (remove) to 5 lots."""
        tick, lot = self.instrument.tick_units, self.instrument.lot_units
        half = self.width // 2
        bids, asks = (dict(x) for x in self.books[self.seq])
        d_b: list[Level] = []
        d_a: list[Level] = []
        for _ in range(self.rng.randint(1, 4)):
            is_bid = self.rng.random() < 0.5
            k = self.rng.randint(1, half) if is_bid else self.rng.randint(half + 1, self.width)
            size = self.rng.choice([0, 0, 1, 2, 3, 5]) * lot
            side = bids if is_bid else asks
            if size:
                side[k * tick] = size
            else:
                side.pop(k * tick, None)
            (d_b if is_bid else d_a).append((k * tick, size))
        self.seq += 1
        self.books[self.seq] = (bids, asks)
        d = TrueDelta(self.seq, d_b, d_a, ref_checksum(self.instrument, bids, asks))
        self.deltas[self.seq] = d
        return d

    def snapshot(self, seq: int) -> tuple[int, list[Level], list[Level]]:
        """A REST snapshot at ``seq``: levels best first, as the gateway sends them."""
        bids, asks = self.books[seq]
        return (
            seq,
            sorted(bids.items(), key=lambda kv: -kv[0]),
            sorted(asks.items()),
        )
