"""Kraken WebSocket v2 frames <-> ``protocol.normalised`` values, and the REST/instrument bodies.

Pure (no I/O). Decoding is typed (msgspec structs, in C); every failure is one
:class:`~tickpipe.errors.FrameError` naming the tickpipe channel (``orderbook:BTC/USD``, ...) when
it can be read, and the field (``data[0].bids[3].price``).

Prices and quantities arrive as JSON NUMBERS (``{"price": 45285.2, "qty": 0.00100000}``). They
are decoded as :class:`msgspec.Raw` (the literal text, never a float) and kept as that text:
``0.00100000`` stays ``"0.00100000"``; an exponent form (``1E-7``) is rewritten exactly as plain
decimal text; anything else (a string, a negative number, ``true``) is a FrameError.

Stream frames (server -> client), tagged by ``channel``: ``book`` (snapshot|update),
``trade``, ``ticker``, ``heartbeat``, ``status``, ``instrument``; method answers, tagged by
``method``: ``subscribe``/``unsubscribe`` acks and errors (``success``: false), ``pong``.
:func:`decode` returns a list of events: one frame may carry several symbols.

Encoders write the exact documented shapes (for the gateway's ``kraken`` dialect), and
:func:`decode_request` reads the client's requests (``subscribe``, ``unsubscribe``, ``ping``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

import msgspec

from tickpipe.errors import ConfigError, FrameError
from tickpipe.protocol.decode_errors import DECODE_ERRORS, check_utf8, decode_error
from tickpipe.protocol.instruments import Instrument, format_units
from tickpipe.protocol.normalised import (
    BookDelta,
    BookSnapshot,
    NormalisedEvent,
    RawLevel,
    TickerEvent,
    TradeEvent,
)
from tickpipe.venues.kraken.rfc3339 import format_ns, parse_ns

Crc32 = Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]

# -- wire structs: server -> client ----------------------------------------------------------


class _Level(msgspec.Struct, frozen=True, gc=False):
    price: msgspec.Raw
    qty: msgspec.Raw


class _BookData(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    symbol: str
    bids: list[_Level]
    asks: list[_Level]
    checksum: Crc32
    timestamp: str | None = None


class _Book(msgspec.Struct, tag="book", tag_field="channel", frozen=True, gc=False):
    type: Literal["snapshot", "update"]
    data: list[_BookData]


class _TradeData(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    side: Literal["buy", "sell"]
    price: msgspec.Raw
    qty: msgspec.Raw
    ord_type: str  # market | limit
    trade_id: int
    timestamp: str


class _Trade(msgspec.Struct, tag="trade", tag_field="channel", frozen=True, gc=False):
    type: Literal["snapshot", "update"]
    data: list[_TradeData]


_ABSENT = msgspec.Raw()


class _TickerData(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    symbol: str
    bid: msgspec.Raw
    bid_qty: msgspec.Raw
    ask: msgspec.Raw
    ask_qty: msgspec.Raw
    # optional numbers: an empty Raw when absent (msgspec cannot type ``Raw | None``)
    last: msgspec.Raw = _ABSENT
    volume: msgspec.Raw = _ABSENT
    vwap: msgspec.Raw = _ABSENT
    low: msgspec.Raw = _ABSENT
    high: msgspec.Raw = _ABSENT
    change: msgspec.Raw = _ABSENT
    change_pct: msgspec.Raw = _ABSENT
    timestamp: str | None = None


class _Ticker(msgspec.Struct, tag="ticker", tag_field="channel", frozen=True, gc=False):
    type: Literal["snapshot", "update"]
    data: list[_TickerData]


class _Heartbeat(msgspec.Struct, tag="heartbeat", tag_field="channel", frozen=True):
    pass


class _StatusData(msgspec.Struct, frozen=True):
    system: str
    api_version: str = ""
    connection_id: int | None = None
    version: str = ""


class _Status(msgspec.Struct, tag="status", tag_field="channel", frozen=True):
    type: str
    data: list[_StatusData]


class _PairInfo(msgspec.Struct, frozen=True):
    symbol: str
    price_increment: msgspec.Raw
    qty_increment: msgspec.Raw
    price_precision: Annotated[int, msgspec.Meta(ge=0, le=18)]
    qty_precision: Annotated[int, msgspec.Meta(ge=0, le=18)]
    status: str = ""


class _InstrumentData(msgspec.Struct, frozen=True):
    pairs: list[_PairInfo]


class _InstrumentMsg(msgspec.Struct, tag="instrument", tag_field="channel", frozen=True):
    type: Literal["snapshot", "update"]
    data: _InstrumentData


_ChannelFrame = _Book | _Trade | _Ticker | _Heartbeat | _Status | _InstrumentMsg


class _AckResult(msgspec.Struct, frozen=True):
    channel: str
    symbol: str | None = None
    depth: int | None = None
    snapshot: bool | None = None


class _SubscribeAnswer(msgspec.Struct, tag="subscribe", tag_field="method", frozen=True):
    success: bool
    result: _AckResult | None = None
    error: str | None = None
    symbol: str | None = None
    req_id: int | None = None
    time_in: str | None = None
    time_out: str | None = None


class _UnsubscribeAnswer(msgspec.Struct, tag="unsubscribe", tag_field="method", frozen=True):
    success: bool
    result: _AckResult | None = None
    error: str | None = None
    symbol: str | None = None
    req_id: int | None = None
    time_in: str | None = None
    time_out: str | None = None


class _Pong(msgspec.Struct, tag="pong", tag_field="method", frozen=True):
    req_id: int | None = None
    time_in: str | None = None
    time_out: str | None = None


_MethodFrame = _SubscribeAnswer | _UnsubscribeAnswer | _Pong

# -- wire structs: client -> server ------------------------------------------------------------


class SubscribeParams(msgspec.Struct, frozen=True, omit_defaults=True):
    channel: str
    symbol: list[str] | None = None
    depth: int | None = None
    snapshot: bool | None = None


class SubscribeRequest(msgspec.Struct, tag="subscribe", tag_field="method", frozen=True):
    params: SubscribeParams
    req_id: int | None = None


class UnsubscribeRequest(msgspec.Struct, tag="unsubscribe", tag_field="method", frozen=True):
    params: SubscribeParams
    req_id: int | None = None


class PingRequest(msgspec.Struct, tag="ping", tag_field="method", frozen=True):
    req_id: int | None = None


Request = SubscribeRequest | UnsubscribeRequest | PingRequest

# -- control values (what decode returns besides the normalised events) ----------------------


@dataclass(frozen=True, slots=True)
class Subscribed:
    """A ``subscribe`` (or ``unsubscribe``, ``subscribed=False``) ack for one Kraken channel
    and symbol; ``channel`` is tickpipe's (``orderbook:BTC/USD``)."""

    channel: str
    req_id: int | None
    depth: int | None = None
    subscribed: bool = True


