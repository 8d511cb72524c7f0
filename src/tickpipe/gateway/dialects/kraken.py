"""``tickpipe gateway --dialect kraken``: the simulated markets as Kraken spot WebSocket v2.

Everything on the wire is encoded with :mod:`tickpipe.venues.kraken.codec` (the codec the
client decodes with), checksums with :mod:`tickpipe.venues.kraken.checksum`; documented limits
come from ``venues.kraken.limits``.

Symbols: ``BASE-QUOTE`` -> ``BASE/QUOTE`` (``BTC-USD`` -> ``BTC/USD``), a bare symbol gets
``/USD`` (``AAPL`` -> ``AAPL/USD``); grids unchanged. The hub runs under these names
(``orderbook:BTC/USD``). Prices and quantities are written with the instrument's decimals
(``pair_decimals`` / ``lot_decimals`` of AssetPairs: the precision Kraken's checksum uses).

Books: Kraken's ``book`` has no sequence numbers. A subscription at ``depth`` (10, 25, 100,
500, 1000; default 10) is answered with a ``snapshot`` of the top ``depth`` levels a side, then
one ``update`` per ``book_interval_ms`` (100) in which the book changed within that depth: the
levels whose quantity changed or that came into the top ``depth``, and qty 0 for levels
deleted from the book (a level pushed out of the top ``depth`` by a better one is never sent:
the client truncates, as Kraken documents). Each connection's depth is its own; the frames of
one depth are built once and fanned out. Every snapshot and update carries Kraken's CRC-32 of
the top 10 levels of the book after it (``venues.kraken.checksum``).

Served: WebSocket ``/v2``: a ``status`` frame on connect; ``subscribe``/``unsubscribe``
(``params.channel`` one of ``book``, ``trade``, ``ticker``; ``symbol`` a list) answered once
per symbol, ``success: false`` with Kraken's error texts; ``trade`` (one frame per print),
``ticker`` (a snapshot on subscribe, then at most one update per ``book_interval_ms`` when the
best bid/ask or the last price changed); ``{"channel": "heartbeat"}`` every
``heartbeat_interval_s`` (1) a subscribed connection has had nothing else sent;
``{"method": "ping"}`` answered ``pong``. REST ``/0/public/AssetPairs`` (``pair=`` optional).

Faults: ``drop_delta``, ``reorder_delta``, ``bad_checksum``, ``malformed_frame``,
``duplicate_delta`` on ``book`` updates (a drop or reorder waits for an update that changes the
top 10, the only one Kraken's checksum can show; a duplicate is harmless: Kraken's updates are
idempotent); ``disconnect``, ``stall``, ``stop_pings`` (no heartbeat and no pong: the server's
signs of life stop while data may still flow), ``silence_channel``; 429 on AssetPairs past
``rest_calls_per_s``. Snapshot faults do not apply (books seed in band) and are refused.

Orders (issue 17): Kraken's private REST endpoints (``AddOrder``, ``OpenOrders``,
``QueryOrders``, ``CancelOrder``, ``CancelAll``, ``CancelAllOrdersAfter``) and ``/0/public/Time``,
signed and checked as Kraken does (``API-Key``/``API-Sign`` verified with
``venues.kraken.auth``, the nonce above the key's last), over ``gw.desk`` and ``gw.dead_man``:
see :mod:`tickpipe.gateway.dialects.kraken_orders`. Keys are the gateway's (``--key
NAME:SECRET``, the secret base64 as Kraken's are).

Codec gaps filled here (``venues/kraken`` decodes AssetPairs but has no encoder for it): the
``/0/public/AssetPairs`` body.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from aiohttp import WSMsgType, web

from tickpipe.errors import ConfigError, FrameError
from tickpipe.gateway.dialects.base import (
    BookWindow,
    DialectBase,
    DialectConnection,
    IncomingRate,
    SlidingCount,
    apply_frame_fault,
    levels,
    parse_options,
    rename_markets,
    trade_event,
)
from tickpipe.gateway.dialects.kraken_orders import KrakenPrivate, PrivateLimits
from tickpipe.gateway.guard import clip
from tickpipe.gateway.logs import log_event
from tickpipe.gateway.markets import MarketSpec
from tickpipe.protocol.book import Level, OrderBook
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, TickerEvent
from tickpipe.venues.kraken import codec, endpoints, limits
from tickpipe.venues.kraken.checksum import checksum as kraken_checksum
from tickpipe.venues.kraken.codec import PingRequest, SubscribeRequest

if TYPE_CHECKING:
    from tickpipe.gateway.hub import Market
    from tickpipe.gateway.server import Gateway
    from tickpipe.gateway.simulator import SimTrade

WS_PATH = endpoints.VENUE.stream_path
ASSET_PAIRS_PATH = endpoints.VENUE.instruments_path
DEFAULT_DEPTH = 10  # Kraken's default when a subscribe names no depth
KIND_OF = {"book": "orderbook", "trade": "trades", "ticker": "ticker"}
KINDS = tuple(KIND_OF.values())
# Kraken's error texts (v2 answers ``{"error": TEXT, "success": false, ...}``)
ERR_PAIR = "Currency pair not supported"
ERR_CHANNEL = "Channel not supported"
ERR_DEPTH = "Invalid depth"
ERR_ALREADY = "Already subscribed"
ERR_NOT_FOUND = "Subscription Not Found"
ERR_RATE = "Exceeded msg rate"
ERR_REST_RATE = "EGeneral:Too many requests"
ERR_REST_PAIR = "EQuery:Unknown asset pair"
V1_ASSET_NAMES = {v: k for k, v in codec.V2_ASSET_NAMES.items()}  # BTC -> XBT (REST names)
_json = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class KrakenOptions:
    """Knobs of the kraken dialect (``--dialect-option NAME=VALUE``); defaults are Kraken's
    documented limits (``venues.kraken.limits``) where it documents one. docs/dialects.md.

    - ``book_interval_ms`` (100): the ``book`` push period (updates merged), also the
      ``ticker`` period.
    - ``heartbeat_interval_s`` (1.0): a subscribed connection with nothing sent this long gets
      ``{"channel": "heartbeat"}``.
    - ``max_requests_per_s`` (20): requests (subscribe, unsubscribe, ping) a connection may send
      in any one second; more are answered ``Exceeded msg rate`` and not carried out (Kraken's
      limit is dynamic and undocumented: this figure is ours).
    - ``max_connects_per_window`` (150) per ``connect_window_s`` (600.0): WebSocket connections
      an IP may open (Kraken's Cloudflare limit); more are refused HTTP 429 before the upgrade.
    - ``rest_calls_per_s`` (1): ``/0/public/AssetPairs`` calls an IP may make in any one second;
      more: HTTP 429 ``EGeneral:Too many requests`` with ``Retry-After: 1``.
    - Orders (Kraken's Starter tier, ``venues.kraken.limits``): ``trading_counter_max`` (60)
      and ``trading_decay_per_s`` (1.0): the trading counter per key and pair (AddOrder +1, a
      cancel +1..+8 by the order's age), past it ``EOrder:Rate limit exceeded``;
      ``api_counter_max`` (15) and ``api_decay_per_s`` (0.33): the REST counter per key
      (OpenOrders, QueryOrders, CancelAll, CancelAllOrdersAfter +1 each), past it
      ``EAPI:Rate limit exceeded``; ``max_open_per_pair`` (60): open orders a key may have on
      one pair (``EOrder:Orders limit exceeded``). Tests that refresh the dead man's switch
      several times a second raise ``api_decay_per_s``.
    """

    book_interval_ms: int = 100
    heartbeat_interval_s: float = limits.HEARTBEAT_INTERVAL_S
    max_requests_per_s: int = 20
    max_connects_per_window: int = limits.CONNECT_ATTEMPTS_PER_WINDOW
    connect_window_s: float = limits.CONNECT_WINDOW_S
    rest_calls_per_s: int = int(limits.REST_PUBLIC_CALLS_PER_S)
    trading_counter_max: float = limits.TRADING_COUNTER_MAX
    trading_decay_per_s: float = limits.TRADING_DECAY_PER_S
    api_counter_max: float = limits.REST_PRIVATE_COUNTER_MAX
    api_decay_per_s: float = limits.REST_PRIVATE_DECAY_PER_S
    max_open_per_pair: int = limits.MAX_OPEN_ORDERS_PER_PAIR


def kraken_symbol(symbol: str) -> str:
    """``BTC-USD`` -> ``BTC/USD``, ``USD-JPY`` -> ``USD/JPY``, ``AAPL`` -> ``AAPL/USD``."""
    base, dash, quote = symbol.partition("-")
    return f"{base}/{quote if dash else 'USD'}".upper()


def kraken_markets(markets: tuple[MarketSpec, ...]) -> tuple[MarketSpec, ...]:
    """The markets under their Kraken v2 symbols (ConfigError if two map to one name)."""
    return rename_markets(
        markets,
        kraken_symbol,
        lambda name: name.isascii() and name.count("/") == 1 and name.replace("/", "").isalnum(),
        "Kraken symbol (BASE/QUOTE, letters and digits)",
    )


class _Window(BookWindow):
    """One book's merged changes (:class:`BookWindow`: only whether it changed and its last
    seq are used), the seq of its last update (``prev``), the checksum there, the views a
    client of each subscribed depth holds and the frames held back by ``reorder_delta``."""

    __slots__ = ("cs", "cs_seq", "fault", "held_by_depth", "last_px", "prev", "views")

    def __init__(self, prev: int) -> None:
        super().__init__(prev)
        self.prev = prev
        self.cs: int | None = None
        self.cs_seq = -1
        self.fault: str | None = None  # a drop/reorder waiting for an update of the top 10
        self.views: dict[int, tuple[dict[int, int], dict[int, int]]] = {}
        self.held_by_depth: dict[int, bytes] = {}
        self.last_px: int | None = None


class KrakenConn(DialectConnection["KrakenDialect"]):
    """One WebSocket connection: its channels and book depths, heartbeat task and reader (the
    queue, writer, stall and close are :class:`DialectConnection`'s)."""

    def __init__(self, d: KrakenDialect, request: web.Request, conn_id: int) -> None:
        super().__init__(d, request, str(conn_id), d.gw.config.max_frame_bytes)
        self.connection_id = conn_id
        self.channels = self.subscribed
        self.depths: dict[str, int] = {}  # symbol -> subscribed book depth
        self.rate = IncomingRate(d.opts.max_requests_per_s)
        self.quiet_until = 0.0  # stop_pings: no heartbeat, no pong until then
        self.heartbeats = 0

    def hold(self, fault: str, until: float) -> None:
        if fault == "stop_pings":
            self.quiet_until = until
        else:
            super().hold(fault, until)

    def quiet(self) -> bool:
        return self.quiet_until > time.monotonic() or self.d.faults.settings.stop_pings

    async def _heartbeats(self) -> None:
        """A heartbeat once ``heartbeat_interval_s`` passed with nothing sent (and none sent),
        while subscribed to something and not silenced by ``stop_pings`` or ``stall``."""
        every = self.d.opts.heartbeat_interval_s
        last_beat = time.monotonic()
        while not self.closing:
            due = max(self.last_traffic, last_beat) + every
            now = time.monotonic()
            if now < due:
                await asyncio.sleep(due - now)
                continue
            last_beat = now
            if self.channels and not self.quiet() and not self.stalled():
                self.heartbeats += 1
                self.enqueue(codec.encode_heartbeat())

    # -- the connection ---------------------------------------------------------------------
    async def run(self) -> web.WebSocketResponse:
        return await self._serve(connection_id=self.connection_id)

    def _opened(self) -> None:
        self.enqueue(codec.encode_status("online", self.connection_id))

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        return [self._heartbeats()]

    async def _read_loop(self) -> None:
        async for msg in self.ws:
            if self.closing:
                break
            if msg.type == WSMsgType.TEXT:
                self._on_message(str(msg.data))
            elif msg.type == WSMsgType.PING:
                await self._pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                continue
            elif msg.type == WSMsgType.BINARY:
                self._error(None, "Malformed request: binary frames are not read", None, None)
            else:
                break

    def _error(
        self, method: str | None, message: str, req_id: int | None, symbol: str | None
    ) -> None:
        now = time.time_ns()
        self.enqueue(
            codec.encode_error(
                method or "error",
                message,
                symbol=symbol,
                req_id=req_id,
                time_in_ns=now,
                time_out_ns=now,
            )
        )

    # -- requests ---------------------------------------------------------------------------
    def _on_message(self, text: str) -> None:
        t_in = time.time_ns()
        try:
            req = codec.decode_request(text)
        except FrameError:
            self._refuse(text)
            return
        if not self.rate.admit():
            self.d.refused["requests"] += 1
            self._error(
                type(req).__name__.removesuffix("Request").lower(), ERR_RATE, req.req_id, None
            )
            return
        if isinstance(req, PingRequest):
            if not self.quiet() and not self.stalled():
                self.pongs += 1
                self.enqueue(codec.encode_pong(req.req_id, t_in, time.time_ns()))
            return
        method: Literal["subscribe", "unsubscribe"] = (
            "subscribe" if isinstance(req, SubscribeRequest) else "unsubscribe"
        )
        p = req.params
        kind = KIND_OF.get(p.channel)
        if kind is None:
            self._error(method, f"{ERR_CHANNEL}: {clip(p.channel, 40)}", req.req_id, None)
            return
        depth = None
        if kind == "orderbook":
            depth = DEFAULT_DEPTH if p.depth is None else p.depth
            if depth not in limits.BOOK_DEPTHS:
                self._error(method, f"{ERR_DEPTH}: {depth}", req.req_id, None)
                return
        if not p.symbol:
            self._error(method, "Must specify at least one symbol", req.req_id, None)
            return
        for sym in dict.fromkeys(p.symbol):
            self._one(method, kind, p.channel, sym, depth, req.req_id, t_in)

    def _one(
        self,
        method: Literal["subscribe", "unsubscribe"],
        kind: str,
        kraken_channel: str,
        sym: str,
        depth: int | None,
        req_id: int | None,
        t_in: int,
    ) -> None:
        ch = f"{kind}:{sym}"
        if ch not in self.d.subs:
            self._error(method, f"{ERR_PAIR} {clip(sym, 40)}", req_id, clip(sym, 40))
            return
        if method == "subscribe":
            if ch in self.channels:
                self._error(method, ERR_ALREADY, req_id, sym)
                return
            self.d.subscribe(ch, self)
            if depth is not None:
                self.depths[sym] = depth
        else:
            if ch not in self.channels:
                self._error(method, ERR_NOT_FOUND, req_id, sym)
                return
            depth = self.depths.pop(sym, None) if kind == "orderbook" else None
            self.d.unsubscribe(ch, self)
        self.enqueue(
            codec.encode_ack(
                method,
                kraken_channel,
                sym,
                req_id=req_id,
                depth=depth,
                time_in_ns=t_in,
                time_out_ns=time.time_ns(),
            )
        )
        if method == "subscribe" and depth is not None:
            self.enqueue(self.d.snapshot_frame(sym, depth))
        elif method == "subscribe" and kind == "ticker":
            frame = self.d.ticker_frame(sym, snapshot=True)
            if frame is not None:
                self.enqueue(frame)

    def _refuse(self, text: str) -> None:
        """Kraken's answer to a request the codec cannot read: the method and req_id echoed
        where they can be read."""
        try:
            obj = _json.decode(text)
        except (msgspec.DecodeError, RecursionError):
            obj = None
        method = obj.get("method") if isinstance(obj, dict) else None
        rid = obj.get("req_id") if isinstance(obj, dict) else None
        self._error(
            clip(method, 20) if isinstance(method, str) else None,
            f"Malformed request: {clip(text, 200)}",
            rid if isinstance(rid, int) and not isinstance(rid, bool) else None,
            None,
        )

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "heartbeats": self.heartbeats}


class KrakenDialect(DialectBase[KrakenConn]):
    """The kraken dialect of one gateway; see the module docstring."""

    name = "kraken"
    CONNECTION_FAULTS = ("disconnect", "stall", "stop_pings")

    def __init__(self, gw: Gateway) -> None:
        super().__init__(gw)
        self.opts = parse_options(KrakenOptions, gw.config.dialect_options, "--dialect kraken")
        self.windows: dict[str, _Window] = {}
        for sym, m in gw.hub.markets.items():
            self.windows[sym] = _Window(m.history.seq)
            for kind in KINDS:
                self.subs[f"{kind}:{sym}"] = {}
        self.connects = SlidingCount(self.opts.connect_window_s)
        self.rest_calls = SlidingCount(1.0)
        self._ids = itertools.count(int(time.time() * 1000) % 10**12 * 1000)
        self.updates = 0
        self.snapshots = 0
        self.refused: dict[str, int] = {"connect": 0, "rest": 0, "requests": 0}
        o = self.opts
        self.private = KrakenPrivate(
            gw,
            PrivateLimits(
                o.trading_counter_max,
                o.trading_decay_per_s,
                o.api_counter_max,
                o.api_decay_per_s,
                o.max_open_per_pair,
            ),
            {_altname(sym): sym for sym in gw.hub.markets},
        )

    # -- gateway side -----------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(WS_PATH, self._ws),
            web.get(ASSET_PAIRS_PATH, self.asset_pairs),
            *self.private.routes(),
        ]

    def trigger(self, fault: str, params: dict[str, Any]) -> dict[str, Any] | None:
        if fault in ("snapshot_error", "stale_snapshot"):
            raise ConfigError(
                f"{fault} does not apply to the kraken dialect: Kraken books are seeded in band "
                "(re-subscribe to get a fresh snapshot)"
            )
        if fault not in self.CONNECTION_FAULTS:
            return None
        return self.connection_fault(fault, params)

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "options": {k: getattr(self.opts, k) for k in KrakenOptions.__dataclass_fields__},
            "connections": [
                {
                    "session": c.id,
                    "peer": c.peer,
                    "channels": list(c.channels),
                    "depths": dict(c.depths),
                    **c.stats(),
                }
                for c in self.conns.values()
            ],
            "book_updates": self.updates,
            "snapshots": self.snapshots,
            "refused": dict(self.refused),
            "disconnects": dict(self.disconnects),
            "orders": self.private.stats(),
        }

    # -- books ------------------------------------------------------------------------------
    def _fan(self, channel: str, data: bytes) -> None:
        for c in list(self.subs[channel]):
            c.enqueue(data)

    def _book_after(self, market: Market, seq: int) -> OrderBook:
        history = market.history
        if history.seq == seq and not market.pending_bids and not market.pending_asks:
            return market.sim.book  # the live book is the book at seq (no copy)
        return history.book_at(seq)

    def snapshot_frame(self, sym: str, depth: int) -> bytes:
        """A ``book`` snapshot of the top ``depth`` levels at the seq of the last update
        produced (the next update is the change since), with the checksum there."""
        market = self.gw.hub.markets[sym]
        w = self.windows[sym]
        view = w.views.get(depth)
        if view is None or w.cs_seq != w.prev:
            book = market.history.book_at(w.prev)
            view = (dict(book.bids.top(depth)), dict(book.asks.top(depth)))
            w.views[depth] = view
            w.cs, w.cs_seq = kraken_checksum(book), w.prev
        assert w.cs is not None
        inst = market.instrument
        snap = BookSnapshot(
            sym,
            None,
            levels(inst, sorted(view[0].items(), reverse=True)),
            levels(inst, sorted(view[1].items())),
            w.cs,
            None,
        )
        self.snapshots += 1
        return codec.encode_book(snap)

    # -- the hub's changes ------------------------------------------------------------------
    def on_book(
        self, market: Market, update_id: int, bids: dict[int, int], asks: dict[int, int]
    ) -> None:
        self.windows[market.instrument.symbol].merge(update_id, bids, asks)

    def on_trade(self, market: Market, trade_id: int, trade: SimTrade) -> None:
        sym = market.instrument.symbol
        self.windows[sym].last_px = trade.price
        channel = f"trades:{sym}"
        if not self.subs[channel]:
            return
        self._fan(channel, codec.encode_trades([trade_event(market, trade_id, trade)]))

    def flush_period_s(self) -> float:
        return self.opts.book_interval_ms / 1000

    def flush(self) -> None:
        """One ``book`` update per subscribed depth of each book that changed since the last
        flush (with faults), and one ``ticker`` per instrument whose top or last changed."""
        markets = self.gw.hub.markets
        for sym, w in self.windows.items():
            market = markets[sym]
            if w.first is not None:
                last = w.last
                w.first, w.prev, w.bids, w.asks = None, last, {}, {}
                if self.subs[f"orderbook:{sym}"]:
                    self._send_updates(market, w, last)
                else:
                    w.views.clear()
                    w.held_by_depth.clear()
            self._send_ticker(market, w)

    def _send_updates(self, market: Market, w: _Window, last: int) -> None:
        sym = market.instrument.symbol
        channel = f"orderbook:{sym}"
        groups: dict[int, list[KrakenConn]] = {}
        for c in self.subs[channel]:
            groups.setdefault(c.depths[sym], []).append(c)
        for depth in [d for d in w.views if d not in groups]:
            del w.views[depth]
            w.held_by_depth.pop(depth, None)
        book = self._book_after(market, last)
        cs = kraken_checksum(book)
        top_changed = cs != w.cs
        w.cs, w.cs_seq = cs, last
        fault = w.fault or self.faults.frame_fault("orderbook", channel, sym)
        w.fault = None
        if fault in ("drop_delta", "reorder_delta") and not top_changed:
            w.fault, fault = fault, None  # invisible to Kraken's checksum: wait for one that is
        if fault == "reorder_delta" and w.held_by_depth:
            fault = None  # one frame held back at a time
        sent = False
        ts = time.time_ns()
        for depth, conns in groups.items():
            view = w.views.get(depth)
            if view is None:  # cannot happen: a subscribe builds it; rebuild to be safe
                view = ({}, {})
            new_bids = book.bids.top(depth)
            new_asks = book.asks.top(depth)
            bids = _changes(view[0], new_bids, book.bids.size_at)
            asks = _changes(view[1], new_asks, book.asks.size_at)
            w.views[depth] = (dict(new_bids), dict(new_asks))
            if not bids and not asks:
                continue  # nothing changed within this depth
            inst = market.instrument
            bids.sort(reverse=True)
            asks.sort()
            frame_cs = cs
            if fault == "bad_checksum":
                frame_cs = (cs + 1) & 0xFFFFFFFF
            data = codec.encode_book(
                BookDelta(sym, levels(inst, bids), levels(inst, asks), checksum=frame_cs, ts_ns=ts)
            )
            held = w.held_by_depth.pop(depth, None)
            hold = apply_frame_fault(fault, data, held, _sender(conns))
            if hold is not None:
                w.held_by_depth[depth] = hold
            sent = True
        if not sent:
            w.fault = w.fault or fault  # nothing sent: the fault waits for the next update
            return
        self.updates += 1
        if fault is not None:
            self.faults.record(fault, channel=channel, seq=last)

    # -- tickers ----------------------------------------------------------------------------
    def ticker_frame(self, sym: str, *, snapshot: bool = False) -> bytes | None:
        """The ``ticker`` of ``sym`` now (None while a side of its book is empty)."""
        market = self.gw.hub.markets[sym]
        w = self.windows[sym]
        book = market.sim.book
        bb, ba = book.best_bid(), book.best_ask()
        if bb is None or ba is None:
            return None
        w.top = (*bb, *ba, w.last_px)
        inst = market.instrument
        fp, fs = inst.format_price, inst.format_size
        last = fp(w.last_px) if w.last_px is not None else None
        event = TickerEvent(
            sym, fp(bb[0]), fs(bb[1]), fp(ba[0]), fs(ba[1]), last, None, time.time_ns()
        )
        return codec.encode_ticker(event, snapshot=snapshot)

    def _send_ticker(self, market: Market, w: _Window) -> None:
        sym = market.instrument.symbol
        channel = f"ticker:{sym}"
        if not self.subs[channel]:
            w.top = None
            return
        if channel in self.faults.settings.silence_channel:
            return
        book = market.sim.book
        bb, ba = book.best_bid(), book.best_ask()
        if bb is None or ba is None or (*bb, *ba, w.last_px) == w.top:
            return
        frame = self.ticker_frame(sym)
        if frame is not None:
            self._fan(channel, frame)

    # -- endpoints --------------------------------------------------------------------------
    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ip = request.remote or "?"
        if not self.connects.admit(ip, self.opts.max_connects_per_window):
            self.refused["connect"] += 1
            log_event("rate_limited", level=logging.WARNING, dialect="kraken", ip=ip, path=WS_PATH)
            return web.Response(
                status=429,
                text=f"Too Many Requests: more than {self.opts.max_connects_per_window} "
                f"connections in {self.opts.connect_window_s:g} s from one IP",
            )
        return await KrakenConn(self, request, next(self._ids)).run()

    async def asset_pairs(self, request: web.Request) -> web.Response:
        """``GET /0/public/AssetPairs[?pair=A,B]``: Kraken's v1 REST instruments."""
        ip = request.remote or "?"
        if not self.rest_calls.admit(ip, self.opts.rest_calls_per_s):
            self.refused["rest"] += 1
            log_event(
                "rate_limited",
                level=logging.WARNING,
                dialect="kraken",
                ip=ip,
                path=clip(request.path),
            )
            return web.Response(
                body=_encoder.encode({"error": [ERR_REST_RATE]}),
                status=429,
                headers={"Retry-After": "1"},
                content_type="application/json",
            )
        pairs = {_altname(m.instrument.symbol): m.instrument for m in self.gw.hub.markets.values()}
        wanted = request.query.get("pair")
        if wanted is not None:
            names = [n.strip() for n in wanted.split(",") if n.strip()]
            picked: dict[str, Instrument] = {}
            for n in names:
                key = n.replace("/", "").upper()
                key = _altname(key) if key not in pairs else key
                for alt, inst in pairs.items():
                    if key in (alt, inst.symbol.replace("/", "")):
                        picked[alt] = inst
                        break
                else:
                    body = {"error": [ERR_REST_PAIR]}
                    return web.Response(body=_encoder.encode(body), content_type="application/json")
            pairs = picked
        result = {alt: _asset_pair(alt, inst) for alt, inst in pairs.items()}
        return web.Response(
            body=_encoder.encode({"error": [], "result": result}), content_type="application/json"
        )


