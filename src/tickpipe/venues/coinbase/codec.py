"""Coinbase Advanced Trade WebSocket frames <-> ``protocol.normalised`` values, and the products
REST body. Pure (no I/O).

Every server message is an envelope ``{"channel", "client_id", "timestamp", "sequence_num",
"events": [...]}``. ``sequence_num`` counts every message of the CONNECTION (all channels): a
skip means a message of unknown channel was lost, so every book on the connection re-seeds
(:class:`ConnectionSequence`). Channels decoded: ``l2_data`` (the ``level2`` subscription:
``snapshot``/``update`` events with ``updates[]`` of ``{side: bid|offer, event_time,
price_level, new_quantity}``; ``new_quantity`` is the new total, ``"0"`` removes),
``market_trades``, ``ticker`` and ``ticker_batch``, ``heartbeats``, ``subscriptions``; and the
error answer ``{"type": "error", "message": ...}``. Prices and sizes are JSON strings, kept as
received.

:func:`decode` returns a :class:`Message`: the envelope's ``sequence_num`` and the events in
order. Book events carry the sequence number as ``last_id`` (Continuity CONNECTION: books
treat it as NONE, the connection checks it). Encoders write the documented shapes for the
gateway's ``coinbase`` dialect; :func:`decode_request` reads subscribe/unsubscribe requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Literal, NoReturn

import msgspec

from tickpipe.errors import ConfigError, FrameError
from tickpipe.protocol.decode_errors import DECODE_ERRORS, check_utf8, decode_error
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import (
    BookDelta,
    BookSnapshot,
    NormalisedEvent,
    RawLevel,
    TickerEvent,
    TradeEvent,
)
from tickpipe.venues.kraken.rfc3339 import format_ns, parse_ns

Seq = Annotated[int, msgspec.Meta(ge=0)]

# -- wire structs: server -> client ----------------------------------------------------------


class _L2Update(msgspec.Struct, frozen=True, gc=False):
    side: Literal["bid", "offer"]
    event_time: str
    price_level: str
    new_quantity: str


class _L2Event(msgspec.Struct, frozen=True, gc=False):
    type: Literal["snapshot", "update"]
    product_id: str
    updates: list[_L2Update]


class _L2Data(msgspec.Struct, tag="l2_data", tag_field="channel", frozen=True, gc=False):
    timestamp: str
    sequence_num: Seq
    events: list[_L2Event]
    client_id: str = ""


class _MarketTrade(msgspec.Struct, frozen=True, gc=False):
    trade_id: str
    product_id: str
    price: str
    size: str
    side: Literal["BUY", "SELL"]
    time: str


class _TradesEvent(msgspec.Struct, frozen=True, gc=False):
    type: Literal["snapshot", "update"]
    trades: list[_MarketTrade]


class _MarketTrades(msgspec.Struct, tag="market_trades", tag_field="channel", frozen=True):
    timestamp: str
    sequence_num: Seq
    events: list[_TradesEvent]
    client_id: str = ""


class _TickerItem(msgspec.Struct, frozen=True, gc=False):
    type: str
    product_id: str
    price: str
    volume_24_h: str = ""
    low_24_h: str = ""
    high_24_h: str = ""
    low_52_w: str = ""
    high_52_w: str = ""
    price_percent_chg_24_h: str = ""
    best_bid: str = ""
    best_bid_quantity: str = ""
    best_ask: str = ""
    best_ask_quantity: str = ""


class _TickerEvent(msgspec.Struct, frozen=True, gc=False):
    type: Literal["snapshot", "update"]
    tickers: list[_TickerItem]


class _Ticker(msgspec.Struct, tag="ticker", tag_field="channel", frozen=True):
    timestamp: str
    sequence_num: Seq
    events: list[_TickerEvent]
    client_id: str = ""


class _TickerBatch(msgspec.Struct, tag="ticker_batch", tag_field="channel", frozen=True):
    timestamp: str
    sequence_num: Seq
    events: list[_TickerEvent]
    client_id: str = ""


class _HeartbeatEvent(msgspec.Struct, frozen=True):
    current_time: str
    heartbeat_counter: Annotated[int, msgspec.Meta(ge=0)] | str


class _Heartbeats(msgspec.Struct, tag="heartbeats", tag_field="channel", frozen=True):
    timestamp: str
    sequence_num: Seq
    events: list[_HeartbeatEvent]
    client_id: str = ""


class _SubsEvent(msgspec.Struct, frozen=True):
    subscriptions: dict[str, list[str]]


class _Subscriptions(msgspec.Struct, tag="subscriptions", tag_field="channel", frozen=True):
    timestamp: str
    sequence_num: Seq
    events: list[_SubsEvent]
    client_id: str = ""


_ChannelFrame = _L2Data | _MarketTrades | _Ticker | _TickerBatch | _Heartbeats | _Subscriptions


class _ErrorFrame(msgspec.Struct, tag="error", tag_field="type", frozen=True):
    message: str = ""
    reason: str = ""


# -- client -> server --------------------------------------------------------------------------


class SubscribeRequest(
    msgspec.Struct, tag="subscribe", tag_field="type", frozen=True, omit_defaults=True
):
    channel: str
    product_ids: list[str] = []
    jwt: str | None = None  # optional for public market data


class UnsubscribeRequest(
    msgspec.Struct, tag="unsubscribe", tag_field="type", frozen=True, omit_defaults=True
):
    channel: str
    product_ids: list[str] = []
    jwt: str | None = None


Request = SubscribeRequest | UnsubscribeRequest

# -- control values ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A ``heartbeats`` event (one a second once subscribed); ``counter`` increases by 1."""

    counter: int
    current_time: str


