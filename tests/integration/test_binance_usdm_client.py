"""The real client on ``venue="binance-usdm"`` against ``tickpipe gateway --dialect
binance-usdm``.

Everything real: the gateway in-process on 127.0.0.1 port 0 speaking Binance USD-M futures'
wire format (``pu`` links, update ids left out between events), endpoints and limits; the
client's generic shell with the USD-M adapter. Books are compared with the gateway's truth at
hub seq ``u / update_id_step``; each fault re-seeds only the book it hit, from
``/fapi/v1/depth``.
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
from tickpipe.client.dispatch import TickerUpdate, TradeUpdate
from tickpipe.errors import ConfigError
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.testing import GatewayProcess
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.protocol.sync import SyncConfig

from .conftest import FAST_RECONNECT, Recorder

WAIT_S = 20.0  # generous: the machine is shared
STEP = 10  # the dialect's default update_id_step
BTC, ETH = "orderbook:BTCUSDT", "orderbook:ETHUSDT"


def usdm_config(**options: Any) -> GatewayConfig:
    return GatewayConfig(
        port=0,
        admin_port=0,
        seed=7,
        rate=40.0,
        dialect="binance-usdm",
        dialect_options=tuple(options.items()),
    )


@pytest.fixture
async def ugw() -> AsyncIterator[Gateway]:
    async with Gateway(usdm_config(ping_interval_s=0.5)) as g:
        yield g


def usdm_client(g: Gateway, **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault("snapshot_jitter_s", 0.02)
    knobs.setdefault(
        "sync",
        SyncConfig(snapshot_retry=BackoffPolicy(base_s=0.05, cap_s=0.3, healthy_after_s=0.0)),
    )
    return Client(venue="binance-usdm", stream_url=g.stream_url, rest_url=g.rest_url, **knobs)


def books_match_truth(client: Client, gw: Gateway) -> int:
    """Every synced book equals the gateway's truth at its update id / STEP; how many."""
    checked = 0
    for channel, view in client.books().items():
        if not view.synced:
            continue
        seq = view.seq
        assert seq is not None and seq % STEP == 0, (channel, seq)
        truth = gw.true_book(view.symbol, seq // STEP)
        inst = truth.instrument
        tb, ta = truth.to_lists()
        want = (
            [[inst.format_price(p), inst.format_size(s)] for p, s in tb],
            [[inst.format_price(p), inst.format_size(s)] for p, s in ta],
        )
        assert view.text_levels(None) == want, f"{channel} differs from the truth at {seq}"
        checked += 1
    return checked


async def settled_match(client: Client, gw: Gateway, want: int) -> None:
    """Books equal the truth (retried while a book is briefly between frames)."""
    for _ in range(50):
        try:
            assert books_match_truth(client, gw) == want
            return
        except AssertionError:
            await asyncio.sleep(0.1)
    assert books_match_truth(client, gw) == want


def synced_count(rec: Recorder, channel: str) -> int:
    return len(rec.named("synced", channel=channel))


async def test_books_sync_equal_truth_tickers_trades_flow(ugw: Gateway) -> None:
    client = usdm_client(ugw)
    assert client.stream_url == ugw.stream_url + "/ws"  # the documented path appended
    async with client:
        rec = Recorder(client)
        tickers, trades = client.tickers(), client.trades()
        chans = [BTC, ETH, "ticker:BTCUSDT", "trades:BTCUSDT"]
        res = await client.subscribe(chans)
        assert sorted(res.accepted) == sorted(chans)
        for s in ("BTCUSDT", "ETHUSDT"):
            await client.wait_synced(s, timeout=WAIT_S)
        await asyncio.sleep(0.5)  # deltas applied on top of the snapshots
        await settled_match(client, ugw, 2)
        t = await asyncio.wait_for(tickers.__anext__(), WAIT_S)
        assert isinstance(t, TickerUpdate), t
        assert t.channel == "ticker:BTCUSDT" and t.bid < t.ask and t.ts > 0
        tr = await asyncio.wait_for(trades.__anext__(), WAIT_S)
        assert isinstance(tr, TradeUpdate), tr
        assert tr.channel == "trades:BTCUSDT" and tr.side in ("buy", "sell") and tr.size > 0
        bad = await client.subscribe("orderbook:NOPEUSDT")
        assert bad.refused == {"orderbook:NOPEUSDT": "unknown_instrument"}
        assert client.book("BTCUSDT").synced
        # every event linked by pu (ids are left out between events: U > pu + 1)
        assert rec.named("gap") == [] and client.stats().resyncs == 0
        await rec.close()


@pytest.mark.parametrize("fault", ["drop_delta", "reorder_delta"])
async def test_a_broken_pu_link_reseeds_only_that_book(ugw: Gateway, fault: str) -> None:
    async with usdm_client(ugw) as client:
        rec = Recorder(client)
        await client.subscribe([BTC, ETH])
        for s in ("BTCUSDT", "ETHUSDT"):
            await client.wait_synced(s, timeout=WAIT_S)
        ugw.trigger(fault, channel=BTC)
        await rec.wait_for("gap", timeout=WAIT_S, channel=BTC)
        assert rec.named("gap", channel=BTC)[0].reason == "seq_gap"  # type: ignore[attr-defined]
        await rec.wait_for(lambda evs: synced_count(rec, BTC) >= 2, WAIT_S)
        assert rec.named("gap", channel=ETH) == [] and synced_count(rec, ETH) == 1
        await settled_match(client, ugw, 2)
        await rec.close()


async def test_a_duplicate_event_is_dropped_without_a_reseed(ugw: Gateway) -> None:
    async with usdm_client(ugw) as client:
        rec = Recorder(client)
        await client.subscribe([BTC, ETH])
        for s in ("BTCUSDT", "ETHUSDT"):
            await client.wait_synced(s, timeout=WAIT_S)
        before = client.stats().resyncs
        ugw.trigger("duplicate_delta", channel=BTC)
        for _ in range(200):  # bounded: until the duplicate was sent
            if ugw.faults_json()["counts"].get("duplicate_delta", 0):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert rec.named("gap") == [] and client.stats().resyncs == before
        assert synced_count(rec, BTC) == 1  # the first sync only: no re-seed
        await settled_match(client, ugw, 2)
        await rec.close()


async def test_stale_snapshot_is_fetched_again_then_syncs(ugw: Gateway) -> None:
    ugw.set_faults(stale_by=200)
    async with usdm_client(ugw) as client:
        rec = Recorder(client)
        await client.subscribe([BTC, ETH])
        for s in ("BTCUSDT", "ETHUSDT"):
            await client.wait_synced(s, timeout=WAIT_S)
        # the next BTC snapshot answers 200 updates back; a dropped event asks for one
        ugw.trigger("stale_snapshot", symbol="BTCUSDT")
        ugw.trigger("drop_delta", channel=BTC)
        await rec.wait_for(lambda evs: synced_count(rec, BTC) >= 2, WAIT_S)
        gaps = rec.named("gap", channel=BTC)
        reasons = [g.reason for g in gaps]  # type: ignore[attr-defined]
        assert reasons == ["seq_gap", "stale_snapshot"], reasons
        assert rec.named("gap", channel=ETH) == []
        assert ugw.faults_json()["counts"]["stale_snapshot"] == 1
        await settled_match(client, ugw, 2)
        await rec.close()


async def test_429_retry_after_on_depth_every_book_syncs_no_ban() -> None:
    # a tight weight budget: 6 books x weight 20 (1000 levels) > 100 a 2 s window
    cfg = usdm_config(weight_per_window=100, weight_window_s=2.0, ban_after_429s=2)
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XAUUSDT", "AAPL", "USDJPY"]
    async with Gateway(cfg) as g, usdm_client(g) as client:
        g.set_faults(snapshot_rate_limit=2)  # and more than 2 depth calls a second: 429 too
        await client.subscribe([f"orderbook:{s}" for s in symbols])
        for s in symbols:
            await client.wait_synced(s, timeout=WAIT_S * 2)
        stats = client.stats()
        refused = g.stats()["dialect"]["refused"]
        assert stats.snapshot_429 >= 1  # the budget was met...
        assert refused["418"] == 0 and g.stats()["dialect"]["banned"] == []  # ...never a ban
        await settled_match(client, g, len(symbols))


async def test_disconnect_stale_reconnect_reseed(ugw: Gateway) -> None:
    async with usdm_client(ugw) as client:
        rec = Recorder(client)
        await client.subscribe([BTC, "ticker:BTCUSDT"])
        await client.wait_synced("BTCUSDT", timeout=WAIT_S)
        ugw.trigger("disconnect", close_frame=False)
        await rec.wait_for("stale", timeout=WAIT_S, channel=BTC)
        await rec.wait_for("reconnecting", timeout=WAIT_S)
        await rec.wait_for(lambda evs: synced_count(rec, BTC) >= 2, WAIT_S)
        assert rec.named("connected")
        await client.wait_synced("BTCUSDT", timeout=WAIT_S)
        await settled_match(client, ugw, 1)
        assert "ticker:BTCUSDT" in client.channels  # re-subscribed
        await rec.close()


@pytest.mark.parametrize("fault", ["stop_pings", "stall"])
async def test_heartbeat_loss_is_detected_then_reconnect_reseed(ugw: Gateway, fault: str) -> None:
    # the dialect pings every 0.5 s here; the watchdog allows 2 s without a ping
    async with usdm_client(ugw, heartbeat_timeout_s=2.0) as client:
        rec = Recorder(client)
        await client.subscribe([BTC])
        await client.wait_synced("BTCUSDT", timeout=WAIT_S)
        ugw.trigger(fault, duration_ms=60_000)
        await rec.wait_for("disconnected", timeout=WAIT_S)
        lost = rec.named("disconnected")[0]
        assert lost.reason == "heartbeat", lost  # type: ignore[attr-defined]
        # the new connection is a new session: the fault held only the old one
        await rec.wait_for(lambda evs: synced_count(rec, BTC) >= 2, WAIT_S)
        await client.wait_synced("BTCUSDT", timeout=WAIT_S)
        await settled_match(client, ugw, 1)
        await rec.close()


async def test_silenced_channel_goes_stale_others_keep_flowing(ugw: Gateway) -> None:
    async with usdm_client(ugw, stale_after_s=1.0) as client:
        rec = Recorder(client)
        await client.subscribe([BTC, ETH])
        for s in ("BTCUSDT", "ETHUSDT"):
            await client.wait_synced(s, timeout=WAIT_S)
        ugw.set_faults(silence_channel=[BTC])
        await rec.wait_for("stale", timeout=WAIT_S, channel=BTC)
        eth_seq = client.book("ETHUSDT").seq or 0
        for _ in range(200):  # bounded: ETH keeps advancing meanwhile
            if (client.book("ETHUSDT").seq or 0) > eth_seq:
                break
            await asyncio.sleep(0.05)
        assert (client.book("ETHUSDT").seq or 0) > eth_seq
        assert rec.named("stale", channel=ETH) == []
        ugw.set_faults(silence_channel=[])
        await rec.wait_for("active", timeout=WAIT_S, channel=BTC)
        # the merged changes keep the pu link: no gap, no re-seed
        assert rec.named("gap") == [] and synced_count(rec, BTC) == 1
        await settled_match(client, ugw, 2)
        await rec.close()


def test_watch_venue_binance_usdm_prints_final_books_equal_to_the_truth() -> None:
    with GatewayProcess("--dialect", "binance-usdm") as gp:
        out = subprocess.run(
            [
                sys.executable, "-m", "tickpipe", "watch", "--venue", "binance-usdm",
                "orderbook:BTCUSDT", "trades:BTCUSDT", "--stream-url", gp.stream_url,
                "--rest-url", gp.rest_url, "--jsonl", "--duration", "3",
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        lines = [json.loads(x) for x in out.stdout.splitlines()]
        final = [x for x in lines if x["event"] == "final_book"]
        assert len(final) == 1 and final[0]["channel"] == BTC
        seq = final[0]["seq"]
        assert final[0]["synced"] is True and isinstance(seq, int) and seq % STEP == 0

        async def truth() -> Any:
            url = f"{gp.admin_url}/admin/book/BTCUSDT?seq={seq // STEP}"
            async with (
                aiohttp.ClientSession() as http,
                http.get(url, headers={"X-Admin-Token": gp.admin_token}) as r,
            ):
                assert r.status == 200, await r.text()
                return await r.json()

        want = asyncio.run(truth())
    depth = len(final[0]["bids"])
    assert depth > 0 and final[0]["bids"] == want["bids"][:depth]
    assert final[0]["asks"] == want["asks"][: len(final[0]["asks"])]
    assert any(x["event"] == "trade" for x in lines)


async def test_a_snapshot_depth_usdm_does_not_take_is_refused_at_start() -> None:
    client = Client(
        venue="binance-usdm",
        stream_url="ws://127.0.0.1:9",
        rest_url="http://127.0.0.1:9",
        snapshot_depth=200,
    )
    with pytest.raises(ConfigError, match="5, 10, 20, 50, 100, 500, 1000"):
        async with client:
            pass