def _sender(conns: list[KrakenConn]) -> Callable[[bytes], None]:
    def send(data: bytes) -> None:
        for c in conns:
            c.enqueue(data)

    return send


def _changes(old: dict[int, int], new_top: list[Level], size_in_book: Any) -> list[tuple[int, int]]:
    """What a client holding ``old`` (one side, truncated) needs to reach ``new_top``: levels
    new or changed, and qty 0 for levels deleted from the book (never for a level only pushed
    out of the depth: the client truncates)."""
    out = [(p, s) for p, s in new_top if old.get(p) != s]
    if old:
        in_new = {p for p, _ in new_top}
        out += [(p, 0) for p in old if p not in in_new and size_in_book(p) == 0]
    return out


def _v1(asset: str) -> str:
    return V1_ASSET_NAMES.get(asset, asset)


def _altname(symbol: str) -> str:
    """``BTC/USD`` -> ``XBTUSD`` (AssetPairs' key and ``altname``)."""
    base, _, quote = symbol.partition("/")
    return f"{_v1(base)}{_v1(quote)}"


def _asset_pair(alt: str, inst: Instrument) -> dict[str, object]:
    base, _, quote = inst.symbol.partition("/")
    return {
        "altname": alt,
        "wsname": f"{_v1(base)}/{_v1(quote)}",
        "aclass_base": "currency",
        "base": _v1(base),
        "aclass_quote": "currency",
        "quote": _v1(quote),
        "lot": "unit",
        "cost_decimals": inst.price_decimals + inst.size_decimals,
        "pair_decimals": inst.price_decimals,
        "lot_decimals": inst.size_decimals,
        "lot_multiplier": 1,
        "ordermin": inst.lot_size,
        "tick_size": inst.tick_size,
        "status": "online",
    }
