"""Signed orders on ``venue="coinbase"``: the real client against the reference gateway's
Coinbase dialect (``tickpipe gateway --dialect coinbase``), in-process on 127.0.0.1 port 0.

The key is a fresh EC P-256 key pair, as Coinbase issues them: the client signs each request's
JWT with the private key; the gateway's key is the same PEM (it keeps only the public half).

Coinbase has no dead man's switch: on going blind the client cancels its own orders itself, and
while the network is cut nothing cancels them until the client's background retries get through
(tested: the gateway's timers are never armed, the orders end cancelled once the cut is over).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, cast

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tickpipe import Client
from tickpipe.errors import CredentialsRejected, RestError
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.dialects.coinbase import CoinbaseDialect
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.venues.coinbase import auth

from .conftest import FAST_RECONNECT, Recorder

KEY = "organizations/test-org/apiKeys/bot-1"
WAIT_S = 8.0
FAST_RETRY = BackoffPolicy(base_s=0.05, cap_s=0.3, healthy_after_s=5.0)
PLACE = "/api/v3/brokerage/orders"


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


PRIVATE = ec.generate_private_key(ec.SECP256R1())
SECRET = _pem(PRIVATE)


@pytest.fixture
async def cgw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(
        port=0,
        admin_port=0,
        seed=7,
        rate=40.0,
        dialect="coinbase",
        dialect_options=(("max_connects_per_s", 100), ("max_messages_per_s", 100)),
        keys=((KEY, SECRET),),
    )
    async with Gateway(cfg) as g:
        yield g


def cb_client(g: Gateway, key: str = KEY, secret: str = SECRET, **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault("order_retry", FAST_RETRY)
    knobs.setdefault("rest_timeout_s", 3.0)
    return Client(
        venue="coinbase",
        stream_url=g.stream_url,
        rest_url=g.rest_url,
        key=key,
        secret=secret,
        **knobs,
    )


def resting_bid(g: Gateway, symbol: str = "BTC-USD", ticks_below: int = 200) -> str:
    """A buy price well under the best bid: the order rests (the market never trades there in
    the few seconds of a test)."""
    market = g.hub.markets[symbol]
    inst = market.instrument
    best = market.sim.book.best_bid()
    assert best is not None
    return inst.format_price(max(inst.tick_units, best[0] - ticks_below * inst.tick_units))


def lot(g: Gateway, symbol: str = "BTC-USD") -> str:
    return g.hub.markets[symbol].instrument.lot_size


def desk_status(g: Gateway, order_id: str) -> str | None:
    o = g.desk.get(KEY, order_id)
    return None if o is None else o.status


def order_stats(g: Gateway) -> dict[str, Any]:
    return cast(dict[str, Any], cast(CoinbaseDialect, g.dialect).stats()["orders"])


async def _until(pred: Any, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.02)


async def test_orders_placed_listed_got_and_cancelled(cgw: Gateway) -> None:
    async with cb_client(cgw) as client:
        rec = Recorder(client)
        px = resting_bid(cgw)
        a = await client.place_limit_order("BTC-USD", "buy", px, lot(cgw))
        b = await client.place_limit_order(
            "ETH-USD",
            "buy",
            resting_bid(cgw, "ETH-USD"),
            lot(cgw, "ETH-USD"),
            client_order_id="mine-1",
        )
        assert a.status == "open" and a.price == px and a.symbol == "BTC-USD"
        assert b.client_order_id == "mine-1"
        # the same client_order_id again: the first order, not a second one
        again = await client.place_limit_order("ETH-USD", "buy", "1", "1", client_order_id="mine-1")
        assert again.order_id == b.order_id
        assert len(cgw.desk.find(KEY, None, None)) == 2
        listed = await client.open_orders()
        assert sorted(o.order_id for o in listed) == sorted([a.order_id, b.order_id])
        assert [o.order_id for o in await client.open_orders("ETH-USD")] == [b.order_id]
        got = await client.get_order(a.order_id)
        assert (got.status, got.side, got.price) == ("open", "buy", px)
        assert Decimal(got.filled_size) == 0
        assert got.raw["status"] == "OPEN" and got.raw["user_id"] == KEY
        done = await client.cancel_order(a.order_id)
        assert done.status == "cancelled" and desk_status(cgw, a.order_id) == "cancelled"
        # no cancel-all endpoint at Coinbase: the shell lists the open orders, cancels each
        assert await client.cancel_all_orders() == [b.order_id]
        assert desk_status(cgw, b.order_id) == "cancelled"
        assert client.own_orders == {}
        assert await client.open_orders() == []
        # Coinbase has no dead man's switch: nothing armed, nothing said
        assert cgw.dead_man.stats()["arm_calls"] == 0
        assert rec.named("dead_man_switch") == []
        stats = order_stats(cgw)
        assert stats["keys"] == 1 and stats["refused"]["auth"] == 0
        await rec.close()


async def test_a_stream_fault_cancels_own_orders_and_arms_nothing(cgw: Gateway) -> None:
    async with cb_client(cgw) as client:
        rec = Recorder(client)
        ids = {
            (await client.place_limit_order("BTC-USD", "buy", resting_bid(cgw), lot(cgw))).order_id
            for _ in range(2)
        }
        # an order of the same key placed by another program is not ours: left alone ("own")
        other = json.dumps(
            {
                "client_order_id": "another-bot",
                "product_id": "BTC-USD",
                "side": "BUY",
                "order_configuration": {
                    "limit_limit_gtc": {"base_size": lot(cgw), "limit_price": resting_bid(cgw)}
                },
            }
        ).encode()
        _, text = await _post(cgw, _token(), body=other)
        other_id = json.loads(text)["success_response"]["order_id"]
        cgw.trigger("disconnect")
        events = await rec.wait_for("orders_cancelled", timeout=WAIT_S, venue="coinbase")
        report = next(e for e in events if e.name == "orders_cancelled")
        assert sorted(report.cancelled) == sorted(ids)  # type: ignore[attr-defined]
        assert report.failed == []  # type: ignore[attr-defined]
        assert all(desk_status(cgw, i) == "cancelled" for i in ids)
        assert desk_status(cgw, other_id) == "open"
        await rec.wait_for("connected", timeout=WAIT_S)
        await _until(lambda: client.connection_state == "connected", "reconnected")
        assert cgw.dead_man.stats()["arm_calls"] == 0
        assert rec.named("dead_man_switch") == []
        await rec.close()


async def test_a_network_cut_ends_with_the_orders_cancelled_by_background_retries(
    cgw: Gateway,
) -> None:
    """No venue-side timer at Coinbase: while the cut lasts the orders rest (nothing can cancel
    them), and the client's background retries cancel them as soon as it is over."""
    async with cb_client(cgw, dead_man_timeout_s=1.0) as client:
        rec = Recorder(client)
        order = await client.place_limit_order("BTC-USD", "buy", resting_bid(cgw), lot(cgw))
        cgw.trigger("partition", duration_ms=2500)
        await rec.wait_for("orders_cancelled", timeout=WAIT_S, venue="coinbase", background=False)
        first = rec.named("orders_cancelled", background=False)[0]
        assert first.failed == [order.order_id]  # type: ignore[attr-defined]
        assert desk_status(cgw, order.order_id) == "open"  # the cut: nothing reached Coinbase
        await rec.wait_for("orders_cancelled", timeout=WAIT_S, venue="coinbase", background=True)
        later = rec.named("orders_cancelled", background=True)[0]
        assert later.cancelled == [order.order_id]  # type: ignore[attr-defined]
        assert desk_status(cgw, order.order_id) == "cancelled"
        assert cgw.dead_man.stats() == {
            "armed_now": 0,
            "arm_calls": 0,
            "fired": 0,
            "cancelled": 0,
        }
        await rec.close()


