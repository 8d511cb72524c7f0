"""A tap on the client's books: what a collector (``tickpipe publish``) republishes.

``Channels.tap`` (default None) is told, on the read path and in order, everything a consumer
needs to rebuild each book exactly: a book became exact (seeded, or reset by the venue), an
update was applied to an exact book (its levels as the venue wrote them), a book stopped being
exact; and every ticker and trade the client accepted. A tap must be quick and must not raise
(it runs inside the frame handler): the bus collector only encodes and queues. With no tap the
read path pays one ``is None`` test per applied update.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tickpipe.client.dispatch import TickerUpdate, TradeUpdate
    from tickpipe.protocol import frames
    from tickpipe.protocol.sync import BookSync, SyncState

RawLevel = tuple[str, str]


class BookTap(Protocol):
    def book_synced(self, channel: str, sync: BookSync, ts_ns: int | None) -> None:
        """``sync.book`` is exact at the venue's ``sync.seq`` (a seed, a re-seed, a venue
        reset): every earlier update of this book is superseded."""

    def book_applied(
        self,
        channel: str,
        bids: list[RawLevel],
        asks: list[RawLevel],
        venue_id: int | None,
        ts_ns: int | None,
    ) -> None:
        """An update was applied to the exact book (and verified where the venue checks)."""

    def book_lost(self, channel: str, state: SyncState, reason: str) -> None:
        """The book is no longer exact (``state`` its new state, ``reason`` why)."""

    def ticker(self, item: TickerUpdate | frames.Ticker) -> None: ...

    def trade(self, item: TradeUpdate | frames.Trade) -> None: ...
