"""BookSync: every example of VTS/1 section 5, recovery without storms, illegal inputs."""

from __future__ import annotations

import random

import pytest
from protocol_model import TrueDelta, TrueStream

from tickpipe.errors import ConfigError, IllegalTransition
from tickpipe.protocol.backoff import BackoffPolicy
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

INST = Instrument("AAPL", "equity", "0.01", "1")
CH = "orderbook:AAPL"


def half() -> float:
    """Injected random source: U(0,1) always 0.5, so equal jitter multiplies by exactly 1."""
    return 0.5


@pytest.fixture
def stream() -> TrueStream:
    s = TrueStream(INST, random.Random(5))
    for _ in range(40):
        s.advance()
    return s


def make(config: SyncConfig | None = None) -> BookSync:
    sync = BookSync(CH, INST, half, config)
    sync.start()
    sync.take_events()
    return sync


def feed(sync: BookSync, d: TrueDelta, checksum: int | None = -1) -> DeltaResult:
    cs = d.checksum if checksum == -1 else checksum
    return sync.on_delta(d.seq, list(d.bids), list(d.asks), cs)


def snap(sync: BookSync, stream: TrueStream, seq: int, epoch: int | None = None) -> bool:
    s, bids, asks = stream.snapshot(seq)
    return sync.on_snapshot(sync.epoch if epoch is None else epoch, s, bids, asks)


def truth(stream: TrueStream, seq: int) -> OrderBook:
    book = OrderBook(INST)
    bids, asks = stream.book_at(seq)
    book.load(bids.items(), asks.items())
    return book


def assert_synced_at(sync: BookSync, stream: TrueStream, seq: int) -> None:
    assert sync.synced and sync.state is SyncState.LIVE
    assert sync.seq == seq
    assert sync.book == truth(stream, seq)


# -- start, buffering, bridging --------------------------------------------------------------
def test_start_asks_for_a_snapshot_at_once() -> None:
    sync = BookSync(CH, INST, half)
    assert sync.state is SyncState.IDLE and not sync.synced
    req = sync.start()
    assert req == SnapshotRequest(CH, 1, 0.0, 0, first_seed=True)
    assert sync.take_events() == [
        StateChanged(CH, SyncState.IDLE, SyncState.SYNCING, "subscribed", None),
        req,
    ]
    assert sync.take_events() == []


def test_deltas_are_buffered_while_the_snapshot_is_fetched(stream: TrueStream) -> None:
    sync = make()
    for s in range(101, 106):
        assert feed(sync, stream.deltas[s]) is DeltaResult.BUFFERED
    assert sync.buffered == 5 and not sync.synced and len(sync.book) == 0


def test_buffered_deltas_up_to_s_are_discarded_and_the_rest_applied(stream: TrueStream) -> None:
    sync = make()
    for s in range(101, 106):
        feed(sync, stream.deltas[s])
    assert snap(sync, stream, 103)
    assert_synced_at(sync, stream, 105)
    assert sync.buffered == 0
    assert sync.stats.applied == 2
    assert sync.take_events() == [
        StateChanged(CH, SyncState.SYNCING, SyncState.LIVE, "snapshot", 105),
        Synced(CH, 105, 1),
    ]


def test_first_delta_left_is_s_plus_1_exactly(stream: TrueStream) -> None:
    sync = make()
    for s in range(104, 108):
        feed(sync, stream.deltas[s])
    assert snap(sync, stream, 103)
    assert_synced_at(sync, stream, 107)


def test_unbridgeable_snapshot_is_fetched_again_with_backoff(stream: TrueStream) -> None:
    sync = make()
    for s in range(104, 107):
        feed(sync, stream.deltas[s])
    assert snap(sync, stream, 101)  # the stream starts at 104: 102 and 103 are missing
    ev = sync.take_events()
    assert ev == [Gap(CH, "stale_snapshot", 102, 104), SnapshotRequest(CH, 2, 0.25, 1, True)]
    assert sync.state is SyncState.SYNCING and not sync.synced
    assert sync.buffered == 3  # the buffer is kept: a newer snapshot can still bridge
    assert snap(sync, stream, 102) and sync.take_events()[-1] == SnapshotRequest(
        CH, 3, 0.5, 2, True
    )
    feed(sync, stream.deltas[107])
    assert snap(sync, stream, 105)
    assert_synced_at(sync, stream, 107)
    assert sync.stats.gaps["stale_snapshot"] == 2


