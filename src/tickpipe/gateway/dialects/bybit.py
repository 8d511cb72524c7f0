"""``tickpipe gateway --dialect bybit``: the simulated markets as Bybit v5 public market data,
spot and linear at once (two stream paths, one gateway).

Everything on the wire is encoded with :mod:`tickpipe.venues.bybit.codec` (the codec the client
decodes with); documented limits come from ``venues.bybit.limits``.

Symbols: ``BASE-QUOTE`` -> ``BASEQUOTE`` with quote ``USD`` written ``USDT`` (``BTC-USD`` ->
``BTCUSDT``), a bare symbol unchanged (``AAPL``); grids unchanged. The hub runs under these
names (``orderbook:BTCUSDT``). The same markets are served on ``/v5/public/spot`` and
``/v5/public/linear`` (and listed by ``instruments-info`` under both categories).

Books (``orderbook.200.SYMBOL``): Bybit's 200-level view of each book. The hub's steps of each
``book_interval_ms`` (100, Bybit's push period for depth 200) are merged, and one ``delta`` frame
carries what changed in the top 200 levels a side (levels that left the top 200 are sent with
size 0, levels that entered it with their size); a window that changed nothing in the top 200
sends nothing. Each frame's ``u`` is the previous ``u`` of that book + 1 (``u`` starts at
``FIRST_U``); ``seq`` (Bybit's cross sequence) is the hub's seq of the book. A subscription is
answered with a ``snapshot`` of the top 200 at the ``u`` of the last frame produced, so the next
delta follows it. :meth:`BybitDialect.hub_seq` maps a book's ``u`` back to the hub's seq (the
seq ``GET /admin/book/{symbol}?seq=N`` and ``Gateway.true_book`` answer for); ``stats`` lists
the last 50 pairs of every book (``books``: ``u``, ``seq``, ``u_seq``).

Served: WebSocket ``/v5/public/spot`` and ``/v5/public/linear``: ``subscribe`` /
``unsubscribe`` with ``args`` (topics) and an optional ``req_id``, answered once per request
(``success``, ``ret_msg``, ``conn_id``, ``req_id``, ``op``); topics ``orderbook.200``,
``publicTrade`` (one frame per print), ``tickers`` (linear: a snapshot on subscribe, then at
most one ``delta`` per ``book_interval_ms`` with only the fields that changed; spot: a snapshot
whenever the last price changed, with no best bid/ask, as Bybit's spot tickers); the client's
``{"op":"ping"}`` answered with the pong of its category; a connection with no traffic either
way for ``idle_timeout_s`` (600) is closed. Refused, with ``success: false``: more than 10 args
in one spot request, a connection's args past 21,000 characters, an unknown topic or symbol, a
topic already subscribed (the whole request is refused, nothing of it subscribed). More than
``max_connects_per_5min`` (500) connections from one IP in 5 minutes: HTTP 429. REST
``/v5/market/instruments-info?category=spot|linear`` (``limit``, ``cursor``) and
``/v5/market/orderbook?category=&symbol=&limit=``; more than ``rest_requests_per_5s`` (600)
from one IP in 5 s: HTTP 403 "access too frequently" (Bybit's IP limit; no ban here).

Faults: ``drop_delta``, ``duplicate_delta``, ``reorder_delta``, ``malformed_frame`` on book
deltas; ``disconnect``, ``stall``, ``stop_pings`` (Bybit never pings: here the pongs stop, the
stream goes on), ``silence_channel``; and two of Bybit's own, fired with
``Gateway.trigger(NAME, channel="orderbook:SYMBOL")`` or ``POST /admin/trigger``:
``venue_restart`` (the service restarted: a ``snapshot`` with ``u = 1``, then deltas from
``u = 2``) and ``resend_snapshot`` (Bybit re-sends a snapshot of the latest book "if there is a
problem on Bybit's end", ``u`` unchanged).
``bad_checksum`` (Bybit has no checksum) and the REST snapshot faults (books seed in band) are
refused at trigger.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import msgspec
from aiohttp import WSMsgType, web

from tickpipe.errors import ConfigError, FrameError
from tickpipe.gateway.dialects.base import (
    BookWindow,
    DialectBase,
    DialectConnection,
    SlidingCount,
    apply_frame_fault,
    levels,
    parse_options,
    rename_markets,
    trade_event,
)
from tickpipe.gateway.guard import clip
from tickpipe.gateway.logs import log_event
from tickpipe.gateway.markets import MarketSpec
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, TickerEvent
from tickpipe.venues.bybit import codec, endpoints, limits
from tickpipe.venues.bybit.codec import Subscribed, VenueError

if TYPE_CHECKING:
    from tickpipe.gateway.hub import Market
    from tickpipe.gateway.server import Gateway
    from tickpipe.gateway.simulator import SimTrade

Category = Literal["spot", "linear"]
PATHS: dict[str, Category] = {
    endpoints.BYBIT.stream_path: "spot",
    endpoints.BYBIT_LINEAR.stream_path: "linear",
}
DEPTH = endpoints.BOOK_DEPTH
FIRST_U = 1_000_000
"""The ``u`` of each book's first frame (any value above 1: ``u == 1`` means a restart)."""
U_LOG = 4096
"""``(u, hub seq)`` pairs kept per book for :meth:`BybitDialect.hub_seq` (~7 minutes at 10
frames a second; 16 B a pair)."""
KINDS = ("orderbook", "trades", "ticker")
ERR_REST_PARAM = 10001  # "Request parameter error"
ERR_REST_TOO_FREQUENT = 10006  # "Too many visits"


