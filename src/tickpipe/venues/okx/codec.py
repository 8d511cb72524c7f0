"""OKX v5 public frames and REST bodies <-> ``protocol.normalised`` values. Pure: no I/O.

Stream frames (``wss://ws.okx.com:8443/ws/v5/public``), as documented in the OKX API v5
reference (https://www.okx.com/docs-v5/en/, "WebSocket › Order book channel / Trades channel /
Tickers channel") and as recorded (``tests/fixtures/venues/okx``)::

    {"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot"|"update",
     "data":[{"asks":[["30243.5","1.44679","0","6"],...],"bids":[...],"ts":"1652459225453",
              "checksum":-652563973,"prevSeqId":-1,"seqId":123456}]}
    {"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",
     "tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","ts":"1630048897897"}]}
    {"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","last":"...",
     "askPx":"...","askSz":"...","bidPx":"...","bidSz":"...","vol24h":"...","ts":"..."}]}
    {"id":"7","event":"subscribe"|"unsubscribe","arg":{...},"connId":"accb8e21"}
    {"id":"7","event":"error","code":"60012","msg":"Invalid request: ...","connId":"..."}
    {"event":"notice","code":"64008","msg":"The connection will soon be closed for a service
     upgrade. Please reconnect.","connId":"..."}
    pong                                          (the text answer to the client's ``ping``)

Levels are ``[price, size, "0" (deprecated liquidated orders), numOrders]`` strings; a size of
zero removes the level. Prices and sizes stay the venue's text (``RawLevel``): the checksum is
defined on that text. ``checksum`` is a signed 32-bit CRC (:mod:`.checksum`); OKX sends 0 on
every frame from 23 June 2026, and 0 always means "no check": it decodes to ``checksum=None``.
``seqId``/``prevSeqId`` are absent from frames recorded before OKX added them (2022): they then
decode to None and the checksum alone guards the book.

Every malformed frame raises :class:`~tickpipe.errors.FrameError` naming the channel
(``orderbook:BTC-USDT``) when it can be read, and the field (``data[0].bids[3]``); nothing else
escapes. Decoding is two-pass with msgspec (envelope, then the ``data`` of the channel it names),
both typed, in C. Integers (``checksum``, ``seqId``) are JSON integers, exact; every other number
is a string, never a float.

Order counts (``numOrders``) are not part of the normalised values: the encoder writes "1" for
a level with size and "0" for a removal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar

import msgspec

from tickpipe.errors import ConfigError, FrameError, RestError
from tickpipe.protocol import continuity
from tickpipe.protocol.continuity import Step
from tickpipe.protocol.decode_errors import DECODE_ERRORS, decode_error
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import (
    BookDelta,
    BookSnapshot,
    Continuity,
    RawLevel,
    TickerEvent,
    TradeEvent,
)
from tickpipe.venues.okx import endpoints

# -- control values ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscribed:
    """OKX confirmed ``{"event":"subscribe"}``. ``channel`` is tickpipe's, None for an OKX
    channel tickpipe does not map (``okx_channel`` names it)."""

    channel: str | None
    okx_channel: str
    request_id: str | None = None
    conn_id: str | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    channel: str | None
    okx_channel: str
    request_id: str | None = None
    conn_id: str | None = None


@dataclass(frozen=True, slots=True)
class VenueError:
    """``{"event":"error"}``: a refused request (bad channel, unknown instId, rate limit...)."""

    code: str
    message: str
    request_id: str | None = None
    conn_id: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """``{"event":"notice"}``: e.g. code 64008, the connection closes soon for an upgrade."""

    code: str
    message: str
    conn_id: str | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    """The text ``pong`` answering the client's ``ping``."""


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """A client's ``subscribe``/``unsubscribe`` (the gateway dialect's side)."""

    op: Literal["subscribe", "unsubscribe"]
    channels: list[str]
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """The client's text ``ping``."""


OkxEvent = (
    BookSnapshot
    | BookDelta
    | TradeEvent
    | TickerEvent
    | Subscribed
    | Unsubscribed
    | VenueError
    | Notice
    | Pong
)