@dataclass(frozen=True, slots=True)
class Subscriptions:
    """The venue's list of what this connection is subscribed to (after each (un)subscribe):
    Coinbase channel name -> product ids."""

    channels: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class VenueError:
    message: str


CoinbaseEvent = NormalisedEvent | Heartbeat | Subscriptions | VenueError


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded message: the connection's ``sequence_num`` (None for an error answer,
    which has none) and its events in order."""

    sequence_num: int | None
    channel: str
    events: list[CoinbaseEvent]


class Step(Enum):
    NEXT = "next"
    DUPLICATE = "duplicate"
    GAP = "gap"


class ConnectionSequence:
    """Continuity CONNECTION: ``sequence_num`` must grow by exactly 1 per message of the
    connection (every channel). The first message may carry any number. ``GAP``: something
    was lost — every book on this connection re-seeds; ``DUPLICATE``: an old number, drop."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: int | None = None

    def check(self, seq: int) -> Step:
        last = self.last
        if last is None or seq == last + 1:
            self.last = seq
            return Step.NEXT
        if seq <= last:
            return Step.DUPLICATE
        self.last = seq  # a new baseline after the gap (the shell re-seeds)
        return Step.GAP

    def reset(self) -> None:
        """A new connection: numbering starts again."""
        self.last = None


# -- decode ---------------------------------------------------------------------------------

_channel_decoder = msgspec.json.Decoder(_ChannelFrame)
_error_decoder = msgspec.json.Decoder(_ErrorFrame)
_request_decoder = msgspec.json.Decoder(Request)
_encoder = msgspec.json.Encoder()
_CH_RE = re.compile(rb'"channel"\s*:\s*"([a-z0-9_]{1,30})"')
_PID_RE = re.compile(rb'"product_id"\s*:\s*"([A-Za-z0-9\-]{1,40})"')
_NUM = re.compile(r"\d+(?:\.\d+)?\Z")
_KIND = {"l2_data": "orderbook", "market_trades": "trades", "ticker": "ticker"}


def _guess_channel(data: bytes) -> str | None:
    ch = _CH_RE.search(data[:4096])
    if ch is None:
        return None
    name = ch.group(1).decode()
    kind = _KIND.get(name)
    if kind is None:
        return name
    pid = _PID_RE.search(data[:4096])
    return f"{kind}:{pid.group(1).decode()}" if pid else kind


def _error(exc: Exception, data: bytes | str, what: str) -> FrameError:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
    channel = _guess_channel(raw)
    return decode_error(exc, what, channel)


_check_utf8 = check_utf8


def _text(value: str, channel: str, field: str) -> str:
    if not _NUM.match(value):
        raise FrameError(
            f"expected a decimal string, got {value[:40]!r}", channel=channel, field=field
        )
    return value


def _opt(value: str, channel: str, field: str) -> str | None:
    return _text(value, channel, field) if value else None


def _ts(text: str, channel: str | None, field: str) -> int:
    try:
        return parse_ns(text)
    except ValueError as exc:
        raise FrameError(str(exc), channel=channel, field=field) from None


def _bad_update(ev: _L2Event, i: int) -> NoReturn:
    """FrameError naming the first update of ``events[i]`` whose price or quantity is not a
    decimal string (the slow path: field names are built only here)."""
    ch = f"orderbook:{ev.product_id}"
    for j, u in enumerate(ev.updates):
        w = f"events[{i}].updates[{j}]"
        _text(u.price_level, ch, f"{w}.price_level")
        _text(u.new_quantity, ch, f"{w}.new_quantity")
    raise AssertionError("no bad update in the event")  # pragma: no cover


