"""Rotation before a venue's forced disconnect: the real client on ``venue="binance"`` against
``tickpipe gateway --dialect binance`` whose connections are cut at ``max_connection_age_s``
(a few seconds here, Binance's 24 h in production). The client opens the next connection before
the cut, hands every channel over and closes the old one itself: no book goes stale or gaps."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tickpipe import Client
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.venues.binance.adapter import BinanceSpotVenue
from tickpipe.venues.binance.limits import SPOT_LIMITS
from tickpipe.venues.okx.adapter import OkxVenue

from .conftest import FAST_RECONNECT, Recorder, assert_books_match_truth

MAX_AGE_S = 5.0  # the dialect cuts every connection at this age
MARGIN_S = 2.0  # the client rotates this long before it
WAIT_S = 30.0  # generous: the machine is shared
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.fixture
async def cut_gw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(
        port=0,
        admin_port=0,
        seed=11,
        rate=40.0,
        dialect="binance",
        dialect_options=(("max_connection_age_s", MAX_AGE_S),),
    )
    async with Gateway(cfg) as g:
        yield g


def short_lived_binance() -> BinanceSpotVenue:
    """The Binance adapter, told the venue's cut comes at MAX_AGE_S (as the dialect does)."""
    limits = dataclasses.replace(SPOT_LIMITS, ws_connection_lifetime_s=MAX_AGE_S)
    return BinanceSpotVenue(limits=limits)


def disconnects(g: Gateway) -> dict[str, int]:
    stats = g.dialect.stats() if g.dialect is not None else {}
    return dict(stats["disconnects"])


async def wait_rotations(client: Client, n: int) -> None:
    async with asyncio.timeout(WAIT_S):
        while client.stats().rotations < n:
            await asyncio.sleep(0.05)


async def test_three_rotations_books_stay_live_and_exact(cut_gw: Gateway) -> None:
    client = Client(
        venue=short_lived_binance(),
        stream_url=cut_gw.stream_url,
        rest_url=cut_gw.rest_url,
        reconnect=FAST_RECONNECT,
        snapshot_jitter_s=0.02,
        rotation_margin_s=MARGIN_S,
    )
    async with client:
        rec = Recorder(client)
        channels = [f"orderbook:{s}" for s in SYMBOLS] + ["ticker:BTCUSDT", "trades:BTCUSDT"]
        res = await client.subscribe(channels)
        assert sorted(res.accepted) == sorted(channels)
        for s in SYMBOLS:
            await client.wait_synced(s, timeout=WAIT_S)
        snapshots_before = client.stats().snapshot_requests
        await wait_rotations(client, 3)
        await asyncio.sleep(0.5)  # updates applied on the third connection
        # never blind, never re-seeded: no stale, no gap, no disconnect, one synced per book
        for name in ("stale", "gap", "disconnected", "reconnecting"):
            assert rec.named(name) == [], rec.named(name)
        for s in SYMBOLS:  # the first seed only
            assert len(rec.named("synced", channel=f"orderbook:{s}")) == 1
        assert client.stats().snapshot_requests == snapshots_before  # no snapshot spent
        for s in SYMBOLS:
            assert client.book(s).state == "live"
        assert assert_books_match_truth(client, cut_gw) == len(SYMBOLS)
        # every old connection was closed by the client, none by the venue's cut
        gone = disconnects(cut_gw)
        assert gone.get("max_age", 0) == 0, gone
        assert gone.get("client closed", 0) >= 3, gone
        assert client.stats().connections_opened >= 4
        # tickers and trades kept flowing on the new connection
        t = await asyncio.wait_for(client.tickers().__anext__(), WAIT_S)
        assert getattr(t, "channel", None) == "ticker:BTCUSDT"
        await rec.close()


async def test_without_rotation_the_cut_blinds_books(cut_gw: Gateway) -> None:
    """The same gateway, a client told nothing of the cut: it goes blind (what rotation
    prevents; this shows the test above can fail)."""
    client = Client(
        venue="binance",
        stream_url=cut_gw.stream_url,
        rest_url=cut_gw.rest_url,
        reconnect=FAST_RECONNECT,
        snapshot_jitter_s=0.02,
    )
    async with client:
        rec = Recorder(client)
        await client.subscribe(["orderbook:BTCUSDT"])
        await client.wait_synced("BTCUSDT", timeout=WAIT_S)
        await rec.wait_for("stale", timeout=WAIT_S, channel="orderbook:BTCUSDT")
        assert client.stats().rotations == 0
        assert disconnects(cut_gw).get("max_age", 0) >= 1
        await rec.close()


async def test_okx_in_band_rotation_joins_books_by_seq_id() -> None:
    """OKX seeds in band; its books are joined on the new connection by ``prevSeqId`` (the
    new subscription's snapshot is not used): no stale, no gap, no re-seed."""
    cfg = GatewayConfig(port=0, admin_port=0, seed=5, rate=40.0, dialect="okx")
    async with Gateway(cfg) as g:
        venue = OkxVenue()
        venue.max_connection_age_s = 3.0  # OKX has no periodic cut: rehearse one
        kw: dict[str, Any] = {"reconnect": FAST_RECONNECT, "rotation_margin_s": 1.0}
        async with Client(venue=venue, stream_url=g.stream_url, rest_url=g.rest_url, **kw) as c:
            syms = ["BTC-USDT", "ETH-USDT"]
            await c.subscribe([f"orderbook:{s}" for s in syms])
            for s in syms:
                await c.wait_synced(s, timeout=WAIT_S)
            rec = Recorder(c)  # from here on: the rotations only
            await asyncio.sleep(0.2)  # the first seeds' events are drained first
            rec.events.clear()
            resubs = c._sup.resubscribes if c._sup is not None else 0
            await wait_rotations(c, 2)
            await asyncio.sleep(0.5)
            for name in ("stale", "gap", "synced", "disconnected"):
                assert rec.named(name) == [], rec.named(name)
            for s in syms:
                assert c.book(s).state == "live"
            assert c._sup is not None and c._sup.resubscribes == resubs
            assert assert_books_match_truth(c, g) == len(syms)
            await rec.close()