@dataclass(frozen=True, slots=True)
class BybitOptions:
    """Knobs of the bybit dialect (``--dialect-option NAME=VALUE``); defaults are Bybit's
    documented limits (``venues.bybit.limits``). docs/dialects.md.

    - ``book_interval_ms`` (100): the ``orderbook.200`` push period (hub steps merged).
    - ``idle_timeout_s`` (600.0): a connection with no message either way this long is closed.
    - ``max_connects_per_5min`` (500): WebSocket connections an IP may open in any 5 minutes;
      more are refused with HTTP 429 (one deque of times per IP).
    - ``max_args_per_spot_request`` (10): topics one spot subscribe may carry.
    - ``max_args_chars`` (21000): characters of topics one connection may hold subscribed.
    - ``rest_requests_per_5s`` (600): REST requests an IP may send in any 5 s; more: HTTP 403.
    """

    book_interval_ms: int = 100
    idle_timeout_s: float = 600.0
    max_connects_per_5min: int = limits.WS_CONNECTS_PER_5MIN_PER_IP
    max_args_per_spot_request: int = limits.WS_SPOT_MAX_ARGS_PER_REQUEST
    max_args_chars: int = limits.WS_MAX_ARGS_CHARS_PER_CONNECTION
    rest_requests_per_5s: int = limits.REST_REQUESTS_PER_5S_PER_IP


def bybit_symbol(symbol: str) -> str:
    """``BTC-USD`` -> ``BTCUSDT``, ``USD-JPY`` -> ``USDJPY``, ``AAPL`` -> ``AAPL``."""
    base, dash, quote = symbol.partition("-")
    if not dash:
        return symbol.upper()
    return (base + ("USDT" if quote == "USD" else quote)).upper()


def bybit_markets(markets: tuple[MarketSpec, ...]) -> tuple[MarketSpec, ...]:
    """The markets under their Bybit symbols (ConfigError if two map to one name)."""
    return rename_markets(
        markets,
        bybit_symbol,
        lambda name: name.isascii() and name.isalnum(),
        "Bybit symbol (letters and digits)",
    )


