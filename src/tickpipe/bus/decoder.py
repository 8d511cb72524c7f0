"""A bus consumer's decoder: bus messages -> the normalised values the client's books take.

The client shell calls ``decode(data)`` for every message the link (``bus/link.py``) hands it,
in the order of each book's subscription, exactly as it calls a venue's codec for every
WebSocket frame. Besides the wire schema (``bus/schema.py``) it reads the link's own local
messages (:class:`LinkOpened`, :class:`LinkAck`, :class:`LinkUnknown`, :class:`LinkStart`,
:class:`LinkLost`; never on the wire).

Per book it checks the collector's ``seq`` (the bus's continuity, schema.py), so that the book
itself can keep the venue's update id as its ``seq`` (the same ``final_book`` as a direct
connection): from a subscription's start (LinkStart) nothing is applied until a Snap seeds it;
then each Delta must take the next seq (an older one is a duplicate, dropped; a newer one is a
:class:`BookGap`: the book re-seeds by subscribing again); a reset Snap replaces the book
whatever its seq; a periodic Snap at the current seq is dropped (one ahead of it means deltas
were lost: a gap); a State is :class:`BookUnsynced` (the collector's book is not exact: wait for
its reset Snap, in band). Ticker and Trade messages pass through as venue ones.
"""

from __future__ import annotations

import msgspec

from tickpipe.bus import schema
from tickpipe.errors import FrameError
from tickpipe.protocol import frames
from tickpipe.protocol.normalised import (
    BookDelta,
    BookGap,
    BookSnapshot,
    BookUnsynced,
    TickerEvent,
    TradeEvent,
)
from tickpipe.venues.base import Ack, Opened


class LinkOpened(msgspec.Struct, tag="link_opened", tag_field="t", frozen=True):
    """The link is up: an active collector's heartbeat was heard."""

    session: str
    heartbeat_ms: int


class LinkAck(msgspec.Struct, tag="link_ack", tag_field="t", frozen=True):
    """One channel of a (un)subscribe request is done."""

    id: int
    channel: str


class LinkUnknown(msgspec.Struct, tag="link_unknown", tag_field="t", frozen=True):
    """No live collector publishes ``channel``: refused (a LinkAck for it follows)."""

    id: int
    channel: str
    message: str


class LinkStart(msgspec.Struct, tag="link_start", tag_field="t", frozen=True):
    """A book's subscription (re)starts: what follows is from its latest Snap or State."""

    channel: str


class LinkCommand(msgspec.Struct, frozen=True):
    """What the shell "sends" on a bus link: (un)subscribe ``channels`` as request ``id``."""

    op: str
    id: int
    channels: list[str]


command_decoder = msgspec.json.Decoder(LinkCommand)


class LinkLost(msgspec.Struct, tag="link_lost", tag_field="t", frozen=True):
    """The collector of this book fell silent while others still speak: not exact until a
    collector's reset Snap comes on its subjects."""

    channel: str
    reason: str


_link_encoder = msgspec.json.Encoder()
Incoming = schema.BusMessage | LinkOpened | LinkAck | LinkUnknown | LinkStart | LinkLost
_decoder = msgspec.json.Decoder(Incoming)


def encode_link(msg: LinkOpened | LinkAck | LinkUnknown | LinkStart | LinkLost) -> bytes:
    return _link_encoder.encode(msg)


def _symbol(channel: str) -> str:
    return channel.partition(":")[2]


class BusDecoder:
    """Stateful (per book: the last seq, and whether a Snap seeded this subscription)."""

    __slots__ = ("_books", "dropped_before_snap", "duplicates")

    def __init__(self) -> None:
        self._books: dict[str, list[int]] = {}  # channel -> [last seq, seeded 0/1]
        self.duplicates = 0
        self.dropped_before_snap = 0

    def decode(self, data: bytes | memoryview) -> object:
        try:
            m = _decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise FrameError(f"bus message is not tickpipe bus v1: {exc}") from None
        tp = type(m)
        if tp is schema.Delta:
            return self._delta(m)  # type: ignore[arg-type]
        if tp is schema.Snap:
            return self._snap(m)  # type: ignore[arg-type]
        if tp is schema.Trade:
            t: schema.Trade = m  # type: ignore[assignment]
            return TradeEvent(_symbol(t.channel), t.trade_id, t.price, t.size, t.side, t.ts_ns)
        if tp is schema.Ticker:
            k: schema.Ticker = m  # type: ignore[assignment]
            return TickerEvent(
                _symbol(k.channel), k.bid, k.bid_size, k.ask, k.ask_size, k.last, k.volume, k.ts_ns
            )
        if tp is schema.State:
            s: schema.State = m  # type: ignore[assignment]
            self._books[s.channel] = [s.seq, 0]
            return BookUnsynced(_symbol(s.channel), s.reason)
        if tp is LinkLost:
            lost: LinkLost = m  # type: ignore[assignment]
            st = self._books.get(lost.channel)
            if st is not None:
                st[1] = 0
            return BookUnsynced(_symbol(lost.channel), lost.reason)
        if tp is LinkStart:
            self._books.pop(m.channel, None)  # type: ignore[union-attr]
            return []
        if tp is LinkAck:
            return Ack(m.id, m.channel)  # type: ignore[union-attr]
        if tp is LinkUnknown:
            u: LinkUnknown = m  # type: ignore[assignment]
            return frames.ErrorFrame("unknown_channel", u.message, u.channel, u.id)
        if tp is LinkOpened:
            return []  # a late duplicate of the open answer
        return []  # heartbeat, instruments: not for the books

    def decode_open(self, data: bytes | memoryview) -> Opened | None:
        try:
            m = _decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise FrameError(f"bus link message is not valid: {exc}") from None
        if isinstance(m, LinkOpened):
            return Opened(m.session, m.heartbeat_ms)
        return None

    def _delta(self, d: schema.Delta) -> object:
        st = self._books.get(d.channel)
        if st is None or not st[1]:
            self.dropped_before_snap += 1
            return []
        last = st[0]
        if d.seq == last + 1:
            st[0] = d.seq
            return BookDelta(_symbol(d.channel), d.bids, d.asks, last_id=d.venue_id, ts_ns=d.ts_ns)
        if d.seq <= last:
            self.duplicates += 1
            return []
        st[1] = 0  # nothing more until a Snap seeds it again (the re-subscribe brings one)
        return BookGap(_symbol(d.channel), last + 1, d.seq)

    def _snap(self, s: schema.Snap) -> object:
        st = self._books.get(s.channel)
        if st is not None and st[1] and not s.reset:
            if s.seq == st[0]:
                return []  # a periodic copy of the book this consumer has
            if s.seq < st[0]:
                self.duplicates += 1
                return []
            st[1] = 0
            return BookGap(_symbol(s.channel), st[0] + 1, s.seq)
        self._books[s.channel] = [s.seq, 1]
        return BookSnapshot(
            _symbol(s.channel), s.venue_id, s.bids, s.asks, checksum=None, ts_ns=s.ts_ns
        )
