"""One scheduler for every snapshot fetch of a client: a shared budget, never a storm.

Popular clients fire one REST snapshot per book the moment they reconnect; with 200 books the
gateway rate-limits them (or bans the key) and every book waits for retries. Here every fetch
goes through one queue, bounded three ways:

- ``concurrency`` fetches in flight at once (a slow book holds one slot, not the queue);
- a token bucket (``rate_per_s``, ``burst``) over all fetches: set it under the gateway's
  limit for the key and no request is ever refused;
- a ``429`` pauses *every* fetch until its ``Retry-After`` has passed (the budget is the
  key's, not the book's), and that book is asked for again after at least that long. It also
  halves the bucket's rate (never below ``min_rate_per_s``): the limit we assumed was wrong,
  so the next burst must not meet the same wall. The rate doubles back, one step every
  ``restore_after_s`` without a 429, up to the configured one. After the pause the first fetch
  goes alone, and the others follow only once it has come back without a 429: a venue that
  bans after a few 429s in a row (Binance: 418) never sees a released burst meet the same wall.

A venue whose budget is request weight per window (``WeightBudget`` from the adapter's
``weight_budget``: Binance's 6000 a wall-clock minute) is spent by :class:`WeightWindow`
as well: up to the window's weight minus the venue's reserve, then nothing until the next
window opens. The venue's used-weight header (Binance ``X-MBX-USED-WEIGHT-1M``), read by the
REST client on every answer, corrects the count: another process on the same IP spends the
same budget, so a reading over what this client sent means the window is fuller than
thought (see :meth:`SnapshotScheduler.observe_used_weight`). So that the reading comes before
the window is spent, the first fetch of a window goes alone until an answer with a reading
has come back (one round trip a window). 1000-level Binance snapshots
(weight 50) go 118 a window: 200 books seed in the first window and at the start of the next.

Books that have never been synced go first: among the requests that are due, a first seed is
served before any re-seed of a book that was synced once (a bot waiting for its first book
should not queue behind books that merely broke).

Each request is jittered by U(0, ``jitter_s``) so that clients reconnecting together spread
out. 5xx and unreachable answers go back to the book's :class:`~tickpipe.protocol.sync.BookSync`,
whose own backoff decides when to ask again. Newer requests for a channel replace older ones
(the epoch tells which snapshot answers which seeding; a late answer is ignored by the book).

:class:`TokenBucket` and :class:`WeightWindow` are pure (clock readings passed in) and
unit-tested on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tickpipe.client.recorder import Recorder
from tickpipe.errors import ConfigError, FrameError, RateLimitedError, RestError
from tickpipe.protocol.frames import Snapshot
from tickpipe.venues.base import WeightBudget

log = logging.getLogger("tickpipe.client.snapshots")


class TokenBucket:
    """``rate_per_s`` tokens a second, at most ``burst`` saved up. Starts full."""

    __slots__ = ("_last", "burst", "rate_per_s", "tokens")

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        if not rate_per_s > 0:
            raise ConfigError(f"rate_per_s must be > 0, got {rate_per_s!r}")
        if burst < 1:
            raise ConfigError(f"burst must be >= 1, got {burst!r}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.tokens = float(burst)
        self._last = now

    def _refill(self, now: float) -> None:
        if now > self._last:
            self.tokens = min(float(self.burst), self.tokens + (now - self._last) * self.rate_per_s)
            self._last = now

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0 when one is)."""
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s

    def take(self, now: float) -> bool:
        """Take one token if available."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def set_rate(self, rate_per_s: float, now: float) -> None:
        """Change the refill rate from ``now`` on (tokens already saved are kept)."""
        self._refill(now)
        self.rate_per_s = rate_per_s

    def drain(self, now: float) -> None:
        """Spend everything (after a 429: the budget we thought we had was wrong)."""
        self._refill(now)
        self.tokens = 0.0


DEFAULT_GUARD_S = 0.25  # kept clear of each edge of an aligned window (clock skew, latency)
GUARD_WINDOW_FRACTION = 1 / 8  # ... but never more than this part of a (short) window


class WeightWindow:
    """Request weight spent per window of a venue's budget. Pure: wall-clock readings passed in.

    Aligned windows are ``[k * window_s, (k + 1) * window_s)`` of the wall clock (Binance's
    minute); unaligned ones open at the first spend after the previous one closed. At most
    ``limit`` = ``weight_per_window - reserve_weight`` is spent a window. An aligned window is
    only spent ``guard_s`` clear of its edges: the venue's clock and a request's latency could
    count a request sent just before a boundary in the next window.

    ``spent`` is what this client sent in the window; ``used`` the estimate of the venue's count
    (>= ``spent``): :meth:`observe` raises it from a used-weight reading that shows weight this
    client did not send (another process on the same IP).
    """

    __slots__ = ("aligned", "guard_s", "limit", "seen", "spent", "start", "used", "window_s")

    def __init__(
        self,
        weight_per_window: int,
        window_s: float,
        *,
        aligned: bool,
        reserve_weight: int = 0,
        guard_s: float = 0.0,
    ) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ConfigError(f"window_s must be > 0, got {window_s!r}")
        if not 0 <= guard_s < window_s / 4:
            raise ConfigError(f"guard_s must be in [0, window_s / 4), got {guard_s!r}")
        self.limit = weight_per_window - reserve_weight
        if self.limit < 1:
            raise ConfigError(
                f"weight_per_window {weight_per_window} leaves nothing after reserve "
                f"{reserve_weight}"
            )
        self.window_s = window_s
        self.aligned = aligned
        self.guard_s = guard_s
        self.start: float | None = None
        self.spent = 0
        self.used = 0
        self.seen = False  # a used-weight reading came for the current window

    def current(self, now: float) -> float | None:
        """The start of the window ``now`` is in (None: unaligned and none open)."""
        if self.aligned:
            start: float | None = math.floor(now / self.window_s) * self.window_s
        else:
            start = (
                self.start if self.start is not None and now < self.start + self.window_s else None
            )
        if start != self.start:
            self.start, self.spent, self.used, self.seen = start, 0, 0, False
        return start

    def wait_time(self, cost: int, now: float) -> float:
        """Seconds until ``cost`` weight may be spent (0 when it may now)."""
        start = self.current(now)
        if start is None:
            return 0.0  # a spend opens an unaligned window
        end = start + self.window_s
        if self.aligned:
            if now < start + self.guard_s:
                return start + self.guard_s - now
            if now > end - self.guard_s:
                return end + self.guard_s - now
        if self.used + cost <= self.limit:
            return 0.0
        return end + self.guard_s - now

    def spend(self, cost: int, now: float) -> bool:
        """Spend ``cost`` if the window allows it now."""
        if self.wait_time(cost, now) > 0:
            return False
        if self.start is None:
            self.start = now
        self.spent += cost
        self.used += cost
        return True

    def observe(self, used: int, window: float | None, now: float, unsettled: int = 0) -> None:
        """A used-weight reading for ``window`` (the window its request was sent in; ignored
        once another window is open). A reading over ``spent`` is weight someone else used:
        the estimate becomes the reading plus ``unsettled`` (this client's weight still in
        flight, which the venue may not have counted yet)."""
        if window is None or self.current(now) != window:
            return
        self.seen = True
        if used > self.spent:
            self.used = max(self.used, used + unsettled)


@dataclass(frozen=True, slots=True)
class SnapshotOutcome:
    """The answer to one request: a snapshot, or an error (``retry_after_s`` for a 429)."""

    channel: str
    epoch: int
    snapshot: Snapshot | None
    error: Exception | None = None
    retry_after_s: float | None = None


Fetch = Callable[[str], Awaitable[Snapshot]]
Deliver = Callable[[SnapshotOutcome], None]


_FIRST, _RESEED = 0, 1  # heap classes: first seeds are served before re-seeds


class SnapshotScheduler:
    """Runs fetches under the shared budget; ``run()`` is one task for the client's lifetime."""

    min_rate_per_s = 0.5  # a 429 never halves the rate below this (one fetch every 2 s)
    restore_after_s = 30.0  # without a 429 this long, a halved rate doubles back (one step)

    def __init__(
        self,
        fetch: Fetch,
        deliver: Deliver,
        *,
        concurrency: int,
        rate_per_s: float,
        burst: int,
        jitter_s: float,
        clock: Callable[[], float],
        random: Callable[[], float],
        weight: WeightBudget | None = None,
        wall_clock: Callable[[], float] = time.time,
        guard_s: float = DEFAULT_GUARD_S,
    ) -> None:
        self._fetch = fetch
        self._deliver = deliver
        self._concurrency = concurrency
        self._jitter_s = jitter_s
        self._clock = clock
        self._random = random
        self._bucket = TokenBucket(rate_per_s, burst, clock())
        self._rate_per_s = rate_per_s  # the configured rate; a 429 lowers the bucket's
        self._last_429 = 0.0
        self._probe_after_429 = False  # the next fetch goes alone until one is not a 429
        self._pending: dict[str, tuple[float, int]] = {}  # channel -> (due, epoch)
        self._heaps: tuple[list[tuple[float, int, str]], list[tuple[float, int, str]]] = ([], [])
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wall = wall_clock
        self.window: WeightWindow | None = None
        self._cost = 0
        self._probe = False  # the first fetch of a window goes alone: its answer's reading
        self._sent: dict[asyncio.Task[None], float | None] = {}  # in flight -> window sent in
        if weight is not None:
            self.window = WeightWindow(
                weight.weight_per_window,
                weight.window_s,
                aligned=weight.aligned,
                reserve_weight=weight.reserve_weight,
                guard_s=min(guard_s, weight.window_s * GUARD_WINDOW_FRACTION),
            )
            self._cost = weight.snapshot_weight
            self._probe = weight.used_weight_header is not None
            if self._cost > self.window.limit:
                raise ConfigError(
                    f"a snapshot costs weight {self._cost}, over the {self.window.limit} a "
                    "window leaves"
                )
        self.pause_until = 0.0
        self.requests = 0
        self.rate_limited = 0
        self.errors = 0
        self.max_in_flight = 0
        self.recorder: Recorder | None = None  # tickpipe record: which outcome fed which seeding

    # -- inputs (called from the read path: cheap, never blocks) -------------------------
    def request(self, channel: str, epoch: int, delay_s: float, first_seed: bool = False) -> None:
        due = self._clock() + delay_s + self._random() * self._jitter_s
        self._pending[channel] = (due, epoch)
        heapq.heappush(self._heaps[_FIRST if first_seed else _RESEED], (due, epoch, channel))
        self._wake.set()

    def cancel(self, channel: str) -> None:
        self._pending.pop(channel, None)

    def clear(self) -> None:
        """Forget every queued request (the stream was lost; books re-ask after reconnect)."""
        self._pending.clear()
        for heap in self._heaps:
            heap.clear()

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def rate_per_s(self) -> float:
        """The budget's current rate: the configured one, or less after a 429."""
        return self._bucket.rate_per_s

    def observe_used_weight(self, used: int) -> None:
        """A reading of the venue's used-weight header (the REST client calls this for every
        answer that carries one; from a fetch task of ours, or another call). Cheap."""
        window = self.window
        if window is None:
            return
        now = self._wall()
        task = asyncio.current_task()
        mine = task is not None and task in self._sent
        sent_in = self._sent[task] if mine else window.current(now)  # type: ignore[index]
        unsettled = self._cost * sum(
            1 for t, w in self._sent.items() if t is not task and w == sent_in
        )
        window.observe(used, sent_in, now, unsettled)

    # -- the loop ------------------------------------------------------------------------
    def _head(self, heap: list[tuple[float, int, str]]) -> tuple[float, int, str] | None:
        while heap:
            due, epoch, channel = heap[0]
            if self._pending.get(channel) == (due, epoch):
                return heap[0]
            heapq.heappop(heap)  # replaced or cancelled
        return None

    def _next_valid(
        self, now: float
    ) -> tuple[list[tuple[float, int, str]], float, int, str] | None:
        """The request to serve next: a due first seed, else the earliest re-seed or seed."""
        first, reseed = self._heaps
        a, b = self._head(first), self._head(reseed)
        if a is not None and (b is None or a[0] <= now or a[0] <= b[0]):
            return (first, *a)
        if b is not None:
            return (reseed, *b)
        return None

    def _maybe_restore_rate(self, now: float) -> None:
        bucket = self._bucket
        if bucket.rate_per_s < self._rate_per_s and now - self._last_429 >= self.restore_after_s:
            bucket.set_rate(min(self._rate_per_s, bucket.rate_per_s * 2), now)
            self._last_429 = now  # the next doubling waits another restore_after_s

    async def _sleep_or_wake(self, seconds: float | None) -> None:
        self._wake.clear()
        if seconds is None:
            await self._wake.wait()
            return
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
        # lands as the event fires, and close() then waited ~60 s for this task (measured in
        # benchmarks/saturation.py, about one close in six under a flood)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def run(self) -> None:
        try:
            while True:
                now = self._clock()
                head = self._next_valid(now)
                if head is None:
                    await self._sleep_or_wake(None)
                    continue
                self._maybe_restore_rate(now)
                heap, due, epoch, channel = head
                wait = max(due - now, self.pause_until - now, self._bucket.wait_time(now))
                window, wall = self.window, self._wall()
                if window is not None:
                    wait = max(wait, window.wait_time(self._cost, wall))
                if wait > 0:
                    await self._sleep_or_wake(wait)
                    continue
                if (
                    len(self._in_flight) >= self._concurrency
                    or (self._probe_after_429 and self._in_flight)
                    or (
                        self._probe
                        and window is not None
                        and window.spent
                        and not window.seen
                        and any(w == window.start for w in self._sent.values())
                    )
                ):
                    await self._sleep_or_wake(None)  # a finishing fetch wakes us
                    continue
                if not self._bucket.take(now):
                    continue
                if window is not None and not window.spend(self._cost, wall):
                    continue
                heapq.heappop(heap)
                del self._pending[channel]
                self.requests += 1
                task = asyncio.create_task(self._one(channel, epoch), name=f"snapshot {channel}")
                self._in_flight.add(task)
                if window is not None:
                    self._sent[task] = window.start
                self.max_in_flight = max(self.max_in_flight, len(self._in_flight))
        finally:
            for t in list(self._in_flight):
                t.cancel()
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
            self._in_flight.clear()
            self._sent.clear()

    async def _one(self, channel: str, epoch: int) -> None:
        outcome: SnapshotOutcome
        try:
            snap = await self._fetch(channel)
            outcome = SnapshotOutcome(channel, epoch, snap)
            self._probe_after_429 = False
        except RateLimitedError as exc:
            self.rate_limited += 1
            self._probe_after_429 = True
            now = self._clock()
            self.pause_until = max(self.pause_until, now + exc.retry_after_s)
            self._bucket.drain(now)
            if now - self._last_429 > 1.0:  # one 429 wave (in-flight fetches) halves once
                self._bucket.set_rate(max(self.min_rate_per_s, self._bucket.rate_per_s / 2), now)
            self._last_429 = now
            log.warning("snapshot %s: 429, pausing all fetches %.2fs", channel, exc.retry_after_s)
            outcome = SnapshotOutcome(channel, epoch, None, exc, exc.retry_after_s)
        except (RestError, FrameError) as exc:
            self.errors += 1
            self._probe_after_429 = False  # answered, not rate-limited: the budget has room
            outcome = SnapshotOutcome(channel, epoch, None, exc)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._in_flight.discard(task)  # type: ignore[arg-type]
                self._sent.pop(task, None)  # type: ignore[call-overload]
            self._wake.set()
        if self.recorder is not None:
            self.recorder.snapshot_delivered(channel, epoch, outcome.error, outcome.retry_after_s)
        self._deliver(outcome)