# -- wire structs -----------------------------------------------------------------------------

OkxLevel = tuple[str, str, str, str]
Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
SeqId = Annotated[int, msgspec.Meta(ge=0)]
PrevSeqId = Annotated[int, msgspec.Meta(ge=-1)]
Millis = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,19}$")]


class _Arg(msgspec.Struct, frozen=True):
    channel: str
    instId: str | None = None
    instType: str | None = None


class _Envelope(msgspec.Struct, frozen=True):
    arg: _Arg | None = None
    action: Literal["snapshot", "update"] | None = None
    data: msgspec.Raw = msgspec.Raw()  # empty: absent (Raw | None cannot be decoded)
    event: str | None = None
    code: str | None = None
    msg: str | None = None
    connId: str | None = None
    id: str | None = None


class _Book(msgspec.Struct, frozen=True):
    asks: list[OkxLevel]
    bids: list[OkxLevel]
    ts: Millis
    checksum: Int32 | None = None
    seqId: SeqId | None = None
    prevSeqId: PrevSeqId | None = None


class _Trade(msgspec.Struct, frozen=True):
    instId: str
    tradeId: str
    px: str
    sz: str
    side: Literal["buy", "sell"]
    ts: Millis


class _Ticker(msgspec.Struct, frozen=True):
    instId: str
    ts: Millis
    last: str = ""
    askPx: str = ""
    askSz: str = ""
    bidPx: str = ""
    bidSz: str = ""
    vol24h: str = ""


class _Instrument(msgspec.Struct, frozen=True):
    instId: str
    tickSz: str
    lotSz: str
    instType: str = ""
    state: str = ""


class _InstrumentsBody(msgspec.Struct, frozen=True):
    code: str
    msg: str = ""
    data: list[_Instrument] = []


class _RestBook(msgspec.Struct, frozen=True):
    asks: list[OkxLevel]
    bids: list[OkxLevel]
    ts: Millis


class _RestBooksBody(msgspec.Struct, frozen=True):
    code: str
    msg: str = ""
    data: list[_RestBook] = []


class _ClientRequest(msgspec.Struct, frozen=True):
    op: Literal["subscribe", "unsubscribe"]
    args: list[_Arg]
    id: str | None = None


_envelope = msgspec.json.Decoder(_Envelope)
_books = msgspec.json.Decoder(list[_Book])
_trades = msgspec.json.Decoder(list[_Trade])
_tickers = msgspec.json.Decoder(list[_Ticker])
_instruments = msgspec.json.Decoder(_InstrumentsBody)
_rest_books = msgspec.json.Decoder(_RestBooksBody)
_client = msgspec.json.Decoder(_ClientRequest)
_encoder = msgspec.json.Encoder()

_INST_RE = re.compile(
    rb'"channel"\s*:\s*"([a-z0-9-]{1,40})"\s*,\s*"instId"\s*:\s*"([A-Za-z0-9-]{1,40})"'
)


def _fail(exc: Exception, channel: str | None, prefix: str) -> FrameError:
    """A msgspec error -> FrameError naming the channel and the field (``data[0].bids[3]``)."""
    return decode_error(exc, "frame", channel, prefix)


def _guess_channel(data: bytes | str) -> str | None:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data[:4096])
    m = _INST_RE.search(raw[:4096])
    if m is None:
        return None
    return endpoints.from_arg(m.group(1).decode(), m.group(2).decode())


def _levels(raw: list[OkxLevel]) -> list[RawLevel]:
    return [(lv[0], lv[1]) for lv in raw]


def _opt(text: str) -> str | None:
    return text or None


_T = TypeVar("_T", _Trade, _Ticker)


# -- decoding the stream ----------------------------------------------------------------------


