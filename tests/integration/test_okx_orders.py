"""OKX orders end to end: the real client on ``venue=okx`` with a key against the reference
gateway's ``--dialect okx`` order endpoints, in-process on 127.0.0.1 port 0.

Placed and listed; a stream fault cancels this client's own orders (``orders_cancelled``
naming okx) while ``cancel-all-after`` is armed once per healthy period and never twice within
OKX's 1 s; a network partition ends with the orders cancelled by the gateway's own timer;
bad credentials are one request and a clear, secret-free error; a 5xx with the answer lost is
one order under one ``clOrdId``; a cancel that fails once is retried in the background. And
the dialect's own checks, on the wire: OKX's codes for a bad key, passphrase, signature or
timestamp, its rate limits and its order refusals."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tickpipe import Client
from tickpipe.client.events import ClientEvent
from tickpipe.errors import ConfigError, CredentialsRejected
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.dialects.okx import OkxDialect
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.protocol.sync import SyncConfig
from tickpipe.venues.okx import auth
from tickpipe.venues.okx.adapter import OkxVenue
from tickpipe.venues.trading import Credentials

from .conftest import FAST_RECONNECT, Recorder

WAIT_S = 8.0  # generous: the machine is shared
KEY, SECRET, PASSPHRASE = "okx-it-key", "okx-it-secret-7Qz", "okx-it-pass-3Kd"
SYMBOL = "BTC-USDT"
BOOK = f"orderbook:{SYMBOL}"
FAST_ORDER_RETRY = BackoffPolicy(base_s=0.05, cap_s=0.3, healthy_after_s=0.0)


def gateway_config(**options: str | int | float) -> GatewayConfig:
    opts: dict[str, str | int | float] = {
        "max_connects_per_s": 100,
        "passphrase": PASSPHRASE,
        "dead_man_min_s": 1,  # rehearse short timers (OKX: 10 s at least)
    }
    opts.update(options)
    return GatewayConfig(
        port=0,
        admin_port=0,
        seed=7,
        rate=40.0,
        dialect="okx",
        dialect_options=tuple(opts.items()),
        keys=((KEY, SECRET),),
    )


@pytest.fixture
async def ogw() -> AsyncIterator[Gateway]:
    async with Gateway(gateway_config()) as g:
        yield g


def okx_client(
    g: Gateway,
    *,
    key: str = KEY,
    secret: str = SECRET,
    passphrase: str = PASSPHRASE,
    refresh_s: float = 1.0,
    **knobs: Any,
) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault("order_retry", FAST_ORDER_RETRY)
    knobs.setdefault(
        "sync",
        SyncConfig(snapshot_retry=BackoffPolicy(base_s=0.05, cap_s=0.3, healthy_after_s=0.0)),
    )
    venue = OkxVenue(dead_man_refresh_s=refresh_s, dead_man_range_s=(1, 120))
    return Client(
        venue=venue,
        stream_url=g.stream_url,
        rest_url=g.rest_url,
        key=key,
        secret=secret,
        passphrase=passphrase,
        **knobs,
    )


def routes(g: Gateway) -> Any:
    assert isinstance(g.dialect, OkxDialect)
    return g.dialect.orders


def far_bid(g: Gateway) -> tuple[str, str]:
    """A buy price far under the market (it rests, never fills) and one lot."""
    market = g.hub.markets[SYMBOL]
    inst = market.instrument
    best = market.sim.book.best_bid()
    assert best is not None
    price = max(inst.tick_units, (best[0] // 2) // inst.tick_units * inst.tick_units)
    return inst.format_price(price), inst.lot_size


async def until(pred: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def ready(client: Client) -> None:
    await client.subscribe([BOOK])
    await client.wait_synced(SYMBOL, timeout=WAIT_S)


def open_at_gateway(g: Gateway) -> set[str]:
    return {o.order_id[1:] for o in g.desk.find(KEY, "open", None)}


def armed_events(rec: Recorder) -> list[ClientEvent]:
    return rec.named("dead_man_switch", armed=True)


# -- the client against the dialect ----------------------------------------------------------
async def test_orders_are_placed_listed_read_and_cancelled(ogw: Gateway) -> None:
    px, sz = far_bid(ogw)
    async with okx_client(ogw, dead_man_timeout_s=None) as client:
        await ready(client)
        a = await client.place_limit_order(SYMBOL, "buy", px, sz, client_order_id="tpA1")
        b = await client.place_limit_order(SYMBOL, "buy", px, sz)
        assert (a.status, a.client_order_id, a.symbol, a.price) == ("open", "tpA1", SYMBOL, px)
        assert len(b.client_order_id) == 32  # the client's id, OKX's clOrdId
        assert open_at_gateway(ogw) == {a.order_id, b.order_id}
        desk_a = ogw.desk.by_client_id(KEY, "tpA1")
        assert desk_a is not None and desk_a.order_id[1:] == a.order_id
        listed = await client.open_orders(SYMBOL)
        assert {o.order_id for o in listed} == {a.order_id, b.order_id}
        assert {o.order_id for o in await client.open_orders()} == {a.order_id, b.order_id}
        got = await client.get_order(a.order_id)
        assert (got.status, got.price, got.size, got.side) == ("open", px, sz, "buy")
        gone = await client.cancel_order(b.order_id)
        assert gone.status == "cancelled" and gone.order_id == b.order_id
        assert open_at_gateway(ogw) == {a.order_id}
        # an order this client does not know: OKX needs its instId, said plainly
        with pytest.raises(ConfigError, match="instId"):
            await client.get_order(b.order_id)
        assert set(client.own_orders) == {a.order_id}
        assert routes(ogw).requests["time"] >= 1  # the clock was read before signing


async def test_cancel_all_cancels_each_own_order_okx_having_no_spot_cancel_all(
    ogw: Gateway,
) -> None:
    px, sz = far_bid(ogw)
    async with okx_client(ogw, dead_man_timeout_s=None, cancel_orders_on_blind="key") as client:
        rec = Recorder(client)
        try:
            await ready(client)
            ids = sorted(
                [(await client.place_limit_order(SYMBOL, "buy", px, sz)).order_id for _ in "ab"]
            )
            assert sorted(await client.cancel_all_orders()) == ids
            assert open_at_gateway(ogw) == set() and client.own_orders == {}
            # the same on going blind with scope "key"
            again = sorted(
                [(await client.place_limit_order(SYMBOL, "buy", px, sz)).order_id for _ in "ab"]
            )
            ogw.trigger("disconnect")
            await rec.wait_for("orders_cancelled", timeout=WAIT_S, scope="key")
            [ev] = rec.named("orders_cancelled")
            assert sorted(ev.cancelled) == again and ev.failed == []  # type: ignore[attr-defined]
            assert open_at_gateway(ogw) == set()
        finally:
            await rec.close()


async def test_a_stream_fault_cancels_own_orders_and_the_switch_is_armed_once_per_healthy_spell(
    ogw: Gateway,
) -> None:
    px, sz = far_bid(ogw)
    # refreshed every 1 s; blind for 1.5 s after the fault (longer than a refresh period)
    slow = BackoffPolicy(base_s=1.5, cap_s=1.5, jitter="none", healthy_after_s=5.0)
    async with okx_client(ogw, dead_man_timeout_s=6.0, reconnect=slow) as client:
        rec = Recorder(client)
        try:
            await ready(client)
            await rec.wait_for("dead_man_switch", armed=True, timeout=WAIT_S)
            assert ogw.dead_man.is_armed(KEY)
            ids = sorted(
                [(await client.place_limit_order(SYMBOL, "buy", px, sz)).order_id for _ in "ab"]
            )
            ogw.trigger("disconnect")
            await rec.wait_for("orders_cancelled", timeout=WAIT_S, venue="okx")
            [ev] = rec.named("orders_cancelled")
            assert sorted(ev.cancelled) == ids and ev.failed == []  # type: ignore[attr-defined]
            assert open_at_gateway(ogw) == set()
            # the loop saw the blind spell (no refresh then); healthy again: armed once more,
            # then only refreshed
            await rec.wait_for(lambda _: len(armed_events(rec)) == 2, timeout=WAIT_S)
            assert rec.named("reconnecting") and rec.named("connected")  # back up
            calls = ogw.dead_man.stats()["arm_calls"]
            await until(lambda: ogw.dead_man.stats()["arm_calls"] >= calls + 2, "two refreshes")
            assert len(armed_events(rec)) == 2
            assert rec.named("dead_man_switch", armed=False) == []
            assert routes(ogw).refused["rate"] == 0  # never two arms within OKX's 1 s
        finally:
            await rec.close()


async def test_a_partition_ends_with_the_orders_cancelled_by_the_venue_timer() -> None:
    # the timer is 1.5 s, refreshed every 0.5 s (the dialect allows it for this rehearsal)
    async with Gateway(gateway_config(dead_man_per_s=4)) as g:
        px, sz = far_bid(g)
        async with okx_client(g, dead_man_timeout_s=1.5, refresh_s=0.5) as client:
            rec = Recorder(client)
            try:
                await ready(client)
                await rec.wait_for("dead_man_switch", armed=True, timeout=WAIT_S)
                ids = sorted(
                    [(await client.place_limit_order(SYMBOL, "buy", px, sz)).order_id for _ in "ab"]
                )
                g.trigger("partition", duration_ms=3500)
                await rec.wait_for("orders_cancelled", timeout=WAIT_S, background=False)
                [first] = rec.named("orders_cancelled", background=False)
                # the client's own cancels could not reach the venue ...
                assert first.cancelled == [] and sorted(first.failed) == ids  # type: ignore[attr-defined]
                # ... its timer cancelled them all the same
                await until(lambda: g.dead_man.stats()["fired"] >= 1, "the venue's timer")
                assert open_at_gateway(g) == set()
                reasons = {o.cancel_reason for o in g.desk.find(KEY, "cancelled", None)}
                assert reasons == {"dead_man"}
                # back through: the background retries find them gone, nothing left at risk
                await until(lambda: client.own_orders == {}, "the background retries")
            finally:
                await rec.close()


@pytest.mark.parametrize(
    ("bad", "code"),
    [("secret", "50113"), ("passphrase", "50105"), ("key", "50111")],
)
async def test_bad_credentials_are_one_request_and_a_clear_secret_free_error(
    ogw: Gateway, caplog: pytest.LogCaptureFixture, bad: str, code: str
) -> None:
    caplog.set_level(logging.DEBUG)
    creds = {"key": KEY, "secret": SECRET, "passphrase": PASSPHRASE}
    wrong = {"key": "okx-no-such-key", "secret": "okx-wrong-secret-9Xy", "passphrase": "wrong-pp"}
    creds[bad] = wrong[bad]
    px, sz = far_bid(ogw)
    client = okx_client(
        ogw,
        key=creds["key"],
        secret=creds["secret"],
        passphrase=creds["passphrase"],
        dead_man_timeout_s=3.0,
    )
    async with client:
        rec = Recorder(client)
        try:
            await ready(client)
            with pytest.raises(CredentialsRejected) as ei:
                await client.place_limit_order(SYMBOL, "buy", px, sz)
            text = str(ei.value)
            assert "OKX refused the API key" in text and code in text
            with pytest.raises(CredentialsRejected):  # remembered: no request
                await client.open_orders()
            await rec.wait_for("dead_man_switch", armed=False, timeout=WAIT_S)
            r = routes(ogw)
            signed = sum(n for name, n in r.requests.items() if name != "time")
            assert signed == 1 and r.refused["auth"] == 1 and r.auth_codes == {code: 1}
            assert r.requests.get("time", 0) == 1  # one clock read, no retry loop
            seen = [caplog.text, text, *(repr(e) for e in rec.events)]
            seen += [str(getattr(e, "error", "")) for e in rec.events]
            for secret in (SECRET, PASSPHRASE, wrong["secret"], wrong["passphrase"]):
                assert all(secret not in s for s in seen), "a secret leaked"
        finally:
            await rec.close()


async def test_a_lost_place_answer_is_retried_with_the_same_clordid_and_is_one_order(
    ogw: Gateway,
) -> None:
    px, sz = far_bid(ogw)
    async with okx_client(ogw, dead_man_timeout_s=None) as client:
        await ready(client)
        ogw.trigger("order_5xx")  # the order is placed, its answer lost (503)
        o = await client.place_limit_order(SYMBOL, "buy", px, sz, client_order_id="retry5xx")
        assert (o.client_order_id, o.status) == ("retry5xx", "open")
        mine = [d for d in ogw.desk.find(KEY, None, SYMBOL) if d.client_order_id == "retry5xx"]
        assert [d.order_id[1:] for d in mine] == [o.order_id]
        r = routes(ogw)
        # the first try, the retry (51016 Duplicated clOrdId), the look-up by clOrdId
        assert r.requests["place"] == 2 and r.requests["get"] == 1
        assert ogw.order_faults.taken["order_5xx"] == 1
        assert set(client.own_orders) == {o.order_id}


async def test_a_cancel_that_fails_once_is_retried_in_the_background(ogw: Gateway) -> None:
    px, sz = far_bid(ogw)
    async with okx_client(ogw, dead_man_timeout_s=None) as client:
        rec = Recorder(client)
        try:
            await ready(client)
            o = await client.place_limit_order(SYMBOL, "buy", px, sz)
            ogw.trigger("cancel_fails_once")
            ogw.trigger("disconnect")
            await rec.wait_for("orders_cancelled", timeout=WAIT_S, background=False)
            [first] = rec.named("orders_cancelled", background=False)
            assert first.failed == [o.order_id]  # type: ignore[attr-defined]
            await rec.wait_for("orders_cancelled", timeout=WAIT_S, background=True)
            [later] = rec.named("orders_cancelled", background=True)
            assert later.cancelled == [o.order_id]  # type: ignore[attr-defined]
            assert later.venue == "okx"  # type: ignore[attr-defined]
            assert open_at_gateway(ogw) == set() and client.own_orders == {}
            assert ogw.order_faults.taken["cancel_fails_once"] == 1
        finally:
            await rec.close()


# -- the dialect's checks, on the wire ---------------------------------------------------------
async def _send(
    g: Gateway,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    creds: Credentials | None = None,
    ts_ms: int | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    c = creds or Credentials(KEY, SECRET, PASSPHRASE)
    ts = ts_ms if ts_ms is not None else time.time_ns() // 1_000_000
    h = auth.signed_headers(c, ts, method, target, body)
    h.update(headers or {})
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, g.rest_url + target, data=body or None, headers=h) as resp,
    ):
        return resp.status, await resp.json()


async def test_the_dialect_refuses_bad_auth_with_okx_codes(ogw: Gateway) -> None:
    pending = "/api/v5/trade/orders-pending"
    status, body = await _send(ogw, "GET", pending)
    assert (status, body["code"], body["data"]) == (200, "0", [])
    now = time.time_ns() // 1_000_000
    cases: list[tuple[dict[str, Any], str]] = [
        ({"creds": Credentials("nobody", SECRET, PASSPHRASE)}, "50111"),
        ({"creds": Credentials(KEY, "not-the-secret", PASSPHRASE)}, "50113"),
        ({"creds": Credentials(KEY, SECRET, "not-the-passphrase")}, "50105"),
        ({"ts_ms": now - 31_000}, "50102"),
        ({"ts_ms": now + 31_000}, "50102"),
        ({"headers": {auth.TIMESTAMP_HEADER: "1607418537715"}}, "50112"),
        ({"headers": {auth.KEY_HEADER: ""}}, "50103"),
        ({"headers": {auth.SIGN_HEADER: ""}}, "50106"),
    ]
    for kwargs, code in cases:
        status, body = await _send(ogw, "GET", pending, **kwargs)
        assert (status, body["code"]) == (401, code), kwargs
    # a signature over another query is refused too
    status, body = await _send(
        ogw, "GET", pending, headers={auth.SIGN_HEADER: auth.sign(SECRET, "x", "GET", "/")}
    )
    assert (status, body["code"]) == (401, "50113")
    assert routes(ogw).refused["auth"] == len(cases) + 1


async def test_the_dialect_answers_orders_and_refusals_as_okx(ogw: Gateway) -> None:
    px, sz = far_bid(ogw)
    order = f'{{"instId":"{SYMBOL}","tdMode":"cash","clOrdId":"dup1","side":"buy",'
    order += f'"ordType":"limit","px":"{px}","sz":"{sz}"}}'
    status, body = await _send(ogw, "POST", "/api/v5/trade/order", order.encode())
    assert (status, body["code"], body["data"][0]["sCode"]) == (200, "0", "0")
    oid = body["data"][0]["ordId"]
    status, body = await _send(ogw, "POST", "/api/v5/trade/order", order.encode())
    assert (status, body["code"], body["data"][0]["sCode"]) == (200, "1", "51016")
    for bad, s_code in (
        (order.replace('"dup1"', '"dup2"').replace(SYMBOL, "NOPE-USDT"), "51001"),
        (order.replace('"dup1"', '"dup3"').replace('"cash"', '"cross"'), "51000"),
        (order.replace('"dup1"', '"dup4"').replace('"limit"', '"market"'), "51000"),
        (order.replace('"dup1"', '"bad-id"'), "51000"),
        (order.replace('"dup1"', '"dup5"').replace(f'"px":"{px}"', f'"px":"{px}1234567"'), "51000"),
        (order.replace('"dup1"', '"dup6"').replace(f'"sz":"{sz}"', f'"sz":"{sz}1234567"'), "51121"),
    ):
        status, body = await _send(ogw, "POST", "/api/v5/trade/order", bad.encode())
        assert (status, body["code"], body["data"][0]["sCode"]) == (200, "1", s_code), bad
    status, body = await _send(ogw, "POST", "/api/v5/trade/order", b"{not json")
    assert (status, body["code"]) == (400, "50002")
    status, body = await _send(ogw, "GET", f"/api/v5/trade/order?ordId=999999&instId={SYMBOL}")
    assert (status, body["code"]) == (200, "51603")
    status, body = await _send(ogw, "GET", f"/api/v5/trade/order?clOrdId=dup1&instId={SYMBOL}")
    assert body["data"][0]["ordId"] == oid and body["data"][0]["state"] == "live"
    cancel = f'{{"instId":"{SYMBOL}","ordId":"{oid}"}}'.encode()
    status, body = await _send(ogw, "POST", "/api/v5/trade/cancel-order", cancel)
    assert (status, body["code"], body["data"][0]["sCode"]) == (200, "0", "0")
    status, body = await _send(ogw, "POST", "/api/v5/trade/cancel-order", cancel)
    assert (status, body["code"], body["data"][0]["sCode"]) == (200, "1", "51401")


async def test_cancel_all_after_range_and_its_one_a_second_limit() -> None:
    async with Gateway(gateway_config(dead_man_min_s=10)) as g:  # OKX's range: 0, 10..120
        path = "/api/v5/trade/cancel-all-after"
        for bad in (b'{"timeOut":"5"}', b'{"timeOut":"121"}', b'{"timeOut":"-1"}', b"{}"):
            status, body = await _send(g, "POST", path, bad)
            assert status == 400 and body["code"] in ("51000", "50014"), bad
        status, body = await _send(g, "POST", path, b'{"timeOut":"60"}')
        assert (status, body["code"]) == (200, "0") and g.dead_man.is_armed(KEY)
        assert int(body["data"][0]["triggerTime"]) - int(body["data"][0]["ts"]) == 60_000
        status, body = await _send(g, "POST", path, b'{"timeOut":"0"}')  # within the second
        assert (status, body["code"]) == (429, "50011") and g.dead_man.is_armed(KEY)
        await asyncio.sleep(1.05)
        status, body = await _send(g, "POST", path, b'{"timeOut":"0"}')
        assert (status, body["data"][0]["triggerTime"]) == (200, "0")
        assert not g.dead_man.is_armed(KEY)


async def test_the_passphrase_option_must_be_text() -> None:
    with pytest.raises(ConfigError, match="passphrase"):
        async with Gateway(gateway_config(passphrase=1234)):
            pass