def test_empty_buffer_syncs_at_s_and_next_must_be_s_plus_1(stream: TrueStream) -> None:
    sync = make()
    assert snap(sync, stream, 110)
    assert_synced_at(sync, stream, 110)
    assert feed(sync, stream.deltas[111]) is DeltaResult.APPLIED
    assert_synced_at(sync, stream, 111)
    sync.take_events()
    assert feed(sync, stream.deltas[113]) is DeltaResult.GAP
    assert not sync.synced
    assert sync.take_events()[0] == Gap(CH, "seq_gap", 112, 113)


def test_snapshot_ahead_of_the_stream_drops_older_deltas_as_duplicates(
    stream: TrueStream,
) -> None:
    sync = make()
    feed(sync, stream.deltas[101])
    feed(sync, stream.deltas[102])
    assert snap(sync, stream, 105)
    assert_synced_at(sync, stream, 105)
    for s in (103, 104, 105):
        assert feed(sync, stream.deltas[s]) is DeltaResult.DUPLICATE
    assert feed(sync, stream.deltas[106]) is DeltaResult.APPLIED
    assert_synced_at(sync, stream, 106)
    assert sync.stats.duplicates == 3


# -- live ---------------------------------------------------------------------------------------
def live(stream: TrueStream, at: int = 100, config: SyncConfig | None = None) -> BookSync:
    sync = make(config)
    snap(sync, stream, at)
    sync.take_events()
    return sync


def test_duplicates_are_dropped_and_counted(stream: TrueStream) -> None:
    sync = live(stream)
    for s in (101, 102, 103):
        assert feed(sync, stream.deltas[s]) is DeltaResult.APPLIED
    assert feed(sync, stream.deltas[102]) is DeltaResult.DUPLICATE
    assert feed(sync, stream.deltas[103], checksum=12345) is DeltaResult.DUPLICATE
    assert_synced_at(sync, stream, 103)
    assert sync.stats.duplicates == 2 and sync.take_events() == []


def test_duplicates_while_buffering_are_dropped(stream: TrueStream) -> None:
    sync = make()
    feed(sync, stream.deltas[101])
    feed(sync, stream.deltas[102])
    assert feed(sync, stream.deltas[101]) is DeltaResult.DUPLICATE
    assert feed(sync, stream.deltas[102]) is DeltaResult.DUPLICATE
    assert sync.buffered == 2 and sync.stats.duplicates == 2


def test_gap_unsyncs_at_once_clears_and_reseeds(stream: TrueStream) -> None:
    cfg = SyncConfig(healthy_after_deltas=2)
    sync = live(stream, config=cfg)
    for s in (101, 102, 103):
        feed(sync, stream.deltas[s])
    assert feed(sync, stream.deltas[105]) is DeltaResult.GAP  # 104 was lost
    assert not sync.synced and sync.state is SyncState.RESYNCING
    assert len(sync.book) == 0 and sync.seq is None
    assert sync.take_events() == [
        Gap(CH, "seq_gap", 104, 105),
        StateChanged(CH, SyncState.LIVE, SyncState.RESYNCING, "seq_gap", None),
        SnapshotRequest(CH, 2, 0.0, 0),  # healthy before: at once
    ]
    assert sync.buffered == 1  # the delta that revealed the gap starts the new buffer
    feed(sync, stream.deltas[106])
    assert snap(sync, stream, 104)
    assert_synced_at(sync, stream, 106)
    assert sync.stats.resyncs == 1 and sync.stats.gaps["seq_gap"] == 1


def test_checksum_mismatch_counts_as_a_gap(stream: TrueStream) -> None:
    sync = live(stream, config=SyncConfig(healthy_after_deltas=0))
    feed(sync, stream.deltas[101])
    d = stream.deltas[102]
    assert feed(sync, d, checksum=d.checksum ^ 1) is DeltaResult.GAP
    assert not sync.synced and len(sync.book) == 0
    ev = sync.take_events()
    assert ev[0] == Gap(CH, "checksum", d.checksum ^ 1, d.checksum)
    assert isinstance(ev[-1], SnapshotRequest) and ev[-1].delay_s == 0.0
    assert sync.buffered == 0  # the bad delta itself is not kept
    feed(sync, stream.deltas[103])
    assert snap(sync, stream, 102)
    assert_synced_at(sync, stream, 103)


