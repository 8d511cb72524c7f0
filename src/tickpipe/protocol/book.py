"""An exact limit order book: integer price and size units, sorted per side, CRC-32 checksum.

Each side is a ``dict`` price -> size plus a sorted ``list`` of its prices maintained with
``bisect``. Updates cluster near the top of the book and books are hundreds to a few thousand
levels deep: for that shape a flat list insert or delete is one C ``memmove`` and beats a tree
built of Python objects (see ``benchmarks/bench_book.py`` and ``benchmarks/RESULTS-core.md`` for
the figures that decided it). Both price lists are ascending: asks read from the start, bids
from the end. ``levels`` and ``prices`` are read-only outside :meth:`BookSide.set`,
:meth:`OrderBook.load` and ``clear``.

The checksum is VTS/1 section 5: CRC-32 of the top 10 levels as ``price:size`` fixed-point
strings, interleaved bid 0, ask 0, bid 1, ask 1, ... Formatting 20 levels costs ~20 µs a delta;
this module keeps it to ~2-3 µs with state that is exact and bounded by the book itself:

- each side remembers whether a change since the last checksum touched its top 10 (a level
  deeper than the 10th cannot change the checksum string); if neither did, the last CRC stands;
- each side keeps the list of its top-10 texts (``top_texts``) up to date *in place* while a
  delta is applied: the rank of a changed level falls out of the ``bisect`` the update does
  anyway, so a change at rank r is one list insert, delete or store, and only the changed level
  is formatted (a side rebuilt from scratch per delta cost ~3 µs in the benchmark corpus: 150
  books do not stay in the CPU cache). The list is rebuilt whole only after ``load``/``clear``,
  and maintained only once a checksum was asked for (a book nobody checksums formats nothing);
- no per-level text cache: keeping one in step (a dict store and pop per change) cost more
  (~1 µs a delta) than it saved;
- formatting goes straight through :func:`format_units`: bounded units -> text caches were
  tried and did not pay in the whole loop (they do in a micro-benchmark: ~0.03 against 0.26 µs).

That is the pure-Python reference. When the compiled hot path is built (``tickpipe.hotpath``),
:meth:`BookSide.apply` runs ``_hot.side_apply`` on the same ``dict`` and sorted ``list`` (so
every reader of ``levels``/``prices`` is unchanged), no ``top_texts`` are kept, and
:meth:`OrderBook.checksum` formats the top 10 and takes their CRC-32 in C when a top level
changed (``_hot.top_crc``, ~0.5 µs). ``tests/protocol/test_hot_differential.py`` holds the two
to the same books and checksums.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from tickpipe import hotpath
from tickpipe.protocol.instruments import Instrument, format_units

_hot = hotpath.hot  # None: the pure path (hotpath.pure() swaps it in tests)

Level = tuple[int, int]

CHECKSUM_DEPTH = 10


class BookSide:
    """One side of a book. ``descending`` is True for bids (best = highest price).

    ``price_decimals``/``size_decimals`` are used only to format the checksum text.
    """

    __slots__ = (
        "descending",
        "levels",
        "price_decimals",
        "prices",
        "size_decimals",
        "top_changed",
        "top_texts",
        "top_valid",
    )

    def __init__(self, descending: bool, price_decimals: int = 0, size_decimals: int = 0) -> None:
        self.descending = descending
        self.price_decimals = price_decimals
        self.size_decimals = size_decimals
        self.levels: dict[int, int] = {}
        self.prices: list[int] = []  # ascending
        self.top_changed = True  # a change touched the top CHECKSUM_DEPTH since it was cleared
        # level_texts(CHECKSUM_DEPTH), kept in step by apply() while top_valid is True
        self.top_texts: list[str] = []
        self.top_valid = False

    def __len__(self) -> int:
        return len(self.prices)

    def set(self, price: int, size: int) -> None:
        """Set the total size at ``price``; size 0 removes the level (absent: no-op)."""
        self.apply(((price, size),))

    def apply(self, updates: Iterable[Level]) -> None:
        """Set each ``(price, size)`` in order, as :meth:`set` does: one loop for a whole delta
        side, no call per level. A change at rank ``r`` < 10 (0 = best) also updates
        ``top_texts[r]`` when it is kept (see the module docstring)."""
        if _hot is not None:
            try:
                if _hot.side_apply(self.levels, self.prices, self.descending, updates):
                    self.top_changed = True
            except BaseException:
                # the updates before a bad one stay applied (as in the loop below) but the
                # error cannot carry side_apply's flag: assume the top changed, or checksum()
                # would keep the CRC of the book before them
                self.top_changed = True
                raise
            return
        levels = self.levels
        prices = self.prices
        desc = self.descending
        tt = self.top_texts if self.top_valid else None
        for price, size in updates:
            n = len(prices)
            if size:
                old = levels.get(price)
                if old == size:
                    continue
                levels[price] = size
                if old is None:
                    i = bisect_left(prices, price)
                    prices.insert(i, price)
                    rank = n - i if desc else i  # among the n + 1 levels now
                    if rank < CHECKSUM_DEPTH:
                        self.top_changed = True
                        if tt is not None:
                            tt.insert(rank, self._level_text(price))
                            if len(tt) > CHECKSUM_DEPTH:
                                tt.pop()
                    continue
                if n <= CHECKSUM_DEPTH or (
                    price >= prices[n - CHECKSUM_DEPTH]
                    if desc
                    else price <= prices[CHECKSUM_DEPTH - 1]
                ):  # a new size in the top 10
                    self.top_changed = True
                    if tt is not None:
                        i = bisect_left(prices, price)
                        tt[n - 1 - i if desc else i] = self._level_text(price)
            elif price in levels:
                del levels[price]
                i = bisect_left(prices, price)
                del prices[i]
                rank = n - 1 - i if desc else i
                if rank < CHECKSUM_DEPTH:
                    self.top_changed = True
                    if tt is not None:
                        del tt[rank]
                        if n > CHECKSUM_DEPTH:  # the old 11th level is now the 10th
                            tenth = (
                                prices[n - 1 - CHECKSUM_DEPTH]
                                if desc
                                else prices[CHECKSUM_DEPTH - 1]
                            )
                            tt.append(self._level_text(tenth))

    def clear(self) -> None:
        self.levels.clear()
        self.prices.clear()
        self.top_changed = True
        self.top_valid = False

    def replace(self, levels: Iterable[Level]) -> None:
        """Replace the whole side (a snapshot). Zero sizes are skipped; last duplicate wins."""
        book = {p: s for p, s in levels}
        self.levels = {p: s for p, s in book.items() if s}
        self.prices = sorted(self.levels)
        self.top_changed = True
        self.top_valid = False

    def truncate(self, depth: int) -> None:
        """Keep only the best ``depth`` levels (a venue that maintains a book of fixed depth,
        Kraken: levels pushed out of it are not sent again, so they must go)."""
        prices = self.prices
        extra = len(prices) - depth
        if extra <= 0:
            return
        if self.descending:  # bids: the worst are the lowest prices, at the front
            drop = prices[:extra]
            del prices[:extra]
        else:
            drop = prices[depth:]
            del prices[depth:]
        levels = self.levels
        for price in drop:
            del levels[price]
        if depth < CHECKSUM_DEPTH:
            self.top_changed = True
            self.top_valid = False

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
        """``"price:size"`` fixed-point texts of the best ``n`` levels."""
        return [self._level_text(p) for p in self.top_prices(n)]

    def _level_text(self, price: int) -> str:
        size = self.levels[price]
        return (
            f"{format_units(price, self.price_decimals)}:{format_units(size, self.size_decimals)}"
        )


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
        self.bids.apply(bids)
        self.asks.apply(asks)

    def apply_texts(
        self, raw_bids: Sequence[Sequence[str]], raw_asks: Sequence[Sequence[str]]
    ) -> bool:
        """Parse and apply one delta whose levels are still the wire's ``[price, size]`` texts,
        in one compiled call (``_hot.apply_texts``). False, with the book untouched, when it
        cannot: the pure path runs, or a level is not one the compiled parser takes (malformed,
        off the grid, beyond 63 bits): the caller then parses with ``frames.parse_levels``
        (whose error names the level) and calls :meth:`apply`."""
        changed = self._apply_texts(raw_bids, raw_asks, False)
        if changed is None:
            return False
        if changed & 1:
            self.bids.top_changed = True
        if changed & 2:
            self.asks.top_changed = True
        return True

    def apply_texts_checksum(
        self, raw_bids: Sequence[Sequence[str]], raw_asks: Sequence[Sequence[str]]
    ) -> int | None:
        """:meth:`apply_texts` then :meth:`checksum`, in the same compiled call: the VTS/1
        CRC-32 of the book after the delta, or None (the book untouched) when declined."""
        crc = self._apply_texts(raw_bids, raw_asks, True)
        if crc is None:
            return None
        bids, asks = self.bids, self.asks
        if crc >= 0:
            bids.top_changed = asks.top_changed = False
            self._crc = crc
            return crc
        if crc == -1:  # no top-10 level changed since the last CRC
            return self._crc
        bids.top_changed = asks.top_changed = True  # -2: the CRC text was declined
        return self.checksum()

    def _apply_texts(
        self, raw_bids: Sequence[Sequence[str]], raw_asks: Sequence[Sequence[str]], crc: bool
    ) -> int | None:
        """``_hot.apply_texts`` on this book: None when the pure path runs or it declined."""
        if _hot is None:
            return None
        bids, asks, inst = self.bids, self.asks, self.instrument
        try:
            out: int | None = _hot.apply_texts(
                bids.levels,
                bids.prices,
                asks.levels,
                asks.prices,
                raw_bids,
                raw_asks,
                inst.price_decimals,
                inst.size_decimals,
                inst.tick_units,
                inst.lot_units,
                crc and (bids.top_changed or asks.top_changed),
                crc,
            )
        except BaseException:  # (MemoryError) part applied: the last CRC cannot stand
            bids.top_changed = asks.top_changed = True
            raise
        return out

    def truncate(self, depth: int) -> None:
        """Keep the best ``depth`` levels of each side."""
        self.bids.truncate(depth)
        self.asks.truncate(depth)

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
        return _interleave(self.bids.level_texts(depth), self.asks.level_texts(depth))

    def checksum(self) -> int:
        """VTS/1 section 5 CRC-32 (unsigned) of the top 10 levels; recomputed only when a change
        since the last call touched a top-10 level, from the sides' ``top_texts``."""
        bids, asks = self.bids, self.asks
        if _hot is not None:
            if bids.top_changed or asks.top_changed:
                crc = _hot.top_crc(
                    bids.levels,
                    bids.prices,
                    asks.levels,
                    asks.prices,
                    bids.price_decimals,
                    bids.size_decimals,
                    CHECKSUM_DEPTH,
                    0,  # _hot.STYLE_VTS
                )
                if crc is None:  # declined (units beyond 64 bits): the reference text
                    crc = zlib.crc32(self.checksum_string().encode())
                bids.top_changed = asks.top_changed = False
                self._crc = crc
            return self._crc
        if bids.top_changed or asks.top_changed:
            for side in (bids, asks):
                if not side.top_valid:  # after load/clear: rebuild once, then kept in step
                    side.top_texts = side.level_texts(CHECKSUM_DEPTH)
                    side.top_valid = True
                side.top_changed = False
            self._crc = zlib.crc32(_interleave(bids.top_texts, asks.top_texts).encode())
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


def _interleave(bids: list[str], asks: list[str]) -> str:
    """``bid0:ask0:bid1:ask1:...`` then the longer side's tail."""
    if len(bids) == len(asks):  # the usual case: 0.85 -> 0.39 µs for 10 + 10
        parts = bids + asks
        parts[0::2] = bids
        parts[1::2] = asks
        return ":".join(parts)
    n = min(len(bids), len(asks))
    parts = [""] * (2 * n)
    parts[0::2] = bids[:n]
    parts[1::2] = asks[:n]
    parts += bids[n:] or asks[n:]  # the longer side's tail, one side at a time
    return ":".join(parts)
