"""Continuity rules on the venues' documented cases (Binance spot and USD-M, OKX, Bybit)."""

from __future__ import annotations

import pytest

from tickpipe.errors import FrameError
from tickpipe.protocol.continuity import Step, bridges, follows
from tickpipe.protocol.normalised import BookDelta, Continuity

C = Continuity


def d(last: int | None = None, first: int | None = None, prev: int | None = None) -> BookDelta:
    return BookDelta("X", [], [], last_id=last, first_id=first, prev_id=prev)


@pytest.mark.parametrize(
    ("last_id", "delta", "step"),
    [
        (10, d(11), Step.NEXT),
        (10, d(10), Step.COVERED),
        (10, d(3), Step.COVERED),
        (10, d(12), Step.GAP),
    ],
)
def test_seq(last_id: int, delta: BookDelta, step: Step) -> None:
    assert follows(C.SEQ, last_id, delta) is step
    assert bridges(C.SEQ, last_id, delta) is step


def test_binance_spot_range() -> None:
    """Snapshot lastUpdateId 100: drop u <= 100; the first must have U <= 101 <= u; then each
    U must be the previous u + 1."""
    assert bridges(C.RANGE, 100, d(last=100, first=95)) is Step.COVERED
    assert bridges(C.RANGE, 100, d(last=105, first=98)) is Step.NEXT
    assert bridges(C.RANGE, 100, d(last=105, first=101)) is Step.NEXT
    assert bridges(C.RANGE, 100, d(last=105, first=102)) is Step.GAP
    assert follows(C.RANGE, 105, d(last=110, first=106)) is Step.NEXT
    assert follows(C.RANGE, 105, d(last=110, first=107)) is Step.GAP
    assert follows(C.RANGE, 105, d(last=105, first=101)) is Step.COVERED


def test_link_binance_usdm_and_okx() -> None:
    """USD-M: pu == previous u; OKX: prevSeqId == previous seqId. A first delta that spans the
    snapshot (prev <= S < last) bridges: sizes are absolute, so it lands on the book at last."""
    assert follows(C.LINK, 50, d(last=57, prev=50)) is Step.NEXT
    assert follows(C.LINK, 50, d(last=57, prev=49)) is Step.GAP
    assert follows(C.LINK, 50, d(last=50, prev=44)) is Step.COVERED
    assert bridges(C.LINK, 50, d(last=57, prev=50)) is Step.NEXT
    assert bridges(C.LINK, 50, d(last=57, prev=45)) is Step.NEXT
    assert bridges(C.LINK, 50, d(last=57, prev=52)) is Step.GAP
    assert bridges(C.LINK, 50, d(last=48, prev=40)) is Step.COVERED


def test_link_decides_first_okx_keepalive_and_reset() -> None:
    """OKX: an update with seqId == prevSeqId keeps the link; after maintenance seqId can be
    smaller than prevSeqId, and it still links."""
    assert follows(C.LINK, 50, d(last=50, prev=50)) is Step.NEXT
    assert follows(C.LINK, 50, d(last=3, prev=50)) is Step.NEXT
    assert follows(C.LINK, 3, d(last=9, prev=3)) is Step.NEXT


def test_none_and_connection_accept_everything() -> None:
    for rule in (C.NONE, C.CONNECTION):
        assert follows(rule, 5, d()) is Step.NEXT
        assert bridges(rule, 5, d()) is Step.NEXT


def test_a_missing_id_is_a_frame_error_naming_it() -> None:
    with pytest.raises(FrameError, match="first_id"):
        follows(C.RANGE, 1, d(last=3))
    with pytest.raises(FrameError, match="prev_id") as ei:
        bridges(C.LINK, 1, d(last=3))
    assert ei.value.channel == "orderbook:X"
