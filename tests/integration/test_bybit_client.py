"""The real client on ``venue="bybit"`` (spot) and ``venue="bybit-linear"`` against the
reference gateway's Bybit dialect (``tickpipe gateway --dialect bybit``), in-process on
127.0.0.1 port 0 (and through ``tickpipe watch`` in a subprocess). Books are compared with the
gateway's truth (top 200 levels, Bybit's depth) at the hub seq the dialect maps the book's
``u`` to; each fault re-seeds only the book it hit, by re-subscribing that one topic."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tickpipe import Client
from tickpipe.client.dispatch import TickerUpdate, TradeUpdate
from tickpipe.client.events import ClientEvent
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.dialects.bybit import BybitDialect
from tickpipe.gateway.testing import GatewayProcess
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.protocol.sync import SyncConfig
from tickpipe.venues.bybit.adapter import BybitLinearVenue, BybitVenue

from .conftest import FAST_RECONNECT, Recorder

WAIT_S = 20.0  # generous: the machine is shared
BTC, ETH = "orderbook:BTCUSDT", "orderbook:ETHUSDT"
VENUES = ["bybit", "bybit-linear"]


@pytest.fixture
async def ygw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(port=0, admin_port=0, seed=7, rate=40.0, dialect="bybit")
    async with Gateway(cfg) as g:
        yield g


def bybit_client(g: Gateway, venue: str | BybitVenue = "bybit", **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault(
        "sync",
        SyncConfig(snapshot_retry=BackoffPolicy(base_s=0.05, cap_s=0.3, healthy_after_s=0.0)),
    )
    return Client(venue=venue, stream_url=g.stream_url, rest_url=g.rest_url, **knobs)


def dialect(g: Gateway) -> BybitDialect:
    assert isinstance(g.dialect, BybitDialect)
    return g.dialect


def assert_books_match_truth(client: Client, g: Gateway) -> int:
    """Every synced book equals the top 200 of the gateway's truth at its ``u``."""
    checked = 0
    for channel, view in client.books().items():
        if not view.synced:
            continue
        assert view.seq is not None
        truth = g.true_book(view.symbol, dialect(g).hub_seq(view.symbol, view.seq))
        inst = truth.instrument
        tb, ta = truth.to_lists(200)
        want = (
            [[inst.format_price(p), inst.format_size(s)] for p, s in tb],
            [[inst.format_price(p), inst.format_size(s)] for p, s in ta],
        )
        assert view.text_levels(None) == want, f"{channel} differs from the truth at u {view.seq}"
        checked += 1
    return checked


async def until(pred: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    for _ in range(int(timeout / 0.01)):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def advanced(client: Client, symbol: str) -> None:
    """The book is LIVE and moved past the ``u`` it synced at."""
    view = await client.wait_synced(symbol, timeout=WAIT_S)
    start = view.seq
    assert start is not None
    await until(lambda: view.synced and (view.seq or 0) > start, f"{symbol} to advance")


@pytest.mark.parametrize("venue", VENUES)
async def test_books_seed_in_band_equal_the_truth_tickers_trades_flow(
    ygw: Gateway, venue: str
) -> None:
    client = bybit_client(ygw, venue)
    path = "/v5/public/spot" if venue == "bybit" else "/v5/public/linear"
    assert client.stream_url == ygw.stream_url + path  # the documented path appended
    async with client:
        tickers, trades = client.tickers(), client.trades()
        chans = [BTC, ETH, "ticker:BTCUSDT", "trades:BTCUSDT"]
        res = await client.subscribe(chans)
        assert sorted(res.accepted) == sorted(chans)
        for s in ("BTCUSDT", "ETHUSDT"):
            await advanced(client, s)
        assert assert_books_match_truth(client, ygw) == 2
        async with asyncio.timeout(WAIT_S):
            tick = await anext(tickers)
            trade = await anext(trades)
        assert isinstance(tick, TickerUpdate) and isinstance(trade, TradeUpdate)
        assert tick.symbol == "BTCUSDT" and tick.last is not None
        if venue == "bybit":  # Bybit's spot tickers carry no best bid/ask
            assert tick.bid is None and tick.ask is None
        else:  # linear deltas merged onto the snapshot: always whole
            assert tick.bid is not None and tick.ask is not None and tick.bid < tick.ask
        assert trade.symbol == "BTCUSDT" and trade.price > 0
        stats = client.stats()
        assert sum(stats.gaps.values()) == 0 and stats.bad_frames == 0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("drop_delta", "seq_gap"), ("reorder_delta", "seq_gap"), ("malformed_frame", "bad_frame")],
)
async def test_a_fault_reseeds_only_that_book(ygw: Gateway, fault: str, reason: str) -> None:
    async with bybit_client(ygw, "bybit-linear") as client:
        await client.subscribe([BTC, ETH])
        for s in ("BTCUSDT", "ETHUSDT"):
            await advanced(client, s)
        ygw.trigger(fault, channel=BTC)
        await until(
            lambda: client.stats().books[BTC].resyncs == 1 and client.book("BTCUSDT").synced,
            "BTC re-seeded",
        )
        stats = client.stats()
        assert stats.gaps[reason] == 1
        assert stats.books[ETH].resyncs == 0 and stats.connections_opened == 1
        await advanced(client, "BTCUSDT")
        assert assert_books_match_truth(client, ygw) == 2


