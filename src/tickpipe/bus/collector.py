"""The collector: a running :class:`~tickpipe.Client`'s exact books, trades and tickers,
published to NATS JetStream in the bus's wire schema (``bus/schema.py``, ``docs/bus.md``).

:class:`Collector` is the client's :class:`~tickpipe.client.tap.BookTap`. On the read path it
only numbers, encodes (msgspec) and appends ``(subject, payload, Nats-Msg-Id)`` to a bounded
queue; a publisher task drains the queue with JetStream ``publish_async``. Nothing on the read
path waits for NATS. Per book:

- ``book_synced`` (a seed, a re-seed, a venue reset): ``epoch`` + 1 and a reset
  :class:`~tickpipe.bus.schema.Snap` (the next ``seq``), levels in the instrument's decimals.
  Its cost is the book's size (formatting every level: ~1 µs a level), once per (re)sync.
- ``book_applied``: a :class:`~tickpipe.bus.schema.Delta` (the next ``seq``), the levels as the
  venue wrote them. A few µs: one struct, one JSON encode, one append.
- ``book_lost``: a :class:`~tickpipe.bus.schema.State` (the current ``seq``) when the state
  differs from the last published for that book (a reset Snap publishes ``live``).
- every ``snapshot_every_s`` (30 s): a periodic Snap (``reset`` false, the current seq) of each
  exact book, one book a loop turn. The cost of the knob: a consumer joining late replays at
  most that long of deltas after the last Snap; a shorter period costs one whole book a
  period in the stream (and its bandwidth) per book.

Tickers and trades become :class:`~tickpipe.bus.schema.Ticker` and
:class:`~tickpipe.bus.schema.Trade` (decimals as text). The venue's instruments are published on
start, on becoming active, and every ``instruments_every_s`` (so the stream's ``max_age`` never
leaves a late joiner without them). A :class:`~tickpipe.bus.schema.Heartbeat` goes on core NATS
(not stored) every ``heartbeat_every_s`` while active, with the channels published and
``blind`` (the client's venue connection is down).

Publishing: batches of at most ``max_in_flight`` messages, every ack awaited within
``ack_timeout_s``. A failed publish (no ack in time, no stream responding during a JetStream
leader election, NATS reconnecting) is retried with bounded exponential backoff
(``retry_backoff``), the same ``Nats-Msg-Id`` (``<collector>:<subject>:<seq>`` for a book's
Delta and reset Snap; a suffix for the messages that carry the current seq; a per-channel count
for trades, tickers and instruments), so the stream's duplicate window stores it once. One still
failing after ``max_retry_s`` is dropped. When a retried message of a book could land after a
later message of that book (the later one succeeded first), the book is treated as dropped.

Overflow: when the queue holds ``queue_size`` messages, a new one is dropped and counted, and
its book marked dirty: its later messages are dropped (their seqs still taken, so consumers see
the hole) until, once the queue is down to half, the publisher queues a reset Snap for each
dirty book (or its State when it is no longer exact) and reports an ``bus_overflow {dropped,
books, reasons}`` event (``reasons``: ``queue_full``, ``publish_failed``). Messages of a dirty
book already in the queue are skipped, not published.

Standby (``group`` set): see ``bus/leader.py``. A standby's client runs as usual, its tap
publishes nothing; when it wins the lease it queues its instruments and, for every book, a
reset Snap (exact) or a State (not exact), then publishes as the active. An active that loses or
cannot renew its lease stops at once, its queue discarded. Events ``role {role, group}``.

Everything is bounded: the queue (``queue_size``), the in-flight publishes
(``max_in_flight``), each ack (``ack_timeout_s``), the retries (``max_retry_s``), the close
(``close_timeout_s``: flush what can be, then drain NATS).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from secrets import token_hex
from typing import TYPE_CHECKING, Any

import nats.errors as natserr
import nats.js.errors as jserr
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from tickpipe.bus import schema
from tickpipe.bus.connect import connect_nats, parse_servers, redact
from tickpipe.bus.leader import Leadership, check_group
from tickpipe.bus.streams import StreamSettings, ensure_bucket, ensure_stream
from tickpipe.client.dispatch import TickerUpdate, TradeUpdate
from tickpipe.errors import BusError, ConfigError
from tickpipe.protocol import frames
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.protocol.sync import SyncState

if TYPE_CHECKING:
    from tickpipe.client.client import Client
    from tickpipe.client.views import BookView
    from tickpipe.protocol.sync import BookSync

log = logging.getLogger("tickpipe.bus.collector")

MSG_ID = "Nats-Msg-Id"
DEFAULT_SNAPSHOT_EVERY_S = 30.0
RETRY_BACKOFF = BackoffPolicy(base_s=0.05, cap_s=2.0, jitter="equal", healthy_after_s=0.0)

# kind, subject, payload, Nats-Msg-Id, book (None: not a book's), the book's generation
_Entry = tuple[str, str, bytes, str, "_Book | None", int]
_LIVE = SyncState.LIVE


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    """Knobs of a :class:`Collector` (defaults in brackets).

    - ``venue`` (the client's venue name): the subjects' venue token (``--venue``).
    - ``stream``: :class:`~tickpipe.bus.streams.StreamSettings` (name ``TICKPIPE``, 1
      replica, 15 min, 1 GiB, duplicate window 120 s).
    - ``queue_size`` (100,000): messages waiting to be published; past it they are dropped
      (see the module doc). ~200-500 B each: ~50 MiB when full of deltas.
    - ``max_in_flight`` (1,024): publishes awaiting their ack at once (one batch).
    - ``ack_timeout_s`` (5.0): a publish not acked within it is retried.
    - ``retry_backoff`` (0.05 s doubling to 2 s, jittered): between retries of a batch.
    - ``max_retry_s`` (30.0): a message still failing this long after its first try is
      dropped (its book re-seeded for consumers). Longer than a JetStream leader election
      (seconds), shorter than the duplicate window.
    - ``snapshot_every_s`` (30.0): the periodic Snap of each exact book (see the module doc).
    - ``heartbeat_every_s`` (1.0): core-NATS heartbeat while active.
    - ``instruments_every_s`` (300.0, at most the stream's max_age / 2): the instruments again.
    - ``group`` (None: always active): the standby group (``--group``).
    - ``leader_bucket`` (``tickpipe_leaders``), ``lease_s`` (3.0): the election's bucket and
      lease (its TTL); the active renews every ``lease_s / 3``.
    - ``connect_timeout_s`` (5.0): bound of the first connection to NATS.
    - ``close_timeout_s`` (5.0): how long ``close()`` may flush the queue.
    """

    venue: str | None = None
    stream: StreamSettings = field(default_factory=StreamSettings)
    queue_size: int = 100_000
    max_in_flight: int = 1024
    ack_timeout_s: float = 5.0
    retry_backoff: BackoffPolicy = RETRY_BACKOFF
    max_retry_s: float = 30.0
    snapshot_every_s: float = DEFAULT_SNAPSHOT_EVERY_S
    heartbeat_every_s: float = 1.0
    instruments_every_s: float = 300.0
    group: str | None = None
    leader_bucket: str = schema.DEFAULT_LEADER_BUCKET
    lease_s: float = 3.0
    connect_timeout_s: float = 5.0
    close_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.venue is not None:
            try:
                schema.venue_prefix(self.venue)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        if isinstance(self.queue_size, bool) or self.queue_size < 2:
            raise ConfigError(f"queue_size must be >= 2, got {self.queue_size!r}")
        if isinstance(self.max_in_flight, bool) or not 1 <= self.max_in_flight <= 65536:
            raise ConfigError(f"max_in_flight must be 1..65536, got {self.max_in_flight!r}")
        for name in (
            "ack_timeout_s",
            "max_retry_s",
            "snapshot_every_s",
            "heartbeat_every_s",
            "instruments_every_s",
            "lease_s",
            "connect_timeout_s",
        ):
            v = getattr(self, name)
            if not 0 < v < float("inf"):
                raise ConfigError(f"{name} must be a number of seconds > 0, got {v!r}")
        if not 0 <= self.close_timeout_s < float("inf"):
            raise ConfigError(f"close_timeout_s must be >= 0, got {self.close_timeout_s!r}")
        if self.group is not None:
            check_group(self.group)


class _Book:
    """What the collector knows of one ``orderbook:`` channel."""

    __slots__ = (
        "channel",
        "delta_id",
        "delta_subject",
        "dirty",
        "epoch",
        "exact_depth",
        "gen",
        "n",
        "seq",
        "snap_id",
        "snap_subject",
        "state",
        "state_id",
        "state_subject",
        "sync",
    )

    def __init__(self, channel: str, venue: str, collector: str, exact_depth: int | None):
        symbol = channel.partition(":")[2]
        self.channel = channel
        self.snap_subject = schema.book_subject(venue, symbol, "snap")
        self.delta_subject = schema.book_subject(venue, symbol, "delta")
        self.state_subject = schema.book_subject(venue, symbol, "state")
        self.snap_id = f"{collector}:{self.snap_subject}:"
        self.delta_id = f"{collector}:{self.delta_subject}:"
        self.state_id = f"{collector}:{self.state_subject}:"
        self.seq = 0  # the last seq taken (published or dropped)
        self.epoch = 0
        self.n = 0  # messages carrying the current seq (periodic Snap, State): Msg-Id suffix
        self.gen = 0  # + 1 each time the book turns dirty: queued older messages are skipped
        self.dirty = False
        self.state: str | None = None  # last state published ("live" after a reset Snap)
        self.sync: BookSync | None = None
        self.exact_depth = exact_depth


def collector_id() -> str:
    """``<host>-<pid>-<random>``: unique per collector instance."""
    host = re.sub(r"[^-_A-Za-z0-9]", "_", socket.gethostname())[:32] or "host"
    return f"{host}-{os.getpid()}-{token_hex(3)}"


def _dec(x: Decimal | None) -> str | None:
    return None if x is None else format(x, "f")


def _permanent(exc: BaseException) -> bool:
    """A publish error that a retry cannot fix (the message itself is refused)."""
    if isinstance(exc, natserr.MaxPayloadError | natserr.BadSubjectError):
        return True
    if isinstance(exc, jserr.BadRequestError):
        return True
    return isinstance(exc, jserr.APIError) and exc.code == 400


class Collector:
    """A client's books, trades and tickers published to JetStream; see the module doc.

    ::

        client = Client(...)
        collector = Collector(client, "nats://127.0.0.1:4222")
        await collector.start()        # NATS, the stream, (group) the election; sets the tap
        await client.start(); await client.subscribe([...])
        ...
        await client.close(); await collector.close()

    ``on_event(dict)`` gets ``bus_connected``, ``bus_disconnected``, ``bus_reconnected``,
    ``role`` and ``bus_overflow`` events (``{"event": name, "t": unix s, ...}``); default: logged.
    """

    def __init__(
        self,
        client: Client,
        servers: str | Sequence[str],
        config: CollectorConfig | None = None,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        collector: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.servers = parse_servers(servers)
        self.config = cfg = config if config is not None else CollectorConfig()
        self.venue = cfg.venue if cfg.venue is not None else client.venue.name
        schema.venue_prefix(self.venue)  # ValueError for a name that is no subject token
        self.id = collector if collector is not None else collector_id()
        self.group = cfg.group
        self.on_event = on_event if on_event is not None else self._log_event
        self._clock = clock
        self._rand = rand
        self._queue: deque[_Entry] = deque()
        self._qmax = cfg.queue_size
        self._low_water = cfg.queue_size // 2
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._books: dict[str, _Book] = {}
        self._dirty: dict[str, _Book] = {}
        self._subjects: dict[str, tuple[str, str]] = {}  # ticker/trades channel -> subject, id
        self._counts: dict[str, int] = {}
        self._publishing = False  # active: the tap queues messages
        self._started = False
        self._closed = False
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._leader: Leadership | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._instruments_due = 0.0  # clock() when the instruments are next published
        self._instruments_n = 0
        self._instruments_every = cfg.instruments_every_s
        self.stream_differences: list[str] = []
        # counters (read by stats() and the Prometheus collector)
        self.published: dict[str, int] = dict.fromkeys(
            ("snap", "delta", "state", "trade", "ticker", "instruments", "heartbeat"), 0
        )
        self.published_bytes = 0
        self.dropped = 0
        self.retries = 0
        self.resets = 0  # reset Snaps queued after an overflow or failed publish
        self.in_flight = 0
        self._episode_dropped = 0
        self._episode_reasons: set[str] = set()
        self._episode_books: set[str] = set()

    # -- the tap (read path: number, encode, append; never await) ---------------------------
    def book_synced(self, channel: str, sync: BookSync, ts_ns: int | None) -> None:
        b = self._books.get(channel)
        if b is None:
            b = self._new_book(channel)
        b.sync = sync
        b.epoch += 1
        if self._publishing:
            self._queue_reset(b, ts_ns)

    def book_applied(
        self,
        channel: str,
        bids: list[schema.RawLevel],
        asks: list[schema.RawLevel],
        venue_id: int | None,
        ts_ns: int | None,
    ) -> None:
        if not self._publishing:
            return
        b = self._books.get(channel)
        if b is None:  # never synced while tapped (subscribed before the tap was set)
            return
        b.seq = seq = b.seq + 1
        if b.dirty:  # waiting for its reset Snap: this one is of no use
            self._drop(None, None)
            return
        q = self._queue
        if len(q) >= self._qmax:
            self._drop(b, "queue_full")
            return
        payload = schema.encode(
            schema.Delta(channel, b.epoch, seq, bids, asks, venue_id, ts_ns, time.time_ns())
        )
        q.append(("delta", b.delta_subject, payload, f"{b.delta_id}{seq}", b, b.gen))
        self._wake.set()

    def book_lost(self, channel: str, state: SyncState, reason: str) -> None:
        if not self._publishing:
            return
        b = self._books.get(channel)
        if b is None or b.dirty or b.state == state.value:
            return
        self._queue_state(b, state.value, reason)

    def ticker(self, item: TickerUpdate | frames.Ticker) -> None:
        if not self._publishing:
            return
        if len(self._queue) >= self._qmax:
            self._drop(None, "queue_full")
            return
        if type(item) is frames.Ticker:
            msg = schema.Ticker(
                item.channel, item.bid, item.bid_size, item.ask, item.ask_size, item.last,
                item.volume, item.ts, time.time_ns(),
            )  # fmt: skip
        else:
            assert isinstance(item, TickerUpdate)
            msg = schema.Ticker(
                item.channel, _dec(item.bid), _dec(item.bid_size), _dec(item.ask),
                _dec(item.ask_size), _dec(item.last), _dec(item.volume), item.ts, time.time_ns(),
            )  # fmt: skip
        self._queue_other("ticker", item.channel, schema.encode(msg))

    def trade(self, item: TradeUpdate | frames.Trade) -> None:
        if not self._publishing:
            return
        if len(self._queue) >= self._qmax:
            self._drop(None, "queue_full")
            return
        if type(item) is frames.Trade:
            msg = schema.Trade(
                item.channel, item.id, item.price, item.size, item.side, item.ts, time.time_ns()
            )
        else:
            assert isinstance(item, TradeUpdate)
            side = item.side if item.side in ("buy", "sell") else None
            msg = schema.Trade(
                item.channel, item.id, format(item.price, "f"), format(item.size, "f"),
                side, item.ts, time.time_ns(),  # type: ignore[arg-type]
            )  # fmt: skip
        self._queue_other("trade", item.channel, schema.encode(msg))

    # -- queueing helpers ----------------------------------------------------------------------
    def _new_book(self, channel: str) -> _Book:
        try:
            view: BookView | None = self.client.book(channel)
        except ConfigError:
            view = None
        b = _Book(channel, self.venue, self.id, view.exact_depth if view is not None else None)
        self._books[channel] = b
        return b

    def _queue_reset(self, b: _Book, ts_ns: int | None = None) -> None:
        """A reset Snap of ``b``'s book as it is now (the next seq); dirty when no room."""
        b.seq += 1
        sync = b.sync
        if len(self._queue) >= self._qmax or sync is None:
            self._drop(b, "queue_full")
            return
        if b.dirty:
            b.dirty = False
            self._dirty.pop(b.channel, None)
        b.state = "live"
        payload = self._snap(b, sync, True, ts_ns)
        self._queue.append(("snap", b.snap_subject, payload, f"{b.snap_id}{b.seq}", b, b.gen))
        self._wake.set()

    def _snap(self, b: _Book, sync: BookSync, reset: bool, ts_ns: int | None) -> bytes:
        book = sync.book
        inst = book.instrument
        fp, fs = inst.format_price, inst.format_size
        bids, asks = book.to_lists()
        return schema.encode(
            schema.Snap(
                b.channel, self.id, b.epoch, b.seq, reset,
                [(fp(p), fs(s)) for p, s in bids], [(fp(p), fs(s)) for p, s in asks],
                sync.seq, b.exact_depth, ts_ns, time.time_ns(), sync.rules.depth,
            )
        )  # fmt: skip

    def _queue_state(self, b: _Book, state: str, reason: str) -> None:
        if len(self._queue) >= self._qmax:
            self._drop(b, "queue_full")
            return
        b.state = state
        b.n += 1
        payload = schema.encode(
            schema.State(b.channel, self.id, b.epoch, b.seq, state, reason, time.time_ns())
        )
        self._queue.append(
            ("state", b.state_subject, payload, f"{b.state_id}{b.seq}.{b.n}", b, b.gen)
        )
        self._wake.set()

    def _queue_other(self, kind: str, channel: str, payload: bytes) -> None:
        got = self._subjects.get(channel)
        if got is None:
            symbol = channel.partition(":")[2]
            subject = (
                schema.ticker_subject(self.venue, symbol)
                if kind == "ticker"
                else schema.trades_subject(self.venue, symbol)
            )
            got = self._subjects[channel] = (subject, f"{self.id}:{subject}:")
        n = self._counts[channel] = self._counts.get(channel, 0) + 1
        self._queue.append((kind, got[0], payload, f"{got[1]}{n}", None, 0))
        self._wake.set()

    def _drop(self, b: _Book | None, reason: str | None) -> None:
        """One message not published (``reason``: why, None when its book was dirty
        already); its book (if any) turns dirty."""
        self.dropped += 1
        self._episode_dropped += 1
        if reason is not None:
            self._episode_reasons.add(reason)
        if b is not None and not b.dirty:
            b.dirty = True
            b.gen += 1
            self._dirty[b.channel] = b
            self._episode_books.add(b.channel)
        self._wake.set()  # the publisher settles the dirty books once there is room

    # -- life ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect to NATS (bounded: BusError naming the URLs), make sure the stream (and with
        a group the leader bucket) exists, set the client's tap and start publishing (or, with
        a group, the election). Emits ``bus_connected``."""
        if self._started:
            raise BusError("collector already started")
        self._started = True
        cfg = self.config
        nc = await connect_nats(
            self.servers,
            name=f"tickpipe publish {self.id}",
            timeout_s=cfg.connect_timeout_s,
            on_disconnected=self._on_disconnected,
            on_reconnected=self._on_reconnected,
        )
        self._nc = nc
        try:
            self._js = js = nc.jetstream(
                timeout=cfg.connect_timeout_s, publish_async_max_pending=cfg.max_in_flight
            )
            self.stream_differences = await ensure_stream(js, cfg.stream)
            if self.stream_differences:
                log.warning(
                    "stream %s exists with other settings (used as it is): %s",
                    cfg.stream.name,
                    "; ".join(self.stream_differences),
                )
            info = await js.stream_info(cfg.stream.name)
            max_age = float(info.config.max_age or cfg.stream.max_age_s)
            self._instruments_every = min(cfg.instruments_every_s, max_age / 2)
            if self.group is not None:
                kv_js = nc.jetstream(timeout=max(0.5, cfg.lease_s / 3))
                kv, lease = await ensure_bucket(
                    kv_js, cfg.leader_bucket, cfg.lease_s, cfg.stream.replicas
                )
                self._leader = Leadership(kv, self.group, self.id, lease, self._on_role)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            self._nc = None
            if isinstance(exc, BusError):
                raise
            if isinstance(exc, natserr.Error | TimeoutError):
                raise BusError(
                    f"NATS at {redact(nc.connected_url.geturl() if nc.connected_url else '?')} "
                    f"did not answer JetStream requests: {exc or type(exc).__name__} (is "
                    "JetStream enabled: nats-server -js?)"
                ) from None
            raise
        self.on_event(
            self._ev(
                "bus_connected",
                url=redact(nc.connected_url.geturl()) if nc.connected_url else None,
                stream=cfg.stream.name,
                collector=self.id,
                venue=self.venue,
                group=self.group,
                differences=self.stream_differences,
            )
        )
        self.client.set_tap(self)
        self._tasks = [
            asyncio.create_task(self._publisher(), name="tickpipe bus publisher"),
            asyncio.create_task(self._heartbeats(), name="tickpipe bus heartbeat"),
            asyncio.create_task(self._snapshots(), name="tickpipe bus snapshots"),
        ]
        if self._leader is not None:
            self._tasks.append(asyncio.create_task(self._leader.run(), name="tickpipe bus lease"))
        else:
            self._on_role(True)

    @property
    def active(self) -> bool:
        """Publishing (without a group: from start to close)."""
        return self._publishing

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def _on_role(self, active: bool) -> None:
        if active == self._publishing or self._closed:
            return
        self._publishing = active
        if active:
            self._instruments_due = 0.0
            self._queue_instruments()
            self._adopt_books()
            for b in list(self._books.values()):
                b.state = None
                sync = b.sync
                if sync is None:
                    continue
                if sync.state is _LIVE:
                    self._queue_reset(b)
                else:
                    view = self.client.books().get(b.channel)
                    self._queue_state(b, sync.state.value, view.reason if view else "")
        else:
            n = len(self._queue)
            self._queue.clear()
            self.dropped += n  # queued while active: never to be published now
            self._dirty.clear()
            for b in self._books.values():
                b.dirty = False
                b.state = None
                b.gen += 1  # a batch in retry is abandoned
        if self.group is not None:
            self.on_event(
                self._ev("role", role="active" if active else "standby", group=self.group)
            )

    def _adopt_books(self) -> None:
        """Books the client had before the tap was set (``start()`` after ``subscribe``)."""
        for shard in self.client._shards:
            for channel, bc in shard.channels.books.items():
                b = self._books.get(channel)
                if b is None:
                    b = self._new_book(channel)
                if b.sync is None:
                    b.sync = bc.sync
                    b.epoch = max(b.epoch, 1)

    def _queue_instruments(self) -> None:
        insts = self.client.instruments
        if not insts or not self._publishing:
            return
        self._instruments_due = self._clock() + self._instruments_every
        msg = schema.Instruments(
            self.venue,
            self.id,
            [
                schema.InstrumentEntry(i.symbol, i.asset_class, i.tick_size, i.lot_size)
                for i in insts.values()
            ],
            exact_depth=self.client.exact_depth,
            pub_ns=time.time_ns(),
        )
        subject = schema.instruments_subject(self.venue)
        self._instruments_n += 1
        self._queue.append(
            (
                "instruments",
                subject,
                schema.encode(msg),
                f"{self.id}:{subject}:{self._instruments_n}",
                None,
                0,
            )
        )
        self._wake.set()

    async def close(self, *, release: bool = True) -> None:
        """Stop: the tap removed, the queue flushed within ``close_timeout_s``, the lease
        released (``release``; False: left to expire, as a crash would), NATS drained. Safe to
        call twice."""
        if self._closed:
            return
        if self.client._tap is self:
            self.client.set_tap(None)
        leader = self._leader
        for t in self._tasks:
            if t.get_name() != "tickpipe bus publisher":
                t.cancel()
        if (self._publishing and self._queue) or self.in_flight:
            self._idle.clear()
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.config.close_timeout_s)
        self._closed = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("bus task %r had ended with an error", t.get_name())
        self._tasks = []
        left = len(self._queue)
        if left:
            self.dropped += left
            self._queue.clear()
        self._publishing = False
        if leader is not None:
            if release:
                await leader.release()
            else:
                leader.cancel()
        nc = self._nc
        if nc is not None:
            try:
                await asyncio.wait_for(nc.drain(), max(1.0, self.config.close_timeout_s))
            except Exception:
                with contextlib.suppress(Exception):
                    await nc.close()

    # -- publisher -------------------------------------------------------------------------------
    async def _publisher(self) -> None:
        q = self._queue
        while True:
            if not q:
                self._settle()
                if not q:
                    self._idle.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
            n = min(len(q), self.config.max_in_flight)
            batch = [q.popleft() for _ in range(n)]
            self.in_flight = n
            try:
                await self._send(batch)
            finally:
                self.in_flight = 0
            self._settle()

    def _settle(self) -> None:
        """Once the queue is down to half and NATS connected: a reset Snap (or State) for each
        dirty book, and the overflow reported."""
        if not self._episode_dropped and not self._dirty:
            return
        if len(self._queue) > self._low_water or not self._publishing:
            return
        nc = self._nc
        if nc is None or not nc.is_connected:  # not while NATS is away: they would fail too
            return
        for b in list(self._dirty.values()):
            sync = b.sync
            b.dirty = False
            self.resets += 1
            if sync is not None and sync.state is _LIVE:
                self._queue_reset(b)
            else:
                state = sync.state.value if sync is not None else SyncState.IDLE.value
                view = self.client.books().get(b.channel)
                self._queue_state(b, state, view.reason if view is not None else "")
        self._dirty.clear()
        # (a dirty book re-seeded at the venue meanwhile got its reset Snap then: named too)
        books = sorted(self._episode_books)
        dropped, reasons = self._episode_dropped, sorted(self._episode_reasons)
        self._episode_dropped = 0
        self._episode_reasons = set()
        self._episode_books = set()
        log.warning(
            "bus: %d messages dropped (%s); re-seeded %d books: %s",
            dropped, ", ".join(reasons), len(books), ", ".join(books) or "none",
        )  # fmt: skip
        self.on_event(self._ev("bus_overflow", dropped=dropped, books=books, reasons=reasons))

    def _skip_stale(self, batch: list[_Entry]) -> list[_Entry]:
        """Messages of books that turned dirty after they were queued are not published."""
        out = []
        for e in batch:
            b = e[4]
            if b is not None and b.gen != e[5]:
                self.dropped += 1
                self._episode_dropped += 1
                continue
            out.append(e)
        return out

    async def _send(self, batch: list[_Entry]) -> None:
        """Publish ``batch`` in order; retry the failures (same Msg-Id) with backoff until
        ``max_retry_s``, then drop them."""
        cfg = self.config
        started = self._clock()
        attempt = 0
        pending = self._skip_stale(batch)
        while pending:
            if not self._publishing:
                self.dropped += len(pending)
                return
            results = await self._try(pending)
            retry: list[_Entry] = []
            failed_books: set[str] = set()
            reordered: dict[str, _Book] = {}
            last_error: BaseException | None = None
            for entry, err in zip(pending, results, strict=True):
                b = entry[4]
                if err is None:
                    self.published[entry[0]] += 1
                    self.published_bytes += len(entry[2])
                    if b is not None and b.channel in failed_books:
                        reordered[b.channel] = b
                elif _permanent(err):
                    log.error("bus: %s refused: %s", entry[1], err)
                    self._drop(b, "publish_failed")
                else:
                    last_error = err
                    retry.append(entry)
                    if b is not None:
                        failed_books.add(b.channel)
            for b in reordered.values():  # a retry would land after a later message
                self._drop(b, "publish_failed")
            pending = self._skip_stale(retry)
            if not pending:
                return
            if self._clock() - started >= cfg.max_retry_s:
                log.error(
                    "bus: %d messages dropped after retrying %.1f s: %r",
                    len(pending), cfg.max_retry_s, last_error,
                )  # fmt: skip
                for entry in pending:
                    self._drop(entry[4], "publish_failed")
                return
            self.retries += len(pending)
            delay = cfg.retry_backoff.delay(attempt, self._rand())
            attempt += 1
            if attempt == 1:
                log.warning("bus: %d publishes failed (%r); retrying", len(pending), last_error)
            await asyncio.sleep(delay)

    async def _try(self, pending: list[_Entry]) -> list[BaseException | None]:
        """One publish of each message (in order), every ack awaited within ``ack_timeout_s``."""
        js = self._js
        assert js is not None
        futs: list[asyncio.Future[Any] | BaseException] = []
        for _kind, subject, payload, msg_id, _b, _g in pending:
            try:
                futs.append(await js.publish_async(subject, payload, headers={MSG_ID: msg_id}))
            except Exception as exc:
                futs.append(exc)
        waiting = [f for f in futs if isinstance(f, asyncio.Future)]
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=self.config.ack_timeout_s)
            for lf in late:
                lf.cancel()
        out: list[BaseException | None] = []
        for f in futs:
            if not isinstance(f, asyncio.Future):
                out.append(f)
            elif f.cancelled():
                out.append(TimeoutError(f"no ack within {self.config.ack_timeout_s:g} s"))
            else:
                out.append(f.exception())
        return out

    # -- timers ---------------------------------------------------------------------------------
    async def _heartbeats(self) -> None:
        cfg = self.config
        subject = schema.heartbeat_subject(self.venue)
        interval_ms = round(cfg.heartbeat_every_s * 1000)
        nc = self._nc
        assert nc is not None
        while True:
            if self._publishing:
                if self._clock() >= self._instruments_due:
                    self._queue_instruments()
                hb = schema.Heartbeat(
                    self.venue,
                    self.id,
                    interval_ms,
                    self.client.channels,
                    not self.client.connected,
                    time.time_ns(),
                )
                if nc.is_connected:
                    try:
                        await nc.publish(subject, schema.encode(hb))
                        self.published["heartbeat"] += 1
                    except natserr.Error as exc:
                        log.debug("bus: heartbeat not sent: %r", exc)
            await asyncio.sleep(cfg.heartbeat_every_s)

    async def _snapshots(self) -> None:
        """Every ``snapshot_every_s``: a periodic Snap of each exact book, one a loop turn."""
        every = self.config.snapshot_every_s
        while True:
            await asyncio.sleep(every)
            for b in list(self._books.values()):
                if not self._publishing or len(self._queue) > self._low_water:
                    break
                sync = b.sync
                if sync is None or sync.state is not _LIVE or b.dirty or b.state != "live":
                    continue
                b.n += 1
                payload = self._snap(b, sync, False, None)
                self._queue.append(
                    ("snap", b.snap_subject, payload, f"{b.snap_id}{b.seq}.p{b.n}", b, b.gen)
                )
                self._wake.set()
                await asyncio.sleep(0)

    # -- NATS connection events ----------------------------------------------------------------
    async def _on_disconnected(self) -> None:
        if not self._closed:
            self.on_event(self._ev("bus_disconnected"))

    async def _on_reconnected(self) -> None:
        nc = self._nc
        url = nc.connected_url.geturl() if nc is not None and nc.connected_url else None
        self.on_event(self._ev("bus_reconnected", url=redact(url) if url else None))
        self._wake.set()  # dirty books can be settled now

    # -- reporting ---------------------------------------------------------------------------------
    @staticmethod
    def _ev(name: str, **fields: Any) -> dict[str, Any]:
        return {"event": name, "t": time.time(), **fields}

    @staticmethod
    def _log_event(ev: dict[str, Any]) -> None:
        log.info("%s", ev)

    def stats(self) -> dict[str, Any]:
        """Counters: ``messages`` published (stored, acked; heartbeats apart), by ``kind``,
        ``bytes``, ``dropped``, ``retries``, ``resets``, ``queue_depth``, ``active``."""
        stored = {k: v for k, v in self.published.items() if k != "heartbeat"}
        return {
            "messages": sum(stored.values()),
            "by_kind": dict(self.published),
            "bytes": self.published_bytes,
            "dropped": self.dropped,
            "retries": self.retries,
            "resets": self.resets,
            "queue_depth": len(self._queue),
            "active": self._publishing,
            "collector": self.id,
            "group": self.group,
        }
