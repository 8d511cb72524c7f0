"""The bus's wire schema, version 1: subjects and messages (msgspec structs). Pure: no I/O.

A collector (``tickpipe publish``) keeps exact books from a venue and publishes what a consumer
needs to rebuild them to NATS JetStream; consumers (``Client(source="nats://...")``, ``tickpipe
watch --source``) rebuild each book with the same sync machine as a direct connection. The
subjects, the stream and the rules are documented in ``docs/bus.md``; this module is their one
definition, shared by both sides.

Subjects (``<v>`` the venue's ``--venue`` name, ``<s>`` the symbol as a subject token, see
:func:`subject_token`)::

    tickpipe.v1.<v>.book.<s>.snap     Snap: a whole book (on every (re)sync, then periodically)
    tickpipe.v1.<v>.book.<s>.delta    Delta: the levels an applied venue update changed
    tickpipe.v1.<v>.book.<s>.state    State: the collector's book stopped being exact
    tickpipe.v1.<v>.trades.<s>        Trade
    tickpipe.v1.<v>.ticker.<s>        Ticker
    tickpipe.v1.<v>.instruments       Instruments: the venue's grid
    tickpipe.v1.<v>.heartbeat         Heartbeat (core NATS, not stored): a live collector

Per book, ``seq`` counts the collector's book messages with no hole: every Delta and every
``reset`` Snap takes the next number; a periodic Snap (``reset`` false) and a State carry the
current one. A consumer that sees a Delta whose seq is not its book's + 1 knows messages were
lost and re-seeds from the latest Snap on the bus (never from the venue). ``epoch`` counts the
collector's (re)syncs of that book; ``collector`` names the collector instance (active-passive
failover changes it, and the new one starts every book with a reset Snap).

Levels are decimal text, exactly as the venue wrote them (deltas) or in the instrument's own
decimals (snapshots); size 0 removes a level. Times are integers of nanoseconds since the epoch
(``ts_ns`` the venue's, ``pub_ns`` the collector's clock when it published).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from tickpipe.errors import FrameError

SCHEMA_VERSION = 1
SUBJECT_ROOT = f"tickpipe.v{SCHEMA_VERSION}"
DEFAULT_STREAM = "TICKPIPE"
DEFAULT_LEADER_BUCKET = "tickpipe_leaders"

RawLevel = tuple[str, str]

_UNSAFE = {ord(c): f"%{ord(c):02X}" for c in ". *>%\t\r\n"}


def subject_token(symbol: str) -> str:
    """``symbol`` as one NATS subject token: ``.``, ``*``, ``>``, ``%`` and whitespace are
    percent-encoded (``BTC/USD`` stays as it is, ``A.B`` becomes ``A%2EB``). ValueError when
    empty."""
    if not symbol:
        raise ValueError("an empty symbol has no subject")
    return symbol.translate(_UNSAFE)


def venue_prefix(venue: str) -> str:
    if not venue or any(c in venue for c in ". *>\t\r\n"):
        raise ValueError(f"venue name {venue!r} cannot be a subject token")
    return f"{SUBJECT_ROOT}.{venue}"


def book_subject(venue: str, symbol: str, kind: Literal["snap", "delta", "state"]) -> str:
    return f"{venue_prefix(venue)}.book.{subject_token(symbol)}.{kind}"


def book_filter(venue: str, symbol: str) -> str:
    """Every message of one book (snap, delta, state), in stream order."""
    return f"{venue_prefix(venue)}.book.{subject_token(symbol)}.*"


def trades_subject(venue: str, symbol: str) -> str:
    return f"{venue_prefix(venue)}.trades.{subject_token(symbol)}"


def ticker_subject(venue: str, symbol: str) -> str:
    return f"{venue_prefix(venue)}.ticker.{subject_token(symbol)}"


def instruments_subject(venue: str) -> str:
    return f"{venue_prefix(venue)}.instruments"


def heartbeat_subject(venue: str) -> str:
    return f"{venue_prefix(venue)}.heartbeat"


def stream_subjects() -> list[str]:
    """What the JetStream stream stores: every subject but the heartbeat (core NATS)."""
    return [
        f"{SUBJECT_ROOT}.*.book.>",
        f"{SUBJECT_ROOT}.*.trades.>",
        f"{SUBJECT_ROOT}.*.ticker.>",
        f"{SUBJECT_ROOT}.*.instruments",
    ]


# -- messages ---------------------------------------------------------------------------------


class Snap(msgspec.Struct, tag="snap", tag_field="t", frozen=True):
    """A whole book at ``seq`` (``reset``: it replaces the book, taking the next seq; else a
    periodic copy at the current seq). ``venue_id``: the venue's update id the book reflects
    (None where the venue has none). ``exact_depth``: levels a side the collector's seeding
    snapshot carried (None: the whole book). ``depth``: the venue keeps its book this deep and
    does not re-send levels pushed out of it (Kraken): a consumer truncates its book to it
    after every Delta, as the collector does (None: never truncated)."""

    channel: str
    collector: str
    epoch: int
    seq: int
    reset: bool
    bids: list[RawLevel]
    asks: list[RawLevel]
    venue_id: int | None = None
    exact_depth: int | None = None
    ts_ns: int | None = None
    pub_ns: int = 0
    depth: int | None = None


class Delta(msgspec.Struct, tag="delta", tag_field="t", frozen=True):
    """The levels one applied venue update changed (``venue_id``: its last update id)."""

    channel: str
    epoch: int
    seq: int
    bids: list[RawLevel]
    asks: list[RawLevel]
    venue_id: int | None = None
    ts_ns: int | None = None
    pub_ns: int = 0


class State(msgspec.Struct, tag="state", tag_field="t", frozen=True):
    """The collector's book is no longer exact: ``state`` (``stale``, ``resyncing``,
    ``syncing``) and the collector's ``reason`` (``heartbeat``, ``seq_gap``, ...). A reset Snap
    ends it."""

    channel: str
    collector: str
    epoch: int
    seq: int
    state: str
    reason: str
    pub_ns: int = 0


class Trade(msgspec.Struct, tag="trade", tag_field="t", frozen=True):
    channel: str
    trade_id: str
    price: str
    size: str
    side: Literal["buy", "sell"] | None = None
    ts_ns: int | None = None
    pub_ns: int = 0


class Ticker(msgspec.Struct, tag="ticker", tag_field="t", frozen=True):
    channel: str
    bid: str | None
    bid_size: str | None
    ask: str | None
    ask_size: str | None
    last: str | None = None
    volume: str | None = None
    ts_ns: int | None = None
    pub_ns: int = 0


class InstrumentEntry(msgspec.Struct, frozen=True):
    symbol: str
    asset_class: str
    tick_size: str
    lot_size: str


class Instruments(msgspec.Struct, tag="instruments", tag_field="t", frozen=True):
    """The venue's instruments as the collector loaded them (the grid consumers parse with)."""

    venue: str
    collector: str
    instruments: list[InstrumentEntry]
    exact_depth: int | None = None  # levels a side the collector's seeding snapshots carry
    pub_ns: int = 0


class Heartbeat(msgspec.Struct, tag="heartbeat", tag_field="t", frozen=True):
    """The active collector is alive (every ``interval_ms``); ``channels``: what it publishes.
    ``blind``: its venue connection is down (its books are stale)."""

    venue: str
    collector: str
    interval_ms: int
    channels: list[str]
    blind: bool = False
    pub_ns: int = 0


BusMessage = Snap | Delta | State | Trade | Ticker | Instruments | Heartbeat

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(BusMessage)


def encode(msg: BusMessage) -> bytes:
    return _encoder.encode(msg)


def decode(data: bytes | memoryview) -> BusMessage:
    """One bus message; FrameError naming what was wrong (never another exception)."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise FrameError(f"bus message is not tickpipe bus v{SCHEMA_VERSION}: {exc}") from None