@dataclass(frozen=True, slots=True)
class VenueError:
    """A request the venue refused (``success: false``), or an error it sent."""

    message: str
    method: str | None = None
    symbol: str | None = None
    req_id: int | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """``{"channel": "heartbeat"}``: sent about once a second when no other data flows."""


@dataclass(frozen=True, slots=True)
class Pong:
    req_id: int | None


@dataclass(frozen=True, slots=True)
class Status:
    system: str  # online | cancel_only | post_only | limit_only | maintenance
    connection_id: int | None = None


@dataclass(frozen=True, slots=True)
class InstrumentPairs:
    """The ``instrument`` channel's pairs: grids written with the wire precision (the
    checksum's), see :func:`pair_instrument`."""

    instruments: list[Instrument]


KrakenEvent = (
    NormalisedEvent | Subscribed | VenueError | Heartbeat | Pong | Status | InstrumentPairs
)

# -- numbers --------------------------------------------------------------------------------

MAX_EXPONENT_NUMBER_CHARS = 64
"""Bound on a number written with an exponent (``1.2E-5``), before and after rewriting it as
plain text: Kraken writes plain decimals; this keeps a hostile ``1e999999`` from growing into a
million-digit string (it is a FrameError instead)."""

_PLAIN = re.compile(rb"\d+(?:\.\d+)?\Z")
_JSON_NUMBER = re.compile(rb"(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?\Z")
_NUMBER_TEXT = re.compile(r"\d+(?:\.\d+)?\Z")


