"""Bybit v5 signed orders: the real client (``venue="bybit"`` / ``"bybit-linear"``, a Bybit key)
against the reference gateway's ``bybit`` dialect, in-process on 127.0.0.1 port 0.

Covered: orders placed, listed (per category), fetched and cancelled; a stream fault cancels
the client's own orders (``orders_cancelled`` naming the venue) and the dead man's switch is
armed once per healthy period; a network cut ends with the orders cancelled by Bybit's DCP timer
on the gateway when the private ``dcp`` stream is held, and (a strict xfail) not when only the
client runs, since the client holds no private stream yet (docs/orders.md, Bybit); bad
credentials are one refused request, a clear error and no secret anywhere; an ``order_5xx`` on
place is retried with the same ``orderLinkId`` into one order; an ``order_timeout`` whose order
did go through comes back as that order (Bybit's "duplicate" answer); a ``cancel_fails_once``
is retried in the background until cancelled; the dialect's own refusals (timestamp window,
signature, per-UID rate, the private stream's auth).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tickpipe import Client
from tickpipe.errors import CredentialsRejected
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.dialects.bybit import BybitDialect
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.venues.bybit import auth
from tickpipe.venues.bybit.orders import (
    PRIVATE_STREAM_PATH,
    decode_private_answer,
    private_auth_frame,
    private_subscribe_frame,
)
from tickpipe.venues.trading import Credentials

from .conftest import FAST_RECONNECT, Recorder

KEY = "bybit-it-key"
SECRET = "bybit-it-secret-7f3a9c1e5b"
SYMBOL = "BTCUSDT"
WAIT_S = 8.0  # generous: the machine is shared
FAST_RETRY = BackoffPolicy(base_s=0.05, cap_s=0.3, healthy_after_s=0.0)


@pytest.fixture
async def ygw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(
        port=0, admin_port=0, seed=7, rate=40.0, dialect="bybit", keys=((KEY, SECRET),)
    )
    async with Gateway(cfg) as g:
        yield g


def dialect(g: Gateway) -> BybitDialect:
    assert isinstance(g.dialect, BybitDialect)
    return g.dialect


def order_client(g: Gateway, venue: str = "bybit", **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault("order_retry", FAST_RETRY)
    knobs.setdefault("key", KEY)
    knobs.setdefault("secret", SECRET)
    return Client(venue=venue, stream_url=g.stream_url, rest_url=g.rest_url, **knobs)


def far_buy(g: Gateway) -> tuple[str, str]:
    """A price and size for a buy that rests (one tick: far below the market)."""
    inst = g.hub.markets[SYMBOL].instrument
    return inst.tick_size, inst.lot_size


def open_at_gateway(g: Gateway) -> list[str]:
    return sorted(o.order_id for o in g.desk.find(KEY, "open", None))


async def until(pred: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class DcpStream:
    """Bybit's private stream held the documented way (``auth``, ``subscribe`` a ``dcp``
    topic): what arms DCP at Bybit, and what tickpipe's client does not hold yet."""

    def __init__(self, g: Gateway, topic: str = "dcp.spot") -> None:
        self.url = g.stream_url + PRIVATE_STREAM_PATH
        self.topic = topic
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def _ask(self, frame: bytes) -> Any:
        assert self.ws is not None
        await self.ws.send_str(frame.decode())
        return decode_private_answer(await asyncio.wait_for(self.ws.receive_str(), WAIT_S))

    async def open(self, creds: Credentials | None = None) -> None:
        creds = creds or Credentials(KEY, SECRET)
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.url)
        expires = time.time_ns() // 1_000_000 + 10_000
        answer = await self._ask(private_auth_frame(creds, expires))
        assert answer.op == "auth" and answer.success, answer
        answer = await self._ask(private_subscribe_frame([self.topic]))
        assert answer.op == "subscribe" and answer.success, answer

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()


@pytest.mark.parametrize("venue", ["bybit", "bybit-linear"])
async def test_orders_placed_listed_fetched_and_cancelled(ygw: Gateway, venue: str) -> None:
    price, size = far_buy(ygw)
    async with order_client(ygw, venue) as client:
        o1 = await client.place_limit_order(SYMBOL, "buy", price, size, client_order_id="bot-1")
        o2 = await client.place_limit_order(SYMBOL, "buy", price, size)
        assert o1.status == "open" and o1.client_order_id == "bot-1" and o1.symbol == SYMBOL
        assert set(client.own_orders) == {o1.order_id, o2.order_id}
        listed = await client.open_orders()  # linear: settleCoin=USDT covers BTCUSDT
        assert {o.order_id for o in listed} == {o1.order_id, o2.order_id}
        assert {o.client_order_id for o in listed} >= {"bot-1"}
        assert {o.order_id for o in await client.open_orders(SYMBOL)} == {o1.order_id, o2.order_id}
        got = await client.get_order(o1.order_id)
        assert (got.status, got.price, got.side) == ("open", price, "buy")
        assert (await client.cancel_order(o1.order_id)).status == "cancelled"
        assert (await client.get_order(o1.order_id)).status == "cancelled"  # closed ones too
        assert await client.cancel_all_orders() == [o2.order_id]
        assert await client.open_orders() == [] and client.own_orders == {}
        assert open_at_gateway(ygw) == []


