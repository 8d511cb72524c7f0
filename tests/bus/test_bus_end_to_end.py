"""The bus end to end, every component real: the reference gateway (VTS/1, faults on demand)
-> a Client with a Collector -> nats-server (JetStream) -> consumer Clients (source=...).
Consumers' books must equal the gateway's truth at their seq, like a direct client's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tickpipe import Client
from tickpipe.bus.collector import Collector, CollectorConfig
from tickpipe.bus.natsserver import NatsServer
from tickpipe.gateway import Gateway

from ..integration.conftest import (
    FAST_RECONNECT,
    Recorder,
    assert_books_match_truth,
    gateway_config,
    make_client,
)

BOOKS = ["AAPL", "MSFT", "BTC-USD"]
CHANNELS = [f"orderbook:{s}" for s in BOOKS] + ["ticker:AAPL", "trades:BTC-USD"]
WAIT_S = 20.0


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async with Gateway(gateway_config(rate=60.0)) as g:
        yield g


@asynccontextmanager
async def collector_for(
    gw: Gateway, nats: NatsServer, **kw: Any
) -> AsyncIterator[tuple[Client, Collector]]:
    client = make_client(gw)
    events: list[dict[str, Any]] = []
    col = Collector(client, nats.url, CollectorConfig(**kw), on_event=events.append)
    await col.start()
    try:
        async with client:
            await client.subscribe(CHANNELS)
            for s in BOOKS:
                await client.wait_synced(s, timeout=WAIT_S)
            yield client, col
    finally:
        await col.close()


def consumer(nats: NatsServer, **kw: Any) -> Client:
    return Client(source=nats.url, venue="vts", reconnect=FAST_RECONNECT, **kw)


async def all_synced(c: Client) -> None:
    for s in BOOKS:
        await c.wait_synced(s, timeout=WAIT_S)


async def settle(src: Client, dst: Client) -> None:
    """Until each consumer book is at the collector's seq (the flow is live: bounded)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            src_seqs = {s: src.book(s).seq for s in BOOKS}
            if all(dst.book(s).synced and dst.book(s).seq == src_seqs[s] for s in BOOKS):
                return
            await asyncio.sleep(0.01)


async def test_consumers_rebuild_books_equal_to_the_truth(
    gw: Gateway, nats_server: NatsServer
) -> None:
    async with collector_for(gw, nats_server) as (src, col):
        async with consumer(nats_server) as c1, consumer(nats_server) as c2:
            rec = Recorder(c1)
            res = await c1.subscribe(CHANNELS)
            assert sorted(res.accepted) == sorted(CHANNELS)
            await c2.subscribe(CHANNELS)
            await all_synced(c1)
            await all_synced(c2)
            await asyncio.sleep(1.0)  # deltas flow
            assert assert_books_match_truth(c1, gw) == len(BOOKS)
            assert assert_books_match_truth(c2, gw) == len(BOOKS)
            # gateway faults: the collector re-seeds its book; consumers follow its reset Snap
            for fault in ("drop_delta", "bad_checksum"):
                gw.trigger(fault, channel="orderbook:AAPL")
                await asyncio.sleep(1.0)
                await src.wait_synced("AAPL", timeout=WAIT_S)
            await asyncio.sleep(0.5)
            await all_synced(c1)
            assert assert_books_match_truth(c1, gw) == len(BOOKS)
            # the consumer saw the collector's book go not synced, then synced again
            assert rec.named("stale", channel="orderbook:AAPL")
            assert len(rec.named("synced", channel="orderbook:AAPL")) >= 3
            assert not rec.named("gap")  # nothing lost on the bus itself
            assert c1.stats().latency_p50_ms is not None
            # tickers and trades come through as from a direct connection
            assert c1.stats().channel_seqs.get("ticker:AAPL") is not None
            await rec.close()
        assert col.dropped == 0
        assert col.published["delta"] > 10


async def test_a_late_consumer_seeds_from_the_bus_and_the_venue_is_never_asked(
    gw: Gateway, nats_server: NatsServer
) -> None:
    async with collector_for(gw, nats_server, snapshot_every_s=0.5) as (_src, _col):
        await asyncio.sleep(2.0)  # several periodic snapshots and many deltas before it joins
        async with consumer(nats_server) as c:
            await c.subscribe(CHANNELS)
            await all_synced(c)
            await asyncio.sleep(0.5)
            assert assert_books_match_truth(c, gw) == len(BOOKS)
            assert gw.stats()["connections"] == 1  # the collector's: the consumer read the bus
            assert c.stats().snapshot_errors == 0


async def test_messages_lost_before_the_bus_reseed_books_from_the_bus(
    gw: Gateway, nats_server: NatsServer
) -> None:
    # a queue of one message: the collector drops (its read path never waits), and publishes a
    # reset Snap of each book it dropped from once it has room: consumers re-seed from those
    async with (
        collector_for(gw, nats_server, queue_size=2) as (_src, col),
        consumer(nats_server) as c,
    ):
        rec = Recorder(c)
        await c.subscribe(CHANNELS)
        await asyncio.sleep(3.0)
        assert col.dropped > 0
        assert col.resets > 0
        # each hole is followed by the book's reset Snap (or shows as a gap, then a re-seed)
        assert len(rec.named("synced")) > len(BOOKS)
        assert_books_match_truth(c, gw)  # whatever is synced now is exact
        await rec.close()


async def test_collector_death_blinds_consumers_and_a_new_collector_heals_them(
    gw: Gateway, nats_server: NatsServer
) -> None:
    c = consumer(nats_server, first_connect_timeout_s=10.0)
    async with collector_for(gw, nats_server, heartbeat_every_s=0.2):
        await c.start()
        rec = Recorder(c)
        await c.subscribe(CHANNELS)
        await all_synced(c)
    # the collector is gone: no heartbeat for 2.5 intervals -> blind, books stale
    await rec.wait_for("disconnected", timeout=WAIT_S, reason="heartbeat")
    assert all(not c.book(s).synced for s in BOOKS)
    async with collector_for(gw, nats_server, heartbeat_every_s=0.2):
        await all_synced(c)  # reconnected (backoff), re-subscribed, re-seeded from the bus
        await asyncio.sleep(0.5)
        assert assert_books_match_truth(c, gw) == len(BOOKS)
    await rec.close()
    await c.close()
