"""Replay a recording through the client's own pipeline.

One code path: the recorded frames go to the same :class:`~tickpipe.client.channels.Channels`
(the venue adapter's ``decode``, the same :class:`~tickpipe.protocol.sync.BookSync` per book,
the same events), control frames (subscribe answers) to the same
:meth:`Supervisor._on_control <tickpipe.client.supervisor.Supervisor>`, snapshot outcomes to
the same ``Channels.on_snapshot`` (bodies decoded by the same ``RestClient`` checks and venue
decoder). What the replay stands in for is only what happened *around* those calls live:
the socket (recorded frames instead), the snapshot scheduler's fetches (the recorded outcome,
for the recorded book seeding ``epoch``), the supervisor's connection life (recorded
``connected`` / ``disconnected`` / ``reconnecting`` records: the same events, and going blind
as ``_go_blind`` does: ``Channels.stream_lost``), and the clocks.

Deterministic: the clock the books and channels see is the recorded receive time
(``mono_ns``), each event's ``t`` is the recorded wall time of the record that caused it, and
the random source (backoff jitter: timing only) is seeded. Two replays of one recording give
byte-identical output.
"""

from __future__ import annotations

import asyncio
import random as _random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from tickpipe.client.channels import Channels
from tickpipe.client.config import ClientConfig
from tickpipe.client.dispatch import Dispatcher, TickerUpdate, TradeUpdate
from tickpipe.client.events import (
    ClientEvent,
    Connected,
    ConnectRetry,
    Disconnected,
    Overflow,
    Reconnecting,
)
from tickpipe.client.metrics import Metrics
from tickpipe.client.orders import OrderManager, VtsOrders
from tickpipe.client.rest import RestClient
from tickpipe.client.snapshots import SnapshotOutcome, SnapshotScheduler
from tickpipe.client.supervisor import Supervisor
from tickpipe.client.venue import exact_depth, weight_budget
from tickpipe.client.views import BookView
from tickpipe.errors import ConfigError, FrameError
from tickpipe.protocol import frames
from tickpipe.protocol.watchdog import SilenceDetector
from tickpipe.record import format as fmt
from tickpipe.record.reader import PartReader
from tickpipe.venues.base import Venue
from tickpipe.venues.registry import venue_named

REPLAY_SEED = 0  # the random source's seed: jitter only changes timing, never output


class ReplaySink(Protocol):
    """Where a replay's output goes (JSONL printer, Parquet tables). ``t``: recorded wall
    seconds of the record being replayed."""

    def event(self, ev: ClientEvent, t: float) -> None: ...

    def data(self, item: TickerUpdate | TradeUpdate, t: float) -> None: ...

    def book(self, view: BookView, t: float, mono_ns: int) -> None: ...


class RecordedError(Exception):
    """A snapshot fetch error as it was live (its text is the live error's)."""


class _ReplayDispatcher(Dispatcher):
    """The dispatcher's inputs, handed at once to the sink with the recorded time."""

    def __init__(self, replay: Replay, metrics: Metrics) -> None:
        super().__init__(metrics, 1, 1, replay.clock)
        self._replay = replay

    def event(self, ev: ClientEvent) -> None:
        r = self._replay
        r.sink.event(ev, r.wall)

    def book_changed(self, view: BookView) -> None:
        r = self._replay
        r.sink.book(view, r.wall, r.mono_ns)

    def book_lost(self, channel: str) -> None:
        pass

    def ticker(self, f: frames.Ticker | TickerUpdate) -> None:
        item = TickerUpdate.from_frame(f) if isinstance(f, frames.Ticker) else f
        self._replay.sink.data(item, self._replay.wall)

    def trade(self, f: frames.Trade | TradeUpdate) -> None:
        item = TradeUpdate.from_frame(f) if isinstance(f, frames.Trade) else f
        self._replay.sink.data(item, self._replay.wall)


class _RecordedSnapshots(SnapshotScheduler):
    """Requests are only counted: their outcomes are in the recording."""

    def request(self, channel: str, epoch: int, delay_s: float, first_seed: bool = False) -> None:
        self.requests += 1

    def cancel(self, channel: str) -> None:
        pass

    def clear(self) -> None:
        pass


@dataclass
class ReplayStats:
    parts: int = 0
    records: int = 0
    frames: int = 0
    truncated_parts: int = 0
    wall_s: float = 0.0
    ended: str | None = None  # the End record's reason, when the recording had one

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0