def decode(data: bytes | str) -> list[OkxEvent]:
    """Decode one text frame from ``/ws/v5/public`` into normalised events or control values.

    A ``books`` frame gives one :class:`BookSnapshot` or :class:`BookDelta` per ``data``
    element (OKX sends one); ``trades`` one :class:`TradeEvent` per trade; ``tickers`` one
    :class:`TickerEvent` per element. Raises FrameError on anything else."""
    if data == "pong" or data == b"pong":
        return [Pong()]
    try:
        env = _envelope.decode(data)
    except DECODE_ERRORS as exc:
        raise _fail(exc, _guess_channel(data), "") from None
    if env.event is not None:
        return [_control(env)]
    arg = env.arg
    if arg is None or not env.data:
        raise FrameError("frame has neither an event nor arg and data", field="arg")
    inst = arg.instId
    if inst is None:
        raise FrameError(f"{arg.channel} frame has no instId", field="arg.instId")
    channel = endpoints.from_arg(arg.channel, inst)
    if channel is None:
        raise FrameError(f"unexpected OKX channel {arg.channel[:40]!r}", field="arg.channel")
    try:
        if arg.channel == "books":
            return _book_events(env, channel, inst)
        if arg.channel == "trades":
            trades = _trades.decode(env.data)
            return [
                TradeEvent(inst, t.tradeId, t.px, t.sz, t.side, int(t.ts) * 1_000_000)
                for t in _same_inst(trades, inst, channel)
            ]
        tickers = _tickers.decode(env.data)
    except DECODE_ERRORS as exc:
        raise _fail(exc, channel, "data") from None
    return [
        TickerEvent(
            inst,
            _opt(t.bidPx),
            _opt(t.bidSz),
            _opt(t.askPx),
            _opt(t.askSz),
            _opt(t.last),
            _opt(t.vol24h),
            int(t.ts) * 1_000_000,
        )
        for t in _same_inst(tickers, inst, channel)
    ]


def _same_inst(items: list[_T], inst: str, channel: str) -> list[_T]:
    if not items:
        raise FrameError("data is empty", channel=channel, field="data")
    for i, item in enumerate(items):
        if item.instId != inst:
            raise FrameError(
                f"instId {item.instId[:40]!r} differs from arg.instId",
                channel=channel,
                field=f"data[{i}].instId",
            )
    return items


def _book_events(env: _Envelope, channel: str, inst: str) -> list[OkxEvent]:
    books = _books.decode(env.data)
    if not books:
        raise FrameError("data is empty", channel=channel, field="data")
    if env.action is None:
        raise FrameError("books frame has no action", channel=channel, field="action")
    out: list[OkxEvent] = []
    for b in books:
        checksum = b.checksum or None  # 0 (OKX from 23 June 2026) means: no check
        ts_ns = int(b.ts) * 1_000_000
        if env.action == "snapshot":
            if b.prevSeqId is not None and b.prevSeqId != -1:
                raise FrameError(
                    f"a snapshot has prevSeqId -1, not {b.prevSeqId}",
                    channel=channel,
                    field="data[0].prevSeqId",
                )
            out.append(
                BookSnapshot(inst, b.seqId, _levels(b.bids), _levels(b.asks), checksum, ts_ns)
            )
        else:
            if (b.seqId is None) != (b.prevSeqId is None):
                raise FrameError(
                    "an update has both seqId and prevSeqId or neither",
                    channel=channel,
                    field="data[0].seqId" if b.seqId is None else "data[0].prevSeqId",
                )
            out.append(
                BookDelta(
                    inst,
                    _levels(b.bids),
                    _levels(b.asks),
                    last_id=b.seqId,
                    prev_id=b.prevSeqId,
                    checksum=checksum,
                    ts_ns=ts_ns,
                )
            )
    return out


def _control(env: _Envelope) -> OkxEvent:
    if env.event in ("subscribe", "unsubscribe"):
        if env.arg is None:
            raise FrameError(f"{env.event} answer has no arg", field="arg")
        inst = env.arg.instId
        channel = None if inst is None else endpoints.from_arg(env.arg.channel, inst)
        cls = Subscribed if env.event == "subscribe" else Unsubscribed
        return cls(channel, env.arg.channel, env.id, env.connId)
    if env.event == "error":
        return VenueError(env.code or "", env.msg or "", env.id, env.connId)
    if env.event == "notice":
        return Notice(env.code or "", env.msg or "", env.connId)
    raise FrameError(f"unexpected OKX event {(env.event or '')[:40]!r}", field="event")


