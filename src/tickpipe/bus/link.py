"""A bus consumer's connection: NATS JetStream in place of a WebSocket, for the client shell.

The supervisor connects through a *connector* (``picows.ws_connect`` for venues); for a bus
source it is :class:`BusConnector`, which returns a :class:`BusTransport` that the shell drives
exactly as a WebSocket transport (``send``, ``disconnect``, ``wait_disconnected``) and a
listener it feeds (``listener._on_text`` for each message, ``listener.sink.on_ping`` for each
heartbeat, ``on_ws_disconnected`` at the end):

- connect: one NATS connection (``servers`` the comma-separated ``nats://`` URLs; nats-py
  moves to another server of a cluster by itself, up to ``max_reconnect_attempts``), then
  wait for an active collector's heartbeat on ``tickpipe.v1.<venue>.heartbeat`` (none within
  the connect timeout: StreamError naming the subject). Its interval is the link's
  ``heartbeat_ms``: the shell's watchdog then counts collector heartbeats as pings, so a
  collector that dies (or a bus that cuts us off) makes this consumer blind after
  ``heartbeat_timeout_factor`` intervals, as a silent venue would. Several collectors may feed
  one venue (its symbols sharded over processes): the link tracks each one's heartbeats, and
  when one falls silent while others still speak, only the books it alone published become
  not synced (``stale {reason: collector_lost}``) until a collector's reset Snap arrives.
- subscribe a book: read the stream's latest Snap and latest State of that book (direct get
  by subject), and start an ordered push consumer on the book's subjects from the later one
  (none yet: from the stream's end), announced by a LinkStart; trades: from now on; ticker:
  from its latest value. A channel no live collector lists in its heartbeat is refused
  (``unknown_channel``). Every (un)subscribed channel is answered with a LinkAck.
- re-seed a book (the shell's unsubscribe + subscribe of one channel): its consumer starts
  again from the latest Snap; messages still queued for the old one are dropped (a
  generation number per channel).

Bounded: each consumer's pending messages are capped (``pending_msgs_limit``); JetStream's flow
control holds the rest on the server, so a slow consumer falls behind the stream and never
slows the collector. A consumer that NATS cuts off as slow loses nothing the stream kept: it
is told (a gap), and re-seeds from the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
import nats
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from tickpipe.bus import schema
from tickpipe.bus.decoder import (
    LinkAck,
    LinkLost,
    LinkOpened,
    LinkStart,
    LinkUnknown,
    command_decoder,
    encode_link,
)
from tickpipe.errors import FrameError, StreamError
from tickpipe.protocol.instruments import Instrument

log = logging.getLogger("tickpipe.bus.link")

PENDING_MSGS_LIMIT = 65_536  # per consumer, messages queued in this process before NATS holds
MAX_RECONNECT_ATTEMPTS = 5  # nats-py's own moves to another server before the link ends
RECONNECT_WAIT_S = 0.25
SUBSCRIBE_CONCURRENCY = 16  # channels being set up at once (3 JetStream requests each)
COLLECTOR_TIMEOUT_FACTOR = 2.5  # a collector not heard for this many intervals is gone


def split_servers(source: str) -> list[str]:
    """``nats://a:4222,nats://b:4222`` -> the URLs; ValueError naming a bad one."""
    out = [u.strip() for u in source.split(",") if u.strip()]
    if not out:
        raise ValueError(f"no NATS URL in {source!r}")
    for u in out:
        if not u.startswith(("nats://", "tls://")):
            raise ValueError(f"{u!r} is not a nats:// URL")
    return out


async def _connect(source: str, timeout_s: float, **callbacks: Any) -> Any:
    try:
        return await nats.connect(
            servers=split_servers(source),
            connect_timeout=max(1, int(timeout_s)),
            allow_reconnect=True,
            max_reconnect_attempts=MAX_RECONNECT_ATTEMPTS,
            reconnect_time_wait=RECONNECT_WAIT_S,
            **callbacks,
        )
    except ValueError:
        raise
    except Exception as exc:  # nats-py: NoServersError, OSError, TimeoutError...
        raise StreamError(
            f"cannot connect to NATS at {source}: {type(exc).__name__}: {exc}"
        ) from exc


async def load_instruments(
    source: str, venue: str, stream: str, timeout_s: float
) -> tuple[list[Instrument], int | None]:
    """The latest Instruments message a collector of ``venue`` stored on ``stream``."""
    nc = await _connect(source, timeout_s)
    try:
        js = nc.jetstream(timeout=timeout_s)
        subject = schema.instruments_subject(venue)
        try:
            raw = await js.get_last_msg(stream, subject)
        except NotFoundError:
            raise StreamError(
                f"no instruments on the bus for {venue!r} (stream {stream}, subject {subject}): "
                f"is `tickpipe publish --venue {venue}` running against {source}?"
            ) from None
        except Exception as exc:
            raise StreamError(f"cannot read {subject} from stream {stream}: {exc}") from exc
        msg = schema.decode(raw.data or b"")
        if not isinstance(msg, schema.Instruments):
            raise FrameError(f"{subject} holds a {type(msg).__name__}, not instruments")
        insts = [
            Instrument(e.symbol, e.asset_class, e.tick_size, e.lot_size) for e in msg.instruments
        ]
        return insts, msg.exact_depth
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


