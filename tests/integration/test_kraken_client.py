"""The real client on ``venue="kraken"`` against the reference gateway's Kraken dialect
(``tickpipe gateway --dialect kraken``), in-process on 127.0.0.1 port 0.

Kraken's books carry no sequence numbers (a book's ``seq`` is None), so a book is compared
with the gateway's truth once the market is paused and the last update has landed: the
client's book (1000 levels deep, truncated as Kraken documents) must then equal the true book
to that depth. Each fault re-seeds only the book it hit, by re-subscribing that one symbol."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tickpipe import BookView, Client, TickerUpdate, TradeUpdate
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.protocol.sync import SyncConfig
from tickpipe.venues.kraken.adapter import KrakenVenue

from .conftest import FAST_RECONNECT, Recorder

WAIT_S = 20.0  # generous: the machine is shared
BTC, ETH = "orderbook:BTC/USD", "orderbook:ETH/USD"


@pytest.fixture
async def kgw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(
        port=0,
        admin_port=0,
        seed=7,
        rate=40.0,
        dialect="kraken",
        dialect_options=(("rest_calls_per_s", 100),),
    )
    async with Gateway(cfg) as g:
        yield g


def kraken_client(g: Gateway, venue: Any = "kraken", **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault(
        "sync",
        SyncConfig(snapshot_retry=BackoffPolicy(base_s=0.05, cap_s=0.3, healthy_after_s=0.0)),
    )
    return Client(venue=venue, stream_url=g.stream_url, rest_url=g.rest_url, **knobs)


def _truth_lists(
    g: Gateway, symbol: str, depth: int = 1000
) -> tuple[list[list[str]], list[list[str]]]:
    truth = g.true_book(symbol)
    inst = truth.instrument
    tb, ta = truth.to_lists(depth)
    return (
        [[inst.format_price(p), inst.format_size(s)] for p, s in tb],
        [[inst.format_price(p), inst.format_size(s)] for p, s in ta],
    )


async def assert_books_equal_truth(
    client: Client, g: Gateway, symbols: list[str], depth: int = 1000
) -> None:
    """Pause the market, then every book (synced, seq None) equals the truth to ``depth``
    levels once the last update has landed (waited for, bounded)."""
    g.pause_market()
    for _ in range(400):
        views = [client.book(s) for s in symbols]
        if all(
            v.synced and v.text_levels(None) == _truth_lists(g, s, depth)
            for v, s in zip(views, symbols, strict=True)
        ):
            break
        await asyncio.sleep(0.05)
    for s in symbols:
        view = client.book(s)
        assert view.synced and view.seq is None
        assert view.text_levels(None) == _truth_lists(g, s, depth), f"{s} differs from the truth"


async def _updated(client: Client, channel: str, n: int = 5) -> None:
    """Wait until ``channel``'s synced book changed ``n`` times (bounded)."""
    symbol = channel.partition(":")[2]
    feed = client.book_updates()
    seen = 0
    async with asyncio.timeout(WAIT_S):
        async for view in feed:
            if isinstance(view, BookView) and view.symbol == symbol and view.synced:
                seen += 1
                if seen >= n:
                    break
    feed.close()


async def test_books_seed_in_band_and_equal_the_truth_trades_tickers_flow(kgw: Gateway) -> None:
    client = kraken_client(kgw)
    assert client.stream_url == kgw.stream_url + "/v2"  # the documented path appended
    async with client:
        trades = client.trades()
        tickers = client.tickers()
        res = await client.subscribe([BTC, ETH, "trades:BTC/USD", "ticker:BTC/USD"])
        assert sorted(res.accepted) == sorted([BTC, ETH, "trades:BTC/USD", "ticker:BTC/USD"])
        for s in (BTC, ETH):
            await client.wait_synced(s.partition(":")[2], timeout=WAIT_S)
            await _updated(client, s)
        async with asyncio.timeout(WAIT_S):
            trade = await anext(aiter(trades))
            tick = await anext(aiter(tickers))
        assert isinstance(trade, TradeUpdate) and isinstance(tick, TickerUpdate)
        assert trade.symbol == "BTC/USD" and trade.side in ("buy", "sell")
        assert tick.symbol == "BTC/USD" and tick.bid < tick.ask
        await assert_books_equal_truth(client, kgw, ["BTC/USD", "ETH/USD"])
        stats = client.stats()
        assert sum(stats.gaps.values()) == 0 and stats.books[BTC].resyncs == 0


async def test_a_shallow_book_is_truncated_to_its_depth(kgw: Gateway) -> None:
    """depth=10: levels pushed out of the top 10 are never deleted on the wire; the client
    drops them itself, so its book stays the true top 10 (not a growing stale tail)."""
    async with kraken_client(kgw, KrakenVenue(depth=10)) as client:
        await client.subscribe([BTC])
        await client.wait_synced("BTC/USD", timeout=WAIT_S)
        await _updated(client, BTC, 20)
        await assert_books_equal_truth(client, kgw, ["BTC/USD"], depth=10)
        assert len(client.book("BTC/USD").text_levels(None)[0]) == 10
        assert sum(client.stats().gaps.values()) == 0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("drop_delta", "checksum"),
        ("reorder_delta", "checksum"),
        ("bad_checksum", "checksum"),
        ("malformed_frame", "bad_frame"),
    ],
)
async def test_a_fault_reseeds_only_that_book(kgw: Gateway, fault: str, reason: str) -> None:
    async with kraken_client(kgw) as client:
        await client.subscribe([BTC, ETH])
        for s in (BTC, ETH):
            await client.wait_synced(s.partition(":")[2], timeout=WAIT_S)
            await _updated(client, s)
        kgw.trigger(fault, channel=BTC)
        for _ in range(2000):
            if client.stats().books[BTC].resyncs == 1 and client.book("BTC/USD").synced:
                break
            await asyncio.sleep(0.01)
        stats = client.stats()
        assert stats.books[BTC].resyncs == 1 and stats.gaps[reason] == 1, stats.gaps
        assert stats.books[ETH].resyncs == 0 and stats.connections_opened == 1
        await _updated(client, BTC)
        await assert_books_equal_truth(client, kgw, ["BTC/USD", "ETH/USD"])


