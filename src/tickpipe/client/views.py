"""Read-only views of the client's local state for users: books and tickers.

A :class:`BookView` is live: it reads the book as it is now (one event loop, so a read made
without awaiting in between is consistent). Levels come back as ``(Decimal, Decimal)``
tuples, best first. They are returned even when the book is not synced (for display);
gate trading decisions with :meth:`BookView.usable`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from tickpipe.client.dispatch import TopOfBook
from tickpipe.protocol.sync import SyncState

if TYPE_CHECKING:
    from tickpipe.client.channels import BookChannel

Level = tuple[Decimal, Decimal]


class BookView:
    """Health and levels of one ``orderbook:`` channel.

    - ``state``: ``syncing`` (first seed), ``live``, ``resyncing`` (after a gap), ``stale``
      (stream lost, or ``live`` but silent past ``stale_after_s``), ``idle`` (unsubscribed).
    - ``reason``: why it is in that state (``snapshot``, ``seq_gap``, ``checksum``,
      ``heartbeat``, ``disconnected``, ``silent``, ...).
    - ``synced``: True only while the book is known to equal the gateway's at ``seq``. A
      silent book stays synced (quiet is not wrong) but is not :meth:`usable`.
    - ``exact_depth``: None when the book was seeded whole; else the levels a side its
      snapshot carried (``snapshot_depth``; Binance: 1000 unless set): only that many best
      levels are known exact. Deeper levels come from updates alone, and a level that lay
      deeper at seeding and has not changed since is missing, also once the price has moved
      into it (as the venues document for their own snapshots).
    """

    __slots__ = ("_bc", "_clock", "_connected", "exact_depth")

    def __init__(
        self,
        bc: BookChannel,
        clock: Callable[[], float],
        connected: Callable[[], bool],
        exact_depth: int | None = None,
    ) -> None:
        self._bc = bc
        self._clock = clock
        self._connected = connected
        self.exact_depth = exact_depth

    @property
    def channel(self) -> str:
        return self._bc.channel

    @property
    def symbol(self) -> str:
        return self._bc.symbol

    @property
    def synced(self) -> bool:
        return self._bc.sync.state is SyncState.LIVE

    @property
    def seq(self) -> int | None:
        """Seq of the last delta reflected in the book (None while not seeded)."""
        return self._bc.sync.seq

    @property
    def state(self) -> str:
        s = self._bc.sync.state
        if s is SyncState.LIVE and self._bc.silent:
            return "stale"
        return s.value

    @property
    def reason(self) -> str:
        if self._bc.sync.state is SyncState.LIVE and self._bc.silent:
            return "silent"
        return self._bc.reason

    @property
    def silent(self) -> bool:
        return self._bc.silent

    @property
    def age_s(self) -> float | None:
        """Seconds since this book last changed (delta or snapshot); None if never."""
        last = self._bc.last_update
        return None if last is None else self._clock() - last

    def usable(self, max_age_s: float | None = None, levels: int | None = None) -> bool:
        """Synced, not silent, the stream up, (if given) updated within ``max_age_s``, and (if
        given) seeded exact to at least ``levels`` levels a side (see ``exact_depth``)."""
        if not self.synced or self._bc.silent or not self._connected():
            return False
        if levels is not None and self.exact_depth is not None and levels > self.exact_depth:
            return False
        if max_age_s is not None:
            age = self.age_s
            return age is not None and age <= max_age_s
        return True

    def bids(self, n: int | None = 10) -> list[Level]:
        """Top ``n`` bids (all when None) as (price, size) Decimals, best first."""
        return self._levels(self._bc.sync.book.bids.top(n if n is not None else 1 << 30))

    def asks(self, n: int | None = 10) -> list[Level]:
        """Top ``n`` asks (all when None) as (price, size) Decimals, best first."""
        return self._levels(self._bc.sync.book.asks.top(n if n is not None else 1 << 30))

    def text_levels(self, n: int | None = 10) -> tuple[list[list[str]], list[list[str]]]:
        """(bids, asks) as ``[[price, size], ...]`` fixed-point strings, best first."""
        book = self._bc.sync.book
        inst = book.instrument
        depth = n if n is not None else 1 << 30
        fp, fs = inst.format_price, inst.format_size
        return (
            [[fp(p), fs(s)] for p, s in book.bids.top(depth)],
            [[fp(p), fs(s)] for p, s in book.asks.top(depth)],
        )

    def best_bid(self) -> Level | None:
        b = self._bc.sync.book.best_bid()
        return None if b is None else self._level(b)

    def best_ask(self) -> Level | None:
        a = self._bc.sync.book.best_ask()
        return None if a is None else self._level(a)

    def top_of_book(self) -> TopOfBook:
        return TopOfBook(self.channel, self.symbol, self.seq or 0, self.best_bid(), self.best_ask())

    def _level(self, lv: tuple[int, int]) -> Level:
        inst = self._bc.sync.book.instrument
        return inst.price_decimal(lv[0]), inst.size_decimal(lv[1])

    def _levels(self, lvs: list[tuple[int, int]]) -> list[Level]:
        inst = self._bc.sync.book.instrument
        pd, sd = inst.price_decimal, inst.size_decimal
        return [(pd(p), sd(s)) for p, s in lvs]

    def __repr__(self) -> str:
        return f"<BookView {self.channel} {self.state} seq={self.seq} reason={self.reason}>"
