"""Binance spot and USD-M frames and REST bodies <-> ``protocol.normalised`` values. Pure.

One :class:`Codec` per market (``Codec(SPOT)``, ``Codec(USDM)``); the client decodes and the
gateway dialect encodes with the same structs, so both sides share one definition of each
shape. Decoding is msgspec (typed, in C); anything that does not fit raises one
:class:`~tickpipe.errors.FrameError` naming the channel (``orderbook:BTCUSDT``, when it can be
read) and the field (``U``, ``b[3][1]``, ...).

Stream frames (``decode_frame``), raw (``/ws``) or wrapped (``/stream``:
``{"stream": "btcusdt@depth@100ms", "data": {...}}``; the wrapper's stream must name the same
symbol as the event):

================  ==========================================  ===========================
event             spot                                        USD-M
================  ==========================================  ===========================
depthUpdate       ``E s U u b a`` -> BookDelta(first_id=U,    + ``T pu`` -> prev_id=pu
                  last_id=u)
trade / aggTrade  ``@trade``: ``t p q T m`` -> TradeEvent      ``@aggTrade``: ``a p q f l T m``
bookTicker        ``u s b B a A`` (no ``e``) -> TickerEvent    ``e u E T s b B a A``
serverShutdown    ``E`` -> :class:`ServerShutdown`             (same, if sent)
================  ==========================================  ===========================

plus the command results ``{"result": null, "id": 1}`` -> :class:`CommandAck` and errors
``{"code": 2, "msg": "...", "id": 1}`` -> :class:`VenueError`. Heartbeats are WebSocket ping
frames (``endpoints.Heartbeat``), never JSON, so nothing here decodes them.

Exactness: prices and sizes are JSON strings and stay the venue's text (``RawLevel``); ids and
times are JSON integers, decoded as Python ``int`` (exact, never float). Times are milliseconds
(``ts_unit_ns=1_000_000``) unless the connection asked for ``timeUnit=MICROSECOND``
(``ts_unit_ns=1_000``). A book delta's ``ts_ns`` is the event time ``E``, a trade's the trade
time ``T``. ``m`` ("is the buyer the market maker") true means the taker sold: side ``sell``.

REST bodies: the depth snapshot (``lastUpdateId``, ``bids``, ``asks``; USD-M adds ``E``, ``T``)
-> BookSnapshot; exchangeInfo -> ``{symbol: Instrument}`` on the book grid (the decimals levels
are written in; real books hold levels off the current filters) or, with ``grid="filters"``,
tick = PRICE_FILTER ``tickSize`` and lot = LOT_SIZE ``stepSize`` as written (``"0.00010000"``:
8 decimals, tick 10,000 units); an error body ``{"code": -1121, "msg": "Invalid symbol."}``
-> :class:`VenueError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Raw, UnsetType

from tickpipe.errors import ConfigError, FrameError
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import (
    BookDelta,
    BookSnapshot,
    NormalisedEvent,
    RawLevel,
    TickerEvent,
    TradeEvent,
)
from tickpipe.venues.binance.endpoints import SPOT, VenueSpec

Id = Annotated[int, msgspec.Meta(ge=0)]
Millis = Annotated[int, msgspec.Meta(ge=0)]
CommandId = int | str | None  # documented: 64-bit signed integer, alphanumeric string, or null

# -- control values (not market data) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandAck:
    """The reply to a SUBSCRIBE/UNSUBSCRIBE/... command: ``result`` is None for a success of a
    non-query command, the answer (a list of streams, a bool) for a query."""

    id: CommandId
    result: Any = None


@dataclass(frozen=True, slots=True)
class VenueError:
    """An error frame (stream) or error body (REST): Binance's ``code`` and ``msg``."""

    code: int
    msg: str
    id: CommandId = None


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """The server is about to close the connection: reconnect now (spot ``serverShutdown``)."""

    ts_ns: int


