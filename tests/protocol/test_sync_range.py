"""BookSync with Binance's RANGE rule (``on_update``): a snapshot newer than every buffered
update makes the book LIVE, and the next update must then BRIDGE it (``U <= S + 1 <= u``)."""

from __future__ import annotations

from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import Continuity, Seeding
from tickpipe.protocol.sync import BookSync, DeltaResult, Gap, SnapshotRequest, SyncRules

RULES = SyncRules(continuity=Continuity.RANGE, seeding=Seeding.REST, checksum=None)
INST = Instrument("BTCUSDT", "crypto", "0.01", "0.001")


def _sync() -> tuple[BookSync, int]:
    s = BookSync("orderbook:BTCUSDT", INST, lambda: 0.5, rules=RULES)
    s.start()
    req = next(e for e in s.take_events() if isinstance(e, SnapshotRequest))
    return s, req.epoch


def test_update_straddling_a_newer_snapshot_bridges_it() -> None:
    s, epoch = _sync()
    assert s.on_snapshot(epoch, 14, [(10_000, 1_000)], [(10_100, 1_000)])
    assert s.synced and s.seq == 14
    s.take_events()
    # the event covering 13..16 was still in the socket: it bridges 14 (U=13 <= 15 <= u=16)
    assert s.on_update([(10_000, 2_000)], [], 16, first_id=13) is DeltaResult.APPLIED
    assert s.seq == 16 and not any(isinstance(e, Gap) for e in s.take_events())
    # from then on the updates must follow: U == previous u + 1
    assert s.on_update([], [], 18, first_id=17) is DeltaResult.APPLIED
    assert s.on_update([], [], 22, first_id=20) is DeltaResult.GAP


def test_update_older_than_the_snapshot_is_covered_then_next_bridges() -> None:
    s, epoch = _sync()
    assert s.on_snapshot(epoch, 14, [], [])
    assert s.on_update([], [], 12, first_id=10) is DeltaResult.DUPLICATE
    assert s.on_update([], [], 15, first_id=13) is DeltaResult.APPLIED
    assert s.on_update([], [], 17, first_id=17) is DeltaResult.GAP  # 16 missed
