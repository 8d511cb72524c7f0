"""Signed orders on ``venue="binance"`` and ``"binance-usdm"``: the real client against the
reference gateway's binance / binance-usdm dialects on loopback (issue 17).

Everything real: the gateway in-process on 127.0.0.1 port 0 verifying Binance's HMAC signature,
key header and recvWindow with ``venues.binance.auth`` (the code the client signs with), keeping
the orders in ``gw.desk`` and USD-M's ``countdownCancelAll`` on ``gw.dead_man``; the client's
signed-orders shell with the Binance order codec. Each test is bounded (a few seconds)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tickpipe import Client
from tickpipe.errors import CredentialsRejected, RestError
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.dialects.binance_orders import BinanceOrderEndpoints
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.venues.binance.auth import API_KEY_HEADER, sign_params
from tickpipe.venues.binance.orders import ORDER_SPECS

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


# -- the dialect's checks, by raw signed requests ----------------------------------------------
def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Raw:
    """Signed requests as Binance's docs build them (``auth.sign_params``), sent as is."""

    def __init__(self, g: Gateway, session: aiohttp.ClientSession) -> None:
        self.g, self.session = g, session
        self.spec = ORDER_SPECS[venue_of(g)]

    async def send(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]],
        *,
        key: str | None = KEY,
        secret: str = SECRET,
        ts: int | None = None,
        signed_query: str | None = None,
        body: str | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        if signed_query is None:
            full = [*params, ("timestamp", str(now_ms() if ts is None else ts))]
            signed_query = sign_params(secret, full)
        headers = {API_KEY_HEADER: key} if key is not None else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = URL(
            f"{self.g.rest_url}{path}" + (f"?{signed_query}" if signed_query else ""), encoded=True
        )
        async with self.session.request(method, url, headers=headers, data=body) as resp:
            return resp.status, await resp.json(content_type=None), dict(resp.headers)

    def order(self, cid: str, price: str = "1000.00") -> list[tuple[str, str]]:
        return [
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.0100"),
            ("price", price),
            ("newClientOrderId", cid),
        ]


@pytest.fixture
async def raw(gw: Gateway) -> AsyncIterator[Raw]:
    async with aiohttp.ClientSession() as session:
        yield Raw(gw, session)