@dataclass(frozen=True, slots=True)
class Command:
    """A client command as the gateway dialect reads it."""

    method: str
    params: list[Any]
    id: CommandId


StreamEvent = NormalisedEvent | CommandAck | VenueError | ServerShutdown

# -- wire structs (one definition for decode and encode; field order = documented order) -----


class _Probe(msgspec.Struct):
    """What a frame is, read without decoding its body."""

    stream: str | UnsetType = UNSET
    data: Raw | UnsetType = UNSET
    e: str | UnsetType = UNSET
    s: str | UnsetType = UNSET
    result: Raw | UnsetType = UNSET
    id: CommandId | UnsetType = UNSET
    code: int | UnsetType = UNSET
    msg: str | UnsetType = UNSET


class _SpotDepthUpdate(msgspec.Struct, frozen=True, gc=False):
    e: Literal["depthUpdate"]
    event_time: Millis = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    first_id: Id = msgspec.field(name="U")
    last_id: Id = msgspec.field(name="u")
    bids: list[RawLevel] = msgspec.field(name="b")
    asks: list[RawLevel] = msgspec.field(name="a")


class _UsdmDepthUpdate(msgspec.Struct, frozen=True, gc=False):
    e: Literal["depthUpdate"]
    event_time: Millis = msgspec.field(name="E")
    transaction_time: Millis = msgspec.field(name="T")
    symbol: str = msgspec.field(name="s")
    first_id: Id = msgspec.field(name="U")
    last_id: Id = msgspec.field(name="u")
    prev_id: Id = msgspec.field(name="pu")
    bids: list[RawLevel] = msgspec.field(name="b")
    asks: list[RawLevel] = msgspec.field(name="a")


class _Trade(msgspec.Struct, frozen=True, gc=False):
    e: Literal["trade"]
    event_time: Millis = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    trade_id: Id = msgspec.field(name="t")
    price: str = msgspec.field(name="p")
    qty: str = msgspec.field(name="q")
    trade_time: Millis = msgspec.field(name="T")
    buyer_is_maker: bool = msgspec.field(name="m")
    ignore: bool = msgspec.field(name="M", default=True)


class _AggTrade(msgspec.Struct, frozen=True, gc=False):
    e: Literal["aggTrade"]
    event_time: Millis = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    agg_id: Id = msgspec.field(name="a")
    price: str = msgspec.field(name="p")
    qty: str = msgspec.field(name="q")
    first_trade_id: Id = msgspec.field(name="f")
    last_trade_id: Id = msgspec.field(name="l")
    trade_time: Millis = msgspec.field(name="T")
    buyer_is_maker: bool = msgspec.field(name="m")


class _SpotBookTicker(msgspec.Struct, frozen=True, gc=False):
    update_id: Id = msgspec.field(name="u")
    symbol: str = msgspec.field(name="s")
    bid: str = msgspec.field(name="b")
    bid_qty: str = msgspec.field(name="B")
    ask: str = msgspec.field(name="a")
    ask_qty: str = msgspec.field(name="A")


class _UsdmBookTicker(msgspec.Struct, frozen=True, gc=False):
    e: Literal["bookTicker"]
    update_id: Id = msgspec.field(name="u")
    event_time: Millis = msgspec.field(name="E")
    transaction_time: Millis = msgspec.field(name="T")
    symbol: str = msgspec.field(name="s")
    bid: str = msgspec.field(name="b")
    bid_qty: str = msgspec.field(name="B")
    ask: str = msgspec.field(name="a")
    ask_qty: str = msgspec.field(name="A")


class _ServerShutdown(msgspec.Struct, frozen=True):
    e: Literal["serverShutdown"]
    event_time: Millis = msgspec.field(name="E")


class _Combined(msgspec.Struct, frozen=True):
    stream: str
    data: Raw


class _Ack(msgspec.Struct, frozen=True):
    result: Any
    id: CommandId


