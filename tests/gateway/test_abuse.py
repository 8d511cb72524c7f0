"""The reference gateway against abusive peers (issue 13, docs/security.md "Gateway"): real
requests on loopback against a real in-process gateway, each failing before its fix."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import gateway_config
from tests.gateway.wire import (
    auth_msg,
    connect,
    recv,
    recv_until,
    rest,
    signed_headers,
    subscribe,
)
from tickpipe.client.rest import RestClient
from tickpipe.gateway import Gateway

ORDER = {"symbol": "AAPL", "side": "buy", "type": "limit", "price": "1.00", "size": "1"}


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async with Gateway(gateway_config()) as g:
        g.pause_market()
        yield g


def _open_orders(gw: Gateway) -> list[str]:
    return [o.order_id for o in gw.desk.find("demo", "open", None)]


# -- 1. replay ---------------------------------------------------------------------------------
async def test_replayed_stream_auth_frame_is_refused_and_cannot_cancel_the_victims_orders(
    gw: Gateway,
) -> None:
    async with aiohttp.ClientSession() as s:
        st, order, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", ORDER)
        assert st == 201
        captured = auth_msg()
        victim = await s.ws_connect(gw.stream_url)
        await victim.send_json(captured)
        assert (await recv(victim))["type"] == "authenticated"
        await asyncio.sleep(0.2)  # "later", still well inside the 5 s skew window
        attacker = await s.ws_connect(gw.stream_url)
        await attacker.send_json(captured)  # the same bytes, no secret needed
        f = await recv(attacker)
        assert f["type"] == "error" and f["code"] == "auth_failed"
        assert (await attacker.receive(timeout=3)).data == 4001
        # had it been accepted: arm the dead man's switch, hang up -> victim's order cancelled
        with contextlib.suppress(aiohttp.ClientError):
            await attacker.send_json({"action": "cancel_on_disconnect", "enabled": True})
        await attacker.close()
        await asyncio.sleep(0.2)
        assert _open_orders(gw) == [order["order_id"]]
        assert gw.stats()["abuse"]["replays_refused"] == 1
        await victim.close()


async def test_replayed_signed_rest_calls_are_refused(gw: Gateway) -> None:
    body = json.dumps(ORDER)
    hdrs = signed_headers("POST", "/v1/orders", body)
    async with aiohttp.ClientSession() as s:
        answers = []
        for _ in range(3):  # one captured signed request, sent 3 times
            st, err, _ = await rest(
                s, gw.rest_url, "POST", "/v1/orders", raw_body=body, headers=hdrs
            )
            answers.append((st, err.get("error", {}).get("code")))
        assert answers == [(201, None), (401, "replayed_request"), (401, "replayed_request")]
        assert len(_open_orders(gw)) == 1
        cancel = signed_headers("DELETE", "/v1/orders")
        st, out, _ = await rest(s, gw.rest_url, "DELETE", "/v1/orders", headers=cancel)
        assert st == 200 and len(out["cancelled"]) == 1
        await rest(s, gw.rest_url, "POST", "/v1/orders", ORDER)  # a fresh order
        st, err, _ = await rest(s, gw.rest_url, "DELETE", "/v1/orders", headers=cancel)
        assert (st, err["error"]["code"]) == (401, "replayed_request")
        assert len(_open_orders(gw)) == 1


async def test_tickpipe_client_never_trips_the_replay_guard(gw: Gateway) -> None:
    """Identical signed calls at once (same ms): the client signs each with a later ts."""
    client = RestClient(gw.rest_url, gw.key, gw.secret, timeout_s=10)
    try:
        for _ in range(3):
            out = await asyncio.gather(*(client.cancel_all() for _ in range(5)))
            assert len(out) == 5
        assert gw.replays_refused == 0
    finally:
        await client.close()


# -- 2. orders: rate, history, bounds ---------------------------------------------------------
async def test_signed_order_calls_are_rate_limited_per_key() -> None:
    async with Gateway(gateway_config(max_order_requests_per_s=5)) as gw:
        async with aiohttp.ClientSession() as s:
            statuses = []
            ts = int(time.time() * 1000)
            for i in range(8):  # distinct ts: each a fresh signature
                st, _, hdrs = await rest(s, gw.rest_url, "GET", "/v1/orders", ts_ms=ts + i)
                statuses.append((st, hdrs.get("Retry-After")))
            # cancels are never throttled: a mass cancel must get through
            st, _, _ = await rest(s, gw.rest_url, "DELETE", "/v1/orders", ts_ms=ts + 99)
        assert statuses[:5] == [(200, None)] * 5
        assert statuses[5][0] == 429 and int(statuses[5][1]) >= 1
        assert st == 200


async def test_finished_order_history_is_bounded_per_key() -> None:
    async with Gateway(gateway_config(finished_orders_per_key=3)) as gw:
        gw.pause_market()
        async with aiohttp.ClientSession() as s:
            for i in range(10):
                body = {**ORDER, "client_order_id": f"c-{i}"}
                st, o, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", body)
                assert st == 201
                st, _, _ = await rest(s, gw.rest_url, "DELETE", f"/v1/orders/{o['order_id']}")
                assert st == 200
            await rest(s, gw.rest_url, "POST", "/v1/orders", ORDER)  # one open
            st, out, _ = await rest(s, gw.rest_url, "GET", "/v1/orders")
        assert st == 200
        ids = [o["client_order_id"] for o in out["orders"]]
        assert sorted(ids[:3]) == ["c-7", "c-8", "c-9"] and len(ids) == 4
        assert gw.desk.counts()["forgotten"] == 7


@pytest.mark.parametrize(("field", "value"), [("price", "1" * 4299), ("size", "9" * 5000)])
async def test_huge_price_or_size_is_400_and_not_stored(
    gw: Gateway, field: str, value: str
) -> None:
    async with aiohttp.ClientSession() as s:
        st, err, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", {**ORDER, field: value})
        assert (st, err["error"]["code"]) == (400, f"invalid_{field}")
        assert field in err["error"]["message"] and len(err["error"]["message"]) < 300
        st, out, _ = await rest(s, gw.rest_url, "GET", "/v1/orders")
        assert st == 200 and out["orders"] == []


# -- 3. odd input: 400/401 naming the field, never 500 ------------------------------------------
async def test_deep_json_and_non_ascii_sig_on_the_stream_get_protocol_answers(gw: Gateway) -> None:
    deep = '{"action": "subscribe", "channels": ' + "[" * 20_000 + "]" * 20_000 + "}"
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(gw.stream_url)  # before auth: auth_required, close 4003
        await ws.send_str(deep)
        f = await recv(ws)
        assert f["code"] == "auth_required" and "deep" in f["message"]
        assert (await ws.receive(timeout=3)).data == 4003
        ws = await s.ws_connect(gw.stream_url)
        await ws.send_json({**auth_msg(), "sig": "é" * 64})
        f = await recv(ws)
        assert f["code"] == "auth_failed"
        assert (await ws.receive(timeout=3)).data == 4001
        ws = await connect(s, gw.stream_url)  # after auth: bad_json, connection kept
        await ws.send_str(deep)
        f = await recv(ws)
        assert f["code"] == "bad_json" and "deep" in f["message"]
        sub, _ = await subscribe(ws, ["ticker:AAPL"])
        assert sub["channels"] == ["ticker:AAPL"]


async def _raw_http(port: int, request: bytes) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    writer.close()
    return status, json.loads(body)


async def test_odd_rest_input_is_4xx_naming_the_field(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        hdrs = signed_headers("GET", "/v1/orders")
        hdrs["X-VT-TS"] = "9" * 5000
        st, err, _ = await rest(s, gw.rest_url, "GET", "/v1/orders", headers=hdrs)
        assert (st, err["error"]["code"]) == (401, "bad_timestamp")
        assert len(err["error"]["message"]) < 200
        for q in ("9" * 5000, "²"):
            async with s.get(f"{gw.rest_url}/v1/orderbook/AAPL", params={"depth": q}) as r:
                assert (r.status, (await r.json())["error"]["code"]) == (400, "bad_depth")
            async with s.get(
                f"{gw.admin_url}/admin/book/AAPL",
                params={"seq": q},
                headers={"X-Admin-Token": gw.admin_token},
            ) as r:
                assert (r.status, (await r.json())["error"]["code"]) == (400, "bad_seq")
        deep = "[" * 20_000 + "]" * 20_000
        st, err, _ = await rest(s, gw.rest_url, "POST", "/v1/orders", raw_body=deep)
        assert (st, err["error"]["code"]) == (400, "bad_json")
    ts = str(int(time.time() * 1000))
    req = (
        "GET /v1/orders HTTP/1.1\r\nHost: x\r\nX-VT-KEY: demo\r\n"
        f"X-VT-TS: {ts}\r\nX-VT-SIGN: {'é' * 32}\r\nConnection: close\r\n\r\n"
    ).encode()
    st, err = await _raw_http(gw.port, req)
    assert (st, err["error"]["code"]) == (401, "bad_signature")


# -- 4. size limit before auth, clipped echoes ----------------------------------------------
async def test_huge_first_frame_is_refused_unechoed_and_unlogged(
    gw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tickpipe.gateway")
    frame = json.dumps({**auth_msg(), "key": "k" * (4 * 1024 * 1024 - 200)})
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(gw.stream_url, max_msg_size=0)
        await ws.send_str(frame)
        got = 0
        codes = []
        for _ in range(5):
            msg = await ws.receive(timeout=5)
            if msg.type != aiohttp.WSMsgType.TEXT:
                codes.append(msg.data)
                break
            got += len(msg.data)
            codes.append(json.loads(msg.data)["code"])
        assert codes == ["frame_too_large", 1009] and got < 500
        # a smaller but still long key: the auth_failed answer and the log line are clipped
        ws = await s.ws_connect(gw.stream_url)
        await ws.send_json({**auth_msg(), "key": "k" * 20_000})
        f = await recv(ws)
        assert f["code"] == "auth_failed" and len(json.dumps(f)) < 500
    assert max(len(r.getMessage()) for r in caplog.records) < 1000


# -- 6. subscribe amplification --------------------------------------------------------------
async def test_subscribe_with_thousands_of_unknown_channels_gets_one_small_refusal(
    gw: Gateway,
) -> None:
    names = [f"{i}" for i in range(8500)]
    request = json.dumps({"action": "subscribe", "channels": names, "id": 9}, separators=(",", ":"))
    assert len(request) < 65536
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url)
        await ws.send_str(request)
        sub, errors = await recv_until(ws, lambda f: f.get("type") == "subscribed")
        assert sub == {"type": "subscribed", "channels": [], "id": 9}
        assert [e["code"] for e in errors] == ["too_many_channels"] and errors[0]["id"] == 9
        assert "8500" in errors[0]["message"]
        # under the cap: per-channel refusals, but never much more than the request
        short = [f"{i}" for i in range(200)]
        request = json.dumps({"action": "subscribe", "channels": short, "id": 10})
        await ws.send_str(request)
        received = 0
        for _ in range(300):
            msg = await ws.receive(timeout=5)
            received += len(msg.data)
            if json.loads(msg.data).get("type") == "subscribed":
                break
        assert received <= max(4096, len(request)) + 1024, (received, len(request))


# -- 7. slowloris and per-address cap ---------------------------------------------------------
async def test_partial_headers_are_cut_off_and_one_address_cannot_take_every_socket() -> None:
    cfg = gateway_config(header_timeout_s=0.5, max_connections_per_address=4)
    async with Gateway(cfg) as gw:
        loop = asyncio.get_running_loop()
        socks = []
        for _ in range(4):
            sk = socket.create_connection(("127.0.0.1", gw.port))
            sk.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sk.setblocking(False)
            socks.append(sk)
        try:
            await asyncio.sleep(0.1)
            # fifth from the same address: 503
            async with aiohttp.ClientSession() as s, s.get(f"{gw.rest_url}/v1/health") as r:
                assert r.status == 503
                assert (await r.json())["error"]["code"] == "too_many_connections"
            for sk in socks:  # each held socket is closed by the gateway within the deadline
                data = await asyncio.wait_for(loop.sock_recv(sk, 1024), 5)
                assert data == b""
            async with aiohttp.ClientSession() as s, s.get(f"{gw.rest_url}/v1/health") as r:
                assert r.status == 200
            assert gw.stats()["abuse"]["header_timeouts"] == 4
        finally:
            for sk in socks:
                sk.close()


async def test_unknown_long_path_is_echoed_clipped(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{gw.rest_url}/v1/{'p' * 6000}") as r:
        err = (await r.json())["error"]
    assert r.status == 404 and len(err["message"]) < 300