def test_checksum_none_or_verification_off_skips_the_check(stream: TrueStream) -> None:
    sync = live(stream)
    assert feed(sync, stream.deltas[101], checksum=None) is DeltaResult.APPLIED
    off = live(stream, config=SyncConfig(verify_checksum=False))
    assert feed(off, stream.deltas[101], checksum=1) is DeltaResult.APPLIED
    assert off.synced


def test_checksum_mismatch_while_replaying_the_buffer_backs_off(stream: TrueStream) -> None:
    sync = make()
    feed(sync, stream.deltas[101])
    feed(sync, stream.deltas[102], checksum=7)
    assert snap(sync, stream, 100)
    assert not sync.synced and sync.state is SyncState.RESYNCING and len(sync.book) == 0
    ev = sync.take_events()
    assert ev[0] == Gap(CH, "checksum", 7, stream.deltas[102].checksum)
    assert ev[-1] == SnapshotRequest(CH, 2, 0.25, 1, True)


def test_breaking_soon_after_sync_backs_off_instead_of_storming(stream: TrueStream) -> None:
    """A gateway whose every few deltas break the book must not get a snapshot storm."""
    sync = live(stream, config=SyncConfig(healthy_after_deltas=5))
    delays = []
    seq = 100
    for _ in range(4):
        d = stream.deltas[seq + 1]
        feed(sync, d, checksum=d.checksum ^ 0xFF)  # breaks at once, no healthy spell
        req = sync.take_events()[-1]
        assert isinstance(req, SnapshotRequest)
        delays.append(req.delay_s)
        seq += 1
        snap(sync, stream, seq)
    assert delays == [0.25, 0.5, 1.0, 2.0]
    for s in range(seq + 1, seq + 6):  # a healthy spell
        assert feed(sync, stream.deltas[s]) is DeltaResult.APPLIED
    feed(sync, stream.deltas[seq + 7])
    req = sync.take_events()[-1]
    assert isinstance(req, SnapshotRequest) and (req.delay_s, req.attempt) == (0.0, 0)


# -- epochs, failures --------------------------------------------------------------------------
def test_late_snapshot_of_an_old_epoch_is_ignored(stream: TrueStream) -> None:
    sync = make()
    old = sync.epoch
    feed(sync, stream.deltas[101])
    assert snap(sync, stream, 100)
    feed(sync, stream.deltas[103])  # gap: new epoch
    assert sync.epoch == old + 1
    assert not snap(sync, stream, 100, epoch=old)
    assert not sync.on_snapshot_failed(old)
    assert sync.stats.late_snapshots == 2 and not sync.synced
    assert snap(sync, stream, 102)
    assert_synced_at(sync, stream, 103)


def test_snapshot_failure_backs_off_and_honours_retry_after() -> None:
    sync = make()
    assert sync.on_snapshot_failed(sync.epoch)
    assert sync.take_events() == [SnapshotRequest(CH, 2, 0.25, 1, True)]
    assert sync.on_snapshot_failed(sync.epoch, retry_after_s=7.0)
    assert sync.take_events() == [SnapshotRequest(CH, 3, 7.0, 2, True)]
    assert sync.on_snapshot_failed(sync.epoch, retry_after_s=0.1)  # backoff wins when longer
    assert sync.take_events() == [SnapshotRequest(CH, 4, 1.0, 3, True)]
    assert sync.stats.snapshot_failures == 3 and sync.state is SyncState.SYNCING


def test_snapshot_retry_delay_is_capped() -> None:
    cfg = SyncConfig(snapshot_retry=BackoffPolicy(base_s=1, cap_s=4, healthy_after_s=0))
    sync = make(cfg)
    delays = []
    for _ in range(6):
        sync.on_snapshot_failed(sync.epoch)
        req = sync.take_events()[-1]
        assert isinstance(req, SnapshotRequest)
        delays.append(req.delay_s)
    assert delays == [1, 2, 4, 4, 4, 4]


