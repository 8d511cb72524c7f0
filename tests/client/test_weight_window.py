"""The request-weight window (``WeightWindow``) and the scheduler spending it, on injected clocks.

Pure parts: no sockets, no real time in the assertions. The integration counterpart
(tests/integration/test_binance_budget.py) runs the real client against the binance dialect.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable

import pytest

from tickpipe.client.snapshots import SnapshotOutcome, SnapshotScheduler, WeightWindow
from tickpipe.client.venue import weight_budget
from tickpipe.errors import ConfigError
from tickpipe.protocol.frames import Snapshot
from tickpipe.venues.base import WeightBudget
from tickpipe.venues.binance.adapter import BinanceSpotVenue
from tickpipe.venues.registry import venue_named


def test_spends_up_to_the_budget_minus_reserve_then_waits_for_the_next_window() -> None:
    w = WeightWindow(6000, 60.0, aligned=True, reserve_weight=100, guard_s=0.25)
    now = 1200.5  # 0.5 s into a wall-clock minute
    n = 0
    while w.spend(50, now):
        n += 1
    assert n == 118  # (6000 - 100) // 50
    assert w.wait_time(50, now) == pytest.approx(1260.25 - now)  # next minute + guard
    assert w.wait_time(50, 1259.0) == pytest.approx(1.25)
    assert w.spend(50, 1260.25) and w.spent == 50  # a new window: a fresh count
    assert w.wait_time(5, 1260.3) == 0.0


def test_guard_keeps_clear_of_both_edges_of_an_aligned_window() -> None:
    w = WeightWindow(100, 10.0, aligned=True, guard_s=0.25)
    assert w.wait_time(1, 20.1) == pytest.approx(0.15)  # too close to the start
    assert w.wait_time(1, 29.9) == pytest.approx(0.35)  # too close to the end: next start+guard
    assert w.wait_time(1, 25.0) == 0.0
    assert not w.spend(1, 20.0) and w.spend(1, 20.25)


def test_no_aligned_window_is_ever_overspent_even_with_skew_under_the_guard() -> None:
    """Random spend attempts over 10 windows: counted in the venue's windows (its clock up to
    ``guard`` off ours, either way), no window gets more than the limit."""
    rng = random.Random(14)
    for skew in (-0.2, 0.0, 0.2):
        w = WeightWindow(1000, 5.0, aligned=True, reserve_weight=100, guard_s=0.25)
        per_window: dict[int, int] = {}
        t = 100.0
        for _ in range(5000):
            t += rng.random() * 0.02
            cost = rng.choice((5, 25, 50))
            if w.spend(cost, t):
                k = math.floor((t + skew) / 5.0)
                per_window[k] = per_window.get(k, 0) + cost
        assert per_window and max(per_window.values()) <= 900, (skew, per_window)
        assert len(per_window) >= 9  # and it did spend in every window


def test_a_reading_over_what_we_sent_is_someone_elses_weight() -> None:
    w = WeightWindow(1000, 60.0, aligned=True, guard_s=0.25)
    now = 60.5
    for _ in range(4):
        assert w.spend(50, now)
    w.observe(150, 60.0, now)  # our own requests, not all counted yet: no news
    assert w.used == 200
    w.observe(900, 60.0, now, unsettled=50)  # 700 + ours: someone else spent ~700
    assert w.used == 950 and w.spent == 200
    assert not w.spend(100, now) and w.spend(50, now)
    w.observe(5000, 0.0, now)  # a reading from a request sent in another window: ignored
    assert w.used == 1000
    assert w.spend(50, 120.5) and w.used == 50  # the next window starts clean


def test_unaligned_window_opens_at_the_first_spend() -> None:
    w = WeightWindow(10, 2.0, aligned=False)
    assert w.current(5.0) is None and w.wait_time(5, 5.0) == 0.0
    assert w.spend(5, 5.3) and w.spend(5, 5.4) and not w.spend(5, 5.5)
    assert w.wait_time(5, 5.5) == pytest.approx(1.8)  # 5.3 + 2.0
    assert w.spend(5, 7.3) and w.start == 7.3


def test_validation() -> None:
    with pytest.raises(ConfigError, match="window_s"):
        WeightWindow(10, 0.0, aligned=True)
    with pytest.raises(ConfigError, match="reserve"):
        WeightWindow(10, 1.0, aligned=True, reserve_weight=10)
    with pytest.raises(ConfigError, match="guard_s"):
        WeightWindow(10, 1.0, aligned=True, guard_s=0.5)


def test_binance_states_its_budget_as_data_and_vts_has_none() -> None:
    b = weight_budget(BinanceSpotVenue(), None)
    assert b == WeightBudget(6000, 60.0, True, 50, 1000, 100, "X-MBX-USED-WEIGHT-1M")
    b100 = weight_budget(BinanceSpotVenue(), 100)
    assert b100 is not None and (b100.snapshot_weight, b100.snapshot_levels) == (5, 100)
    assert weight_budget(venue_named("vts"), None) is None
    with pytest.raises(ConfigError):
        weight_budget(BinanceSpotVenue(), 6000)  # over Binance's documented 5000


# -- the scheduler on fake clocks ---------------------------------------------------------------


def _scheduler(
    fetch: Callable[[str], object],
    got: list[SnapshotOutcome],
    now: list[float],
    *,
    concurrency: int = 4,
) -> SnapshotScheduler:
    async def run_fetch(channel: str) -> Snapshot:
        fetch(channel)
        return Snapshot(symbol=channel.partition(":")[2], seq=1, ts=0, bids=[], asks=[])

    return SnapshotScheduler(
        run_fetch,
        got.append,
        concurrency=concurrency,
        rate_per_s=1000.0,
        burst=1000,
        jitter_s=0.0,
        clock=lambda: now[0],
        random=lambda: 0.0,
        weight=WeightBudget(10, 1.0, True, 3, 100, reserve_weight=1),  # 3 a window
        wall_clock=lambda: now[0],
    )


async def _until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not cond():
            await asyncio.sleep(0.005)


async def test_scheduler_spends_a_window_then_waits_for_the_next_boundary() -> None:
    now = [100.3]
    windows: list[int] = []
    got: list[SnapshotOutcome] = []
    s = _scheduler(lambda ch: windows.append(math.floor(now[0])), got, now)
    for i in range(7):
        s.request(f"orderbook:S{i}", epoch=1, delay_s=0.0, first_seed=True)
    task = asyncio.create_task(s.run())
    try:
        await _until(lambda: len(got) == 3)
        await asyncio.sleep(0.2)
        assert len(got) == 3  # the window is spent: nothing more until the next one
        now[0] = 101.5
        await _until(lambda: len(got) == 6)
        await asyncio.sleep(0.2)
        assert len(got) == 6
        now[0] = 102.5
        await _until(lambda: len(got) == 7)
        assert windows == [100, 100, 100, 101, 101, 101, 102]  # ceil(7 / 3) windows
        assert s.rate_limited == 0 and s.window is not None and s.window.used == 3
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_scheduler_backs_off_on_a_used_weight_reading_from_another_process() -> None:
    now = [100.3]
    got: list[SnapshotOutcome] = []
    s: SnapshotScheduler | None = None

    def fetch(channel: str) -> None:
        assert s is not None
        s.observe_used_weight(9)  # the venue counted 9: our 3 and 6 someone else spent

    s = _scheduler(fetch, got, now, concurrency=1)
    for i in range(3):
        s.request(f"orderbook:S{i}", epoch=1, delay_s=0.0, first_seed=True)
    task = asyncio.create_task(s.run())
    try:
        await _until(lambda: len(got) == 1)
        await asyncio.sleep(0.2)
        assert len(got) == 1  # without the reading 3 would have gone in this window
        now[0] = 101.5
        await _until(lambda: len(got) == 2)  # a new window: the reading applies again
        await asyncio.sleep(0.2)
        assert len(got) == 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
