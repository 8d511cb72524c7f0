"""Orders (VTS/1 section 7): signing, validation, resting, fills, idempotency, cancels and
cancel_on_disconnect on close, on reset and on heartbeat loss."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import gateway_config
from tests.gateway.wire import connect, recv_until, rest, signed_headers
from tickpipe.gateway import Gateway


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    """A gateway with a second key, its market paused: tests step it by hand."""
    cfg = gateway_config(keys=(("demo", "demo-secret"), ("other", "other-secret")))
    async with Gateway(cfg) as g:
        g.pause_market()
        yield g


def _best(gw: Gateway, symbol: str) -> tuple[str, str]:
    book = gw.true_book(symbol)
    inst = book.instrument
    bb, ba = book.best_bid(), book.best_ask()
    assert bb is not None and ba is not None
    return inst.format_price(bb[0]), inst.format_price(ba[0])


def _order(
    symbol: str, side: str, price: str, size: str, coid: str | None = None
) -> dict[str, Any]:
    body = {"symbol": symbol, "side": side, "type": "limit", "price": price, "size": size}
    if coid:
        body["client_order_id"] = coid
    return body


async def test_resting_order_lifecycle_and_idempotent_retry(gw: Gateway) -> None:
    bid, _ = _best(gw, "AAPL")
    far = f"{float(bid) - 2.0:.2f}"  # 200 ticks under the best bid: rests
    async with aiohttp.ClientSession() as s:
        st, o, _ = await rest(
            s, gw.rest_url, "POST", "/v1/orders", _order("AAPL", "buy", far, "10", "c-1")
        )
        assert st == 201
        assert (o["status"], o["filled_size"], o["price"], o["client_order_id"]) == (
            "open",
            "0",
            far,
            "c-1",
        )
        st2, o2, _ = await rest(
            s, gw.rest_url, "POST", "/v1/orders", _order("AAPL", "buy", far, "99", "c-1")
        )
        assert st2 == 200 and o2["order_id"] == o["order_id"] and o2["size"] == "10"
        st, lst, _ = await rest(s, gw.rest_url, "GET", "/v1/orders?status=open&symbol=AAPL")
        assert st == 200 and [x["order_id"] for x in lst["orders"]] == [o["order_id"]]
        gw.step_market(100)  # the market does not reach 200 ticks down in 100 steps
        st, got, _ = await rest(s, gw.rest_url, "GET", f"/v1/orders/{o['order_id']}")
        assert st == 200 and got["status"] == "open" and got["filled_size"] == "0"
        st, c, _ = await rest(s, gw.rest_url, "DELETE", f"/v1/orders/{o['order_id']}")
        assert st == 200 and c["status"] == "cancelled"
        st, c2, _ = await rest(s, gw.rest_url, "DELETE", f"/v1/orders/{o['order_id']}")
        assert st == 200 and c2["status"] == "cancelled"  # final state, no error
        st, lst, _ = await rest(s, gw.rest_url, "GET", "/v1/orders?status=open")
        assert lst["orders"] == []


async def test_order_fills_partly_then_fully_when_market_trades_through(gw: Gateway) -> None:
    bid, _ = _best(gw, "MSFT")
    async with aiohttp.ClientSession() as s:
        # a buy at the best bid fills from sell prints at or below it
        # price-time priority: the older small order fills first
        st, small, _ = await rest(
            s, gw.rest_url, "POST", "/v1/orders", _order("MSFT", "buy", bid, "1")
        )
        st, big, _ = await rest(
            s, gw.rest_url, "POST", "/v1/orders", _order("MSFT", "buy", bid, "1000000")
        )
        assert st == 201
        got_big: dict[str, Any] = big
        got_small: dict[str, Any] = small
        for _ in range(200):  # bounded: until both see fills
            gw.step_market(10)
            _, got_big, _ = await rest(s, gw.rest_url, "GET", f"/v1/orders/{big['order_id']}")
            _, got_small, _ = await rest(s, gw.rest_url, "GET", f"/v1/orders/{small['order_id']}")
            if got_big["filled_size"] != "0" and got_small["status"] == "filled":
                break
        assert got_small["status"] == "filled" and got_small["filled_size"] == "1"
        assert got_big["status"] == "open" and 0 < int(got_big["filled_size"]) < 1000000
        st, lst, _ = await rest(s, gw.rest_url, "GET", "/v1/orders?status=filled")
        assert [x["order_id"] for x in lst["orders"]] == [small["order_id"]]


async def test_marketable_order_fills_at_once(gw: Gateway) -> None:
    _, ask = _best(gw, "AAPL")
    async with aiohttp.ClientSession() as s:
        st, o, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", _order("AAPL", "buy", ask, "1"))
        assert st == 201 and o["status"] == "filled" and o["filled_size"] == "1"
        st, c, _ = await rest(s, gw.rest_url, "DELETE", f"/v1/orders/{o['order_id']}")
        assert st == 200 and c["status"] == "filled"  # cancelling a filled order returns it


async def test_cancel_all_and_keys_are_isolated(gw: Gateway) -> None:
    bid, ask = _best(gw, "NVDA")
    low = f"{float(bid) - 5:.2f}"
    high = f"{float(ask) + 5:.2f}"
    async with aiohttp.ClientSession() as s:
        ids = []
        for side, price in (("buy", low), ("sell", high)):
            _, o, _ = await rest(
                s, gw.rest_url, "POST", "/v1/orders", _order("NVDA", side, price, "3")
            )
            ids.append(o["order_id"])
        _, other, _ = await rest(
            s, gw.rest_url, "POST", "/v1/orders", _order("NVDA", "buy", low, "3"),
            key="other", secret="other-secret",
        )  # fmt: skip
        # the other key cannot see or cancel demo's orders
        st, err, _ = await rest(
            s, gw.rest_url, "DELETE", f"/v1/orders/{ids[0]}", key="other", secret="other-secret"
        )
        assert st == 404 and err["error"]["code"] == "unknown_order"
        st, res, _ = await rest(s, gw.rest_url, "DELETE", "/v1/orders?symbol=NVDA")
        assert st == 200 and sorted(res["cancelled"]) == sorted(ids)
        st, o, _ = await rest(
            s,
            gw.rest_url,
            "GET",
            f"/v1/orders/{other['order_id']}",
            key="other",
            secret="other-secret",
        )
        assert o["status"] == "open"
        st, err, _ = await rest(s, gw.rest_url, "GET", "/v1/orders/O999999")
        assert st == 404 and err["error"]["code"] == "unknown_order"


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (_order("AAPL", "buy", "189.00", "-1"), "invalid_size", "-1"),
        (_order("AAPL", "buy", "189.00", "0"), "invalid_size", "> 0"),
        (_order("AAPL", "buy", "189.00", "1.5"), "invalid_size", "lot"),
        (_order("AAPL", "buy", "189.005", "1"), "invalid_price", "189.005"),
        (_order("XAU-USD", "buy", "2350.05", "1"), "invalid_price", "tick_size"),
        (_order("AAPL", "buy", "-189.00", "1"), "invalid_price", "-189.00"),
        ({"symbol": "AAPL", "side": "buy", "price": 189.0, "size": "1"}, "invalid_price", "string"),
        (_order("NOPE", "buy", "1.00", "1"), "unknown_symbol", "NOPE"),
        (_order("AAPL", "hold", "1.00", "1"), "invalid_side", "hold"),
        ({**_order("AAPL", "buy", "1.00", "1"), "type": "market"}, "invalid_type", "market"),
        ({"symbol": "AAPL", "side": "buy", "size": "1"}, "missing_field", "price"),
        (
            {**_order("AAPL", "buy", "1.00", "1"), "client_order_id": "x" * 65},
            "invalid_client_order_id",
            "64",
        ),
        ([1, 2], "bad_request", "object"),
    ],
)
async def test_bad_orders_are_400_naming_the_problem(
    gw: Gateway, body: Any, code: str, needle: str
) -> None:
    async with aiohttp.ClientSession() as s:
        st, err, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", body)
        assert st == 400 and err["error"]["code"] == code, err
        assert needle in err["error"]["message"]
        _, lst, _ = await rest(s, gw.rest_url, "GET", "/v1/orders")
        assert lst["orders"] == []


async def test_garbage_json_body_is_400(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        st, err, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", raw_body="{not json")
        assert st == 400 and err["error"]["code"] == "bad_json"


async def test_signature_errors_are_401(gw: Gateway) -> None:
    body = _order("AAPL", "buy", "100.00", "1")
    async with aiohttp.ClientSession() as s:
        st, err, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", body, secret="wrong")
        assert (st, err["error"]["code"]) == (401, "bad_signature")
        old = int(time.time() * 1000) - 6000  # replayed / stale timestamp
        st, err, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", body, ts_ms=old)
        assert (st, err["error"]["code"]) == (401, "stale_timestamp")
        assert "ms" in err["error"]["message"]
        st, err, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", body, key="nobody")
        assert (st, err["error"]["code"]) == (401, "bad_signature")  # same as a wrong secret
        st, err, _ = await rest(s, gw.rest_url, "GET", "/v1/orders", headers={})
        assert (st, err["error"]["code"]) == (401, "missing_auth")
        assert "X-VT-SIGN" in err["error"]["message"]
        # signed for one body, sent with another
        hdrs = signed_headers("POST", "/v1/orders", '{"a": 1}')
        st, err, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", body, headers=hdrs)
        assert (st, err["error"]["code"]) == (401, "bad_signature")
        # signed for another query string
        hdrs = signed_headers("GET", "/v1/orders?status=open")
        st, err, _ = await rest(s, gw.rest_url, "GET", "/v1/orders?status=filled", headers=hdrs)
        assert (st, err["error"]["code"]) == (401, "bad_signature")
        _, lst, _ = await rest(s, gw.rest_url, "GET", "/v1/orders")
        assert lst["orders"] == []


async def _rest_order(s: aiohttp.ClientSession, gw: Gateway, symbol: str) -> str:
    bid, _ = _best(gw, symbol)
    price = f"{float(bid) - 3:.2f}"
    st, o, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", _order(symbol, "buy", price, "1"))
    assert st == 201
    return str(o["order_id"])


async def _status(s: aiohttp.ClientSession, gw: Gateway, oid: str) -> str:
    _, o, _ = await rest(s, gw.rest_url, "GET", f"/v1/orders/{oid}")
    return str(o["status"])


async def _wait_status(s: aiohttp.ClientSession, gw: Gateway, oid: str, want: str) -> str:
    got = ""
    for _ in range(100):  # bounded: 5 s
        got = await _status(s, gw, oid)
        if got == want:
            break
        await asyncio.sleep(0.05)
    return got


async def test_cancel_on_disconnect_on_clean_close(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url)
        await ws.send_json({"action": "cancel_on_disconnect", "enabled": True})
        ack, _ = await recv_until(ws, lambda f: f["type"] == "cancel_on_disconnect")
        assert ack == {"type": "cancel_on_disconnect", "enabled": True}
        oids = [await _rest_order(s, gw, "AAPL"), await _rest_order(s, gw, "MSFT")]
        assert [await _status(s, gw, o) for o in oids] == ["open", "open"]
        await ws.close()
        assert [await _wait_status(s, gw, o, "cancelled") for o in oids] == ["cancelled"] * 2


async def test_without_cancel_on_disconnect_orders_survive(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url)
        oid = await _rest_order(s, gw, "AAPL")
        await ws.close()
        for _ in range(50):
            if gw.stats()["connections"] == 0:
                break
            await asyncio.sleep(0.05)
        assert gw.stats()["connections"] == 0
        assert await _status(s, gw, oid) == "open"


async def test_cancel_on_disconnect_on_reset(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url)
        await ws.send_json({"action": "cancel_on_disconnect", "enabled": True})
        await recv_until(ws, lambda f: f["type"] == "cancel_on_disconnect")
        oid = await _rest_order(s, gw, "NVDA")
        transport = ws._response.connection.transport  # type: ignore[union-attr]
        assert transport is not None
        transport.abort()  # no close frame: the socket just dies
        assert await _wait_status(s, gw, oid, "cancelled") == "cancelled"


async def test_cancel_on_disconnect_on_heartbeat_loss() -> None:
    """A client that stops answering pings is closed (4008) and its orders are cancelled."""
    async with Gateway(gateway_config(heartbeat_ms=100)) as gw, aiohttp.ClientSession() as s:
        gw.pause_market()
        ws = await connect(s, gw.stream_url, autoping=False)  # never answers pings
        await ws.send_json({"action": "cancel_on_disconnect", "enabled": True})
        oid = await _rest_order(s, gw, "AAPL")
        assert await _wait_status(s, gw, oid, "cancelled") == "cancelled"
        assert gw.stats()["disconnects"].get("pong_timeout") == 1
        codes = []
        for _ in range(50):
            msg = await ws.receive(timeout=3)
            if msg.type != aiohttp.WSMsgType.PING and msg.type != aiohttp.WSMsgType.TEXT:
                codes.append(msg.data)
                break
        assert codes == [4008]


async def test_answering_pings_keeps_the_connection() -> None:
    """The flip side: with pongs (aiohttp autoping) a connection outlives many heartbeats."""
    async with Gateway(gateway_config(heartbeat_ms=200)) as gw, aiohttp.ClientSession() as s:
        gw.pause_market()
        ws = await connect(s, gw.stream_url)
        with pytest.raises(TimeoutError):  # ~7 heartbeats: pings answered, nothing else
            await asyncio.wait_for(ws.receive(), 1.5)
        assert gw.stats()["connections"] == 1
        assert gw.stats()["disconnects"] == {}


async def test_oversized_body_is_413_json(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        body = '{"pad": "' + "x" * (2 << 20) + '"}'
        st, err, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", raw_body=body)
        assert st == 413 and err["error"]["code"] == "payload_too_large"
