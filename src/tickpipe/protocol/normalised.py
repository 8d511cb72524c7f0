"""Venue-neutral market data: what every venue codec decodes its frames into. Pure: no I/O.

The first layer of the real-venues work (issue 14): each venue's codec
(``tickpipe/venues/<name>/codec.py``) turns that venue's frames and REST bodies into these
values, so that one book, one sync machine and one client shell serve every venue. Levels stay
the venue's decimal TEXT here (``RawLevel``, as received): converting to integer units needs the
instrument's grid (``protocol.instruments``), and some checksums (OKX) are defined on the text.

How a book stays exact differs per venue, and is described by data, not code paths:

- :class:`Continuity` — how an update proves it follows the previous one: ``SEQ``
  (``last_id == previous last_id + 1`` per book: VTS/1, Bybit ``u``); ``CONNECTION`` (ids count
  every message of the connection, Coinbase ``sequence_num``: a skip means something was lost
  on the connection, of unknown channel, so every book on it re-seeds); ``RANGE`` (Binance
  spot: an update covers ``first_id..last_id``; the first one after a snapshot at ``S`` must
  have ``first_id <= S + 1 <= last_id``, then ``first_id == previous last_id + 1``); ``LINK``
  (``prev_id == previous last_id``: Binance USD-M ``pu``, OKX ``prevSeqId``); ``NONE`` (no ids:
  Kraken; integrity rests on the checksum alone).
- :class:`Seeding` — ``REST`` (snapshot fetched over HTTP, deltas buffered meanwhile: Binance,
  VTS/1) or ``IN_BAND`` (the venue sends a snapshot on the stream after subscribing: OKX, Bybit,
  Kraken, Coinbase; re-seeding means re-subscribing that one channel).
- ``checksum``: the venue's integrity value for the book AFTER the update (or snapshot), checked
  by the venue's own function (``venues/<name>/checksum.py``), or None.

The values are frozen ``msgspec.Struct``s, built once per frame by every codec: 0.09 µs for a
``BookDelta`` against 1.26 µs as a frozen slotted dataclass (whose ``__init__`` sets each field
through ``object.__setattr__``), ~15 % of a Binance frame's CPU. Copy one with changes with
``msgspec.structs.replace``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

import msgspec

RawLevel = tuple[str, str]  # (price, size) as the venue wrote them; size "0" (any zeros) removes


class Continuity(StrEnum):
    SEQ = "seq"
    CONNECTION = "connection"
    RANGE = "range"
    LINK = "link"
    NONE = "none"


class Seeding(StrEnum):
    REST = "rest"
    IN_BAND = "in_band"


class BookSnapshot(msgspec.Struct, frozen=True, gc=False):
    """A whole book (or its top ``depth`` levels) at update id ``last_id`` (None: the venue
    gives none). Levels best first."""

    symbol: str
    last_id: int | None
    bids: list[RawLevel]
    asks: list[RawLevel]
    checksum: int | None = None
    ts_ns: int | None = None


class BookDelta(msgspec.Struct, frozen=True, gc=False):
    """Changed levels of one book. ``first_id``/``last_id``/``prev_id`` are set as the venue's
    :class:`Continuity` needs (others None). ``checksum`` verifies the book after applying."""

    symbol: str
    bids: list[RawLevel]
    asks: list[RawLevel]
    last_id: int | None = None
    first_id: int | None = None
    prev_id: int | None = None
    checksum: int | None = None
    ts_ns: int | None = None


class TradeEvent(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    trade_id: str
    price: str
    size: str
    side: Literal["buy", "sell"] | None  # the taker's side; None where the venue omits it
    ts_ns: int | None = None


class TickerEvent(msgspec.Struct, frozen=True, gc=False):
    """Best bid/ask (and last/volume where the venue sends them). Text as received."""

    symbol: str
    bid: str | None
    bid_size: str | None
    ask: str | None
    ask_size: str | None
    last: str | None = None
    volume: str | None = None
    ts_ns: int | None = None


class BookGap(msgspec.Struct, frozen=True, gc=False):
    """Updates of this book were lost upstream of the codec (a bus consumer saw the
    collector's per-book sequence skip from ``expected`` to ``got``): re-seed it."""

    symbol: str
    expected: int | None
    got: int | None


class BookUnsynced(msgspec.Struct, frozen=True, gc=False):
    """The source of this book says it is no longer exact (a bus collector's book went stale
    or is re-seeding, ``reason`` its own): not synced until the source sends a whole book."""

    symbol: str
    reason: str


NormalisedEvent = BookSnapshot | BookDelta | TradeEvent | TickerEvent
