"""The market task shares the event loop: at any rate it must yield often (issue 12)."""

from __future__ import annotations

import asyncio
import time

from tests.conftest import gateway_config
from tickpipe.gateway import Gateway
from tickpipe.gateway.config import MAX_RATE


async def test_market_at_the_highest_rate_never_holds_the_loop() -> None:
    """At MAX_RATE the steps cost far more than real time allows (~0.2 ms a step of all 11
    instruments): the market falls behind, but the loop must still turn every few ms."""
    async with Gateway(gateway_config(rate=MAX_RATE, admin_port=None)) as gw:
        await asyncio.sleep(0.2)  # let the market loop get going
        worst, ticks = 0.0, 0
        end = time.monotonic() + 1.5
        while time.monotonic() < end and ticks < 10_000:  # bounded in time and count
            t = time.monotonic()
            await asyncio.sleep(0.001)
            worst = max(worst, time.monotonic() - t)
            ticks += 1
        assert gw.hub.generated, "the market did not step at all"
    # MARKET_TURN_S is 5 ms; 150 ms leaves room for a loaded 2-core machine. Before the turn
    # was bounded by time, a turn was rate/50 = 2,000 steps: ~400 ms.
    assert worst < 0.15, f"the event loop was held {worst * 1000:.0f} ms by the market"
