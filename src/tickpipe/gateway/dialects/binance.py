"""``tickpipe gateway --dialect binance``: the simulated markets as Binance spot serves them.

Everything on the wire is encoded with :class:`tickpipe.venues.binance.codec.Codec` (``SPOT``),
the codec the client decodes with; documented limits come from ``venues.binance.limits``.

Symbols: ``BASE-QUOTE`` -> ``BASEQUOTE`` with quote ``USD`` written ``USDT`` (``BTC-USD`` ->
``BTCUSDT``, ``USD-JPY`` -> ``USDJPY``, ``AAPL`` -> ``AAPL``); grids unchanged. The hub runs
under these names, so the admin API, fault scopes and ``silence_channel`` use
``orderbook:BTCUSDT`` (the channel ``tickpipe watch --venue binance`` subscribes to).

Update ids: one per simulator step that changed a book (the hub's ``orderbook:SYMBOL`` seq), so
``GET /admin/book/BTCUSDT?seq=N`` is the true book at Binance update id ``N``. The steps of each
``depth_interval_ms`` (100) are merged into one ``depthUpdate`` with ``U`` = the first id and
``u`` = the last; ids are contiguous across events (``U == previous u + 1``).

Served:

- WebSocket ``/ws`` (raw events), ``/ws/<stream>``, ``/stream?streams=a/b`` (combined wrapper
  ``{"stream","data"}``); commands ``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``,
  ``SET_PROPERTY``/``GET_PROPERTY`` (``combined``) with ``id``, answered ``{"result","id"}`` or
  ``{"code","msg","id"}`` (codes 0-3 as documented); streams ``<symbol>@depth@100ms``,
  ``<symbol>@trade``, ``<symbol>@bookTicker`` (real-time: sent when the best bid or ask changes,
  ``u`` = the book's update id).
- REST ``/api/v3/depth?symbol=&limit=`` (default 100, more than 5000 -> 5000), ``/api/v3/
  exchangeInfo``, ``/api/v3/ping``, ``/api/v3/time``, each charged its documented weight per
  IP; over the budget ``429`` + ``Retry-After`` (seconds to the window's end), and ``418`` +
  ``Retry-After`` (the ban) once an IP keeps going after ``ban_after_429s`` 429s in a window.
- Server pings every ``ping_interval_s`` (payload: a counter); a connection that returns no
  pong carrying an outstanding ping's payload within ``pong_timeout_s`` is closed (1008).
  More than ``max_incoming_per_s`` incoming messages (pings, pongs, commands) in one second:
  closed (1008). At most ``max_streams_per_connection`` streams. Closed (1001) at
  ``max_connection_age_s``.

Signed orders (issue 17; :mod:`.binance_orders`): ``POST/GET/DELETE /api/v3/order``,
``GET/DELETE /api/v3/openOrders`` with Binance's HMAC-SHA256 signature, key header and
``recvWindow`` checks (verified with ``venues.binance.auth``, the client's signing code), kept
in ``gw.desk`` under the API key (``gw.keys``); order faults ``order_5xx``, ``order_timeout``,
``order_rate_limit``, ``cancel_fails_once``; ``orders_per_10s`` new orders a key. Spot has no
dead man's switch.

Faults (same names as VTS/1): ``drop_delta``, ``duplicate_delta``, ``reorder_delta``,
``malformed_frame`` on depth events; ``stale_snapshot``, ``snapshot_error`` (503, code -1001),
``snapshot_rate_limit`` (429), ``snapshot_delay_ms`` on ``/api/v3/depth``; ``disconnect``,
``stall``, ``stop_pings``, ``silence_channel``. ``bad_checksum`` does not apply (Binance books
carry no checksum) and is refused. Each fired fault is logged with its channel and update ids.

USD-M futures (``--dialect binance-usdm``) is this dialect with other class attributes
(:mod:`.binance_usdm`).

Codec gaps filled here (``venues/binance`` has no encoder for them): the ``/api/v3/time``
body ``{"serverTime": ms}`` and the ``/api/v3/ping`` body ``{}``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from aiohttp import WSMsgType, web

from tickpipe.errors import ConfigError, FrameError
from tickpipe.gateway.dialects.base import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY,
    BookWindow,
    DialectBase,
    DialectConnection,
    IncomingRate,
    SlidingCount,
    apply_frame_fault,
    changed_levels,
    levels,
    parse_options,
    rename_markets,
    trade_event,
)
from tickpipe.gateway.dialects.binance_orders import BinanceOrderEndpoints
from tickpipe.gateway.guard import clip
from tickpipe.gateway.logs import log_event
from tickpipe.gateway.markets import MarketSpec
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, TickerEvent
from tickpipe.venues.binance.codec import Codec
from tickpipe.venues.binance.endpoints import SPOT, VenueSpec
from tickpipe.venues.binance.limits import (
    BAN_MIN_S,
    RETRY_AFTER_HEADER,
    SPOT_LIMITS,
    STATUS_BANNED,
    STATUS_RATE_LIMITED,
    USED_WEIGHT_HEADER,
    Limits,
)
from tickpipe.venues.binance.orders import SPOT_ORDERS, OrderSpec

if TYPE_CHECKING:
    from tickpipe.gateway.hub import Market
    from tickpipe.gateway.server import Gateway
    from tickpipe.gateway.simulator import SimTrade

PING_WEIGHT = TIME_WEIGHT = 1
DEFAULT_DEPTH_LIMIT = 100  # rest-api.md /api/v3/depth: "Default 100; max 5000"
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_json = msgspec.json.Decoder()
_encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class BinanceOptions:
    """Knobs of the binance dialect (``--dialect-option NAME=VALUE``); defaults are Binance
    spot's documented limits (``venues.binance.limits.SPOT_LIMITS``). docs/dialects.md.

    - ``ping_interval_s`` (20.0): server WebSocket ping interval.
    - ``pong_timeout_s`` (60.0): an unanswered ping older than this closes the connection.
    - ``max_connection_age_s`` (86400.0): every connection is closed (1001) at this age.
    - ``max_incoming_per_s`` (5): incoming messages (pings, pongs, commands) allowed in any one
      second; one more closes the connection.
    - ``max_streams_per_connection`` (1024): streams one connection may carry.
    - ``weight_per_window`` (6000) request weight an IP may use per ``weight_window_s`` (60.0)
      window (windows aligned on the wall clock, as Binance's minute); memory: one small entry
      per IP seen in the current window.
    - ``ban_after_429s`` (3): 429s an IP may get in one window; its next over-budget request is
      a ``418`` ban of ``ban_s`` (120.0, Binance's documented minimum) seconds.
    - ``depth_interval_ms`` (100): the diff stream's batching period (``@depth@100ms``); costs
      one merge dict per symbol, bounded by the levels changed in one period.
    - ``orders_per_10s`` (50, spot's documented unfilled-order limit): new orders one API key
      may place in any 10 s; one more is a 429 ``-1015`` with ``Retry-After``. Memory: one
      timestamp per order in the window per key.
    """

    ping_interval_s: float = SPOT_LIMITS.server_ping_interval_s
    pong_timeout_s: float = SPOT_LIMITS.pong_timeout_s
    max_connection_age_s: float = SPOT_LIMITS.ws_connection_lifetime_s
    max_incoming_per_s: int = SPOT_LIMITS.ws_incoming_messages_per_s
    max_streams_per_connection: int = SPOT_LIMITS.ws_streams_per_connection
    weight_per_window: int = SPOT_LIMITS.request_weight_per_minute
    weight_window_s: float = 60.0
    ban_after_429s: int = 3
    ban_s: float = BAN_MIN_S
    depth_interval_ms: int = 100
    orders_per_10s: int = SPOT_ORDERS.orders_per_10s


def binance_symbol(symbol: str) -> str:
    """``BTC-USD`` -> ``BTCUSDT``, ``USD-JPY`` -> ``USDJPY``, ``AAPL`` -> ``AAPL``."""
    base, dash, quote = symbol.partition("-")
    if not dash:
        return symbol.upper()
    return (base + ("USDT" if quote == "USD" else quote)).upper()


def binance_markets(markets: tuple[MarketSpec, ...]) -> tuple[MarketSpec, ...]:
    """The markets under their Binance symbols (ConfigError if two map to one name)."""
    return rename_markets(
        markets,
        binance_symbol,
        lambda name: name.isascii() and name.isalnum(),
        "Binance symbol (letters and digits)",
    )


_BAD_LIMIT = "-1130 Data sent for parameter 'limit' is not valid."


def _error_body(code: int, msg: str) -> bytes:
    return Codec.encode_error(code, msg)


class WeightBook:
    """Request weight per IP in wall-clock windows, 429 strikes and 418 bans."""

    def __init__(self, opts: BinanceOptions) -> None:
        self.opts = opts
        self.used: dict[str, tuple[int, int]] = {}  # ip -> (window index, weight used)
        self.strikes: dict[str, tuple[int, int]] = {}  # ip -> (window index, 429s)
        self.banned_until: dict[str, float] = {}
        self.refused = {STATUS_RATE_LIMITED: 0, STATUS_BANNED: 0}

    def used_now(self, ip: str, now: float) -> int:
        idx = int(now // self.opts.weight_window_s)
        w, used = self.used.get(ip, (idx, 0))
        return used if w == idx else 0

    def charge(self, ip: str, weight: int, now: float | None = None) -> tuple[int, int]:
        """(0, 0) when admitted (and counted), else (status, Retry-After seconds)."""
        now = time.time() if now is None else now
        opts = self.opts
        until = self.banned_until.get(ip, 0.0)
        if until > now:
            self.refused[STATUS_BANNED] += 1
            return STATUS_BANNED, max(1, math.ceil(until - now))
        idx = int(now // opts.weight_window_s)
        used = self.used_now(ip, now)
        if used + weight > opts.weight_per_window:
            w, n = self.strikes.get(ip, (idx, 0))
            n = n + 1 if w == idx else 1
            self.strikes[ip] = (idx, n)
            if n > opts.ban_after_429s:
                self.banned_until[ip] = now + opts.ban_s
                self.refused[STATUS_BANNED] += 1
                log_event("ip_banned", level=logging.WARNING, ip=ip, ban_s=opts.ban_s, strikes=n)
                return STATUS_BANNED, max(1, math.ceil(opts.ban_s))
            self.refused[STATUS_RATE_LIMITED] += 1
            end = (idx + 1) * opts.weight_window_s
            return STATUS_RATE_LIMITED, max(1, math.ceil(end - now))
        self.used[ip] = (idx, used + weight)
        if len(self.used) > 10_000:  # bound memory: forget IPs of past windows
            self.used = {k: v for k, v in self.used.items() if v[0] == idx}
            self.strikes = {k: v for k, v in self.strikes.items() if v[0] == idx}
            self.banned_until = {k: v for k, v in self.banned_until.items() if v > now}
        return 0, 0


class BinanceConn(DialectConnection["BinanceDialect"]):
    """One WebSocket connection: its streams, pinger and command reader (the queue, writer,
    stall and close are :class:`DialectConnection`'s)."""

    def __init__(self, d: BinanceDialect, request: web.Request, combined: bool) -> None:
        super().__init__(d, request, secrets.token_hex(6), d.gw.config.max_frame_bytes)
        self.combined = combined
        self.streams = self.subscribed
        self.opened = time.monotonic()
        self.pings_stopped_until = 0.0
        self.pings: dict[bytes, float] = {}  # outstanding ping payload -> sent at (monotonic)
        self.ping_count = 0
        self.rate = IncomingRate(d.opts.max_incoming_per_s)
        self._initial: list[str] = []
        self._age: asyncio.TimerHandle | None = None

    def hold(self, fault: str, until: float) -> None:
        if fault == "stop_pings":
            self.pings_stopped_until = until
        else:
            super().hold(fault, until)

    async def _pinger(self) -> None:
        opts = self.d.opts
        next_ping = time.monotonic() + opts.ping_interval_s
        paused = False
        while not self.closing:
            now = time.monotonic()
            deadline = min(self.pings.values()) + opts.pong_timeout_s if self.pings else math.inf
            await asyncio.sleep(max(0.0, min(next_ping, deadline) - now))
            now = time.monotonic()
            if (
                self.stalled()
                or self.pings_stopped_until > now
                or self.d.faults.settings.stop_pings
            ):
                paused = True
                next_ping = now + opts.ping_interval_s
                continue
            if paused:  # pings resume: what was outstanding is forgiven
                paused = False
                self.pings.clear()
            if self.pings and now - min(self.pings.values()) >= opts.pong_timeout_s:
                log_event(
                    "pong_timeout",
                    level=logging.WARNING,
                    session=self.id,
                    dialect=self.d.name,
                    timeout_s=opts.pong_timeout_s,
                )
                self.kill(
                    CLOSE_POLICY, f"no pong within {opts.pong_timeout_s:g} s", reason="pong_timeout"
                )
                return
            if now >= next_ping:
                self.ping_count += 1
                payload = str(self.ping_count).encode()
                self.pings[payload] = now
                if len(self.pings) > 64:  # bounded: the oldest stays, it decides the deadline
                    del self.pings[next(iter(list(self.pings)[1:]))]
                next_ping = now + opts.ping_interval_s
                try:
                    await self.ws.ping(payload)
                except (ConnectionError, RuntimeError):
                    return

    # -- the connection ---------------------------------------------------------------------
    async def run(self, streams: list[str]) -> web.WebSocketResponse:
        self._initial = streams
        return await self._serve(streams=streams)

    def _opened(self) -> None:
        d = self.d
        self._age = asyncio.get_running_loop().call_later(
            d.opts.max_connection_age_s,
            lambda: self.kill(
                CLOSE_GOING_AWAY,
                f"connection max age {d.opts.max_connection_age_s:g} s reached",
                reason="max_age",
            ),
        )
        for s in self._initial:
            d.subscribe(s, self)

    def _ended(self) -> None:
        if self._age is not None:
            self._age.cancel()

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        return [self._pinger()]

    async def _read_loop(self) -> None:
        limit = self.d.opts.max_incoming_per_s
        async for msg in self.ws:
            if self.closing:
                break
            if not self.rate.admit():
                self.kill(
                    CLOSE_POLICY,
                    f"more than {limit} incoming messages in one second",
                    reason="too_many_messages",
                )
                break
            if msg.type == WSMsgType.TEXT:
                self._on_command(str(msg.data))
            elif msg.type == WSMsgType.PING:
                await self._pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                # only a pong carrying an outstanding ping's payload counts (documented:
                # unsolicited pongs "will not prevent disconnection")
                if bytes(msg.data) in self.pings:
                    self.pings.clear()
                    self.pongs += 1
            elif msg.type == WSMsgType.BINARY:
                self._reply(Codec.encode_error(3, "Invalid JSON: binary frames are not read"))
            else:
                break

    def _reply(self, data: bytes) -> None:
        self.enqueue(data)

    # -- commands ---------------------------------------------------------------------------
    def _on_command(self, text: str) -> None:
        try:
            obj = _json.decode(text)
        except (msgspec.DecodeError, RecursionError) as exc:
            self._reply(Codec.encode_error(3, f"Invalid JSON: {clip(str(exc), 200)}"))
            return
        if not isinstance(obj, dict):
            self._reply(Codec.encode_error(2, "Invalid request: a command is a JSON object"))
            return
        raw_id = obj.get("id")
        req_id = raw_id if isinstance(raw_id, int | str) and not isinstance(raw_id, bool) else None
        try:
            cmd = Codec.decode_command(text)
        except FrameError as exc:
            where = f" (field `{exc.field}`)" if exc.field else ""
            self._reply(Codec.encode_error(2, f"Invalid request: {exc.reason}{where}", req_id))
            return
        method, params, rid = cmd.method, cmd.params, cmd.id
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            bad = self._check_streams(params)
            if bad is not None:
                self._reply(Codec.encode_error(2, f"Invalid request: {bad}", rid))
                return
            names: list[str] = params
            if method == "SUBSCRIBE":
                total = len(self.streams.keys() | set(names))
                cap = self.d.opts.max_streams_per_connection
                if total > cap:
                    self._reply(
                        Codec.encode_error(
                            2,
                            f"Invalid request: {total} streams is over the {cap} a connection "
                            "may carry",
                            rid,
                        )
                    )
                    return
                for s in names:
                    self.d.subscribe(s, self)
            else:
                for s in names:
                    self.d.unsubscribe(s, self)
            self._reply(Codec.encode_ack(rid, None))
        elif method == "LIST_SUBSCRIPTIONS":
            self._reply(Codec.encode_ack(rid, list(self.streams)))
        elif method == "GET_PROPERTY":
            if params != ["combined"]:
                self._reply(Codec.encode_error(0, "Unknown property", rid))
                return
            self._reply(Codec.encode_ack(rid, self.combined))
        elif method == "SET_PROPERTY":
            if len(params) != 2 or params[0] != "combined":
                self._reply(Codec.encode_error(0, "Unknown property", rid))
                return
            if not isinstance(params[1], bool):
                self._reply(Codec.encode_error(1, "Invalid value type: expected Boolean", rid))
                return
            self.combined = params[1]
            self._reply(Codec.encode_ack(rid, None))
        else:
            variants = ", ".join(f"`{m}`" for m in METHODS)
            self._reply(
                Codec.encode_error(
                    2,
                    f"Invalid request: unknown variant `{clip(method, 40)}`, expected one of "
                    f"{variants}",
                    rid,
                )
            )

    def _check_streams(self, params: list[Any]) -> str | None:
        """Why ``params`` is not a list of known stream names, or None."""
        if not params:
            return "params must list at least one stream"
        for p in params:
            if not isinstance(p, str):
                return f"a stream name must be a string, got {clip(repr(p), 60)}"
            why = self.d.stream_problem(p)
            if why is not None:
                return why
        return None


class BinanceDialect(DialectBase[BinanceConn]):
    """The binance dialect of one gateway; see the module docstring. A Binance market other
    than spot (``binance_usdm``) subclasses it with its own class attributes: ``spec``
    (paths, stream names, continuity), ``limits`` (weights), ``options`` (knob defaults),
    ``api_prefix`` (``/api/v3``: ping and time) and ``default_depth_limit``, plus
    :meth:`depth_limit` (what the depth endpoint does with ``limit``)."""

    name = "binance"
    CONNECTION_FAULTS = ("disconnect", "stall", "stop_pings")
    spec: ClassVar[VenueSpec] = SPOT
    limits: ClassVar[Limits] = SPOT_LIMITS
    options: ClassVar[type[BinanceOptions]] = BinanceOptions
    api_prefix: ClassVar[str] = "/api/v3"
    default_depth_limit: ClassVar[int] = DEFAULT_DEPTH_LIMIT
    order_spec: ClassVar[OrderSpec] = SPOT_ORDERS

    def __init__(self, gw: Gateway) -> None:
        super().__init__(gw)
        self.opts = parse_options(self.options, gw.config.dialect_options, f"--dialect {self.name}")
        self.orders = BinanceOrderEndpoints(self)
        self.codec = Codec(self.spec)
        # update id = hub seq x id_step (1 on spot; USD-M leaves room between events)
        self.id_step = 1
        self.stream_kind: dict[str, tuple[str, str]] = {}  # stream -> (channel, symbol)
        self.windows: dict[str, BookWindow] = {}
        for sym in gw.hub.markets:
            self.windows[sym] = BookWindow()
            for kind in ("orderbook", "trades", "ticker"):
                channel = f"{kind}:{sym}"
                stream = self.spec.stream_name(channel)
                self.stream_kind[stream] = (channel, sym)
                self.subs[stream] = {}
        self.weights = WeightBook(self.opts)
        self.snapshot_times = SlidingCount(1.0)
        self.depth_events = 0

    # -- gateway side -----------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        spec = self.spec
        return [
            web.get(spec.raw_stream_path, self._ws_raw),
            web.get(spec.raw_stream_path + "/{stream}", self._ws_raw),
            web.get(spec.combined_stream_path, self._ws_combined),
            web.get(spec.snapshot_path, self.depth),
            web.get(spec.instruments_path, self.exchange_info),
            web.get(self.api_prefix + "/ping", self.ping),
            web.get(self.api_prefix + "/time", self.time),
            *self.orders.routes(),
        ]

    def trigger(self, fault: str, params: dict[str, Any]) -> dict[str, Any] | None:
        if fault == "bad_checksum":
            raise ConfigError(
                f"bad_checksum does not apply to the {self.name} dialect: Binance books carry no "
                "checksum (use drop_delta, duplicate_delta or reorder_delta)"
            )
        if fault not in self.CONNECTION_FAULTS:
            return None
        return self.connection_fault(fault, params)

    def stats(self) -> dict[str, Any]:
        now = time.time()
        return {
            "name": self.name,
            "options": {k: getattr(self.opts, k) for k in self.opts.__dataclass_fields__},
            "connections": [
                {
                    "session": c.id,
                    "peer": c.peer,
                    "streams": list(c.streams),
                    "combined": c.combined,
                    **c.stats(),
                    "pings_sent": c.ping_count,
                }
                for c in self.conns.values()
            ],
            "depth_events": self.depth_events,
            "weight_used": {ip: self.weights.used_now(ip, now) for ip in self.weights.used},
            "refused": {str(k): v for k, v in self.weights.refused.items()},
            "banned": sorted(ip for ip, t in self.weights.banned_until.items() if t > now),
            "disconnects": dict(self.disconnects),
            "orders": self.orders.stats(),
        }

    # -- subscriptions ----------------------------------------------------------------------
    def stream_problem(self, stream: str) -> str | None:
        """None for a stream this gateway serves, else why not (sent to the client)."""
        if stream in self.stream_kind:
            return None
        _, at, suffix = stream.partition("@")
        suffixes = (self.spec.depth_suffix, self.spec.trades_suffix, self.spec.ticker_suffix)
        if not at or "@" + suffix not in suffixes:
            return f"unknown stream {clip(stream, 60)!r}: served are <symbol>" + ", <symbol>".join(
                suffixes
            )
        return f"unknown symbol in stream {clip(stream, 60)!r} (lower case); symbols: " + ", ".join(
            s.lower() for s in self.windows
        )

    def _fan(self, stream: str, channel: str, data: bytes) -> None:
        wrapped: bytes | None = None
        for c in list(self.subs[stream]):
            if c.combined:
                if wrapped is None:
                    wrapped = self.codec.encode_combined(channel, data)
                c.enqueue(wrapped)
            else:
                c.enqueue(data)

    # -- the hub's changes ------------------------------------------------------------------
    def on_book(
        self, market: Market, update_id: int, bids: dict[int, int], asks: dict[int, int]
    ) -> None:
        sym = market.instrument.symbol
        w = self.windows[sym]
        w.merge(update_id, bids, asks)
        stream = sym.lower() + self.spec.ticker_suffix
        if not self.subs[stream]:
            w.top = None
            return
        channel = f"ticker:{sym}"
        if channel in self.faults.settings.silence_channel:
            return
        book = market.sim.book
        bb, ba = book.best_bid(), book.best_ask()
        if bb is None or ba is None:
            return
        top = (*bb, *ba)
        if top == w.top:
            return
        w.top = top
        inst = market.instrument
        fp, fs = inst.format_price, inst.format_size
        event = TickerEvent(sym, fp(bb[0]), fs(bb[1]), fp(ba[0]), fs(ba[1]), ts_ns=time.time_ns())
        self._fan(stream, channel, self.codec.encode_ticker(event, update_id * self.id_step))

    def on_trade(self, market: Market, trade_id: int, trade: SimTrade) -> None:
        sym = market.instrument.symbol
        stream = sym.lower() + self.spec.trades_suffix
        if not self.subs[stream]:
            return
        event = trade_event(market, trade_id, trade)
        self._fan(stream, f"trades:{sym}", self.codec.encode_trade(event))

    def flush_period_s(self) -> float:
        return self.opts.depth_interval_ms / 1000

    def flush(self) -> None:
        """One ``depthUpdate`` per symbol that changed since the last flush (with faults)."""
        markets = self.gw.hub.markets
        for sym, w in self.windows.items():
            if w.first is None:
                continue
            first, last, bids, asks = w.first, w.last, w.bids, w.asks
            w.first, w.bids, w.asks = None, {}, {}
            stream = sym.lower() + self.spec.depth_suffix
            if not self.subs[stream]:
                w.held = None
                continue
            k = self.id_step
            delta = BookDelta(
                sym,
                *changed_levels(markets[sym].instrument, bids, asks),
                last_id=last * k,
                first_id=first * k,
                # USD-M: pu = the previous event's u; windows are contiguous in hub seqs
                prev_id=(first - 1) * k if self.codec.usdm else None,
                ts_ns=time.time_ns(),
            )
            data = self.codec.encode_delta(delta)
            self.depth_events += 1
            self._send_depth(sym, stream, w, data, first * k, last * k)

    def _send_depth(
        self, sym: str, stream: str, w: BookWindow, data: bytes, first: int, last: int
    ) -> None:
        channel = f"orderbook:{sym}"
        fault = self.faults.frame_fault("orderbook", channel, sym)
        if fault == "bad_checksum":
            fault = None  # no checksum on Binance: refused at trigger, ignored as a setting
        held, w.held = w.held, None
        if fault == "reorder_delta" and held is not None:
            fault = None  # one event held back at a time
        if fault is not None:
            self.faults.record(
                fault, channel=channel, stream=stream, first_update_id=first, update_id=last
            )
        w.held = apply_frame_fault(fault, data, held, lambda b: self._fan(stream, channel, b))

    # -- WebSocket endpoints ----------------------------------------------------------------
    async def _ws_raw(self, request: web.Request) -> web.StreamResponse:
        stream = request.match_info.get("stream")
        return await self._ws(request, [stream] if stream else [], combined=False)

    async def _ws_combined(self, request: web.Request) -> web.StreamResponse:
        raw = request.query.get("streams", "")
        streams = [s for s in raw.split("/") if s]
        return await self._ws(request, streams, combined=True)

    async def _ws(
        self, request: web.Request, streams: list[str], *, combined: bool
    ) -> web.StreamResponse:
        for s in streams:
            why = self.stream_problem(s)
            if why is not None:
                return _rest_error(400, 2, f"Invalid request: {why}")
        cap = self.opts.max_streams_per_connection
        if len(set(streams)) > cap:
            return _rest_error(
                400, 2, f"Invalid request: {len(set(streams))} streams is over the {cap} allowed"
            )
        conn = BinanceConn(self, request, combined)
        return await conn.run(list(dict.fromkeys(streams)))

    # -- REST -------------------------------------------------------------------------------
    def _charge(self, request: web.Request, weight: int) -> tuple[web.Response | None, int]:
        ip = request.remote or "?"
        status, retry = self.weights.charge(ip, weight)
        used = self.weights.used_now(ip, time.time())
        if not status:
            return None, used
        log_event(
            "rate_limited" if status == STATUS_RATE_LIMITED else "banned_request",
            level=logging.WARNING,
            dialect=self.name,
            ip=ip,
            path=clip(request.path),
            status=status,
            retry_after_s=retry,
            used_weight=used,
        )
        budget, win = self.opts.weight_per_window, self.opts.weight_window_s
        if status == STATUS_RATE_LIMITED:
            msg = (
                f"Too much request weight used; current limit is {budget} request weight per "
                f"{win:g} s. Please use WebSocket Streams for live updates to avoid polling the "
                "API."
            )
        else:
            until_ms = int((time.time() + retry) * 1000)
            msg = (
                f"Way too much request weight used; IP banned until {until_ms}. Please use "
                "WebSocket Streams for live updates to avoid bans."
            )
        headers = {RETRY_AFTER_HEADER: str(retry), USED_WEIGHT_HEADER: str(used)}
        return _rest_error(status, -1003, msg, headers), used

    async def ping(self, request: web.Request) -> web.Response:
        refused, used = self._charge(request, PING_WEIGHT)
        return refused or _ok(b"{}", used)

    async def time(self, request: web.Request) -> web.Response:
        refused, used = self._charge(request, TIME_WEIGHT)
        return refused or _ok(_encode({"serverTime": time.time_ns() // 1_000_000}), used)

    async def exchange_info(self, request: web.Request) -> web.Response:
        refused, used = self._charge(request, self.limits.exchange_info_weight)
        if refused is not None:
            return refused
        instruments = [m.instrument for m in self.gw.hub.markets.values()]
        symbol = request.query.get("symbol")
        if symbol is not None:
            instruments = [i for i in instruments if i.symbol == symbol]
            if not instruments:
                return _rest_error(400, -1121, "Invalid symbol.", {USED_WEIGHT_HEADER: str(used)})
        body = self.codec.encode_exchange_info(
            instruments,
            server_time_ms=time.time_ns() // 1_000_000,
            weight_per_minute=self.opts.weight_per_window,
        )
        return _ok(body, used)

    def depth_limit(self, raw: str | None) -> tuple[int | None, int, str | None]:
        """What the depth endpoint does with its ``limit`` text (None: not sent): (levels to
        serve or None, weight charged, the error message when refused). Spot: default 100,
        digits only (-1100), at least 1 (-1130), more than 5000 served as 5000."""
        lim = self.limits
        limit = self.default_depth_limit
        if raw is not None:
            if not (raw.isascii() and raw.isdigit() and len(raw) <= 20):
                return (
                    None,
                    lim.snapshot_weight(1),
                    "-1100 Illegal characters found in parameter 'limit'; legal range is "
                    "'^[0-9]{1,20}$'.",
                )
            limit = int(raw)
        weight = lim.snapshot_weight(min(max(limit, 1), lim.max_snapshot_depth))
        if limit < 1:
            return None, weight, _BAD_LIMIT
        return min(limit, lim.max_snapshot_depth), weight, None  # documented: truncated

    async def depth(self, request: web.Request) -> web.Response:
        limit, weight, bad_limit = self.depth_limit(request.query.get("limit"))
        refused, used = self._charge(request, weight)
        if refused is not None:
            return refused
        hdr = {USED_WEIGHT_HEADER: str(used)}
        symbol = request.query.get("symbol", "")
        if not symbol:
            return _rest_error(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
                hdr,
            )
        if limit is None:
            code, _, msg = (bad_limit or _BAD_LIMIT).partition(" ")
            return _rest_error(400, int(code), msg, hdr)
        market = self.gw.hub.markets.get(symbol)
        if market is None:
            return _rest_error(400, -1121, "Invalid symbol.", hdr)
        settings = self.faults.settings
        ip = request.remote or "?"
        if settings.snapshot_rate_limit and not self.snapshot_times.admit(
            ip, settings.snapshot_rate_limit
        ):
            self.faults.record("snapshot_rate_limit", symbol=symbol, who=ip)
            return _rest_error(
                STATUS_RATE_LIMITED,
                -1003,
                f"Too many requests: more than {settings.snapshot_rate_limit} depth snapshots a "
                "second (fault snapshot_rate_limit)",
                {**hdr, RETRY_AFTER_HEADER: "1"},
            )
        history = market.history
        fault = self.faults.snapshot_fault(symbol)
        if fault == "snapshot_error":
            self.faults.record("snapshot_error", channel=f"orderbook:{symbol}", seq=history.seq)
            return _rest_error(
                503,
                -1001,
                "Internal error; unable to process your request. Please try again.",
                hdr,
            )
        seq = history.seq
        if fault == "stale_snapshot":
            seq = max(history.oldest_seq, seq - settings.stale_by)
            self.faults.record(
                "stale_snapshot", channel=f"orderbook:{symbol}", seq=seq, latest=history.seq
            )
        book = history.book_at(seq)
        inst = market.instrument
        bids, asks = book.to_lists(limit)
        snap = BookSnapshot(
            symbol,
            seq * self.id_step,
            levels(inst, bids),
            levels(inst, asks),
            ts_ns=time.time_ns(),
        )
        body = self.codec.encode_depth_snapshot(snap)
        if settings.snapshot_delay_ms:
            self.faults.record(
                "snapshot_delay_ms", symbol=symbol, seq=seq, ms=settings.snapshot_delay_ms
            )
            await asyncio.sleep(settings.snapshot_delay_ms / 1000)
        return _ok(body, used)


def _ok(body: bytes, used: int) -> web.Response:
    return web.Response(
        body=body, content_type="application/json", headers={USED_WEIGHT_HEADER: str(used)}
    )


def _rest_error(
    status: int, code: int, msg: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_error_body(code, msg), status=status, content_type="application/json", headers=headers
    )