# -- continuity -------------------------------------------------------------------------------


def follows(last_id: int, delta: BookDelta) -> Step:
    """OKX's ``prevSeqId``/``seqId`` rule for a book whose last applied ``seqId`` is ``last_id``:
    ``Continuity.LINK``, whose link decides first, which covers the two exceptions OKX documents
    ("Order book channel", seqId): an update whose ``prevSeqId`` equals ``last_id`` is the next
    one even when its ``seqId`` equals its ``prevSeqId`` (no change for ~60 s: empty
    ``asks``/``bids`` sent to show the connection is alive) or is SMALLER than it (the sequence
    was reset by maintenance). This also serves the first update after an in-band snapshot
    (``last_id`` = the snapshot's ``seqId``): OKX's first update links to the snapshot exactly."""
    return continuity.follows(Continuity.LINK, last_id, delta)


# -- REST bodies ------------------------------------------------------------------------------

INSTRUMENTS_PATH = "/api/v5/public/instruments"
BOOKS_PATH = "/api/v5/market/books"


def decode_instruments(body: bytes | str, *, asset_class: str = "crypto") -> list[Instrument]:
    """``GET /api/v5/public/instruments?instType=SPOT`` -> Instruments (``tickSz``/``lotSz``).

    An error body (``code`` other than "0") raises RestError with OKX's code and message."""
    try:
        parsed = _instruments.decode(body)
    except DECODE_ERRORS as exc:
        raise _fail(exc, None, "instruments") from None
    if parsed.code != "0":
        raise RestError(200, parsed.code, parsed.msg[:200], method="GET", path=INSTRUMENTS_PATH)
    out: list[Instrument] = []
    for i, e in enumerate(parsed.data):
        try:
            out.append(Instrument(e.instId, asset_class, e.tickSz, e.lotSz))
        except ConfigError as exc:
            raise FrameError(str(exc), field=f"instruments.data[{i}].tickSz/lotSz") from None
    return out


def decode_rest_books(body: bytes | str, symbol: str) -> BookSnapshot:
    """``GET /api/v5/market/books?instId=..&sz=400`` -> a snapshot. It carries no ``seqId`` (so
    ``last_id`` is None): OKX books are seeded in band, this is for display and checks only."""
    channel = f"orderbook:{symbol}"
    try:
        parsed = _rest_books.decode(body)
    except DECODE_ERRORS as exc:
        raise _fail(exc, channel, "books") from None
    if parsed.code != "0":
        raise RestError(200, parsed.code, parsed.msg[:200], method="GET", path=BOOKS_PATH)
    if len(parsed.data) != 1:
        raise FrameError("books body has no single data entry", channel=channel, field="data")
    b = parsed.data[0]
    return BookSnapshot(symbol, None, _levels(b.bids), _levels(b.asks), None, int(b.ts) * 1_000_000)


def decode_client(data: bytes | str) -> ClientRequest | Ping:
    """A client's frame (the gateway dialect's side): ``ping`` or a subscribe/unsubscribe."""
    if data == "ping" or data == b"ping":
        return Ping()
    try:
        req = _client.decode(data)
    except DECODE_ERRORS as exc:
        raise _fail(exc, None, "") from None
    channels: list[str] = []
    for i, a in enumerate(req.args):
        ch = None if a.instId is None else endpoints.from_arg(a.channel, a.instId)
        if ch is None:
            raise FrameError(f"unsupported argument {a.channel[:40]!r}", field=f"args[{i}]")
        channels.append(ch)
    return ClientRequest(req.op, channels, req.id)


# -- encoding (the gateway dialect encodes with the codec the client decodes) -----------------