class _NoSocket:
    """What the listener's backlog would pause: a bus link has no socket to pause."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def is_closing(self) -> bool:
        return False


class BusTransport:
    """One NATS connection standing in for one WebSocket (see the module docstring)."""

    underlying_transport = _NoSocket()

    def __init__(self, venue: str, stream: str, source: str, listener: Any) -> None:
        self.venue = venue
        self.stream = stream
        self.source = source
        self.listener = listener
        self.nc: Any = None
        self.js: Any = None
        self.published: set[str] = set()  # every live collector's channels
        # collector id -> (last heartbeat, monotonic s; its channels; its interval, s)
        self._collectors: dict[str, tuple[float, list[str], float]] = {}
        self.collector = ""  # the first one heard (the session's name)
        self.heartbeat_ms = 0
        self._heard = asyncio.Event()
        self._heard_at = 0.0  # loop time of the first heartbeat
        self._opened = False
        self._subs: dict[str, Any] = {}
        self._gen: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sem = asyncio.Semaphore(SUBSCRIBE_CONCURRENCY)
        self._disconnected = asyncio.get_running_loop().create_future()
        self.is_disconnected = False

    # -- the shell's side (as a picows WSTransport) --------------------------------------------
    def send(self, msg_type: Any, data: bytes) -> None:
        if self.is_disconnected:
            raise StreamError("not connected")
        try:
            cmd = command_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise StreamError(f"not a bus link command: {exc}") from None
        if cmd.op == "subscribe":
            for ch in cmd.channels:
                self._spawn(self._subscribe(cmd.id, ch))
        elif cmd.op == "unsubscribe":
            for ch in cmd.channels:
                self._spawn(self._unsubscribe(cmd.id, ch))

    def send_close(self, *args: Any) -> None:
        pass

    def disconnect(self, graceful: bool = True) -> None:
        if not self.is_disconnected:
            self.is_disconnected = True
            asyncio.get_running_loop().create_task(self._close())

    async def wait_disconnected(self) -> None:
        await asyncio.shield(self._disconnected)

    # -- internals -----------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _deliver(self, data: bytes) -> None:
        if not self.is_disconnected:
            self.listener._on_text(data)

    async def open(self, timeout_s: float) -> None:
        """Connect and wait for a heartbeat, within 90 % of ``timeout_s`` (the shell's own
        bound on the connect: our error, naming what is missing, must come first)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.9 * timeout_s
        self.nc = await _connect(
            self.source,
            timeout_s,
            closed_cb=self._on_nats_closed,
            error_cb=self._on_nats_error,
        )
        self.js = self.nc.jetstream(timeout=timeout_s)
        subject = schema.heartbeat_subject(self.venue)
        await self.nc.subscribe(subject, cb=self._on_heartbeat)
        try:
            await asyncio.wait_for(self._heard.wait(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            await self._close()
            raise StreamError(
                f"no collector heartbeat on {subject} within {timeout_s:g}s: is `tickpipe "
                f"publish --venue {self.venue}` running against {self.source}?"
            ) from None

    def opened(self) -> None:
        """The shell is listening: the open answer (the first heartbeat heard)."""
        self._opened = True
        self._deliver(encode_link(LinkOpened(self.collector, self.heartbeat_ms)))
        self._spawn(self._watch_collectors())

    async def _on_heartbeat(self, msg: Msg) -> None:
        try:
            hb = schema.decode(msg.data)
        except FrameError as exc:
            log.warning("bad heartbeat on %s: %s", msg.subject, exc)
            return
        if not isinstance(hb, schema.Heartbeat) or hb.interval_ms <= 0:
            return
        now = time.monotonic()
        self._collectors[hb.collector] = (now, hb.channels, hb.interval_ms / 1000.0)
        self._expire(now)
        if not self._heard.is_set():
            self.collector = hb.collector
            self.heartbeat_ms = hb.interval_ms
            self._heard_at = asyncio.get_running_loop().time()
            self._heard.set()
        elif self._opened and not self.is_disconnected:
            self.listener.sink.on_ping()

    def _expire(self, now: float) -> None:
        """Forget collectors not heard for ``COLLECTOR_TIMEOUT_FACTOR`` of their intervals;
        the books only they published are no longer exact (BookUnsynced, reason
        ``collector_lost``) until another collector's reset Snap arrives on their subjects."""
        gone = [
            cid
            for cid, (seen, _, every) in self._collectors.items()
            if now - seen > COLLECTOR_TIMEOUT_FACTOR * every
        ]
        lost: set[str] = set()
        for cid in gone:
            lost.update(self._collectors.pop(cid)[1])
            log.warning("collector %s of %s not heard: its books are stale", cid, self.venue)
        self.published = {ch for _, chs, _ in self._collectors.values() for ch in chs}
        if not self._opened or self.is_disconnected:
            return
        for ch in sorted(lost - self.published):
            if ch.startswith("orderbook:") and ch in self._subs:
                self._deliver(encode_link(LinkLost(ch, "collector_lost")))

    async def _watch_collectors(self) -> None:
        """Each collector's heartbeats, while several feed this link (shards of a venue): one
        that falls silent stales its own books, the link stays up for the others'."""
        while not self.is_disconnected:
            every = min((e for _, _, e in self._collectors.values()), default=1.0)
            await asyncio.sleep(every / 2)
            self._expire(time.monotonic())

    async def _on_nats_closed(self) -> None:
        if not self.is_disconnected:
            log.warning("NATS connection to %s closed", self.source)
            self.disconnect()

    async def _on_nats_error(self, exc: Exception) -> None:
        log.warning("NATS: %s: %s", type(exc).__name__, exc)

    async def _close(self) -> None:
        self.is_disconnected = True
        for t in list(self._tasks):
            t.cancel()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), 2.0)
        if not self._disconnected.done():
            self._disconnected.set_result(None)
            with contextlib.suppress(Exception):
                self.listener.on_ws_disconnected(self)

    async def _last_seq(self, subject: str) -> int | None:
        try:
            raw = await self.js.get_last_msg(self.stream, subject)
        except NotFoundError:
            return None
        return int(raw.seq)

    async def _subscribe(self, req_id: int, channel: str) -> None:
        # a link just up may not have heard every live collector yet (each speaks once an
        # interval): a channel no one has named waits that long before it is refused
        loop = asyncio.get_running_loop()
        until = self._heard_at + COLLECTOR_TIMEOUT_FACTOR * self.heartbeat_ms / 1000.0
        while channel not in self.published and loop.time() < until and not self.is_disconnected:
            await asyncio.sleep(0.05)
        if channel not in self.published:
            self._deliver(
                encode_link(
                    LinkUnknown(
                        req_id,
                        channel,
                        f"no live collector publishes {channel} for {self.venue} on {self.source}",
                    )
                )
            )
            self._deliver(encode_link(LinkAck(req_id, channel)))
            return
        await self._stop(channel)
        gen = self._gen[channel] = self._gen.get(channel, 0) + 1
        self._deliver(encode_link(LinkAck(req_id, channel)))
        kind, _, symbol = channel.partition(":")
        try:
            async with self._sem:
                if kind == "orderbook":
                    filt = schema.book_filter(self.venue, symbol)
                    snap = await self._last_seq(schema.book_subject(self.venue, symbol, "snap"))
                    state = await self._last_seq(schema.book_subject(self.venue, symbol, "state"))
                    seen = [s for s in (snap, state) if s is not None]
                    if seen:
                        start = max(seen)
                    else:
                        info = await self.js.stream_info(self.stream)
                        start = int(info.state.last_seq) + 1
                    cfg = ConsumerConfig(
                        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start
                    )
                elif kind == "trades":
                    filt = schema.trades_subject(self.venue, symbol)
                    cfg = ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
                else:
                    filt = schema.ticker_subject(self.venue, symbol)
                    cfg = ConsumerConfig(deliver_policy=DeliverPolicy.LAST)
                if self._gen.get(channel) != gen or self.is_disconnected:
                    return  # unsubscribed or re-seeded meanwhile
                self._deliver(encode_link(LinkStart(channel)))
                sub = await self.js.subscribe(
                    filt,
                    stream=self.stream,
                    ordered_consumer=True,
                    config=cfg,
                    cb=self._handler(channel, gen),
                    pending_msgs_limit=PENDING_MSGS_LIMIT,
                )
                if self._gen.get(channel) != gen:  # stopped while the consumer was made
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
                    return
                self._subs[channel] = sub
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the bus refused or timed out: the book waits, then re-seeds
            log.warning("cannot subscribe %s on the bus: %s: %s", channel, type(exc).__name__, exc)

    def _handler(self, channel: str, gen: int) -> Callable[[Msg], Any]:
        gens = self._gen
        deliver = self._deliver

        async def on_msg(msg: Msg) -> None:
            if gens.get(channel) == gen:
                deliver(msg.data)

        return on_msg

    async def _stop(self, channel: str) -> None:
        self._gen[channel] = self._gen.get(channel, 0) + 1
        sub = self._subs.pop(channel, None)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _unsubscribe(self, req_id: int, channel: str) -> None:
        await self._stop(channel)
        self._deliver(encode_link(LinkAck(req_id, channel)))


class BusConnector:
    """The supervisor's connector for a bus source (``ws_connect``'s signature)."""

    def __init__(self, venue: str, stream: str) -> None:
        self.venue = venue
        self.stream = stream

    async def __call__(
        self,
        factory: Callable[[], Any],
        url: str,
        *,
        websocket_handshake_timeout: float = 5.0,
        **_ignored: Any,
    ) -> tuple[BusTransport, Any]:
        listener = factory()
        transport = BusTransport(self.venue, self.stream, url, listener)
        await transport.open(websocket_handshake_timeout)
        listener.on_ws_connected(transport)
        asyncio.get_running_loop().call_soon(transport.opened)
        return transport, listener