def _num(raw: msgspec.Raw, channel: str | None, field: str) -> str:
    """A non-negative JSON number's exact decimal text (never through float)."""
    b = bytes(raw)
    if _PLAIN.match(b):
        return b.decode()
    if len(b) <= MAX_EXPONENT_NUMBER_CHARS and _JSON_NUMBER.match(b):
        # bounded: "1e999999" would otherwise expand to a million digits
        try:
            text = format(Decimal(b.decode()), "f")
        except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
            text = ""
        if _NUMBER_TEXT.match(text) and len(text) <= MAX_EXPONENT_NUMBER_CHARS:
            return text
    raise FrameError(
        f"expected a non-negative JSON number, got {b[:40]!r}", channel=channel, field=field
    )


def _opt_num(raw: msgspec.Raw, channel: str | None, field: str) -> str | None:
    return None if not len(raw) else _num(raw, channel, field)


def _ts(text: str | None, channel: str | None, field: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_ns(text)
    except ValueError as exc:
        raise FrameError(str(exc), channel=channel, field=field) from None


def _plain_levels(levels: list[_Level]) -> list[RawLevel] | None:
    """The usual case, without field names or Decimal: every number plain; else None."""
    out: list[RawLevel] = []
    plain = _PLAIN.match
    for lv in levels:
        p, q = bytes(lv.price), bytes(lv.qty)
        if plain(p) is None or plain(q) is None:
            return None
        out.append((p.decode(), q.decode()))
    return out


def _levels(levels: list[_Level], channel: str, where: str) -> list[RawLevel]:
    """Each level's exact texts (exponents rewritten); FrameError naming the first bad one."""
    return [
        (_num(lv.price, channel, f"{where}[{i}].price"), _num(lv.qty, channel, f"{where}[{i}].qty"))
        for i, lv in enumerate(levels)
    ]


def _book_ts(text: str | None, symbol: str, i: int) -> int | None:
    if text is None:
        return None
    try:
        return parse_ns(text)
    except ValueError as exc:
        raise FrameError(
            str(exc), channel=f"orderbook:{symbol}", field=f"data[{i}].timestamp"
        ) from None


# -- decode ---------------------------------------------------------------------------------

_channel_decoder = msgspec.json.Decoder(_ChannelFrame)
_method_decoder = msgspec.json.Decoder(_MethodFrame)
_request_decoder = msgspec.json.Decoder(Request)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()

_KIND = {"book": "orderbook", "trade": "trades", "ticker": "ticker"}
_CH_RE = re.compile(rb'"channel"\s*:\s*"([a-z_]{1,20})"')
_SYM_RE = re.compile(rb'"symbol"\s*:\s*"([A-Za-z0-9./_\-]{1,40})"')


def _guess_channel(data: bytes) -> str | None:
    """tickpipe's channel of a frame that failed to decode, read from its text (slow path)."""
    ch = _CH_RE.search(data[:4096])
    if ch is None:
        return None
    kind = _KIND.get(ch.group(1).decode())
    if kind is None:
        return ch.group(1).decode()
    sym = _SYM_RE.search(data[:4096])
    return f"{kind}:{sym.group(1).decode()}" if sym else kind


def _error(exc: Exception, data: bytes | str, what: str) -> FrameError:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
    channel = _guess_channel(raw)
    return decode_error(exc, what, channel)


_check_utf8 = check_utf8


def decode(data: bytes | str) -> list[KrakenEvent]:
    """Decode one v2 stream frame into normalised events and control values."""
    try:
        frame: _ChannelFrame | _MethodFrame = _channel_decoder.decode(data)
    except msgspec.ValidationError as exc:
        if "missing required field `channel`" not in str(exc) or "at `$." in str(exc):
            raise _error(exc, data, "frame") from None
        try:  # no channel: a method answer (acks, errors, pong)
            frame = _method_decoder.decode(data)
        except DECODE_ERRORS as exc2:
            raise _error(exc2, data, "frame") from None
    except DECODE_ERRORS as exc:
        raise _error(exc, data, "frame") from None
    _check_utf8(data, "frame")
    return _events(frame)


def _events(frame: _ChannelFrame | _MethodFrame) -> list[KrakenEvent]:
    if isinstance(frame, _Book):
        out: list[KrakenEvent] = []
        for i, d in enumerate(frame.data):
            bids = _plain_levels(d.bids)
            if bids is None:
                bids = _levels(d.bids, f"orderbook:{d.symbol}", f"data[{i}].bids")
            asks = _plain_levels(d.asks)
            if asks is None:
                asks = _levels(d.asks, f"orderbook:{d.symbol}", f"data[{i}].asks")
            ts = _book_ts(d.timestamp, d.symbol, i)
            if frame.type == "snapshot":
                out.append(BookSnapshot(d.symbol, None, bids, asks, d.checksum, ts))
            else:
                out.append(BookDelta(d.symbol, bids, asks, checksum=d.checksum, ts_ns=ts))
        return out
    if isinstance(frame, _Trade):
        trades: list[KrakenEvent] = []
        for i, t in enumerate(frame.data):
            ch = f"trades:{t.symbol}"
            trades.append(
                TradeEvent(
                    t.symbol,
                    str(t.trade_id),
                    _num(t.price, ch, f"data[{i}].price"),
                    _num(t.qty, ch, f"data[{i}].qty"),
                    t.side,
                    _ts(t.timestamp, ch, f"data[{i}].timestamp"),
                )
            )
        return trades
    if isinstance(frame, _Ticker):
        tickers: list[KrakenEvent] = []
        for i, k in enumerate(frame.data):
            ch = f"ticker:{k.symbol}"
            w = f"data[{i}]"
            tickers.append(
                TickerEvent(
                    k.symbol,
                    _num(k.bid, ch, f"{w}.bid"),
                    _num(k.bid_qty, ch, f"{w}.bid_qty"),
                    _num(k.ask, ch, f"{w}.ask"),
                    _num(k.ask_qty, ch, f"{w}.ask_qty"),
                    _opt_num(k.last, ch, f"{w}.last"),
                    _opt_num(k.volume, ch, f"{w}.volume"),
                    _ts(k.timestamp, ch, f"{w}.timestamp"),
                )
            )
        return tickers
    if isinstance(frame, _Heartbeat):
        return [Heartbeat()]
    if isinstance(frame, _Status):
        return [Status(d.system, d.connection_id) for d in frame.data]
    if isinstance(frame, _InstrumentMsg):
        return [InstrumentPairs([pair_instrument(p) for p in frame.data.pairs])]
    if isinstance(frame, _Pong):
        return [Pong(frame.req_id)]
    # subscribe / unsubscribe answers
    method = "subscribe" if isinstance(frame, _SubscribeAnswer) else "unsubscribe"
    if not frame.success or frame.result is None:
        return [VenueError(frame.error or "request failed", method, frame.symbol, frame.req_id)]
    r = frame.result
    kind = _KIND.get(r.channel, r.channel)
    channel = f"{kind}:{r.symbol}" if r.symbol is not None else kind
    return [Subscribed(channel, frame.req_id, r.depth, method == "subscribe")]


def decode_request(data: bytes | str) -> Request:
    """A client's request (the gateway's side): subscribe, unsubscribe or ping."""
    try:
        req: Request = _request_decoder.decode(data)
    except DECODE_ERRORS as exc:
        raise _error(exc, data, "request") from None
    _check_utf8(data, "request")
    return req


# -- instruments -----------------------------------------------------------------------------

V2_ASSET_NAMES = {"XBT": "BTC", "XDG": "DOGE"}  # v2 symbols use BTC/DOGE where REST says XBT/XDG


def v2_symbol(wsname: str) -> str:
    """AssetPairs ``wsname`` (``XBT/USD``) -> the v2 symbol (``BTC/USD``)."""
    base, sep, quote = wsname.partition("/")
    return f"{V2_ASSET_NAMES.get(base, base)}{sep}{V2_ASSET_NAMES.get(quote, quote)}"


def pair_instrument(p: _PairInfo) -> Instrument:
    """An ``instrument`` channel pair: tick ``price_increment`` and lot ``qty_increment``,
    written with ``price_precision``/``qty_precision`` decimals (what the checksum uses)."""
    ch = f"instrument:{p.symbol}"
    tick = _num(p.price_increment, ch, "price_increment")
    lot = _num(p.qty_increment, ch, "qty_increment")
    try:
        inst = Instrument(p.symbol, "crypto", tick, lot)
        pd, qd = (
            max(p.price_precision, inst.price_decimals),
            max(p.qty_precision, inst.size_decimals),
        )
        return Instrument(
            p.symbol,
            "crypto",
            format_units(inst.tick_units * 10 ** (pd - inst.price_decimals), pd),
            format_units(inst.lot_units * 10 ** (qd - inst.size_decimals), qd),
        )
    except ConfigError as exc:
        raise FrameError(str(exc), channel=ch, field="price_increment") from None


class _AssetPair(msgspec.Struct, frozen=True):
    wsname: str | None = None
    pair_decimals: Annotated[int, msgspec.Meta(ge=0, le=18)] = 0
    lot_decimals: Annotated[int, msgspec.Meta(ge=0, le=18)] = 0
    tick_size: str | None = None
    status: str = "online"


class _AssetPairs(msgspec.Struct, frozen=True):
    error: list[str]
    result: dict[str, _AssetPair] = {}


_asset_pairs_decoder = msgspec.json.Decoder(_AssetPairs)


def decode_asset_pairs(data: bytes | str, *, v2_names: bool = True) -> list[Instrument]:
    """``GET /0/public/AssetPairs`` -> instruments keyed by ``wsname`` (v2 names with
    ``v2_names``: ``XBT/USD`` -> ``BTC/USD``). Tick: ``tick_size`` where the body has it, else
    ``10**-pair_decimals`` (written with ``pair_decimals`` decimals); lot ``10**-lot_decimals``.
    Pairs without a ``wsname`` (dark pools, ``.d``) are skipped. A non-empty ``error`` list is a
    FrameError naming it."""
    try:
        body = _asset_pairs_decoder.decode(data)
    except DECODE_ERRORS as exc:
        raise _error(exc, data, "AssetPairs body") from None
    if body.error:
        raise FrameError(f"AssetPairs error: {'; '.join(body.error)[:200]}", field="error")
    out: list[Instrument] = []
    for key, p in body.result.items():
        if not p.wsname:
            continue
        symbol = v2_symbol(p.wsname) if v2_names else p.wsname
        try:
            tick = p.tick_size or format_units(1, p.pair_decimals)
            inst = Instrument(symbol, "crypto", tick, format_units(1, p.lot_decimals))
            if inst.price_decimals < p.pair_decimals:
                inst = Instrument(
                    symbol,
                    "crypto",
                    format_units(
                        inst.tick_units * 10 ** (p.pair_decimals - inst.price_decimals),
                        p.pair_decimals,
                    ),
                    inst.lot_size,
                )
        except ConfigError as exc:
            raise FrameError(str(exc), field=f"result.{key}") from None
        out.append(inst)
    return out


# -- encode (the gateway's kraken dialect) -------------------------------------------------------


def _raw(text: str, what: str) -> msgspec.Raw:
    if not _NUMBER_TEXT.match(text):
        raise FrameError(f"{text[:40]!r} is not a non-negative decimal", field=what)
    return msgspec.Raw(text.encode())


def _wire_levels(levels: list[RawLevel], what: str) -> list[_Level]:
    return [_Level(_raw(p, f"{what}.price"), _raw(q, f"{what}.qty")) for p, q in levels]


def _need_crc(value: int | None, what: str) -> int:
    if value is None:
        raise FrameError("Kraken v2 book frames always carry a checksum", field=what)
    return value


def encode_book(event: BookSnapshot | BookDelta) -> bytes:
    """A ``book`` snapshot or update frame for one symbol (the checksum is the event's)."""
    kind: Literal["snapshot", "update"] = (
        "snapshot" if isinstance(event, BookSnapshot) else "update"
    )
    data = _BookData(
        symbol=event.symbol,
        checksum=_need_crc(event.checksum, "checksum"),
        bids=_wire_levels(event.bids, "bids"),
        asks=_wire_levels(event.asks, "asks"),
        timestamp=None if event.ts_ns is None else format_ns(event.ts_ns, 6),
    )
    return _encoder.encode(_Book(type=kind, data=[data]))


def encode_trades(
    trades: list[TradeEvent], *, snapshot: bool = False, ord_type: str = "limit"
) -> bytes:
    """A ``trade`` frame; ``trade_id`` must be an integer's text (Kraken's ids are)."""
    data = []
    for t in trades:
        if t.side is None or not t.trade_id.isdigit():
            raise FrameError("a Kraken trade needs a side and an integer id", field="trade_id")
        data.append(
            _TradeData(
                symbol=t.symbol,
                side=t.side,
                price=_raw(t.price, "price"),
                qty=_raw(t.size, "qty"),
                trade_id=int(t.trade_id),
                timestamp=format_ns(t.ts_ns or 0, 6),
                ord_type=ord_type,
            )
        )
    return _encoder.encode(_Trade(type="snapshot" if snapshot else "update", data=data))


def encode_ticker(t: TickerEvent, *, snapshot: bool = False) -> bytes:
    if t.bid is None or t.bid_size is None or t.ask is None or t.ask_size is None:
        raise FrameError("a Kraken ticker needs bid, bid_qty, ask and ask_qty", field="bid")
    data = _TickerData(
        symbol=t.symbol,
        bid=_raw(t.bid, "bid"),
        bid_qty=_raw(t.bid_size, "bid_qty"),
        ask=_raw(t.ask, "ask"),
        ask_qty=_raw(t.ask_size, "ask_qty"),
        last=_ABSENT if t.last is None else _raw(t.last, "last"),
        volume=_ABSENT if t.volume is None else _raw(t.volume, "volume"),
        timestamp=None if t.ts_ns is None else format_ns(t.ts_ns, 6),
    )
    return _encoder.encode(_Ticker(type="snapshot" if snapshot else "update", data=[data]))


def _strip_none(obj: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in obj.items() if v is not None}


def encode_heartbeat() -> bytes:
    return b'{"channel":"heartbeat"}'


def encode_status(system: str = "online", connection_id: int | None = None) -> bytes:
    data = _strip_none(
        {
            "api_version": "v2",
            "connection_id": connection_id,
            "system": system,
            "version": "2.0.0",
        }
    )
    return _encoder.encode({"channel": "status", "type": "update", "data": [data]})


def encode_ack(
    method: Literal["subscribe", "unsubscribe"],
    kraken_channel: str,
    symbol: str,
    *,
    req_id: int | None = None,
    depth: int | None = None,
    time_in_ns: int = 0,
    time_out_ns: int = 0,
) -> bytes:
    """A successful subscribe/unsubscribe answer for one symbol (Kraken answers per symbol)."""
    result = _strip_none({"channel": kraken_channel, "depth": depth, "symbol": symbol})
    if method == "subscribe" and kraken_channel in ("book", "ticker", "trade"):
        result["snapshot"] = True
    return _encoder.encode(
        _strip_none(
            {
                "method": method,
                "req_id": req_id,
                "result": result,
                "success": True,
                "time_in": format_ns(time_in_ns, 6),
                "time_out": format_ns(time_out_ns, 6),
            }
        )
    )


def encode_error(
    method: str,
    message: str,
    *,
    symbol: str | None = None,
    req_id: int | None = None,
    time_in_ns: int = 0,
    time_out_ns: int = 0,
) -> bytes:
    """A refused request: ``{"error": ..., "method": ..., "success": false, ...}``."""
    return _encoder.encode(
        _strip_none(
            {
                "error": message,
                "method": method,
                "req_id": req_id,
                "success": False,
                "symbol": symbol,
                "time_in": format_ns(time_in_ns, 6),
                "time_out": format_ns(time_out_ns, 6),
            }
        )
    )


def encode_pong(req_id: int | None, time_in_ns: int = 0, time_out_ns: int = 0) -> bytes:
    return _encoder.encode(
        _strip_none(
            {
                "method": "pong",
                "req_id": req_id,
                "time_in": format_ns(time_in_ns, 6),
                "time_out": format_ns(time_out_ns, 6),
            }
        )
    )


def encode_request(req: Request) -> bytes:
    return _encoder.encode(req)
