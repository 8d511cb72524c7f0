"""The real client on ``venue="binance"`` against ``tickpipe gateway --dialect binance``.

Everything real: the gateway in-process on 127.0.0.1 port 0 speaking Binance spot's wire
format, endpoints and limits; the client's generic shell with the Binance adapter. Books are
compared with the gateway's truth at the book's update id.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tickpipe import Client
from tickpipe.errors import UnsupportedError
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.testing import GatewayProcess

from .conftest import FAST_RECONNECT, Recorder, assert_books_match_truth

WAIT_S = 20.0  # generous: the machine is shared


@pytest.fixture
async def bgw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(port=0, admin_port=0, seed=7, rate=40.0, dialect="binance")
    async with Gateway(cfg) as g:
        yield g


def binance_client(g: Gateway, **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault("snapshot_jitter_s", 0.02)
    return Client(venue="binance", stream_url=g.stream_url, rest_url=g.rest_url, **knobs)


async def test_books_sync_equal_truth_tickers_trades_flow(bgw: Gateway) -> None:
    client = binance_client(bgw)
    assert client.stream_url == bgw.stream_url + "/ws"  # the documented path appended
    async with client:
        tickers, trades = client.tickers(), client.trades()
        res = await client.subscribe(
            ["orderbook:BTCUSDT", "orderbook:ETHUSDT", "ticker:BTCUSDT", "trades:BTCUSDT"]
        )
        assert sorted(res.accepted) == sorted(
            ["orderbook:BTCUSDT", "orderbook:ETHUSDT", "ticker:BTCUSDT", "trades:BTCUSDT"]
        )
        for s in ("BTCUSDT", "ETHUSDT"):
            await client.wait_synced(s, timeout=WAIT_S)
        await asyncio.sleep(0.5)  # deltas applied on top of the snapshots
        assert assert_books_match_truth(client, bgw) == 2
        view = client.book("BTCUSDT")
        seq = view.seq
        bids, asks = view.text_levels(None)
        assert view.synced and seq is not None
        url = f"{bgw.admin_url}/admin/book/BTCUSDT?seq={seq}"  # the truth over the admin API
        async with (
            aiohttp.ClientSession() as http,
            http.get(url, headers={"X-Admin-Token": bgw.admin_token}) as r,
        ):
            assert r.status == 200, await r.text()
            truth = await r.json()
        assert [list(x) for x in truth["bids"]] == bids
        assert [list(x) for x in truth["asks"]] == asks
        t = await asyncio.wait_for(tickers.__anext__(), WAIT_S)
        assert t.channel == "ticker:BTCUSDT" and t.bid < t.ask and t.last is None
        tr = await asyncio.wait_for(trades.__anext__(), WAIT_S)
        assert tr.channel == "trades:BTCUSDT" and tr.side in ("buy", "sell") and tr.size > 0
        # an unknown symbol is refused by name, the others untouched
        bad = await client.subscribe("orderbook:NOPEUSDT")
        assert bad.refused == {"orderbook:NOPEUSDT": "unknown_instrument"}
        assert client.book("BTCUSDT").synced


async def test_dropped_depth_event_reseeds_only_that_book(bgw: Gateway) -> None:
    async with binance_client(bgw) as client:
        rec = Recorder(client)
        await client.subscribe(["orderbook:BTCUSDT", "orderbook:ETHUSDT"])
        for s in ("BTCUSDT", "ETHUSDT"):
            await client.wait_synced(s, timeout=WAIT_S)
        bgw.trigger("drop_delta", channel="orderbook:BTCUSDT")
        await rec.wait_for("gap", timeout=WAIT_S, channel="orderbook:BTCUSDT")
        gap = rec.named("gap", channel="orderbook:BTCUSDT")[0]
        assert gap.reason == "seq_gap"  # type: ignore[attr-defined]
        await rec.wait_for(
            lambda evs: len(rec.named("synced", channel="orderbook:BTCUSDT")) >= 2, WAIT_S
        )
        assert rec.named("gap", channel="orderbook:ETHUSDT") == []
        assert len(rec.named("synced", channel="orderbook:ETHUSDT")) == 1
        await asyncio.sleep(0.3)
        assert assert_books_match_truth(client, bgw) == 2
        await rec.close()


async def test_disconnect_stale_reconnect_reseed(bgw: Gateway) -> None:
    async with binance_client(bgw) as client:
        rec = Recorder(client)
        await client.subscribe(["orderbook:BTCUSDT", "ticker:BTCUSDT"])
        await client.wait_synced("BTCUSDT", timeout=WAIT_S)
        bgw.trigger("disconnect", close_frame=False)
        await rec.wait_for("stale", timeout=WAIT_S, channel="orderbook:BTCUSDT")
        await rec.wait_for("reconnecting", timeout=WAIT_S)
        await rec.wait_for(
            lambda evs: len(rec.named("synced", channel="orderbook:BTCUSDT")) >= 2, WAIT_S
        )
        assert rec.named("connected")  # the new connection (the first was before the recorder)
        await client.wait_synced("BTCUSDT", timeout=WAIT_S)
        await asyncio.sleep(0.3)
        assert assert_books_match_truth(client, bgw) == 1
        assert "ticker:BTCUSDT" in client.channels  # re-subscribed
        await rec.close()


async def test_429_retry_after_honoured_every_book_syncs(bgw: Gateway) -> None:
    bgw.set_faults(snapshot_rate_limit=1)  # more than 1 depth call a second: 429, Retry-After 1
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XAUUSDT"]
    async with binance_client(bgw) as client:
        await client.subscribe([f"orderbook:{s}" for s in symbols])
        for s in symbols:
            await client.wait_synced(s, timeout=WAIT_S)
        stats = client.stats()
        assert stats.snapshot_429 >= 1  # the burst met the limit once...
        # ...and then waited: every fetch paused for Retry-After and each wave halved the
        # rate, with at least one book admitted a wave: at most 3 + 2 + 1 (the budget is the
        # weight window, whose pace this per-second fault does not know)
        assert stats.snapshot_429 <= 6, stats.snapshot_429
        assert bgw.faults_json()["counts"].get("snapshot_rate_limit", 0) == stats.snapshot_429


async def test_orders_unsupported_names_the_venue(bgw: Gateway) -> None:
    async with binance_client(bgw) as client:
        with pytest.raises(UnsupportedError, match="binance") as info:
            await client.place_limit_order("BTCUSDT", "buy", "1", "1")
        assert info.value.venue == "binance"
        with pytest.raises(UnsupportedError):
            await client.cancel_all_orders()


def test_watch_venue_binance_prints_final_books() -> None:
    with GatewayProcess("--dialect", "binance") as gp:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "tickpipe",
                "watch",
                "--venue",
                "binance",
                "orderbook:BTCUSDT",
                "trades:BTCUSDT",
                "--stream-url",
                gp.stream_url,
                "--rest-url",
                gp.rest_url,
                "--jsonl",
                "--duration",
                "3",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    final = [x for x in lines if x["event"] == "final_book"]
    assert len(final) == 1 and final[0]["channel"] == "orderbook:BTCUSDT"
    assert final[0]["synced"] is True and isinstance(final[0]["seq"], int)
    assert final[0]["bids"] and final[0]["asks"]
    assert final[0]["exact_depth"] == 1000  # seeded by Binance's 1000-level snapshot
    assert any(x["event"] == "trade" for x in lines)
