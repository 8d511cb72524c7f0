"""SeqTracker: baseline, gaps counted and reported, duplicates, missed while blind."""

from __future__ import annotations

from tickpipe.protocol.seqtrack import SeqGap, SeqResult, SeqTracker


def test_first_frame_sets_the_baseline() -> None:
    t = SeqTracker("trades:AAPL")
    assert t.feed(311) is SeqResult.BASELINE
    assert (t.seq, t.frames, t.gaps, t.missed) == (311, 1, 0, 0)
    assert t.feed(312) is SeqResult.OK and t.seq == 312


def test_gaps_are_counted_and_reported_without_resync() -> None:
    t = SeqTracker("trades:AAPL")
    t.feed(10)
    assert t.feed(14) is SeqResult.GAP
    assert t.last_gap == SeqGap("trades:AAPL", 11, 14) and t.last_gap.missed == 3
    assert t.seq == 14  # carries on from the frame that showed the gap
    assert t.feed(15) is SeqResult.OK
    assert t.feed(17) is SeqResult.GAP
    assert (t.gaps, t.missed, t.frames) == (2, 4, 4)


def test_duplicates_and_old_frames_are_dropped() -> None:
    t = SeqTracker("ticker:BTC-USD")
    t.feed(5)
    t.feed(6)
    assert t.feed(6) is SeqResult.DUPLICATE
    assert t.feed(2) is SeqResult.DUPLICATE
    assert (t.duplicates, t.seq, t.gaps) == (2, 6, 0)


def test_missed_while_blind_is_not_a_seq_gap() -> None:
    t = SeqTracker("trades:XAU-USD")
    t.feed(100)
    t.rebaseline()  # stream lost, resubscribed
    assert t.feed(150) is SeqResult.BASELINE
    assert (t.missed_while_blind, t.gaps, t.missed) == (49, 0, 0)
    t.rebaseline()
    assert t.feed(151) is SeqResult.BASELINE  # nothing missed
    assert t.missed_while_blind == 49
    assert t.feed(152) is SeqResult.OK


def test_rebaseline_before_any_frame_and_a_lower_seq_after_reconnect() -> None:
    t = SeqTracker("ticker:X")
    t.rebaseline()
    assert t.feed(7) is SeqResult.BASELINE and t.missed_while_blind == 0
    t.rebaseline()
    assert t.feed(3) is SeqResult.BASELINE  # a restarted gateway: a new baseline, no count
    assert t.missed_while_blind == 0 and t.seq == 3