class _Window(BookWindow):
    """One book's merged changes (:class:`BookWindow`), the 200-level view last sent (price ->
    size a side), its ``u`` and the ``(u, hub seq)`` log; the last trade price and the ticker
    fields last sent (for ``tickers``)."""

    __slots__ = ("last_px", "sent_linear", "sent_spot_px", "seq", "u", "u_log", "va", "vb")

    def __init__(self, seq: int) -> None:
        super().__init__(seq)
        self.u = FIRST_U - 1  # the next frame is FIRST_U
        self.seq = seq  # hub seq of the view
        self.vb: dict[int, int] = {}
        self.va: dict[int, int] = {}
        self.u_log: deque[tuple[int, int]] = deque([(self.u, seq)], maxlen=U_LOG)
        self.last_px: int | None = None
        self.sent_linear: dict[str, str] = {}
        self.sent_spot_px: int | None = None


class BybitConn(DialectConnection["BybitDialect"]):
    """One WebSocket connection of one category: its topics, pongs, idle watchdog and reader
    (the queue, writer, stall and close are :class:`DialectConnection`'s)."""

    def __init__(self, d: BybitDialect, request: web.Request, category: Category) -> None:
        max_msg_size = min(d.gw.config.max_frame_bytes, 64 * 1024)
        conn_id = f"{secrets.token_hex(8)}-{secrets.token_hex(2)}"
        super().__init__(d, request, conn_id, max_msg_size)
        self.category: Category = category
        self.args_chars = 0
        self.pongs_stopped_until = 0.0

    def hold(self, fault: str, until: float) -> None:
        if fault == "stop_pings":  # Bybit never pings: its heartbeat is the pong
            self.pongs_stopped_until = until
            return
        super().hold(fault, until)

    async def _watchdog(self) -> None:
        idle = self.d.opts.idle_timeout_s
        while not self.closing:
            left = self.last_traffic + idle - time.monotonic()
            if left <= 0:
                log_event("idle_timeout", level=logging.WARNING, session=self.id, dialect="bybit")
                self.kill(1000, "idle timeout", reason="idle_timeout")
                return
            await asyncio.sleep(left)

    async def run(self) -> web.WebSocketResponse:
        return await self._serve(category=self.category)

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        return [self._watchdog()]

    async def _read_loop(self) -> None:
        async for msg in self.ws:
            if self.closing:
                break
            self.last_traffic = time.monotonic()
            if msg.type == WSMsgType.TEXT:
                self._on_message(str(msg.data))
            elif msg.type == WSMsgType.PING:
                await self._pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                continue
            elif msg.type == WSMsgType.BINARY:
                self._error("", "error:binary frames are not read", None)
            else:
                break

    def _error(self, op: str, message: str, rid: str | None) -> None:
        self.enqueue(codec.encode_control(VenueError(op, message, rid, self.id)))

    # -- requests ---------------------------------------------------------------------------
    def _on_message(self, text: str) -> None:
        try:
            req = codec.decode_client(text)
        except FrameError as exc:
            self._error("", f"error:{exc.reason[:200]},request:{clip(text, 200)}", None)
            return
        rid = req.request_id
        if req.op == "ping":
            if self.pongs_stopped_until > time.monotonic():
                return
            self.pongs += 1
            self.enqueue(self.d.pong_frame(self.category, rid, self.id))
            return
        op = req.op
        topics = [endpoints.to_topic(ch) for ch in req.channels]
        if not topics:
            self._error(op, "error:args is empty", rid)
            return
        if self.category == "spot" and len(topics) > self.d.opts.max_args_per_spot_request:
            self._error(op, f"args size >{self.d.opts.max_args_per_spot_request}", rid)
            return
        for ch, topic in zip(req.channels, topics, strict=True):
            if ch not in self.d.subs:
                self._error(op, f"error:handler not found,topic:{clip(topic, 60)}", rid)
                return
        channels = list(dict.fromkeys(req.channels))
        if op == "subscribe":
            for ch in channels:
                if ch in self.subscribed:
                    topic = endpoints.to_topic(ch)
                    self._error(op, f"error:already subscribed,topic:{clip(topic, 60)}", rid)
                    return
            added = sum(len(endpoints.to_topic(ch)) for ch in channels)
            if self.args_chars + added > self.d.opts.max_args_chars:
                self._error(
                    op,
                    f"error:args length exceeds {self.d.opts.max_args_chars} characters "
                    "for one connection",
                    rid,
                )
                return
            self.args_chars += added
            self.enqueue(codec.encode_control(Subscribed("subscribe", rid, self.id)))
            for ch in channels:
                self.d.subscribe(ch, self)
                self.d.on_subscribed(self, ch)
            return
        for ch in channels:
            if ch in self.subscribed:
                self.args_chars -= len(endpoints.to_topic(ch))
                self.d.unsubscribe(ch, self)
        self.enqueue(codec.encode_control(Subscribed("unsubscribe", rid, self.id)))


