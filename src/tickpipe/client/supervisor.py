"""The connection supervisor: connect, auth, arm, subscribe, watch, go blind, back off, again.

One task runs :meth:`Supervisor.run` for the client's lifetime::

    connect (picows, enable_auto_pong=False) -> auth -> [cancel_on_disconnect] -> subscribe all
      -> watch: heartbeat watchdog (no ping for the timeout = dead, socket closed by us),
                silence checks, until the socket ends
      -> go blind (VTS/1 section 8): books and tickers stale at once, triggers dropped,
         own orders cancelled through REST (reported; failures retried in the background)
      -> wait min(cap, base * 2**attempt) * jitter, then connect again

Retryable versus fatal is decided in one place, :func:`classify`: an auth refusal (error frame
``auth_failed`` or close code 4001) is fatal: reported once (``auth_failed``), never retried
in a loop, raised to the user. A permanent 4xx answer to the upgrade (400-499 but 408/429:
a wrong URL) is fatal before the first connection (:class:`HandshakeRejected`, raised by
``start()`` at once); once a connection has been made it is retried, as a proxy may answer
so for a while during a deploy. Everything else the network can do (refused, reset, 5xx,
timeout, close codes 1001/1008/1011, heartbeat loss) is retried with backoff. A ``wss://``
certificate that fails verification (:class:`CertificateRejected`) is fatal at start-up like
a 4xx, retried (and verified again) once a connection has been made. Failed tries
before the first connection are reported as ``connect_retry``; ``reconnecting`` is only for
reconnects after a connection was lost.

Rotation: venues that close every connection at a fixed age (Binance: 24 h; the adapter's
``max_connection_age_s``, read by ``client/venue.py``) or announce a close (the ``Closing``
control value: Binance ``serverShutdown``, OKX notice 64008) get a *planned* change of
connection, never a blind spell. Beside each session a task (:meth:`Supervisor._rotation`)
waits until ``max_age - min(rotation_margin_s, max_age / 2)`` or the notice, then:

1. opens the next connection while the old one keeps feeding every book (its frames go to
   ``Channels.on_text_old``, the new one's to ``Channels.on_text_new``) and subscribes every
   wanted channel on it (request kind ``rotate``: its answer restarts nothing);
2. each channel *moves* to the new connection by itself (``client/channels.py``): a LIVE book
   when an update of the new connection follows the book's current update id, so it is joined
   without a re-seed and never leaves LIVE; tickers and trades on their first value;
3. when every channel has moved (or ``rotation_handover_timeout_s`` passed, or the old
   connection ended first), what is left is moved (a book that could not be joined re-seeds:
   ``stale`` reason ``rotation``, the only visible case), the new connection becomes the
   session's, and the old one is closed by us (1000) before the venue's cut.

Why join by ids and not seed a second set of books: no snapshot is spent (a REST venue's weight
budget stays for real re-seeds: 200 Binance books would cost 10,000 weight a rotation) and the
book the user reads is the same object throughout, its update id only moving forward. Venues
whose updates carry no per-book ids (Kraken, Coinbase) cannot be joined so: their books move at
once and the new subscription's in-band snapshot replaces each (still LIVE). User subscribes
and unsubscribes wait for a rotation in progress. If the new connection cannot be made (or its
subscribe is refused) the old one carries on as before, and the rotation is tried again later;
if the old one is cut meanwhile, the session goes blind and reconnects as for any loss.

Shards: a Supervisor runs exactly one connection (and its rotations) for the channels in its
``wanted``, with its own ``Channels`` (their books' state). A venue that caps the streams of a
connection (the adapter's ``max_streams_per_connection``) gets one Supervisor per connection,
started by the client (``client/client.py``), which places each new channel on a connection
with room; so requests and acks, watchdog, rotation, backoff and re-seeds stay per connection,
and a loss stales only that connection's books.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from picows import WSCloseCode, WSError, WSHandshakeError, WSMsgType, WSTransport, ws_connect

from tickpipe.client.channels import Channels
from tickpipe.client.config import ClientConfig, tls_context
from tickpipe.client.dispatch import Dispatcher
from tickpipe.client.events import (
    AuthFailed,
    CancelOnDisconnectArmed,
    Connected,
    ConnectRetry,
    Disconnected,
    OrdersCancelled,
    Reconnecting,
    SubscribedEvent,
    SubscribeError,
    UnsubscribedEvent,
)
from tickpipe.client.metrics import Metrics
from tickpipe.client.orders import OrderManager
from tickpipe.client.reader import ConnectionSink, StreamListener
from tickpipe.client.recorder import Recorder
from tickpipe.client.snapshots import TokenBucket
from tickpipe.client.venue import client_ping, max_connection_age, resubscribe_budget
from tickpipe.errors import (
    AuthError,
    CertificateRejected,
    FrameError,
    HandshakeRejected,
    StreamError,
)
from tickpipe.protocol import frames
from tickpipe.protocol.backoff import Backoff
from tickpipe.protocol.sync import ResubscribeRequest, SyncState
from tickpipe.protocol.watchdog import HeartbeatWatchdog
from tickpipe.venues.base import (
    Ack,
    Closing,
    ConnectionGap,
    Opened,
    OpenRefused,
    Pong,
    Refused,
    Venue,
)

log = logging.getLogger("tickpipe.client.supervisor")

AUTH_CLOSE_CODE = 4001
RETRYABLE_4XX = (408, 429)  # timeout, too many requests: the only 4xx worth another try


def rejected_upgrade(url: str, exc: WSHandshakeError) -> HandshakeRejected | None:
    """A HandshakeRejected for a permanent 4xx answer to the upgrade, else None."""
    response = exc.response
    status = int(response.status) if response is not None else 0
    if not 400 <= status <= 499 or status in RETRYABLE_4XX:
        return None
    phrase = getattr(response.status, "phrase", "") if response is not None else ""
    return HandshakeRejected(
        f"{url} refused the WebSocket upgrade: HTTP {status} {phrase}".rstrip()
        + " (is the stream URL right?)",
        status,
    )


ConnState = Literal["connecting", "connected", "blind", "backoff", "closed", "auth_failed"]


def classify(exc: BaseException, *, connected_before: bool = False) -> Literal["fatal", "retry"]:
    """The one place that decides whether a connection failure is retried."""
    if isinstance(exc, AuthError):
        return "fatal"
    if isinstance(exc, HandshakeRejected | CertificateRejected):
        return "retry" if connected_before else "fatal"
    if isinstance(exc, StreamError | OSError | TimeoutError | WSError):
        return "retry"
    raise exc  # anything else is a bug: let it surface


@dataclass
class SubscribeResult:
    """Answer to one subscribe: channels accepted, and refused ones with their error code."""

    accepted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


@dataclass
class _Pending:
    kind: Literal["subscribe", "unsubscribe"]
    future: asyncio.Future[SubscribeResult]
    result: SubscribeResult = field(default_factory=SubscribeResult)
    channels: list[str] = field(default_factory=list)  # what was asked for
    summary_code: str | None = None  # an error for this request that named no channel


class Connection(ConnectionSink):
    """One socket's life. Reports frames to ``channels`` once authenticated."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        loop = asyncio.get_running_loop()
        self.authed: asyncio.Future[Opened] = loop.create_future()
        # an answer nobody waits for any more (connect timed out) must not warn at GC
        self.authed.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: WSTransport | None = None
        self.listener: StreamListener | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.lost_reason: str | None = None  # set when *we* end it: heartbeat | client
        self.watchdog: HeartbeatWatchdog | None = None
        self.heartbeat_age_at_loss: float | None = None
        self.session = ""
        self.connected_at = 0.0
        self.closing_notice = asyncio.Event()  # the venue announced it will close (Closing)

    # -- ConnectionSink (called from picows callbacks) --------------------------------------
    def on_text(self, data: bytes | memoryview) -> None:
        # Only until the venue's open answer (VTS/1: auth): then the listener calls
        # Channels.on_text directly.
        try:
            f = self.sup.venue.decode_open(data)
        except FrameError as exc:
            self.sup.channels.bad_frame(exc)
            return
        if isinstance(f, Opened):
            if not self.authed.done():
                self.authed.set_result(f)
        elif isinstance(f, OpenRefused):
            if not self.authed.done():
                self.authed.set_exception(AuthError(f.message))
        else:
            self.sup.metrics.unexpected_frames += 1

    def on_ping(self) -> None:
        self.sup.metrics.pings += 1
        if self.watchdog is not None:
            self.watchdog.on_ping(self.sup.clock())

    def on_close_frame(self, code: int, reason: str) -> None:
        self.close_code = code
        self.close_reason = reason

    def on_bad_frame(self, exc: FrameError) -> None:
        self.sup.channels.bad_frame(exc)

    def on_disconnected(self) -> None:
        if not self.authed.done():
            if self.close_code is not None and self.close_code == self.sup.venue.auth_close_code:
                self.authed.set_exception(AuthError(self.close_reason or "auth_failed (4001)"))
            else:
                self.authed.set_exception(
                    StreamError(f"connection closed before auth (code {self.close_code})")
                )
        if not self.closed.done():
            self.closed.set_result(None)

    # -- sending -----------------------------------------------------------------------------
    def send(self, frame: frames.ClientFrame) -> None:
        t = self.transport
        if t is None or t.is_disconnected:
            raise StreamError("not connected")
        t.send(WSMsgType.TEXT, frames.encode(frame))

    def send_bytes(self, data: bytes) -> None:
        """Send one text frame built by the venue adapter."""
        t = self.transport
        if t is None or t.is_disconnected:
            raise StreamError("not connected")
        t.send(WSMsgType.TEXT, data)

    def abort(self, reason: str) -> None:
        """End the connection from our side (heartbeat loss, client close)."""
        if self.lost_reason is None:
            self.lost_reason = reason
        t = self.transport
        if t is not None and not t.is_disconnected:
            if reason in ("client", "rotated"):
                t.send_close(WSCloseCode.OK)
                t.disconnect(graceful=True)
            else:
                t.disconnect(graceful=False)


