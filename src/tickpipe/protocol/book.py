"""An exact limit order book: integer price and size units, sorted per side, CRC-32 checksum.

Each side is a ``dict`` price -> size plus a sorted ``list`` of its prices maintained with
``bisect``. Updates cluster near the top of the book and books are hundreds to a few thousand
levels deep: for that shape a flat list insert or delete is one C ``memmove`` and beats a tree
built of Python objects (see ``benchmarks/bench_book.py`` and ``benchmarks/RESULTS-core.md`` for
the figures that decided it). Both price lists are ascending: asks read from the start, bids
from the end. ``levels`` and ``prices`` are read-only outside :meth:`BookSide.set`,
:meth:`OrderBook.load` and ``clear``.

The checksum is VTS/1 section 5: CRC-32 of the top 10 levels as ``price:size`` fixed-point
strings, interleaved bid 0, ask 0, bid 1, ask 1, ... Formatting 20 levels costs ~20 µs a delta,
so two caches keep it to a few µs, both exact and both bounded by the book itself:

- each side remembers whether a change since the last checksum touched its top 10 (a level
  deeper than the 10th cannot change the checksum string); if neither did, the last CRC stands;
- each side keeps the formatted ``"price:size"`` text of the levels it has formatted, dropped
  whenever that level changes, so a rebuild formats only the levels that changed.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Iterable

from tickpipe.protocol.instruments import Instrument, format_units

Level = tuple[int, int]

CHECKSUM_DEPTH = 10


class BookSide:
    """One side of a book. ``descending`` is True for bids (best = highest price).

    ``price_decimals``/``size_decimals`` are used only to format the checksum text.
    """

    __slots__ = (
        "_text",
        "descending",
        "levels",
        "price_decimals",
        "prices",
        "size_decimals",
        "top_changed",
    )

    def __init__(self, descending: bool, price_decimals: int = 0, size_decimals: int = 0) -> None:
        self.descending = descending
        self.price_decimals = price_decimals
        self.size_decimals = size_decimals
        self.levels: dict[int, int] = {}
        self.prices: list[int] = []  # ascending
        self.top_changed = True  # a change touched the top CHECKSUM_DEPTH since it was cleared
        self._text: dict[int, str] = {}  # price -> "price:size" of a level as it is now

    def __len__(self) -> int:
        return len(self.prices)

    def set(self, price: int, size: int) -> None:
        """Set the total size at ``price``; size 0 removes the level (absent: no-op)."""
        levels = self.levels
        prices = self.prices
        n = len(prices)
        if n <= CHECKSUM_DEPTH or (
            price >= prices[n - CHECKSUM_DEPTH]
            if self.descending
            else price <= prices[CHECKSUM_DEPTH - 1]
        ):
            self.top_changed = True
        if size:
            if price not in levels:
                prices.insert(bisect_left(prices, price), price)
            elif levels[price] == size:
                return
            levels[price] = size
        elif price in levels:
            del levels[price]
            del prices[bisect_left(prices, price)]
        else:
            return
        self._text.pop(price, None)

    def clear(self) -> None:
        self.levels.clear()
        self.prices.clear()
        self._text.clear()
        self.top_changed = True

    def replace(self, levels: Iterable[Level]) -> None:
        """Replace the whole side (a snapshot). Zero sizes are skipped; last duplicate wins."""
        book = {p: s for p, s in levels}
        self.levels = {p: s for p, s in book.items() if s}
        self.prices = sorted(self.levels)
        self._text = {}
        self.top_changed = True

    def best(self) -> Level | None:
        if not self.prices:
            return None
        p = self.prices[-1] if self.descending else self.prices[0]
        return p, self.levels[p]

    def top_prices(self, n: int) -> list[int]:
        """Prices of the best ``n`` levels, best first."""
        prices = self.prices
        if n <= 0:
            return []
        if self.descending:
            return prices[: -n - 1 : -1] if n < len(prices) else prices[::-1]
        return prices[:n]

    def top(self, n: int) -> list[Level]:
        levels = self.levels
        return [(p, levels[p]) for p in self.top_prices(n)]

    def size_at(self, price: int) -> int:
        return self.levels.get(price, 0)

    def level_texts(self, n: int) -> list[str]:
        """``"price:size"`` fixed-point texts of the best ``n`` levels (cached per level)."""
        text = self._text
        levels = self.levels
        pd, sd = self.price_decimals, self.size_decimals
        out = []
        for p in self.top_prices(n):
            t = text.get(p)
            if t is None:
                t = text[p] = f"{format_units(p, pd)}:{format_units(levels[p], sd)}"
            out.append(t)
        return out


class OrderBook:
    """A local order book in integer units of ``instrument``'s decimals."""

    __slots__ = ("_crc", "asks", "bids", "instrument")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        pd, sd = instrument.price_decimals, instrument.size_decimals
        self.bids = BookSide(descending=True, price_decimals=pd, size_decimals=sd)
        self.asks = BookSide(descending=False, price_decimals=pd, size_decimals=sd)
        self._crc = 0

    def __len__(self) -> int:
        """Number of levels, both sides."""
        return len(self.bids) + len(self.asks)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def load(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace the whole book (a snapshot). Zero sizes are skipped."""
        self.bids.replace(bids)
        self.asks.replace(asks)

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
        """The text VTS/1 section 5 takes the CRC-32 of: ``bid0:ask0:bid1:ask1:...``."""
        bids = self.bids.level_texts(depth)
        asks = self.asks.level_texts(depth)
        n = min(len(bids), len(asks))
        parts: list[str] = [""] * (2 * n)
        parts[0::2] = bids[:n]
        parts[1::2] = asks[:n]
        parts += bids[n:] or asks[n:]  # the longer side's tail, one side at a time
        return ":".join(parts)

    def checksum(self) -> int:
        """VTS/1 section 5 CRC-32 (unsigned) of the top 10 levels; recomputed only when a change
        since the last call touched a top-10 level."""
        bids, asks = self.bids, self.asks
        if bids.top_changed or asks.top_changed:
            self._crc = zlib.crc32(self.checksum_string().encode())
            bids.top_changed = asks.top_changed = False
        return self._crc

    def to_lists(self, depth: int | None = None) -> tuple[list[Level], list[Level]]:
        """(bids, asks) best first; the whole book when ``depth`` is None."""
        nb = len(self.bids) if depth is None else depth
        na = len(self.asks) if depth is None else depth
        return self.bids.top(nb), self.asks.top(na)

    def __repr__(self) -> str:
        bids, asks = self.to_lists(5)
        more = "" if len(self) <= len(bids) + len(asks) else f", {len(self)} levels in all"
        return f"OrderBook({self.instrument.symbol}, bids={bids}, asks={asks}{more})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrderBook):
            return NotImplemented
        return self.bids.levels == other.bids.levels and self.asks.levels == other.asks.levels

    __hash__ = None  # type: ignore[assignment]