def _ms(ts_ns: int | None) -> str:
    return str((ts_ns or 0) // 1_000_000)


def _is_zero(size: str) -> bool:
    return not size.replace(".", "").strip("0")


def _wire_levels(levels: list[RawLevel]) -> list[list[str]]:
    return [[p, s, "0", "0" if _is_zero(s) else "1"] for p, s in levels]


def encode_book(event: BookSnapshot | BookDelta) -> bytes:
    """A ``books`` frame with the documented field order; ``seqId``/``prevSeqId`` are written
    when the event has ids (a snapshot's ``prevSeqId`` is -1); checksum None is written as 0."""
    body: dict[str, object] = {
        "asks": _wire_levels(event.asks),
        "bids": _wire_levels(event.bids),
        "ts": _ms(event.ts_ns),
        "checksum": event.checksum or 0,
    }
    if isinstance(event, BookSnapshot):
        action = "snapshot"
        if event.last_id is not None:
            body["prevSeqId"] = -1
            body["seqId"] = event.last_id
    else:
        action = "update"
        if event.last_id is not None:
            body["prevSeqId"] = event.prev_id if event.prev_id is not None else -1
            body["seqId"] = event.last_id
    return _encoder.encode(
        {"arg": {"channel": "books", "instId": event.symbol}, "action": action, "data": [body]}
    )


def encode_trades(trades: Sequence[TradeEvent]) -> bytes:
    """One ``trades`` frame for trades of one instrument (OKX omits no side: None is refused)."""
    if not trades:
        raise ConfigError("encode_trades needs at least one trade")
    inst = trades[0].symbol
    data = []
    for t in trades:
        if t.symbol != inst or t.side is None:
            raise ConfigError("encode_trades: one instrument, and every trade has a side")
        data.append(
            {
                "instId": inst,
                "tradeId": t.trade_id,
                "px": t.price,
                "sz": t.size,
                "side": t.side,
                "ts": _ms(t.ts_ns),
                "count": "1",
            }
        )
    return _encoder.encode({"arg": {"channel": "trades", "instId": inst}, "data": data})


def encode_ticker(t: TickerEvent) -> bytes:
    data = {
        "instType": "SPOT",
        "instId": t.symbol,
        "last": t.last or "",
        "lastSz": "",
        "askPx": t.ask or "",
        "askSz": t.ask_size or "",
        "bidPx": t.bid or "",
        "bidSz": t.bid_size or "",
        "open24h": "",
        "high24h": "",
        "low24h": "",
        "volCcy24h": "",
        "vol24h": t.volume or "",
        "sodUtc0": "",
        "sodUtc8": "",
        "ts": _ms(t.ts_ns),
    }
    return _encoder.encode({"arg": {"channel": "tickers", "instId": t.symbol}, "data": [data]})


def encode_event(
    event: Subscribed | Unsubscribed | VenueError | Notice,
) -> bytes:
    """The ``event`` answers: ``subscribe``/``unsubscribe``, ``error``, ``notice``."""
    body: dict[str, object] = {}
    if isinstance(event, (Subscribed, Unsubscribed)):
        if event.request_id is not None:
            body["id"] = event.request_id
        body["event"] = "subscribe" if isinstance(event, Subscribed) else "unsubscribe"
        if event.channel is None:
            raise ConfigError("encode_event: a (un)subscribe answer needs a tickpipe channel")
        body["arg"] = endpoints.to_arg(event.channel)
    elif isinstance(event, VenueError):
        if event.request_id is not None:
            body["id"] = event.request_id
        body |= {"event": "error", "code": event.code, "msg": event.message}
    else:
        body |= {"event": "notice", "code": event.code, "msg": event.message}
    if event.conn_id is not None:
        body["connId"] = event.conn_id
    return _encoder.encode(body)


def encode_instruments(instruments: Iterable[Instrument], inst_type: str = "SPOT") -> bytes:
    data = [
        {
            "instType": inst_type,
            "instId": i.symbol,
            "tickSz": i.tick_size,
            "lotSz": i.lot_size,
            "state": "live",
        }
        for i in instruments
    ]
    return _encoder.encode({"code": "0", "msg": "", "data": data})


def encode_rest_books(snapshot: BookSnapshot) -> bytes:
    data = {
        "asks": _wire_levels(snapshot.asks),
        "bids": _wire_levels(snapshot.bids),
        "ts": _ms(snapshot.ts_ns),
    }
    return _encoder.encode({"code": "0", "msg": "", "data": [data]})


def encode_rest_error(code: str, message: str) -> bytes:
    return _encoder.encode({"code": code, "msg": message, "data": []})
