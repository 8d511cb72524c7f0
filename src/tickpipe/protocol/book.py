"""An exact limit order book: integer price and size units, sorted per side, CRC-32 checksum.

Each side is a ``dict`` price -> size plus a sorted ``list`` of its prices maintained with
``bisect``. Updates cluster near the top of the book and books are hundreds to a few thousand
levels deep: for that shape a flat list insert or delete is one C ``memmove`` and beats a tree
built of Python objects (see ``benchmarks/bench_book.py`` for the figures that decided it).
Asks are kept ascending (best first); bids are kept ascending too and read from the end.

The checksum is VTS/1 section 5: CRC-32 of the top 10 levels as ``bid:ask`` pairs of
``price:size`` fixed-point strings, interleaved bid 0, ask 0, bid 1, ask 1, ...
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Iterable

from tickpipe.protocol.instruments import Instrument, format_units

Level = tuple[int, int]

CHECKSUM_DEPTH = 10


class BookSide:
    """One side of a book. ``descending`` is True for bids (best = highest price)."""

    __slots__ = ("descending", "levels", "prices")

    def __init__(self, descending: bool) -> None:
        self.descending = descending
        self.levels: dict[int, int] = {}
        self.prices: list[int] = []  # ascending

    def __len__(self) -> int:
        return len(self.prices)

    def set(self, price: int, size: int) -> None:
        """Set the total size at ``price``; size 0 removes the level (absent: no-op)."""
        levels = self.levels
        if size:
            if price not in levels:
                prices = self.prices
                prices.insert(bisect_left(prices, price), price)
            levels[price] = size
        elif price in levels:
            del levels[price]
            prices = self.prices
            del prices[bisect_left(prices, price)]

    def clear(self) -> None:
        self.levels.clear()
        self.prices.clear()

    def best(self) -> Level | None:
        if not self.prices:
            return None
        p = self.prices[-1] if self.descending else self.prices[0]
        return p, self.levels[p]

    def top_prices(self, n: int) -> list[int]:
        prices = self.prices
        if self.descending:
            return prices[: -n - 1 : -1] if n < len(prices) else prices[::-1]
        return prices[:n]

    def top(self, n: int) -> list[Level]:
        levels = self.levels
        return [(p, levels[p]) for p in self.top_prices(n)]

    def size_at(self, price: int) -> int:
        return self.levels.get(price, 0)


class OrderBook:
    """A local order book in integer units of ``instrument``'s decimals."""

    __slots__ = ("asks", "bids", "instrument")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.bids = BookSide(descending=True)
        self.asks = BookSide(descending=False)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def load(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace the whole book (a snapshot). Zero sizes are skipped."""
        self.clear()
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            book = {p: s for p, s in levels if s}
            side.levels = book
            side.prices = sorted(book)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Apply one delta: each level's size is the new total at that price, 0 removes it."""
        bid_set = self.bids.set
        for p, s in bids:
            bid_set(p, s)
        ask_set = self.asks.set
        for p, s in asks:
            ask_set(p, s)

    def best_bid(self) -> Level | None:
        return self.bids.best()

    def best_ask(self) -> Level | None:
        return self.asks.best()

    def is_crossed(self) -> bool:
        """True when best bid >= best ask (a book that cannot be right)."""
        if not self.bids.prices or not self.asks.prices:
            return False
        return self.bids.prices[-1] >= self.asks.prices[0]

    def checksum_string(self, depth: int = CHECKSUM_DEPTH) -> str:
        inst = self.instrument
        pd, sd = inst.price_decimals, inst.size_decimals
        bids = self.bids.top(depth)
        asks = self.asks.top(depth)
        parts: list[str] = []
        for i in range(max(len(bids), len(asks))):
            if i < len(bids):
                p, s = bids[i]
                parts.append(f"{format_units(p, pd)}:{format_units(s, sd)}")
            if i < len(asks):
                p, s = asks[i]
                parts.append(f"{format_units(p, pd)}:{format_units(s, sd)}")
        return ":".join(parts)

    def checksum(self) -> int:
        """VTS/1 section 5 CRC-32 (unsigned) of the top 10 levels."""
        return zlib.crc32(self.checksum_string().encode())

    def to_lists(self, depth: int | None = None) -> tuple[list[Level], list[Level]]:
        """(bids, asks) best first; the whole book when ``depth`` is None."""
        nb = len(self.bids) if depth is None else depth
        na = len(self.asks) if depth is None else depth
        return self.bids.top(nb), self.asks.top(na)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrderBook):
            return NotImplemented
        return self.bids.levels == other.bids.levels and self.asks.levels == other.asks.levels

    __hash__ = None  # type: ignore[assignment]
