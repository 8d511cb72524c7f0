"""Signed orders on ``venue="binance"`` and ``"binance-usdm"``: the real client against the
reference gateway's binance / binance-usdm dialects on loopback (issue 17).

Everything real: the gateway in-process on 127.0.0.1 port 0 verifying Binance's HMAC signature,
key header and recvWindow with ``venues.binance.auth`` (the code the client signs with), keeping
the orders in ``gw.desk`` and USD-M's ``countdownCancelAll`` on ``gw.dead_man``; the client's
signed-orders shell with the Binance order codec. Each test is bounded (a few seconds)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tickpipe import Client
from tickpipe.errors import CredentialsRejected
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.dialects.binance_orders import BinanceOrderEndpoints
from tickpipe.protocol.backoff import BackoffPolicy

from .conftest import FAST_RECONNECT, Recorder

KEY = "bn-test-key"
SECRET = "bn-gateway-secret-7f3a9c"  # the gateway's secret for KEY
WRONG_SECRET = "bn-wrong-secret-c0ffee42"
FAST_ORDER_RETRY = BackoffPolicy(base_s=0.05, cap_s=0.2, healthy_after_s=0.0)
VENUES = ["binance", "binance-usdm"]


def config(dialect: str) -> GatewayConfig:
    return GatewayConfig(
        port=0,
        admin_port=0,
        seed=7,
        rate=40.0,
        dialect=dialect,
        dialect_options=(("ping_interval_s", 0.5),),
        keys=((KEY, SECRET),),
    )


@pytest.fixture(params=VENUES)
async def gw(request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    async with Gateway(config(request.param)) as g:
        yield g


@pytest.fixture
async def ugw() -> AsyncIterator[Gateway]:
    async with Gateway(config("binance-usdm")) as g:
        yield g


@pytest.fixture
async def sgw() -> AsyncIterator[Gateway]:
    async with Gateway(config("binance")) as g:
        yield g


def venue_of(g: Gateway) -> str:
    assert g.dialect is not None
    return g.dialect.name


def endpoints(g: Gateway) -> BinanceOrderEndpoints:
    orders = getattr(g.dialect, "orders", None)
    assert isinstance(orders, BinanceOrderEndpoints)
    return orders


def client_for(g: Gateway, secret: str = SECRET, **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault("order_retry", FAST_ORDER_RETRY)
    return Client(
        venue=venue_of(g),
        stream_url=g.stream_url,
        rest_url=g.rest_url,
        key=KEY,
        secret=secret,
        **knobs,
    )


def open_ids(g: Gateway) -> list[str]:
    return sorted(o.order_id[1:] for o in g.desk.find(KEY, "open", None))


async def until(pred: Callable[[], bool], timeout: float = 8.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.02)


async def test_orders_placed_listed_got_cancelled(gw: Gateway) -> None:
    async with client_for(gw) as client:
        a = await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100", "bn-a")
        b = await client.place_limit_order("ETHUSDT", "sell", "99999.00", "0.100", "bn-b")
        assert (a.status, a.client_order_id, a.symbol, a.side) == ("open", "bn-a", "BTCUSDT", "buy")
        assert open_ids(gw) == sorted([a.order_id, b.order_id])
        listed = await client.open_orders()
        assert {(o.order_id, o.client_order_id) for o in listed} == {
            (a.order_id, "bn-a"),
            (b.order_id, "bn-b"),
        }
        assert [o.order_id for o in await client.open_orders("ETHUSDT")] == [b.order_id]
        got = await client.get_order(a.order_id)
        assert (got.order_id, got.price, got.size, got.status) == (
            a.order_id,
            "1000.00",
            "0.0100",
            "open",
        )
        c = await client.cancel_order(a.order_id)
        assert c.status == "cancelled" and c.client_order_id == "bn-a"
        await client.cancel_all_orders("ETHUSDT")
        assert open_ids(gw) == [] and client.own_orders == {}
        stats = endpoints(gw).stats()
        assert stats["refused"] == {} and stats["signed_requests"] == 7


async def test_stream_fault_cancels_own_orders_and_arms_the_switch_once_per_healthy_period(
    gw: Gateway,
) -> None:
    usdm = venue_of(gw) == "binance-usdm"
    # USD-M: refreshed every 1.5 s; blind for 0.5-1 s (seen by the refresh loop, well inside
    # the 4.5 s the venue's timer runs from its last refresh before the fault)
    slow = BackoffPolicy(base_s=1.0, cap_s=1.0, healthy_after_s=5.0)
    knobs: dict[str, Any] = {"reconnect": slow} if usdm else {}
    async with client_for(gw, dead_man_timeout_s=4.5, **knobs) as client:
        rec = Recorder(client)
        try:
            a = await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100")
            b = await client.place_limit_order("ETHUSDT", "buy", "100.00", "0.100")
            if usdm:  # the venue's timer armed for each symbol with an own order
                syms = ("BTCUSDT", "ETHUSDT")
                await until(lambda: all(gw.dead_man.is_armed(KEY, s) for s in syms))
                await rec.wait_for("dead_man_switch", armed=True)
                calls = gw.dead_man.stats()["arm_calls"]
                # refreshed (one more round) within the same healthy period: not armed again
                await until(lambda: gw.dead_man.stats()["arm_calls"] >= calls + 2)
                assert len(rec.named("dead_man_switch")) == 1
            gw.trigger("disconnect")
            await rec.wait_for("orders_cancelled", timeout=8)
            [oc] = rec.named("orders_cancelled")
            d = oc.to_dict()
            assert d["venue"] == venue_of(gw)
            assert sorted(d["cancelled"]) == sorted([a.order_id, b.order_id])
            assert d["failed"] == []
            assert open_ids(gw) == [] and client.own_orders == {}
            await rec.wait_for("connected", timeout=8)  # (the first was before the recorder)
            c = await client.place_limit_order("BTCUSDT", "buy", "1001.00", "0.0100")
            if usdm:  # a new healthy period: armed (once) again
                await rec.wait_for(lambda evs: len(rec.named("dead_man_switch")) >= 2, timeout=8)
                armed = [e.to_dict() for e in rec.named("dead_man_switch")]
                assert [(e["armed"], e["venue"]) for e in armed] == [(True, "binance-usdm")] * 2
                assert gw.dead_man.is_armed(KEY, "BTCUSDT")
            else:  # Binance spot has no dead man's switch: nothing armed, ever
                await asyncio.sleep(0.5)
                assert rec.named("dead_man_switch") == []
                assert gw.dead_man.stats()["arm_calls"] == 0
            assert open_ids(gw) == [c.order_id]
        finally:
            await rec.close()


async def test_usdm_network_cut_orders_die_by_the_venue_timer(ugw: Gateway) -> None:
    """The client can reach neither stream nor REST: its own cancels fail, and the venue's
    countdownCancelAll (armed while healthy) cancels the orders."""
    async with client_for(ugw, dead_man_timeout_s=1.5) as client:
        rec = Recorder(client)
        try:
            o = await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100")
            await until(lambda: ugw.dead_man.is_armed(KEY, "BTCUSDT"))
            ugw.trigger("partition", duration_ms=4000)
            await rec.wait_for("orders_cancelled", timeout=8)
            first = rec.named("orders_cancelled")[0].to_dict()
            assert first["failed"] == [o.order_id] and first["cancelled"] == []
            await until(lambda: ugw.dead_man.stats()["fired"] >= 1)
            assert open_ids(ugw) == []
            [desk_order] = ugw.desk.find(KEY, None, "BTCUSDT")
            assert (desk_order.status, desk_order.cancel_reason) == ("cancelled", "dead_man")
            assert ugw.dead_man.stats()["cancelled"] == 1
        finally:
            await rec.close()


async def test_spot_network_cut_orders_rest_until_the_client_reaches_binance_again(
    sgw: Gateway,
) -> None:
    """Binance spot has no dead man's switch: during a cut the order stays open at the venue;
    the client's background retry cancels it once the network is back."""
    async with client_for(sgw) as client:
        rec = Recorder(client)
        try:
            o = await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100")
            sgw.trigger("partition", duration_ms=1500)
            await rec.wait_for("orders_cancelled", timeout=8)
            assert rec.named("orders_cancelled")[0].to_dict()["failed"] == [o.order_id]
            assert open_ids(sgw) == [o.order_id]  # nothing at the venue cancels it
            await rec.wait_for("orders_cancelled", background=True, timeout=10)
            bg = rec.named("orders_cancelled", background=True)[0].to_dict()
            assert bg["cancelled"] == [o.order_id] and bg["venue"] == "binance"
            assert open_ids(sgw) == [] and sgw.dead_man.stats()["fired"] == 0
        finally:
            await rec.close()


