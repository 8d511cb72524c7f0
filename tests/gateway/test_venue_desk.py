"""The dialects' shared order machinery: the dead man's switch, order faults, a partition."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tickpipe.errors import ConfigError
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.orders import OrderDesk
from tickpipe.gateway.venue_desk import DeadManTimers, OrderFaults


async def test_dead_man_fires_after_its_timeout_and_a_refresh_postpones_it() -> None:
    async with Gateway(GatewayConfig(port=0, admin_port=0, seed=1)) as gw:
        inst = gw.instruments[0]
        book = gw.hub.markets[inst.symbol].sim.book
        desk: OrderDesk = gw.desk
        dm: DeadManTimers = gw.dead_man
        far = inst.tick_units  # a buy at one tick never fills
        for i in range(3):
            desk.place("k1", inst, "buy", far, inst.lot_units, f"c{i}", book)
        desk.place("k2", inst, "buy", far, inst.lot_units, "other", book)
        dm.arm("k1", None, 0.3)
        await asyncio.sleep(0.2)
        dm.arm("k1", None, 0.3)  # refreshed: not yet
        await asyncio.sleep(0.2)
        assert desk.open_count("k1") == 3
        await asyncio.sleep(0.25)
        assert desk.open_count("k1") == 0  # fired
        assert desk.open_count("k2") == 1  # another key untouched
        assert dm.stats()["fired"] == 1 and dm.stats()["cancelled"] == 3
        dm.arm("k2", None, 0.1)
        dm.arm("k2", None, 0)  # disarmed
        await asyncio.sleep(0.2)
        assert desk.open_count("k2") == 1


def test_order_faults_are_taken_in_order_and_cancel_fails_once_waits_for_a_cancel() -> None:
    f = OrderFaults()
    f.queue("cancel_fails_once")
    f.queue("order_5xx", count=2)
    assert f.take("place") == ("order_5xx", 0)
    assert f.take("cancel") == ("cancel_fails_once", 0)
    assert f.take("list") == ("order_5xx", 0)
    assert f.take("place") is None
    with pytest.raises(ConfigError, match="unknown order fault"):
        f.queue("nope")
    with pytest.raises(ConfigError, match="count"):
        f.queue("order_5xx", count=0)


async def test_a_partition_drops_every_request_for_its_duration() -> None:
    async with Gateway(GatewayConfig(port=0, admin_port=0, seed=1)) as gw:
        url = gw.rest_url + "/v1/instruments"
        async with aiohttp.ClientSession() as s:
            async with s.get(url) as r:
                assert r.status == 200
            out = gw.trigger("partition", duration_ms=400)
            assert out["duration_ms"] == 400
            with pytest.raises(aiohttp.ClientError):
                async with s.get(url) as r:
                    await r.read()
            await asyncio.sleep(0.5)
            async with s.get(url) as r:
                assert r.status == 200
        with pytest.raises(ConfigError, match="duration_ms"):
            gw.trigger("partition", duration_ms=0)
