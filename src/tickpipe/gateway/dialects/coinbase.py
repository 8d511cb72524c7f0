"""``tickpipe gateway --dialect coinbase``: the simulated markets as Coinbase Advanced Trade
public market data.

Everything on the stream is encoded with :mod:`tickpipe.venues.coinbase.codec` (the codec the
client decodes with); documented limits come from ``venues.coinbase.limits``.

Symbols: ``BASE-QUOTE`` unchanged (``BTC-USD``), a bare symbol gets ``-USD`` (``AAPL`` ->
``AAPL-USD``: Coinbase product ids always have a quote); grids unchanged. The hub runs under
these names (``orderbook:BTC-USD``).

Sequencing: every message of a connection carries ``sequence_num``, from 0 and contiguous
across every channel of that connection (numbered when queued, so a message lost to a fault or
a stall is a skip the client sees). Books: the steps of each ``book_interval_ms`` (100) are
merged into one ``l2_data`` message with one ``update`` event; a ``level2`` subscribe is
answered by a ``subscriptions`` message, then a ``snapshot`` event of the whole book at the last
update produced (so the next update follows it). Coinbase has no per-book id and no checksum:
:meth:`CoinbaseDialect.update_id_at` tells which hub update id (``GET /admin/book/SYM?seq=N``)
an ``l2_data`` message of a connection brought the book to.

Served: WebSocket at the root (``{"type": "subscribe"|"unsubscribe", "channel", "product_ids"}``,
one channel a message, answered by one ``subscriptions`` message listing the connection's
subscriptions, or ``{"type": "error", "message"}`` with nothing carried out); channels
``level2`` (``l2_data``), ``market_trades`` (a ``snapshot`` of up to 50 recent trades, oldest
first, then one ``update`` per print), ``ticker`` (a ``snapshot``, then one ``update`` per
``book_interval_ms`` when the best bid/ask or the last price changed), ``heartbeats`` (one a
second, ``heartbeat_counter`` from 1). Limits: ``max_messages_per_s`` (8) client messages per
IP in any second (more: error, not carried out), ``max_connects_per_s`` (8) per IP (more: HTTP
429), a connection that sends no subscribe within ``subscribe_deadline_s`` (5) is closed, one
not subscribed to ``heartbeats`` that is sent nothing for ``idle_close_s`` (60) is closed. REST
``/api/v3/brokerage/market/products`` (``rest_requests_per_s``, 10, per IP; more: 429).

Faults: ``drop_delta`` (a book message never sent: its ``sequence_num`` is skipped),
``duplicate_delta``, ``reorder_delta`` (held back and sent after the connection's next
message), ``malformed_frame`` on ``l2_data`` messages; ``disconnect``, ``stall``, ``stop_pings``
(no heartbeats), ``silence_channel``. ``bad_checksum`` (no checksum) and ``snapshot_error`` /
``stale_snapshot`` (books seed in band) do not apply and are refused at trigger.

Codec gaps filled here (``venues/coinbase`` has no encoder for them): the products REST body and
the REST error body.

Orders (issue 17): Advanced Trade's private REST API, each request's JWT verified with the
public key of the gateway key it names: :mod:`.coinbase_orders` (routes, checks, faults). Knobs:
``private_requests_per_s`` (30), ``jwt_leeway_s`` (1.0). Coinbase has no dead man's switch.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import WSMsgType, web

from tickpipe.errors import ConfigError, FrameError
from tickpipe.gateway.dialects.base import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY,
    BookWindow,
    DialectBase,
    DialectConnection,
    SlidingCount,
    changed_levels,
    levels,
    parse_options,
    rename_markets,
    trade_event,
)
from tickpipe.gateway.dialects.coinbase_orders import CoinbaseOrderDesk
from tickpipe.gateway.guard import clip
from tickpipe.gateway.logs import log_event
from tickpipe.gateway.markets import MarketSpec
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, TickerEvent, TradeEvent
from tickpipe.venues.coinbase import codec, endpoints, limits
from tickpipe.venues.coinbase.codec import SubscribeRequest
from tickpipe.venues.coinbase.orders import PRIVATE_REQUESTS_PER_S

if TYPE_CHECKING:
    from tickpipe.gateway.hub import Market
    from tickpipe.gateway.server import Gateway
    from tickpipe.gateway.simulator import SimTrade

KINDS = ("orderbook", "trades", "ticker")
CHANNEL_KIND = {v: k for k, v in endpoints.VENUE.channel_topics.items()}  # level2 -> orderbook
HEARTBEATS = endpoints.HEARTBEATS_CHANNEL
WS_PATH = "/"
PRODUCTS_PATH = endpoints.VENUE.instruments_path
RECENT_TRADES = 50  # trades in a market_trades snapshot
BOOK_IDS_KEPT = 20_000  # sequence_num -> hub update id entries kept per connection
CONNECTIONS_KEPT = 8  # connections (ended ones too) whose book ids update_id_at can tell
_SEQ0 = b'"sequence_num":0,'


@dataclass(frozen=True, slots=True)
class CoinbaseOptions:
    """Knobs of the coinbase dialect (``--dialect-option NAME=VALUE``); defaults are Coinbase's
    documented figures (``venues.coinbase.limits``) where it documents one. docs/dialects.md.

    - ``heartbeat_interval_s`` (1.0): the ``heartbeats`` period (one timer a connection).
    - ``book_interval_ms`` (100): ``l2_data`` batching period (updates merged; not a documented
      figure), also the ``ticker`` period.
    - ``max_messages_per_s`` (8): client messages an IP may send in any one second; more are
      answered with an error and not carried out (a deque of times per IP).
    - ``max_connects_per_s`` (8): WebSocket connections an IP may open in any second; more
      are refused with HTTP 429.
    - ``subscribe_deadline_s`` (5.0): a connection with no subscribe message by then is closed.
    - ``idle_close_s`` (60.0): a connection not subscribed to ``heartbeats`` that was sent
      nothing this long is closed (Coinbase closes channels after 60-90 s without updates).
    - ``rest_requests_per_s`` (10): public REST requests an IP may send in any second; more:
      HTTP 429 (products, server time).
    - ``private_requests_per_s`` (30): signed (order) requests one API key may send in any
      second (Coinbase's documented per-user limit); more: HTTP 429 ``RATE_LIMIT_EXCEEDED``.
    - ``jwt_leeway_s`` (1.0): how far a JWT's ``nbf``/``exp`` may be off the gateway clock
      (not a documented figure: Coinbase documents only the 2-minute lifetime).
    """

    heartbeat_interval_s: float = limits.HEARTBEAT_INTERVAL_S
    book_interval_ms: int = 100
    max_messages_per_s: int = limits.UNAUTHENTICATED_MESSAGES_PER_S_PER_IP
    max_connects_per_s: int = limits.CONNECTIONS_PER_S_PER_IP
    subscribe_deadline_s: float = limits.SUBSCRIBE_DEADLINE_S
    idle_close_s: float = limits.CHANNEL_IDLE_CLOSE_S
    rest_requests_per_s: int = limits.REST_PUBLIC_REQUESTS_PER_S
    private_requests_per_s: int = PRIVATE_REQUESTS_PER_S
    jwt_leeway_s: float = 1.0


def coinbase_symbol(symbol: str) -> str:
    """``BTC-USD`` -> ``BTC-USD``, ``AAPL`` -> ``AAPL-USD``."""
    return (symbol if "-" in symbol else f"{symbol}-USD").upper()


def coinbase_markets(markets: tuple[MarketSpec, ...]) -> tuple[MarketSpec, ...]:
    """The markets under their Coinbase product ids (ConfigError if two map to one name)."""
    return rename_markets(
        markets,
        coinbase_symbol,
        lambda name: name.isascii() and name.replace("-", "").isalnum() and "-" in name,
        "Coinbase product id (BASE-QUOTE: letters, digits)",
    )


def _template(frame: bytes) -> tuple[bytes, bytes]:
    """A message the codec encoded with ``sequence_num`` 0, split where each connection's own
    number goes (the envelope's ``sequence_num`` comes before ``events``)."""
    pre, sep, post = frame.partition(_SEQ0)
    assert sep, "the codec's envelope changed"
    return pre + b'"sequence_num":', b"," + post


class _Window(BookWindow):
    """One book's merged changes, the hub id of its last update, the last trade price and
    recent trades (for the ``market_trades`` snapshot)."""

    __slots__ = ("last_px", "prev", "recent")

    def __init__(self, prev: int) -> None:
        super().__init__(prev)
        self.prev = prev  # hub update id of the last update produced (a new snapshot's)
        self.last_px: int | None = None
        self.recent: deque[TradeEvent] = deque(maxlen=RECENT_TRADES)


class CoinbaseConn(DialectConnection["CoinbaseDialect"]):
    """One WebSocket connection: its numbering, heartbeats, deadlines and reader (the queue,
    writer, stall and close are :class:`DialectConnection`'s)."""

    def __init__(self, d: CoinbaseDialect, request: web.Request) -> None:
        super().__init__(d, request, secrets.token_hex(4), d.gw.config.max_frame_bytes)
        self.next_seq = 0
        self.held: bytes | None = None  # a message held back by reorder_delta
        self.book_ids: OrderedDict[int, tuple[str, int]] = OrderedDict()
        self.heartbeat_counter = 0
        self.heartbeats_stopped_until = 0.0
        self.subscribed_once = False
        self.refused = 0

    def hold(self, fault: str, until: float) -> None:
        if fault == "stop_pings":
            self.heartbeats_stopped_until = until
        else:
            super().hold(fault, until)

    # -- outbound: numbered here ------------------------------------------------------------
    def send(
        self,
        tpl: tuple[bytes, bytes],
        fault: str | None = None,
        book: tuple[str, int] | None = None,
    ) -> None:
        """Number one message (the connection's next ``sequence_num``) and queue it with
        ``fault`` applied; ``book``: (symbol, hub update id) the message brings that book to."""
        if self.closing:
            return
        n = self.next_seq
        self.next_seq = n + 1
        if book is not None:
            ids = self.book_ids
            ids[n] = book
            if len(ids) > BOOK_IDS_KEPT:
                ids.popitem(last=False)
        data = tpl[0] + str(n).encode() + tpl[1]
        held, self.held = self.held, None
        if fault == "drop_delta":
            pass  # the number is spent: the client sees a skip
        elif fault == "duplicate_delta":
            self.enqueue(data)
            self.enqueue(data)
        elif fault == "reorder_delta" and held is None:
            self.held = data
        elif fault == "malformed_frame":
            self.enqueue(data[: len(data) // 2])
        else:
            self.enqueue(data)
        if held is not None:
            self.enqueue(held)

    def answer(self, frame: bytes) -> None:
        """A control message encoded with ``sequence_num`` 0 (numbered here)."""
        self.send(_template(frame))

    def error(self, message: str) -> None:
        """Coinbase's error answer (it carries no ``sequence_num``)."""
        self.refused += 1
        self.enqueue(codec.encode_error(message))

    # -- background -------------------------------------------------------------------------
    async def _heartbeats(self) -> None:
        period = self.d.opts.heartbeat_interval_s
        loop = asyncio.get_running_loop()
        next_at = loop.time() + period
        while not self.closing:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + period, loop.time())
            if HEARTBEATS not in self.subscribed:
                continue
            if (
                self.heartbeats_stopped_until > time.monotonic()
                or self.d.faults.settings.stop_pings
            ):
                continue
            self.heartbeat_counter += 1
            self.send(
                _template(codec.encode_heartbeat(0, self.heartbeat_counter, time.time_ns())),
            )

    async def _deadlines(self) -> None:
        opts = self.d.opts
        opened = time.monotonic()
        while not self.closing:
            now = time.monotonic()
            if not self.subscribed_once:
                left = opened + opts.subscribe_deadline_s - now
                if left <= 0:
                    self.kill(
                        CLOSE_POLICY,
                        f"no subscribe message within {opts.subscribe_deadline_s:g}s",
                        reason="subscribe_deadline",
                    )
                    return
            elif HEARTBEATS in self.subscribed:
                left = opts.idle_close_s
            else:
                left = self.last_traffic + opts.idle_close_s - now
                if left <= 0:
                    self.kill(
                        CLOSE_GOING_AWAY,
                        f"no updates for {opts.idle_close_s:g}s (subscribe to heartbeats)",
                        reason="idle_close",
                    )
                    return
            await asyncio.sleep(min(max(left, 0.01), 1.0))

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        return [self._heartbeats(), self._deadlines()]

    async def run(self) -> web.WebSocketResponse:
        return await self._serve()

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
                self.error("binary frames are not read: send JSON text")
            else:
                break

    # -- requests ---------------------------------------------------------------------------
    def _on_message(self, text: str) -> None:
        d = self.d
        if not d.messages.admit(self.peer, d.opts.max_messages_per_s):
            d.refused["messages"] += 1
            log_event("rate_limited", level=logging.WARNING, dialect="coinbase", ip=self.peer)
            self.error(
                f"rate limit exceeded: more than {d.opts.max_messages_per_s} messages a second"
            )
            return
        try:
            req = codec.decode_request(text)
        except FrameError as exc:
            self.error(f"failed to parse the request: {clip(exc.reason, 200)}")
            return
        self.subscribed_once = True
        subscribe = isinstance(req, SubscribeRequest)
        if req.channel == HEARTBEATS:
            keys = [HEARTBEATS]
        else:
            kind = CHANNEL_KIND.get(req.channel)
            if kind is None:
                self.error(
                    f"Failed to subscribe: unsupported channel {clip(req.channel, 40)!r} "
                    f"(served: {', '.join([*endpoints.VENUE.channel_topics.values(), HEARTBEATS])})"
                )
                return
            if not req.product_ids:
                self.error(f"Failed to subscribe: channel {req.channel} needs product_ids")
                return
            keys = [f"{kind}:{p}" for p in dict.fromkeys(req.product_ids)]
            for key, pid in zip(keys, dict.fromkeys(req.product_ids), strict=True):
                if key not in d.subs:
                    self.error(f"Failed to subscribe: unknown product_id {clip(pid, 40)!r}")
                    return
        for key in keys:
            if subscribe:
                d.subscribe(key, self)
            else:
                d.unsubscribe(key, self)
        self.answer(codec.encode_subscriptions(0, self._listing(), time.time_ns()))
        if subscribe:
            for key in keys:
                d.initial(key, self)

    def _listing(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for key in self.subscribed:
            if key == HEARTBEATS:
                out.setdefault(HEARTBEATS, [])
                continue
            kind, _, sym = key.partition(":")
            out.setdefault(endpoints.VENUE.channel_topics[kind], []).append(sym)
        return out


class CoinbaseDialect(DialectBase[CoinbaseConn]):
    """The coinbase dialect of one gateway; see the module docstring."""

    name = "coinbase"
    CONNECTION_FAULTS = ("disconnect", "stall", "stop_pings")

    def __init__(self, gw: Gateway) -> None:
        super().__init__(gw)
        self.opts = parse_options(CoinbaseOptions, gw.config.dialect_options, "--dialect coinbase")
        self.windows: dict[str, _Window] = {}
        for sym, m in gw.hub.markets.items():
            self.windows[sym] = _Window(m.history.seq)
            for kind in KINDS:
                self.subs[f"{kind}:{sym}"] = {}
        self.subs[HEARTBEATS] = {}
        self.connects = SlidingCount(1.0)
        self.messages = SlidingCount(1.0)
        self.rest_calls = SlidingCount(1.0)
        self.recent_conns: deque[CoinbaseConn] = deque(maxlen=CONNECTIONS_KEPT)
        self.updates = 0
        self.snapshots = 0
        self.refused: dict[str, int] = {"connect": 0, "messages": 0, "rest": 0}
        self.orders = CoinbaseOrderDesk(self)
        if self.orders.unusable_keys:
            log_event(
                "coinbase_keys",
                dialect="coinbase",
                verifying=sorted(self.orders.keys),
                not_ec_keys=sorted(self.orders.unusable_keys),
                note="keys whose secret is not an EC P-256 PEM cannot sign JWTs here",
            )

    # -- gateway side -----------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(WS_PATH, self._ws),
            web.get(PRODUCTS_PATH, self.products),
            *self.orders.routes(),
        ]

    def trigger(self, fault: str, params: dict[str, Any]) -> dict[str, Any] | None:
        if fault == "bad_checksum":
            raise ConfigError(
                "bad_checksum does not apply to the coinbase dialect: Coinbase books carry no "
                "checksum"
            )
        if fault in ("snapshot_error", "stale_snapshot"):
            raise ConfigError(
                f"{fault} does not apply to the coinbase dialect: Coinbase books are seeded in "
                "band (re-subscribe level2 to get a fresh snapshot)"
            )
        if fault not in self.CONNECTION_FAULTS:
            return None
        return self.connection_fault(fault, params)

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "options": {k: getattr(self.opts, k) for k in CoinbaseOptions.__dataclass_fields__},
            "connections": [
                {
                    "session": c.id,
                    "peer": c.peer,
                    "channels": list(c.subscribed),
                    "sequence_num": c.next_seq,
                    "heartbeat_counter": c.heartbeat_counter,
                    "refused": c.refused,
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

    def update_id_at(self, sequence_num: int, session: str | None = None) -> tuple[str, int]:
        """(product id, hub update id) of the book after the ``l2_data`` message numbered
        ``sequence_num`` on connection ``session`` (None: the newest connection; the last
        ``CONNECTIONS_KEPT`` are remembered, ended ones too). KeyError when not known."""
        for c in reversed(self.recent_conns):
            if session is None or c.id == session:
                return c.book_ids[sequence_num]
        raise KeyError(f"no connection {session!r}")

    # -- subscriptions ----------------------------------------------------------------------
    def initial(self, key: str, c: CoinbaseConn) -> None:
        """What follows a subscribe's answer: a book's snapshot, the recent trades, a ticker."""
        kind, _, sym = key.partition(":")
        if kind == "orderbook":
            seq = self.windows[sym].prev
            c.send(_template(self._snapshot(sym, seq)), book=(sym, seq))
        elif kind == "trades":
            recent = list(self.windows[sym].recent)
            c.send(_template(codec.encode_trades(recent, 0, snapshot=True, ts_ns=time.time_ns())))
        elif kind == "ticker":
            event = self._ticker(self.gw.hub.markets[sym], self.windows[sym])
            if event is not None:
                c.send(_template(codec.encode_ticker(event, 0, snapshot=True)))

    def _snapshot(self, sym: str, seq: int) -> bytes:
        market = self.gw.hub.markets[sym]
        book = market.history.book_at(seq)
        inst = market.instrument
        bids, asks = book.to_lists()
        self.snapshots += 1
        snap = BookSnapshot(sym, None, levels(inst, bids), levels(inst, asks), None, time.time_ns())
        return codec.encode_book(snap, 0)

    def _fan(self, key: str, tpl: tuple[bytes, bytes], fault: str | None = None) -> None:
        for c in list(self.subs[key]):
            c.send(tpl, fault)

    # -- the hub's changes ------------------------------------------------------------------
    def on_book(
        self, market: Market, update_id: int, bids: dict[int, int], asks: dict[int, int]
    ) -> None:
        self.windows[market.instrument.symbol].merge(update_id, bids, asks)

    def on_trade(self, market: Market, trade_id: int, trade: SimTrade) -> None:
        sym = market.instrument.symbol
        w = self.windows[sym]
        w.last_px = trade.price
        event = trade_event(market, trade_id, trade)
        w.recent.append(event)
        key = f"trades:{sym}"
        if not self.subs[key]:
            return
        fault = self.faults.frame_fault("trades", key, sym)
        if fault is not None:
            self.faults.record(fault, channel=key, trade_id=trade_id)
        self._fan(key, _template(codec.encode_trades([event], 0, ts_ns=event.ts_ns)), fault)

    def flush_period_s(self) -> float:
        return self.opts.book_interval_ms / 1000

    def flush(self) -> None:
        """One ``l2_data`` update per book that changed since the last flush (with faults), and
        one ``ticker`` message per product whose best bid/ask or last price changed."""
        markets = self.gw.hub.markets
        for sym, w in self.windows.items():
            market = markets[sym]
            if w.first is not None:
                last, bids, asks = w.last, w.bids, w.asks
                w.first, w.prev, w.bids, w.asks = None, last, {}, {}
                if self.subs[f"orderbook:{sym}"]:
                    self._send_update(market, last, bids, asks)
            self._send_ticker(market, w)

    def _send_update(
        self, market: Market, last: int, bids: dict[int, int], asks: dict[int, int]
    ) -> None:
        sym = market.instrument.symbol
        key = f"orderbook:{sym}"
        fault = self.faults.frame_fault("orderbook", key, sym)
        if fault == "bad_checksum":
            fault = None  # refused at trigger, ignored as a setting
        now = time.time_ns()
        delta = BookDelta(sym, *changed_levels(market.instrument, bids, asks), ts_ns=now)
        tpl = _template(codec.encode_book(delta, 0, event_time_ns=now))
        self.updates += 1
        if fault is not None:
            self.faults.record(fault, channel=key, update_id=last)
        for c in list(self.subs[key]):
            c.send(tpl, fault, book=(sym, last))

    def _ticker(self, market: Market, w: _Window) -> TickerEvent | None:
        book = market.sim.book
        bb, ba = book.best_bid(), book.best_ask()
        if bb is None or ba is None:
            return None
        w.top = (*bb, *ba, w.last_px)
        inst = market.instrument
        fp, fs = inst.format_price, inst.format_size
        last = fp(w.last_px) if w.last_px is not None else None
        return TickerEvent(
            inst.symbol, fp(bb[0]), fs(bb[1]), fp(ba[0]), fs(ba[1]), last, None, time.time_ns()
        )

    def _send_ticker(self, market: Market, w: _Window) -> None:
        key = f"ticker:{market.instrument.symbol}"
        if not self.subs[key]:
            w.top = None
            return
        if key in self.faults.settings.silence_channel:
            return
        top = w.top
        event = self._ticker(market, w)
        if event is None or w.top == top:
            return
        self._fan(key, _template(codec.encode_ticker(event, 0)))

    # -- endpoints --------------------------------------------------------------------------
    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ip = request.remote or "?"
        if not self.connects.admit(ip, self.opts.max_connects_per_s):
            self.refused["connect"] += 1
            log_event("rate_limited", level=logging.WARNING, dialect="coinbase", ip=ip, path="/")
            return _rest_error(
                429,
                "RATE_LIMIT_EXCEEDED",
                f"more than {self.opts.max_connects_per_s} connections a second from one IP",
            )
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _rest_error(400, "INVALID_ARGUMENT", "a WebSocket upgrade is expected here")
        c = CoinbaseConn(self, request)
        self.recent_conns.append(c)
        return await c.run()

    async def products(self, request: web.Request) -> web.Response:
        ip = request.remote or "?"
        if not self.rest_calls.admit(ip, self.opts.rest_requests_per_s):
            self.refused["rest"] += 1
            log_event(
                "rate_limited", level=logging.WARNING, dialect="coinbase", ip=ip, path=PRODUCTS_PATH
            )
            return _rest_error(429, "RATE_LIMIT_EXCEEDED", "Too many requests")
        wanted = request.query.getall("product_ids", [])
        items = []
        for m in self.gw.hub.markets.values():
            inst = m.instrument
            if wanted and inst.symbol not in wanted:
                continue
            base, _, quote = inst.symbol.partition("-")
            items.append(
                {
                    "product_id": inst.symbol,
                    "price_increment": inst.tick_size,
                    "quote_increment": inst.tick_size,
                    "base_increment": inst.lot_size,
                    "base_currency_id": base,
                    "quote_currency_id": quote,
                    "status": "online",
                    "product_type": "SPOT",
                }
            )
        body = _json.encode({"products": items, "num_products": len(items)})
        return web.Response(body=body, content_type="application/json")


_json = msgspec.json.Encoder()


def _rest_error(status: int, error: str, message: str) -> web.Response:
    body = _json.encode({"error": error, "error_details": message, "message": message})
    return web.Response(body=body, status=status, content_type="application/json")
