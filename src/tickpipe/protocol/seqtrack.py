"""Sequence tracking for ``ticker:`` and ``trades:`` channels (VTS/1 section 5). Pure.

No resync is needed: a ticker replaces the last one, and missed trades cannot be fetched. Gaps
are counted and reported. After a (re)subscribe the first frame sets the baseline; what was
missed while disconnected is reported as ``missed_while_blind``, never as a ``seq_gap``.

One bogus seq must not silence a channel (issue 13: a ticker with ``seq = 2**62`` made every
later frame a "duplicate" until the next reconnect). The rule:

- a frame more than ``max_jump`` ahead of the last seq is an ``OUTLIER``: dropped, the
  baseline kept, reported (``last_anomaly``); a real gap is never that large on a live socket;
- ``rebaseline_after`` frames in a row that are off track (behind the last seq, or an outlier)
  *and follow each other* (each one's seq = the previous one's + 1) mean the peer really
  renumbered (or the baseline itself was bogus): the tracker re-baselines on the last of them
  (``REBASELINED``, the frame is accepted, reported). Only ``rebaseline_after - 1`` frames are
  lost to it. A lone duplicate, or old frames re-sent out of order, stay plain duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

MAX_SEQ_JUMP = 1_000_000  # frames: a forward jump larger than this is not believed at once
REBASELINE_AFTER = 3  # consecutive off-track frames that follow each other re-baseline


class SeqResult(Enum):
    OK = "ok"
    BASELINE = "baseline"
    DUPLICATE = "duplicate"
    GAP = "gap"
    OUTLIER = "outlier"  # far ahead: dropped, baseline kept (see last_anomaly)
    REBASELINED = "rebaselined"  # accepted: the channel's seq starts again here (last_anomaly)


@dataclass(frozen=True, slots=True)
class SeqGap:
    channel: str
    expected: int
    got: int

    @property
    def missed(self) -> int:
        return self.got - self.expected


class SeqTracker:
    """One channel's seq. ``feed(seq)`` returns a :class:`SeqResult`; gaps land in ``last_gap``,
    outliers and re-baselines are described in ``last_anomaly`` (for a ``bad_frame`` report)."""

    __slots__ = (
        "_blind_from",
        "_run_len",
        "_run_seq",
        "channel",
        "duplicates",
        "frames",
        "gaps",
        "last_anomaly",
        "last_gap",
        "max_jump",
        "missed",
        "missed_while_blind",
        "outliers",
        "rebaseline_after",
        "rebaselines",
        "seq",
    )

    def __init__(
        self,
        channel: str,
        max_jump: int = MAX_SEQ_JUMP,
        rebaseline_after: int = REBASELINE_AFTER,
    ) -> None:
        if max_jump < 1 or rebaseline_after < 1:
            raise ValueError("max_jump and rebaseline_after must be >= 1")
        self.channel = channel
        self.max_jump = max_jump
        self.rebaseline_after = rebaseline_after
        self.seq: int | None = None
        self.frames = 0
        self.gaps = 0
        self.missed = 0
        self.duplicates = 0
        self.outliers = 0
        self.rebaselines = 0
        self.missed_while_blind = 0
        self.last_gap: SeqGap | None = None
        self.last_anomaly: str | None = None
        self._blind_from: int | None = None
        self._run_seq: int | None = None  # the last off-track frame's seq
        self._run_len = 0

    def feed(self, seq: int) -> SeqResult:
        last = self.seq
        if last is None:
            self.seq = seq
            self.frames += 1
            if self._blind_from is not None and seq > self._blind_from + 1:
                self.missed_while_blind += seq - self._blind_from - 1
            self._blind_from = None
            self._run_seq = None
            return SeqResult.BASELINE
        if seq == last + 1:
            self.seq = seq
            self.frames += 1
            self._run_seq = None
            return SeqResult.OK
        if last < seq <= last + self.max_jump:
            self.gaps += 1
            self.missed += seq - last - 1
            self.last_gap = SeqGap(self.channel, last + 1, seq)
            self.seq = seq
            self.frames += 1
            self._run_seq = None
            return SeqResult.GAP
        return self._off_track(seq, last)

    def _off_track(self, seq: int, last: int) -> SeqResult:
        """``seq`` is behind the last one, or too far ahead of it."""
        run = self._run_seq
        self._run_len = self._run_len + 1 if run is not None and seq == run + 1 else 1
        self._run_seq = seq
        if self._run_len >= self.rebaseline_after:
            self.rebaselines += 1
            self.frames += 1
            self.seq = seq
            self._run_seq = None
            self.last_anomaly = (
                f"seq re-baselined from {last} to {seq}: {self.rebaseline_after} frames in a row "
                "followed each other off the last seq"
            )
            return SeqResult.REBASELINED
        if seq <= last:
            self.duplicates += 1
            return SeqResult.DUPLICATE
        self.outliers += 1
        self.last_anomaly = (
            f"seq {seq} jumps more than {self.max_jump} past {last}: frame dropped, seq kept"
        )
        return SeqResult.OUTLIER

    def rebaseline(self) -> None:
        """The stream was lost or re-subscribed: the next frame sets a new baseline."""
        if self.seq is not None:
            self._blind_from = self.seq
        self.seq = None
        self._run_seq = None
