"""SeqTracker against bogus seqs (issue 13): one bad seq must not silence a channel."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tickpipe.protocol.seqtrack import MAX_SEQ_JUMP, SeqResult, SeqTracker


def test_a_huge_jump_is_an_outlier_dropped_and_the_stream_goes_on() -> None:
    t = SeqTracker("ticker:X")
    t.feed(1)
    t.feed(2)
    assert t.feed(2**62) is SeqResult.OUTLIER
    assert t.last_anomaly is not None and "jumps more than" in t.last_anomaly
    assert [t.feed(s) for s in (3, 4)] == [SeqResult.OK, SeqResult.OK]
    assert (t.seq, t.outliers, t.gaps, t.missed, t.duplicates) == (4, 1, 0, 0, 0)


def test_a_jump_within_the_bound_is_a_gap_as_before() -> None:
    t = SeqTracker("trades:X")
    t.feed(1)
    assert t.feed(1 + MAX_SEQ_JUMP) is SeqResult.GAP
    assert t.missed == MAX_SEQ_JUMP - 1


def test_a_real_renumbering_far_ahead_is_followed_after_three_frames() -> None:
    t = SeqTracker("ticker:X", max_jump=100)
    t.feed(5)
    got = [t.feed(s) for s in (10_000, 10_001, 10_002, 10_003)]
    assert got == [SeqResult.OUTLIER, SeqResult.OUTLIER, SeqResult.REBASELINED, SeqResult.OK]
    assert t.rebaselines == 1 and t.seq == 10_003
    assert t.last_anomaly is not None and "from 5 to 10002" in t.last_anomaly


def test_a_bogus_baseline_within_the_bound_is_left_after_three_frames() -> None:
    """The bogus frame came first, or jumped less than the bound: the real stream, now
    "behind", re-baselines after three frames that follow each other."""
    t = SeqTracker("ticker:X")
    t.feed(1)
    assert t.feed(500_000) is SeqResult.GAP  # believed: within the bound
    got = [t.feed(s) for s in (2, 3, 4, 5)]
    assert got == [SeqResult.DUPLICATE, SeqResult.DUPLICATE, SeqResult.REBASELINED, SeqResult.OK]
    assert t.seq == 5


def test_duplicates_and_old_frames_out_of_order_never_rebaseline() -> None:
    t = SeqTracker("ticker:X")
    for s in range(1, 11):
        t.feed(s)
    for s in (10, 10, 7, 9, 8, 10, 9):
        assert t.feed(s) is SeqResult.DUPLICATE
    assert t.seq == 10 and t.rebaselines == 0
    assert t.feed(11) is SeqResult.OK


@given(
    st.lists(st.integers(min_value=0, max_value=2**63), max_size=20),
    st.integers(min_value=0, max_value=2**40),
)
def test_no_burst_of_bogus_seqs_silences_a_channel(bogus: list[int], start: int) -> None:
    """Whatever came before, a stream counting up is followed again within 3 frames."""
    t = SeqTracker("ticker:X")
    for s in bogus:
        t.feed(s)
    results = [t.feed(start + i) for i in range(6)]
    accepted = [
        i for i, r in enumerate(results) if r not in (SeqResult.DUPLICATE, SeqResult.OUTLIER)
    ]
    assert accepted and accepted[0] <= 2 and accepted == list(range(accepted[0], 6))
    assert t.seq == start + 5
