"""Every fault, as a client sees it, set through the admin API or in-process."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import gateway_config
from tests.gateway.wire import admin, collect, connect, recv, subscribe, texts
from tickpipe.gateway import Gateway
from tickpipe.protocol import frames
from tickpipe.protocol.book import OrderBook


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async with Gateway(gateway_config(rate=50.0, heartbeat_ms=200)) as g:
        yield g


async def _trigger(s: aiohttp.ClientSession, gw: Gateway, body: dict[str, Any]) -> Any:
    assert gw.admin_url is not None
    st, out = await admin(s, gw.admin_url, gw.admin_token, "POST", "/admin/trigger", body)
    assert st == 200, out
    return out


async def _book_frames(ws: aiohttp.ClientWebSocketResponse, channel: str, n: int) -> list[str]:
    """The next ``n`` raw text frames of ``channel`` (by substring; malformed ones included)."""
    out: list[str] = []
    for _ in range(20 * n):
        msg = await ws.receive(timeout=3)
        assert msg.type == aiohttp.WSMsgType.TEXT
        if channel in msg.data or not msg.data.endswith("}"):
            out.append(msg.data)
            if len(out) == n:
                break
    return out


def _seqs(raws: list[str]) -> list[int]:
    return [json.loads(r)["seq"] for r in raws]


async def test_drop_delta_makes_a_seq_gap(gw: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "tickpipe.gateway")
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url)
        await subscribe(ws, ["orderbook:AAPL"])
        first = await recv(ws)
        out = await _trigger(s, gw, {"fault": "drop_delta", "channel": "orderbook:AAPL"})
        assert out["triggered"] == "drop_delta" and out["count"] == 1
        seqs = [first["seq"], *_seqs(await _book_frames(ws, "orderbook:AAPL", 9))]
        steps = [b - a for a, b in itertools.pairwise(seqs)]
        assert sorted(steps) == [1] * 8 + [2]
        dropped = seqs[steps.index(2)] + 1
    logged = [json.loads(r.message) for r in caplog.records if '"fault"' in r.message]
    assert {"fault": "drop_delta", "channel": "orderbook:AAPL", "seq": dropped}.items() <= logged[
        0
    ].items()
    assert gw.faults_json()["counts"]["drop_delta"] == 1


async def test_duplicate_and_reorder(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url)
        await subscribe(ws, ["orderbook:MSFT"])
        await recv(ws)
        await _trigger(s, gw, {"fault": "duplicate_delta", "channel": "orderbook:MSFT"})
        raws = await _book_frames(ws, "orderbook:MSFT", 6)
        dups = [a for a, b in itertools.pairwise(raws) if a == b]
        assert len(dups) == 1
        await _trigger(s, gw, {"fault": "reorder_delta", "channel": "orderbook:MSFT"})
        seqs = _seqs(await _book_frames(ws, "orderbook:MSFT", 6))
        assert sorted(seqs) == list(range(seqs[0], seqs[0] + 6)) or sorted(seqs) == list(
            range(min(seqs), min(seqs) + 6)
        )
        swaps = [(a, b) for a, b in itertools.pairwise(seqs) if b == a - 1]
        assert len(swaps) == 1


async def test_bad_checksum_is_detectable_and_book_content_still_true(gw: Gateway) -> None:
    inst = {i.symbol: i for i in gw.instruments}["NVDA"]
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url)
        await subscribe(ws, ["orderbook:NVDA"])
        first = frames.decode_server_frame((await ws.receive(timeout=3)).data)
        assert isinstance(first, frames.Delta)
        book = gw.true_book("NVDA", first.seq)  # seed from the truth at that seq
        await _trigger(s, gw, {"fault": "bad_checksum", "channel": "orderbook:NVDA"})
        bad = 0
        for raw in await _book_frames(ws, "orderbook:NVDA", 8):
            d = frames.decode_server_frame(raw)
            assert isinstance(d, frames.Delta)
            book.apply(
                frames.parse_levels(d.bids, inst, d.channel, "bids"),
                frames.parse_levels(d.asks, inst, d.channel, "asks"),
            )
            if book.checksum() != d.checksum:
                bad += 1
            assert book == gw.true_book("NVDA", d.seq)
        assert bad == 1


async def test_malformed_frame_does_not_parse(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url)
        await subscribe(ws, ["orderbook:AAPL", "ticker:AAPL"])
        await recv(ws)
        await _trigger(s, gw, {"fault": "malformed_frame", "channel": "ticker:AAPL"})
        items = await collect(ws, 1.0)
        broken = []
        for kind, data in items:
            if kind == "text":
                try:
                    json.loads(data)
                except json.JSONDecodeError:
                    broken.append(data)
        assert len(broken) == 1 and '"ticker:AAPL"' in broken[0]
        assert len(texts(items)) > 10  # the rest flows


async def test_chance_faults_respect_scope(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        assert gw.admin_url is not None
        st, _ = await admin(
            s, gw.admin_url, gw.admin_token, "POST", "/admin/faults",
            {"drop_delta": {"rate": 1.0, "scope": ["orderbook:AAPL"]}},
        )  # fmt: skip
        assert st == 200
        ws = await connect(s, gw.stream_url)
        await subscribe(ws, ["orderbook:AAPL", "orderbook:MSFT"])
        got = texts(await collect(ws, 0.6))
        assert {f["channel"] for f in got} == {"orderbook:MSFT"}
        seqs = [f["seq"] for f in got]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


async def test_disconnect_with_and_without_close_frame(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url)
        out = await _trigger(s, gw, {"fault": "disconnect", "close_frame": True})
        assert len(out["sessions"]) == 1
        msg = await ws.receive(timeout=3)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001
        ws2 = await connect(s, gw.stream_url)
        await subscribe(ws2, ["orderbook:AAPL"])
        await _trigger(s, gw, {"fault": "disconnect", "close_frame": False})
        items = await collect(ws2, 3.0)
        assert items[-1][0] in ("closed", "error")  # the socket died: no close frame came
        assert all(kind != "close" for kind, _ in items)


async def test_stop_pings_while_data_flows(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url, autoping=False)
        await subscribe(ws, ["orderbook:AAPL"])
        before = await collect(ws, 0.7)
        assert any(k == "ping" for k, _ in before)  # heartbeat 200 ms
        await _trigger(s, gw, {"fault": "stop_pings", "duration_ms": 60_000})
        await collect(ws, 0.25)  # a ping already in flight may still land
        during = await collect(ws, 1.0)
        assert not any(k == "ping" for k, _ in during)
        assert len(texts(during)) > 10  # data keeps flowing
        await _trigger(s, gw, {"fault": "stop_pings", "duration_ms": 0})  # end it
        after = await collect(ws, 0.7)
        assert any(k == "ping" for k, _ in after)


async def test_stall_sends_nothing_but_keeps_tcp_open(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url, autoping=False)
        await subscribe(ws, ["orderbook:AAPL", "ticker:AAPL"])
        await collect(ws, 0.3)
        await _trigger(s, gw, {"fault": "stall", "duration_ms": 60_000})
        await collect(ws, 0.1)  # what was already on the wire
        during = await collect(ws, 0.8)
        assert during == []  # no data, no ping, no close
        assert not ws.closed and gw.stats()["connections"] == 1
        await _trigger(s, gw, {"fault": "stall", "duration_ms": 0})
        after = await collect(ws, 1.0)
        assert len(texts(after)) > 5


async def test_snapshot_error_and_stale_snapshot(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        await _trigger(s, gw, {"fault": "snapshot_error", "symbol": "AAPL", "count": 2})
        for _ in range(2):
            async with s.get(f"{gw.rest_url}/v1/orderbook/AAPL") as r:
                assert r.status == 503
                assert (await r.json())["error"]["code"] == "snapshot_unavailable"
        async with s.get(f"{gw.rest_url}/v1/orderbook/AAPL") as r:
            assert r.status == 200
        await asyncio.sleep(1.2)  # ~60 deltas: more than stale_by (50)
        await _trigger(s, gw, {"fault": "stale_snapshot", "symbol": "AAPL"})
        latest = gw.seq("orderbook:AAPL")
        async with s.get(f"{gw.rest_url}/v1/orderbook/AAPL") as r:
            snap = frames.decode_snapshot(await r.read())
        assert snap.seq <= latest - 50
        inst = gw.true_book("AAPL").instrument
        b = OrderBook(inst)
        b.load(
            frames.parse_levels(snap.bids, inst, "", "bids"),
            frames.parse_levels(snap.asks, inst, "", "asks"),
        )
        assert b == gw.true_book("AAPL", snap.seq)  # stale, but true for its seq


async def test_snapshot_delay(gw: Gateway) -> None:
    gw.set_faults(snapshot_delay_ms=300)
    async with aiohttp.ClientSession() as s:
        t0 = time.monotonic()
        async with s.get(f"{gw.rest_url}/v1/orderbook/AAPL?depth=1") as r:
            assert r.status == 200
        assert time.monotonic() - t0 >= 0.3  # a lower bound only: the delay happened
    assert gw.faults_json()["counts"]["snapshot_delay_ms"] == 1


async def test_snapshot_rate_limit_per_key(gw: Gateway) -> None:
    gw.set_faults(snapshot_rate_limit=2)
    url = f"{gw.rest_url}/v1/orderbook/AAPL?depth=1"
    async with aiohttp.ClientSession() as s:
        statuses = []
        for _ in range(3):
            async with s.get(url, headers={"X-VT-KEY": "demo"}) as r:
                statuses.append(r.status)
                if r.status == 429:
                    retry_after = r.headers["Retry-After"]
                    body = await r.json()
        assert statuses == [200, 200, 429]
        assert body["error"]["code"] == "rate_limited" and int(retry_after) >= 1
        async with s.get(url) as r:  # no key: the address's own budget
            assert r.status == 200


async def test_silence_channel_then_resume_without_gap(gw: Gateway) -> None:
    inst = {i.symbol: i for i in gw.instruments}["AAPL"]
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url)
        await subscribe(ws, ["orderbook:AAPL", "orderbook:MSFT"])
        first = frames.decode_server_frame((await ws.receive(timeout=3)).data)
        assert isinstance(first, frames.Delta)
        assert gw.admin_url is not None
        st, _ = await admin(
            s, gw.admin_url, gw.admin_token, "POST", "/admin/faults",
            {"silence_channel": ["orderbook:AAPL"]},
        )  # fmt: skip
        assert st == 200
        items = texts(await collect(ws, 0.3))  # in-flight AAPL frames drain
        last_aapl = max([f["seq"] for f in items if f["channel"] == "orderbook:AAPL"], default=0)
        quiet = texts(await collect(ws, 0.6))
        assert {f["channel"] for f in quiet} == {"orderbook:MSFT"} and len(quiet) > 10
        if not last_aapl:
            last_aapl = first.seq if first.channel == "orderbook:AAPL" else gw.seq("orderbook:AAPL")
        book = gw.true_book("AAPL", last_aapl)
        gw.set_faults(silence_channel=[])
        resumed = [f for f in texts(await collect(ws, 0.6)) if f["channel"] == "orderbook:AAPL"]
        assert resumed and resumed[0]["seq"] == last_aapl + 1  # no gap: changes were merged
        for f in resumed:
            book.apply(
                frames.parse_levels(f["bids"], inst, "", "bids"),
                frames.parse_levels(f["asks"], inst, "", "asks"),
            )
            assert book.checksum() == f["checksum"]


async def test_random_disconnect_setting() -> None:
    async with Gateway(gateway_config()) as gw, aiohttp.ClientSession() as s:
        gw.set_faults(disconnect=1.0, close_frame=False)
        ws = await connect(s, gw.stream_url)
        items = await collect(ws, 3.0)
        assert items and items[-1][0] in ("closed", "error")
        assert gw.faults_json()["counts"]["disconnect"] >= 1


async def test_faults_profile_at_start() -> None:
    from tickpipe.gateway import load_profile

    async with Gateway(gateway_config(faults=load_profile("chaos"))) as gw:
        assert gw.faults.settings.drop_delta.rate > 0
        assert gw.faults_json()["settings"]["snapshot_rate_limit"] == 2


async def test_connection_fault_can_target_one_session(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        a = await connect(s, gw.stream_url)
        b = await connect(s, gw.stream_url)
        await subscribe(b, ["orderbook:AAPL"])
        (sid_a,) = [x["session"] for x in gw.stats()["sessions"] if not x["channels"]]
        out = await _trigger(s, gw, {"fault": "disconnect", "session": sid_a})
        assert out["sessions"] == [sid_a]
        assert (await a.receive(timeout=3)).data == 1001
        assert len(texts(await collect(b, 0.3))) > 3  # b keeps streaming
        assert gw.stats()["connections"] == 1
