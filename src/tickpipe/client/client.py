"""``tickpipe.Client``: the facade a trading bot uses. See docs/ARCHITECTURE.md (issue 8).

::

    async with Client(stream_url=..., rest_url=..., key=..., secret=...) as client:
        await client.subscribe(["orderbook:AAPL", "ticker:BTC-USD", "trades:XAU-USD"])
        await client.wait_synced("AAPL", timeout=10)
        book = client.book("AAPL")          # BookView: .synced .seq .state .bids(n) .asks(n)
        order = await client.place_limit_order("AAPL", "buy", "180.00", "10")
        await client.cancel_all_orders()

Tasks it owns (all ended by ``close()`` / ``__aexit__``: no task, socket or session left):
the supervisor (connection loop), the snapshot scheduler, the dispatcher (user callbacks),
the frame-rate sampler (one timer every 0.5 s) and the orders' background cancel retries.

Once closed, every call that would talk to the gateway or wait on it (``start``, ``subscribe``,
``unsubscribe``, ``wait_synced``, the order calls, new ``events()`` and other feeds or
callbacks) raises :class:`~tickpipe.errors.ClientClosedError` ("client is closed") at once, and
calls waiting when ``close()`` runs end with it. Reading what is left (``stats()``, ``book()``,
``books()``) stays allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random as _random
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import aiohttp

from tickpipe.bus.link import BusConnector, split_servers
from tickpipe.bus.schema import DEFAULT_STREAM
from tickpipe.bus.venue import BusVenue
from tickpipe.client.channels import Channels
from tickpipe.client.config import ClientConfig, tls_context
from tickpipe.client.credentials import env_prefix, resolve_credentials, venue_credentials
from tickpipe.client.dispatch import Dispatcher, Feed, TickerUpdate
from tickpipe.client.events import DeadManSwitch, OrdersCancelled, SubscribeError
from tickpipe.client.metrics import RATE_SAMPLE_EVERY_S, RATE_WINDOW_S, Metrics, RateMeter
from tickpipe.client.orders import CancelReport, Order, OrderBackend, OrderManager, VtsOrders
from tickpipe.client.recorder import Recorder
from tickpipe.client.rest import CERTIFICATE, RestClient
from tickpipe.client.signed_orders import SignedOrders
from tickpipe.client.snapshots import SnapshotOutcome, SnapshotScheduler
from tickpipe.client.supervisor import SubscribeResult, Supervisor
from tickpipe.client.tap import BookTap
from tickpipe.client.venue import (
    Venue,
    base_url,
    exact_depth,
    max_streams_per_connection,
    resolve_venue,
    weight_budget,
)
from tickpipe.client.views import BookView
from tickpipe.errors import (
    BlindError,
    CertificateRejected,
    ClientClosedError,
    ConfigError,
    CredentialsRejected,
    FrameError,
    RestError,
    StreamError,
    SyncTimeout,
    UnknownOrderError,
    UnsupportedError,
)
from tickpipe.protocol import frames
from tickpipe.protocol.frames import Snapshot
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.watchdog import SilenceDetector
from tickpipe.venues.trading import Credentials, GuardStream, OrderCodec

log = logging.getLogger("tickpipe.client")
# how soon the dead man's switch is armed when a healthy period begins or an order opens on a
# new symbol (a cheap check of the connections and own orders, no request unless one is due)
DEAD_MAN_POLL_S = 0.2
GUARD_ANSWER_TIMEOUT_S = 10.0  # a private stream's answer to auth, subscribe or ping

DEFAULT_STREAM_URL = "ws://127.0.0.1:8765/v1/stream"
DEFAULT_REST_URL = "http://127.0.0.1:8765"

T = TypeVar("T")


@dataclass(frozen=True)
class BookStatus:
    channel: str
    state: str
    reason: str
    synced: bool
    seq: int | None
    age_s: float | None
    buffered: int
    resyncs: int


@dataclass(frozen=True)
class ShardStatus:
    """One connection of a client whose venue limits streams per connection (a shard)."""

    index: int
    connection: str
    channels: int
    session: str
    heartbeat_age_s: float | None
    connections_opened: int
    rotations: int


@dataclass
class _Shard:
    """One connection's supervisor and the channels it carries (its own books' state)."""

    index: int
    channels: Channels
    sup: Supervisor
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of the client's counters and gauges, for dashboards.

    ``frames_per_s`` is the frame rate over about the last ``RATE_WINDOW_S`` (5 s), from the
    counter sampled every 0.5 s by the client: a single call already reports it.
    ``callback_errors`` counts every error raised by user callbacks, ``callback_error_counts``
    the same per callback (``kind:qualified name``).
    """

    connection: str
    url: str
    session: str
    heartbeat_age_s: float | None
    heartbeat_ms: int | None
    frames: int
    bytes: int
    frames_per_s: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    gaps: dict[str, int]
    duplicates: int
    bad_frames: int
    resyncs: int
    reconnects: int
    connections_opened: int
    backoff_delay_s: float
    snapshot_requests: int
    snapshot_429: int
    snapshot_errors: int
    snapshots_queued: int
    snapshots_in_flight: int
    trades_missed: int
    callback_errors: int
    overflow_dropped: int
    queue_depth: int
    cancel_on_disconnect: bool
    own_open_orders: int
    last_kill_switch: dict[str, Any] | None
    books: dict[str, BookStatus] = field(default_factory=dict)
    channel_seqs: dict[str, int | None] = field(default_factory=dict)
    ticker_gaps: int = 0
    callback_error_counts: dict[str, int] = field(default_factory=dict)
    rotations: int = 0  # planned connection changes (venues that cut connections at an age)
    shards: list[ShardStatus] = field(default_factory=list)  # one per connection


def _check_url(name: str, url: str, schemes: tuple[str, ...]) -> str:
    if not isinstance(url, str):
        raise ConfigError(f"{name} must be a string URL, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{name} must be a {'/'.join(schemes)} URL with a host, got {url!r}")
    return url


