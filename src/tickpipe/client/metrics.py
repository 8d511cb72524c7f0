"""In-process counters, gauges and a latency window. Cheap to bump on the read path.

Latency is measured from the gateway's ``ts`` (its clock at send, ns since the epoch) to the
moment the delta is applied to the local book (this host's ``time.time_ns()``). On loopback the
two clocks are the same; across hosts the figure includes the clock offset.

Percentiles come from a ring of the last ``LATENCY_WINDOW`` samples (exact, recent), sorted only
when :meth:`LatencyWindow.percentiles` is called (a dashboard refresh), never per frame: the
per-frame cost is one store into a preallocated ``array``. A fixed-bucket histogram would be
cheaper to read but coarser; a window of 8,192 floats is 64 KiB and tells "now", not "since
start", which is what a dashboard wants.
"""

from __future__ import annotations

import math
from array import array
from collections import deque

from tickpipe.protocol.sync import GAP_REASONS

LATENCY_WINDOW = 8192
RATE_WINDOW_S = 5.0  # frames_per_s is the rate over about the last 5 s
RATE_SAMPLE_EVERY_S = 0.5  # how often the client samples the frame counter (one timer)


class LatencyWindow:
    """The last ``size`` latencies in milliseconds."""

    __slots__ = ("_buf", "_i", "count", "size")

    def __init__(self, size: int = LATENCY_WINDOW) -> None:
        self.size = size
        self._buf = array("d", bytes(8 * size))
        self._i = 0
        self.count = 0

    def record(self, ms: float) -> None:
        self._buf[self._i] = ms
        self._i = (self._i + 1) % self.size
        self.count += 1

    def values(self) -> list[float]:
        """The samples in the window (ms), oldest first: ``min(count, size)`` of them."""
        buf = self._buf
        if self.count <= self.size:
            return buf[: self.count].tolist()
        i = self._i  # the ring wrapped: the oldest sample is the next to be overwritten
        return buf[i:].tolist() + buf[:i].tolist()

    def percentiles(self, *qs: float) -> tuple[float | None, ...]:
        """Nearest-rank percentiles (q in 0..100) of the window; None when empty."""
        n = min(self.count, self.size)
        if n == 0:
            return tuple(None for _ in qs)
        data = sorted(self._buf[:n])
        out: list[float | None] = []
        for q in qs:
            k = max(0, min(n - 1, math.ceil(q / 100.0 * n) - 1))
            out.append(data[k])
        return tuple(out)


class RateMeter:
    """Rate of a monotonically growing counter (frames) over a sliding window of ``window_s``.

    A periodic task :meth:`sample` s the counter (the client does so every
    ``RATE_SAMPLE_EVERY_S``, off the read path); :meth:`current` reads the rate from the oldest
    sample still in the window to the counter *now*, without storing anything, so a single read
    (one ``Client.stats()`` call) already gives a real rate. The deque holds at most
    ``window_s / period + 2`` samples.
    """

    __slots__ = ("_samples", "window_s")

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def sample(self, now: float, total: int) -> None:
        """Record the counter at ``now``; forget samples the window no longer needs (the
        newest one at least ``window_s`` old is kept as the window's start)."""
        s = self._samples
        s.append((now, total))
        while len(s) >= 2 and now - s[1][0] >= self.window_s:
            s.popleft()

    def current(self, now: float, total: int) -> float:
        """Per-second rate from the window's oldest sample to ``(now, total)``; 0.0 before any
        sample or with no time between."""
        s = self._samples
        if not s:
            return 0.0
        t0, c0 = s[0]
        dt = now - t0
        return (total - c0) / dt if dt > 0 else 0.0

    def rate(self, now: float, total: int) -> float:
        """:meth:`sample` then :meth:`current` (for callers that sample as they read)."""
        self.sample(now, total)
        return self.current(now, total)


class Metrics:
    """Every counter of one client. Plain attributes: the hot path does ``m.frames += 1``."""

    __slots__ = (
        "bad_frames",
        "bytes",
        "callback_errors",
        "duplicates",
        "frames",
        "gaps",
        "latency",
        "overflow_dropped",
        "pings",
        "reconnects",
        "resyncs",
        "snapshot_429",
        "snapshot_errors",
        "snapshot_ok",
        "snapshot_requests",
        "trades_missed",
        "unexpected_frames",
    )

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.pings = 0
        self.bad_frames = 0
        self.duplicates = 0
        self.resyncs = 0
        self.reconnects = 0
        self.unexpected_frames = 0
        self.snapshot_requests = 0
        self.snapshot_429 = 0
        self.snapshot_errors = 0
        self.snapshot_ok = 0  # fetches answered with a snapshot (per fetch, not per frame)
        self.trades_missed = 0
        self.callback_errors = 0
        self.overflow_dropped = 0
        self.gaps: dict[str, int] = dict.fromkeys(GAP_REASONS, 0)
        self.latency = LatencyWindow()