@pytest.mark.parametrize("wrong", ["secret", "key"])
async def test_bad_credentials_one_request_clear_error_no_secret_anywhere(
    gw: Gateway, wrong: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    venue = venue_of(gw)
    client = (
        client_for(gw, secret=WRONG_SECRET)
        if wrong == "secret"
        else Client(
            venue=venue,
            stream_url=gw.stream_url,
            rest_url=gw.rest_url,
            key="not-a-key",
            secret=WRONG_SECRET,
            reconnect=FAST_RECONNECT,
            order_retry=FAST_ORDER_RETRY,
        )
    )
    texts: list[str] = []
    async with client:
        rec = Recorder(client)
        try:
            with pytest.raises(CredentialsRejected) as info:
                await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100")
            texts.append(str(info.value))
            code = "-1022" if wrong == "secret" else "-2015"
            assert venue in str(info.value) and code in str(info.value)
            assert info.value.code == "auth_failed"
            stats = endpoints(gw).stats()
            assert stats["signed_requests"] == 1  # no retry loop
            assert stats["refused"] == {"bad_signature" if wrong == "secret" else "unknown_key": 1}
            # remembered: the next call raises at once, without a request
            with pytest.raises(CredentialsRejected) as again:
                await client.open_orders()
            texts.append(str(again.value))
            assert endpoints(gw).stats()["signed_requests"] == 1
            assert gw.desk.counts()["total"] == 0
            texts.extend(str(e.to_dict()) for e in rec.events)
        finally:
            await rec.close()
    texts.extend(r.getMessage() for r in caplog.records)
    texts.extend(str(getattr(r, "__dict__", "")) for r in caplog.records)
    for t in texts:
        assert WRONG_SECRET not in t and SECRET not in t


async def test_order_5xx_on_place_retried_with_the_same_client_order_id_one_order(
    gw: Gateway,
) -> None:
    """The 5xx comes after the order reached the book (Binance: execution status unknown); the
    retry, with the same newClientOrderId, is refused as a duplicate and the client reads the
    first order back."""
    async with client_for(gw) as client:
        gw.trigger("order_5xx")
        o = await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100", "bn-5xx-1")
        assert (o.client_order_id, o.status) == ("bn-5xx-1", "open")
        orders = gw.desk.find(KEY, None, None)
        assert [(x.order_id[1:], x.client_order_id) for x in orders] == [(o.order_id, "bn-5xx-1")]
        stats = endpoints(gw).stats()
        assert stats["faults_served"] == {"order_5xx": 1}
        assert stats["duplicates_refused"] == 1  # the retry carried the same id
        assert set(client.own_orders) == {o.order_id}


async def test_order_timeout_and_rate_limit_on_place_still_one_order(sgw: Gateway) -> None:
    async with client_for(sgw, rest_timeout_s=0.5) as client:
        sgw.trigger("order_timeout", duration_ms=1500)  # placed, then no answer in time
        o = await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100", "bn-to-1")
        assert [x.client_order_id for x in sgw.desk.find(KEY, None, None)] == ["bn-to-1"]
        sgw.trigger("order_rate_limit")  # 429 -1015 + Retry-After 1: waited, then placed
        p = await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100", "bn-rl-1")
        assert sorted(open_ids(sgw)) == sorted([o.order_id, p.order_id])
        assert endpoints(sgw).stats()["faults_served"] == {
            "order_timeout": 1,
            "order_rate_limit": 1,
        }


async def test_cancel_fails_once_is_retried_in_the_background(gw: Gateway) -> None:
    async with client_for(gw) as client:
        rec = Recorder(client)
        try:
            o = await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100")
            gw.trigger("cancel_fails_once")
            gw.trigger("disconnect")
            await rec.wait_for("orders_cancelled", timeout=8)
            first = rec.named("orders_cancelled")[0].to_dict()
            assert (first["cancelled"], first["failed"]) == ([], [o.order_id])
            await rec.wait_for("orders_cancelled", background=True, timeout=8)
            bg = rec.named("orders_cancelled", background=True)[0].to_dict()
            assert bg["cancelled"] == [o.order_id] and bg["venue"] == venue_of(gw)
            assert open_ids(gw) == []
            assert endpoints(gw).stats()["faults_served"] == {"cancel_fails_once": 1}
        finally:
            await rec.close()