class _Error(msgspec.Struct, frozen=True, omit_defaults=True):
    code: int
    msg: str
    id: CommandId = None


class _Command(msgspec.Struct, frozen=True, omit_defaults=True):
    method: str
    params: list[Any] = msgspec.field(default_factory=list)
    id: CommandId = None


class _SpotDepthSnapshot(msgspec.Struct, frozen=True, gc=False):
    last_update_id: Id = msgspec.field(name="lastUpdateId")
    bids: list[RawLevel] = msgspec.field(default_factory=list)
    asks: list[RawLevel] = msgspec.field(default_factory=list)


class _UsdmDepthSnapshot(msgspec.Struct, frozen=True, gc=False):
    last_update_id: Id = msgspec.field(name="lastUpdateId")
    event_time: Millis = msgspec.field(name="E")
    transaction_time: Millis = msgspec.field(name="T")
    bids: list[RawLevel] = msgspec.field(default_factory=list)
    asks: list[RawLevel] = msgspec.field(default_factory=list)


class _Filter(msgspec.Struct, frozen=True, omit_defaults=True):
    filter_type: str = msgspec.field(name="filterType")
    min_price: str | None = msgspec.field(name="minPrice", default=None)
    max_price: str | None = msgspec.field(name="maxPrice", default=None)
    tick_size: str | None = msgspec.field(name="tickSize", default=None)
    min_qty: str | None = msgspec.field(name="minQty", default=None)
    max_qty: str | None = msgspec.field(name="maxQty", default=None)
    step_size: str | None = msgspec.field(name="stepSize", default=None)


Precision = Annotated[int, msgspec.Meta(ge=0, le=18)]


class _SymbolInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    symbol: str
    status: str | None = None
    # spot: decimals of sizes (base) and prices (quote) as the venue writes them
    base_asset_precision: Precision | None = msgspec.field(name="baseAssetPrecision", default=None)
    quote_asset_precision: Precision | None = msgspec.field(
        name="quoteAssetPrecision", default=None
    )
    # USD-M: the same ("please do not use it as tickSize / stepSize": not the order grid)
    price_precision: Precision | None = msgspec.field(name="pricePrecision", default=None)
    quantity_precision: Precision | None = msgspec.field(name="quantityPrecision", default=None)
    filters: list[_Filter] = msgspec.field(default_factory=list)


class _RateLimit(msgspec.Struct, frozen=True):
    rate_limit_type: str = msgspec.field(name="rateLimitType")
    interval: str = "MINUTE"
    interval_num: int = msgspec.field(name="intervalNum", default=1)
    limit: int = 0


class _ExchangeInfo(msgspec.Struct, frozen=True):
    timezone: str = "UTC"
    server_time: Millis = msgspec.field(name="serverTime", default=0)
    rate_limits: list[_RateLimit] = msgspec.field(name="rateLimits", default_factory=list)
    exchange_filters: list[Any] = msgspec.field(name="exchangeFilters", default_factory=list)
    symbols: list[_SymbolInfo] = msgspec.field(default_factory=list)


_probe = msgspec.json.Decoder(_Probe)
_spot_depth = msgspec.json.Decoder(_SpotDepthUpdate)
_usdm_depth = msgspec.json.Decoder(_UsdmDepthUpdate)
_trade = msgspec.json.Decoder(_Trade)
_agg = msgspec.json.Decoder(_AggTrade)
_spot_bt = msgspec.json.Decoder(_SpotBookTicker)
_usdm_bt = msgspec.json.Decoder(_UsdmBookTicker)
_shutdown = msgspec.json.Decoder(_ServerShutdown)
_ack = msgspec.json.Decoder(_Ack)
_error = msgspec.json.Decoder(_Error)
_command = msgspec.json.Decoder(_Command)
_spot_snap = msgspec.json.Decoder(_SpotDepthSnapshot)
_usdm_snap = msgspec.json.Decoder(_UsdmDepthSnapshot)
_info = msgspec.json.Decoder(_ExchangeInfo)
_encoder = msgspec.json.Encoder()