async def test_duplicate_update_changes_nothing(kgw: Gateway) -> None:
    async with kraken_client(kgw) as client:
        await client.subscribe([BTC])
        await client.wait_synced("BTC/USD", timeout=WAIT_S)
        kgw.trigger("duplicate_delta", channel=BTC)
        await _updated(client, BTC, 10)
        assert client.stats().books[BTC].resyncs == 0
        assert kgw.faults_json()["counts"]["duplicate_delta"] == 1
        await assert_books_equal_truth(client, kgw, ["BTC/USD"])


async def test_disconnect_stale_reconnect_resubscribe_reseed(kgw: Gateway) -> None:
    async with kraken_client(kgw) as client:
        rec = Recorder(client)
        await client.subscribe([BTC, "ticker:BTC/USD"])
        await client.wait_synced("BTC/USD", timeout=WAIT_S)
        kgw.trigger("disconnect", close_frame=False)
        await rec.wait_for("stale", timeout=WAIT_S, channel=BTC)
        await rec.wait_for("reconnecting", timeout=WAIT_S)
        await rec.wait_for(lambda evs: len(rec.named("synced", channel=BTC)) >= 2, WAIT_S)
        assert client.stats().connections_opened == 2
        assert "ticker:BTC/USD" in client.channels  # re-subscribed
        await _updated(client, BTC)
        await assert_books_equal_truth(client, kgw, ["BTC/USD"])
        await rec.close()


async def test_heartbeat_loss_is_a_dead_link_then_reconnect_and_reseed(kgw: Gateway) -> None:
    venue = KrakenVenue(client_ping_interval_s=0.3, heartbeat_timeout_s=1.5)
    async with kraken_client(kgw, venue) as client:
        await client.subscribe([BTC])
        await client.wait_synced("BTC/USD", timeout=WAIT_S)
        kgw.pause_market()  # no data: only heartbeats and pongs show the link alive
        for _ in range(100):  # heartbeats and pongs keep an idle link up
            await asyncio.sleep(0.05)
        assert client.stats().connections_opened == 1
        kgw.trigger("stop_pings", duration_ms=3000)
        for _ in range(2000):
            if client.stats().connections_opened == 2 and client.book("BTC/USD").synced:
                break
            await asyncio.sleep(0.01)
        assert client.stats().connections_opened == 2
        await client.wait_synced("BTC/USD", timeout=WAIT_S)
        await assert_books_equal_truth(client, kgw, ["BTC/USD"])


async def test_stall_loses_updates_and_only_that_link_recovers(kgw: Gateway) -> None:
    """A stall shorter than the heartbeat timeout: the updates of that time are lost, the
    next one's checksum shows it, the book re-seeds on the same connection."""
    async with kraken_client(kgw) as client:
        await client.subscribe([BTC])
        await client.wait_synced("BTC/USD", timeout=WAIT_S)
        kgw.trigger("stall", duration_ms=1000)
        for _ in range(3000):
            if client.stats().books[BTC].resyncs == 1 and client.book("BTC/USD").synced:
                break
            await asyncio.sleep(0.01)
        stats = client.stats()
        assert stats.books[BTC].resyncs == 1 and stats.gaps["checksum"] == 1
        assert stats.connections_opened == 1
        await assert_books_equal_truth(client, kgw, ["BTC/USD"])


async def test_unknown_pair_refused_locally(kgw: Gateway) -> None:
    async with kraken_client(kgw) as client:
        res = await client.subscribe(["orderbook:NOPE/USD", BTC])
        assert res.accepted == [BTC] and res.refused == {"orderbook:NOPE/USD": "unknown_instrument"}


def test_watch_venue_kraken_prints_final_books_equal_to_the_truth() -> None:
    async def run() -> None:
        cfg = GatewayConfig(port=0, admin_port=0, seed=7, rate=40.0, dialect="kraken")
        async with Gateway(cfg) as g:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tickpipe", "watch", "--venue", "kraken",
                BTC, "trades:BTC/USD", "--stream-url", g.stream_url, "--rest-url", g.rest_url,
                "--jsonl", "--duration", "6",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert proc.stdout is not None
            lines: list[dict[str, Any]] = []
            async with asyncio.timeout(60):
                for _ in range(100_000):  # the book synced and updated: freeze the market
                    raw = await proc.stdout.readline()
                    assert raw, (await proc.stderr.read()).decode() if proc.stderr else ""
                    lines.append(json.loads(raw))
                    if sum(1 for x in lines if x["event"] == "trade") >= 3 and any(
                        x["event"] == "synced" for x in lines
                    ):
                        break
                g.pause_market()
                out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            lines += [json.loads(x) for x in out.decode().splitlines()]
            final = [x for x in lines if x["event"] == "final_book"]
            assert len(final) == 1 and final[0]["channel"] == BTC
            assert final[0]["synced"] is True and final[0]["seq"] is None
            bids, asks = _truth_lists(g, "BTC/USD")
            n = len(final[0]["bids"])
            assert n > 0 and final[0]["bids"] == bids[:n] and final[0]["asks"] == asks[:n]

    asyncio.run(run())