async def test_bad_credentials_are_one_request_a_clear_error_and_never_the_secret(
    cgw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = _pem(ec.generate_private_key(ec.SECP256R1()))  # the key name is right, the key not
    async with cb_client(cgw, secret=wrong) as client:
        rec = Recorder(client)
        with pytest.raises(CredentialsRejected) as info:
            await client.place_limit_order("BTC-USD", "buy", resting_bid(cgw), lot(cgw))
        exc = info.value
        assert exc.status == 401 and exc.code == "auth_failed"
        assert "coinbase refused the API key" in str(exc) and "EC private key" in str(exc)
        # fatal and remembered: no second request, no retry loop
        with pytest.raises(CredentialsRejected):
            await client.open_orders()
        assert order_stats(cgw)["requests"] == 1
        assert order_stats(cgw)["refused"]["auth"] == 1
        assert cgw.desk.find(KEY, None, None) == []
        texts = [str(exc), repr(exc), *(repr(e) for e in rec.events), caplog.text]
        for secret in (wrong, SECRET):
            body = secret.splitlines()[1]  # a line of the key itself
            assert not any(body in t for t in texts)
        assert "bad signature" in caplog.text  # the gateway says why in its own log only
        assert "Bearer" not in caplog.text  # and never logs a token
        await rec.close()


async def test_an_unknown_key_name_is_refused_alike(cgw: Gateway) -> None:
    async with cb_client(cgw, key="organizations/x/apiKeys/nobody") as client:
        with pytest.raises(CredentialsRejected, match="401"):
            await client.open_orders()
        assert order_stats(cgw)["requests"] == 1


async def test_a_5xx_on_place_is_retried_with_the_same_client_order_id(cgw: Gateway) -> None:
    async with cb_client(cgw) as client:
        cgw.trigger("order_5xx")  # the order is placed, its answer lost: a 503
        order = await client.place_limit_order(
            "BTC-USD", "buy", resting_bid(cgw), lot(cgw), client_order_id="retry-me"
        )
        assert cgw.order_faults.taken["order_5xx"] == 1
        mine = cgw.desk.find(KEY, None, None)
        assert [(o.order_id, o.client_order_id) for o in mine] == [(order.order_id, "retry-me")]
        cgw.trigger("order_rate_limit")  # a 429: waited out, then placed
        second = await client.place_limit_order("BTC-USD", "buy", resting_bid(cgw), lot(cgw))
        assert cgw.order_faults.taken["order_rate_limit"] == 1
        assert len(cgw.desk.find(KEY, "open", None)) == 2 and second.is_open


async def test_a_cancel_that_fails_once_is_retried_in_the_background(cgw: Gateway) -> None:
    async with cb_client(cgw) as client:
        rec = Recorder(client)
        order = await client.place_limit_order("BTC-USD", "buy", resting_bid(cgw), lot(cgw))
        cgw.trigger("cancel_fails_once")
        cgw.trigger("disconnect")
        await rec.wait_for("orders_cancelled", timeout=WAIT_S, venue="coinbase", background=False)
        assert rec.named("orders_cancelled", background=False)[0].failed == [  # type: ignore[attr-defined]
            order.order_id
        ]
        await rec.wait_for("orders_cancelled", timeout=WAIT_S, venue="coinbase", background=True)
        assert desk_status(cgw, order.order_id) == "cancelled"
        assert cgw.order_faults.taken["cancel_fails_once"] == 1
        await rec.close()


async def test_a_cancel_error_on_a_direct_call_is_typed(cgw: Gateway) -> None:
    async with cb_client(cgw) as client:
        order = await client.place_limit_order("BTC-USD", "buy", resting_bid(cgw), lot(cgw))
        cgw.trigger("cancel_fails_once")
        with pytest.raises(RestError) as info:
            await client.cancel_order(order.order_id)
        assert (info.value.status, info.value.code) == (503, "venue_error")
        assert (await client.cancel_order(order.order_id)).status == "cancelled"
        # an order already done answers as Coinbase does: not an error the client loops on
        again = await client.cancel_order(order.order_id)
        assert again.status == "cancelled"


# -- what the dialect checks, with hand-made requests ------------------------------------------


async def _post(
    g: Gateway, token: str | None, path: str = PLACE, body: bytes = b"{}"
) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as s,
        s.post(g.rest_url + path, data=body, headers=headers) as r,
    ):
        return r.status, await r.text()