async def test_categories_are_apart_at_the_gateway(ygw: Gateway) -> None:
    price, size = far_buy(ygw)
    async with order_client(ygw, "bybit") as spot, order_client(ygw, "bybit-linear") as lin:
        s = await spot.place_limit_order(SYMBOL, "buy", price, size)
        lo = await lin.place_limit_order(SYMBOL, "buy", price, size)
        assert [o.order_id for o in await spot.open_orders()] == [s.order_id]
        assert [o.order_id for o in await lin.open_orders()] == [lo.order_id]
        assert await lin.cancel_all_orders() == [lo.order_id]
        assert open_at_gateway(ygw) == [s.order_id]


async def test_a_stream_fault_cancels_own_orders_and_arms_the_switch_once_per_healthy_period(
    ygw: Gateway,
) -> None:
    price, size = far_buy(ygw)
    # blind for 1.5 s: longer than the switch's refresh period (3 s / 3), so the client sees it
    slow = BackoffPolicy(base_s=1.5, cap_s=1.5, jitter="none", healthy_after_s=0.0)
    async with order_client(ygw, dead_man_timeout_s=3.0, reconnect=slow) as client:
        rec = Recorder(client)
        try:
            await rec.wait_for("dead_man_switch", timeout=WAIT_S, armed=True)
            ids = sorted(
                [
                    (await client.place_limit_order(SYMBOL, "buy", price, size)).order_id
                    for _ in "ab"
                ]
            )
            ygw.trigger("disconnect")
            await rec.wait_for("orders_cancelled", timeout=WAIT_S, venue="bybit")
            [report] = rec.named("orders_cancelled")
            assert sorted(report.cancelled) == ids and report.failed == []  # type: ignore[attr-defined]
            assert open_at_gateway(ygw) == [] and client.own_orders == {}
            await rec.wait_for(lambda _: len(rec.named("dead_man_switch", armed=True)) >= 2, WAIT_S)
            await asyncio.sleep(1.5)  # more refresh periods of the healthy stream: no new event
            armed = rec.named("dead_man_switch", armed=True)
            assert len(armed) == 2, armed  # once per healthy period, never twice for one
            assert all(e.venue == "bybit" and e.timeout_s == 3.0 for e in armed)  # type: ignore[attr-defined]
            assert rec.named("dead_man_switch", armed=False) == []
            d = dialect(ygw)
            assert d.dcp_windows[(KEY, "SPOT")] == 3
            signed = client._signed
            assert signed is not None and d.dcp_counts["window_set"] == signed.dead_man_armed
        finally:
            await rec.close()


async def test_a_network_cut_ends_with_the_orders_cancelled_by_bybits_dcp(ygw: Gateway) -> None:
    """The private ``dcp.spot`` stream (held here as Bybit documents it) is cut with the rest
    of the network: the gateway's DCP timer cancels the orders ``timeWindow`` (the client's
    ``dead_man_timeout_s``, 3 s: Bybit's minimum) later, while the client's own cancels cannot
    reach it."""
    price, size = far_buy(ygw)
    dcp = DcpStream(ygw)
    async with order_client(ygw, dead_man_timeout_s=3.0) as client:
        rec = Recorder(client)
        try:
            await rec.wait_for("dead_man_switch", timeout=WAIT_S, armed=True)  # window set
            await dcp.open()
            ids = sorted(
                [
                    (await client.place_limit_order(SYMBOL, "buy", price, size)).order_id
                    for _ in "ab"
                ]
            )
            assert not ygw.dead_man.is_armed(KEY)
            ygw.trigger("partition", duration_ms=7_000)
            await rec.wait_for("orders_cancelled", timeout=WAIT_S, venue="bybit")
            [blind] = rec.named("orders_cancelled")
            assert sorted(blind.failed) == ids and blind.cancelled == []  # type: ignore[attr-defined]
            assert ygw.dead_man.is_armed(KEY)
            await until(lambda: ygw.dead_man.stats()["fired"] >= 1, "DCP to fire", timeout=6.0)
            assert open_at_gateway(ygw) == []
            assert {o.cancel_reason for o in ygw.desk.find(KEY, None, None)} == {"dead_man"}
            assert dialect(ygw).dcp_counts["armed"] == 1
        finally:
            await rec.close()
            await dcp.close()


