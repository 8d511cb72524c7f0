"""``tickpipe gateway --dialect okx``: the simulated markets as OKX v5 public market data.

Everything on the wire is encoded with :mod:`tickpipe.venues.okx.codec` (the codec the client
decodes with), checksums with :mod:`tickpipe.venues.okx.checksum`; documented limits come from
``venues.okx.limits``.

Symbols: ``BASE-QUOTE`` -> ``BASE-QUOTE`` with quote ``USD`` written ``USDT`` (``BTC-USD`` ->
``BTC-USDT``, ``USD-JPY`` -> ``USD-JPY``), a bare symbol gets ``-USDT`` (``AAPL`` ->
``AAPL-USDT``); grids unchanged. The hub runs under these names (``orderbook:BTC-USDT``).

Sequencing: the hub's ``orderbook:SYMBOL`` seq (one per simulator step that changed the book)
is OKX's ``seqId``. The steps of each ``book_interval_ms`` (100) are merged into one ``update``
frame with ``seqId`` = the last step's id and ``prevSeqId`` = the ``seqId`` of the previous
update of that book (OKX's ``Continuity.LINK``). A subscription is answered with a ``snapshot``
(up to 400 levels a side, ``prevSeqId`` -1) at the ``seqId`` of the last update produced, so the
next update links to it. Every snapshot and update carries OKX's checksum of the book after it
(``venues.okx.checksum``), or 0 with ``zero_checksum=1`` (OKX from 23 June 2026).

Served: WebSocket ``/ws/v5/public`` (``subscribe``/``unsubscribe`` with ``args`` and an optional
``id``, answered one ``event`` per argument or ``event: error`` with OKX's codes: 60012 invalid
request, 60018 unknown channel or instId, 60014 too many requests); channels ``books``,
``trades`` (one frame per print), ``tickers`` (at most one per ``book_interval_ms``, when the best
bid/ask or the last price changed); the client's text ``ping`` answered ``pong``; a connection
with no traffic either way for ``idle_timeout_s`` (30) is closed (4004). REST
``/api/v5/public/instruments?instType=SPOT`` and ``/api/v5/market/books?instId=&sz=``.

Orders (issue 17, :mod:`.okx_orders`): ``/api/v5/public/time``, ``/api/v5/trade/order`` (place,
get), ``/api/v5/trade/orders-pending``, ``/api/v5/trade/cancel-order`` and
``/api/v5/trade/cancel-all-after`` (the dead man's switch, on ``gw.dead_man``), signed as OKX
documents (``tickpipe.venues.okx.auth``) with the keys of ``gw.keys`` and one passphrase for all
(the ``passphrase`` option), orders kept in ``gw.desk`` under the API key.

Faults: ``drop_delta``, ``duplicate_delta``, ``reorder_delta``, ``malformed_frame``,
``bad_checksum`` (a wrong checksum on one update) on ``books`` updates; ``disconnect``,
``stall``, ``silence_channel``. ``stop_pings`` does not apply (OKX never pings) and snapshot
faults do not either (OKX seeds in band): both are refused at trigger.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import WSMsgType, web

from tickpipe.errors import ConfigError, FrameError
from tickpipe.gateway.config import check_exposure
from tickpipe.gateway.dialects.base import (
    BookWindow,
    DialectBase,
    DialectConnection,
    SlidingCount,
    apply_frame_fault,
    changed_levels,
    levels,
    parse_options,
    rename_markets,
    trade_event,
)
from tickpipe.gateway.dialects.okx_orders import (
    DEFAULT_PASSPHRASE,
    OkxOrderRoutes,
    OrderSettings,
)
from tickpipe.gateway.guard import clip
from tickpipe.gateway.logs import log_event
from tickpipe.gateway.markets import MarketSpec
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, TickerEvent
from tickpipe.venues.okx import auth as okx_auth
from tickpipe.venues.okx import codec, endpoints, limits
from tickpipe.venues.okx import orders as okx_orders
from tickpipe.venues.okx.checksum import checksum as okx_checksum
from tickpipe.venues.okx.codec import ClientRequest, Subscribed, Unsubscribed, VenueError

if TYPE_CHECKING:
    from tickpipe.gateway.hub import Market
    from tickpipe.gateway.server import Gateway
    from tickpipe.gateway.simulator import SimTrade

CLOSE_IDLE = 4004  # OKX: "No data received in 30s"
ERR_INVALID = "60012"  # Invalid request
ERR_TOO_FREQUENT = "60014"  # Requests too frequent
ERR_NO_CHANNEL = "60018"  # Wrong URL or channel ... doesn't exist
REST_EMPTY = "50014"  # Parameter {0} can not be empty
REST_PARAM = "51000"  # Parameter {0} error
REST_NO_INST = "51001"  # Instrument ID does not exist
WS_PATH = endpoints.VENUE.stream_path
KINDS = ("orderbook", "trades", "ticker")
_json = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class OkxOptions:
    """Knobs of the okx dialect (``--dialect-option NAME=VALUE``); defaults are OKX's
    documented limits (``venues.okx.limits``). docs/dialects.md.

    - ``idle_timeout_s`` (30.0): a connection with no message either way this long is closed.
    - ``max_connects_per_s`` (3): WebSocket connections an IP may open in any one second; more
      are refused with HTTP 429 (one deque of times per IP).
    - ``max_ops_per_window`` (480) subscribe/unsubscribe requests a connection may send per
      ``ops_window_s`` (3600.0) sliding window; more are answered error 60014 (one deque of at
      most that many times a connection).
    - ``book_interval_ms`` (100): the ``books`` channel's push period (updates merged).
    - ``zero_checksum`` (0; 1 = on): every ``books`` frame carries ``checksum: 0``, as OKX does
      from 23 June 2026.
    - ``rest_books_per_2s`` (40), ``rest_instruments_per_2s`` (20): REST requests an IP may
      send in any 2 s; more: HTTP 429, code 50011.

    Orders (:mod:`.okx_orders`; OKX's figures):

    - ``passphrase`` (text, default ``demo-passphrase``): the OK-ACCESS-PASSPHRASE every key
      must send (never shown in stats or logs).
    - ``request_expiry_s`` (30.0): a signed request whose timestamp is further off the
      gateway's clock is refused (50102).
    - ``order_rate_per_2s`` (60): place, cancel and get requests, each per key and instId in
      any 2 s; ``pending_rate_per_2s`` (60): orders-pending requests per key;
      ``dead_man_per_s`` (1): cancel-all-after requests per key a second;
      ``time_rate_per_2s`` (10): /api/v5/public/time requests per IP. More: 429, code 50011.
    - ``dead_man_min_s`` (10), ``dead_man_max_s`` (120): the cancel-all-after ``timeOut``
      accepted besides 0 (lower the minimum to rehearse a short timer in tests).
    """

    idle_timeout_s: float = limits.WS_IDLE_CUT_S
    max_connects_per_s: int = limits.WS_CONNECTS_PER_S_PER_IP
    max_ops_per_window: int = limits.WS_OPS_PER_HOUR_PER_CONNECTION
    ops_window_s: float = 3600.0
    book_interval_ms: int = 100
    zero_checksum: int = 0
    rest_books_per_2s: int = limits.REST_BOOKS_PER_2S_PER_IP
    rest_instruments_per_2s: int = limits.REST_INSTRUMENTS_PER_2S
    request_expiry_s: float = okx_auth.REQUEST_EXPIRY_MS / 1000
    order_rate_per_2s: int = okx_orders.ORDERS_PER_2S
    pending_rate_per_2s: int = okx_orders.ORDERS_PER_2S
    dead_man_per_s: int = okx_orders.DEAD_MAN_PER_S
    time_rate_per_2s: int = okx_orders.TIME_PER_2S
    dead_man_min_s: int = okx_orders.DEAD_MAN_RANGE_S[0]
    dead_man_max_s: int = okx_orders.DEAD_MAN_RANGE_S[1]


def okx_symbol(symbol: str) -> str:
    """``BTC-USD`` -> ``BTC-USDT``, ``USD-JPY`` -> ``USD-JPY``, ``AAPL`` -> ``AAPL-USDT``."""
    base, dash, quote = symbol.partition("-")
    if not dash:
        return f"{symbol}-USDT".upper()
    return f"{base}-{'USDT' if quote == 'USD' else quote}".upper()


def okx_markets(markets: tuple[MarketSpec, ...]) -> tuple[MarketSpec, ...]:
    """The markets under their OKX instIds (ConfigError if two map to one name)."""
    return rename_markets(
        markets,
        okx_symbol,
        lambda name: name.isascii() and name.replace("-", "").isalnum(),
        "OKX instId (letters, digits, '-')",
    )


class _Window(BookWindow):
    """One book's merged changes (:class:`BookWindow`), the ``seqId`` of its last update and
    the last trade price (for ``tickers``)."""

    __slots__ = ("last_px", "prev")

    def __init__(self, prev: int) -> None:
        super().__init__(prev)
        self.prev = prev  # seqId of the last update produced (a new snapshot's seqId)
        self.last_px: int | None = None


class OkxConn(DialectConnection["OkxDialect"]):
    """One WebSocket connection: its channels, idle watchdog and reader (the queue, writer,
    stall and close are :class:`DialectConnection`'s)."""

    def __init__(self, d: OkxDialect, request: web.Request) -> None:
        max_msg_size = min(d.gw.config.max_frame_bytes, limits.WS_SUBSCRIBE_MESSAGE_MAX_BYTES)
        super().__init__(d, request, secrets.token_hex(4), max_msg_size)  # connId: 8 hex digits
        self.channels = self.subscribed
        self.ops: deque[float] = deque()

    async def _watchdog(self) -> None:
        idle = self.d.opts.idle_timeout_s
        while not self.closing:
            left = self.last_traffic + idle - time.monotonic()
            if left <= 0:
                log_event("idle_timeout", level=logging.WARNING, session=self.id, dialect="okx")
                self.kill(CLOSE_IDLE, f"No data received in {idle:g}s.", reason="idle_timeout")
                return
            await asyncio.sleep(left)

    # -- the connection ---------------------------------------------------------------------
    async def run(self) -> web.WebSocketResponse:
        return await self._serve()

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
                self._error(ERR_INVALID, "Invalid request: binary frames are not read", None)
            else:
                break

    def _error(self, code: str, message: str, rid: str | None) -> None:
        self.enqueue(codec.encode_event(VenueError(code, message, rid, self.id)))

    # -- requests ---------------------------------------------------------------------------
    def _on_message(self, text: str) -> None:
        try:
            req = codec.decode_client(text)
        except FrameError as exc:
            self._refuse(text, exc)
            return
        if not isinstance(req, ClientRequest):  # the text ping
            self.pongs += 1
            self.enqueue(endpoints.PONG_MESSAGE)
            return
        rid = req.request_id
        now = time.monotonic()
        ops, window = self.ops, self.d.opts.ops_window_s
        while ops and now - ops[0] >= window:
            ops.popleft()
        if len(ops) >= self.d.opts.max_ops_per_window:
            self._error(ERR_TOO_FREQUENT, "Requests too frequent.", rid)
            return
        ops.append(now)
        for ch in req.channels:
            if ch not in self.d.subs:
                kind, _, sym = ch.partition(":")
                self._error(
                    ERR_NO_CHANNEL,
                    f"Wrong URL or channel:{endpoints.KIND_TO_CHANNEL.get(kind, kind)},instId:"
                    f"{clip(sym, 40)} doesn't exist. Please use the correct URL, channel and "
                    "parameters referring to API document.",
                    rid,
                )
                return
        for ch in dict.fromkeys(req.channels):
            if req.op == "subscribe":
                self.d.subscribe(ch, self)
                self.enqueue(codec.encode_event(Subscribed(ch, "", rid, self.id)))
                if ch.startswith("orderbook:"):
                    self.enqueue(self.d.snapshot_frame(ch.partition(":")[2]))
            else:
                self.d.unsubscribe(ch, self)
                self.enqueue(codec.encode_event(Unsubscribed(ch, "", rid, self.id)))

    def _refuse(self, text: str, exc: FrameError) -> None:
        """OKX's error for a request the codec cannot read: 60018 for an argument naming a
        channel it does not serve, else 60012 with the request echoed (as OKX does)."""
        try:
            obj = _json.decode(text)
        except (msgspec.DecodeError, RecursionError):
            obj = None
        rid = obj.get("id") if isinstance(obj, dict) else None
        rid = rid if isinstance(rid, str) and len(rid) <= endpoints.REQUEST_ID_MAX_LEN else None
        field = exc.field or ""
        if isinstance(obj, dict) and field.startswith("args[") and "unsupported" in exc.reason:
            args = obj.get("args")
            i = int(field[5:].split("]")[0])
            arg = args[i] if isinstance(args, list) and i < len(args) else None
            a = arg if isinstance(arg, dict) else {}
            self._error(
                ERR_NO_CHANNEL,
                f"Wrong URL or channel:{clip(str(a.get('channel')), 40)},instId:"
                f"{clip(str(a.get('instId')), 40)} doesn't exist. Please use the correct URL, "
                "channel and parameters referring to API document.",
                rid,
            )
            return
        self._error(ERR_INVALID, f"Invalid request: {clip(text, 200)}", rid)


class OkxDialect(DialectBase[OkxConn]):
    """The okx dialect of one gateway; see the module docstring."""

    name = "okx"

    def __init__(self, gw: Gateway) -> None:
        super().__init__(gw)
        # the order endpoints take keys: the public demo pair only on loopback (or when allowed)
        check_exposure(gw.config.host, gw.keys, gw.config.allow_public_demo_key)
        passphrase = DEFAULT_PASSPHRASE
        options = []
        for name, value in gw.config.dialect_options:
            if name == "passphrase":  # text, not a number
                if not isinstance(value, str) or not value:
                    raise ConfigError("--dialect okx: option passphrase must be non-empty text")
                passphrase = value
            else:
                options.append((name, value))
        self.opts = parse_options(OkxOptions, options, "--dialect okx")
        if self.opts.zero_checksum not in (0, 1):
            raise ConfigError(
                f"--dialect okx: option zero_checksum must be 1 (on), got {self.opts.zero_checksum}"
            )
        if self.opts.dead_man_min_s > self.opts.dead_man_max_s:
            raise ConfigError(
                "--dialect okx: dead_man_min_s must be <= dead_man_max_s, got "
                f"{self.opts.dead_man_min_s} > {self.opts.dead_man_max_s}"
            )
        o = self.opts
        self.orders = OkxOrderRoutes(
            gw,
            OrderSettings(
                passphrase=passphrase,
                request_expiry_s=o.request_expiry_s,
                order_rate_per_2s=o.order_rate_per_2s,
                pending_rate_per_2s=o.pending_rate_per_2s,
                dead_man_per_s=o.dead_man_per_s,
                time_rate_per_2s=o.time_rate_per_2s,
                dead_man_min_s=o.dead_man_min_s,
                dead_man_max_s=o.dead_man_max_s,
            ),
        )
        self.windows: dict[str, _Window] = {}
        for sym, m in gw.hub.markets.items():
            self.windows[sym] = _Window(m.history.seq)
            for kind in KINDS:
                self.subs[f"{kind}:{sym}"] = {}
        self.connects = SlidingCount(1.0)
        self.rest_calls = SlidingCount(2.0)
        self.updates = 0
        self.snapshots = 0
        self.refused: dict[str, int] = {"connect": 0, "rest": 0}

    # -- gateway side -----------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(WS_PATH, self._ws),
            web.get(codec.INSTRUMENTS_PATH, self.instruments),
            web.get(codec.BOOKS_PATH, self.books),
            *self.orders.routes(),
        ]

    def trigger(self, fault: str, params: dict[str, Any]) -> dict[str, Any] | None:
        if fault == "stop_pings":
            raise ConfigError(
                "stop_pings does not apply to the okx dialect: OKX sends no pings (the client "
                "sends the text ping)"
            )
        if fault in ("snapshot_error", "stale_snapshot"):
            raise ConfigError(
                f"{fault} does not apply to the okx dialect: OKX books are seeded in band "
                "(re-subscribe to get a fresh snapshot)"
            )
        if fault == "bad_checksum" and self.opts.zero_checksum:
            raise ConfigError(
                "bad_checksum does not apply with zero_checksum=1: every frame carries checksum 0"
            )
        if fault not in self.CONNECTION_FAULTS:
            return None
        return self.connection_fault(fault, params)

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "options": {k: getattr(self.opts, k) for k in OkxOptions.__dataclass_fields__},
            "connections": [
                {
                    "session": c.id,
                    "peer": c.peer,
                    "channels": list(c.channels),
                    **c.stats(),
                }
                for c in self.conns.values()
            ],
            "book_updates": self.updates,
            "snapshots": self.snapshots,
            "refused": dict(self.refused),
            "disconnects": dict(self.disconnects),
            "orders": self.orders.stats(),
        }

    # -- subscriptions ----------------------------------------------------------------------
    def _fan(self, channel: str, data: bytes) -> None:
        for c in list(self.subs[channel]):
            c.enqueue(data)

    def _checksum(self, book: OrderBook) -> int | None:
        return None if self.opts.zero_checksum else okx_checksum(book)

    def snapshot_frame(self, sym: str) -> bytes:
        """A ``books`` snapshot at the ``seqId`` of the last update produced (the next update
        links to it), up to 400 levels a side, with the checksum of that book."""
        market = self.gw.hub.markets[sym]
        seq = self.windows[sym].prev
        book = market.history.book_at(seq)
        book.truncate(limits.MAX_BOOK_DEPTH)
        inst = market.instrument
        bids, asks = book.to_lists()
        snap = BookSnapshot(
            sym,
            seq,
            levels(inst, bids),
            levels(inst, asks),
            self._checksum(book),
            time.time_ns(),
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
        """One ``books`` update per book that changed since the last flush (with faults), and
        one ``tickers`` frame per instrument whose best bid/ask or last price changed."""
        markets = self.gw.hub.markets
        for sym, w in self.windows.items():
            market = markets[sym]
            if w.first is not None:
                prev, last, bids, asks = w.prev, w.last, w.bids, w.asks
                w.first, w.prev, w.bids, w.asks = None, last, {}, {}
                channel = f"orderbook:{sym}"
                if self.subs[channel]:
                    self._send_update(market, prev, last, bids, asks)
                else:
                    w.held = None
            self._send_ticker(market, w)

    def _book_after(self, market: Market, seq: int) -> OrderBook:
        history = market.history
        if history.seq == seq and not market.pending_bids and not market.pending_asks:
            return market.sim.book  # the live book is the book at seq (no copy)
        return history.book_at(seq)

    def _send_update(
        self, market: Market, prev: int, last: int, bids: dict[int, int], asks: dict[int, int]
    ) -> None:
        sym = market.instrument.symbol
        channel = f"orderbook:{sym}"
        w = self.windows[sym]
        fault = self.faults.frame_fault("orderbook", channel, sym)
        if fault == "bad_checksum" and self.opts.zero_checksum:
            fault = None  # refused at trigger, ignored as a setting
        held, w.held = w.held, None
        if fault == "reorder_delta" and held is not None:
            fault = None  # one frame held back at a time
        cs = self._checksum(self._book_after(market, last))
        if fault == "bad_checksum" and cs is not None:
            cs = cs + 1 if cs < 2**31 - 1 else 1  # wrong, never 0 ("no check")
            cs = cs or 1
        delta = BookDelta(
            sym,
            *changed_levels(market.instrument, bids, asks),
            last_id=last,
            prev_id=prev,
            checksum=cs,
            ts_ns=time.time_ns(),
        )
        data = codec.encode_book(delta)
        self.updates += 1
        if fault is not None:
            self.faults.record(fault, channel=channel, prev_seq_id=prev, seq_id=last)
        w.held = apply_frame_fault(fault, data, held, lambda b: self._fan(channel, b))

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
        if bb is None or ba is None:
            return
        top = (*bb, *ba, w.last_px)
        if top == w.top:
            return
        w.top = top
        inst = market.instrument
        fp, fs = inst.format_price, inst.format_size
        last = fp(w.last_px) if w.last_px is not None else None
        event = TickerEvent(
            sym, fp(bb[0]), fs(bb[1]), fp(ba[0]), fs(ba[1]), last, None, time.time_ns()
        )
        self._fan(channel, codec.encode_ticker(event))

    # -- endpoints --------------------------------------------------------------------------
    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ip = request.remote or "?"
        if not self.connects.admit(ip, self.opts.max_connects_per_s):
            self.refused["connect"] += 1
            log_event("rate_limited", level=logging.WARNING, dialect="okx", ip=ip, path=WS_PATH)
            return _rest_error(
                429,
                limits.REST_RATE_LIMITED_CODE,
                f"Too Many Requests: more than {self.opts.max_connects_per_s} connections a "
                "second from one IP",
            )
        return await OkxConn(self, request).run()

    def _rate(self, request: web.Request, limit: int) -> web.Response | None:
        ip = request.remote or "?"
        if self.rest_calls.admit(f"{ip} {request.path}", limit):
            return None
        self.refused["rest"] += 1
        log_event(
            "rate_limited", level=logging.WARNING, dialect="okx", ip=ip, path=clip(request.path)
        )
        return _rest_error(429, limits.REST_RATE_LIMITED_CODE, "Too Many Requests")

    async def instruments(self, request: web.Request) -> web.Response:
        refused = self._rate(request, self.opts.rest_instruments_per_2s)
        if refused is not None:
            return refused
        inst_type = request.query.get("instType", "")
        if not inst_type:
            return _rest_error(400, REST_EMPTY, "Parameter instType can not be empty.")
        if inst_type != "SPOT":
            return _rest_error(400, REST_PARAM, "Parameter instType error (served: SPOT)")
        instruments = [m.instrument for m in self.gw.hub.markets.values()]
        inst_id = request.query.get("instId")
        if inst_id is not None:
            instruments = [i for i in instruments if i.symbol == inst_id]
            if not instruments:
                return _rest_error(400, REST_NO_INST, "Instrument ID does not exist.")
        return _ok(codec.encode_instruments(instruments))

    async def books(self, request: web.Request) -> web.Response:
        refused = self._rate(request, self.opts.rest_books_per_2s)
        if refused is not None:
            return refused
        inst_id = request.query.get("instId", "")
        if not inst_id:
            return _rest_error(400, REST_EMPTY, "Parameter instId can not be empty.")
        raw = request.query.get("sz", "1")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or int(raw) < 1:
            return _rest_error(400, REST_PARAM, f"Parameter sz error: {clip(raw, 20)!r}")
        sz = min(int(raw), limits.REST_BOOKS_MAX_DEPTH)
        market = self.gw.hub.markets.get(inst_id)
        if market is None:
            return _rest_error(400, REST_NO_INST, "Instrument ID does not exist.")
        inst = market.instrument
        bids, asks = market.history.book_at().to_lists(sz)
        snap = BookSnapshot(
            inst_id,
            None,
            levels(inst, bids),
            levels(inst, asks),
            ts_ns=time.time_ns(),
        )
        return _ok(codec.encode_rest_books(snap))


def _ok(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def _rest_error(status: int, code: str, msg: str) -> web.Response:
    return web.Response(
        body=codec.encode_rest_error(code, msg), status=status, content_type="application/json"
    )