@pytest.mark.parametrize("venue", VENUES)
async def test_venue_restart_u1_resets_that_book_and_stays_exact(ygw: Gateway, venue: str) -> None:
    async with bybit_client(ygw, venue) as client:
        await client.subscribe([BTC, ETH])
        for s in ("BTCUSDT", "ETHUSDT"):
            await advanced(client, s)
        before = client.book("BTCUSDT").seq
        assert before is not None and before > 1000
        ygw.trigger("venue_restart", channel=BTC)
        view = client.book("BTCUSDT")
        await until(lambda: view.synced and (view.seq or 0) in range(3, 1000), "u from 1 on")
        stats = client.stats()
        assert sum(stats.gaps.values()) == 0  # a reset, not a gap: no re-subscribe
        assert stats.books[BTC].resyncs == 0 and stats.books[ETH].resyncs == 0
        assert assert_books_match_truth(client, ygw) == 2


async def test_disconnect_stale_reconnect_resubscribe_reseed(ygw: Gateway) -> None:
    async with bybit_client(ygw) as client:
        rec = Recorder(client)
        await client.subscribe([BTC, ETH, "trades:BTCUSDT"])
        for s in ("BTCUSDT", "ETHUSDT"):
            await advanced(client, s)
        ygw.trigger("disconnect", close_frame=False)
        await rec.wait_for("stale", timeout=WAIT_S, channel=BTC)
        await rec.wait_for(
            lambda evs: len([e for e in evs if e.name == "synced"]) >= 4, timeout=WAIT_S
        )
        for s in ("BTCUSDT", "ETHUSDT"):
            await advanced(client, s)
        assert client.stats().connections_opened == 2
        assert assert_books_match_truth(client, ygw) == 2
        await rec.close()


def _heartbeat_lost(evs: list[ClientEvent]) -> bool:
    return any(e.name == "disconnected" and getattr(e, "reason", "") == "heartbeat" for e in evs)


@pytest.mark.parametrize("stop_pongs", [False, True])
async def test_no_pong_on_a_quiet_connection_is_heartbeat_loss(
    ygw: Gateway, stop_pongs: bool
) -> None:
    # pings every 0.2 s, a pong due within 0.3 s: a link without any frame for 0.5 s is dead
    venue = BybitLinearVenue(client_ping_interval_s=0.2, pong_timeout_s=0.3)
    async with bybit_client(ygw, venue) as client:
        rec = Recorder(client)
        await client.subscribe(["ticker:BTCUSDT"])
        ygw.trigger("silence_channel", channel="ticker:BTCUSDT")  # only pongs flow now
        if stop_pongs:
            ygw.trigger("stop_pings", duration_ms=60_000)
            await rec.wait_for(_heartbeat_lost, timeout=WAIT_S)
        else:
            await asyncio.sleep(2.0)  # four timeouts long: the pongs keep the link alive
            assert not _heartbeat_lost(rec.events)
            assert client.stats().connections_opened == 1
        await rec.close()