# -- overflow, bad frames ----------------------------------------------------------------------
def test_a_full_buffer_keeps_the_newest_deltas_and_is_not_a_gap(stream: TrueStream) -> None:
    sync = make(SyncConfig(max_buffered_deltas=3))
    for s in range(101, 119):
        assert feed(sync, stream.deltas[s]) is DeltaResult.BUFFERED
        assert sync.buffered <= 3
    assert sync.take_events() == []  # no gap, no second request
    assert sync.stats.trimmed == 15 and sync.stats.gaps["overflow"] == 0
    assert snap(sync, stream, 115)  # kept: 116, 117, 118
    assert_synced_at(sync, stream, 118)


def test_snapshot_ahead_of_every_delta_kept_syncs_and_later_ones_are_duplicates(
    stream: TrueStream,
) -> None:
    """The normal case under back-pressure: the gateway's present is ahead of the socket."""
    sync = make(SyncConfig(max_buffered_deltas=3))
    for s in range(101, 110):
        feed(sync, stream.deltas[s])
    assert snap(sync, stream, 130)
    assert_synced_at(sync, stream, 130)
    for s in range(110, 131):  # still in the socket: covered by the snapshot
        assert feed(sync, stream.deltas[s]) is DeltaResult.DUPLICATE
    assert feed(sync, stream.deltas[131]) is DeltaResult.APPLIED
    assert_synced_at(sync, stream, 131)
    assert sync.stats.gaps == dict.fromkeys(sync.stats.gaps, 0)


def test_snapshot_behind_what_this_book_trimmed_is_asked_again_at_once(
    stream: TrueStream,
) -> None:
    """The snapshot would have bridged had the book kept more: the reader is ahead of the
    snapshot service, not the service behind its own stream. Ask again now, no backoff."""
    sync = make(SyncConfig(max_buffered_deltas=3, max_stale_snapshots=5))
    for s in range(101, 111):  # kept: 108, 109, 110
        feed(sync, stream.deltas[s])
    epoch = sync.epoch
    assert snap(sync, stream, 104)
    ev = sync.take_events()
    assert ev[0] == Gap(CH, "stale_snapshot", 105, 108)
    req = ev[-1]
    assert isinstance(req, SnapshotRequest) and req.delay_s == 0.0 and req.epoch == epoch + 1
    assert sync.buffered == 3 and not sync.synced
    assert snap(sync, stream, 107)
    assert_synced_at(sync, stream, 110)


def test_snapshot_behind_the_first_delta_ever_kept_backs_off(stream: TrueStream) -> None:
    """Nothing trimmed: the snapshot service lags the stream. That one waits the backoff."""
    sync = make(SyncConfig(max_buffered_deltas=100))
    for s in range(105, 111):
        feed(sync, stream.deltas[s])
    assert snap(sync, stream, 101)
    req = sync.take_events()[-1]
    assert isinstance(req, SnapshotRequest) and req.delay_s > 0


def test_trimmed_retries_at_once_are_bounded_then_back_off(stream: TrueStream) -> None:
    sync = make(SyncConfig(max_buffered_deltas=2, max_stale_snapshots=3))
    delays = []
    seq = 101
    for _ in range(6):
        for _ in range(5):
            feed(sync, stream.deltas[seq])
            seq += 1
        assert snap(sync, stream, seq - 5)  # always 3 behind the oldest kept
        req = sync.take_events()[-1]
        assert isinstance(req, SnapshotRequest)
        delays.append(req.delay_s)
    assert delays[:2] == [0.0, 0.0] and delays[2] > 0  # the third in a row backs off
    assert delays[3:5] == [0.0, 0.0] and delays[5] > delays[2]
    assert sync.stats.buffer_drops == 2


def test_a_long_wait_for_the_snapshot_costs_no_gap(stream: TrueStream) -> None:
    """Time queued in the scheduler does not count against the buffer: the book trims while
    it waits, and the snapshot taken when the request is finally served is newer."""
    sync = make(SyncConfig(max_buffered_deltas=4))
    for s in range(101, 141):
        feed(sync, stream.deltas[s])
    assert snap(sync, stream, 138)
    assert_synced_at(sync, stream, 140)
    assert sync.stats.gaps == dict.fromkeys(sync.stats.gaps, 0)