class Supervisor:
    def __init__(
        self,
        *,
        stream_url: str,
        key: str,
        secret: str,
        config: ClientConfig,
        channels: Channels,
        dispatcher: Dispatcher,
        orders: OrderManager,
        metrics: Metrics,
        clock: Callable[[], float],
        random: Callable[[], float],
        venue: Venue,
        connector: Callable[..., Awaitable[tuple[Any, Any]]] | None = None,
    ) -> None:
        self.venue = venue
        self.url = stream_url
        # how a connection is made: picows' ws_connect, or a source's own (a bus link)
        self._connector = ws_connect if connector is None else connector
        self._key = key
        self._secret = secret
        self.config = config
        self.channels = channels
        self.dispatcher = dispatcher
        self.orders = orders
        self.metrics = metrics
        self.clock = clock
        self.backoff = Backoff(config.reconnect, random)
        self.state: ConnState = "connecting"
        self.conn: Connection | None = None
        self.wanted: dict[str, None] = {}
        self._pending: dict[int, _Pending] = {}
        # request id -> (kind, channels) of this connection's requests, for venues that answer
        # by id only (Ack/Refused); cleared when the connection is lost
        self._requests: dict[int, tuple[str, list[str]]] = {}
        self._said_no_orders = False
        self._next_id = 1
        self.recorder: Recorder | None = None  # tickpipe record: sees what is received
        self.orders_enabled = venue.supports_orders  # the client sets it (a venue's key)
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # start() raises what failed first; a start-up error of the stream that lost the race to
        # a REST one is not left behind for asyncio to log as never retrieved
        self.ready.add_done_callback(_retrieve)
        # AuthError, or HandshakeRejected / CertificateRejected at start-up
        self.fatal: StreamError | None = None
        self._tls: ssl.SSLContext | None = None  # built at the first wss:// connect
        self.last_error: str = ""
        self.current_delay_s = 0.0
        self.connections_opened = 0
        self.heartbeat_ms: int | None = None
        self.cancel_on_disconnect_armed = False
        self._closing = False
        self._up = asyncio.Event()
        channels.control = self._on_control
        # venues that answer each channel of a request on its own (Ack with a channel): what
        # each request has been answered so far, until every channel was
        self._partial: dict[int, SubscribeResult] = {}
        # in-band seeding: re-subscribes waiting for their delay or the bucket, and the
        # deadlines of the snapshots (re)subscribes should bring, by channel
        self._client_ping = client_ping(venue)
        rate, burst = resubscribe_budget(venue)
        self._resub_bucket = TokenBucket(rate, burst, clock())
        self._resub_timers: dict[str, asyncio.TimerHandle] = {}
        self._seed_timers: dict[str, asyncio.TimerHandle] = {}
        self.resubscribes = 0  # re-seeds carried out (unsubscribe + subscribe of one channel)
        self.pings_sent = 0  # client pings (venues whose client pings)
        channels.resubscribe = self._schedule_resubscribe
        channels.await_stream_snapshot = self._await_stream_snapshot
        # rotation (module docstring): the venue's connection age, the next connection while
        # it is being handed over, and an event set while no rotation is in progress
        self._max_age_s = max_connection_age(venue)
        self._next_conn: Connection | None = None
        self._not_rotating = asyncio.Event()
        self._not_rotating.set()
        self._rotation_refused: asyncio.Event | None = None
        self.rotations = 0  # planned connection changes completed
        channels.control_new = self._on_control_new

    # -- queries -------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.state == "connected"

    def heartbeat_age(self) -> float | None:
        c = self.conn
        if c is None or c.watchdog is None or self.state != "connected":
            return None
        return c.watchdog.age(self.clock())

    # -- the loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            while not self._closing:
                conn: Connection | None = None
                try:
                    conn = await self._connect()
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:
                    first = not self.ready.done()
                    if classify(exc, connected_before=not first) == "fatal":
                        if isinstance(exc, AuthError):
                            self._fail_auth(exc)
                        else:
                            assert isinstance(exc, HandshakeRejected | CertificateRejected)
                            self._fail_start(exc)
                        return
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.info("connect to %s failed: %s", self.url, self.last_error)
                if conn is not None:
                    await self._session(conn)
                    if self.fatal is not None or self._closing:
                        return
                self.state = "backoff"
                delay = self.backoff.next_delay()
                self.current_delay_s = delay
                ev: Reconnecting | ConnectRetry
                if self.ready.done():
                    ev = Reconnecting(attempt=self.backoff.attempt - 1, delay_s=delay)
                else:  # never connected yet: these are first tries, not reconnects
                    ev = ConnectRetry(
                        attempt=self.backoff.attempt, delay_s=delay, error=self.last_error
                    )
                self.dispatcher.event(ev)
                if self.recorder is not None:
                    self.recorder.connection(
                        ev.name,
                        **{k: v for k, v in ev.to_dict().items() if k not in ("event", "t")},
                    )
                await asyncio.sleep(delay)
                self.metrics.reconnects += 1
        finally:
            self.state = "auth_failed" if isinstance(self.fatal, AuthError) else "closed"
            for c in (self._next_conn, self.conn):
                if c is not None:
                    c.abort("client")

    async def _connect(self, *, primary: bool = True) -> Connection:
        """Connect (and auth, where the venue asks for it). ``primary``: the session's
        connection; else the next one of a rotation, read by ``Channels.on_text_new``."""
        conn = Connection(self)
        if primary:
            self.state = "connecting"
            self.conn = conn
        else:
            self._next_conn = conn
        cfg = self.config
        on_text = self.channels.on_text if primary else self.channels.on_text_new

        def factory() -> StreamListener:
            lst = StreamListener(
                conn,
                cfg.max_frame_bytes,
                cfg.read_slice_s,
                max_fragmented_s=cfg.max_fragmented_message_s,
            )
            conn.listener = lst
            if not self.venue.awaits_open_answer:
                lst._on_text = self._text_handler(on_text)  # up at once: the hot path
            elif self.recorder is not None:
                lst._on_text = self.recorder.wrap_text(conn.on_text, opened=False)
            return lst

        if self._tls is None and self.url.startswith("wss:"):
            self._tls = tls_context(cfg.ca_file)  # verifying: system store or ca_file
        try:
            transport, _ = await asyncio.wait_for(
                self._connector(
                    factory,
                    self.url,
                    ssl_context=self._tls,
                    enable_auto_pong=False,
                    max_frame_size=cfg.max_frame_bytes,
                    websocket_handshake_timeout=cfg.connect_timeout_s,
                ),
                timeout=cfg.connect_timeout_s,
            )
        except ssl.SSLCertVerificationError as exc:
            self._forget(conn)
            raise CertificateRejected(self.url, exc.verify_message or str(exc)) from exc
        except WSHandshakeError as exc:
            self._forget(conn)
            rejected = rejected_upgrade(self.url, exc)
            if rejected is not None:
                raise rejected from exc
            raise
        except BaseException:
            self._forget(conn)
            raise
        if conn.listener is None:
            # picows resolves the handshake with no listener when the peer drops the connection
            # before answering the upgrade (a network cut, a server going away): retried
            self._forget(conn)
            raise StreamError(f"{self.url}: connection lost during the WebSocket upgrade")
        conn.transport = transport
        self.connections_opened += 1
        venue = self.venue
        try:
            ts_ms = fresh_ts_ms()
            for data in venue.open_frames(self._key, self._secret, ts_ms):
                conn.send_bytes(data)
            if venue.awaits_open_answer:
                auth = await asyncio.wait_for(asyncio.shield(conn.authed), cfg.connect_timeout_s)
            else:
                assert venue.heartbeat_ms is not None  # a venue up at once documents its pings
                auth = Opened("", venue.heartbeat_ms)
        except BaseException:
            conn.abort("client")
            self._forget(conn)
            raise
        conn.session = auth.session
        self.heartbeat_ms = auth.heartbeat_ms
        now = self.clock()
        conn.watchdog = HeartbeatWatchdog(cfg.heartbeat_timeout(auth.heartbeat_ms), now)
        conn.connected_at = now
        assert conn.listener is not None
        conn.listener._on_text = self._text_handler(on_text)  # the hot path, no extra hop
        return conn

    def _forget(self, conn: Connection) -> None:
        if self.conn is conn:
            self.conn = None
        if self._next_conn is conn:
            self._next_conn = None

    def _text_handler(
        self, on_text: Callable[[bytes | memoryview], None]
    ) -> Callable[[bytes | memoryview], None]:
        """The books' frame handler; wrapped to record each frame first when recording."""
        if self.recorder is None:
            return on_text
        return self.recorder.wrap_text(on_text, opened=True)

    async def _session(self, conn: Connection) -> None:
        """Run one authenticated connection until it ends, then go blind."""
        self.state = "connected"
        self.cancel_on_disconnect_armed = False
        self.backoff.connected(self.clock())
        self.dispatcher.event(Connected(url=self.url, session=conn.session))
        if self.recorder is not None:
            self.recorder.connection("connected", url=self.url, session=conn.session)
        try:
            cod = (
                self.venue.cancel_on_disconnect_frame()
                if self.config.cancel_on_disconnect
                else None
            )
            if cod is not None:
                conn.send_bytes(cod)
            if self.wanted:
                self._send_subscribe(conn, list(self.wanted), None)
        except StreamError:
            pass  # the socket died right after auth: _watch sees it closed, we go blind
        self._up.set()
        if not self.ready.done():
            self.ready.set_result(None)
        try:
            while True:  # one connection after another while rotations hand over
                rotator = asyncio.create_task(self._rotation(conn), name="tickpipe rotation")
                pinger = (
                    asyncio.create_task(
                        self._ping(conn, *self._client_ping), name="tickpipe client ping"
                    )
                    if self._client_ping is not None
                    else None
                )
                watch = asyncio.create_task(self._watch(conn), name="tickpipe watch")
                try:
                    # the old connection's close is not waited for once the next one took over
                    await asyncio.wait([watch, rotator], return_when=asyncio.FIRST_COMPLETED)
                    nxt = rotator.result() if rotator.done() else None
                    if nxt is None:
                        await watch
                        nxt = await rotator  # the connection that took over, or None
                finally:
                    for task in (watch, rotator, pinger):
                        if task is not None and not task.done():
                            task.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await task
                if nxt is None:
                    break
                conn = nxt
        finally:
            self._up.clear()
            self._cancel_seed_timers()
            await self._go_blind(conn)

    # -- rotation: a planned change of connection (module docstring) ---------------------------
    def rotate_after_s(self) -> float | None:
        """Age of a connection at which the next one is opened (None: the venue keeps
        connections open; only a ``Closing`` notice rotates)."""
        age = self._max_age_s
        if age is None:
            return None
        return age - min(self.config.rotation_margin_s, age / 2)

    async def _rotation(self, old: Connection) -> Connection | None:
        """Beside the session on ``old``: at the planned age (or on a ``Closing`` notice) hand
        every channel over to a new connection and close ``old``. Returns the new connection,
        or None when ``old`` ended first (the session then goes blind as for any loss)."""
        if self.recorder is not None:
            # a recording holds one connection's frames at a time (replay has no second
            # socket): while recording, a planned cut is met by reconnecting as for any loss
            return None
        rotate_after = self.rotate_after_s()
        due = None if rotate_after is None else old.connected_at + rotate_after
        while not old.closed.done() and not self._closing:
            wait = None if due is None else due - self.clock()
            if wait is None or wait > 0:
                notice = asyncio.ensure_future(old.closing_notice.wait())
                either: list[asyncio.Future[Any]] = [notice, old.closed]
                try:
                    await asyncio.wait(either, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    notice.cancel()
                if old.closed.done() or self._closing:
                    return None
            new = await self._open_next(old)
            if new is not None:
                return new
            # the next connection failed: the old one carries on; try again a little later
            old.closing_notice.clear()
            due = self.clock() + self._rotation_retry_s(old)
        return None

    def _rotation_retry_s(self, old: Connection) -> float:
        """Delay before another try at a failed rotation: a quarter of the time left before
        the venue's cut (0.5 s .. 10 s)."""
        if self._max_age_s is None:
            return 5.0
        left = old.connected_at + self._max_age_s - self.clock()
        return max(0.5, min(10.0, left / 4))

    async def _open_next(self, old: Connection) -> Connection | None:
        """Connect the next connection, subscribe every wanted channel on it, hand the channels
        over, close ``old``. None (the old one untouched) when the new one failed."""
        self._not_rotating.clear()
        try:
            try:
                new = await self._connect(primary=False)
            except asyncio.CancelledError:
                raise
            except (StreamError, OSError, TimeoutError, WSError) as exc:
                log.warning("rotation: the next connection to %s failed: %s", self.url, exc)
                return None
            try:
                return await self._hand_over(old, new)
            except BaseException:  # cancelled (the client closes): the new one goes too
                self.channels.end_rotation()
                new.abort("client")
                raise
        finally:
            self._next_conn = None
            self._not_rotating.set()

    async def _hand_over(self, old: Connection, new: Connection) -> Connection | None:
        ch = self.channels
        assert old.listener is not None and new.listener is not None
        refused = self._rotation_refused = asyncio.Event()
        ch.begin_rotation()
        old.listener._on_text = ch.on_text_old
        wanted = list(self.wanted)
        try:
            if wanted:
                req_id = self._next_id
                self._next_id += 1
                self._requests[req_id] = ("rotate", list(wanted))
                _send_frames(new, self.venue.subscribe_frame(wanted, req_id))
        except StreamError:
            refused.set()
        waits: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(ch.rotation_ready.wait()),
            asyncio.ensure_future(refused.wait()),
        ]
        try:
            await asyncio.wait(
                [*waits, old.closed, new.closed],
                timeout=self.config.rotation_handover_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for w in waits:
                w.cancel()
            self._rotation_refused = None
        if self._closing:
            ch.end_rotation()
            new.abort("client")
            return None
        if new.closed.done() or refused.is_set():
            ch.abort_rotation()
            old.listener._on_text = ch.on_text
            new.abort("client")
            log.warning("rotation: the next connection failed before taking over: kept the old")
            return None
        left = ch.rotation_left
        ch.finish_rotation()
        new.listener._on_text = ch.on_text
        old.listener._on_text = ch.drop_text
        self.conn = new
        if new.watchdog is not None:  # its frames flowed during the handover: alive now
            new.watchdog.on_ping(self.clock())
        self.rotations += 1
        old.abort("rotated")
        log.info(
            "rotated to a new connection to %s (%d channels, %d moved by the deadline)",
            self.url,
            len(wanted),
            left,
        )
        return new

    def _on_control_new(self, f: object) -> None:
        """A control value read on a rotation's new connection: its pongs feed its own
        watchdog; answers by request id are handled as any."""
        nxt = self._next_conn
        if isinstance(f, Pong):
            if nxt is not None and nxt.watchdog is not None:
                nxt.watchdog.on_ping(self.clock())
        elif isinstance(f, Closing):
            if nxt is not None:
                nxt.closing_notice.set()  # rotated away from again once it took over
        else:
            self._on_control(f)

    async def _ping(self, conn: Connection, frame: bytes, interval_s: float) -> None:
        """Venues whose client pings (OKX ``ping``): one every ``interval_s`` while up."""
        while not conn.closed.done():
            await asyncio.sleep(interval_s)
            try:
                conn.send_bytes(frame)
            except StreamError:
                return
            self.pings_sent += 1

    async def _watch(self, conn: Connection) -> None:
        wd = conn.watchdog
        assert wd is not None
        stale_after = self.config.stale_after_s
        silence_every = stale_after / 4 if stale_after is not None else None
        # a venue whose client pings never pings us: any frame read (a pong included) shows
        # the link alive, checked every quarter of the timeout (no cost on the frame path)
        frames_every = wd.timeout_s / 4 if self._client_ping is not None else None
        if frames_every is not None:
            silence_every = (
                frames_every if silence_every is None else min(silence_every, frames_every)
            )
        seen_frames = self.metrics.frames
        while not conn.closed.done():
            now = self.clock()
            if frames_every is not None and self.metrics.frames != seen_frames:
                seen_frames = self.metrics.frames
                wd.on_ping(now)
            left = wd.time_left(now)
            if left <= 0:
                log.warning("no ping for %.2fs: connection dead", wd.age(now))
                conn.heartbeat_age_at_loss = wd.age(now)
                conn.abort("heartbeat")
                break
            timeout = left if silence_every is None else min(left, silence_every)
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: see snapshots.py
                async with asyncio.timeout(timeout + 0.005):
                    await asyncio.shield(conn.closed)
            if stale_after is not None and not conn.closed.done():
                self.channels.check_silence(self.clock())
        try:
            await asyncio.wait_for(asyncio.shield(conn.closed), timeout=2.0)
        except TimeoutError:
            log.warning("socket did not report closing within 2s")

    async def _go_blind(self, conn: Connection) -> None:
        """VTS/1 section 8: stale at once, triggers off, own orders cancelled, then back off."""
        self.state = "blind"
        self.backoff.lost(self.clock())
        if conn.lost_reason is not None:
            reason = conn.lost_reason
        elif conn.close_code is not None:
            reason = "closed"
        else:
            reason = "error"
        age = conn.watchdog.age(self.clock()) if conn.watchdog is not None else None
        if conn.heartbeat_age_at_loss is not None:
            age = conn.heartbeat_age_at_loss
        self.dispatcher.event(
            Disconnected(reason=reason, code=conn.close_code, heartbeat_age_s=age)
        )
        if self.recorder is not None:
            self.recorder.connection(
                "disconnected", reason=reason, code=conn.close_code, heartbeat_age_s=age
            )
        self.channels.stream_lost("heartbeat" if reason == "heartbeat" else "disconnected")
        for p in self._pending.values():
            if not p.future.done():
                p.future.set_exception(StreamError(f"connection lost ({reason}) before answer"))
        self._pending.clear()
        self._requests.clear()
        self._partial.clear()
        for h in self._resub_timers.values():
            h.cancel()
        self._resub_timers.clear()
        if conn.close_code is not None and conn.close_code == self.venue.auth_close_code:
            self._fail_auth(AuthError(conn.close_reason or "auth revoked (4001)"))
            return
        scope = self.config.cancel_orders_on_blind
        if scope != "none" and not self._closing and not self.orders_enabled:
            if not self._said_no_orders:  # the kill switch has nothing to do here: say so once
                self._said_no_orders = True
                log.info(
                    "kill switch: %s has no orders in this client, nothing to cancel",
                    self.venue.name,
                )
        elif scope != "none" and not self._closing:
            report = await self.orders.cancel_own(scope)
            self.dispatcher.event(
                OrdersCancelled(
                    cancelled=report.cancelled,
                    failed=report.failed,
                    scope=scope,
                    venue=self.venue.name,
                )
            )

    def _fail_start(self, exc: HandshakeRejected | CertificateRejected) -> None:
        """A wrong stream URL or an untrusted certificate at start-up: ``start()`` raises it at
        once."""
        self.fatal = exc
        self.last_error = str(exc)
        log.info("%s", exc)  # raised to the user by start(): not logged louder
        if not self.ready.done():
            self.ready.set_exception(exc)

    def _fail_auth(self, exc: AuthError) -> None:
        self.fatal = exc
        self.state = "auth_failed"
        self.dispatcher.event(AuthFailed(message=str(exc)))
        if not self.ready.done():
            self.ready.set_exception(exc)

    # -- control frames (from the read path) ---------------------------------------------------
    def _on_control(self, f: object) -> None:
        if isinstance(f, frames.Subscribed):
            self._on_subscribed(f)
        elif isinstance(f, frames.Unsubscribed):
            if f.id is not None:
                self._requests.pop(f.id, None)
            for ch in f.channels:
                self.channels.deactivate(ch)
            self.dispatcher.event(UnsubscribedEvent(channels=list(f.channels)))
            p = self._pending.pop(f.id, None) if f.id is not None else None
            if p is not None and not p.future.done():
                p.result.accepted = list(f.channels)
                p.future.set_result(p.result)
        elif isinstance(f, frames.ErrorFrame):
            self._on_error(f)
        elif isinstance(f, frames.CancelOnDisconnectAck):
            self.cancel_on_disconnect_armed = f.enabled
            self.dispatcher.event(CancelOnDisconnectArmed(enabled=f.enabled))
        elif isinstance(f, Ack):
            self._on_ack(f)
        elif isinstance(f, Refused):
            self._on_refused(f)
        elif isinstance(f, Pong):
            c = self.conn
            if c is not None and c.watchdog is not None:
                c.watchdog.on_ping(self.clock())
        elif isinstance(f, ConnectionGap):
            log.warning("%s connection sequence skipped: every book re-seeds", self.venue.name)
            self.channels.connection_gap()
        elif isinstance(f, Closing):
            log.info("%s announced it will close the connection: rotating", self.venue.name)
            if self.conn is not None:
                self.conn.closing_notice.set()  # the rotation task opens the next one now
        else:
            self.metrics.unexpected_frames += 1

    def _on_ack(self, f: Ack) -> None:
        """A venue answered request ``f.id`` by id: every channel it named is done."""
        if f.channel is not None:
            self._on_channel_ack(f.id, f.channel)
            return
        req = self._requests.pop(f.id, None) if isinstance(f.id, int) else None
        if req is None:
            self.metrics.unexpected_frames += 1
            return
        kind, channels = req
        if kind.startswith("reseed") or kind == "rotate":
            return  # a re-seed's or a rotation's own request: nothing restarts
        p = self._pending.pop(f.id, None)  # type: ignore[arg-type]
        result = p.result if p is not None else SubscribeResult()
        if kind == "unsubscribe":
            for ch in channels:
                self.channels.deactivate(ch)
            self.dispatcher.event(UnsubscribedEvent(channels=list(channels)))
            result.accepted = list(channels)
        else:
            for ch in channels:
                if ch not in self.wanted:  # unsubscribed meanwhile
                    continue
                err = self.channels.activate(ch)
                if err is None:
                    result.accepted.append(ch)
                else:
                    self.wanted.pop(ch, None)
                    result.refused[ch] = err
                    self.dispatcher.event(SubscribeError(channel=ch, code=err))
            self.dispatcher.event(SubscribedEvent(channels=list(result.accepted)))
        if p is not None and not p.future.done():
            p.future.set_result(result)

    def _on_channel_ack(self, req_id: int | str | None, channel: str) -> None:
        """A venue answered one ``channel`` of request ``req_id`` (OKX): a subscribed channel
        starts at once (its snapshot follows on the stream); the request is done once each of
        its channels was answered."""
        req = self._requests.get(req_id) if isinstance(req_id, int) else None
        if req is None or channel not in req[1]:
            self.metrics.unexpected_frames += 1
            return
        assert isinstance(req_id, int)
        kind, left = req
        left.remove(channel)
        result = self._partial.setdefault(req_id, SubscribeResult())
        if kind == "unsubscribe":
            self.channels.deactivate(channel)
            result.accepted.append(channel)
        elif kind == "subscribe" and channel in self.wanted:  # else unsubscribed meanwhile
            err = self.channels.activate(channel)
            if err is None:
                result.accepted.append(channel)
            else:
                self.wanted.pop(channel, None)
                result.refused[channel] = err
                self.dispatcher.event(SubscribeError(channel=channel, code=err))
        if left:
            return
        del self._requests[req_id]
        del self._partial[req_id]
        if kind == "unsubscribe":
            self.dispatcher.event(UnsubscribedEvent(channels=list(result.accepted)))
        elif kind == "subscribe":
            self.dispatcher.event(SubscribedEvent(channels=list(result.accepted)))
        p = self._pending.pop(req_id, None)
        if p is not None and not p.future.done():
            p.result.accepted.extend(result.accepted)
            p.result.refused.update(result.refused)
            p.future.set_result(p.result)

    def _on_refused(self, f: Refused) -> None:
        """A venue refused request ``f.id`` as a whole: each of its channels is refused."""
        req = self._requests.pop(f.id, None) if isinstance(f.id, int) else None
        if req is None:
            log.warning("%s error: %s %s", self.venue.name, f.code, f.message)
            return
        kind, channels = req
        partial = self._partial.pop(f.id, None)  # type: ignore[arg-type]
        if kind == "rotate":
            log.warning("%s refused a rotation's subscribe: %s", self.venue.name, f.message)
            if self._rotation_refused is not None:
                self._rotation_refused.set()
            return
        if kind.startswith("reseed"):
            # the book waits for its snapshot; with none it re-subscribes, backed off
            log.warning("%s refused a re-seed of %s: %s", self.venue.name, channels, f.message)
            return
        p = self._pending.pop(f.id, None)  # type: ignore[arg-type]
        if p is not None and partial is not None:  # channels answered before the refusal
            p.result.accepted.extend(partial.accepted)
            p.result.refused.update(partial.refused)
        for ch in channels:
            if kind == "subscribe":
                self.wanted.pop(ch, None)
            if p is not None:
                p.result.refused[ch] = f.code
            self.dispatcher.event(SubscribeError(channel=ch, code=f.code, message=f.message))
        if p is not None and not p.future.done():
            p.future.set_result(p.result)

    def _on_subscribed(self, f: frames.Subscribed) -> None:
        if f.id is not None:
            req = self._requests.pop(f.id, None)
            if req is not None and req[0] == "rotate":
                return  # a rotation's subscribe: the channels are active already
        accepted: list[str] = []
        refused: dict[str, str] = {}
        for ch in f.channels:
            try:
                err = self.channels.activate(ch)
            except ValueError:  # not KIND:SYMBOL: the gateway confirmed nonsense
                self.metrics.unexpected_frames += 1
                continue
            if err is None:
                accepted.append(ch)
            else:  # confirmed, but we cannot keep it (no instrument listed for the symbol)
                self.wanted.pop(ch, None)
                refused[ch] = err
                self.dispatcher.event(SubscribeError(channel=ch, code=err))
        self.dispatcher.event(SubscribedEvent(channels=accepted))
        p = self._pending.get(f.id) if f.id is not None else None
        if p is not None:
            p.result.accepted = accepted
            p.result.refused.update(refused)
            if p.summary_code is not None:
                # The gateway refused the rest in one frame without naming them (a cap on the
                # size of its answer): whatever was asked and neither accepted nor named is
                # refused with that code, and is not re-sent after a reconnect.
                done = set(accepted) | set(p.result.refused)
                for ch in p.channels:
                    if ch not in done:
                        self.wanted.pop(ch, None)
                        p.result.refused[ch] = p.summary_code
                        self.dispatcher.event(SubscribeError(channel=ch, code=p.summary_code))
            # Refusals may come after `subscribed`: give them one loop turn to land.
            asyncio.get_running_loop().call_soon(self._resolve, f.id)

    def _resolve(self, sub_id: int | None) -> None:
        p = self._pending.pop(sub_id, None) if sub_id is not None else None
        if p is not None and not p.future.done():
            p.future.set_result(p.result)

    def _on_error(self, f: frames.ErrorFrame) -> None:
        if f.channel is not None and f.code in (
            "unknown_channel",
            "too_many_channels",
            "not_subscribed",
        ):
            self.wanted.pop(f.channel, None)
            p = self._pending.get(f.id) if f.id is not None else None
            if p is not None:
                p.result.refused[f.channel] = f.code
            self.dispatcher.event(SubscribeError(channel=f.channel, code=f.code, message=f.message))
        elif f.channel is None and f.id is not None and f.id in self._pending:
            self._pending[f.id].summary_code = f.code  # settled when `subscribed` arrives
            log.warning("gateway refused part of request %s: %s %s", f.id, f.code, f.message)
        else:
            log.warning("gateway error frame: %s %s (channel %s)", f.code, f.message, f.channel)
            if f.channel is not None:
                self.dispatcher.event(
                    SubscribeError(channel=f.channel, code=f.code, message=f.message)
                )

    # -- user requests -------------------------------------------------------------------------
    def _send_subscribe(
        self, conn: Connection, channels: list[str], pending: _Pending | None
    ) -> None:
        sub_id = self._next_id
        self._next_id += 1
        if pending is not None:
            self._pending[sub_id] = pending
        unsub = pending is not None and pending.kind == "unsubscribe"
        # kept until answered (or the connection is lost): a venue may answer by id only
        self._requests[sub_id] = ("unsubscribe" if unsub else "subscribe", list(channels))
        if self.recorder is not None:
            self.recorder.sent(sub_id, "unsubscribe" if unsub else "subscribe", list(channels))
        build = self.venue.unsubscribe_frame if unsub else self.venue.subscribe_frame
        _send_frames(conn, build(channels, sub_id))

    # -- in-band seeding: re-subscribe one channel, wait for its snapshot --------------------------
    def _schedule_resubscribe(self, req: ResubscribeRequest) -> None:
        """A book asks to be re-seeded by re-subscribing its channel, after ``req.delay_s``."""
        old = self._resub_timers.pop(req.channel, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._resub_timers[req.channel] = loop.call_later(
            req.delay_s, self._resubscribe, req.channel, req.epoch
        )

    def _resubscribe(self, channel: str, epoch: int) -> None:
        """Carry out a re-seed: unsubscribe + subscribe ``channel`` (the venue's frames), unless
        the book moved on (another epoch, LIVE again), is gone, or the link is down (the next
        connection re-subscribes every channel anyway). Within the venue's subscribe budget."""
        self._resub_timers.pop(channel, None)
        bc = self.channels.books.get(channel)
        conn = self.conn
        if (
            bc is None
            or channel not in self.wanted
            or bc.sync.epoch != epoch
            or bc.sync.state not in (SyncState.SYNCING, SyncState.RESYNCING)
            or conn is None
            or self.state != "connected"
        ):
            return
        now = self.clock()
        if not self._resub_bucket.take(now):
            wait = self._resub_bucket.wait_time(now)
            loop = asyncio.get_running_loop()
            self._resub_timers[channel] = loop.call_later(wait, self._resubscribe, channel, epoch)
            return
        try:
            for kind in ("reseed-unsubscribe", "reseed-subscribe"):
                req_id = self._next_id
                self._next_id += 1
                self._requests[req_id] = (kind, [channel])
                if self.recorder is not None:
                    self.recorder.sent(req_id, kind, [channel])
                build = (
                    self.venue.unsubscribe_frame
                    if kind == "reseed-unsubscribe"
                    else (self.venue.subscribe_frame)
                )
                _send_frames(conn, build([channel], req_id))
        except StreamError:
            return  # the socket died: going blind re-seeds every book
        self.resubscribes += 1
        log.info("re-seeding %s by re-subscribing it (epoch %d)", channel, epoch)
        self._await_stream_snapshot(channel, epoch)

    def _await_stream_snapshot(self, channel: str, epoch: int) -> None:
        """Arm the bound on the wait for the snapshot a (re)subscribe of ``channel`` brings."""
        old = self._seed_timers.pop(channel, None)
        if old is not None:
            old.cancel()
        timeout = self.config.stream_snapshot_timeout_s
        loop = asyncio.get_running_loop()
        self._seed_timers[channel] = loop.call_later(
            timeout, self._snapshot_overdue, channel, epoch, timeout
        )

    def _snapshot_overdue(self, channel: str, epoch: int, waited_s: float) -> None:
        self._seed_timers.pop(channel, None)
        if self.state == "connected":
            if self.recorder is not None:
                self.recorder.connection(
                    "snapshot_overdue", channel=channel, epoch=epoch, waited_s=waited_s
                )
            self.channels.snapshot_overdue(channel, epoch, waited_s)

    def _cancel_seed_timers(self) -> None:
        for h in self._seed_timers.values():
            h.cancel()
        self._seed_timers.clear()

    async def wait_up(self, timeout: float) -> Connection:
        if self.fatal is not None:
            raise self.fatal
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError:
            raise StreamError(
                f"not connected to {self.url} within {timeout}s ({self.last_error or self.state})"
            ) from None
        assert self.conn is not None
        return self.conn

    async def request(
        self, kind: Literal["subscribe", "unsubscribe"], channels: list[str]
    ) -> SubscribeResult:
        timeout = self.config.subscribe_timeout_s
        try:  # a rotation in progress subscribes what is wanted at its start: wait for it
            await asyncio.wait_for(self._not_rotating.wait(), timeout)
        except TimeoutError:
            raise StreamError(f"{kind} {channels}: a rotation took over {timeout}s") from None
        conn = await self.wait_up(timeout)
        pending = _Pending(kind, asyncio.get_running_loop().create_future(), channels=channels)
        self._send_subscribe(conn, channels, pending)
        try:
            return await asyncio.wait_for(pending.future, timeout)
        except TimeoutError:
            raise StreamError(f"no answer to {kind} {channels} within {timeout}s") from None

    async def close(self) -> None:
        self._closing = True
        self._cancel_seed_timers()
        for h in self._resub_timers.values():
            h.cancel()
        self._resub_timers.clear()
        if self._next_conn is not None:
            self._next_conn.abort("client")
        if self.conn is not None:
            self.conn.abort("client")


_last_ts_ms = [0]


def fresh_ts_ms() -> int:
    """Wall-clock ms for a signed open frame, strictly increasing in this process: two
    connections opened within one ms (shards, rotations, two clients with one key) must not
    sign the same text, which a gateway refuses as a replay."""
    ts = _last_ts_ms[0] = max(int(time.time() * 1000), _last_ts_ms[0] + 1)
    return ts


def _send_frames(conn: Connection, frames: bytes | list[bytes]) -> None:
    """Send what a venue built for one request: one frame, or several (Kraken v2 and Coinbase
    take one message per channel kind, each carrying the request's id where the venue has one)."""
    if isinstance(frames, bytes):
        conn.send_bytes(frames)
    else:
        for frame in frames:
            conn.send_bytes(frame)


def _retrieve(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()