async def test_spot_request_of_more_than_10_topics_is_split(ygw: Gateway) -> None:
    symbols = list(ygw.hub.markets)[:6]
    chans = [f"{k}:{s}" for s in symbols for k in ("ticker", "trades")]
    assert len(chans) == 12
    async with bybit_client(ygw) as client:
        res = await client.subscribe(chans)
        assert sorted(res.accepted) == sorted(chans) and not res.refused
        (conn,) = dialect(ygw).conns.values()
        assert sorted(conn.subscribed) == sorted(chans)


def _get(url: str, token: str) -> Any:
    req = urllib.request.Request(url, headers={"X-Admin-Token": token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_watch_venue_bybit_linear_prints_final_books_equal_to_the_truth() -> None:
    with GatewayProcess("--dialect", "bybit") as gp:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "tickpipe",
                "watch",
                "--venue",
                "bybit-linear",
                "orderbook:BTCUSDT",
                "trades:BTCUSDT",
                "ticker:BTCUSDT",
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
        (final,) = [x for x in lines if x["event"] == "final_book"]
        assert final["channel"] == "orderbook:BTCUSDT" and final["synced"] is True
        stats = _get(gp.admin_url + "/admin/stats", gp.admin_token)
        u_seq = dict(map(tuple, stats["dialect"]["books"]["BTCUSDT"]["u_seq"]))
        seq = u_seq[final["seq"]]
        truth = _get(f"{gp.admin_url}/admin/book/BTCUSDT?seq={seq}&depth=10", gp.admin_token)
    assert final["bids"] == truth["bids"] and final["asks"] == truth["asks"]
    assert any(x["event"] == "trade" for x in lines)
    assert any(x["event"] == "ticker" for x in lines)


async def test_silent_book_flagged_stale_then_resumes_gap_free(ygw: Gateway) -> None:
    async with bybit_client(ygw, stale_after_s=0.5) as client:
        rec = Recorder(client)
        await client.subscribe([BTC, ETH])
        for s in ("BTCUSDT", "ETHUSDT"):
            await advanced(client, s)
        ygw.trigger("silence_channel", channel=BTC)
        await rec.wait_for("stale", timeout=WAIT_S, channel=BTC, reason="silent")
        assert not client.book("BTCUSDT").usable() and client.book("ETHUSDT").usable()
        assert rec.named("stale", channel=ETH) == []
        ygw.set_faults(silence_channel=[])
        await rec.wait_for("active", timeout=WAIT_S, channel=BTC)
        await advanced(client, "BTCUSDT")
        assert sum(client.stats().gaps.values()) == 0  # the merged changes follow on u
        assert assert_books_match_truth(client, ygw) == 2
        await rec.close()


async def test_stalled_socket_is_heartbeat_loss_then_reconnect_and_reseed(ygw: Gateway) -> None:
    venue = BybitVenue(client_ping_interval_s=0.2, pong_timeout_s=0.3)
    async with bybit_client(ygw, venue) as client:
        rec = Recorder(client)
        await client.subscribe([BTC, ETH])
        for s in ("BTCUSDT", "ETHUSDT"):
            await advanced(client, s)
        ygw.trigger("stall", duration_ms=60_000)  # the TCP connection stays open, silent
        await rec.wait_for(_heartbeat_lost, timeout=WAIT_S)
        await until(lambda: client.stats().connections_opened == 2, "a new connection")
        for s in ("BTCUSDT", "ETHUSDT"):
            await advanced(client, s)
        assert assert_books_match_truth(client, ygw) == 2
        await rec.close()
