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

Orders (issue 17), signed as :mod:`tickpipe.venues.bybit.auth` says (the function the client
signs with verifies here), kept in ``gw.desk`` under the API key (``gw.keys``), each order's
category remembered (``spot`` and ``linear`` orders are listed and cancelled apart):
``GET /v5/market/time``; ``POST /v5/order/create`` (GTC limit orders; a repeated
``orderLinkId`` is refused as Bybit does, 110072 / spot 170141), ``GET /v5/order/realtime``
(by ``orderId`` / ``orderLinkId``, any status; else the open orders by ``symbol`` > ``baseCoin``
> ``settleCoin``, ``linear`` needing one; ``limit`` 1-50, ``cursor``), ``POST /v5/order/cancel``
(110001 / spot 170213 for an order not open), ``POST /v5/order/cancel-all``, ``POST
/v5/order/disconnected-cancel-all``. Answers are ``{retCode, retMsg, result}``. Refused:
missing ``X-BAPI-*`` headers or an unknown key, HTTP 401 retCode 10003; a timestamp outside
``server_time - recv_window <= ts < server_time + 1000``, 10002; a bad signature, 10004 with
Bybit's ``origin_string`` (what was signed: never the secret); more than Bybit's per-UID rate of
the endpoint and category in a rolling second (create / cancel / cancel-all 10 linear, 20 spot;
realtime 50; DCP 5), 10006 "Too many visits!" (HTTP 200, ``X-Bapi-Limit*`` headers); parameter
errors, 10001 with our own text. Bybit refuses no replayed signature within the window, and
neither does the dialect (``orderLinkId`` keeps a replayed create from placing twice). Order
faults (``gw.order_faults``): ``order_5xx`` and ``cancel_fails_once`` answer 503 having done
nothing, ``order_rate_limit`` answers 10006, ``order_timeout`` does the call and then holds the
answer ``duration_ms`` and drops the connection (the order exists, its answer is lost).