# what a malformed body can raise while decoding (ValidationError is a DecodeError); a str
# frame with a lone surrogate raises UnicodeEncodeError
_ERRORS = (msgspec.DecodeError, UnicodeError)

_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"missing required field `(?P<name>[^`]*)`")


def _field_of(exc: Exception, prefix: str = "") -> str | None:
    """``Expected `str`, got `int` - at `$.b[0][1]``` -> ``"b[0][1]"``."""
    text = str(exc)
    m = _PATH.search(text)
    path = m.group("path").lstrip(".") if m else ""
    missing = _MISSING.search(text)
    if missing:
        path = f"{path}.{missing.group('name')}" if path else missing.group("name")
    if prefix and path.startswith(prefix):
        path = path[len(prefix) :].lstrip(".")
    return path or None


def _reason(exc: Exception) -> str:
    return _PATH.sub("", str(exc)) or type(exc).__name__


_DEPTH_PREFIXES = (b'{"e":"depthUpdate"', '{"e":"depthUpdate"')


class Codec:
    """Decode and encode one Binance market's frames (``spec``: ``SPOT`` or ``USDM``).

    ``ts_unit_ns`` is the length of one unit of the venue's time fields in nanoseconds:
    1,000,000 for the default milliseconds, 1,000 with ``timeUnit=MICROSECOND`` (spot)."""

    __slots__ = ("_channel_kind", "_decoders", "_stream_event", "spec", "ts_unit_ns", "usdm")

    def __init__(self, spec: VenueSpec = SPOT, *, ts_unit_ns: int = 1_000_000) -> None:
        if ts_unit_ns not in (1_000, 1_000_000):
            raise ConfigError(f"ts_unit_ns must be 1000 or 1000000, got {ts_unit_ns!r}")
        self.spec = spec
        self.ts_unit_ns = ts_unit_ns
        self.usdm = spec.continuity.value == "link"
        self._channel_kind = {
            "depthUpdate": "orderbook",
            "trade": "trades",
            "aggTrade": "trades",
            "bookTicker": "ticker",
        }
        trade = "aggTrade" if self.usdm else "trade"
        self._stream_event = {
            spec.depth_suffix[1:]: "depthUpdate",
            spec.trades_suffix[1:]: trade,
            spec.ticker_suffix[1:]: "bookTicker",
        }
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {
            "depthUpdate": _usdm_depth if self.usdm else _spot_depth,
            "trade": _trade,
            "aggTrade": _agg,
            "bookTicker": _usdm_bt if self.usdm else _spot_bt,
            "serverShutdown": _shutdown,
        }

    # -- stream frames ---------------------------------------------------------------------
    def decode_frame(self, frame: bytes | str) -> StreamEvent:
        """One text frame of the market stream -> a normalised event or a control value."""
        if frame[:10] in (b'{"stream":', '{"stream":'):  # as Binance writes /stream frames
            return self._decode_combined(frame)
        if frame[:18] in _DEPTH_PREFIXES:  # a /ws depth event, as Binance writes them
            try:  # straight to its typed decoder: the probe below is a second whole parse
                value = self._decoders["depthUpdate"].decode(frame)
            except _ERRORS:
                pass  # the probe's route below names what is wrong, as for any frame
            else:
                return self._delta(value)
        try:
            probe = _probe.decode(frame)
        except _ERRORS as exc:
            raise FrameError(f"not a Binance frame: {_reason(exc)}", field=_field_of(exc)) from None
        if probe.stream is not UNSET or probe.data is not UNSET:
            return self._decode_combined(frame)
        if probe.e is not UNSET:
            return self._decode_event(probe.e, frame, None)
        if probe.result is not UNSET:
            return self._decode_ack(frame)
        if probe.code is not UNSET:
            return self._decode_error(frame)
        if probe.s is not UNSET:  # spot bookTicker: the only event without "e"
            return self._decode_event("bookTicker", frame, None)
        raise FrameError("frame is neither an event, a command result nor an error")

    def _decode_combined(self, frame: bytes | str) -> StreamEvent:
        try:
            wrapped = msgspec.json.decode(frame, type=_Combined)
        except _ERRORS as exc:
            raise FrameError(
                f"bad combined-stream frame: {_reason(exc)}", field=_field_of(exc)
            ) from None
        stream = wrapped.stream
        if stream == "!serverShutdown":
            return self._decode_event("serverShutdown", wrapped.data, None)
        symbol, _, suffix = stream.partition("@")
        event = self._stream_event.get(suffix)
        if event is None or not symbol:
            self.spec.channel_of_stream(stream)  # raises the FrameError naming the stream
            raise AssertionError("unreachable")  # pragma: no cover
        return self._decode_event(event, wrapped.data, stream)

    def _channel(self, event: str, body: bytes | str | Raw, stream: str | None) -> str | None:
        """The channel a bad frame belongs to, for its FrameError (error path only)."""
        if stream is not None:
            return self.spec.channel_of_stream(stream)
        kind = self._channel_kind.get(event)
        try:
            probe = _probe.decode(body)
        except _ERRORS:
            return None
        s = probe.s
        if kind and isinstance(s, str) and s.isascii() and s.isalnum():
            return f"{kind}:{s.upper()}"
        return None

    def _decode_event(self, event: str, body: bytes | str | Raw, stream: str | None) -> StreamEvent:
        decoder = self._decoders.get(event)
        if decoder is None:
            raise FrameError(f"unknown event type {event!r}", field="e")
        try:
            value = decoder.decode(body)
        except _ERRORS as exc:
            channel = self._channel(event, body, stream)
            raise FrameError(_reason(exc), channel=channel, field=_field_of(exc)) from None
        if isinstance(value, _ServerShutdown):
            return ServerShutdown(value.event_time * self.ts_unit_ns)
        symbol: str = value.symbol
        if stream is not None and symbol.lower() != stream.partition("@")[0]:
            raise FrameError(
                f"event symbol {symbol!r} does not match stream {stream!r}",
                channel=self._channel(event, body, stream),
                field="s",
            )
        if isinstance(value, _SpotDepthUpdate | _UsdmDepthUpdate):
            return self._delta(value)
        if isinstance(value, _Trade):
            return TradeEvent(
                symbol,
                str(value.trade_id),
                value.price,
                value.qty,
                "sell" if value.buyer_is_maker else "buy",
                value.trade_time * self.ts_unit_ns,
            )
        if isinstance(value, _AggTrade):
            return TradeEvent(
                symbol,
                str(value.agg_id),
                value.price,
                value.qty,
                "sell" if value.buyer_is_maker else "buy",
                value.trade_time * self.ts_unit_ns,
            )
        if isinstance(value, _UsdmBookTicker):
            return TickerEvent(
                symbol,
                value.bid,
                value.bid_qty,
                value.ask,
                value.ask_qty,
                ts_ns=value.event_time * self.ts_unit_ns,
            )
        assert isinstance(value, _SpotBookTicker)
        return TickerEvent(symbol, value.bid, value.bid_qty, value.ask, value.ask_qty)

    def _delta(self, value: _SpotDepthUpdate | _UsdmDepthUpdate) -> BookDelta:
        if value.first_id > value.last_id:
            raise FrameError(
                f"first update id U={value.first_id} is after final update id u={value.last_id}",
                channel=f"orderbook:{value.symbol.upper()}",
                field="U",
            )
        return BookDelta(  # positional: the fastest way to build a Struct
            value.symbol,
            value.bids,
            value.asks,
            value.last_id,
            value.first_id,
            value.prev_id if isinstance(value, _UsdmDepthUpdate) else None,
            None,  # checksum: Binance sends none
            value.event_time * self.ts_unit_ns,
        )

    @staticmethod
    def _decode_ack(frame: bytes | str) -> CommandAck:
        try:
            ack = _ack.decode(frame)
        except _ERRORS as exc:
            raise FrameError(f"bad command result: {_reason(exc)}", field=_field_of(exc)) from None
        return CommandAck(ack.id, ack.result)

    @staticmethod
    def _decode_error(frame: bytes | str) -> VenueError:
        try:
            err = _error.decode(frame)
        except _ERRORS as exc:
            raise FrameError(f"bad error frame: {_reason(exc)}", field=_field_of(exc)) from None
        return VenueError(err.code, err.msg, err.id)

    # -- REST bodies -----------------------------------------------------------------------
    def decode_depth_snapshot(self, body: bytes | str, symbol: str) -> BookSnapshot:
        """The body of ``GET /api/v3/depth`` (``/fapi/v1/depth``) for ``symbol``."""
        channel = f"orderbook:{symbol.upper()}"
        try:
            if self.usdm:
                u = _usdm_snap.decode(body)
                return BookSnapshot(
                    symbol.upper(),
                    u.last_update_id,
                    u.bids,
                    u.asks,
                    ts_ns=u.event_time * self.ts_unit_ns,
                )
            s = _spot_snap.decode(body)
        except _ERRORS as exc:
            raise FrameError(
                f"bad depth snapshot: {_reason(exc)}", channel=channel, field=_field_of(exc)
            ) from None
        return BookSnapshot(symbol.upper(), s.last_update_id, s.bids, s.asks)

    @staticmethod
    def decode_rest_error(body: bytes | str) -> VenueError:
        """An error body ``{"code": -1121, "msg": "Invalid symbol."}`` (any 4xx/5xx)."""
        try:
            err = _error.decode(body)
        except _ERRORS as exc:
            raise FrameError(f"bad error body: {_reason(exc)}", field=_field_of(exc)) from None
        return VenueError(err.code, err.msg, err.id)

    def decode_exchange_info(
        self, body: bytes | str, *, grid: Literal["book", "filters"] = "book"
    ) -> dict[str, Instrument]:
        """exchangeInfo -> ``{symbol: Instrument}``.

        ``grid="filters"``: tick = PRICE_FILTER ``tickSize``, lot = LOT_SIZE ``stepSize`` as
        written: the grid a NEW order must be on. ``grid="book"`` (default, for books): one
        unit of the decimals the venue writes book levels in (spot ``quoteAssetPrecision`` /
        ``baseAssetPrecision``, USD-M ``pricePrecision`` / ``quantityPrecision``), falling
        back to the filters when a body has no precision fields. Real books hold levels off
        the current filters (orders resting from before a tick or step change, remainders of
        quote-quantity fills: the recorded NKNUSDT book has 34 prices and 49 sizes off its
        filters), so a book checked against the filters would reject real, exact frames.

        A ``tickSize``/``stepSize`` of 0 (documented: the rule is disabled) becomes one unit of
        its last decimal written (``"0.00000000"`` -> ``"0.00000001"``)."""
        try:
            info = _info.decode(body)
        except _ERRORS as exc:
            raise FrameError(f"bad exchangeInfo: {_reason(exc)}", field=_field_of(exc)) from None
        out: dict[str, Instrument] = {}
        for i, sym in enumerate(info.symbols):
            tick = lot = None
            for f in sym.filters:
                if f.filter_type == "PRICE_FILTER":
                    tick = f.tick_size
                elif f.filter_type == "LOT_SIZE":
                    lot = f.step_size
            where = f"symbols[{i}]"
            if grid == "book":
                pd, sd = (
                    (sym.price_precision, sym.quantity_precision)
                    if self.usdm
                    else (sym.quote_asset_precision, sym.base_asset_precision)
                )
                tick = tick if pd is None else _unit(pd)
                lot = lot if sd is None else _unit(sd)
            if tick is None:
                raise FrameError(
                    f"{sym.symbol}: no PRICE_FILTER tickSize", field=f"{where}.filters"
                )
            if lot is None:
                raise FrameError(f"{sym.symbol}: no LOT_SIZE stepSize", field=f"{where}.filters")
            try:
                out[sym.symbol] = Instrument(
                    sym.symbol, "crypto", _nonzero_step(tick), _nonzero_step(lot)
                )
            except ConfigError as exc:
                raise FrameError(str(exc), field=f"{where}.filters") from None
        return out

    # -- encoders (the gateway dialect) ----------------------------------------------------
    def _ms(self, ts_ns: int | None) -> int:
        return 0 if ts_ns is None else ts_ns // self.ts_unit_ns

    def encode_delta(self, delta: BookDelta) -> bytes:
        """A depthUpdate event exactly as documented (spot: ``e E s U u b a``; USD-M:
        ``e E T s U u pu b a``)."""
        if delta.first_id is None or delta.last_id is None:
            raise ConfigError("a Binance depth update needs first_id and last_id")
        if self.usdm and delta.prev_id is None:
            raise ConfigError("a USD-M depth update needs prev_id (pu)")
        ms = self._ms(delta.ts_ns)
        bids, asks = list(delta.bids), list(delta.asks)
        sym, first, last = delta.symbol, delta.first_id, delta.last_id
        if self.usdm:
            assert delta.prev_id is not None
            return _encoder.encode(
                _UsdmDepthUpdate("depthUpdate", ms, ms, sym, first, last, delta.prev_id, bids, asks)
            )
        return _encoder.encode(_SpotDepthUpdate("depthUpdate", ms, sym, first, last, bids, asks))

    def encode_trade(self, trade: TradeEvent) -> bytes:
        """Spot ``trade`` (``t`` = trade_id) or USD-M ``aggTrade`` (``a`` = trade_id; one fill,
        so ``f`` = ``l`` = trade_id). trade_id must be a decimal integer; side is required."""
        if trade.side is None or not trade.trade_id.isascii() or not trade.trade_id.isdigit():
            raise ConfigError(f"a Binance trade needs a numeric id and a side: {trade!r}")
        ms = self._ms(trade.ts_ns)
        tid = int(trade.trade_id)
        maker = trade.side == "sell"
        if self.usdm:
            return _encoder.encode(
                _AggTrade(
                    "aggTrade", ms, trade.symbol, tid, trade.price, trade.size, tid, tid, ms, maker
                )
            )
        return _encoder.encode(
            _Trade("trade", ms, trade.symbol, tid, trade.price, trade.size, ms, maker, True)
        )

    def encode_ticker(self, ticker: TickerEvent, update_id: int) -> bytes:
        """A bookTicker event; ``update_id`` is its ``u`` (the order book update id, which
        TickerEvent does not carry)."""
        if None in (ticker.bid, ticker.bid_size, ticker.ask, ticker.ask_size):
            raise ConfigError(f"a Binance bookTicker needs bid, bid_size, ask, ask_size: {ticker}")
        b, bq, a, aq = (str(x) for x in (ticker.bid, ticker.bid_size, ticker.ask, ticker.ask_size))
        if self.usdm:
            ms = self._ms(ticker.ts_ns)
            return _encoder.encode(
                _UsdmBookTicker("bookTicker", update_id, ms, ms, ticker.symbol, b, bq, a, aq)
            )
        return _encoder.encode(_SpotBookTicker(update_id, ticker.symbol, b, bq, a, aq))

    def encode_combined(self, channel: str, data: bytes) -> bytes:
        """Wrap an encoded event for ``/stream``:
        ``{"stream":"btcusdt@depth@100ms","data":...}``."""
        return _encoder.encode(_Combined(self.spec.stream_name(channel), Raw(data)))

    def encode_server_shutdown(self, ts_ns: int) -> bytes:
        return _encoder.encode(_ServerShutdown("serverShutdown", self._ms(ts_ns)))

    def encode_depth_snapshot(self, snapshot: BookSnapshot) -> bytes:
        """The REST depth body (spot: ``lastUpdateId bids asks``; USD-M adds ``E T``)."""
        if snapshot.last_id is None:
            raise ConfigError("a Binance depth snapshot needs last_id (lastUpdateId)")
        if self.usdm:
            ms = self._ms(snapshot.ts_ns)
            return _encoder.encode(
                _UsdmDepthSnapshot(
                    snapshot.last_id, ms, ms, list(snapshot.bids), list(snapshot.asks)
                )
            )
        return _encoder.encode(
            _SpotDepthSnapshot(snapshot.last_id, list(snapshot.bids), list(snapshot.asks))
        )

    def encode_exchange_info(
        self, instruments: list[Instrument], *, server_time_ms: int = 0, weight_per_minute: int
    ) -> bytes:
        """A minimal exchangeInfo body: ``rateLimits`` (REQUEST_WEIGHT) and, per instrument, its
        decimals as the precision fields (the book grid) and a PRICE_FILTER and a LOT_SIZE
        filter carrying its tick and lot as written (the order grid)."""
        filters = [
            [
                _Filter("PRICE_FILTER", tick_size=i.tick_size),
                _Filter("LOT_SIZE", step_size=i.lot_size),
            ]
            for i in instruments
        ]
        if self.usdm:
            symbols = [
                _SymbolInfo(
                    i.symbol,
                    "TRADING",
                    price_precision=i.price_decimals,
                    quantity_precision=i.size_decimals,
                    filters=f,
                )
                for i, f in zip(instruments, filters, strict=True)
            ]
        else:
            symbols = [
                _SymbolInfo(
                    i.symbol,
                    "TRADING",
                    base_asset_precision=i.size_decimals,
                    quote_asset_precision=i.price_decimals,
                    filters=f,
                )
                for i, f in zip(instruments, filters, strict=True)
            ]
        limits = [_RateLimit("REQUEST_WEIGHT", "MINUTE", 1, weight_per_minute)]
        return _encoder.encode(_ExchangeInfo("UTC", server_time_ms, limits, [], symbols))

    # -- commands (client -> venue), for the gateway dialect --------------------------------
    @staticmethod
    def decode_command(frame: bytes | str) -> Command:
        """``{"method":"SUBSCRIBE","params":[...],"id":1}`` -> :class:`Command`."""
        try:
            cmd = _command.decode(frame)
        except _ERRORS as exc:
            raise FrameError(f"bad command: {_reason(exc)}", field=_field_of(exc)) from None
        return Command(cmd.method, cmd.params, cmd.id)

    @staticmethod
    def encode_ack(request_id: CommandId, result: Any = None) -> bytes:
        """``{"result":null,"id":1}``."""
        return _encoder.encode(_Ack(result, request_id))

    @staticmethod
    def encode_error(code: int, msg: str, request_id: CommandId = None) -> bytes:
        """``{"code":2,"msg":"Invalid request: ...","id":1}`` (``id`` omitted when None)."""
        return _encoder.encode(_Error(code, msg, request_id))


def _unit(decimals: int) -> str:
    """One unit of the last of ``decimals`` places: 8 -> "0.00000001", 0 -> "1"."""
    return f"0.{'0' * (decimals - 1)}1" if decimals else "1"


def _nonzero_step(step: str) -> str:
    """A step written as zero (``"0.00000000"``, rule disabled) -> one unit of its last
    decimal; any other text unchanged (Instrument validates it)."""
    whole, dot, frac = step.partition(".")
    if step.isascii() and (whole + frac).isdigit() and not (whole + frac).strip("0"):
        return f"0.{'0' * (len(frac) - 1)}1" if dot and frac else "1"
    return step