async def test_dialect_refuses_keys_signatures_and_timestamps_as_binance(raw: Raw) -> None:
    path = raw.spec.open_orders_path

    async def refused(status: int, code: int, **kw: Any) -> str:
        got = await raw.send("GET", path, [], **kw)
        assert (got[0], got[1]["code"]) == (status, code), got
        return str(got[1]["msg"])

    assert await refused(401, -2014, key=None) == "API-key format invalid."
    assert (
        await refused(401, -2015, key="nope") == "Invalid API-key, IP, or permissions for action."
    )
    assert (
        await refused(400, -1022, secret=WRONG_SECRET) == "Signature for this request is not valid."
    )
    assert "outside of the recvWindow" in await refused(400, -1021, ts=now_ms() - 6000)
    assert "1000ms ahead" in await refused(400, -1021, ts=now_ms() + 3000)
    signed = sign_params(SECRET, [("recvWindow", "60001"), ("timestamp", str(now_ms()))])
    assert "recvWindow" in await refused(400, -1130, signed_query=signed)
    assert "'timestamp'" in await refused(
        400, -1102, signed_query=sign_params(SECRET, [("a", "1")])
    )
    # a longer recvWindow takes an older timestamp; a copy within its window is served again
    signed = sign_params(SECRET, [("recvWindow", "20000"), ("timestamp", str(now_ms() - 6000))])
    for _ in range(2):
        status, body, headers = await raw.send("GET", path, [], signed_query=signed)
        assert (status, body) == (200, [])
        assert headers["X-MBX-USED-WEIGHT-1M"].isdigit()
    if raw.spec.name == "binance":  # spot takes the timestamp in microseconds too
        assert (await raw.send("GET", path, [], ts=time.time_ns() // 1000))[0] == 200
    stats = endpoints(raw.g).stats()
    assert stats["refused"] == {
        "no_key": 1,
        "unknown_key": 1,
        "bad_signature": 1,
        "timestamp": 2,
        "bad_recv_window": 1,
        "no_timestamp": 1,
    }


async def test_dialect_orders_answers_and_refusals(raw: Raw) -> None:
    s = raw.spec
    status, o, _ = await raw.send("POST", s.order_path, raw.order("raw-1"))
    assert status == 200 and o["status"] == "NEW" and o["clientOrderId"] == "raw-1"
    assert isinstance(o["orderId"], int)
    # the same newClientOrderId while the first is open: refused as Binance does
    status, e, _ = await raw.send("POST", s.order_path, raw.order("raw-1"))
    assert (status, e["code"], e["msg"]) == (400, s.duplicate_code, s.duplicate_msg)
    # parameters in a form body, signature last in it (query string + body signed)
    body = sign_params(SECRET, [*raw.order("raw-2"), ("timestamp", str(now_ms()))])
    status, o2, _ = await raw.send("POST", s.order_path, [], signed_query="", body=body)
    assert status == 200 and o2["clientOrderId"] == "raw-2"
    for params, code in [
        (raw.order("raw-3", price="1000.005"), -1013),  # off the tick grid: PRICE_FILTER
        ([("symbol", "NOPEUSDT"), *raw.order("raw-4")[1:]], -1121),
        (raw.order("bad id!"), -1100),
        ([p for p in raw.order("raw-5") if p[0] != "timeInForce"], -1102),
    ]:
        status, e, _ = await raw.send("POST", s.order_path, params)
        assert (status, e["code"]) == (400, code), e
    q = [("symbol", "BTCUSDT"), ("orderId", "999999")]
    status, e, _ = await raw.send("GET", s.order_path, q)
    assert (status, e["code"], e["msg"]) == (400, -2013, "Order does not exist.")
    status, e, _ = await raw.send("DELETE", s.order_path, q)
    assert (status, e["code"], e["msg"]) == (400, -2011, "Unknown order sent.")
    by_cid = [("symbol", "BTCUSDT"), ("origClientOrderId", "raw-1")]
    status, got, _ = await raw.send("GET", s.order_path, by_cid)
    assert status == 200 and got["orderId"] == o["orderId"]
    status, c, _ = await raw.send("DELETE", s.order_path, by_cid)
    assert status == 200 and c["status"] == "CANCELED"
    status, _, _ = await raw.send("POST", "/api/v3/countdownCancelAll", [("symbol", "BTCUSDT")])
    assert status == 404  # spot has no dead man's switch (and USD-M's lives under /fapi/v1)
    if s.dead_man_path is not None:
        arm = [("symbol", "BTCUSDT"), ("countdownTime", "120000")]
        status, ack, _ = await raw.send("POST", s.dead_man_path, arm)
        assert (status, ack) == (200, {"symbol": "BTCUSDT", "countdownTime": "120000"})
        assert raw.g.dead_man.is_armed(KEY, "BTCUSDT")
        arm = [("symbol", "BTCUSDT"), ("countdownTime", "0")]
        assert (await raw.send("POST", s.dead_man_path, arm))[0] == 200
        assert not raw.g.dead_man.is_armed(KEY, "BTCUSDT")


async def test_dialect_order_rate_limit() -> None:
    cfg = replace(config("binance"), dialect_options=(("orders_per_10s", 3),))
    async with Gateway(cfg) as g, aiohttp.ClientSession() as session:
        raw = Raw(g, session)
        for i in range(3):
            assert (await raw.send("POST", raw.spec.order_path, raw.order(f"rl-{i}")))[0] == 200
        status, e, headers = await raw.send("POST", raw.spec.order_path, raw.order("rl-3"))
        assert (status, e["code"]) == (429, -1015)
        assert e["msg"] == "Too many new orders; current limit is 3 orders per 10 SECOND."
        assert 1 <= int(headers["Retry-After"]) <= 10
        assert len(g.desk.find(KEY, "open", None)) == 3


async def test_cancel_all_without_a_symbol_cancels_every_symbol(gw: Gateway) -> None:
    """Binance cancels all only per symbol: the client lists the key's open orders and cancels
    each symbol's (the orders are not just forgotten)."""
    async with client_for(gw) as client:
        a = await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100")
        b = await client.place_limit_order("ETHUSDT", "buy", "100.00", "0.100")
        ids = await client.cancel_all_orders()
        assert sorted(ids) == sorted([a.order_id, b.order_id])  # USD-M: the ones listed open
        assert open_ids(gw) == [] and client.own_orders == {}
        c = await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100")
        ids = await client.cancel_all_orders("BTCUSDT")
        assert ids == ([c.order_id] if venue_of(gw) == "binance" else [])  # USD-M names none
        assert open_ids(gw) == []


async def test_a_clock_step_is_refused_then_the_venue_clock_is_read_again(sgw: Gateway) -> None:
    async with client_for(sgw) as client:
        await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100")
        signed = client._signed
        assert signed is not None
        signed.offset_ms -= 10_000  # as if our clock stepped 10 s ahead after the last sync
        with pytest.raises(RestError) as info:
            await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100", "bn-skew")
        assert info.value.code == "clock_skew" and "-1021" in str(info.value)
        assert [o.client_order_id for o in sgw.desk.find(KEY, None, None)].count("bn-skew") == 0
        o = await client.place_limit_order("BTCUSDT", "buy", "1000.00", "0.0100", "bn-skew")
        assert o.client_order_id == "bn-skew" and abs(signed.offset_ms) < 5_000