class BybitDialect(DialectBase[BybitConn]):
    """The bybit dialect of one gateway; see the module docstring."""

    name = "bybit"
    CONNECTION_FAULTS: ClassVar[tuple[str, ...]] = ("disconnect", "stall", "stop_pings")
    BOOK_FAULTS: ClassVar[tuple[str, ...]] = ("venue_restart", "resend_snapshot")
    EXTRA_TRIGGER_FAULTS = BOOK_FAULTS  # POST /admin/trigger fires them too

    def __init__(self, gw: Gateway) -> None:
        super().__init__(gw)
        self.opts = parse_options(BybitOptions, gw.config.dialect_options, "--dialect bybit")
        self.windows: dict[str, _Window] = {}
        for sym, m in gw.hub.markets.items():
            w = _Window(m.history.seq)
            bids, asks = m.history.book_at().to_lists(DEPTH)
            w.vb, w.va = dict(bids), dict(asks)
            self.windows[sym] = w
            for kind in KINDS:
                self.subs[f"{kind}:{sym}"] = {}
        self.connects = SlidingCount(300.0)
        self.rest_calls = SlidingCount(5.0)
        self.updates = 0
        self.snapshots = 0
        self.restarts = 0
        self.refused: dict[str, int] = {"connect": 0, "rest": 0}

    # -- gateway side -----------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            *(web.get(path, self._ws) for path in PATHS),
            web.get(codec.INSTRUMENTS_PATH, self.instruments),
            web.get(codec.ORDERBOOK_PATH, self.orderbook),
        ]

    def trigger(self, fault: str, params: dict[str, Any]) -> dict[str, Any] | None:
        if fault == "bad_checksum":
            raise ConfigError(
                "bad_checksum does not apply to the bybit dialect: Bybit books carry no checksum"
            )
        if fault in ("snapshot_error", "stale_snapshot"):
            raise ConfigError(
                f"{fault} does not apply to the bybit dialect: Bybit books are seeded in band "
                "(re-subscribe to get a fresh snapshot)"
            )
        if fault in self.BOOK_FAULTS:
            return self._book_fault(fault, params)
        if fault not in self.CONNECTION_FAULTS:
            return None
        return self.connection_fault(fault, params)

    def _book_fault(self, fault: str, params: dict[str, Any]) -> dict[str, Any]:
        left = dict(params)
        channel = left.pop("channel", None)
        if left:
            raise ConfigError(f"trigger {fault}: unknown parameter(s) {sorted(left)}")
        sym = channel.partition(":")[2] if isinstance(channel, str) else ""
        if (
            not isinstance(channel, str)
            or not channel.startswith("orderbook:")
            or (sym not in self.windows)
        ):
            raise ConfigError(f'trigger {fault}: needs "channel": a known orderbook channel')
        w = self.windows[sym]
        if fault == "venue_restart":
            w.u = 1
            w.u_log.clear()
            w.u_log.append((1, w.seq))
            self.restarts += 1
        data = self.snapshot_frame(sym)
        for c in list(self.subs[channel]):
            c.enqueue(data)
        self.faults.record(fault, channel=channel, u=w.u, seq=w.seq)
        return {"triggered": fault, "channel": channel, "u": w.u, "seq": w.seq}

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "options": {k: getattr(self.opts, k) for k in BybitOptions.__dataclass_fields__},
            "connections": [
                {
                    "session": c.id,
                    "peer": c.peer,
                    "category": c.category,
                    "channels": list(c.subscribed),
                    **c.stats(),
                }
                for c in self.conns.values()
            ],
            "books": {
                sym: {"u": w.u, "seq": w.seq, "u_seq": [list(p) for p in list(w.u_log)[-50:]]}
                for sym, w in self.windows.items()
            },
            "book_updates": self.updates,
            "snapshots": self.snapshots,
            "restarts": self.restarts,
            "refused": dict(self.refused),
            "disconnects": dict(self.disconnects),
        }

    def hub_seq(self, symbol: str, u: int) -> int:
        """The hub's seq of ``symbol``'s book at update id ``u`` (KeyError: not among the last
        ``U_LOG`` frames of this book since its last restart)."""
        for got, seq in reversed(self.windows[symbol].u_log):
            if got == u:
                return seq
        raise KeyError(f"{symbol}: u {u} not in the recent log")

    # -- frames -----------------------------------------------------------------------------
    def pong_frame(self, category: Category, rid: str | None, conn_id: str) -> bytes:
        """The pong of the category, as documented: spot without ``req_id``, linear with."""
        if category == "spot":
            return msgspec.json.encode(
                {"success": True, "ret_msg": "pong", "conn_id": conn_id, "op": "ping"}
            )
        return codec.encode_control(codec.Pong(rid, conn_id))

    def snapshot_frame(self, sym: str) -> bytes:
        """An ``orderbook.200`` snapshot of the view at the last ``u`` produced."""
        w = self.windows[sym]
        inst = self.gw.hub.markets[sym].instrument
        snap = BookSnapshot(
            sym,
            w.u,
            levels(inst, sorted(w.vb.items(), reverse=True)),
            levels(inst, sorted(w.va.items())),
            None,
            time.time_ns(),
        )
        self.snapshots += 1
        return codec.encode_book(snap, seq=w.seq)

    def on_subscribed(self, conn: BybitConn, channel: str) -> None:
        kind, _, sym = channel.partition(":")
        if kind == "orderbook":  # the view at the last u; changes since go out as u + 1
            conn.enqueue(self.snapshot_frame(sym))
        elif kind == "ticker" and conn.category == "linear":
            event = self._linear_ticker(sym)
            if event is not None:
                conn.enqueue(codec.encode_ticker(event, "snapshot"))

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

    def _fan(self, channel: str, data: bytes) -> None:
        for c in list(self.subs[channel]):
            c.enqueue(data)

    def flush_period_s(self) -> float:
        return self.opts.book_interval_ms / 1000

    def flush(self) -> None:
        """One ``orderbook.200`` delta per book whose top 200 changed since the last flush
        (with faults), and the tickers."""
        for sym, w in self.windows.items():
            if w.first is not None:
                self.flush_book(sym)
            self._send_tickers(sym, w)

    def _book_after(self, market: Market, seq: int) -> OrderBook:
        history = market.history
        if history.seq == seq and not market.pending_bids and not market.pending_asks:
            return market.sim.book  # the live book is the book at seq (no copy)
        return history.book_at(seq)

    def flush_book(self, sym: str) -> None:
        """Send the merged window of ``sym`` as one delta of its 200-level view (nothing when
        the top 200 did not change)."""
        w = self.windows[sym]
        if w.first is None:
            return
        market = self.gw.hub.markets[sym]
        w.first, w.bids, w.asks = None, {}, {}
        book = self._book_after(market, w.last)
        nb, na = dict(book.bids.top(DEPTH)), dict(book.asks.top(DEPTH))
        db = _diff(w.vb, nb)
        da = _diff(w.va, na)
        w.vb, w.va, w.seq = nb, na, w.last
        if not db and not da:
            return
        w.u += 1
        w.u_log.append((w.u, w.seq))
        channel = f"orderbook:{sym}"
        if not self.subs[channel]:
            w.held = None
            return
        inst = market.instrument
        fault = self.faults.frame_fault("orderbook", channel, sym)
        if fault == "bad_checksum":
            fault = None  # refused at trigger, ignored as a setting
        held, w.held = w.held, None
        if fault == "reorder_delta" and held is not None:
            fault = None  # one frame held back at a time
        delta = BookDelta(
            sym,
            levels(inst, sorted(db.items(), reverse=True)),
            levels(inst, sorted(da.items())),
            last_id=w.u,
            ts_ns=time.time_ns(),
        )
        data = codec.encode_book(delta, seq=w.seq)
        self.updates += 1
        if fault is not None:
            self.faults.record(fault, channel=channel, u=w.u, seq=w.seq)
        w.held = apply_frame_fault(fault, data, held, lambda b: self._fan(channel, b))

    def _linear_ticker(self, sym: str) -> TickerEvent | None:
        market = self.gw.hub.markets[sym]
        book = market.sim.book
        bb, ba = book.best_bid(), book.best_ask()
        if bb is None or ba is None:
            return None
        inst = market.instrument
        fp, fs = inst.format_price, inst.format_size
        w = self.windows[sym]
        last = fp(w.last_px) if w.last_px is not None else fp(bb[0])
        return TickerEvent(
            sym, fp(bb[0]), fs(bb[1]), fp(ba[0]), fs(ba[1]), last, None, time.time_ns()
        )

    def _send_tickers(self, sym: str, w: _Window) -> None:
        channel = f"ticker:{sym}"
        conns = self.subs[channel]
        if not conns or channel in self.faults.settings.silence_channel:
            return
        linear = [c for c in conns if c.category == "linear"]
        spot = [c for c in conns if c.category == "spot"]
        if linear:
            event = self._linear_ticker(sym)
            if event is not None:
                now = {
                    "bid1Price": event.bid,
                    "bid1Size": event.bid_size,
                    "ask1Price": event.ask,
                    "ask1Size": event.ask_size,
                    "lastPrice": event.last,
                }
                changed = {k: v for k, v in now.items() if w.sent_linear.get(k) != v}
                w.sent_linear = {k: v for k, v in now.items() if v is not None}
                if changed:
                    part = TickerEvent(
                        sym,
                        changed.get("bid1Price"),
                        changed.get("bid1Size"),
                        changed.get("ask1Price"),
                        changed.get("ask1Size"),
                        changed.get("lastPrice"),
                        None,
                        event.ts_ns,
                    )
                    data = codec.encode_ticker(part, "delta")
                    for c in linear:
                        c.enqueue(data)
        if spot and w.last_px is not None and w.last_px != w.sent_spot_px:
            w.sent_spot_px = w.last_px
            inst = self.gw.hub.markets[sym].instrument
            event = TickerEvent(
                sym, None, None, None, None, inst.format_price(w.last_px), None, time.time_ns()
            )
            data = codec.encode_ticker(event, "snapshot")
            for c in spot:
                c.enqueue(data)

    # -- endpoints --------------------------------------------------------------------------
    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ip = request.remote or "?"
        if not self.connects.admit(ip, self.opts.max_connects_per_5min):
            self.refused["connect"] += 1
            log_event("rate_limited", level=logging.WARNING, dialect="bybit", ip=ip)
            return _rest_error(
                429,
                ERR_REST_TOO_FREQUENT,
                f"more than {self.opts.max_connects_per_5min} connections in 5 minutes from one IP",
            )
        return await BybitConn(self, request, PATHS[request.path]).run()

    def _rate(self, request: web.Request) -> web.Response | None:
        ip = request.remote or "?"
        if self.rest_calls.admit(ip, self.opts.rest_requests_per_5s):
            return None
        self.refused["rest"] += 1
        log_event(
            "rate_limited", level=logging.WARNING, dialect="bybit", ip=ip, path=clip(request.path)
        )
        return _rest_error(403, ERR_REST_TOO_FREQUENT, "access too frequently")

    def _category(self, request: web.Request) -> Category | web.Response:
        cat = request.query.get("category", "")
        if cat not in ("spot", "linear"):
            return _rest_error(
                200, ERR_REST_PARAM, f"Illegal category: {clip(cat, 20)!r} (served: spot, linear)"
            )
        return "spot" if cat == "spot" else "linear"

    async def instruments(self, request: web.Request) -> web.Response:
        refused = self._rate(request)
        if refused is not None:
            return refused
        cat = self._category(request)
        if isinstance(cat, web.Response):
            return cat
        instruments = [m.instrument for m in self.gw.hub.markets.values()]
        sym = request.query.get("symbol")
        if sym is not None:
            instruments = [i for i in instruments if i.symbol == sym]
        raw_limit = request.query.get("limit", "500")
        raw_cursor = request.query.get("cursor", "0") or "0"
        if not (raw_limit.isascii() and raw_limit.isdigit() and 1 <= int(raw_limit) <= 1000):
            return _rest_error(200, ERR_REST_PARAM, f"Illegal limit: {clip(raw_limit, 20)!r}")
        if not (raw_cursor.isascii() and raw_cursor.isdigit() and len(raw_cursor) <= 9):
            return _rest_error(200, ERR_REST_PARAM, f"Illegal cursor: {clip(raw_cursor, 20)!r}")
        start, limit = int(raw_cursor), int(raw_limit)
        if cat == "spot":  # spot answers in one page
            page, cursor = instruments, ""
        else:
            page = instruments[start : start + limit]
            cursor = str(start + limit) if start + limit < len(instruments) else ""
        return _ok(codec.encode_instruments(page, cat, cursor))

    async def orderbook(self, request: web.Request) -> web.Response:
        refused = self._rate(request)
        if refused is not None:
            return refused
        cat = self._category(request)
        if isinstance(cat, web.Response):
            return cat
        sym = request.query.get("symbol", "")
        market = self.gw.hub.markets.get(sym)
        if market is None:
            return _rest_error(200, ERR_REST_PARAM, f"Illegal symbol: {clip(sym, 40)!r}")
        cap = limits.REST_ORDERBOOK_MAX_DEPTH[cat]
        raw = request.query.get("limit", "1" if cat == "spot" else "25")
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= cap):
            return _rest_error(200, ERR_REST_PARAM, f"Illegal limit: {clip(raw, 20)!r} (1-{cap})")
        w = self.windows[sym]
        inst = market.instrument
        bids, asks = market.history.book_at(w.seq).to_lists(int(raw))
        snap = BookSnapshot(sym, w.u, levels(inst, bids), levels(inst, asks), ts_ns=time.time_ns())
        return _ok(codec.encode_rest_orderbook(snap))


def _diff(old: dict[int, int], new: dict[int, int]) -> dict[int, int]:
    """What turns the view ``old`` into ``new``: changed or new levels, and 0 for levels gone."""
    out = {p: s for p, s in new.items() if old.get(p) != s}
    out.update((p, 0) for p in old if p not in new)
    return out


def _ok(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def _rest_error(status: int, code: int, msg: str) -> web.Response:
    return web.Response(
        body=codec.encode_rest_error(code, msg), status=status, content_type="application/json"
    )
