"""The admin API: token, loopback only, fault settings, triggers, the true book, stats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import gateway_config
from tests.gateway.wire import admin, connect, recv, subscribe
from tickpipe.gateway import Gateway
from tickpipe.protocol import frames
from tickpipe.protocol.book import OrderBook


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _call(
    http: aiohttp.ClientSession, gw: Gateway, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    assert gw.admin_url is not None
    return await admin(http, gw.admin_url, gw.admin_token, method, path, body)


@pytest.mark.parametrize("path", ["/admin/faults", "/admin/stats", "/admin/book/AAPL"])
async def test_token_required(gateway: Gateway, http: aiohttp.ClientSession, path: str) -> None:
    for headers in ({}, {"X-Admin-Token": "wrong"}):
        async with http.get(f"{gateway.admin_url}{path}", headers=headers) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "bad_admin_token"


async def test_admin_binds_loopback_even_when_stream_is_public() -> None:
    async with Gateway(gateway_config(host="0.0.0.0", allow_public_demo_key=True)) as gw:
        assert gw.admin_url is not None and gw.admin_url.startswith("http://127.0.0.1:")
        assert gw._admin_runner is not None
        assert {a[0] for a in gw._admin_runner.addresses} == {"127.0.0.1"}


async def test_faults_get_merge_reset(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    st, body = await _call(http, gateway, "GET", "/admin/faults")
    assert st == 200 and set(body) == {"settings", "pending", "counts"}
    assert body["settings"]["drop_delta"] == {"rate": 0.0, "scope": []}
    patch = {
        "drop_delta": 0.25,
        "bad_checksum": {"rate": 0.5, "scope": ["AAPL"]},
        "snapshot_rate_limit": 3,
    }
    st, body = await _call(http, gateway, "POST", "/admin/faults", patch)
    assert st == 200
    s = body["settings"]
    assert s["drop_delta"] == {"rate": 0.25, "scope": []}
    assert s["bad_checksum"] == {"rate": 0.5, "scope": ["AAPL"]}
    assert s["snapshot_rate_limit"] == 3
    st, body = await _call(http, gateway, "POST", "/admin/faults", {"stop_pings": True})
    assert body["settings"]["drop_delta"]["rate"] == 0.25  # merged, not replaced
    st, body = await _call(http, gateway, "DELETE", "/admin/faults")
    assert st == 200 and body["settings"]["drop_delta"]["rate"] == 0.0
    assert body["settings"]["stop_pings"] is False


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"drop_delta": 2}, "0..1"),
        ({"drop_delta": "often"}, "drop_delta"),
        ({"drop_delta": {"rate": 0.1, "chance": 1}}, "chance"),
        ({"nonsense": 1}, "nonsense"),
        ({"snapshot_delay_ms": -5}, "snapshot_delay_ms"),
        ({"stop_pings": 1}, "stop_pings"),
        ({"silence_channel": [1]}, "silence_channel"),
    ],
)
async def test_bad_fault_settings_are_400(
    gateway: Gateway, http: aiohttp.ClientSession, body: Any, needle: str
) -> None:
    st, err = await _call(http, gateway, "POST", "/admin/faults", body)
    assert st == 400 and err["error"]["code"] == "invalid_fault"
    assert needle in err["error"]["message"]
    _, now = await _call(http, gateway, "GET", "/admin/faults")
    assert now["settings"]["drop_delta"]["rate"] == 0.0  # nothing half-applied


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"fault": "meteor"}, "meteor"),
        ({}, "fault"),
        ({"fault": "drop_delta"}, "channel"),
        ({"fault": "drop_delta", "channel": "orderbook:NOPE"}, "NOPE"),
        ({"fault": "drop_delta", "channel": "ticker:AAPL"}, "orderbook"),
        ({"fault": "drop_delta", "channel": "orderbook:AAPL", "count": 0}, "count"),
        ({"fault": "disconnect", "close_frame": "no"}, "close_frame"),
        ({"fault": "disconnect", "session": "nope"}, "nope"),
        ({"fault": "stall", "duration_ms": -1}, "duration_ms"),
        ({"fault": "stall", "bogus": 1}, "bogus"),
        ({"fault": "snapshot_error", "symbol": "NOPE"}, "NOPE"),
        ({"fault": "snapshot_delay_ms"}, "POST /admin/faults"),
    ],
)
async def test_bad_triggers_are_400(
    gateway: Gateway, http: aiohttp.ClientSession, body: Any, needle: str
) -> None:
    st, err = await _call(http, gateway, "POST", "/admin/trigger", body)
    assert st == 400 and err["error"]["code"] == "invalid_fault", err
    assert needle in err["error"]["message"]


@pytest.mark.parametrize("fault", ["meteor", "snapshot_rate_limit", 7])
async def test_untriggerable_fault_lists_the_accepted_names(
    gateway: Gateway, http: aiohttp.ClientSession, fault: Any
) -> None:
    st, err = await _call(http, gateway, "POST", "/admin/trigger", {"fault": fault})
    assert st == 400 and err["error"]["code"] == "invalid_fault", err
    message = err["error"]["message"]
    assert repr(fault) in message
    for name in ("disconnect", "stall", "drop_delta", "snapshot_error", "silence_channel"):
        assert name in message


async def test_pending_one_shots_are_listed(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    gateway.pause_market()
    await _call(http, gateway, "POST", "/admin/trigger",
                {"fault": "drop_delta", "channel": "orderbook:AAPL", "count": 2})  # fmt: skip
    await _call(http, gateway, "POST", "/admin/trigger", {"fault": "snapshot_error"})
    _, body = await _call(http, gateway, "GET", "/admin/faults")
    assert body["pending"] == {
        "frames": {"orderbook:AAPL": ["drop_delta", "drop_delta"]},
        "snapshots": [{"fault": "snapshot_error", "symbol": None, "count": 1}],
    }


async def test_true_book_endpoint_matches_a_synced_client(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    inst = {i.symbol: i for i in gateway.instruments}["XAU-USD"]
    ws = await connect(http, gateway.stream_url)
    await subscribe(ws, ["orderbook:XAU-USD"])
    first = await recv(ws)
    st, truth = await _call(http, gateway, "GET", f"/admin/book/XAU-USD?seq={first['seq']}")
    assert st == 200 and truth["symbol"] == "XAU-USD" and truth["seq"] == first["seq"]
    book = OrderBook(inst)
    book.load(frames.parse_levels(truth["bids"], inst, "", "bids"),
              frames.parse_levels(truth["asks"], inst, "", "asks"))  # fmt: skip
    assert book.checksum() == first["checksum"] == truth["checksum"]
    assert len(truth["bids"]) >= 200  # full depth, best first
    prices = [float(p) for p, _ in truth["bids"]]
    assert prices == sorted(prices, reverse=True)
    for _ in range(30):
        f = await recv(ws)
        book.apply(frames.parse_levels(f["bids"], inst, "", "bids"),
                   frames.parse_levels(f["asks"], inst, "", "asks"))  # fmt: skip
        _, t = await _call(http, gateway, "GET", f"/admin/book/XAU-USD?seq={f['seq']}&depth=10")
        assert t["bids"] == [
            [inst.format_price(p), inst.format_size(q)] for p, q in book.bids.top(10)
        ]
        assert t["asks"] == [
            [inst.format_price(p), inst.format_size(q)] for p, q in book.asks.top(10)
        ]


async def test_true_book_errors(http: aiohttp.ClientSession) -> None:
    async with Gateway(gateway_config(history_deltas=10)) as gw:
        gw.pause_market()
        gw.step_market(30)
        latest = gw.seq("orderbook:AAPL")
        for path, status, code in [
            (f"/admin/book/AAPL?seq={latest + 5}", 404, "unknown_seq"),
            ("/admin/book/AAPL?seq=1", 410, "seq_too_old"),
            ("/admin/book/AAPL?seq=abc", 400, "bad_seq"),
            ("/admin/book/NOPE", 404, "unknown_symbol"),
        ]:
            st, err = await _call(http, gw, "GET", path)
            assert (st, err["error"]["code"]) == (status, code), path
            assert err["error"]["message"]
        st, ok = await _call(http, gw, "GET", f"/admin/book/AAPL?seq={latest - 10}")
        assert st == 200 and ok["seq"] == latest - 10


async def test_stats(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, gateway.stream_url)
    await subscribe(ws, ["orderbook:AAPL", "ticker:AAPL"])
    for _ in range(10):
        await recv(ws)
    await ws.send_json({"action": "cancel_on_disconnect", "enabled": True})
    await recv(ws)
    st, body = await _call(http, gateway, "GET", "/admin/stats")
    assert st == 200
    assert body["connections"] == 1
    (sess,) = body["sessions"]
    assert sess["channels"] == ["orderbook:AAPL", "ticker:AAPL"]
    assert sess["key"] == "demo" and sess["frames_sent"] >= 10
    assert body["frames_sent"]["orderbook"] > 0
    assert body["frames_sent_by_channel"]["orderbook:AAPL"] > 0
    assert body["frames_generated"]["orderbook"] >= body["seqs"]["orderbook:AAPL"]
    assert set(body["orders"]) >= {"open", "filled", "cancelled", "total"}
    assert isinstance(body["faults"], dict) and isinstance(body["disconnects"], dict)
