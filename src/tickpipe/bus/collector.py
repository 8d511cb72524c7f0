"""The collector: a running ``Client``'s exact books, tickers and trades, published to the bus.

``tickpipe publish`` runs one. It is the client's :class:`~tickpipe.client.tap.BookTap`: told
on the read path, in order, of every book (re)sync, applied update and loss, it numbers each
book's messages (``seq``, schema.py) and only encodes and queues them; a publisher task sends
them to JetStream (``publish_async``, every ack awaited). So the venue's read path is never
blocked by the bus:

- ``queue_size`` (100,000 messages): past it a message is dropped and counted; its seq was
  taken, so consumers see the hole, and the book is *dirty*: once the queue has room again
  (half empty) the collector publishes a reset Snap of it, from which consumers re-seed.
- A publish that fails (no ack within ``ack_timeout_s``, 5 s; NATS fails fast during a stream
  leader election) makes its book dirty the same way, and the publisher backs off (0.05 s
  doubling to 2 s) instead of spinning. Tickers and trades that fail are counted as dropped.
- Every ``snapshot_every_s`` (30 s) a periodic Snap of each exact book (not a reset: same seq),
  so a consumer joining late replays at most that long of deltas. Cost: one whole book a
  period a book (a 1000-level book is ~30 kB of JSON).
- Every ``heartbeat_every_s`` (1 s) a heartbeat on core NATS (not stored) naming the channels
  published and whether the venue link is down: consumers are up only while they hear it.
- The venue's instruments are stored once the client has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nats.js.api import StreamConfig

from tickpipe.bus import schema
from tickpipe.bus.link import split_servers
from tickpipe.client.client import Client
from tickpipe.client.dispatch import TickerUpdate, TradeUpdate
from tickpipe.errors import StreamError
from tickpipe.protocol import frames
from tickpipe.protocol.sync import BookSync, SyncState

log = logging.getLogger("tickpipe.bus.collector")

DEFAULT_QUEUE_SIZE = 100_000
DEFAULT_SNAPSHOT_EVERY_S = 30.0
DEFAULT_HEARTBEAT_EVERY_S = 1.0
DEFAULT_MAX_AGE_S = 900.0
DEFAULT_MAX_BYTES = 1 << 30
ACK_TIMEOUT_S = 5.0

_Item = tuple[str, bytes, str, str | None]  # subject, payload, Nats-Msg-Id, book channel


@dataclass
class _Book:
    seq: int = 0
    epoch: int = 0
    state: str = ""  # the last State published ("" none since the last reset Snap)
    sync: BookSync | None = None
    dirty: bool = False


@dataclass
class CollectorStats:
    published: dict[str, int] = field(default_factory=dict)  # by kind
    dropped: int = 0
    failed: int = 0
    resets_after_loss: int = 0


def _dec(v: Decimal | str | None) -> str | None:
    return None if v is None else str(v)


class Collector:
    """Publishes ``client``'s channels to the NATS servers ``servers`` (see the module
    docstring). ``on_event`` (default: nothing) is told ``bus_overflow`` and the like as dicts.
    """

    def __init__(
        self,
        client: Client,
        servers: str,
        channels: list[str],
        *,
        stream: str = schema.DEFAULT_STREAM,
        replicas: int = 1,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        snapshot_every_s: float = DEFAULT_SNAPSHOT_EVERY_S,
        heartbeat_every_s: float = DEFAULT_HEARTBEAT_EVERY_S,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        on_event: Callable[[dict[str, Any]], None] = lambda ev: None,
    ) -> None:
        split_servers(servers)  # ValueError naming a bad URL
        if queue_size < 1 or snapshot_every_s <= 0 or heartbeat_every_s <= 0 or replicas < 1:
            raise ValueError("queue_size, replicas >= 1; snapshot_every_s, heartbeat_every_s > 0")
        self.client = client
        self.venue = client.venue.name
        self.servers = servers
        self.channels = list(channels)
        self.stream = stream
        self.replicas = replicas
        self.queue_size = queue_size
        self.snapshot_every_s = snapshot_every_s
        self.heartbeat_every_s = heartbeat_every_s
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.on_event = on_event
        self.id = secrets.token_hex(6)
        self.stats = CollectorStats()
        self._books: dict[str, _Book] = {}
        self._queue: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._nc: Any = None
        self._js: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Future[Any]] = set()
        self._pause_until = 0.0
        self._backoff_s = 0.0
        client.set_tap(self)

    # -- life -----------------------------------------------------------------------------------
    async def start(self, timeout_s: float = 5.0) -> None:
        """Connect to NATS and make sure the stream exists; StreamError naming the URL."""
        import nats

        try:  # bounded: nats-py would keep trying forever with unlimited reconnects
            self._nc = await asyncio.wait_for(
                nats.connect(
                    servers=split_servers(self.servers),
                    connect_timeout=max(1, int(timeout_s)),
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=self._on_nats_error,
                ),
                timeout_s,
            )
        except Exception as exc:
            raise StreamError(f"cannot connect to NATS at {self.servers}: {exc!r}") from exc
        self._js = self._nc.jetstream(timeout=timeout_s, publish_async_max_pending=4000)
        cfg = StreamConfig(
            name=self.stream,
            subjects=schema.stream_subjects(),
            max_age=self.max_age_s,
            max_bytes=self.max_bytes,
            num_replicas=self.replicas,
            duplicate_window=120.0,
        )
        try:
            await self._js.stream_info(self.stream)
        except Exception:
            try:
                await self._js.add_stream(cfg)
            except Exception as exc:
                await self._nc.close()
                raise StreamError(f"cannot create stream {self.stream}: {exc!r}") from exc
        self._tasks = [
            asyncio.create_task(self._publisher(), name="tickpipe bus publisher"),
            asyncio.create_task(self._heartbeats(), name="tickpipe bus heartbeat"),
            asyncio.create_task(self._periodic(), name="tickpipe bus snapshots"),
            asyncio.create_task(self._instruments(), name="tickpipe bus instruments"),
        ]

    async def _on_nats_error(self, exc: Exception) -> None:
        log.warning("NATS %s: %s: %s", self.servers, type(exc).__name__, exc)

    async def close(self, flush_s: float = 3.0) -> None:
        """Publish what is queued (within ``flush_s``), then stop and close NATS."""
        deadline = time.monotonic() + flush_s
        while (self._queue or self._inflight) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.client.set_tap(None)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 2.0)

    # -- BookTap (the read path: encode and queue only) -------------------------------------------
    def _book(self, channel: str) -> _Book:
        b = self._books.get(channel)
        if b is None:
            b = self._books[channel] = _Book()
        return b

    def _push(self, subject: str, payload: bytes, msg_id: str, book: str | None) -> None:
        if len(self._queue) >= self.queue_size:
            self.stats.dropped += 1
            if book is not None:
                self._book(book).dirty = True
            return
        self._queue.append((subject, payload, msg_id, book))
        self._wake.set()

    def _reset_snap(self, channel: str, b: _Book, sync: BookSync, ts_ns: int | None) -> None:
        b.seq += 1
        b.epoch += 1
        b.state = ""
        b.dirty = False
        b.sync = sync
        inst = sync.book.instrument
        bids, asks = sync.book.to_lists()
        fp, fs = inst.format_price, inst.format_size
        symbol = channel.partition(":")[2]
        msg = schema.Snap(
            channel,
            self.id,
            b.epoch,
            b.seq,
            True,
            [(fp(p), fs(s)) for p, s in bids],
            [(fp(p), fs(s)) for p, s in asks],
            venue_id=sync.seq,
            exact_depth=self.client._exact_depth,
            ts_ns=ts_ns,
            pub_ns=time.time_ns(),
        )
        self._push(
            schema.book_subject(self.venue, symbol, "snap"),
            schema.encode(msg),
            f"{self.id}:{channel}:{b.seq}:s",
            channel,
        )

    def book_synced(self, channel: str, sync: BookSync, ts_ns: int | None) -> None:
        self._reset_snap(channel, self._book(channel), sync, ts_ns)

    def book_applied(
        self,
        channel: str,
        bids: list[tuple[str, str]],
        asks: list[tuple[str, str]],
        venue_id: int | None,
        ts_ns: int | None,
    ) -> None:
        b = self._book(channel)
        b.seq += 1
        msg = schema.Delta(channel, b.epoch, b.seq, bids, asks, venue_id, ts_ns, time.time_ns())
        self._push(
            schema.book_subject(self.venue, channel.partition(":")[2], "delta"),
            schema.encode(msg),
            f"{self.id}:{channel}:{b.seq}",
            channel,
        )

    def book_lost(self, channel: str, state: SyncState, reason: str) -> None:
        b = self._book(channel)
        if b.state == state.value:
            return
        b.state = state.value
        msg = schema.State(channel, self.id, b.epoch, b.seq, state.value, reason, time.time_ns())
        self._push(
            schema.book_subject(self.venue, channel.partition(":")[2], "state"),
            schema.encode(msg),
            f"{self.id}:{channel}:{b.seq}:{state.value}:{time.monotonic_ns()}",
            channel,
        )

    def ticker(self, item: TickerUpdate | frames.Ticker) -> None:
        ts = item.ts
        msg = schema.Ticker(
            item.channel, _dec(item.bid), _dec(item.bid_size), _dec(item.ask),
            _dec(item.ask_size), _dec(item.last), _dec(item.volume), ts, time.time_ns(),
        )  # fmt: skip
        self._push(
            schema.ticker_subject(self.venue, item.channel.partition(":")[2]),
            schema.encode(msg),
            f"{self.id}:{item.channel}:{item.seq}:{ts}",
            None,
        )

    def trade(self, item: TradeUpdate | frames.Trade) -> None:
        side = item.side if item.side in ("buy", "sell") else None
        msg = schema.Trade(
            item.channel, item.id, str(item.price), str(item.size), side,  # type: ignore[arg-type]
            item.ts, time.time_ns(),
        )  # fmt: skip
        self._push(
            schema.trades_subject(self.venue, item.channel.partition(":")[2]),
            schema.encode(msg),
            f"{self.id}:{item.channel}:{item.id}",
            None,
        )

    # -- tasks ----------------------------------------------------------------------------------
    async def _publisher(self) -> None:
        js = self._js
        queue = self._queue
        while True:
            if not queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._pause_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            subject, payload, msg_id, book = queue.popleft()
            try:
                fut = await js.publish_async(
                    subject, payload, wait_stall=ACK_TIMEOUT_S, headers={"Nats-Msg-Id": msg_id}
                )
            except Exception as exc:
                self._failed(subject, book, exc)
                continue
            self._inflight.add(fut)
            fut.add_done_callback(lambda f, s=subject, b=book: self._acked(f, s, b))
            if len(queue) <= self.queue_size // 2:
                self._reset_dirty()

    def _acked(self, fut: asyncio.Future[Any], subject: str, book: str | None) -> None:
        self._inflight.discard(fut)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            self._failed(subject, book, exc)
            return
        self._backoff_s = 0.0
        kind = subject.rsplit(".", 1)[-1] if ".book." in subject else subject.split(".")[3]
        self.stats.published[kind] = self.stats.published.get(kind, 0) + 1

    def _failed(self, subject: str, book: str | None, exc: BaseException) -> None:
        self.stats.failed += 1
        if book is not None:
            self._book(book).dirty = True
        self._backoff_s = min(2.0, max(0.05, self._backoff_s * 2))
        self._pause_until = time.monotonic() + self._backoff_s
        if self.stats.failed in (1, 10, 100) or self.stats.failed % 1000 == 0:
            log.warning("bus publish of %s failed (%d so far): %r", subject, self.stats.failed, exc)

    def _reset_dirty(self) -> None:
        dirty = [(ch, b) for ch, b in self._books.items() if b.dirty]
        if not dirty:
            return
        n = 0
        for ch, b in dirty:
            sync = b.sync
            if sync is not None and sync.state is SyncState.LIVE:
                self._reset_snap(ch, b, sync, None)
                n += 1
        if n:
            self.stats.resets_after_loss += n
            self.on_event(
                {"event": "bus_overflow", "t": time.time(), "dropped": self.stats.dropped,
                 "failed": self.stats.failed, "books": n}
            )  # fmt: skip

    async def _heartbeats(self) -> None:
        subject = schema.heartbeat_subject(self.venue)
        ms = int(self.heartbeat_every_s * 1000)
        while True:
            hb = schema.Heartbeat(
                self.venue, self.id, ms, self.channels, not self.client.connected, time.time_ns()
            )
            with contextlib.suppress(Exception):
                await self._nc.publish(subject, schema.encode(hb))
            if self._queue and not self._wake.is_set():
                self._wake.set()
            await asyncio.sleep(self.heartbeat_every_s)

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.snapshot_every_s)
            for ch, b in list(self._books.items()):
                sync = b.sync
                if sync is None or sync.state is not SyncState.LIVE or b.dirty:
                    continue
                inst = sync.book.instrument
                bids, asks = sync.book.to_lists()
                fp, fs = inst.format_price, inst.format_size
                msg = schema.Snap(
                    ch, self.id, b.epoch, b.seq, False,
                    [(fp(p), fs(s)) for p, s in bids], [(fp(p), fs(s)) for p, s in asks],
                    venue_id=sync.seq, exact_depth=self.client._exact_depth,
                    pub_ns=time.time_ns(),
                )  # fmt: skip
                self._push(
                    schema.book_subject(self.venue, ch.partition(":")[2], "snap"),
                    schema.encode(msg),
                    f"{self.id}:{ch}:{b.seq}:p:{time.monotonic_ns()}",
                    ch,
                )

    async def _instruments(self) -> None:
        while not self.client.instruments:
            await asyncio.sleep(0.05)
        entries = [
            schema.InstrumentEntry(i.symbol, i.asset_class, i.tick_size, i.lot_size)
            for i in self.client.instruments.values()
        ]
        msg = schema.Instruments(
            self.venue, self.id, entries, self.client._exact_depth, time.time_ns()
        )
        self._push(
            schema.instruments_subject(self.venue), schema.encode(msg), f"{self.id}:inst", None
        )