Dead man's switch, Bybit's DCP ("Disconnection Protect"), modelled on ``gw.dead_man``: the REST
endpoint only stores ``timeWindow`` per key and product (3-300 s; 10 s until set); the private
stream ``/v5/private`` takes ``auth`` (``GET/realtime`` + expires, :func:`auth.ws_verify`),
``subscribe`` to ``dcp`` / ``dcp.spot`` / ``dcp.future`` / ``dcp.option`` (no other private
topic is served) and ``ping``. While a key has a connection subscribed to a ``dcp`` topic its
timer is disarmed; when the last one ends (closed, cut by ``disconnect`` or ``partition``), the
timer starts with the shortest window of the products it watched, and when it runs out every
open order of the key is cancelled (``cancelType`` ``CancelByDCP``). A reconnection that
subscribes again in time disarms it. (Bybit cancels only the watched product's orders; the
dialect cancels all of the key's.)
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Coroutine
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
from tickpipe.gateway.orders import Order as DeskOrder
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.decode_errors import DECODE_ERRORS
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, TickerEvent
from tickpipe.venues.bybit import auth as bybit_auth
from tickpipe.venues.bybit import codec, endpoints, limits
from tickpipe.venues.bybit import orders as bybit_orders
from tickpipe.venues.bybit.codec import Subscribed, VenueError

if TYPE_CHECKING:
    from tickpipe.gateway.hub import Market
    from tickpipe.gateway.server import Gateway
    from tickpipe.gateway.simulator import SimTrade

Category = Literal["spot", "linear"]
ConnKind = Literal["spot", "linear", "private"]
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
DCP_TOPIC_PRODUCTS: dict[str, tuple[str, ...]] = {
    "dcp": ("SPOT", "DERIVATIVES", "OPTIONS"),
    "dcp.spot": ("SPOT",),
    "dcp.future": ("DERIVATIVES",),
    "dcp.option": ("OPTIONS",),
}
"""Private topics served, and the DCP products each keeps alive."""
ERR_REST_PARAM = 10001  # "Request parameter error"
ERR_REST_TOO_FREQUENT = 10006  # "Too many visits"
ORDER_CATEGORY_CAP = 100_000
"""Order ids whose category the dialect remembers; past it, those the desk forgot go."""
_LINK_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


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

    def __init__(self, d: BybitDialect, request: web.Request, category: ConnKind) -> None:
        max_msg_size = min(d.gw.config.max_frame_bytes, 64 * 1024)
        conn_id = f"{secrets.token_hex(8)}-{secrets.token_hex(2)}"
        super().__init__(d, request, conn_id, max_msg_size)
        self.category: ConnKind = category
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
        cat = self.category
        if cat == "private":  # a public connection's reader: never reached by a private one
            return
        if req.op == "ping":
            if self.pongs_stopped_until > time.monotonic():
                return
            self.pongs += 1
            self.enqueue(self.d.pong_frame(cat, rid, self.id))
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


class BybitPrivateConn(BybitConn):
    """One private-stream connection (``/v5/private``): ``auth``, then ``subscribe`` to the
    ``dcp`` topics (the only private topics served) and ``ping``. While it holds a ``dcp``
    subscription it keeps its key's DCP disarmed; when the last such connection of a key ends,
    the key's DCP timer starts (:meth:`BybitDialect.dcp_gone`)."""

    def __init__(self, d: BybitDialect, request: web.Request) -> None:
        super().__init__(d, request, "private")
        self.key: str | None = None
        self.dcp_topics: dict[str, None] = {}

    def _ended(self) -> None:
        self.d.dcp_gone(self)

    def _answer(self, op: str, ok: bool, message: str, rid: str | None) -> None:
        self.enqueue(bybit_orders.encode_private_answer(op, ok, message, self.id, rid))

    def _on_message(self, text: str) -> None:
        try:
            req = bybit_orders.decode_private_request(text)
        except FrameError as exc:
            self._answer("", False, f"error:{exc.reason[:200]},request:{clip(text, 200)}", None)
            return
        rid, op = req.request_id, req.op
        if op == "ping":
            if self.pongs_stopped_until > time.monotonic():
                return
            self.pongs += 1
            now_ms = time.time_ns() // 1_000_000
            self.enqueue(bybit_orders.encode_private_pong(self.id, rid, now_ms))
        elif op == "auth":
            self._auth(req.args, rid)
        elif op in ("subscribe", "unsubscribe"):
            self._subscription(op, req.args, rid)
        else:
            self._answer(op, False, f"error:unknown op {clip(op, 40)}", rid)

    def _auth(self, args: list[str | int], rid: str | None) -> None:
        if self.key is not None:
            self._answer("auth", False, "error:already authenticated", rid)
            return
        if (
            len(args) != 3
            or not isinstance(args[0], str)
            or isinstance(args[1], bool)
            or not isinstance(args[1], int)
            or not isinstance(args[2], str)
        ):
            self._answer("auth", False, "error:args must be [api_key, expires_ms, signature]", rid)
            return
        key, expires, sig = args[0], args[1], args[2]
        secret = self.d.gw.keys.get(key)
        if secret is None:
            self.d.refused["private_auth"] += 1
            self._answer("auth", False, "error:API key is invalid", rid)
            return
        if expires <= time.time_ns() // 1_000_000:
            self.d.refused["private_auth"] += 1
            self._answer("auth", False, "error:params error: expires is in the past", rid)
            return
        if not bybit_auth.ws_verify(secret, expires, sig):
            self.d.refused["private_auth"] += 1
            self._answer("auth", False, "error:signature mismatch", rid)
            return
        self.key = key
        log_event("private_auth", session=self.id, key=key, dialect="bybit")
        self._answer("auth", True, "", rid)

    def _subscription(self, op: str, args: list[str | int], rid: str | None) -> None:
        if self.key is None:
            self._answer(op, False, "error:request not authorized: send auth first", rid)
            return
        topics: list[str] = []
        for t in args:
            if not isinstance(t, str) or t not in DCP_TOPIC_PRODUCTS:
                self._answer(
                    op,
                    False,
                    f"error:topic {clip(str(t), 60)} is not served by the bybit dialect "
                    f"(private topics served: {', '.join(DCP_TOPIC_PRODUCTS)})",
                    rid,
                )
                return
            topics.append(t)
        if not topics:
            self._answer(op, False, "error:args is empty", rid)
            return
        for t in topics:
            if op == "subscribe":
                self.dcp_topics[t] = None
            else:
                self.dcp_topics.pop(t, None)
        if op == "subscribe":
            self.d.dcp_alive(self)
        elif not self.dcp_topics:  # no longer watched by DCP: not a death either
            self.d.dcp_conns.get(self.key, {}).pop(self, None)
        self._answer(op, True, "", rid)

    def products(self) -> set[str]:
        return {p for t in self.dcp_topics for p in DCP_TOPIC_PRODUCTS[t]}


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
        self.refused: dict[str, int] = {
            "connect": 0,
            "rest": 0,
            "auth": 0,
            "timestamp": 0,
            "uid_rate": 0,
            "private_auth": 0,
        }
        # orders (issue 17): kept in gw.desk under the API key; the category of each here
        self.order_category: dict[str, tuple[str, Category]] = {}  # order id -> (key, cat)
        self.uid_calls = SlidingCount(1.0)  # per key, endpoint and category
        self.dcp_windows: dict[tuple[str, str], int] = {}  # (key, product) -> timeWindow s
        self.dcp_conns: dict[str, dict[BybitPrivateConn, None]] = {}  # key -> dcp-subscribed
        self.dcp_counts: dict[str, int] = {"window_set": 0, "armed": 0, "disarmed": 0}

    # -- gateway side -----------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            *(web.get(path, self._ws) for path in PATHS),
            web.get(codec.INSTRUMENTS_PATH, self.instruments),
            web.get(codec.ORDERBOOK_PATH, self.orderbook),
            web.get(bybit_orders.TIME_PATH, self.server_time),
            web.post(bybit_orders.CREATE_PATH, self.order_create),
            web.get(bybit_orders.REALTIME_PATH, self.order_realtime),
            web.post(bybit_orders.CANCEL_PATH, self.order_cancel),
            web.post(bybit_orders.CANCEL_ALL_PATH, self.order_cancel_all),
            web.post(bybit_orders.DCP_PATH, self.dcp_set),
            web.get(bybit_orders.PRIVATE_STREAM_PATH, self._private_ws),
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
            "orders": {"tracked": len(self.order_category)},
            "dcp": {
                **self.dcp_counts,
                "windows": {f"{k}/{p}": w for (k, p), w in self.dcp_windows.items()},
                "alive": {k: len(v) for k, v in self.dcp_conns.items()},
            },
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

    async def _private_ws(self, request: web.Request) -> web.StreamResponse:
        ip = request.remote or "?"
        if not self.connects.admit(ip, self.opts.max_connects_per_5min):
            self.refused["connect"] += 1
            log_event("rate_limited", level=logging.WARNING, dialect="bybit", ip=ip)
            return _rest_error(
                429,
                ERR_REST_TOO_FREQUENT,
                f"more than {self.opts.max_connects_per_5min} connections in 5 minutes from one IP",
            )
        return await BybitPrivateConn(self, request).run()

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

    # -- orders (issue 17) ------------------------------------------------------------------
    async def server_time(self, request: web.Request) -> web.Response:
        refused = self._rate(request)
        if refused is not None:
            return refused
        ns = time.time_ns()
        return _ok(
            _encode(
                {
                    "retCode": 0,
                    "retMsg": "OK",
                    "result": {"timeSecond": str(ns // 10**9), "timeNano": str(ns)},
                    "retExtInfo": {},
                    "time": ns // 1_000_000,
                }
            )
        )

    async def _signed(self, request: web.Request) -> tuple[str, dict[str, Any]] | web.Response:
        """(API key, parameters) of a correctly signed, fresh request within the IP limit,
        else Bybit's answer: missing headers or an unknown key HTTP 401 (retCode 10003), a
        timestamp outside ``recv_window`` 10002, a bad signature 10004 (HTTP 200). Bybit
        refuses no replay within the window (``recv_window`` is its replay guard)."""
        refused = self._rate(request)
        if refused is not None:
            return refused
        post = request.method == "POST"
        body = await request.read() if post else b""
        payload = body if post else request.rel_url.raw_query_string.encode()
        h = request.headers
        key = h.get(bybit_auth.HEADER_KEY, "")
        ts = h.get(bybit_auth.HEADER_TIMESTAMP, "")
        sign = h.get(bybit_auth.HEADER_SIGN, "")
        recv = h.get(bybit_auth.HEADER_RECV_WINDOW, str(bybit_auth.RECV_WINDOW_MS))
        missing = [
            name
            for name, v in (
                (bybit_auth.HEADER_KEY, key),
                (bybit_auth.HEADER_TIMESTAMP, ts),
                (bybit_auth.HEADER_SIGN, sign),
            )
            if not v
        ]
        secret = self.gw.keys.get(key) if key else None
        if missing or secret is None:
            self.refused["auth"] += 1
            why = f"missing header(s) {', '.join(missing)}" if missing else "API key is invalid."
            log_event(
                "auth_refused", level=logging.WARNING, dialect="bybit", key=clip(key), why=why
            )
            return _rest_error(401, 10003, why)
        if not (_digits(ts, 15) and _digits(recv, 9)):
            self.refused["timestamp"] += 1
            return _rest_error(
                200,
                10002,
                "invalid request, please check your timestamp and recv_window param: "
                f"X-BAPI-TIMESTAMP {clip(ts, 20)!r}, X-BAPI-RECV-WINDOW {clip(recv, 20)!r} "
                "must be integer ms",
            )
        now_ms = time.time_ns() // 1_000_000
        if not bybit_auth.timestamp_fresh(int(ts), int(recv), now_ms):
            self.refused["timestamp"] += 1
            log_event(
                "timestamp_refused",
                level=logging.WARNING,
                dialect="bybit",
                key=key,
                skew=now_ms - int(ts),
            )
            return _rest_error(
                200,
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{ts}],server_timestamp[{now_ms}],recv_window[{recv}]",
            )
        if not bybit_auth.verify(secret, ts, key, recv, payload, sign):
            self.refused["auth"] += 1
            log_event("auth_refused", level=logging.WARNING, dialect="bybit", key=key, why="sign")
            origin = clip(f"{ts}{key}{recv}{payload.decode(errors='replace')}", 200)
            return _rest_error(200, 10004, f"error sign! origin_string[{origin}]")
        if not post:
            return key, dict(request.query)
        try:
            obj = msgspec.json.decode(body) if body else {}
        except DECODE_ERRORS as exc:
            return _rest_error(
                200, ERR_REST_PARAM, f"Request parameter error: body is not JSON ({exc})"
            )
        if not isinstance(obj, dict):
            return _rest_error(
                200, ERR_REST_PARAM, "Request parameter error: body must be a JSON object"
            )
        return key, obj

    def _uid_limited(self, key: str, path: str, cat: str) -> web.Response | None:
        """Bybit's per-UID limit of ``path`` in ``cat`` (a rolling second): retCode 10006."""
        limit = bybit_orders.ENDPOINT_RATE_PER_S[path]["spot" if cat == "spot" else "linear"]
        if self.uid_calls.admit(f"{key}|{path}|{cat}", limit):
            return None
        self.refused["uid_rate"] += 1
        log_event("rate_limited", level=logging.WARNING, dialect="bybit", key=key, path=path)
        return _too_many(limit)

    async def _order_call(
        self,
        request: web.Request,
        kind: str,
        path: str,
        handle: Callable[[str, Category, dict[str, Any]], web.Response],
    ) -> web.Response:
        """A signed order endpoint: verify, take a pending order fault, apply the UID limit,
        then ``handle(key, category, params)``. ``order_5xx`` / ``cancel_fails_once``: HTTP 503,
        nothing done; ``order_rate_limit``: retCode 10006, nothing done; ``order_timeout``:
        done, then no answer for ``duration_ms`` and the connection dropped (the answer lost)."""
        got = await self._signed(request)
        if isinstance(got, web.Response):
            return got
        key, params = got
        fault = self.gw.order_faults.take(kind)
        name, ms = fault if fault is not None else ("", 0)
        if name:
            log_event(
                "order_fault",
                level=logging.WARNING,
                dialect="bybit",
                fault=name,
                key=key,
                path=path,
            )
        if name in ("order_5xx", "cancel_fails_once"):
            return web.Response(status=503, text="503 Service Temporarily Unavailable")
        if name == "order_rate_limit":
            return _too_many(bybit_orders.ENDPOINT_RATE_PER_S[path]["linear"])
        cat = params.get("category")
        if cat not in ("spot", "linear"):
            return _rest_error(
                200,
                ERR_REST_PARAM,
                f"Illegal category: {clip(str(cat), 20)!r} (served: spot, linear)",
            )
        category: Category = "spot" if cat == "spot" else "linear"
        limited = self._uid_limited(key, path, category)
        if limited is not None:
            return limited
        resp = handle(key, category, params)
        if name == "order_timeout":
            await asyncio.sleep(ms / 1000)
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        return resp

    async def order_create(self, request: web.Request) -> web.Response:
        return await self._order_call(request, "place", bybit_orders.CREATE_PATH, self._create)

    async def order_realtime(self, request: web.Request) -> web.Response:
        return await self._order_call(request, "list", bybit_orders.REALTIME_PATH, self._realtime)

    async def order_cancel(self, request: web.Request) -> web.Response:
        return await self._order_call(request, "cancel", bybit_orders.CANCEL_PATH, self._cancel)

    async def order_cancel_all(self, request: web.Request) -> web.Response:
        return await self._order_call(
            request, "cancel", bybit_orders.CANCEL_ALL_PATH, self._cancel_all
        )

    def _create(self, key: str, cat: Category, p: dict[str, Any]) -> web.Response:
        link = p.get("orderLinkId")
        if link is not None and (not isinstance(link, str) or not _LINK_RE.match(link)):
            return _param_error(
                "orderLinkId is 1-36 characters of letters, digits, '-' and '_', got "
                f"{clip(str(link), 60)!r}"
            )
        if link and self.gw.desk.by_client_id(key, link) is not None:
            if cat == "spot":
                return _rest_error(200, 170141, "Duplicate clientOrderId")
            return _rest_error(200, 110072, "OrderLinkedID is duplicate")
        symbol = p.get("symbol")
        market = self.gw.hub.markets.get(symbol) if isinstance(symbol, str) else None
        if market is None:
            if cat == "spot":
                return _rest_error(200, 170121, "Invalid symbol.")
            return _param_error(f"symbol invalid: {clip(str(symbol), 40)!r}")
        side = p.get("side")
        if side not in ("Buy", "Sell"):
            return _param_error(f"side must be Buy or Sell, got {clip(str(side), 20)!r}")
        if p.get("orderType") != "Limit":
            return _param_error(
                f"orderType {clip(str(p.get('orderType')), 20)!r}: the bybit dialect takes "
                "Limit orders only"
            )
        tif = p.get("timeInForce", "GTC")
        if tif != "GTC":
            return _param_error(
                f"timeInForce {clip(str(tif), 20)!r}: the bybit dialect rests GTC orders only"
            )
        inst = market.instrument
        units: dict[str, int] = {}
        for name, parse, step in (
            ("price", inst.price_units, inst.tick_size),
            ("qty", inst.size_units, inst.lot_size),
        ):
            text = p.get(name)
            if not isinstance(text, str) or not 0 < len(text) <= 32:
                return _param_error(f"{name} must be a decimal string, got {clip(str(text), 40)!r}")
            try:
                units[name] = parse(text)
            except FrameError as exc:
                return _param_error(f"{name} {clip(text, 40)!r}: {exc.reason} ({step})")
            if units[name] <= 0:
                return _param_error(f"{name} must be > 0, got {clip(text, 40)!r}")
        desk = self.gw.desk
        if desk.open_count(key) >= desk.max_open_per_key:
            return _rest_error(
                200, 110020, f"Not allowed to have more than {desk.max_open_per_key} active orders."
            )
        order = desk.place(
            key,
            inst,
            "buy" if side == "Buy" else "sell",
            units["price"],
            units["qty"],
            link or None,
            market.sim.book,
        )
        self._track(order.order_id, key, cat)
        return _answer({"orderId": order.order_id, "orderLinkId": link or ""})

    def _track(self, order_id: str, key: str, cat: Category) -> None:
        self.order_category[order_id] = (key, cat)
        if len(self.order_category) > ORDER_CATEGORY_CAP:  # forget what the desk forgot
            desk = self.gw.desk
            self.order_category = {
                oid: kc for oid, kc in self.order_category.items() if desk.get(kc[0], oid)
            }

    def _find(self, key: str, cat: Category, p: dict[str, Any]) -> DeskOrder | None:
        """The key's order of ``cat`` named by ``orderId`` (first) or ``orderLinkId``."""
        oid, link = p.get("orderId"), p.get("orderLinkId")
        desk = self.gw.desk
        order = None
        if isinstance(oid, str) and oid:
            order = desk.get(key, oid)
        elif isinstance(link, str) and link:
            order = desk.by_client_id(key, link)
        if order is None or self.order_category.get(order.order_id) != (key, cat):
            return None
        return order

    def _mine(self, key: str, cat: Category, p: dict[str, Any]) -> list[DeskOrder] | web.Response:
        """The key's open orders of ``cat`` in the scope ``symbol`` > ``baseCoin`` >
        ``settleCoin`` (``linear`` needs one of them, as Bybit's)."""
        symbol, base, settle = p.get("symbol"), p.get("baseCoin"), p.get("settleCoin")
        if cat == "linear" and not (symbol or base or settle):
            return _param_error(
                "Missing some parameters that must be filled in: symbol or settleCoin or baseCoin"
            )
        out = []
        for o in self.gw.desk.find(key, "open", None):
            sym = o.instrument.symbol
            if self.order_category.get(o.order_id) != (key, cat):
                continue
            if symbol:
                if sym != symbol:
                    continue
            elif base:
                if not sym.startswith(str(base)):
                    continue
            elif settle and cat == "linear" and not sym.endswith(str(settle)):
                continue
            out.append(o)
        return out

    def _realtime(self, key: str, cat: Category, p: dict[str, Any]) -> web.Response:
        if p.get("orderId") or p.get("orderLinkId"):
            one = self._find(key, cat, p)
            return _answer(
                {
                    "list": [] if one is None else [_order_json(one)],
                    "nextPageCursor": "",
                    "category": cat,
                }
            )
        if p.get("openOnly", "0") != "0":
            return _param_error("openOnly: the bybit dialect serves 0 (open orders)")
        raw_limit, raw_cursor = p.get("limit", "20"), p.get("cursor", "") or "0"
        if not (_digits(raw_limit, 2) and 1 <= int(raw_limit) <= 50):
            return _param_error(f"limit must be 1-50, got {clip(raw_limit, 20)!r}")
        if not _digits(raw_cursor, 9):
            return _param_error(f"cursor {clip(raw_cursor, 40)!r} is not one of ours")
        mine = self._mine(key, cat, p)
        if isinstance(mine, web.Response):
            return mine
        mine.sort(key=lambda o: o.created_ns, reverse=True)
        start, limit = int(raw_cursor), int(raw_limit)
        page = mine[start : start + limit]
        cursor = str(start + limit) if start + limit < len(mine) else ""
        return _answer(
            {"list": [_order_json(o) for o in page], "nextPageCursor": cursor, "category": cat}
        )

    def _cancel(self, key: str, cat: Category, p: dict[str, Any]) -> web.Response:
        if not p.get("symbol"):
            return _param_error("symbol is required")
        if not (p.get("orderId") or p.get("orderLinkId")):
            return _param_error("orderId or orderLinkId is required")
        order = self._find(key, cat, p)
        if order is None or order.status != "open" or order.instrument.symbol != p["symbol"]:
            if cat == "spot":
                return _rest_error(200, 170213, "Order does not exist.")
            return _rest_error(200, 110001, "Order does not exist")
        self.gw.desk.cancel(order)
        return _answer({"orderId": order.order_id, "orderLinkId": _link(order)})

    def _cancel_all(self, key: str, cat: Category, p: dict[str, Any]) -> web.Response:
        mine = self._mine(key, cat, p)
        if isinstance(mine, web.Response):
            return mine
        for o in mine:
            self.gw.desk.cancel(o)
        return _answer(
            {
                "list": [{"orderId": o.order_id, "orderLinkId": _link(o)} for o in mine],
                "success": "1",
            }
        )

    async def dcp_set(self, request: web.Request) -> web.Response:
        """``POST /v5/order/disconnected-cancel-all``: the key's DCP ``timeWindow`` for a
        ``product`` (default OPTIONS, as Bybit's). Arms nothing: DCP runs on the private
        stream (:meth:`dcp_gone`)."""
        got = await self._signed(request)
        if isinstance(got, web.Response):
            return got
        key, p = got
        fault = self.gw.order_faults.take("other")
        name, ms = fault if fault is not None else ("", 0)
        if name == "order_5xx":
            return web.Response(status=503, text="503 Service Temporarily Unavailable")
        if name == "order_rate_limit":
            return _too_many(bybit_orders.ENDPOINT_RATE_PER_S[bybit_orders.DCP_PATH]["linear"])
        resp = self._dcp_window(key, p)
        if name == "order_timeout":
            await asyncio.sleep(ms / 1000)
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        return resp

    def _dcp_window(self, key: str, p: dict[str, Any]) -> web.Response:
        product = p.get("product", "OPTIONS")
        if product not in ("OPTIONS", "DERIVATIVES", "SPOT"):
            return _param_error(
                f"product must be OPTIONS, DERIVATIVES or SPOT, got {clip(str(product), 20)!r}"
            )
        window = p.get("timeWindow")
        if (
            isinstance(window, bool)
            or not isinstance(window, int)
            or not bybit_orders.DCP_WINDOW_MIN_S <= window <= bybit_orders.DCP_WINDOW_MAX_S
        ):
            return _param_error(
                f"timeWindow must be an integer in [3, 300], got {clip(str(window), 20)!r}"
            )
        limited = self._uid_limited(key, bybit_orders.DCP_PATH, "linear")
        if limited is not None:
            return limited
        self.dcp_windows[(key, str(product))] = window
        self.dcp_counts["window_set"] += 1
        log_event("dcp_window", dialect="bybit", key=key, product=product, time_window_s=window)
        return _ok(_encode({"retCode": 0, "retMsg": "success"}))

    def dcp_alive(self, conn: BybitPrivateConn) -> None:
        """``conn`` subscribed a ``dcp`` topic: its key's DCP is held off (disarmed)."""
        assert conn.key is not None
        self.dcp_conns.setdefault(conn.key, {})[conn] = None
        if self.gw.dead_man.is_armed(conn.key):
            self.gw.dead_man.arm(conn.key, None, 0)
            self.dcp_counts["disarmed"] += 1
            log_event("dcp_disarmed", dialect="bybit", key=conn.key, session=conn.id)

    def dcp_gone(self, conn: BybitPrivateConn) -> None:
        """``conn`` ended: if it was the key's last private connection subscribed to ``dcp``,
        DCP starts: every open order of the key is cancelled (by ``gw.dead_man``) once the
        shortest ``timeWindow`` of the products it watched passes with no reconnection."""
        key = conn.key
        if key is None or not conn.dcp_topics:
            return
        alive = self.dcp_conns.get(key, {})
        alive.pop(conn, None)
        if alive:
            return
        self.dcp_conns.pop(key, None)
        window = min(
            self.dcp_windows.get((key, p), bybit_orders.DCP_WINDOW_DEFAULT_S)
            for p in conn.products()
        )
        self.gw.dead_man.arm(key, None, window)
        self.dcp_counts["armed"] += 1
        log_event(
            "dcp_armed", level=logging.WARNING, dialect="bybit", key=key, time_window_s=window
        )


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


def _encode(obj: Any) -> bytes:
    return msgspec.json.encode(obj)


def _digits(text: str, n: int) -> bool:
    return 0 < len(text) <= n and text.isascii() and text.isdigit()


def _answer(result: dict[str, Any]) -> web.Response:
    """Bybit's success envelope around ``result``."""
    return _ok(
        _encode(
            {
                "retCode": 0,
                "retMsg": "OK",
                "result": result,
                "retExtInfo": {},
                "time": time.time_ns() // 1_000_000,
            }
        )
    )


def _param_error(message: str) -> web.Response:
    return _rest_error(200, ERR_REST_PARAM, f"params error: {message}")


def _too_many(limit: int) -> web.Response:
    """retCode 10006 (HTTP 200) with Bybit's limit headers: the window resets within 1 s."""
    now_ms = time.time_ns() // 1_000_000
    return web.Response(
        body=codec.encode_rest_error(ERR_REST_TOO_FREQUENT, "Too many visits!"),
        content_type="application/json",
        headers={
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": "0",
            "X-Bapi-Limit-Reset-Timestamp": str(now_ms + 1000),
        },
    )


def _link(o: DeskOrder) -> str:
    """The order's ``orderLinkId`` ("" when it was placed without one)."""
    return "" if o.client_order_id.startswith("auto-") else o.client_order_id


_STATUS = {"open": "New", "filled": "Filled", "cancelled": "Cancelled"}


def _order_json(o: DeskOrder) -> dict[str, Any]:
    """A desk order as Bybit's ``result.list`` item (the fields tickpipe reads, and more)."""
    inst = o.instrument
    status = _STATUS[o.status]
    if o.status == "open" and o.filled:
        status = "PartiallyFilled"
    elif o.status == "cancelled" and o.filled:
        status = "PartiallyFilledCanceled"
    cancel_type = "UNKNOWN"
    if o.status == "cancelled":
        cancel_type = "CancelByDCP" if o.cancel_reason == "dead_man" else "CancelByUser"
    return {
        "orderId": o.order_id,
        "orderLinkId": _link(o),
        "blockTradeId": "",
        "symbol": inst.symbol,
        "price": inst.format_price(o.price),
        "qty": inst.format_size(o.size),
        "side": "Buy" if o.side == "buy" else "Sell",
        "isLeverage": "",
        "positionIdx": 0,
        "orderStatus": status,
        "cancelType": cancel_type,
        "rejectReason": "EC_NoError",
        "avgPrice": inst.format_price(o.price) if o.filled else "0",
        "leavesQty": inst.format_size(o.remaining if o.status == "open" else 0),
        "cumExecQty": inst.format_size(o.filled),
        "cumExecFee": "0",
        "timeInForce": "GTC",
        "orderType": "Limit",
        "createdTime": str(o.created_ns // 1_000_000),
        "updatedTime": str(o.updated_ns // 1_000_000),
    }