async def test_a_network_cut_with_the_client_alone_ends_with_bybits_dcp(ygw: Gateway) -> None:
    price, size = far_buy(ygw)
    async with order_client(ygw, dead_man_timeout_s=3.0) as client:
        rec = Recorder(client)
        try:
            await rec.wait_for("dead_man_switch", timeout=WAIT_S, armed=True)
            await client.place_limit_order(SYMBOL, "buy", price, size)
            ygw.trigger("partition", duration_ms=7_000)
            await until(lambda: ygw.dead_man.stats()["fired"] >= 1, "DCP to fire", timeout=5.0)
        finally:
            await rec.close()


@pytest.mark.parametrize(
    ("key", "secret", "said"),
    [
        ("no-such-key", SECRET, "HTTP 401"),  # unknown key: HTTP 401, retCode 10003
        (KEY, "wrong-secret-c0ffee", "retCode 10004"),  # known key, bad signature
    ],
)
async def test_bad_credentials_are_one_request_a_clear_error_and_no_secret(
    ygw: Gateway, caplog: pytest.LogCaptureFixture, key: str, secret: str, said: str
) -> None:
    caplog.set_level(logging.DEBUG)
    d = dialect(ygw)
    async with order_client(ygw, key=key, secret=secret, dead_man_timeout_s=3.0) as client:
        rec = Recorder(client)
        try:
            # the dead man's switch is the first signed call: refused, reported, not retried
            await rec.wait_for("dead_man_switch", timeout=WAIT_S, armed=False)
            [ev] = rec.named("dead_man_switch")
            assert "bybit refused the API key" in ev.error and said in ev.error  # type: ignore[attr-defined]
            errors = []
            for _ in range(3):
                with pytest.raises(CredentialsRejected) as info:
                    await client.place_limit_order(SYMBOL, "buy", *far_buy(ygw))
                errors.append(info.value)
            with pytest.raises(CredentialsRejected):
                await client.open_orders()
            await asyncio.sleep(1.2)  # a refresh period: the switch is not retried either
            assert d.refused["auth"] == 1  # exactly one signed request reached the gateway
            assert (
                errors[0].code == "auth_failed"
                and "bybit" in str(errors[0])
                and said in str(errors[0])
            )
            texts = [caplog.text, *(repr(e) for e in rec.events), *(str(e) for e in errors)]
            texts += [repr(e) for e in errors] + [repr(client.stats())]
            assert all(secret not in t for t in texts)
        finally:
            await rec.close()
    assert secret not in caplog.text


async def test_order_5xx_on_place_is_retried_with_the_same_order_link_id(ygw: Gateway) -> None:
    price, size = far_buy(ygw)
    async with order_client(ygw, dead_man_timeout_s=None) as client:  # faults hit orders only
        ygw.trigger("order_5xx")
        order = await client.place_limit_order(SYMBOL, "buy", price, size, client_order_id="r-1")
        assert ygw.order_faults.taken["order_5xx"] == 1
        placed = ygw.desk.find(KEY, None, None)
        assert [(o.order_id, o.client_order_id) for o in placed] == [(order.order_id, "r-1")]


async def test_a_lost_answer_is_recovered_from_bybits_duplicate_answer(ygw: Gateway) -> None:
    """``order_timeout``: the order was placed, its answer lost; the retry with the same
    ``orderLinkId`` is refused as a duplicate, which names the first order: one order, known
    by its link id, that get and cancel reach."""
    price, size = far_buy(ygw)
    async with order_client(ygw, rest_timeout_s=1.0, dead_man_timeout_s=None) as client:
        ygw.trigger("order_timeout", duration_ms=1_500)
        order = await client.place_limit_order(SYMBOL, "buy", price, size, client_order_id="t-1")
        assert (
            order.order_id == "link:t-1" and order.is_open and order.order_id in client.own_orders
        )
        [placed] = ygw.desk.find(KEY, None, None)
        assert placed.client_order_id == "t-1"
        got = await client.get_order(order.order_id)
        assert got.order_id == placed.order_id and got.status == "open"
        assert (await client.cancel_order(order.order_id)).status == "cancelled"
        assert open_at_gateway(ygw) == []


async def test_cancel_fails_once_is_retried_in_the_background_until_cancelled(
    ygw: Gateway,
) -> None:
    price, size = far_buy(ygw)
    async with order_client(ygw, dead_man_timeout_s=None) as client:
        rec = Recorder(client)
        try:
            ids = sorted(
                [
                    (await client.place_limit_order(SYMBOL, "buy", price, size)).order_id
                    for _ in "ab"
                ]
            )
            ygw.trigger("cancel_fails_once")
            ygw.trigger("disconnect")
            await rec.wait_for("orders_cancelled", timeout=WAIT_S, background=True)
            first, later = rec.named("orders_cancelled")
            assert len(first.failed) == 1 and len(first.cancelled) == 1  # type: ignore[attr-defined]
            assert later.cancelled == first.failed and later.venue == "bybit"  # type: ignore[attr-defined]
            assert sorted(first.cancelled + later.cancelled) == ids  # type: ignore[attr-defined]
            assert open_at_gateway(ygw) == [] and ygw.order_faults.taken["cancel_fails_once"] == 1
        finally:
            await rec.close()