def decode(data: bytes | str) -> Message:
    """Decode one Advanced Trade message (any channel, or an error answer)."""
    try:
        frame = _channel_decoder.decode(data)
    except msgspec.ValidationError as exc:
        if "missing required field `channel`" not in str(exc) or "at `$." in str(exc):
            raise _error(exc, data, "message") from None
        try:
            err = _error_decoder.decode(data)
        except DECODE_ERRORS as exc2:
            raise _error(exc2, data, "message") from None
        _check_utf8(data, "message")
        return Message(None, "error", [VenueError(err.message or err.reason or "error")])
    except DECODE_ERRORS as exc:
        raise _error(exc, data, "message") from None
    _check_utf8(data, "message")
    return _message(frame)


def _message(frame: _ChannelFrame) -> Message:
    seq = frame.sequence_num
    if isinstance(frame, _L2Data):
        ts = _ts(frame.timestamp, "l2_data", "timestamp")
        out: list[CoinbaseEvent] = []
        num = _NUM.match
        for i, ev in enumerate(frame.events):
            bids: list[RawLevel] = []
            asks: list[RawLevel] = []
            for u in ev.updates:
                p, q = u.price_level, u.new_quantity
                if num(p) is None or num(q) is None:
                    _bad_update(ev, i)
                (bids if u.side == "bid" else asks).append((p, q))
            if ev.type == "snapshot":
                out.append(BookSnapshot(ev.product_id, seq, bids, asks, None, ts))
            else:
                out.append(BookDelta(ev.product_id, bids, asks, last_id=seq, ts_ns=ts))
        return Message(seq, "l2_data", out)
    if isinstance(frame, _MarketTrades):
        trades: list[CoinbaseEvent] = []
        for i, tev in enumerate(frame.events):
            for j, t in enumerate(tev.trades):
                ch = f"trades:{t.product_id}"
                w = f"events[{i}].trades[{j}]"
                trades.append(
                    TradeEvent(
                        t.product_id,
                        t.trade_id,
                        _text(t.price, ch, f"{w}.price"),
                        _text(t.size, ch, f"{w}.size"),
                        "buy" if t.side == "BUY" else "sell",
                        _ts(t.time, ch, f"{w}.time"),
                    )
                )
        return Message(seq, "market_trades", trades)
    if isinstance(frame, (_Ticker, _TickerBatch)):
        name = "ticker" if isinstance(frame, _Ticker) else "ticker_batch"
        ts = _ts(frame.timestamp, name, "timestamp")
        tickers: list[CoinbaseEvent] = []
        for i, kev in enumerate(frame.events):
            for j, k in enumerate(kev.tickers):
                ch = f"ticker:{k.product_id}"
                w = f"events[{i}].tickers[{j}]"
                tickers.append(
                    TickerEvent(
                        k.product_id,
                        _opt(k.best_bid, ch, f"{w}.best_bid"),
                        _opt(k.best_bid_quantity, ch, f"{w}.best_bid_quantity"),
                        _opt(k.best_ask, ch, f"{w}.best_ask"),
                        _opt(k.best_ask_quantity, ch, f"{w}.best_ask_quantity"),
                        _opt(k.price, ch, f"{w}.price"),
                        _opt(k.volume_24_h, ch, f"{w}.volume_24_h"),
                        ts,
                    )
                )
        return Message(seq, name, tickers)
    if isinstance(frame, _Heartbeats):
        beats: list[CoinbaseEvent] = []
        for i, h in enumerate(frame.events):
            c = h.heartbeat_counter
            if isinstance(c, str):
                if not c.isdigit():
                    raise FrameError(
                        "bad counter", channel="heartbeats", field=f"events[{i}].heartbeat_counter"
                    )
                c = int(c)
            beats.append(Heartbeat(c, h.current_time))
        return Message(seq, "heartbeats", beats)
    subs: list[CoinbaseEvent] = [Subscriptions(e.subscriptions) for e in frame.events]
    return Message(seq, "subscriptions", subs)


def decode_request(data: bytes | str) -> Request:
    """A client's subscribe/unsubscribe request (the gateway's side)."""
    try:
        req: Request = _request_decoder.decode(data)
    except DECODE_ERRORS as exc:
        raise _error(exc, data, "request") from None
    _check_utf8(data, "request")
    return req


# -- instruments -----------------------------------------------------------------------------


class _Product(msgspec.Struct, frozen=True):
    product_id: str | None = None  # Advanced Trade
    id: str | None = None  # legacy Exchange /products
    price_increment: str | None = None
    quote_increment: str | None = None
    base_increment: str | None = None
    status: str = ""


class _Products(msgspec.Struct, frozen=True):
    products: list[_Product]


_products_decoder = msgspec.json.Decoder(_Products | list[_Product])


