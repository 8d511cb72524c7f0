"""The real client on ``venue="coinbase"`` against the reference gateway's Coinbase dialect
(``tickpipe gateway --dialect coinbase``), in-process on 127.0.0.1 port 0.

A Coinbase book has no id of its own: its ``seq`` is the ``sequence_num`` of the last message
applied, per connection. The dialect tells which hub update id that message brought the book to
(``CoinbaseDialect.update_id_at``), and books are compared with the gateway's truth there.
``sequence_num`` counts every message of the connection, so a lost message (of any channel)
re-seeds EVERY book of the connection (by unsubscribing and subscribing each ``level2`` product
again), while tickers and trades keep flowing."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from tickpipe import Client, TickerUpdate, TradeUpdate
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.dialects.coinbase import CoinbaseDialect
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.protocol.sync import SyncConfig
from tickpipe.venues.coinbase.adapter import CoinbaseVenue

from .conftest import FAST_RECONNECT, Recorder

WAIT_S = 20.0  # generous: the machine is shared
BTC, ETH = "orderbook:BTC-USD", "orderbook:ETH-USD"


@pytest.fixture
async def cgw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(
        port=0,
        admin_port=0,
        seed=7,
        rate=40.0,
        dialect="coinbase",
        dialect_options=(("max_connects_per_s", 100), ("max_messages_per_s", 100)),
    )
    async with Gateway(cfg) as g:
        yield g


def cb_client(g: Gateway, venue: str | CoinbaseVenue = "coinbase", **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault(
        "sync",
        SyncConfig(snapshot_retry=BackoffPolicy(base_s=0.05, cap_s=0.3, healthy_after_s=0.0)),
    )
    return Client(venue=venue, stream_url=g.stream_url, rest_url=g.rest_url, **knobs)  # type: ignore[arg-type]


def books_match_truth(client: Client, g: Gateway) -> int:
    """Every synced book equals the truth at the hub id its last message brought it to."""
    d = cast(CoinbaseDialect, g.dialect)
    checked = 0
    for channel, view in client.books().items():
        if not view.synced:
            continue
        assert view.seq is not None
        sym, uid = d.update_id_at(view.seq)
        assert sym == view.symbol, (channel, sym)
        truth = g.true_book(sym, uid)
        inst = truth.instrument
        tb, ta = truth.to_lists()
        want = (
            [[inst.format_price(p), inst.format_size(s)] for p, s in tb],
            [[inst.format_price(p), inst.format_size(s)] for p, s in ta],
        )
        assert view.text_levels(None) == want, f"{channel} differs from the truth at {uid}"
        checked += 1
    return checked


async def _advanced(client: Client, symbol: str) -> None:
    view = await client.wait_synced(symbol, timeout=WAIT_S)
    start = view.seq
    assert start is not None
    for _ in range(2000):
        if view.synced and (view.seq or 0) > start:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{symbol} did not advance")


async def _until(pred: Any, what: str) -> None:
    for _ in range(2000):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(what)


async def test_books_seed_in_band_equal_the_truth_tickers_and_trades_flow(cgw: Gateway) -> None:
    client = cb_client(cgw)
    assert client.stream_url == cgw.stream_url  # Coinbase's stream has no path
    async with client:
        tickers, trades = client.tickers(), client.trades()
        want = [BTC, ETH, "trades:BTC-USD", "ticker:BTC-USD"]
        res = await client.subscribe(want)
        assert sorted(res.accepted) == sorted(want)
        for s in ("BTC-USD", "ETH-USD"):
            await _advanced(client, s)
        assert books_match_truth(client, cgw) == 2
        t = await asyncio.wait_for(tickers.__anext__(), WAIT_S)
        assert isinstance(t, TickerUpdate)
        assert t.channel == "ticker:BTC-USD" and t.bid < t.ask
        tr = await asyncio.wait_for(trades.__anext__(), WAIT_S)
        assert isinstance(tr, TradeUpdate)
        assert tr.channel == "trades:BTC-USD" and tr.side in ("buy", "sell") and tr.size > 0
        stats = client.stats()
        assert sum(stats.gaps.values()) == 0 and stats.connections_opened == 1
        # heartbeats subscribed on open keep the watchdog fed
        hb = cast(CoinbaseDialect, cgw.dialect).stats()["connections"][0]
        assert "heartbeats" in hb["channels"]
        # an unknown product is refused by name, the others untouched
        bad = await client.subscribe("orderbook:NOPE-USD")
        assert bad.refused == {"orderbook:NOPE-USD": "unknown_instrument"}
        res = await client.unsubscribe(ETH)
        assert res.accepted == [ETH] and BTC in client.books() and ETH not in client.books()


@pytest.mark.parametrize("fault", ["drop_delta", "reorder_delta", "malformed_frame"])
async def test_a_lost_message_reseeds_every_book_of_the_connection(
    cgw: Gateway, fault: str
) -> None:
    async with cb_client(cgw) as client:
        trades = client.trades()
        await client.subscribe([BTC, ETH, "trades:ETH-USD"])
        for s in ("BTC-USD", "ETH-USD"):
            await _advanced(client, s)
        cgw.trigger(fault, channel=BTC)
        await _until(
            lambda: (
                all(client.stats().books[c].resyncs == 1 for c in (BTC, ETH))
                and client.book("BTC-USD").synced
                and client.book("ETH-USD").synced
            ),
            "both books re-seeded",
        )
        stats = client.stats()
        assert stats.gaps["seq_gap"] == 2  # one connection gap, every book
        assert stats.connections_opened == 1  # re-seeded on the same connection
        assert cast(CoinbaseVenue, client.venue).gaps == 1
        for s in ("BTC-USD", "ETH-USD"):
            await _advanced(client, s)
        assert books_match_truth(client, cgw) == 2
        # trades kept flowing through it
        tr = await asyncio.wait_for(trades.__anext__(), WAIT_S)
        assert isinstance(tr, TradeUpdate)
        assert tr.channel == "trades:ETH-USD"


async def test_a_duplicate_is_dropped_and_nothing_re_seeds(cgw: Gateway) -> None:
    async with cb_client(cgw) as client:
        await client.subscribe([BTC, ETH])
        for s in ("BTC-USD", "ETH-USD"):
            await _advanced(client, s)
        cgw.trigger("duplicate_delta", channel=BTC)
        venue = cast(CoinbaseVenue, client.venue)
        await _until(lambda: venue.duplicates == 1, "the duplicate dropped")
        await _advanced(client, "BTC-USD")
        stats = client.stats()
        assert stats.resyncs == 0 and sum(stats.gaps.values()) == 0
        assert books_match_truth(client, cgw) == 2


async def test_a_silenced_book_is_flagged_then_resumes_without_a_reseed(cgw: Gateway) -> None:
    async with cb_client(cgw, stale_after_s=0.5) as client:
        rec = Recorder(client)
        await client.subscribe([BTC, ETH])
        for s in ("BTC-USD", "ETH-USD"):
            await _advanced(client, s)
        cgw.trigger("silence_channel", channel=BTC, duration_ms=1500)
        await rec.wait_for("stale", timeout=WAIT_S, channel=BTC, reason="silent")
        await rec.wait_for("active", timeout=WAIT_S, channel=BTC)
        await _advanced(client, "BTC-USD")
        assert rec.named("stale", channel=ETH) == []
        assert client.stats().resyncs == 0
        assert books_match_truth(client, cgw) == 2
        await rec.close()


async def test_disconnect_stale_reconnect_resubscribe_reseed(cgw: Gateway) -> None:
    async with cb_client(cgw) as client:
        rec = Recorder(client)
        await client.subscribe([BTC, "ticker:BTC-USD"])
        await _advanced(client, "BTC-USD")
        cgw.trigger("disconnect", close_frame=False)
        await rec.wait_for("stale", timeout=WAIT_S, channel=BTC)
        await rec.wait_for("reconnecting", timeout=WAIT_S)
        await rec.wait_for(lambda evs: len(rec.named("synced", channel=BTC)) >= 1, WAIT_S)
        await _advanced(client, "BTC-USD")
        assert client.stats().connections_opened == 2
        assert books_match_truth(client, cgw) == 1  # numbered by the new connection
        assert "ticker:BTC-USD" in client.channels
        conns = cast(CoinbaseDialect, cgw.dialect).stats()["connections"]
        assert len(conns) == 1 and "heartbeats" in conns[0]["channels"]
        await rec.close()


async def test_heartbeat_loss_is_detected_while_books_still_flow(cgw: Gateway) -> None:
    venue = CoinbaseVenue(heartbeat_timeout_s=1.0)
    async with cb_client(cgw, venue) as client:
        rec = Recorder(client)
        await client.subscribe([BTC])
        await _advanced(client, "BTC-USD")
        cgw.trigger("stop_pings", duration_ms=3000)
        await rec.wait_for("disconnected", timeout=WAIT_S, reason="heartbeat")
        await rec.wait_for("stale", timeout=WAIT_S, channel=BTC, reason="heartbeat")
        await _until(lambda: client.stats().connections_opened >= 2, "reconnected")
        await _advanced(client, "BTC-USD")
        assert books_match_truth(client, cgw) == 1
        await rec.close()


async def test_watch_venue_coinbase_prints_final_books_equal_to_the_truth(cgw: Gateway) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tickpipe",
        "watch",
        "--venue",
        "coinbase",
        BTC,
        ETH,
        "trades:BTC-USD",
        "--stream-url",
        cgw.stream_url,
        "--rest-url",
        cgw.rest_url,
        "--jsonl",
        "--duration",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(x) for x in out.decode().splitlines()]
    finals = {x["channel"]: x for x in lines if x["event"] == "final_book"}
    assert set(finals) == {BTC, ETH}
    d = cast(CoinbaseDialect, cgw.dialect)
    for channel, f in finals.items():
        assert f["synced"] is True and isinstance(f["seq"], int)
        sym, uid = d.update_id_at(f["seq"])  # the (ended) watch connection's numbering
        assert f"orderbook:{sym}" == channel
        truth = cgw.true_book(sym, uid)
        inst = truth.instrument
        tb, ta = truth.to_lists(len(f["bids"]))
        assert f["bids"] == [[inst.format_price(p), inst.format_size(s)] for p, s in tb]
        assert f["asks"] == [
            [inst.format_price(p), inst.format_size(s)] for p, s in ta[: len(f["asks"])]
        ]
    assert any(x["event"] == "trade" for x in lines)


async def test_reseeds_after_a_gap_keep_within_coinbase_message_rate() -> None:
    """With Coinbase's own 8 messages a second per IP (the dialect's default), a gap on a
    connection with five books re-seeds them all (2 messages each) without one refusal."""
    cfg = GatewayConfig(port=0, admin_port=0, seed=7, rate=40.0, dialect="coinbase")
    channels = [f"orderbook:{s}" for s in ("BTC-USD", "ETH-USD", "SOL-USD", "XAU-USD", "EUR-USD")]
    async with Gateway(cfg) as g, cb_client(g) as client:
        await client.subscribe(channels)
        for ch in channels:
            await _advanced(client, ch.partition(":")[2])
        g.trigger("drop_delta", channel=channels[0])
        await _until(
            lambda: (
                all(client.stats().books[c].resyncs == 1 for c in channels)
                and all(client.books()[c].synced for c in channels)
            ),
            "every book re-seeded",
        )
        d = cast(CoinbaseDialect, g.dialect)
        assert d.stats()["refused"]["messages"] == 0
        assert books_match_truth(client, g) == 5
