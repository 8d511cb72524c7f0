"""Sequence tracking for ``ticker:`` and ``trades:`` channels (VTS/1 section 5). Pure.

No resync is needed: a ticker replaces the last one, and missed trades cannot be fetched. Gaps
are counted and reported. After a (re)subscribe the first frame sets the baseline; what was
missed while disconnected is reported as ``missed_while_blind``, never as a ``seq_gap``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class SeqResult(Enum):
    OK = "ok"
    BASELINE = "baseline"
    DUPLICATE = "duplicate"
    GAP = "gap"


@dataclass(frozen=True, slots=True)
class SeqGap:
    channel: str
    expected: int
    got: int

    @property
    def missed(self) -> int:
        return self.got - self.expected


class SeqTracker:
    """One channel's seq. ``feed(seq)`` returns a :class:`SeqResult`; gaps land in ``last_gap``."""

    __slots__ = (
        "_blind_from",
        "channel",
        "duplicates",
        "frames",
        "gaps",
        "last_gap",
        "missed",
        "missed_while_blind",
        "seq",
    )

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.seq: int | None = None
        self.frames = 0
        self.gaps = 0
        self.missed = 0
        self.duplicates = 0
        self.missed_while_blind = 0
        self.last_gap: SeqGap | None = None
        self._blind_from: int | None = None

    def feed(self, seq: int) -> SeqResult:
        last = self.seq
        if last is None:
            self.seq = seq
            self.frames += 1
            if self._blind_from is not None and seq > self._blind_from + 1:
                self.missed_while_blind += seq - self._blind_from - 1
            self._blind_from = None
            return SeqResult.BASELINE
        if seq == last + 1:
            self.seq = seq
            self.frames += 1
            return SeqResult.OK
        if seq <= last:
            self.duplicates += 1
            return SeqResult.DUPLICATE
        self.gaps += 1
        self.missed += seq - last - 1
        self.last_gap = SeqGap(self.channel, last + 1, seq)
        self.seq = seq
        self.frames += 1
        return SeqResult.GAP

    def rebaseline(self) -> None:
        """The stream was lost or re-subscribed: the next frame sets a new baseline."""
        if self.seq is not None:
            self._blind_from = self.seq
        self.seq = None
