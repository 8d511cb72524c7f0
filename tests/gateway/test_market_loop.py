"""The market task shares the event loop: at any rate it must yield often (issue 12).

Counted, not timed: a wall-clock bound on the loop's latency fails on a loaded machine (a GC
pause or a descheduled core is not the market's fault), so the test makes every step cost a
known minimum and counts how many steps the market takes between two turns of the loop.
"""

from __future__ import annotations

import asyncio
import time

from tests.conftest import gateway_config
from tickpipe.gateway import Gateway
from tickpipe.gateway.config import MAX_RATE
from tickpipe.gateway.server import MARKET_TURN_S

STEP_COST_S = 0.001  # each step made to take at least this long


async def test_market_at_the_highest_rate_yields_after_each_bounded_turn() -> None:
    """At MAX_RATE a turn would be rate/50 = 2,000 steps by count alone; bounded by time, a
    turn ends once MARKET_TURN_S has passed, so with steps of >= 1 ms at most
    MARKET_TURN_S / STEP_COST_S of them run before the loop serves anything else."""
    async with Gateway(gateway_config(rate=MAX_RATE, admin_port=None)) as gw:
        hub = gw.hub
        real_step = hub.step
        steps = 0

        def slow_step() -> None:
            nonlocal steps
            real_step()
            steps += 1
            end = time.perf_counter() + STEP_COST_S
            while time.perf_counter() < end:
                pass

        hub.step = slow_step  # type: ignore[method-assign]
        await asyncio.sleep(0.05)  # let the market loop pick up the slow steps
        most, ticks, seen = 0, 0, steps
        while ticks < 300:  # bounded in count: ~300 turns of at most ~5 ms each
            await asyncio.sleep(0)
            most = max(most, steps - seen)
            seen = steps
            ticks += 1
        assert steps > 0, "the market did not step at all"
    bound = round(MARKET_TURN_S / STEP_COST_S)
    assert most <= bound, f"the market took {most} steps (> {bound}) without yielding"
    assert most >= 2, "the market never ran more than one step a turn: the test shows nothing"