def _token(method: str = "POST", path: str = PLACE, now: int | None = None, **kw: Any) -> str:
    return auth.sign(
        kw.get("key", KEY),
        kw.get("private", PRIVATE),
        method,
        path,
        now_s=int(time.time()) if now is None else now,
        nonce=auth.NonceCounter()(int(time.time() * 1000)),
    )


async def test_the_dialect_refuses_every_bad_jwt_with_coinbases_401(cgw: Gateway) -> None:
    now = int(time.time())
    bad = [
        None,  # no Authorization
        "not-a-jwt",
        _token(method="GET"),  # signed for another method
        _token(path="/api/v3/brokerage/orders/batch_cancel"),  # another path
        _token(now=now - 200),  # expired (2 minutes)
        _token(now=now + 60),  # not valid yet
        _token(private=ec.generate_private_key(ec.SECP256R1())),  # another key
        _token(key="organizations/x/apiKeys/unknown"),
    ]
    for token in bad:
        assert await _post(cgw, token) == (401, "Unauthorized\n")
    assert order_stats(cgw)["refused"]["auth"] == len(bad)
    assert cgw.desk.find(KEY, None, None) == []
    # a good one passes the checks (the body is then refused for what it lacks)
    status, text = await _post(cgw, _token())
    assert status == 400 and "client_order_id" in text