# -- the dialect's own answers ----------------------------------------------------------------


async def _post(
    s: aiohttp.ClientSession, g: Gateway, path: str, body: dict[str, Any], ts_ms: int | None = None
) -> tuple[int, dict[str, Any]]:
    raw = json.dumps(body).encode()
    ts = ts_ms if ts_ms is not None else time.time_ns() // 1_000_000
    headers = auth.signed_headers(Credentials(KEY, SECRET), ts, raw)
    headers["Content-Type"] = "application/json"
    async with s.post(g.rest_url + path, data=raw, headers=headers) as r:
        return r.status, json.loads(await r.read())


async def test_the_dialect_refuses_as_bybit_does(ygw: Gateway) -> None:
    order = {
        "category": "linear",
        "symbol": SYMBOL,
        "side": "Buy",
        "orderType": "Limit",
        "qty": far_buy(ygw)[1],
        "price": far_buy(ygw)[0],
    }
    async with aiohttp.ClientSession() as s:
        stale = time.time_ns() // 1_000_000 - 6_000  # past the 5,000 ms recv_window
        status, body = await _post(s, ygw, "/v5/order/create", order, ts_ms=stale)
        assert (status, body["retCode"]) == (200, 10002) and "recv_window" in body["retMsg"]
        ahead = time.time_ns() // 1_000_000 + 2_000  # at or past server_time + 1000
        assert (await _post(s, ygw, "/v5/order/create", order, ts_ms=ahead))[1]["retCode"] == 10002
        headers = auth.signed_headers(Credentials(KEY, "not-the-secret"), stale + 6_000, b"{}")
        async with s.post(ygw.rest_url + "/v5/order/create", data=b"{}", headers=headers) as r:
            bad = json.loads(await r.read())
        assert (r.status, bad["retCode"]) == (200, 10004) and "origin_string" in bad["retMsg"]
        assert SECRET not in bad["retMsg"]
        async with s.post(ygw.rest_url + "/v5/order/create", data=b"{}") as r:
            assert r.status == 401 and json.loads(await r.read())["retCode"] == 10003
        # per-UID limit: 10 creates a rolling second on linear, the rest refused with 10006
        answers = await asyncio.gather(
            *(_post(s, ygw, "/v5/order/create", order) for _ in range(14))
        )
        codes = [b["retCode"] for _, b in answers]
        assert codes.count(0) <= 10 and codes.count(10006) == 14 - codes.count(0) >= 4
        assert dialect(ygw).refused["uid_rate"] == codes.count(10006)
        # a repeated orderLinkId is refused, never a second order
        dup = {**order, "orderLinkId": "same-1"}
        await asyncio.sleep(1.1)
        assert (await _post(s, ygw, "/v5/order/create", dup))[1]["retCode"] == 0
        assert (await _post(s, ygw, "/v5/order/create", dup))[1]["retCode"] == 110072
        window = {"product": "SPOT", "timeWindow": 2}
        assert (await _post(s, ygw, "/v5/order/disconnected-cancel-all", window))[1][
            "retCode"
        ] == 10001


async def test_dcp_is_armed_by_the_private_stream_going_away_not_by_rest(ygw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        status, body = await _post(
            s, ygw, "/v5/order/disconnected-cancel-all", {"product": "SPOT", "timeWindow": 40}
        )
        assert (status, body) == (200, {"retCode": 0, "retMsg": "success"})
        assert not ygw.dead_man.is_armed(KEY)  # a window, not a timer
        ws = await s.ws_connect(ygw.stream_url + PRIVATE_STREAM_PATH)
        expires = time.time_ns() // 1_000_000 + 10_000
        await ws.send_str(private_auth_frame(Credentials(KEY, "wrong"), expires).decode())
        assert not decode_private_answer(await ws.receive_str()).success
        await ws.send_str(private_subscribe_frame(["dcp.spot"]).decode())
        assert not decode_private_answer(await ws.receive_str()).success  # not authorized
        await ws.close()
    dcp = DcpStream(ygw)
    await dcp.open()
    await dcp.close()
    await until(lambda: ygw.dead_man.is_armed(KEY), "DCP to start when the stream ends")
    again = DcpStream(ygw)
    await again.open()  # a reconnection within the window holds it off
    try:
        assert not ygw.dead_man.is_armed(KEY)
        assert dialect(ygw).dcp_counts == {"window_set": 1, "armed": 1, "disarmed": 1}
    finally:
        await again.close()