async def test_server_shutdown_notice_rotates_at_once() -> None:
    """Binance's ``serverShutdown`` (the ``Closing`` value) on a connection the venue keeps
    24 h: the client rotates now, books stay live, the noticed connection is closed by it."""
    cfg = GatewayConfig(port=0, admin_port=0, seed=13, rate=40.0, dialect="binance")
    async with Gateway(cfg) as g:
        kw: dict[str, Any] = {"reconnect": FAST_RECONNECT, "snapshot_jitter_s": 0.02}
        async with Client(venue="binance", stream_url=g.stream_url, rest_url=g.rest_url, **kw) as c:
            await c.subscribe(["orderbook:BTCUSDT", "orderbook:ETHUSDT"])
            for s in ("BTCUSDT", "ETHUSDT"):
                await c.wait_synced(s, timeout=WAIT_S)
            rec = Recorder(c)
            await asyncio.sleep(0.2)
            rec.events.clear()
            dialect: Any = g.dialect
            (conn,) = dialect.conns.values()
            conn.enqueue(dialect.codec.encode_server_shutdown(time.time_ns()))
            await wait_rotations(c, 1)
            await asyncio.sleep(0.5)
            for name in ("stale", "gap", "synced", "disconnected"):
                assert rec.named(name) == [], rec.named(name)
            assert disconnects(g).get("client closed", 0) == 1
            assert [x.id for x in dialect.conns.values()] != [conn.id]  # a new one carries on
            assert assert_books_match_truth(c, g) == 2
            await rec.close()


async def test_quiet_book_moves_at_the_deadline_without_a_reseed(cut_gw: Gateway) -> None:
    """A book with no update during the handover cannot be joined by ids: at
    ``rotation_handover_timeout_s`` it moves anyway (its next update is checked as any), and
    the rotation still ends before the venue's cut."""
    client = Client(
        venue=short_lived_binance(),
        stream_url=cut_gw.stream_url,
        rest_url=cut_gw.rest_url,
        reconnect=FAST_RECONNECT,
        snapshot_jitter_s=0.02,
        rotation_margin_s=MARGIN_S,
        rotation_handover_timeout_s=0.5,
    )
    async with client:
        await client.subscribe(["orderbook:BTCUSDT", "orderbook:ETHUSDT"])
        for s in ("BTCUSDT", "ETHUSDT"):
            await client.wait_synced(s, timeout=WAIT_S)
        rec = Recorder(client)
        await asyncio.sleep(0.2)
        rec.events.clear()
        cut_gw.trigger("silence_channel", channel="orderbook:ETHUSDT")
        await wait_rotations(client, 1)
        cut_gw.set_faults(silence_channel=[])  # it speaks again: gap-free (merged changes)
        await asyncio.sleep(1.0)
        for name in ("stale", "gap", "synced", "disconnected"):
            assert rec.named(name) == [], rec.named(name)
        assert disconnects(cut_gw).get("max_age", 0) == 0
        assert client.book("ETHUSDT").state == "live"
        assert assert_books_match_truth(client, cut_gw) == 2
        await rec.close()


async def test_cut_during_the_handover_promotes_the_new_connection(cut_gw: Gateway) -> None:
    """The venue cuts the old connection before every channel moved (a quiet book keeps the
    handover open): the new connection takes over there and then, nothing goes blind."""
    client = Client(
        venue=short_lived_binance(),
        stream_url=cut_gw.stream_url,
        rest_url=cut_gw.rest_url,
        reconnect=FAST_RECONNECT,
        snapshot_jitter_s=0.02,
        rotation_margin_s=MARGIN_S,
        rotation_handover_timeout_s=WAIT_S,  # longer than the cut: the cut ends the handover
    )
    async with client:
        await client.subscribe(["orderbook:BTCUSDT", "orderbook:ETHUSDT"])
        for s in ("BTCUSDT", "ETHUSDT"):
            await client.wait_synced(s, timeout=WAIT_S)
        rec = Recorder(client)
        await asyncio.sleep(0.2)
        rec.events.clear()
        cut_gw.trigger("silence_channel", channel="orderbook:ETHUSDT")
        await wait_rotations(client, 1)
        async with asyncio.timeout(WAIT_S):  # the venue's cut ended it
            while disconnects(cut_gw).get("max_age", 0) < 1:
                await asyncio.sleep(0.05)
        cut_gw.set_faults(silence_channel=[])
        await asyncio.sleep(1.0)
        for name in ("stale", "gap", "synced", "disconnected", "reconnecting"):
            assert rec.named(name) == [], rec.named(name)
        assert client.connected
        assert assert_books_match_truth(client, cut_gw) == 2
        await rec.close()
