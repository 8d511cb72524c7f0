"""Bybit v5 public frames and REST bodies <-> ``protocol.normalised`` values. Pure: no I/O.

Serves both ``bybit`` (spot) and ``bybit-linear``: the frames have one shape, only tickers
differ (spot sends no best bid/ask; linear sends a snapshot then deltas holding only the
changed fields, see :func:`merge_ticker`). Documented in https://bybit-exchange.github.io/docs/v5/
("Public › Orderbook / Trade / Ticker", "WebSocket › Connect")::

    {"topic":"orderbook.200.BTCUSDT","type":"snapshot"|"delta","ts":1672304484978,
     "data":{"s":"BTCUSDT","b":[["16493.50","0.006"]],"a":[["16611.00","0.029"]],
             "u":18521288,"seq":7961638724},"cts":1672304484976}
    {"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{
     "T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",
     "i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}
    {"topic":"tickers.BTCUSDT","type":"snapshot"|"delta","ts":..,"cs":..,"data":{"symbol":..,
     "lastPrice":..,"bid1Price":..,"bid1Size":..,"ask1Price":..,"ask1Size":..,"volume24h":..}}
    {"success":true,"ret_msg":"","conn_id":"..","req_id":"7","op":"subscribe"}
    {"success":true,"ret_msg":"pong","conn_id":"..","op":"ping"}          (spot pong)
    {"success":true,"ret_msg":"pong","conn_id":"..","req_id":"","op":"ping"}   (linear pong)
    {"req_id":"t","op":"pong","args":["1675418560633"],"conn_id":".."}   (pong, other shape)

Book ids: ``u`` -> ``last_id`` (``Continuity.SEQ``: each delta is the previous ``u`` + 1). A
``snapshot`` replaces the book, and so does any book message with ``u == 1`` ("occasionally
you'll receive u=1, which is a snapshot due to the restart of the service, overwrite your
local orderbook"): such a delta decodes to a :class:`BookSnapshot`. ``seq`` (the cross sequence
shared by every depth of a symbol) is not a per-book continuity id and is dropped. Bybit
defines no checksum. Timestamps are JSON integers in ms, decoded exactly (never a float).
Every malformed frame raises :class:`~tickpipe.errors.FrameError` naming the channel
(``orderbook:BTCUSDT``) and the field (``data.b[3]``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from tickpipe.errors import ConfigError, FrameError, RestError
from tickpipe.protocol.decode_errors import DECODE_ERRORS, decode_error
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, TickerEvent, TradeEvent
from tickpipe.venues.bybit import endpoints

# -- control values ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscribed:
    """A successful ``subscribe``/``unsubscribe`` answer. Bybit names no topics in it: match
    it to the request by ``request_id`` (``req_id``)."""

    op: Literal["subscribe", "unsubscribe"]
    request_id: str | None = None
    conn_id: str | None = None


@dataclass(frozen=True, slots=True)
class VenueError:
    """``"success": false``: e.g. ``error:handler not found,topic:orderbook.40.BTCUSDT``."""

    op: str
    message: str
    request_id: str | None = None
    conn_id: str | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    request_id: str | None = None
    conn_id: str | None = None


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """A client's ``subscribe``/``unsubscribe``/``ping`` (the gateway dialect's side)."""

    op: Literal["subscribe", "unsubscribe", "ping"]
    channels: list[str]
    request_id: str | None = None


BybitEvent = BookSnapshot | BookDelta | TradeEvent | TickerEvent | Subscribed | VenueError | Pong

# -- wire structs -----------------------------------------------------------------------------

Millis = Annotated[int, msgspec.Meta(ge=0)]
UpdateId = Annotated[int, msgspec.Meta(ge=1)]


class _Envelope(msgspec.Struct, frozen=True):
    topic: str | None = None
    type: Literal["snapshot", "delta"] | None = None
    ts: Millis | None = None
    data: msgspec.Raw = msgspec.Raw()  # empty: absent
    success: bool | None = None
    ret_msg: str | None = None
    conn_id: str | None = None
    req_id: str | None = None
    op: str | None = None


class _Book(msgspec.Struct, frozen=True):
    s: str
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]
    u: UpdateId
    seq: int | None = None


class _Trade(msgspec.Struct, frozen=True):
    T: Millis
    s: str
    S: Literal["Buy", "Sell"]
    v: str
    p: str
    i: str


class _Ticker(msgspec.Struct, frozen=True):
    symbol: str
    bid1Price: str | None = None
    bid1Size: str | None = None
    ask1Price: str | None = None
    ask1Size: str | None = None
    lastPrice: str | None = None
    volume24h: str | None = None


class _PriceFilter(msgspec.Struct, frozen=True):
    tickSize: str


class _LotFilter(msgspec.Struct, frozen=True):
    basePrecision: str | None = None  # spot
    qtyStep: str | None = None  # linear


class _Instrument(msgspec.Struct, frozen=True):
    symbol: str
    priceFilter: _PriceFilter
    lotSizeFilter: _LotFilter
    status: str = ""


class _InstrumentsResult(msgspec.Struct, frozen=True):
    items: list[_Instrument] = msgspec.field(default_factory=list, name="list")
    category: str = ""
    nextPageCursor: str = ""


class _InstrumentsBody(msgspec.Struct, frozen=True):
    retCode: int
    retMsg: str = ""
    result: _InstrumentsResult | None = None


class _RestBook(msgspec.Struct, frozen=True):
    s: str
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]
    ts: Millis
    u: UpdateId


class _RestBookBody(msgspec.Struct, frozen=True):
    retCode: int
    retMsg: str = ""
    result: msgspec.Raw = msgspec.Raw()  # ``{}`` on an error: decoded only when retCode is 0


class _ClientRequest(msgspec.Struct, frozen=True):
    op: Literal["subscribe", "unsubscribe", "ping"]
    args: list[str] = []
    req_id: str | None = None


_envelope = msgspec.json.Decoder(_Envelope)
_book = msgspec.json.Decoder(_Book)
_trades = msgspec.json.Decoder(list[_Trade])
_ticker = msgspec.json.Decoder(_Ticker)
_instruments = msgspec.json.Decoder(_InstrumentsBody)
_rest_book_body = msgspec.json.Decoder(_RestBookBody)
_rest_book = msgspec.json.Decoder(_RestBook)
_client = msgspec.json.Decoder(_ClientRequest)
_encoder = msgspec.json.Encoder()

_TOPIC_RE = re.compile(rb'"topic"\s*:\s*"([A-Za-z]+(?:\.[0-9]+)?\.[A-Za-z0-9_-]{1,40})"')


def _fail(exc: Exception, channel: str | None, prefix: str) -> FrameError:
    return decode_error(exc, "frame", channel, prefix)


def _guess_channel(data: bytes | str) -> str | None:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data[:4096])
    m = _TOPIC_RE.search(raw[:4096])
    found = None if m is None else endpoints.from_topic(m.group(1).decode())
    return None if found is None else found[0]


# -- decoding the stream ----------------------------------------------------------------------


def decode(data: bytes | str) -> list[BybitEvent]:
    """Decode one text frame from ``/v5/public/spot`` or ``/v5/public/linear``.

    An order book frame gives one BookSnapshot or BookDelta, a trade frame one TradeEvent per
    trade, a ticker frame one TickerEvent (fields a linear delta omits are None: see
    :func:`merge_ticker`). Raises FrameError on anything else."""
    try:
        env = _envelope.decode(data)
    except DECODE_ERRORS as exc:
        raise _fail(exc, _guess_channel(data), "") from None
    if env.topic is None:
        return [_control(env)]
    found = endpoints.from_topic(env.topic)
    if found is None:
        raise FrameError(f"unexpected Bybit topic {env.topic[:60]!r}", field="topic")
    channel, symbol = found
    if not env.data or env.type is None or env.ts is None:
        missing = "data" if not env.data else "type" if env.type is None else "ts"
        raise FrameError(f"frame has no {missing}", channel=channel, field=missing)
    ts_ns = env.ts * 1_000_000
    try:
        if channel.startswith("orderbook:"):
            book = _book.decode(env.data)
            _same(book.s, symbol, channel, "data.s")
            bids, asks = list(book.b), list(book.a)
            if env.type == "snapshot" or book.u == 1:
                return [BookSnapshot(symbol, book.u, bids, asks, None, ts_ns)]
            return [BookDelta(symbol, bids, asks, last_id=book.u, ts_ns=ts_ns)]
        if channel.startswith("trades:"):
            trades = _trades.decode(env.data)
            if not trades:
                raise FrameError("data is empty", channel=channel, field="data")
            out: list[BybitEvent] = []
            for i, t in enumerate(trades):
                _same(t.s, symbol, channel, f"data[{i}].s")
                side: Literal["buy", "sell"] = "buy" if t.S == "Buy" else "sell"
                out.append(TradeEvent(symbol, t.i, t.p, t.v, side, t.T * 1_000_000))
            return out
        tk = _ticker.decode(env.data)
    except DECODE_ERRORS as exc:
        raise _fail(exc, channel, "data") from None
    _same(tk.symbol, symbol, channel, "data.symbol")
    return [
        TickerEvent(
            symbol,
            tk.bid1Price,
            tk.bid1Size,
            tk.ask1Price,
            tk.ask1Size,
            tk.lastPrice,
            tk.volume24h,
            ts_ns,
        )
    ]


def _same(got: str, symbol: str, channel: str, field: str) -> None:
    if got != symbol:
        raise FrameError(
            f"symbol {got[:40]!r} differs from the topic's", channel=channel, field=field
        )


def _control(env: _Envelope) -> BybitEvent:
    op = env.op
    if op is None:
        raise FrameError("frame has neither a topic nor an op", field="op")
    if op == "pong" or (op == "ping" and env.ret_msg == "pong"):
        return Pong(env.req_id or None, env.conn_id)
    if env.success is None:
        raise FrameError(f"{op[:40]} answer has no success", field="success")
    if not env.success:
        return VenueError(op[:40], (env.ret_msg or "")[:500], env.req_id or None, env.conn_id)
    if op in ("subscribe", "unsubscribe"):
        return Subscribed(op, env.req_id or None, env.conn_id)  # type: ignore[arg-type]
    raise FrameError(f"unexpected Bybit op {op[:40]!r}", field="op")


def merge_ticker(previous: TickerEvent | None, update: TickerEvent) -> TickerEvent:
    """Linear tickers send a snapshot, then deltas with only the fields that changed (None
    here): fill them from ``previous`` (the last merged value for the symbol)."""
    if previous is None:
        return update
    return msgspec.structs.replace(
        update,
        bid=update.bid if update.bid is not None else previous.bid,
        bid_size=update.bid_size if update.bid_size is not None else previous.bid_size,
        ask=update.ask if update.ask is not None else previous.ask,
        ask_size=update.ask_size if update.ask_size is not None else previous.ask_size,
        last=update.last if update.last is not None else previous.last,
        volume=update.volume if update.volume is not None else previous.volume,
    )


def decode_client(data: bytes | str) -> ClientRequest:
    """A client's frame (the gateway dialect's side): subscribe, unsubscribe or ping."""
    try:
        req = _client.decode(data)
    except DECODE_ERRORS as exc:
        raise _fail(exc, None, "") from None
    channels: list[str] = []
    for i, topic in enumerate(req.args):
        found = endpoints.from_topic(topic)
        if found is None:
            raise FrameError(f"unsupported topic {topic[:60]!r}", field=f"args[{i}]")
        channels.append(found[0])
    return ClientRequest(req.op, channels, req.req_id)


# -- REST bodies ------------------------------------------------------------------------------

INSTRUMENTS_PATH = "/v5/market/instruments-info"
ORDERBOOK_PATH = "/v5/market/orderbook"


def decode_instruments(
    body: bytes | str, category: Literal["spot", "linear"], *, asset_class: str = "crypto"
) -> tuple[list[Instrument], str]:
    """``GET /v5/market/instruments-info?category=..`` -> (instruments, ``nextPageCursor``).

    Tick = ``priceFilter.tickSize``; lot = ``lotSizeFilter.basePrecision`` (spot) or
    ``qtyStep`` (linear). A ``retCode`` other than 0 raises RestError."""
    try:
        parsed = _instruments.decode(body)
    except DECODE_ERRORS as exc:
        raise _fail(exc, None, "instruments") from None
    if parsed.retCode != 0 or parsed.result is None:
        raise RestError(
            200, str(parsed.retCode), parsed.retMsg[:200], method="GET", path=INSTRUMENTS_PATH
        )
    out: list[Instrument] = []
    for i, e in enumerate(parsed.result.items):
        lot = e.lotSizeFilter.basePrecision if category == "spot" else e.lotSizeFilter.qtyStep
        name = "basePrecision" if category == "spot" else "qtyStep"
        if lot is None:
            raise FrameError(
                f"{e.symbol[:40]} has no {name}", field=f"result.list[{i}].lotSizeFilter.{name}"
            )
        try:
            out.append(Instrument(e.symbol, asset_class, e.priceFilter.tickSize, lot))
        except ConfigError as exc:
            raise FrameError(str(exc), field=f"result.list[{i}]") from None
    return out, parsed.result.nextPageCursor


def decode_rest_orderbook(body: bytes | str) -> BookSnapshot:
    """``GET /v5/market/orderbook`` -> a snapshot at ``u`` (books seed in band; this is for
    checks and tools)."""
    try:
        parsed = _rest_book_body.decode(body)
        if parsed.retCode != 0 or not parsed.result:
            raise RestError(
                200, str(parsed.retCode), parsed.retMsg[:200], method="GET", path=ORDERBOOK_PATH
            )
        r = _rest_book.decode(parsed.result)
    except DECODE_ERRORS as exc:
        raise _fail(exc, None, "result") from None
    return BookSnapshot(r.s, r.u, list(r.b), list(r.a), None, r.ts * 1_000_000)


# -- encoding (the gateway dialect encodes with the codec the client decodes) -----------------


def _ms(ts_ns: int | None) -> int:
    return (ts_ns or 0) // 1_000_000


def encode_book(event: BookSnapshot | BookDelta, seq: int | None = None) -> bytes:
    """An ``orderbook.200`` frame; ``seq`` (cross sequence) defaults to ``u``."""
    if event.last_id is None:
        raise ConfigError("a Bybit book message needs its update id u (last_id)")
    kind = "snapshot" if isinstance(event, BookSnapshot) else "delta"
    if kind == "delta" and event.last_id == 1:
        raise ConfigError("u == 1 means a reset: encode it as a snapshot")
    ms = _ms(event.ts_ns)
    data = {
        "s": event.symbol,
        "b": event.bids,
        "a": event.asks,
        "u": event.last_id,
        "seq": event.last_id if seq is None else seq,
    }
    topic = endpoints.to_topic(f"orderbook:{event.symbol}")
    return _encoder.encode({"topic": topic, "type": kind, "ts": ms, "data": data, "cts": ms})


def encode_trades(trades: Sequence[TradeEvent]) -> bytes:
    if not trades or any(t.side is None or t.symbol != trades[0].symbol for t in trades):
        raise ConfigError("encode_trades: one symbol, at least one trade, every one with a side")
    data = [
        {
            "T": _ms(t.ts_ns),
            "s": t.symbol,
            "S": "Buy" if t.side == "buy" else "Sell",
            "v": t.size,
            "p": t.price,
            "L": "ZeroPlusTick",
            "i": t.trade_id,
            "BT": False,
        }
        for t in trades
    ]
    topic = endpoints.to_topic(f"trades:{trades[0].symbol}")
    return _encoder.encode(
        {"topic": topic, "type": "snapshot", "ts": _ms(trades[-1].ts_ns), "data": data}
    )


def encode_ticker(t: TickerEvent, kind: Literal["snapshot", "delta"] = "snapshot") -> bytes:
    """A ``tickers`` frame with the fields that are not None (a linear delta omits the rest)."""
    fields = {
        "symbol": t.symbol,
        "lastPrice": t.last,
        "volume24h": t.volume,
        "bid1Price": t.bid,
        "bid1Size": t.bid_size,
        "ask1Price": t.ask,
        "ask1Size": t.ask_size,
    }
    data = {k: v for k, v in fields.items() if v is not None}
    topic = endpoints.to_topic(f"ticker:{t.symbol}")
    return _encoder.encode({"topic": topic, "type": kind, "ts": _ms(t.ts_ns), "data": data})


def encode_control(event: Subscribed | VenueError | Pong) -> bytes:
    """Answers to the client's ops, in the spot shape (``success``, ``ret_msg``, ``conn_id``,
    ``req_id``, ``op``); a pong is ``op: ping`` with ``ret_msg: pong``."""
    op: str
    if isinstance(event, Subscribed):
        success, msg, op = True, "", event.op
    elif isinstance(event, VenueError):
        success, msg, op = False, event.message, event.op
    else:
        success, msg, op = True, "pong", "ping"
    body: dict[str, object] = {"success": success, "ret_msg": msg, "conn_id": event.conn_id or ""}
    body["req_id"] = event.request_id or ""
    body["op"] = op
    return _encoder.encode(body)


def encode_instruments(
    instruments: Iterable[Instrument], category: Literal["spot", "linear"], cursor: str = ""
) -> bytes:
    lot_field = "basePrecision" if category == "spot" else "qtyStep"
    items = [
        {
            "symbol": i.symbol,
            "status": "Trading",
            "lotSizeFilter": {lot_field: i.lot_size},
            "priceFilter": {"tickSize": i.tick_size},
        }
        for i in instruments
    ]
    result = {"category": category, "list": items, "nextPageCursor": cursor}
    return _encoder.encode({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}})


def encode_rest_orderbook(snapshot: BookSnapshot) -> bytes:
    if snapshot.last_id is None:
        raise ConfigError("a Bybit REST book needs its update id u (last_id)")
    ms = _ms(snapshot.ts_ns)
    result = {
        "s": snapshot.symbol,
        "b": snapshot.bids,
        "a": snapshot.asks,
        "ts": ms,
        "u": snapshot.last_id,
        "seq": snapshot.last_id,
        "cts": ms,
    }
    return _encoder.encode({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}})


def encode_rest_error(ret_code: int, message: str) -> bytes:
    return _encoder.encode({"retCode": ret_code, "retMsg": message, "result": {}, "retExtInfo": {}})
