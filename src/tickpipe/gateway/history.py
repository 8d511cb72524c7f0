"""The true book of a channel at a recent seq: the live book plus a ring of inverse deltas.

For every delta it publishes, the gateway records the sizes the changed levels had *before*
(an inverse delta). The book at seq ``N`` is the live book with the inverses of ``N+1 ..
latest`` applied newest first. Cost: one small tuple per delta, ``max_deltas`` of them at most
(default 10,000: about 1-2 MiB an instrument); a lookup costs a copy of the book plus the walk
back, so it serves tests and the admin API, not the hot path.

Changes not yet published (a silenced channel merges its deltas until it speaks again) are kept
as a pending inverse, undone first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from tickpipe.errors import TickpipeError
from tickpipe.protocol.book import Level, OrderBook

Inverse = tuple[tuple[Level, ...], tuple[Level, ...]]


class SeqUnknown(TickpipeError):
    """The seq asked for was not published yet (``too_old`` False) or is past the ring."""

    def __init__(self, message: str, *, too_old: bool) -> None:
        self.too_old = too_old
        super().__init__(message)


class BookHistory:
    """Inverse deltas of one orderbook channel; see the module docstring."""

    def __init__(self, book: OrderBook, max_deltas: int = 10_000) -> None:
        self.book = book
        self.seq = 0  # last published seq
        self._ring: deque[tuple[int, Inverse]] = deque(maxlen=max_deltas)
        self._pending_bids: dict[int, int] = {}
        self._pending_asks: dict[int, int] = {}

    def remember_prior(self, prior_bids: dict[int, int], prior_asks: dict[int, int]) -> None:
        """Record sizes from before a change already made (first one per price wins)."""
        for price, size in prior_bids.items():
            self._pending_bids.setdefault(price, size)
        for price, size in prior_asks.items():
            self._pending_asks.setdefault(price, size)

    def published(self, seq: int) -> None:
        """The pending changes went out as the delta with this seq."""
        inv = (tuple(self._pending_bids.items()), tuple(self._pending_asks.items()))
        self._ring.append((seq, inv))
        self._pending_bids = {}
        self._pending_asks = {}
        self.seq = seq

    @property
    def oldest_seq(self) -> int:
        """The oldest seq whose book can still be rebuilt."""
        if not self._ring:
            return self.seq
        return self._ring[0][0] - 1

    def book_at(self, seq: int | None = None) -> OrderBook:
        """A copy of the book as published at ``seq`` (default: the last published seq)."""
        if seq is None:
            seq = self.seq
        if seq > self.seq:
            raise SeqUnknown(f"seq {seq} not published yet (latest {self.seq})", too_old=False)
        if seq < self.oldest_seq or seq < 0:
            raise SeqUnknown(
                f"seq {seq} is older than the history kept (oldest {self.oldest_seq})",
                too_old=True,
            )
        out = OrderBook(self.book.instrument)
        bids = dict(self.book.bids.levels)
        asks = dict(self.book.asks.levels)
        _undo(bids, self._pending_bids.items())
        _undo(asks, self._pending_asks.items())
        for s, (ib, ia) in reversed(self._ring):
            if s <= seq:
                break
            _undo(bids, ib)
            _undo(asks, ia)
        out.load(bids.items(), asks.items())
        return out


def _undo(levels: dict[int, int], prior: Iterable[Level]) -> None:
    for price, size in prior:
        if size:
            levels[price] = size
        else:
            levels.pop(price, None)
