"""The seam between the hub and a venue dialect, and the parts every dialect shares.

The hub (``tickpipe.gateway.hub``) owns the markets, their update ids and the truth history. With
a dialect set (``hub.dialect``), each market step's published changes go to the dialect instead
of the VTS/1 channels:

- :meth:`MarketSink.on_book` — one orderbook update: ``update_id`` is the channel's seq (one per
  step that changed the book, contiguous per symbol, the id ``GET /admin/book/{symbol}?seq=N``
  answers for), ``bids``/``asks`` map price units -> new size units (0 = removed);
- :meth:`MarketSink.on_trade` — one print, ``trade_id`` contiguous per symbol.

The dialect turns them into ``protocol.normalised`` values, encodes them with its venue's codec
(``tickpipe.venues.<name>.codec``: the client decodes with the same one), batches them as the
venue does (Binance: one diff event per 100 ms), applies the frame faults, and fans out to its
own connections. The gateway gives the dialect its HTTP routes, start/stop, the connection
faults (``disconnect``, ``stall``, ``stop_pings``) and a ``stats`` block.

Shared here: :func:`parse_options` (typed ``NAME=VALUE`` knobs into a frozen dataclass),
:class:`IncomingRate` (a sliding one-second window of a connection's incoming messages),
:class:`SlidingCount` (events per key in a sliding window), :func:`apply_frame_fault` (the frame
faults on one encoded book frame), :class:`DialectConnection` (one WebSocket connection's
plumbing: outbound queue, stall and slow-consumer rules, writer, kill/close, lifecycle) and
:class:`DialectBase` (a dialect's connections, subscriptions, flusher, start/stop, the
``disconnect``/``stall`` faults). Each dialect module keeps only its venue's wire behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from aiohttp import WSMsgType, web

from tickpipe.errors import ConfigError
from tickpipe.gateway.logs import log_event
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import RawLevel, TradeEvent

if TYPE_CHECKING:
    from tickpipe.gateway.faults import Faults
    from tickpipe.gateway.hub import Market
    from tickpipe.gateway.markets import MarketSpec
    from tickpipe.gateway.server import Gateway
    from tickpipe.gateway.simulator import SimTrade

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008


class MarketSink(Protocol):
    """What the hub calls for each published change (see the module docstring)."""

    def on_book(
        self, market: Market, update_id: int, bids: dict[int, int], asks: dict[int, int]
    ) -> None: ...

    def on_trade(self, market: Market, trade_id: int, trade: SimTrade) -> None: ...


class Dialect(MarketSink, Protocol):
    """A venue dialect as the gateway drives it."""

    name: str

    def routes(self) -> list[web.RouteDef]: ...

    def base_stream_url(self, host: str, port: int) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def trigger(self, fault: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """Handle ``fault`` if it is the dialect's to handle (connection faults), refuse with a
        ConfigError one that does not apply to the venue; None = the gateway handles it."""
        ...

    def stats(self) -> dict[str, Any]: ...


T = TypeVar("T")


def parse_options(cls: type[T], pairs: Sequence[tuple[str, str | float | int]], what: str) -> T:
    """``cls`` (a frozen dataclass of int/float knobs) with ``pairs`` applied over its defaults;
    ConfigError names an unknown knob or a value that is not a positive number."""
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for name, raw in pairs:
        f = known.get(name)
        if f is None:
            raise ConfigError(f"{what}: unknown option {name!r}; known: {', '.join(sorted(known))}")
        kind = int if f.type in (int, "int") else float
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{what}: option {name} must be {'an integer' if kind is int else 'a number'}, "
                f"got {raw!r}"
            ) from None
        if not value > 0 or value != value or value == float("inf"):
            raise ConfigError(f"{what}: option {name} must be > 0 and finite, got {raw!r}")
        values[name] = value
    return cls(**values)


class IncomingRate:
    """Messages a connection sent in the last second (a sliding window): :meth:`admit` is False
    once more than ``limit`` arrived within one second."""

    __slots__ = ("limit", "times")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.times: deque[float] = deque()

    def admit(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        q = self.times
        while q and now - q[0] >= 1.0:
            q.popleft()
        q.append(now)
        return len(q) <= self.limit


class SlidingCount:
    """Events per key in a sliding window: :meth:`admit` is False past ``limit``."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.times: dict[str, deque[float]] = {}

    def admit(self, key: str, limit: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        q = self.times.setdefault(key, deque())
        while q and now - q[0] >= self.window_s:
            q.popleft()
        if len(q) >= limit:
            return False
        q.append(now)
        if len(self.times) > 10_000:  # bound memory: forget keys with nothing recent
            self.times = {k: v for k, v in self.times.items() if v and now - v[-1] < self.window_s}
        return True


def rename_markets(
    markets: tuple[MarketSpec, ...],
    rename: Callable[[str], str],
    valid: Callable[[str], bool],
    no_name: str,
) -> tuple[MarketSpec, ...]:
    """The markets under ``rename(symbol)`` (grids unchanged); ConfigError for a name not
    ``valid`` ("market 'X': no <no_name>") or two markets mapping to one name."""
    out: list[MarketSpec] = []
    seen: dict[str, str] = {}
    for m in markets:
        inst = m.instrument
        name = rename(inst.symbol)
        if not valid(name):
            raise ConfigError(f"market {inst.symbol!r}: no {no_name}")
        if name in seen:
            raise ConfigError(f"markets {seen[name]!r} and {inst.symbol!r} both map to {name!r}")
        seen[name] = inst.symbol
        if name == inst.symbol:
            out.append(m)
            continue
        new = Instrument(name, inst.asset_class, inst.tick_size, inst.lot_size)
        out.append(replace(m, instrument=new))
    return tuple(out)


class BookWindow:
    """One book's changes since its last frame (merged), a frame held back by
    ``reorder_delta``, and the last top of book sent. A dialect may subclass it."""

    __slots__ = ("asks", "bids", "first", "held", "last", "top")

    def __init__(self, last: int = 0) -> None:
        self.first: int | None = None
        self.last = last
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.held: bytes | None = None
        self.top: tuple[object, ...] | None = None

    def merge(self, update_id: int, bids: dict[int, int], asks: dict[int, int]) -> None:
        """Add one hub update (price units -> new size units, 0 = removed)."""
        if self.first is None:
            self.first = update_id
        self.last = update_id
        self.bids.update(bids)
        self.asks.update(asks)


def levels(inst: Instrument, rows: Sequence[tuple[int, int]]) -> list[RawLevel]:
    """``(price, size)`` units as the instrument's decimal strings, in order."""
    fp, fs = inst.format_price, inst.format_size
    return [(fp(p), fs(s)) for p, s in rows]


def changed_levels(
    inst: Instrument, bids: dict[int, int], asks: dict[int, int]
) -> tuple[list[RawLevel], list[RawLevel]]:
    """A merged window's changes as decimal levels: bids best (highest) first, asks lowest."""
    return levels(inst, sorted(bids.items(), reverse=True)), levels(inst, sorted(asks.items()))


def trade_event(market: Market, trade_id: int, trade: SimTrade) -> TradeEvent:
    """The hub's print ``trade_id`` as a normalised trade, stamped now."""
    inst = market.instrument
    return TradeEvent(
        inst.symbol,
        str(trade_id),
        inst.format_price(trade.price),
        inst.format_size(trade.size),
        trade.side,
        time.time_ns(),
    )


def apply_frame_fault(
    fault: str | None, data: bytes, held: bytes | None, fan: Callable[[bytes], None]
) -> bytes | None:
    """Send one encoded book frame ``data`` through ``fan`` with ``fault`` applied
    (``drop_delta``, ``duplicate_delta``, ``reorder_delta``, ``malformed_frame``), then the
    frame ``held`` back by an earlier ``reorder_delta``; returns the frame to hold now."""
    hold: bytes | None = None
    if fault == "drop_delta":
        data = b""
    elif fault == "duplicate_delta":
        fan(data)
    elif fault == "reorder_delta":
        hold = data
        data = b""
    elif fault == "malformed_frame":
        data = data[: len(data) // 2]
    if data:
        fan(data)
    if held is not None:
        fan(held)
    return hold


D = TypeVar("D", bound="DialectBase[Any]")
C = TypeVar("C", bound="DialectConnection[Any]")


class DialectConnection(Generic[D]):
    """One WebSocket connection of a dialect: its subscriptions (``subscribed``), outbound
    queue, writer task, stall, kill/close and lifecycle. A dialect subclasses it with its reader
    (:meth:`_read_loop`), its background tasks (:meth:`_background`) and any hooks."""

    def __init__(self, d: D, request: web.Request, conn_id: str, max_msg_size: int) -> None:
        self.d = d
        self.request = request
        self.id = conn_id
        self.peer = request.remote or "?"
        self.ws = web.WebSocketResponse(
            autoping=False, autoclose=True, max_msg_size=max_msg_size, compress=False
        )
        self.subscribed: dict[str, None] = {}  # streams / channels, in subscription order
        self.queue: deque[bytes] = deque()
        self.closing = False
        self.end_reason = "client closed"
        self.stalled_until = 0.0
        self.last_traffic = time.monotonic()  # last frame sent (and read, where a dialect says)
        self.frames_sent = 0
        self.pongs = 0
        self.dropped_while_stalled = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._close_task: asyncio.Task[None] | None = None

    # -- outbound ---------------------------------------------------------------------------
    def stalled(self) -> bool:
        return self.stalled_until > time.monotonic()

    def enqueue(self, data: bytes) -> None:
        if self.closing:
            return
        if self.stalled_until and self.stalled():
            self.dropped_while_stalled += 1
            return
        if len(self.queue) >= self.d.gw.config.max_queue_frames:
            self.kill(CLOSE_POLICY, "slow consumer: outbound queue full", reason="slow_consumer")
            return
        self.queue.append(data)
        self._wake.set()

    async def _writer(self) -> None:
        q = self.queue
        while not self.closing:
            await self._wake.wait()
            self._wake.clear()
            while q and not self.closing and not self.stalled():
                try:
                    await self.ws.send_frame(q.popleft(), WSMsgType.TEXT)
                except (ConnectionError, RuntimeError):
                    self.end_reason = "send failed"
                    return
                self.frames_sent += 1
                self.last_traffic = time.monotonic()

    async def _pong(self, data: bytes) -> None:
        """Answer a client's WebSocket ping (not while stalled)."""
        if not self.stalled():
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.pong(data)

    def hold(self, fault: str, until: float) -> None:
        """Apply a timed connection fault until ``until`` (monotonic; 0 = lift it): ``stall``."""
        self.stalled_until = until
        self.queue.clear()

    def kill(self, code: int, message: str, *, reason: str, close_frame: bool = True) -> None:
        """End the connection (idempotent), with a close frame ``code`` or abruptly."""
        if self.closing:
            return
        self.closing = True
        self.end_reason = reason
        self.queue.clear()
        self._wake.set()
        log_event(
            "disconnect",
            level=logging.WARNING,
            session=self.id,
            dialect=self.d.name,
            code=code if close_frame else None,
            reason=reason,
            detail=message,
            close_frame=close_frame,
        )
        self._close_task = asyncio.get_running_loop().create_task(
            self._close(code, message, close_frame)
        )

    async def _close(self, code: int, message: str, close_frame: bool) -> None:
        transport = self.request.transport
        if close_frame:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code=code, message=message.encode()), 1.0)
        if transport is not None:
            transport.abort()

    # -- the connection ---------------------------------------------------------------------
    def _opened(self) -> None:
        """Called once the connection is registered, before its tasks start."""

    def _ended(self) -> None:
        """Called first when the connection ends."""

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        """The connection's tasks besides the writer (pinger, watchdog...)."""
        return []

    async def _read_loop(self) -> None:
        raise NotImplementedError

    async def _serve(self, **connect_fields: Any) -> web.WebSocketResponse:
        """Run the connection to its end: register, start the writer and :meth:`_background`,
        read until closed, then unregister and wait for every task."""
        ws = self.ws
        await ws.prepare(self.request)
        d = self.d
        d.conns[self.id] = self
        log_event("connect", session=self.id, peer=self.peer, dialect=d.name, **connect_fields)
        loop = asyncio.get_running_loop()
        try:
            self._opened()
            self._tasks = [loop.create_task(self._writer())]
            self._tasks += [loop.create_task(c) for c in self._background()]
            await self._read_loop()
        finally:
            self._ended()
            self.closing = True
            self._wake.set()
            d.drop(self)
            for t in self._tasks:
                t.cancel()
            tasks = [*self._tasks, *([self._close_task] if self._close_task else [])]
            await asyncio.gather(*tasks, return_exceptions=True)
            log_event("session_end", session=self.id, dialect=d.name, reason=self.end_reason)
        return ws

    def stats(self) -> dict[str, Any]:
        """The counters every dialect's ``stats`` shows for a connection."""
        return {
            "queued": len(self.queue),
            "frames_sent": self.frames_sent,
            "pongs": self.pongs,
            "stalled": self.stalled(),
            "dropped_while_stalled": self.dropped_while_stalled,
        }