def _channel_list(channels: Sequence[str] | str, venue: Venue | None = None) -> list[str]:
    """Channels checked by ``venue`` (None: as ``KIND:SYMBOL``), duplicates dropped."""
    parse = frames.split_channel if venue is None else venue.parse_channel
    if isinstance(channels, str):
        channels = [channels]
    out: list[str] = []
    for ch in channels:
        if not isinstance(ch, str):
            raise ConfigError(f"channel names are strings, got {ch!r}")
        try:
            parse(ch)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if ch not in out:
            out.append(ch)
    return out


class Client:
    """One multiplexed connection to a venue, exact local books, safe recovery.

    A venue that caps the streams of a connection (its adapter's ``max_streams_per_connection``)
    gets several connections (shards), one supervisor each, behind this one client: one event
    stream, one ``stats()`` (``shards`` lists each), a loss stales only that connection's books.

    ``venue`` (keyword, default ``"vts"``): ``"vts"`` (VTS/1, the reference gateway) or
    ``"binance"`` (Binance spot public market data; no orders: the order calls raise
    :class:`~tickpipe.errors.UnsupportedError`). For VTS/1 ``stream_url`` and ``rest_url`` are
    used whole (defaults ``ws://127.0.0.1:8765/v1/stream``, ``http://127.0.0.1:8765``); for
    another venue they replace only the scheme, host and port of the venue's documented base
    URLs (default: the venue's own) and its documented paths are appended (``/ws``,
    ``/api/v3/depth``): see ``tickpipe.client.venue``.

    ``key``/``secret`` default to ``TICKPIPE_KEY``/``TICKPIPE_SECRET`` (else the demo key).
    Every other keyword is a :class:`~tickpipe.client.config.ClientConfig` knob (or pass
    ``config=``). ``clock`` (monotonic seconds) and ``random`` (U[0,1)) can be injected.
    ``recorder`` (``tickpipe.client.recorder.Recorder``, default None) is shown everything
    received, for ``tickpipe record``.
    """

    def __init__(
        self,
        stream_url: str | None = None,
        rest_url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        *,
        venue: str | Venue = "vts",
        config: ClientConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
        recorder: Recorder | None = None,
        source: str | None = None,
        passphrase: str | None = None,
        **knobs: Any,
    ) -> None:
        self.venue = v = resolve_venue(venue)
        self.recorder = recorder  # tickpipe record (client/recorder.py)
        self.source = source
        self._connector: BusConnector | None = None
        if source is not None:  # books rebuilt from a bus (tickpipe publish), not the venue
            v = self._bus_venue(v, source, stream_url, rest_url, recorder)
            self.stream_url, self.rest_url = source, v.rest_base_url
        elif v.stream_path is None:  # the URLs are used whole (VTS/1)
            self.stream_url = _check_url(
                "stream_url",
                DEFAULT_STREAM_URL if stream_url is None else stream_url,
                ("ws", "wss"),
            )
            self.rest_url = _check_url(
                "rest_url", DEFAULT_REST_URL if rest_url is None else rest_url, ("http", "https")
            )
        else:
            self.stream_url = (
                base_url("stream_url", stream_url, v.stream_base_url, ("ws", "wss")) + v.stream_path
            )
            self.rest_url = base_url("rest_url", rest_url, v.rest_base_url, ("http", "https"))
        if config is not None and knobs:
            raise ConfigError("pass either config= or keyword knobs, not both")
        self.config = config if config is not None else ClientConfig.from_kwargs(**knobs)
        # a real venue's orders (issue 17): its codec, and the key from the arguments, the
        # environment (TICKPIPE_<VENUE>_KEY...) or credentials_file; none: market data only
        codec_of = getattr(self.venue, "order_codec", None)
        self._codec: OrderCodec | None = codec_of() if callable(codec_of) else None
        self._venue_creds: Credentials | None = None
        if self._codec is not None:
            self._venue_creds = venue_credentials(
                self.venue.name,
                key=key,
                secret=secret,
                passphrase=passphrase,
                credentials_file=self.config.credentials_file,
                needs_passphrase=self._codec.needs_passphrase,
            )
            key = secret = None  # the venue's key is not VTS/1's
        self.key, secret = resolve_credentials(key, secret)  # a half-set pair: ConfigError
        self._secret = secret
        self._clock = clock
        self._random = random
        self.metrics = Metrics()
        self._rate = RateMeter(RATE_WINDOW_S)
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._closed = False
        self._closed_ev = asyncio.Event()
        self.dispatcher = Dispatcher(
            self.metrics, self.config.data_queue_size, self.config.event_queue_size, clock
        )
        self._sup: Supervisor | None = None
        self._scheduler: SnapshotScheduler | None = None
        self._rest: RestClient | None = None
        self._orders: OrderManager | None = None
        self._channels: Channels | None = None
        # one connection per shard (venue's max_streams_per_connection); _sup and _channels
        # are the first shard's (the only one on a venue with no limit)
        self._shards: list[_Shard] = []
        self._streams_limit = max_streams_per_connection(v)
        self._instruments: dict[str, Instrument] = {}
        self._exact_depth: int | None = None
        self._sub_lock = asyncio.Lock()
        self._gap_cancels: dict[str, asyncio.Task[None]] = {}
        self._tap: BookTap | None = None

    def _bus_venue(
        self,
        inner: Venue,
        source: str,
        stream_url: str | None,
        rest_url: str | None,
        recorder: Recorder | None,
    ) -> BusVenue:
        """``source``: NATS URL(s) a collector publishes ``inner``'s books to (ConfigError
        for anything that cannot work with it)."""
        if not isinstance(source, str):
            raise ConfigError(f"source must be a nats:// URL string, got {source!r}")
        try:
            split_servers(source)
        except ValueError as exc:
            raise ConfigError(f"source: {exc}") from None
        if stream_url is not None or rest_url is not None:
            raise ConfigError(
                "source= reads the bus, not the venue: stream_url and rest_url do not apply"
            )
        if recorder is not None:
            raise ConfigError("a bus consumer (source=) does not record: record at the venue")
        bus = BusVenue(inner, source, DEFAULT_STREAM)
        self.venue = bus
        self._connector = BusConnector(bus.name, bus.stream)
        return bus

    # -- life --
    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect and authenticate (retrying up to ``first_connect_timeout_s``).

        Raises :class:`AuthError` when the gateway refuses the key, :class:`StreamError` when
        no connection could be made in time. On failure everything started is stopped (the
        client is then closed: make a new one to try again).
        """
        self._check_open("start")
        if self._started:
            raise StreamError("client already started")
        self._started = True
        cfg = self.config
        self._rest = RestClient(
            self.rest_url,
            self.key,
            self._secret,
            cfg.rest_timeout_s,
            max_body_bytes=cfg.max_rest_body_bytes,
            max_retry_after_s=cfg.max_retry_after_s,
            max_snapshot_levels=cfg.max_snapshot_levels,
            sends_key=self.venue.sends_key,
            rate_limit_statuses=self.venue.rate_limit_statuses,
            ca_file=cfg.ca_file,
        )
        backend: OrderBackend = VtsOrders(self._rest)
        self._signed: SignedOrders | None = None
        if self._codec is not None and self._venue_creds is not None:
            self._signed = SignedOrders(self._rest, self._codec, self._venue_creds)
            backend = self._signed
        self._orders = OrderManager(backend, cfg.order_retry, self._random)
        self._orders.on_background_report = self._on_background_cancel
        weight = weight_budget(self.venue, cfg.snapshot_depth)  # a weight window, or None
        rate_per_s, burst = (
            (cfg.snapshot_rate_per_s, cfg.snapshot_burst)
            if weight is not None
            else self.venue.snapshot_budget(
                cfg.snapshot_depth, cfg.snapshot_rate_per_s, cfg.snapshot_burst
            )
        )
        self._scheduler = SnapshotScheduler(
            self._fetch_snapshot,
            self._on_snapshot,
            concurrency=cfg.snapshot_concurrency,
            rate_per_s=rate_per_s,
            burst=burst,
            jitter_s=cfg.snapshot_jitter_s,
            clock=self._clock,
            random=self._random,
            weight=weight,
        )
        if weight is not None:
            self._rest.used_weight_header = weight.used_weight_header
            self._rest.on_used_weight = self._scheduler.observe_used_weight
        self._exact_depth = exact_depth(weight, cfg.snapshot_depth)
        if self.recorder is not None:
            self._rest.recorder = self._scheduler.recorder = self.recorder
        self._tasks = [
            asyncio.create_task(self._scheduler.run(), name="tickpipe snapshots"),
            asyncio.create_task(self.dispatcher.run(), name="tickpipe dispatch"),
            asyncio.create_task(self._sample_rate(), name="tickpipe frame rate"),
        ]
        if (
            self._signed is not None
            and self._signed.codec.dead_man_refresh_s is not None
            and cfg.dead_man_timeout_s is not None
        ):
            self._tasks.append(
                asyncio.create_task(self._dead_man_loop(self._signed), name="tickpipe dead man")
            )
            guard = getattr(self._signed.codec, "guard_stream", None)
            if isinstance(guard, GuardStream):
                self._tasks.append(
                    asyncio.create_task(
                        self._guard_stream_loop(self._signed, guard), name="tickpipe guard"
                    )
                )
        first = self._new_shard()
        self._sup, self._channels = first.sup, first.channels
        try:
            await self._load_instruments()
            await asyncio.wait_for(asyncio.shield(first.sup.ready), cfg.first_connect_timeout_s)
        except TimeoutError:
            err = first.sup.last_error or "no answer"
            await self.close()
            raise StreamError(
                f"could not connect to {self.stream_url} within "
                f"{cfg.first_connect_timeout_s}s: {err}"
            ) from None
        except BaseException:
            await self.close()
            raise

    def _new_shard(self) -> _Shard:
        """A connection of its own (its supervisor started) for channels past the venue's
        ``max_streams_per_connection``; shard 0 is the client's only one on other venues."""
        cfg = self.config
        cell: list[Supervisor] = []
        ch = Channels(
            metrics=self.metrics,
            dispatcher=self.dispatcher,
            scheduler_ref=lambda: self._require(self._scheduler),
            sync_config=cfg.sync,
            clock=self._clock,
            random=self._random,
            silence=SilenceDetector(cfg.stale_after_s),
            connected=lambda: bool(cell) and cell[0].connected,
            venue=self.venue,
        )
        ch.instruments = self._instruments  # one dict, shared by every shard
        ch.tap = self._tap
        ch.exact_depth = self._exact_depth
        if cfg.cancel_orders_on_gap and self.orders_enabled:
            ch.on_gap = self._cancel_on_gap
        sup = Supervisor(
            stream_url=self.stream_url,
            key=self.key,
            secret=self._secret,
            config=cfg,
            channels=ch,
            dispatcher=self.dispatcher,
            orders=self._require(self._orders),
            metrics=self.metrics,
            clock=self._clock,
            random=self._random,
            venue=self.venue,
            connector=self._connector,
        )
        sup.orders_enabled = self.orders_enabled
        cell.append(sup)
        sup.recorder = self.recorder
        shard = _Shard(len(self._shards), ch, sup)
        shard.task = asyncio.create_task(sup.run(), name=f"tickpipe supervisor {shard.index}")
        self._shards.append(shard)
        return shard

    @property
    def exact_depth(self) -> int | None:
        """Levels a side the books' seeding snapshots carry (None: the whole book)."""
        return self._exact_depth

    def set_tap(self, tap: BookTap | None) -> None:
        """Tell ``tap`` (``client.tap.BookTap``) every exact book's changes, tickers and trades,
        on the read path, in order (``tickpipe publish``'s collector). None removes it."""
        self._tap = tap
        for shard in self._shards:
            shard.channels.tap = tap

    def _owner(self, channel: str) -> _Shard | None:
        """The shard a wanted channel is on, or None."""
        for shard in self._shards:
            if channel in shard.sup.wanted:
                return shard
        return None

    def _holder(self, channel: str) -> Channels | None:
        """The channels (state) holding ``channel``'s book, ticker or trades, or None."""
        for shard in self._shards:
            if channel in shard.channels.books or channel in shard.channels.seqs:
                return shard.channels
        return None

    def _on_snapshot(self, out: SnapshotOutcome) -> None:
        """A snapshot fetched for a book: to the shard whose connection carries it."""
        ch = self._holder(out.channel)
        if ch is not None:
            ch.on_snapshot(out)

    async def _sample_rate(self) -> None:
        """Samples the frame counter for ``stats().frames_per_s``: one timer, off the read path."""
        while True:
            self._rate.sample(self._clock(), self.metrics.frames)
            await asyncio.sleep(RATE_SAMPLE_EVERY_S)

    async def _load_instruments(self) -> None:
        """The venue's instruments (VTS/1: GET /v1/instruments), retried (with the reconnect
        backoff) until the first timeout."""
        rest = self._require(self._rest)
        deadline = self._clock() + self.config.first_connect_timeout_s
        policy = self.config.reconnect
        attempt = 0
        while True:
            try:
                insts = await self._fetch_instruments(rest)
                break
            except FrameError as exc:  # the gateway answered, but not VTS/1: retrying won't help
                raise StreamError(
                    f"instruments from {self.rest_url} are not valid {self.venue.title}: {exc}"
                ) from exc
            except (RestError, StreamError) as exc:  # unreachable, 5xx, 429...: retried
                if isinstance(exc, RestError) and exc.code == CERTIFICATE:  # a setting to fix
                    raise CertificateRejected(self.rest_url, exc.message) from exc
                delay = policy.ceiling(attempt)  # base x 2^attempt up to cap, not jittered
                if self._clock() + delay > deadline:
                    raise StreamError(
                        f"cannot load instruments from {self.rest_url}: {exc}"
                    ) from exc
                await asyncio.sleep(delay)
                attempt += 1
        if isinstance(self.venue, BusVenue) and self.venue.exact_depth_seen is not None:
            self._exact_depth = self.venue.exact_depth_seen  # the collector's books' depth
            for shard in self._shards:
                shard.channels.exact_depth = self._exact_depth
        new = {i.symbol: i for i in insts}
        self._instruments.clear()  # in place: every shard's channels share this dict
        self._instruments.update(new)

    async def _fetch_instruments(self, rest: RestClient) -> list[Instrument]:
        """From the venue's REST endpoint, or from the bus (a bus source)."""
        if isinstance(self.venue, BusVenue):
            return await self.venue.load_instruments(self.config.connect_timeout_s)
        return await rest.venue_instruments(self.venue)

    async def close(self) -> None:
        """Stop everything: socket closed, tasks ended, REST session released. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._closed_ev.set()  # calls waiting on the client end with ClientClosedError
        shards = list(self._shards)
        for shard in shards:
            await shard.sup.close()
        sup_tasks = {sh.task for sh in shards if sh.task is not None}
        for shard in shards:
            if shard.task is not None and not shard.sup.connected:
                shard.task.cancel()  # sleeping in backoff or connecting: nothing to wind down
        if sup_tasks:
            await asyncio.wait(sup_tasks, timeout=3.0)  # never raises; a laggard is cancelled
        every = [sh.task for sh in shards if sh.task is not None] + self._tasks
        for t in every:
            t.cancel()
        for t in every:
            try:
                await t
            except asyncio.CancelledError:
                pass
            except Exception:  # a bug that ended a task early must not vanish at close
                log.exception("client task %r had ended with an error", t.get_name())
        self._tasks = []
        for shard in shards:
            conn = shard.sup.conn
            if conn is not None and conn.transport is not None:
                conn.abort("client")
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.transport.wait_disconnected(), 2.0)
        for t in list(self._gap_cancels.values()):
            t.cancel()
        for t in list(self._gap_cancels.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._orders is not None:
            await self._orders.close()
        if self._rest is not None:
            await self._rest.close()
        self.dispatcher.close_feeds()
        self.dispatcher.flush_error_summaries()

    @property
    def orders_enabled(self) -> bool:
        """The order calls work: VTS/1, or a real venue with an order codec and a key."""
        return self.venue.supports_orders or (
            self._codec is not None and self._venue_creds is not None
        )

    async def _dead_man_loop(self, signed: SignedOrders) -> None:
        """Keep the venue's dead man's switch armed while every connection is up; stop
        refreshing while blind (the venue's timer then cancels what our own cancels could
        not). Reported as ``dead_man_switch`` when (re)armed or when arming failed.

        Each timer (each symbol's, where the venue's is per symbol) is refreshed every
        ``min(codec.dead_man_refresh_s, dead_man_timeout_s / 3)``, and armed at once (within
        :data:`DEAD_MAN_POLL_S`) when a healthy period begins or an order opens on a new symbol:
        after a blind spell the venue's timer from before it is still running, and an order
        placed then must not wait a whole refresh period for it to be pushed back."""
        codec = signed.codec
        timeout = self.config.dead_man_timeout_s
        assert timeout is not None and codec.dead_man_refresh_s is not None
        every = min(codec.dead_man_refresh_s, timeout / 3)
        poll = min(every, DEAD_MAN_POLL_S)
        loop = asyncio.get_running_loop()
        # a venue whose switch watches a private stream (Bybit DCP): this sets its window,
        # and the switch is reported armed by _guard_stream_loop once that stream is held
        guarded = isinstance(getattr(codec, "guard_stream", None), GuardStream)
        armed = False
        sent: dict[str | None, float] = {}  # timer -> when last (re)armed in this healthy period
        opened = -1  # connections made so far: a new one since the last look = a blind spell
        while True:
            up = bool(self._shards) and all(sh.sup.connected for sh in self._shards)
            now_opened = sum(sh.sup.connections_opened for sh in self._shards)
            if not up or now_opened != opened:  # blind, or was (however briefly): re-arm
                armed = False
                sent.clear()
            opened = now_opened
            if up:
                orders = self._require(self._orders)
                symbols: list[str | None] = (
                    sorted({o.symbol for o in orders.own.values()})  # type: ignore[misc]
                    if codec.dead_man_per_symbol
                    else [None]
                )
                sent = {s: t for s, t in sent.items() if s in symbols}
                now = loop.time()
                due = [s for s in symbols if now - sent.get(s, -math.inf) >= every]
                try:
                    for sym in due:
                        sent[sym] = now  # a failed try is retried a refresh period later
                        await signed.arm_dead_man(timeout, sym)
                    if not armed and symbols and due:
                        armed = True
                        if not guarded:  # else armed once the guard stream is held
                            self.dispatcher.event(
                                DeadManSwitch(venue=self.venue.name, armed=True, timeout_s=timeout)
                            )
                except CredentialsRejected as exc:
                    self.dispatcher.event(
                        DeadManSwitch(
                            venue=self.venue.name, armed=False, timeout_s=None, error=str(exc)
                        )
                    )
                    return  # a wrong key: no retry loop
                except RestError as exc:
                    armed = False
                    self.dispatcher.event(
                        DeadManSwitch(
                            venue=self.venue.name, armed=False, timeout_s=timeout, error=str(exc)
                        )
                    )
            await asyncio.sleep(poll)

    async def _guard_stream_loop(self, signed: SignedOrders, guard: GuardStream) -> None:
        """Hold the private stream the venue's dead man's switch watches (Bybit DCP) while
        every market connection is up; drop it when they are not, so the venue's timer starts
        (a network cut drops it too). A refused key ends the loop (reported, never retried);
        anything else is retried after the reconnect backoff's ceiling."""
        assert self.venue.stream_path is not None and self._venue_creds is not None
        url = self.stream_url[: -len(self.venue.stream_path)] + guard.path
        creds = self._venue_creds
        policy = self.config.reconnect
        attempt = 0
        tls = tls_context(self.config.ca_file) if url.startswith("wss:") else None
        async with aiohttp.ClientSession() as session:
            while True:
                # up, and the venue's switch set through REST first (a refused key stops here)
                while not (
                    self._shards
                    and all(sh.sup.connected for sh in self._shards)
                    and signed.dead_man_armed > 0
                ):
                    if signed.rejected is not None:
                        return
                    await asyncio.sleep(DEAD_MAN_POLL_S)
                try:
                    async with session.ws_connect(
                        url, ssl=tls if tls is not None else True,
                        timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                    ) as ws:  # fmt: skip
                        ts_ms = int(time.time() * 1000) + signed.offset_ms
                        for frame in guard.open_frames(creds, ts_ms):
                            await ws.send_str(frame.decode())
                            refused = guard.check(await self._guard_answer(ws))
                            if refused is not None:
                                self.dispatcher.event(
                                    DeadManSwitch(
                                        venue=self.venue.name,
                                        armed=False,
                                        timeout_s=None,
                                        error=f"{guard.path}: {refused}",
                                    )
                                )
                                if "auth" in refused:
                                    return  # a wrong key: no retry loop
                                raise StreamError(refused)
                        attempt = 0
                        log.info(
                            "%s: holding %s for the venue's dead man's switch",
                            self.venue.name,
                            guard.path,
                        )
                        self.dispatcher.event(
                            DeadManSwitch(
                                venue=self.venue.name,
                                armed=True,
                                timeout_s=self.config.dead_man_timeout_s,
                            )
                        )
                        last_ping = time.monotonic()
                        while all(sh.sup.connected for sh in self._shards) and not ws.closed:
                            if time.monotonic() - last_ping >= guard.ping_every_s:
                                last_ping = time.monotonic()
                                await ws.send_str(guard.ping_frame().decode())
                                refused = guard.check(await self._guard_answer(ws))
                                if refused is not None:
                                    raise StreamError(refused)
                            await asyncio.sleep(DEAD_MAN_POLL_S)
                        # blind (or the venue closed it): dropped, the venue's timer runs
                except (aiohttp.ClientError, OSError, TimeoutError, StreamError) as exc:
                    log.warning("%s %s: %s", self.venue.name, guard.path, exc)
                    await asyncio.sleep(policy.ceiling(attempt))
                    attempt += 1

    @staticmethod
    async def _guard_answer(ws: aiohttp.ClientWebSocketResponse) -> str:
        msg = await asyncio.wait_for(ws.receive(), GUARD_ANSWER_TIMEOUT_S)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise StreamError(f"private stream answered {msg.type.name}, not text")
        return str(msg.data)

    def _check_orders(self, what: str) -> None:
        if self._codec is not None and self._venue_creds is None:
            pre = env_prefix(self.venue.name)
            raise UnsupportedError(
                f"{what}: no {self.venue.name} API key: pass key= and secret= (or set "
                f"{pre}_KEY and {pre}_SECRET, or credentials_file=)",
                self.venue.name,
            )
        if not self.orders_enabled:
            raise UnsupportedError(
                f"{what}: venue {self.venue.name!r} has no orders in tickpipe (market data "
                "only; orders on venues are issue 17)",
                self.venue.name,
            )

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise ClientClosedError(
                f"client is closed: {what} refused (a closed client sends nothing; "
                "make a new Client)"
            )

    async def _unless_closed(self, what: str, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro``; if the client closes meanwhile, cancel it and raise ClientClosedError."""
        if self._closed:
            coro.close()
            self._check_open(what)
        task: asyncio.Task[T] = asyncio.ensure_future(coro)
        closed = asyncio.ensure_future(self._closed_ev.wait())
        try:
            await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        if task.cancelled():
            self._check_open(what)
        return task.result()

    @staticmethod
    def _require(x: Any) -> Any:
        if x is None:
            raise StreamError("client not started: use 'async with Client(...)' or start()")
        return x

    # -- internals wired into parts --
    async def _fetch_snapshot(self, channel: str) -> Snapshot:
        _, symbol = self.venue.parse_channel(channel)
        rest: RestClient = self._require(self._rest)
        snap = await rest.venue_snapshot(self.venue, symbol, self.config.snapshot_depth)
        self.metrics.snapshot_ok += 1
        return snap

    def _cancel_on_gap(self, symbol: str) -> None:
        """Read path hook: a book broke. Cancel our orders in it, off the read path."""
        orders = self._orders
        if (
            self._closed
            or orders is None
            or not any(o.symbol == symbol for o in orders.own.values())
        ):
            return
        if symbol in self._gap_cancels:
            return  # one in flight already covers every order of the symbol
        task = asyncio.create_task(self._run_gap_cancel(orders, symbol), name="tickpipe gap")
        self._gap_cancels[symbol] = task

    async def _run_gap_cancel(self, orders: OrderManager, symbol: str) -> None:
        try:
            report = await orders.cancel_own("own", symbol=symbol)
            self.dispatcher.event(
                OrdersCancelled(
                    cancelled=report.cancelled,
                    failed=report.failed,
                    scope=report.scope,
                    venue=self.venue.name,
                )
            )
        finally:
            self._gap_cancels.pop(symbol, None)

    def _on_background_cancel(self, report: CancelReport) -> None:
        self.dispatcher.event(
            OrdersCancelled(
                cancelled=report.cancelled,
                failed=report.failed,
                scope=report.scope,
                background=True,
                venue=self.venue.name,
            )
        )

    # -- subscriptions --
    async def subscribe(self, channels: Sequence[str] | str) -> SubscribeResult:
        """Subscribe (``KIND:SYMBOL``). Returns accepted and refused channels; refusals are
        also reported as ``subscribe_error`` events. Kept across reconnects."""
        self._check_open("subscribe")
        chans = _channel_list(channels, self.venue)
        sup: Supervisor = self._require(self._sup)
        ch: Channels = self._require(self._channels)
        return await self._unless_closed("subscribe", self._subscribe(sup, ch, chans))

    async def _subscribe(self, sup: Supervisor, ch: Channels, chans: list[str]) -> SubscribeResult:
        missing = [
            c
            for c in chans
            if c.startswith("orderbook:") and c.partition(":")[2] not in ch.instruments
        ]
        if missing:
            # a symbol listed since start: reload. If that fails the subscribe still goes out;
            # the gateway refuses what it does not list, and the failure is in the log.
            try:
                await self._load_instruments()
            except StreamError as exc:
                log.warning("subscribe: instruments reload failed: %s", exc)
        local: dict[str, str] = {}
        if self.venue.checks_symbols_locally:  # the venue would ack an unknown one silently
            for c in chans:
                symbol = self.venue.parse_channel(c)[1]
                if symbol not in ch.instruments:
                    local[c] = "unknown_instrument"
                    self.dispatcher.event(
                        SubscribeError(
                            channel=c,
                            code="unknown_instrument",
                            message=f"{self.venue.name} lists no instrument {symbol!r}",
                        )
                    )
            chans = [c for c in chans if c not in local]
        result = await self._subscribe_sharded(chans) if chans else SubscribeResult()
        result.refused.update(local)
        return result

    async def _subscribe_sharded(self, chans: list[str]) -> SubscribeResult:
        """Each channel to the connection carrying it already, else to the first with room
        under the venue's ``max_streams_per_connection`` (a new connection when none has)."""
        limit = self._streams_limit
        async with self._sub_lock:  # two subscribes never fill the same room twice
            plan: dict[int, list[str]] = {}
            fresh: list[_Shard] = []
            load = {sh.index: len(sh.sup.wanted) for sh in self._shards}
            for c in chans:
                owner = self._owner(c)
                if owner is None:
                    room = [sh for sh in self._shards if limit is None or load[sh.index] < limit]
                    if room:
                        owner = room[0]
                    elif self.recorder is not None and not fresh:
                        # a recording (and its replay) follows one connection: say so
                        # before anything is subscribed, rather than record a wrong session
                        raise ConfigError(
                            f"subscribe {chans}: recording covers one connection, and "
                            f"{self.venue.title} carries at most {limit} streams a "
                            f"connection ({sum(load.values())} wanted already)"
                        )
                    else:
                        owner = self._new_shard()
                        fresh.append(owner)
                        load[owner.index] = 0
                    load[owner.index] += 1
                plan.setdefault(owner.index, []).append(c)
            for sh in fresh:  # connected before its channels are wanted: one subscribe each
                await sh.sup.wait_up(self.config.first_connect_timeout_s)
            for i, cs in plan.items():
                for c in cs:
                    self._shards[i].sup.wanted[c] = None
        return await self._requests("subscribe", plan)

    async def _requests(
        self, kind: Literal["subscribe", "unsubscribe"], plan: dict[int, list[str]]
    ) -> SubscribeResult:
        """One request per connection, at once; the answers merged (the first error raised
        once every answer is in)."""
        answers = await asyncio.gather(
            *(self._shards[i].sup.request(kind, cs) for i, cs in plan.items()),
            return_exceptions=True,
        )
        result = SubscribeResult()
        for a in answers:
            if isinstance(a, BaseException):
                raise a
            result.accepted.extend(a.accepted)
            result.refused.update(a.refused)
        return result

    async def unsubscribe(self, channels: Sequence[str] | str) -> SubscribeResult:
        """Unsubscribe. Returns the channels unsubscribed (``accepted``) and the refused ones
        with their code, as :meth:`subscribe` does: a channel this client never subscribed is
        refused as ``not_subscribed`` (also reported as a ``subscribe_error`` event)."""
        self._check_open("unsubscribe")
        chans = _channel_list(channels, self.venue)
        self._require(self._sup)
        owners = {c: self._owner(c) for c in chans}
        refused = {c: "not_subscribed" for c, sh in owners.items() if sh is None}
        for c in refused:
            self.dispatcher.event(
                SubscribeError(channel=c, code="not_subscribed", message=f"{c!r} is not subscribed")
            )
        plan: dict[int, list[str]] = {}
        for c, sh in owners.items():
            if sh is not None:
                sh.sup.wanted.pop(c, None)  # its room is free at once
                plan.setdefault(sh.index, []).append(c)
        result = (
            await self._unless_closed("unsubscribe", self._requests("unsubscribe", plan))
            if plan
            else SubscribeResult()
        )
        result.refused.update(refused)
        return result

    @property
    def channels(self) -> list[str]:
        """Channels wanted (re-subscribed after every reconnect)."""
        return [c for sh in self._shards for c in sh.sup.wanted]

    # -- books --
    @staticmethod
    def _book_channel(symbol: str) -> str:
        return symbol if symbol.startswith("orderbook:") else f"orderbook:{symbol}"

    def book(self, symbol: str) -> BookView:
        """The live view of ``symbol``'s book (``"AAPL"`` or ``"orderbook:AAPL"``)."""
        self._require(self._channels)
        channel = self._book_channel(symbol)
        ch = self._holder(channel)
        view = ch.views.get(channel) if ch is not None else None
        if view is None:
            raise ConfigError(f"not subscribed to {self._book_channel(symbol)!r}")
        return view

    def books(self) -> dict[str, BookView]:
        return {n: v for sh in self._shards for n, v in sh.channels.views.items()}

    @property
    def instruments(self) -> dict[str, Instrument]:
        """Every instrument the gateway listed (``GET /v1/instruments``), by symbol."""
        return dict(self._instruments)

    def instrument(self, symbol: str) -> Instrument:
        """``symbol``'s tick and lot grid and asset class; ConfigError when the gateway has none."""
        inst = self.instruments.get(symbol.partition(":")[2] if ":" in symbol else symbol)
        if inst is None:
            raise ConfigError(f"the gateway lists no instrument {symbol!r}")
        return inst

    async def wait_synced(self, symbol: str, timeout: float = 10.0) -> BookView:
        """Wait until the book is synced; :class:`SyncTimeout` after ``timeout`` seconds."""
        self._check_open("wait_synced")
        self._require(self._channels)
        return await self._unless_closed("wait_synced", self._wait_synced(symbol, timeout))

    async def _wait_synced(self, symbol: str, timeout: float) -> BookView:
        channel = self._book_channel(symbol)
        deadline = self._clock() + timeout
        while True:
            ch = self._holder(channel)
            bc = ch.books.get(channel) if ch is not None else None
            if ch is not None and bc is not None and bc.sync.synced:
                return ch.views[channel]
            left = deadline - self._clock()
            if left <= 0:
                state = bc.sync.state.value if bc is not None else "not subscribed"
                raise SyncTimeout(f"{channel} not synced within {timeout}s (state {state})")
            if bc is None:
                await asyncio.sleep(min(0.02, left))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bc.synced_event.wait(), left)

    def ticker(self, symbol: str) -> frames.Ticker | TickerUpdate | None:
        """The last ticker of ``symbol`` (None before the first; check ``ticker_stale``): the
        VTS/1 frame, or on another venue the :class:`TickerUpdate` handed to the feeds."""
        self._require(self._channels)
        channel = symbol if symbol.startswith("ticker:") else f"ticker:{symbol}"
        ch = self._holder(channel)
        sc = ch.seqs.get(channel) if ch is not None else None
        last = sc.last if sc is not None else None
        return last if isinstance(last, frames.Ticker | TickerUpdate) else None

    # -- triggers --
    def on_book(self, fn: Callable[[BookView], Any]) -> Callable[[], None]:
        """Call ``fn(view)`` when a synced book changed (coalesced: latest state)."""
        self._check_open("on_book")
        return self.dispatcher.add_callback("book", fn)

    def on_top_of_book(self, fn: Callable[[Any], Any]) -> Callable[[], None]:
        """Call ``fn(TopOfBook)`` when a synced book's best bid or ask changed."""
        self._check_open("on_top_of_book")
        return self.dispatcher.add_callback("top_of_book", fn)

    def on_ticker(self, fn: Callable[[Any], Any]) -> Callable[[], None]:
        """Call ``fn(TickerUpdate)`` for each ticker frame."""
        self._check_open("on_ticker")
        return self.dispatcher.add_callback("ticker", fn)

    def on_trade(self, fn: Callable[[Any], Any]) -> Callable[[], None]:
        """Call ``fn(TradeUpdate)`` for each trade."""
        self._check_open("on_trade")
        return self.dispatcher.add_callback("trade", fn)

    def on_state(self, fn: Callable[[Any], Any]) -> Callable[[], None]:
        """Call ``fn(ClientEvent)`` for every event (connected, gap, stale, ...)."""
        self._check_open("on_state")
        return self.dispatcher.add_callback("state", fn)

    def events(self, maxsize: int | None = None) -> Feed[Any]:
        """An async iterator of every :class:`ClientEvent` from now on (bounded; see dispatch).
        May be called before ``start()`` to see the connection events too."""
        self._check_open("events()")
        return self.dispatcher.feed("events", maxsize)

    def book_updates(self, maxsize: int | None = None) -> Feed[Any]:
        """Async iterator of :class:`BookView` for synced books that changed (coalesced)."""
        self._check_open("book_updates()")
        return self.dispatcher.feed("book", maxsize)

    def trades(self, maxsize: int | None = None) -> Feed[Any]:
        self._check_open("trades()")
        return self.dispatcher.feed("trade", maxsize)

    def tickers(self, maxsize: int | None = None) -> Feed[Any]:
        self._check_open("tickers()")
        return self.dispatcher.feed("ticker", maxsize)

    # -- orders --
    async def place_limit_order(
        self,
        symbol: str,
        side: str,
        price: Any,
        size: Any,
        client_order_id: str | None = None,
    ) -> Order:
        """Place a limit order (``price``/``size``: decimal text, ``Decimal`` or ``int`` on the
        instrument's grid); the client remembers it as its own, to cancel it on going blind.

        Refused with :class:`~tickpipe.errors.BlindError` while the stream is down (blind,
        backing off or reconnecting): no book can be trusted then, and the kill switch, which
        runs on losing the stream, would never protect an order placed after it. If the
        stream goes down while the order is in flight, the order is cancelled at once (retried
        in the background if that fails) and ``BlindError`` names it. Bad arguments raise
        :class:`~tickpipe.errors.ConfigError`, the gateway's refusals
        :class:`~tickpipe.errors.RestError`; a closed client
        :class:`~tickpipe.errors.ClientClosedError`.
        """
        self._check_open("place_limit_order")
        self._check_orders("place_limit_order")
        orders: OrderManager = self._require(self._orders)
        sup: Supervisor = self._require(self._sup)
        if not sup.connected:
            raise BlindError(
                f"place_limit_order refused: the stream is down (client {sup.state}"
                f"{': ' + sup.last_error if sup.last_error else ''}); orders are refused while "
                "blind, since no kill switch would protect them. Retry once connected."
            )
        link = sup.connections_opened
        order = await orders.place_limit_order(symbol, side, price, size, client_order_id)
        if (
            (sup.connected and sup.connections_opened == link)
            or not order.is_open
            or self.config.cancel_orders_on_blind == "none"
        ):
            return order
        # The stream went down while the order was in flight: the kill switch has run (or is
        # running) without it. Cancel it now rather than leave an order nothing protects.
        try:
            done = await orders.cancel_order(order.order_id)
            what = "was cancelled" if done.status == "cancelled" else f"is {done.status}"
        except UnknownOrderError:
            what = "is no longer known to the gateway"
        except RestError as exc:
            orders.retry_cancel(order)
            what = f"could not be cancelled yet ({exc}); cancels are retried in the background"
        raise BlindError(
            f"the stream went down while order {order.order_id} "
            f"({order.side} {order.size} {order.symbol} @ {order.price}) was in flight: it "
            f"{what}. Orders are refused while blind; retry once connected."
        )

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        self._check_open("open_orders")
        self._check_orders("open_orders")
        orders: OrderManager = self._require(self._orders)
        return await orders.open_orders(symbol)

    async def get_order(self, order_id: str) -> Order:
        """One order of this key as the gateway has it now (``status`` open, filled or
        cancelled; ``filled_size``). :class:`~tickpipe.errors.UnknownOrderError` if unknown."""
        self._check_open("get_order")
        self._check_orders("get_order")
        orders: OrderManager = self._require(self._orders)
        return await orders.get_order(order_id)

    async def cancel_order(self, order_id: str) -> Order:
        """Cancel one order (allowed while blind: cancelling is always safe)."""
        self._check_open("cancel_order")
        self._check_orders("cancel_order")
        orders: OrderManager = self._require(self._orders)
        return await orders.cancel_order(order_id)

    async def cancel_all_orders(self, symbol: str | None = None) -> list[str]:
        self._check_open("cancel_all_orders")
        self._check_orders("cancel_all_orders")
        orders: OrderManager = self._require(self._orders)
        return await orders.cancel_all_orders(symbol)

    @property
    def own_orders(self) -> dict[str, Order]:
        """Orders this client placed that may still be open (cancelled on going blind)."""
        return dict(self._orders.own) if self._orders is not None else {}

    # -- observability --
    @property
    def connection_state(self) -> str:
        """The connection's state; with several (shards), "connected" only when all are,
        else the state of the first that is not (``stats().shards`` has each)."""
        if not self._shards:
            return "idle"
        down = [sh.sup.state for sh in self._shards if not sh.sup.connected]
        return down[0] if down else "connected"

    @property
    def connected(self) -> bool:
        """True when every connection (shard) is up."""
        return bool(self._shards) and all(sh.sup.connected for sh in self._shards)

    def stats(self) -> ClientStats:
        m = self.metrics
        sup, sch = self._sup, self._scheduler
        seqs = {n: sc for sh in self._shards for n, sc in sh.channels.seqs.items()}
        p50, p99 = m.latency.percentiles(50, 99)
        books: dict[str, BookStatus] = {}
        for shard in self._shards:
            for name, bc in shard.channels.books.items():
                v = shard.channels.views[name]
                books[name] = BookStatus(
                    name,
                    v.state,
                    v.reason,
                    v.synced,
                    v.seq,
                    v.age_s,
                    bc.sync.buffered,
                    bc.sync.stats.resyncs,
                )
        last = self._orders.last_report if self._orders is not None else None
        return ClientStats(
            connection=self.connection_state,
            url=self.stream_url,
            session=sup.conn.session if sup is not None and sup.conn is not None else "",
            heartbeat_age_s=sup.heartbeat_age() if sup is not None else None,
            heartbeat_ms=sup.heartbeat_ms if sup is not None else None,
            frames=m.frames,
            bytes=m.bytes,
            frames_per_s=self._rate.current(self._clock(), m.frames),
            latency_p50_ms=p50,
            latency_p99_ms=p99,
            gaps=dict(m.gaps),
            duplicates=m.duplicates,
            bad_frames=m.bad_frames,
            resyncs=m.resyncs,
            reconnects=m.reconnects,
            connections_opened=sum(sh.sup.connections_opened for sh in self._shards),
            rotations=sum(sh.sup.rotations for sh in self._shards),
            backoff_delay_s=max((sh.sup.current_delay_s for sh in self._shards), default=0.0),
            snapshot_requests=sch.requests if sch is not None else 0,
            snapshot_429=sch.rate_limited if sch is not None else 0,
            snapshot_errors=m.snapshot_errors,
            snapshots_queued=sch.queued if sch is not None else 0,
            snapshots_in_flight=sch.in_flight if sch is not None else 0,
            trades_missed=m.trades_missed,
            callback_errors=m.callback_errors,
            overflow_dropped=m.overflow_dropped,
            queue_depth=self.dispatcher.queue_depth,
            cancel_on_disconnect=sup.cancel_on_disconnect_armed if sup is not None else False,
            own_open_orders=len(self._orders.own) if self._orders is not None else 0,
            last_kill_switch=(
                None
                if last is None
                else {"cancelled": last.cancelled, "failed": last.failed, "scope": last.scope}
            ),
            books=books,
            channel_seqs={
                **{n: b.seq for n, b in books.items()},
                **{n: sc.tracker.seq for n, sc in seqs.items()},
            },
            ticker_gaps=sum(sc.tracker.gaps for sc in seqs.values() if sc.kind == "ticker"),
            callback_error_counts=self.dispatcher.callback_error_counts,
            shards=[
                ShardStatus(
                    sh.index,
                    sh.sup.state,
                    len(sh.sup.wanted),
                    sh.sup.conn.session if sh.sup.conn is not None else "",
                    sh.sup.heartbeat_age(),
                    sh.sup.connections_opened,
                    sh.sup.rotations,
                )
                for sh in self._shards
            ],
        )