def test_first_seed_requests_are_marked_until_the_book_has_synced(stream: TrueStream) -> None:
    sync = BookSync(CH, INST, half)
    assert sync.start().first_seed
    feed(sync, stream.deltas[101])
    assert snap(sync, stream, 100)
    assert sync.synced
    sync.take_events()
    sync.on_stream_lost("disconnected")
    assert not sync.start().first_seed  # a re-seed: it was synced once
    feed(sync, stream.deltas[101], checksum=None)


def test_overflow_upstream_while_live_resyncs(stream: TrueStream) -> None:
    sync = live(stream)
    feed(sync, stream.deltas[101])
    sync.on_overflow()
    assert not sync.synced and sync.state is SyncState.RESYNCING
    ev = sync.take_events()
    assert ev[0] == Gap(CH, "overflow", 102, None)
    assert isinstance(ev[-1], SnapshotRequest)


def test_overflow_upstream_while_buffering_clears_the_buffer(stream: TrueStream) -> None:
    sync = make()
    feed(sync, stream.deltas[101])
    epoch = sync.epoch
    sync.on_overflow()
    assert sync.buffered == 0 and sync.epoch == epoch
    assert sync.take_events() == [Gap(CH, "overflow", 102, None)]


def test_bad_frame_while_live_is_a_gap(stream: TrueStream) -> None:
    sync = live(stream)
    sync.on_bad_frame("undecodable delta")
    assert not sync.synced
    ev = sync.take_events()
    assert ev[0] == Gap(CH, "bad_frame", 101, None)
    assert ev[1] == StateChanged(CH, SyncState.LIVE, SyncState.RESYNCING, "undecodable delta", None)
    assert sync.stats.gaps["bad_frame"] == 1


def test_bad_frame_while_buffering_keeps_the_snapshot_in_flight(stream: TrueStream) -> None:
    sync = make()
    feed(sync, stream.deltas[101])
    epoch = sync.epoch
    sync.on_bad_frame()  # 102 lost
    assert sync.buffered == 0 and sync.epoch == epoch
    assert sync.take_events() == [Gap(CH, "bad_frame", 102, None)]
    feed(sync, stream.deltas[103])
    assert snap(sync, stream, 101)  # cannot bridge 102: fetch again
    assert sync.take_events()[0] == Gap(CH, "stale_snapshot", 102, 103)
    assert snap(sync, stream, 102)
    assert_synced_at(sync, stream, 103)


# -- stream lost, stop, illegal inputs ---------------------------------------------------------
def test_stream_lost_is_stale_at_once_and_start_reseeds(stream: TrueStream) -> None:
    sync = live(stream)
    feed(sync, stream.deltas[101])
    epoch = sync.epoch
    sync.on_stream_lost("heartbeat_timeout")
    assert sync.state is SyncState.STALE and not sync.synced
    assert sync.book == truth(stream, 101)  # kept for display, marked not synced
    assert sync.take_events() == [
        StateChanged(CH, SyncState.LIVE, SyncState.STALE, "heartbeat_timeout", 101)
    ]
    assert not snap(sync, stream, 101, epoch=epoch)
    sync.on_stream_lost("again")  # no-op
    assert sync.take_events() == []
    req = sync.start()
    assert req.delay_s == 0.0 and len(sync.book) == 0 and sync.seq is None
    feed(sync, stream.deltas[105])
    assert snap(sync, stream, 104)
    assert_synced_at(sync, stream, 105)


def test_stop_forgets_everything(stream: TrueStream) -> None:
    sync = live(stream)
    epoch = sync.epoch
    sync.stop()
    assert sync.state is SyncState.IDLE and len(sync.book) == 0 and sync.seq is None
    assert not snap(sync, stream, 100, epoch=epoch)
    sync.stop()
    assert sync.take_events() == [
        StateChanged(CH, SyncState.LIVE, SyncState.IDLE, "unsubscribed", None)
    ]
    sync.start()
    assert sync.state is SyncState.SYNCING