class DialectBase(Generic[C]):
    """What every dialect keeps the same way: its connections and subscriptions (``subs``:
    stream/channel -> connections), the periodic flusher (:meth:`flush` every
    :meth:`flush_period_s`), the random ``disconnect`` housekeeping, start/stop and the
    ``disconnect``/``stall`` faults (:meth:`connection_fault`)."""

    name: str
    CONNECTION_FAULTS: ClassVar[tuple[str, ...]] = ("disconnect", "stall")

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.faults: Faults = gw.faults
        self.conns: dict[str, C] = {}
        self.subs: dict[str, dict[C, None]] = {}
        self.disconnects: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- gateway side -----------------------------------------------------------------------
    def base_stream_url(self, host: str, port: int) -> str:
        return f"ws://{host}:{port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._flusher()), loop.create_task(self._housekeeping())]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for c in list(self.conns.values()):
            c.kill(CLOSE_GOING_AWAY, "gateway going away", reason="gateway_stop")

    def connection_fault(self, fault: str, params: dict[str, Any]) -> dict[str, Any]:
        """``disconnect`` (``close_frame``) or a timed fault (``duration_ms``, applied by
        :meth:`DialectConnection.hold`) on one ``session`` or every connection."""
        left = dict(params)
        close_frame = left.pop("close_frame", True) if fault == "disconnect" else True
        duration = left.pop("duration_ms", 60_000) if fault != "disconnect" else 0
        sid = left.pop("session", None)
        if left:
            raise ConfigError(f"trigger {fault}: unknown parameter(s) {sorted(left)}")
        if not isinstance(close_frame, bool):
            raise ConfigError(f"trigger {fault}: close_frame must be true or false")
        if isinstance(duration, bool) or not isinstance(duration, int) or duration < 0:
            raise ConfigError(f"trigger {fault}: duration_ms must be an integer >= 0")
        if sid is not None and not isinstance(sid, str):
            raise ConfigError(f"trigger {fault}: session must be a string")
        targets = [c for c in self.conns.values() if sid is None or c.id == sid]
        if sid is not None and not targets:
            raise ConfigError(f"trigger {fault}: no session {sid!r}")
        for c in targets:
            if fault == "disconnect":
                self._fault_disconnect(c, close_frame)
                continue
            c.hold(fault, time.monotonic() + duration / 1000 if duration else 0.0)
            self.faults.record(fault, session=c.id, duration_ms=duration)
        return {"triggered": fault, "sessions": [c.id for c in targets]}

    def _fault_disconnect(self, c: C, close_frame: bool) -> None:
        self.faults.record("disconnect", session=c.id, close_frame=close_frame)
        c.kill(
            CLOSE_GOING_AWAY,
            "fault: disconnect",
            reason="fault_disconnect",
            close_frame=close_frame,
        )

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            chance = self.faults.settings.disconnect
            if not chance.rate:
                continue
            for c in list(self.conns.values()):
                if not c.closing and self.faults.rng.random() < chance.rate:
                    self._fault_disconnect(c, self.faults.settings.close_frame)

    # -- subscriptions ----------------------------------------------------------------------
    def subscribe(self, key: str, conn: C) -> None:
        self.subs[key][conn] = None
        conn.subscribed[key] = None

    def unsubscribe(self, key: str, conn: C) -> None:
        self.subs[key].pop(conn, None)
        conn.subscribed.pop(key, None)

    def drop(self, conn: C) -> None:
        for key in conn.subscribed:
            self.subs[key].pop(conn, None)
        if self.conns.pop(conn.id, None) is not None:
            self.disconnects[conn.end_reason] = self.disconnects.get(conn.end_reason, 0) + 1

    # -- the periodic flush -----------------------------------------------------------------
    def flush_period_s(self) -> float:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    async def _flusher(self) -> None:
        period = self.flush_period_s()
        loop = asyncio.get_running_loop()
        next_at = loop.time() + period
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + period, loop.time())
            self.flush()