def decode_products(data: bytes | str) -> list[Instrument]:
    """Products -> instruments. Advanced Trade ``GET /api/v3/brokerage/market/products``
    (``{"products": [{"product_id", "price_increment", "quote_increment", "base_increment",
    ...}]}``: tick ``price_increment``, else ``quote_increment``) or the legacy Exchange
    ``GET /products`` list (``id``, ``quote_increment``, ``base_increment``). Lot:
    ``base_increment``."""
    try:
        body = _products_decoder.decode(data)
    except DECODE_ERRORS as exc:
        raise _error(exc, data, "products body") from None
    _check_utf8(data, "products body")
    items = body.products if isinstance(body, _Products) else body
    out: list[Instrument] = []
    for n, p in enumerate(items):
        symbol = p.product_id or p.id
        tick = p.price_increment or p.quote_increment
        if not symbol or not tick or not p.base_increment:
            raise FrameError(
                "a product needs an id, a price/quote increment and a base increment",
                field=f"products[{n}]",
            )
        try:
            out.append(Instrument(symbol, "crypto", tick, p.base_increment))
        except ConfigError as exc:
            raise FrameError(str(exc), field=f"products[{n}]") from None
    return out


# -- encode (the gateway's coinbase dialect) -----------------------------------------------------

_EPOCH = "1970-01-01T00:00:00Z"


def _ts_text(ns: int | None) -> str:
    return _EPOCH if ns is None else format_ns(ns, 9)


def _check(text: str, field: str) -> str:
    if not _NUM.match(text):
        raise FrameError(f"{text[:40]!r} is not a non-negative decimal", field=field)
    return text


def _envelope(channel: str, seq: int, ts_ns: int | None, events: list[object]) -> bytes:
    return _encoder.encode(
        {
            "channel": channel,
            "client_id": "",
            "timestamp": _ts_text(ts_ns),
            "sequence_num": seq,
            "events": events,
        }
    )


def encode_book(
    event: BookSnapshot | BookDelta, seq: int, *, event_time_ns: int | None = None
) -> bytes:
    """One ``l2_data`` message with one snapshot/update event (bids then offers).
    ``event_time`` of each update: ``event_time_ns`` (snapshots: the epoch, as Coinbase
    writes)."""
    kind = "snapshot" if isinstance(event, BookSnapshot) else "update"
    et = _EPOCH if kind == "snapshot" or event_time_ns is None else format_ns(event_time_ns, 6)
    updates = [
        {
            "side": side,
            "event_time": et,
            "price_level": _check(p, "price_level"),
            "new_quantity": _check(q, "new_quantity"),
        }
        for side, levels in (("bid", event.bids), ("offer", event.asks))
        for p, q in levels
    ]
    return _envelope(
        "l2_data",
        seq,
        event.ts_ns,
        [{"type": kind, "product_id": event.symbol, "updates": updates}],
    )


def encode_trades(
    trades: list[TradeEvent], seq: int, *, snapshot: bool = False, ts_ns: int | None = None
) -> bytes:
    items = []
    for t in trades:
        if t.side is None:
            raise FrameError("a Coinbase trade needs a side", field="side")
        items.append(
            {
                "trade_id": t.trade_id,
                "product_id": t.symbol,
                "price": _check(t.price, "price"),
                "size": _check(t.size, "size"),
                "side": t.side.upper(),
                "time": _ts_text(t.ts_ns),
            }
        )
    return _envelope(
        "market_trades",
        seq,
        ts_ns,
        [{"type": "snapshot" if snapshot else "update", "trades": items}],
    )


def encode_ticker(t: TickerEvent, seq: int, *, snapshot: bool = False) -> bytes:
    def opt(v: str | None, f: str) -> str:
        return "" if v is None else _check(v, f)

    item = {
        "type": "ticker",
        "product_id": t.symbol,
        "price": opt(t.last, "price"),
        "volume_24_h": opt(t.volume, "volume_24_h"),
        "best_bid": opt(t.bid, "best_bid"),
        "best_bid_quantity": opt(t.bid_size, "best_bid_quantity"),
        "best_ask": opt(t.ask, "best_ask"),
        "best_ask_quantity": opt(t.ask_size, "best_ask_quantity"),
    }
    return _envelope(
        "ticker", seq, t.ts_ns, [{"type": "snapshot" if snapshot else "update", "tickers": [item]}]
    )


def encode_heartbeat(seq: int, counter: int, ts_ns: int) -> bytes:
    return _envelope(
        "heartbeats",
        seq,
        ts_ns,
        [{"current_time": format_ns(ts_ns, 9), "heartbeat_counter": str(counter)}],
    )


def encode_subscriptions(
    seq: int, channels: dict[str, list[str]], ts_ns: int | None = None
) -> bytes:
    return _envelope("subscriptions", seq, ts_ns, [{"subscriptions": channels}])


def encode_error(message: str) -> bytes:
    return _encoder.encode({"type": "error", "message": message})


def encode_request(req: Request) -> bytes:
    return _encoder.encode(req)