class Replay:
    """Feed parts (in order) through the pipeline into ``sink``. ``speed``: None = as fast
    as the CPU allows, else that multiple of the recorded pace."""

    def __init__(self, sink: ReplaySink, speed: float | None = None) -> None:
        self.sink = sink
        self.speed = speed
        self.mono_ns = 0
        self.wall_ns = 0  # recorded wall time of the record being replayed
        self.wall = 0.0
        self.connected = False
        self.stats = ReplayStats()
        self.header: fmt.Header | None = None
        self.venue: Venue | None = None
        self.channels: Channels | None = None
        self._sup: Supervisor | None = None
        self._rest: RestClient | None = None
        self._bodies: dict[str, fmt.Rest] = {}
        self._depth: int | None = None
        self._random = _random.Random(REPLAY_SEED).random

    def clock(self) -> float:
        return self.mono_ns / 1e9

    # -- set-up from the first header ----------------------------------------------------------
    def _setup(self, h: fmt.Header) -> None:
        try:
            venue = venue_named(h.venue)
        except ConfigError as exc:
            raise fmt.FormatError(f"recording of venue {h.venue!r}: {exc}") from None
        self.venue = venue
        self.header = h
        self._depth = h.snapshot_depth
        config = ClientConfig.from_kwargs(snapshot_depth=h.snapshot_depth)
        metrics = Metrics()
        dispatcher = _ReplayDispatcher(self, metrics)
        self._rest = RestClient(
            h.rest_url or "http://replay.invalid",
            "",
            "",
            1.0,
            max_snapshot_levels=h.max_snapshot_levels,
        )
        scheduler = _RecordedSnapshots(
            _no_fetch,
            lambda out: None,
            concurrency=1,
            rate_per_s=1.0,
            burst=1,
            jitter_s=0.0,
            clock=self.clock,
            random=self._random,
        )
        self.channels = ch = Channels(
            metrics=metrics,
            dispatcher=dispatcher,
            scheduler_ref=lambda: scheduler,
            sync_config=config.sync,
            clock=self.clock,
            random=self._random,
            silence=SilenceDetector(None),
            connected=lambda: self.connected,
            venue=venue,
        )
        # as live: a book reports the depth its seeding snapshot carried
        ch.exact_depth = exact_depth(weight_budget(venue, h.snapshot_depth), h.snapshot_depth)
        self._sup = Supervisor(
            stream_url=h.stream_url,
            key="",
            secret="",
            config=config,
            channels=ch,
            dispatcher=dispatcher,
            orders=OrderManager(VtsOrders(self._rest), config.order_retry, self._random),
            metrics=metrics,
            clock=self.clock,
            random=self._random,
            venue=venue,
        )
        # timers of the live supervisor are recorded as what they did (sent, snapshot_overdue)
        ch.resubscribe = lambda req: None
        ch.await_stream_snapshot = lambda channel, epoch: None
        if h.instruments_body is not None:
            self._load_instruments(h.instruments_body)

    def _load_instruments(self, body: bytes) -> None:
        assert self.venue is not None and self.channels is not None
        try:
            insts = self.venue.decode_instruments(body)
        except FrameError as exc:
            raise fmt.FormatError(f"recorded instruments do not decode: {exc}") from None
        self.channels.instruments = {i.symbol: i for i in insts}

    # -- the run -------------------------------------------------------------------------------
    async def run(self, parts: Iterable[PartReader]) -> ReplayStats:
        t0 = time.perf_counter()
        first_mono: int | None = None
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            for part in parts:
                self.stats.parts += 1
                h = part.header
                if self.header is None:
                    self._setup(h)
                elif h.venue != self.header.venue:
                    raise fmt.FormatError(
                        f"{part.path}: venue {h.venue!r}, but the first part's is "
                        f"{self.header.venue!r}: replay one recording at a time"
                    )
                for rec in part:
                    assert not isinstance(rec, fmt.Header)
                    self.stats.records += 1
                    if self.speed is not None:
                        if first_mono is None:
                            first_mono = rec.mono_ns
                        due = start + (rec.mono_ns - first_mono) / 1e9 / self.speed
                        wait = due - loop.time()
                        if wait > 0:
                            await asyncio.sleep(wait)
                    if not self._feed(rec):
                        return self.stats
                if part.truncated:
                    self.stats.truncated_parts += 1
            return self.stats
        finally:
            self.stats.wall_s = time.perf_counter() - t0

    def _feed(self, rec: fmt.Record) -> bool:
        """One record; False at the recording's End."""
        assert self.channels is not None and self._sup is not None
        self.mono_ns = rec.mono_ns  # type: ignore[union-attr]
        self.wall_ns = rec.wall_ns  # type: ignore[union-attr]
        self.wall = self.wall_ns / 1e9
        tp = type(rec)
        if tp is fmt.Frame:
            self.stats.frames += 1
            self.channels.on_text(rec.data)  # type: ignore[union-attr]
        elif tp is fmt.Rest:
            assert isinstance(rec, fmt.Rest)
            self._bodies[rec.path] = rec
            h = self.header
            if h is not None and rec.path == h.instruments_target and 200 <= rec.status < 300:
                self._load_instruments(rec.body)
        elif tp is fmt.SnapshotDelivered:
            assert isinstance(rec, fmt.SnapshotDelivered)
            self.channels.on_snapshot(self._outcome(rec))
        elif tp is fmt.Connection:
            assert isinstance(rec, fmt.Connection)
            self._connection(rec)
        elif tp is fmt.Sent:
            assert isinstance(rec, fmt.Sent)
            sup = self._sup
            sup._requests[rec.id] = (rec.kind, list(rec.channels))
            sup._next_id = max(sup._next_id, rec.id + 1)
            if rec.kind == "subscribe":
                for c in rec.channels:
                    sup.wanted[c] = None
            elif rec.kind == "unsubscribe":
                for c in rec.channels:
                    sup.wanted.pop(c, None)
        elif tp is fmt.Overflow:
            assert isinstance(rec, fmt.Overflow)
            self.sink.event(Overflow(queue="recording", dropped=rec.dropped), self.wall)
        elif tp is fmt.End:
            assert isinstance(rec, fmt.End)
            self.stats.ended = rec.reason
            return False
        return True  # OpenFrame, Event: kept for the record only

    def _outcome(self, rec: fmt.SnapshotDelivered) -> SnapshotOutcome:
        assert self.venue is not None and self._rest is not None
        if not rec.ok:
            err = RecordedError(rec.error or "")
            return SnapshotOutcome(rec.channel, rec.epoch, None, err, rec.retry_after_s)
        _, symbol = self.venue.parse_channel(rec.channel)
        body = self._bodies.get(self.venue.snapshot_target(symbol, self._depth))
        if body is None:
            err = RecordedError("snapshot body missing from the recording")
            return SnapshotOutcome(rec.channel, rec.epoch, None, err)
        venue = self.venue
        try:
            snap = self._rest._capped_snapshot(
                body.body, symbol, lambda b: venue.decode_snapshot(b, symbol)
            )
        except FrameError as exc:
            return SnapshotOutcome(rec.channel, rec.epoch, None, exc)
        return SnapshotOutcome(rec.channel, rec.epoch, snap)

    def _connection(self, rec: fmt.Connection) -> None:
        assert self.channels is not None and self._sup is not None
        f: dict[str, Any] = rec.fields
        if rec.what == "connected":
            self.connected = True
            self.sink.event(Connected(url=f["url"], session=f.get("session", "")), self.wall)
        elif rec.what == "disconnected":
            # as Supervisor._go_blind: the event, every book stale, answers forgotten
            self.connected = False
            reason = f["reason"]
            self.sink.event(
                Disconnected(
                    reason=reason, code=f.get("code"), heartbeat_age_s=f.get("heartbeat_age_s")
                ),
                self.wall,
            )
            self.channels.stream_lost("heartbeat" if reason == "heartbeat" else "disconnected")
            self._sup._requests.clear()
            self._sup._partial.clear()
        elif rec.what == "reconnecting":
            self.sink.event(Reconnecting(attempt=f["attempt"], delay_s=f["delay_s"]), self.wall)
        elif rec.what == "connect_retry":
            self.sink.event(
                ConnectRetry(attempt=f["attempt"], delay_s=f["delay_s"], error=f.get("error", "")),
                self.wall,
            )
        elif rec.what == "snapshot_overdue":
            self.channels.snapshot_overdue(f["channel"], f["epoch"], f["waited_s"])

    def views(self) -> dict[str, BookView]:
        return {} if self.channels is None else dict(self.channels.views)


async def _no_fetch(channel: str) -> frames.Snapshot:
    raise AssertionError("a replay never fetches")