@pytest.mark.parametrize(
    ("state_maker", "state", "call", "event"),
    [
        ("live", "live", lambda s: s.start(), "start"),
        ("syncing", "syncing", lambda s: s.start(), "start"),
        ("idle", "idle", lambda s: s.on_delta(1, [], [], None), "delta"),
        ("stale", "stale", lambda s: s.on_delta(1, [], [], None), "delta"),
        ("idle", "idle", lambda s: s.on_bad_frame(), "bad_frame"),
        ("stale", "stale", lambda s: s.on_overflow(), "overflow"),
    ],
)
def test_illegal_inputs_name_state_and_input(
    stream: TrueStream, state_maker: str, state: str, call: object, event: str
) -> None:
    if state_maker == "idle":
        sync = BookSync(CH, INST, half)
    elif state_maker == "syncing":
        sync = make()
    else:
        sync = live(stream)
        if state_maker == "stale":
            sync.on_stream_lost("closed")
    with pytest.raises(IllegalTransition) as ei:
        call(sync)  # type: ignore[operator]
    assert (ei.value.state, ei.value.event) == (state, event)
    assert state in str(ei.value) and event in str(ei.value)


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="max_buffered_deltas"):
        SyncConfig(max_buffered_deltas=0)
    with pytest.raises(ConfigError, match="healthy_after_deltas"):
        SyncConfig(healthy_after_deltas=-1)


def test_a_bogus_seq_far_ahead_cannot_wedge_the_buffer(stream: TrueStream) -> None:
    """Bounded tries: after max_stale_snapshots unbridgeable snapshots the buffer is dropped."""
    sync = make(SyncConfig(max_stale_snapshots=3))
    sync.on_delta(10**9, [], [], None)  # a garbled seq from a buggy gateway
    for s in range(101, 104):
        assert feed(sync, stream.deltas[s]) is DeltaResult.DUPLICATE  # "older" than 10**9
    for at in (101, 102):
        assert snap(sync, stream, at)
        assert sync.buffered == 1 and not sync.synced
    assert snap(sync, stream, 103)  # the third in a row: the buffer goes
    assert sync.buffered == 0 and sync.stats.buffer_drops == 1
    feed(sync, stream.deltas[104])
    feed(sync, stream.deltas[105])
    assert snap(sync, stream, 104)
    assert_synced_at(sync, stream, 105)


def test_a_lagging_snapshot_service_catches_up_on_the_kept_buffer(stream: TrueStream) -> None:
    sync = make()
    for s in range(104, 110):
        feed(sync, stream.deltas[s])
    for at in (100, 101, 102):  # each snapshot a little newer, none bridging yet
        assert snap(sync, stream, at)
    assert sync.buffered == 6
    assert snap(sync, stream, 103)
    assert_synced_at(sync, stream, 109)


def test_the_buffer_is_bounded_in_levels_too(stream: TrueStream) -> None:
    """Deltas carrying many levels each trim by levels before the delta count is reached."""
    sync = make(SyncConfig(max_buffered_deltas=1000, max_buffered_levels=10))
    for s in range(101, 141):
        feed(sync, stream.deltas[s])
        assert sync._buffered_levels <= 10
        assert sync._buffered_levels == sum(len(b) + len(a) for _, b, a, _ in sync._buffer)
    assert sync.stats.trimmed > 0 and sync.take_events() == []
    first = sync._buffer[0][0]
    assert snap(sync, stream, first - 1)
    assert_synced_at(sync, stream, 140)
    with pytest.raises(ConfigError, match="max_buffered_levels"):
        SyncConfig(max_buffered_levels=0)


def test_rules_that_cannot_bridge_a_rest_snapshot_are_refused() -> None:
    from tickpipe.protocol.normalised import Continuity, Seeding
    from tickpipe.protocol.sync import SyncRules

    for rule in (Continuity.NONE, Continuity.CONNECTION):
        with pytest.raises(ConfigError, match="cannot bridge a REST snapshot"):
            SyncRules(continuity=rule, seeding=Seeding.REST)
        SyncRules(continuity=rule, seeding=Seeding.IN_BAND, checksum=None)  # fine in band
    with pytest.raises(ConfigError, match="depth"):
        SyncRules(depth=0)
