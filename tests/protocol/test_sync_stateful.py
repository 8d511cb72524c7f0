"""BookSync against a trivially correct model, under random faults (hypothesis, stateful).

The model is the true stream (``protocol_model.TrueStream``): a small random market whose
book after every seq is kept as plain dicts, each delta carrying the CRC-32 of that book. The
rules play the network and the shell: deltas are produced by the gateway, then delivered,
dropped, duplicated, reordered or given a bad checksum; snapshots arrive at random seqs (too
old, exact, ahead of the stream), fail, or arrive late for an old epoch; the client floods in
many more deltas than the buffer holds while its snapshot is queued (the buffer keeps the newest,
no gap); a bound upstream overflows; frames are garbled; the stream is lost and re-subscribed.

Invariants: whenever the machine says synced, its book equals the model's book at its seq; a
gap is reported by the very frame that reveals it; a full buffer is never a gap, and a snapshot
within the newest ``max_buffered_deltas`` deltas read always bridges; while seeding exactly one
snapshot request is outstanding; the buffer never exceeds its bound and nothing else grows
without bound. At the end, a clean network and fresh snapshots always bring the book back to
synced (liveness).
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from protocol_model import TrueDelta, TrueStream

from tickpipe import hotpath
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.sync import (
    BookSync,
    DeltaResult,
    Gap,
    SnapshotRequest,
    StateChanged,
    SyncConfig,
    Synced,
    SyncState,
)

INST = Instrument("XAU-USD", "metal", "0.50", "1")
CH = "orderbook:XAU-USD"
MAX_BUFFER = 6
SEEDING = (SyncState.SYNCING, SyncState.RESYNCING)

Wire = tuple[TrueDelta, bool]  # a delta as it travels, and whether it is what the gateway sent


def _texts(levels: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> list[tuple[str, str]]:
    """Integer levels as the wire writes them (an off-grid corrupt level stays off-grid)."""
    return [(INST.format_price(p), INST.format_size(s)) for p, s in levels]


class BookSyncVersusModel(RuleBasedStateMachine):
    TEXTS = False  # deltas through BookSync.on_delta_texts first, as the client feeds them

    def __init__(self) -> None:
        super().__init__()
        self.wire: list[Wire] = []
        self.delivered: list[Wire] = []
        self.old_epochs: list[int] = []
        self.requested_epoch = 0
        self.connected = True
        self.max_epoch = 0
        self.overflow_expected = False

    @initialize(seed=st.integers(0, 2**32 - 1), jitter=st.floats(0, 0.999))
    def setup(self, seed: int, jitter: float) -> None:
        # width 20: at most 10 levels a side, so the checksum covers every level
        self.stream = TrueStream(INST, random.Random(seed), width=20)
        cfg = SyncConfig(max_buffered_deltas=MAX_BUFFER, healthy_after_deltas=3)
        self.sync = BookSync(CH, INST, lambda: jitter, cfg)
        self.sync.start()
        self.drain()

    # -- helpers ------------------------------------------------------------------------------
    def truth(self, seq: int) -> OrderBook:
        bids, asks = self.stream.book_at(seq)
        book = OrderBook(INST)
        book.load(bids.items(), asks.items())
        return book

    def drain(self) -> None:
        events = self.sync.take_events()
        assert len(events) <= 4, events
        for ev in events:
            assert ev.channel == CH
            if isinstance(ev, SnapshotRequest):
                assert ev.epoch > self.requested_epoch
                assert ev.delay_s >= 0
                if self.requested_epoch:
                    self.old_epochs.append(self.requested_epoch)
                self.requested_epoch = ev.epoch
            elif isinstance(ev, Synced):
                assert ev.seq == self.sync.seq and ev.epoch == self.sync.epoch
            elif isinstance(ev, StateChanged):
                assert ev.old is not ev.new
            else:
                assert isinstance(ev, Gap)
                # only a bound upstream (the overflow rule) overflows; a full buffer trims
                assert ev.reason != "overflow" or self.overflow_expected, ev
        del self.old_epochs[:-8]  # keep a few for late snapshots; bounded

    def deliver(self, item: Wire) -> DeltaResult:
        d, honest = item
        sync = self.sync
        before = sync.state
        last = sync.seq
        buf_last = sync._buffer[-1][0] if sync._buffer else None
        result = None
        if self.TEXTS:  # the client's route: the compiled one-step path on the wire's texts
            result = sync.on_delta_texts(d.seq, _texts(d.bids), _texts(d.asks), d.checksum)
        if result is None:  # else (or declined): the reference route
            result = sync.on_delta(d.seq, list(d.bids), list(d.asks), d.checksum)
        if before is SyncState.LIVE:
            assert last is not None
            if d.seq <= last:
                assert result is DeltaResult.DUPLICATE
            elif d.seq > last + 1:
                # the first frame that reveals a gap reports it
                assert result is DeltaResult.GAP
                assert not sync.synced
            elif honest:
                assert result is DeltaResult.APPLIED
            else:  # a bad checksum, or content that disagrees with its checksum
                assert result is DeltaResult.GAP or sync.book == self.truth(d.seq)
        elif buf_last is not None and d.seq > buf_last + 1:
            assert result is DeltaResult.GAP
        elif buf_last is not None and d.seq <= buf_last:
            assert result is DeltaResult.DUPLICATE
        self.delivered.append(item)
        del self.delivered[:-20]
        self.drain()
        return result

    def snapshot(self, seq: int, epoch: int | None = None) -> bool:
        s, bids, asks = self.stream.snapshot(seq)
        taken = self.sync.on_snapshot(self.sync.epoch if epoch is None else epoch, s, bids, asks)
        self.drain()
        return taken

    # -- the gateway and the network ----------------------------------------------------------
    @rule(n=st.integers(1, 3))
    def produce(self, n: int) -> None:
        for _ in range(n):
            d = self.stream.advance()
            if self.connected:  # frames sent while we are disconnected never reach us
                self.wire.append((d, True))

    @precondition(lambda self: self.wire and self.sync.state not in (SyncState.STALE,))
    @rule()
    def deliver_next(self) -> None:
        self.deliver(self.wire.pop(0))

    @precondition(lambda self: self.wire)
    @rule()
    def drop_next(self) -> None:
        self.wire.pop(0)

    @precondition(lambda self: self.delivered and self.connected)
    @rule(data=st.data())
    def deliver_duplicate(self, data: st.DataObject) -> None:
        self.deliver(data.draw(st.sampled_from(self.delivered)))

    @precondition(lambda self: len(self.wire) >= 2)
    @rule()
    def reorder(self) -> None:
        self.wire[0], self.wire[1] = self.wire[1], self.wire[0]

    @precondition(lambda self: self.wire)
    @rule(flip=st.integers(1, 2**32 - 1))
    def corrupt_checksum(self, flip: int) -> None:
        d, _ = self.wire[0]
        self.wire[0] = (dataclasses.replace(d, checksum=d.checksum ^ flip), False)

    @precondition(lambda self: self.wire)
    @rule(data=st.data())
    def corrupt_content(self, data: st.DataObject) -> None:
        """The levels change in flight but the checksum is the gateway's: only the checksum
        can tell (every level is within the top 10 in this market)."""
        d, _ = self.wire[0]
        tick, lot = INST.tick_units, INST.lot_units
        price = data.draw(st.integers(1, self.stream.width)) * tick
        size = data.draw(st.integers(0, 6)) * lot
        if data.draw(st.booleans()):
            bad = dataclasses.replace(d, bids=[*d.bids, (price, size)])
        else:
            bad = dataclasses.replace(d, asks=[*d.asks, (price, size)])
        self.wire[0] = (bad, False)

    # -- the shell ----------------------------------------------------------------------------
    @precondition(lambda self: self.sync.state in SEEDING)
    @rule(data=st.data())
    def snapshot_arrives(self, data: st.DataObject) -> None:
        """At any seq the gateway has reached: too old, exact, or ahead of what we got."""
        seq = data.draw(st.integers(self.stream.start_seq, self.stream.seq))
        assert self.snapshot(seq)

    @precondition(lambda self: self.sync.state in SEEDING)
    @rule()
    def snapshot_of_the_latest_seq(self) -> None:
        assert self.snapshot(self.stream.seq)

    @precondition(lambda self: self.sync.state in SEEDING)
    @rule(retry_after=st.none() | st.floats(0, 60))
    def snapshot_fails(self, retry_after: float | None) -> None:
        epoch = self.sync.epoch
        assert self.sync.on_snapshot_failed(epoch, retry_after)
        req = self.sync.take_events()[-1]
        assert isinstance(req, SnapshotRequest)
        assert retry_after is None or req.delay_s >= retry_after
        self.old_epochs.append(self.requested_epoch)
        self.requested_epoch = req.epoch

    @precondition(lambda self: self.old_epochs)
    @rule(data=st.data())
    def late_snapshot(self, data: st.DataObject) -> None:
        epoch = data.draw(st.sampled_from(self.old_epochs))
        seq = data.draw(st.integers(self.stream.start_seq, self.stream.seq))
        state, book_seq = self.sync.state, self.sync.seq
        assert not self.snapshot(seq, epoch=epoch)
        assert not self.sync.on_snapshot_failed(epoch)
        assert (self.sync.state, self.sync.seq) == (state, book_seq)

    @precondition(lambda self: self.sync.state in SEEDING and self.connected)
    @rule(n=st.integers(MAX_BUFFER + 1, 4 * MAX_BUFFER), back=st.integers(0, MAX_BUFFER))
    def flood_while_the_snapshot_is_queued(self, n: int, back: int) -> None:
        """A CPU-bound client: many more deltas than the buffer holds arrive in order while
        the snapshot waits; the snapshot then taken is within the newest ``MAX_BUFFER``
        deltas read (or ahead of them): it must bridge, with no gap of any kind."""
        for item in self.wire:  # what was in flight arrives first (it may reveal a gap)
            self.deliver(item)
        self.wire.clear()
        self.deliver((self.stream.advance(), True))  # may reveal what was lost before
        gaps_before = dict(self.sync.stats.gaps)
        for _ in range(n - 1):
            d = self.stream.advance()
            assert self.deliver((d, True)) is not DeltaResult.GAP
        assert self.sync.stats.gaps == gaps_before
        assert self.sync.buffered == MAX_BUFFER
        assert self.snapshot(self.stream.seq - back)
        assert self.sync.synced and self.sync.seq == self.stream.seq
        assert self.sync.stats.gaps == gaps_before

    @precondition(lambda self: self.sync.state in (*SEEDING, SyncState.LIVE))
    @rule()
    def overflow(self) -> None:
        self.overflow_expected = True
        self.sync.on_overflow()
        self.drain()
        self.overflow_expected = False

    @precondition(lambda self: self.sync.state in (*SEEDING, SyncState.LIVE) and self.wire)
    @rule()
    def garbled_frame(self) -> None:
        self.wire.pop(0)  # it never decodes: the delta it carried is lost
        self.sync.on_bad_frame()
        self.drain()

    @precondition(lambda self: self.connected)
    @rule()
    def stream_lost(self) -> None:
        self.sync.on_stream_lost("closed")
        self.drain()
        assert not self.sync.synced
        self.wire.clear()
        self.connected = False

    @precondition(lambda self: not self.connected)
    @rule()
    def reconnect(self) -> None:
        self.connected = True
        self.sync.start()
        self.drain()

    @precondition(lambda self: self.connected)
    @rule()
    def resubscribe(self) -> None:
        self.sync.stop()
        self.wire.clear()
        self.sync.start()
        self.drain()

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def synced_book_equals_the_truth(self) -> None:
        sync = self.sync
        if sync.synced:
            assert sync.seq is not None
            assert sync.book == self.truth(sync.seq)
            assert (
                sync.book.checksum()
                == self.stream.deltas.get(
                    sync.seq, TrueDelta(0, [], [], sync.book.checksum())
                ).checksum
            )
        else:
            assert sync.state is not SyncState.LIVE

    @invariant()
    def one_request_outstanding_while_seeding(self) -> None:
        if self.sync.state in SEEDING:
            assert self.requested_epoch == self.sync.epoch
        assert self.sync.epoch >= self.max_epoch
        self.max_epoch = self.sync.epoch

    @invariant()
    def nothing_grows_without_bound(self) -> None:
        sync = self.sync
        assert sync.buffered <= MAX_BUFFER
        assert sync.events == []
        assert len(sync.book) <= self.stream.width
        for side in (sync.book.bids, sync.book.asks):
            assert len(side.top_texts) <= 10
            if side.top_valid:  # kept in step with the book by apply()
                assert side.top_texts == side.level_texts(10)
        if sync.state in (SyncState.IDLE,):
            assert len(sync.book) == 0

    def teardown(self) -> None:
        """Liveness: a clean network and fresh snapshots always bring the book back."""
        if not hasattr(self, "sync"):
            return
        if not self.connected:
            self.reconnect()
        for _ in range(4):
            while self.wire:
                self.deliver(self.wire.pop(0))
            if self.sync.state in SEEDING:
                self.snapshot(self.stream.seq)
            elif self.sync.seq == self.stream.seq:
                break
            else:  # frames were lost: the next one reveals it
                self.wire.append((self.stream.advance(), True))
        assert self.sync.synced and self.sync.seq == self.stream.seq
        assert self.sync.book == self.truth(self.stream.seq)


BookSyncVersusModel.TestCase.settings = settings(
    max_examples=1000,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBookSyncVersusModel = BookSyncVersusModel.TestCase


class TextsVersusModel(BookSyncVersusModel):
    """The same model, fed as the client feeds VTS/1 deltas: the compiled one-step path
    (``on_delta_texts``) first, the reference route when it declines."""

    TEXTS = True


TextsVersusModel.TestCase.settings = settings(
    max_examples=400,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestTextsVersusModel = pytest.mark.skipif(hotpath.hot is None, reason=hotpath.describe())(
    TextsVersusModel.TestCase
)