async def test_the_dialect_answers_orders_as_coinbase_does(cgw: Gateway) -> None:
    def order(**over: Any) -> bytes:
        body: dict[str, Any] = {
            "client_order_id": "c-1",
            "product_id": "BTC-USD",
            "side": "BUY",
            "order_configuration": {
                "limit_limit_gtc": {
                    "base_size": lot(cgw),
                    "limit_price": resting_bid(cgw),
                    "post_only": False,
                }
            },
        }
        body.update(over)
        return json.dumps(body).encode()

    status, text = await _post(cgw, _token(), body=order(product_id="NOPE-USD"))
    refused = json.loads(text)
    assert status == 200 and refused["success"] is False
    assert refused["error_response"]["new_order_failure_reason"] == "INVALID_PRODUCT_ID"
    status, text = await _post(
        cgw, _token(), body=order(order_configuration={"market_market_ioc": {"quote_size": "1"}})
    )
    assert json.loads(text)["error_response"]["error"] == "UNSUPPORTED_ORDER_CONFIGURATION"
    status, text = await _post(cgw, _token(), body=order())
    placed = json.loads(text)
    assert status == 200 and placed["success"] is True
    oid = placed["success_response"]["order_id"]
    assert placed["success_response"]["client_order_id"] == "c-1"
    # the same JWT again is not refused (Coinbase documents no replay refusal) and the same
    # client_order_id returns the same order
    token = _token()
    for _ in range(2):
        status, text = await _post(cgw, token, body=order())
        assert json.loads(text)["success_response"]["order_id"] == oid
    cancel = "/api/v3/brokerage/orders/batch_cancel"
    ids = json.dumps({"order_ids": [oid, "nope"]}).encode()
    status, text = await _post(cgw, _token(path=cancel), path=cancel, body=ids)
    assert json.loads(text) == {
        "results": [
            {"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": oid},
            {"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": "nope"},
        ]
    }
    too_many = json.dumps({"order_ids": [str(i) for i in range(101)]}).encode()
    status, text = await _post(cgw, _token(path=cancel), path=cancel, body=too_many)
    assert status == 400 and json.loads(text)["error"] == "INVALID_ARGUMENT"


async def test_the_dialect_rate_limits_a_key_as_coinbase_does() -> None:
    cfg = GatewayConfig(
        port=0,
        seed=7,
        dialect="coinbase",
        dialect_options=(("private_requests_per_s", 3),),
        keys=((KEY, SECRET),),
    )
    async with Gateway(cfg) as g:
        got = [(await _post(g, _token()))[0] for _ in range(5)]
        assert got[:3] == [400, 400, 400] and got[3:] == [429, 429]
        assert order_stats(g)["refused"]["rate"] == 2
