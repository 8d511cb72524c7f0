"""The shared snapshot scheduler: token bucket math, concurrency, 429 pause, jitter.

The fetch function is injected (the unit under test is the scheduler, not the gateway;
tests/integration runs it against the real gateway's rate limit)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from tickpipe.client.snapshots import SnapshotOutcome, SnapshotScheduler, TokenBucket
from tickpipe.errors import ConfigError, RateLimitedError, RestError
from tickpipe.protocol.frames import Snapshot


def test_token_bucket_starts_full_and_refills() -> None:
    b = TokenBucket(rate_per_s=10.0, burst=3, now=0.0)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.wait_time(0.0) == pytest.approx(0.1)
    assert b.take(0.1)
    assert not b.take(0.1)
    assert b.take(10.0) and b.take(10.0) and b.take(10.0) and not b.take(10.0)  # capped


def test_token_bucket_max_in_any_window_is_burst_plus_rate() -> None:
    b = TokenBucket(rate_per_s=5.0, burst=2, now=0.0)
    taken = [t / 100 for t in range(0, 300) if b.take(t / 100)]
    for start in [x / 100 for x in range(0, 200)]:
        in_window = [t for t in taken if start <= t < start + 1.0]
        assert len(in_window) <= 2 + 5


def test_token_bucket_validation_and_drain() -> None:
    with pytest.raises(ConfigError):
        TokenBucket(0, 1, 0.0)
    with pytest.raises(ConfigError):
        TokenBucket(1.0, 0, 0.0)
    b = TokenBucket(1.0, 5, 0.0)
    b.drain(0.0)
    assert not b.take(0.0)


def _sched(
    fetch: Callable[[str], Awaitable[Snapshot]],
    got: list[SnapshotOutcome],
    *,
    concurrency: int,
    rate_per_s: float,
    burst: int,
    jitter_s: float,
    random: Callable[[], float],
    clock: Callable[[], float] = time.monotonic,
) -> SnapshotScheduler:
    return SnapshotScheduler(
        fetch,
        got.append,
        concurrency=concurrency,
        rate_per_s=rate_per_s,
        burst=burst,
        jitter_s=jitter_s,
        clock=clock,
        random=random,
    )


def _snap(symbol: str) -> Snapshot:
    return Snapshot(symbol=symbol, seq=1, ts=0, bids=[], asks=[])


async def _run(sched: SnapshotScheduler, until: list[SnapshotOutcome], n: int) -> None:
    task = asyncio.create_task(sched.run())
    async with asyncio.timeout(5):
        while len(until) < n:
            await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_concurrency_and_rate_are_bounded() -> None:
    in_flight = 0
    peak = 0
    starts: list[float] = []

    async def fetch(channel: str) -> Snapshot:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        starts.append(time.monotonic())
        await asyncio.sleep(0.03)
        in_flight -= 1
        return _snap(channel.partition(":")[2])

    got: list[SnapshotOutcome] = []
    s = _sched(
        fetch, got, concurrency=3, rate_per_s=100.0, burst=5, jitter_s=0.0, random=lambda: 0.5
    )
    for i in range(20):
        s.request(f"orderbook:S{i}", epoch=1, delay_s=0.0)
    await _run(s, got, 20)
    assert peak <= 3 and s.max_in_flight <= 3
    assert sorted(o.channel for o in got) == sorted(f"orderbook:S{i}" for i in range(20))
    assert all(o.snapshot is not None for o in got)
    t0 = starts[0]
    for start in starts:  # any 1 s window: at most burst + rate
        assert sum(1 for t in starts if start <= t < start + 1.0) <= 5 + 100
    assert starts[-1] - t0 >= (20 - 5) / 100.0 * 0.9


async def test_newer_request_replaces_older_and_cancel_forgets() -> None:
    calls: list[str] = []

    async def fetch(channel: str) -> Snapshot:
        calls.append(channel)
        return _snap("X")

    got: list[SnapshotOutcome] = []
    s = _sched(
        fetch, got, concurrency=1, rate_per_s=1000.0, burst=10, jitter_s=0.0, random=lambda: 0.0
    )
    s.request("orderbook:A", epoch=1, delay_s=0.05)
    s.request("orderbook:A", epoch=2, delay_s=0.0)
    s.request("orderbook:B", epoch=1, delay_s=0.0)
    s.cancel("orderbook:B")
    await _run(s, got, 1)
    await asyncio.sleep(0.1)
    assert [(o.channel, o.epoch) for o in got] == [("orderbook:A", 2)]
    assert calls == ["orderbook:A"]


async def test_429_pauses_every_fetch_for_retry_after() -> None:
    times: dict[str, float] = {}
    first = True

    async def fetch(channel: str) -> Snapshot:
        nonlocal first
        times.setdefault(channel, time.monotonic())
        if first:
            first = False
            raise RateLimitedError("slow down", 0.3)
        return _snap("X")

    got: list[SnapshotOutcome] = []
    s = _sched(
        fetch, got, concurrency=1, rate_per_s=1000.0, burst=10, jitter_s=0.0, random=lambda: 0.0
    )
    t0 = time.monotonic()
    s.request("orderbook:A", epoch=1, delay_s=0.0)
    s.request("orderbook:B", epoch=1, delay_s=0.0)
    await _run(s, got, 2)
    limited = [o for o in got if o.error is not None]
    assert len(limited) == 1 and limited[0].retry_after_s == 0.3
    assert s.rate_limited == 1
    other = "orderbook:B" if limited[0].channel == "orderbook:A" else "orderbook:A"
    assert times[other] - t0 >= 0.29  # the other book waited for Retry-After too


async def test_after_a_429_the_first_fetch_goes_alone() -> None:
    """After the pause, one probe: the other books wait until it comes back without a 429
    (a burst released at once met the same wall, 3 × 429 and a Binance ban in one CI run)."""
    in_flight = 0
    most_after_429 = 0
    limited = False
    calls = 0

    async def fetch(channel: str) -> Snapshot:
        nonlocal in_flight, most_after_429, limited, calls
        calls += 1
        if calls == 1:
            limited = True
            raise RateLimitedError("slow down", 0.2)
        in_flight += 1
        if limited:
            most_after_429 = max(most_after_429, in_flight)
        try:
            await asyncio.sleep(0.05)
        finally:
            in_flight -= 1
        limited = False  # the probe came back: the others may go together
        return _snap("X")

    got: list[SnapshotOutcome] = []
    s = _sched(
        fetch, got, concurrency=8, rate_per_s=1000.0, burst=50, jitter_s=0.0, random=lambda: 0.0
    )
    task = asyncio.create_task(s.run())
    s.request("orderbook:S0", epoch=1, delay_s=0.0)
    async with asyncio.timeout(5):
        while not got:  # the 429
            await asyncio.sleep(0.005)
        for k in range(1, 8):  # then seven books, due at once: they wait for the pause
            s.request(f"orderbook:S{k}", epoch=1, delay_s=0.0)
        while len(got) < 8:
            await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert s.rate_limited == 1 and calls == 8
    assert most_after_429 == 1  # the probe alone
    assert s.max_in_flight > 1  # and the rest together once it was answered


async def test_5xx_goes_back_to_the_book_and_jitter_delays() -> None:
    async def fetch(channel: str) -> Snapshot:
        raise RestError(503, "unavailable", "try later")

    got: list[SnapshotOutcome] = []
    s = _sched(
        fetch, got, concurrency=2, rate_per_s=1000.0, burst=10, jitter_s=0.2, random=lambda: 1.0
    )
    t0 = time.monotonic()
    s.request("orderbook:A", epoch=4, delay_s=0.0)
    await _run(s, got, 1)
    assert time.monotonic() - t0 >= 0.19
    assert got[0].snapshot is None and isinstance(got[0].error, RestError)
    assert got[0].retry_after_s is None and s.errors == 1


async def test_first_seeds_are_served_before_reseeds() -> None:
    """A book never synced goes before re-seeds that were queued earlier (all due at once)."""
    order: list[str] = []

    async def fetch(channel: str) -> Snapshot:
        order.append(channel)
        return _snap("X")

    got: list[SnapshotOutcome] = []
    s = _sched(
        fetch, got, concurrency=1, rate_per_s=1000.0, burst=1, jitter_s=0.0, random=lambda: 0.0
    )
    for i in range(5):
        s.request(f"orderbook:R{i}", epoch=1, delay_s=0.0, first_seed=False)
    for i in range(3):
        s.request(f"orderbook:F{i}", epoch=1, delay_s=0.0, first_seed=True)
    s.request("orderbook:LATER", epoch=1, delay_s=5.0, first_seed=True)  # not due: no priority
    await _run(s, got, 8)
    assert order[:3] == ["orderbook:F0", "orderbook:F1", "orderbook:F2"]
    assert sorted(order[3:]) == [f"orderbook:R{i}" for i in range(5)]
    assert s.queued == 1  # LATER still waits its delay


async def test_429_halves_the_rate_once_per_wave_and_it_doubles_back() -> None:
    now = [1000.0]
    limited = [True]

    async def fetch(channel: str) -> Snapshot:
        if limited[0]:
            raise RateLimitedError("slow down", 0.0)
        return _snap("X")

    got: list[SnapshotOutcome] = []
    s = _sched(
        fetch,
        got,
        concurrency=4,
        rate_per_s=40.0,
        burst=4,
        jitter_s=0.0,
        clock=lambda: now[0],
        random=lambda: 0.0,
    )
    for i in range(4):
        s.request(f"orderbook:S{i}", epoch=1, delay_s=0.0)
    task = asyncio.create_task(s.run())
    async with asyncio.timeout(5):
        while len(got) < 4:
            await asyncio.sleep(0.005)
    assert s.rate_limited == 4 and s.rate_per_s == 20.0  # one wave of 4: halved once
    now[0] += 2.0  # a second wave later halves again, not below the floor
    limited[0] = True
    s.request("orderbook:S0", epoch=2, delay_s=0.0)
    async with asyncio.timeout(5):
        while len(got) < 5:
            await asyncio.sleep(0.005)
    assert s.rate_per_s == 10.0
    limited[0] = False
    now[0] += s.restore_after_s + 1  # quiet long enough: one doubling step per period
    s.request("orderbook:S1", epoch=2, delay_s=0.0)
    async with asyncio.timeout(5):
        while len(got) < 6:
            await asyncio.sleep(0.005)
    assert s.rate_per_s == 20.0 and got[-1].snapshot is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
