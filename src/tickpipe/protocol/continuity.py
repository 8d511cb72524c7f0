"""Continuity rules: does an update follow the book's last one, or bridge from a snapshot?

Pure functions over the ids of :class:`~tickpipe.protocol.normalised.BookDelta`, one rule per
:class:`~tickpipe.protocol.normalised.Continuity` (see there for which venue uses which):

- :func:`follows` — a LIVE book at ``last_id`` gets ``delta``: ``NEXT`` (apply it), ``COVERED``
  (already reflected: drop it as a duplicate) or ``GAP`` (something was missed: re-seed).
- :func:`bridges` — a book seeded from a snapshot at ``snapshot_id`` looks at the first buffered
  delta: ``COVERED`` (older than the snapshot: discard), ``NEXT`` (the first to apply) or ``GAP``
  (the snapshot is older than this delta's range: it cannot bridge, fetch a newer one).

With ``NONE`` every delta is ``NEXT`` (the venue's checksum is the only integrity check), and
``CONNECTION`` ids are checked by the connection, not the book, so books treat them as ``NONE``.
A delta that lacks an id its rule needs is a :class:`~tickpipe.errors.FrameError`.
"""

from __future__ import annotations

from enum import Enum

from tickpipe.errors import FrameError
from tickpipe.protocol.normalised import BookDelta, Continuity


class Step(Enum):
    NEXT = "next"
    COVERED = "covered"
    GAP = "gap"


def _need(value: int | None, name: str, channel: str) -> int:
    if value is None:
        raise FrameError(f"update has no {name}", channel=channel, field=name)
    return value


def follows_ids(
    rule: Continuity,
    last_id: int,
    first: int | None,
    last: int | None,
    prev: int | None,
    channel: str = "",
) -> Step:
    """:func:`follows` on bare ids (the sync machine keeps ids, not deltas)."""
    if rule is Continuity.SEQ:
        seq = _need(last, "last_id", channel)
        if seq == last_id + 1:
            return Step.NEXT
        return Step.COVERED if seq <= last_id else Step.GAP
    if rule is Continuity.RANGE:
        f = _need(first, "first_id", channel)
        u = _need(last, "last_id", channel)
        if u <= last_id:
            return Step.COVERED
        return Step.NEXT if f == last_id + 1 else Step.GAP
    if rule is Continuity.LINK:
        u = _need(last, "last_id", channel)
        p = _need(prev, "prev_id", channel)
        # The link decides first: OKX documents a keep-alive update with seqId == prevSeqId and,
        # after maintenance, a seqId smaller than its prevSeqId; both link, so both are NEXT.
        if p == last_id:
            return Step.NEXT
        return Step.COVERED if u <= last_id else Step.GAP
    return Step.NEXT  # NONE, CONNECTION


def bridges_ids(
    rule: Continuity,
    snapshot_id: int,
    first: int | None,
    last: int | None,
    prev: int | None,
    channel: str = "",
) -> Step:
    """:func:`bridges` on bare ids."""
    if rule is Continuity.RANGE:  # Binance: U <= S + 1 <= u
        f = _need(first, "first_id", channel)
        u = _need(last, "last_id", channel)
        if u <= snapshot_id:
            return Step.COVERED
        return Step.NEXT if f <= snapshot_id + 1 else Step.GAP
    if rule is Continuity.LINK:  # the first after the snapshot links to it, or spans it
        u = _need(last, "last_id", channel)
        p = _need(prev, "prev_id", channel)
        if u <= snapshot_id:
            return Step.COVERED
        return Step.NEXT if p <= snapshot_id else Step.GAP
    return follows_ids(rule, snapshot_id, first, last, prev, channel)


def follows(rule: Continuity, last_id: int, delta: BookDelta) -> Step:
    """Does ``delta`` follow a book whose last applied update id is ``last_id``?"""
    return follows_ids(
        rule, last_id, delta.first_id, delta.last_id, delta.prev_id, f"orderbook:{delta.symbol}"
    )


def bridges(rule: Continuity, snapshot_id: int, delta: BookDelta) -> Step:
    """Is ``delta`` the first update to apply on a snapshot at ``snapshot_id``?"""
    return bridges_ids(
        rule, snapshot_id, delta.first_id, delta.last_id, delta.prev_id, f"orderbook:{delta.symbol}"
    )
