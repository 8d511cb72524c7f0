"""A bus consumer through failures, every component real: the active collector killed with a
standby running, a NATS node killed under a replicas-3 stream, a consumer too slow for the
flow. Books must end equal to the gateway's truth, and no failure may slow the collector."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.bus.helpers import wait_until
from tests.integration.conftest import (
    FAST_RECONNECT,
    Recorder,
    assert_books_match_truth,
    gateway_config,
    make_client,
)
from tickpipe import Client
from tickpipe.bus.collector import Collector, CollectorConfig
from tickpipe.bus.natsserver import NatsCluster, NatsServer
from tickpipe.bus.streams import StreamSettings
from tickpipe.gateway import Gateway

BOOKS = ["AAPL", "MSFT", "BTC-USD"]
CHANNELS = [f"orderbook:{s}" for s in BOOKS]
WAIT_S = 30.0


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async with Gateway(gateway_config(rate=40.0)) as g:
        yield g


@asynccontextmanager
async def collector(
    gw: Gateway, servers: str, **cfg: Any
) -> AsyncIterator[tuple[Client, Collector]]:
    client = make_client(gw)
    col = Collector(client, servers, CollectorConfig(**cfg), on_event=lambda ev: None)
    await col.start()
    try:
        async with client:
            await client.subscribe(CHANNELS)
            yield client, col
    finally:
        await col.close(release=False)


async def synced(c: Client) -> None:
    for s in BOOKS:
        await c.wait_synced(s, timeout=WAIT_S)


async def test_killing_the_active_collector_fails_over_to_the_standby(
    gw: Gateway, nats_server: NatsServer
) -> None:
    lease = 1.0
    cfg: dict[str, Any] = {"group": "g", "lease_s": lease, "heartbeat_every_s": 0.2}
    a_ctx = collector(gw, nats_server.url, **cfg)
    _a_client, a = await a_ctx.__aenter__()
    a_alive = True
    try:
        await wait_until(lambda: a.active, timeout=WAIT_S)
        async with collector(gw, nats_server.url, **cfg) as (_b_client, b):
            consumer = Client(source=nats_server.url, venue="vts", reconnect=FAST_RECONNECT)
            async with consumer:
                rec = Recorder(consumer)
                await consumer.subscribe(CHANNELS)
                await synced(consumer)
                assert not b.active
                t0 = time.monotonic()
                a_alive = False
                await a_ctx.__aexit__(None, None, None)  # dies; its lease expires
                await wait_until(lambda: b.active, timeout=lease * 5)
                await rec.wait_for("disconnected", timeout=WAIT_S)  # no heartbeat meanwhile
                await synced(consumer)  # back, re-seeded from the standby's reset Snaps
                blind_s = time.monotonic() - t0
                await asyncio.sleep(0.5)
                assert assert_books_match_truth(consumer, gw) == len(BOOKS)
                # lease + the watchdog + a reconnect: a few seconds, not a book lost for good
                assert blind_s < WAIT_S
                print(f"books back {blind_s:.2f} s after the active died (lease {lease}s)")
                await rec.close()
    finally:
        if a_alive:
            await a_ctx.__aexit__(None, None, None)


@pytest.mark.slow
async def test_killing_a_nats_node_loses_nothing(gw: Gateway, nats_cluster: NatsCluster) -> None:
    async with collector(
        gw, nats_cluster.urls, stream=StreamSettings(replicas=3), heartbeat_every_s=0.5
    ) as (_src, col):
        consumer = Client(
            source=nats_cluster.urls, venue="vts", reconnect=FAST_RECONNECT,
            first_connect_timeout_s=WAIT_S,
        )  # fmt: skip
        async with consumer:
            await consumer.subscribe(CHANNELS)
            await synced(consumer)
            nats_cluster.kill(0)  # whichever role it had: a route, a stream replica, a leader
            await asyncio.sleep(3.0)
            await synced(consumer)
            await asyncio.sleep(1.0)
            assert assert_books_match_truth(consumer, gw) == len(BOOKS)
        # nothing the collector queued was dropped: retried through the election instead
        assert col.dropped == 0


async def test_a_slow_consumer_never_slows_the_collector(
    gw: Gateway, nats_server: NatsServer
) -> None:
    async with collector(gw, nats_server.url) as (src, col):
        fast = Client(source=nats_server.url, venue="vts", reconnect=FAST_RECONNECT)
        slow_loop_blocked = asyncio.Event()
        async with fast:
            await fast.subscribe(CHANNELS)
            await synced(fast)
            # a slow consumer in another thread: its event loop is blocked 90 % of the time
            done = asyncio.Event()
            result: dict[str, Any] = {}
            loop = asyncio.get_running_loop()

            async def slow_consumer() -> None:
                async with Client(source=nats_server.url, venue="vts") as c:
                    await c.subscribe(CHANNELS)
                    await synced(c)
                    loop.call_soon_threadsafe(slow_loop_blocked.set)
                    lagged = False
                    for _ in range(20):
                        time.sleep(0.09)  # the whole loop stalls, as a CPU-bound bot's would
                        lagged |= any(src.book(s).seq != c.book(s).seq for s in BOOKS)
                        await asyncio.sleep(0.01)
                    result["lagged"] = lagged
                    # unblocked: it catches up from the stream and stays exact
                    end = time.monotonic() + WAIT_S
                    while time.monotonic() < end:
                        lag = [src.book(s).seq != c.book(s).seq for s in BOOKS]
                        if not any(lag) and all(c.book(s).synced for s in BOOKS):
                            break
                        await asyncio.sleep(0.01)
                    result["books"] = {
                        s: (c.book(s).seq, c.book(s).text_levels(None)) for s in BOOKS
                    }
                loop.call_soon_threadsafe(done.set)

            thread = asyncio.get_running_loop().run_in_executor(
                None, lambda: asyncio.run(slow_consumer())
            )
            await asyncio.wait_for(slow_loop_blocked.wait(), WAIT_S)
            q_max = 0
            published0 = col.published["delta"]
            t0 = time.monotonic()
            while not done.is_set():
                q_max = max(q_max, col.queue_depth)
                await asyncio.sleep(0.01)
                if time.monotonic() - t0 > WAIT_S * 2:
                    break
            await thread
            assert result["lagged"]  # it did fall behind the collector
            # the collector kept up: nothing dropped, its queue never backed up, the fast
            # consumer stayed current
            assert col.dropped == 0
            assert q_max < 1000, q_max
            assert col.published["delta"] > published0
            for s in BOOKS:
                truth = gw.true_book(s, result["books"][s][0])
                inst = truth.instrument
                tb, ta = truth.to_lists()
                want = (
                    [[inst.format_price(p), inst.format_size(q)] for p, q in tb],
                    [[inst.format_price(p), inst.format_size(q)] for p, q in ta],
                )
                assert result["books"][s][1] == want
            assert assert_books_match_truth(fast, gw) == len(BOOKS)


async def test_symbols_sharded_over_collectors_a_lost_one_stales_only_its_books(
    gw: Gateway, nats_server: NatsServer
) -> None:
    shard_a, shard_b = ["orderbook:AAPL", "orderbook:MSFT"], ["orderbook:BTC-USD"]

    @asynccontextmanager
    async def shard(channels: list[str]) -> AsyncIterator[Collector]:
        client = make_client(gw)
        col = Collector(
            client, nats_server.url, CollectorConfig(heartbeat_every_s=0.2),
            on_event=lambda ev: None,
        )  # fmt: skip
        await col.start()
        async with client:
            await client.subscribe(channels)
            try:
                yield col
            finally:  # as a crash: the collector goes first, no farewell State on the bus
                await col.close(release=False)

    consumer = Client(source=nats_server.url, venue="vts", reconnect=FAST_RECONNECT)
    async with shard(shard_b):
        a_ctx = shard(shard_a)
        await a_ctx.__aenter__()
        a_open = True
        try:
            async with consumer:
                rec = Recorder(consumer)
                res = await consumer.subscribe(CHANNELS)
                assert sorted(res.accepted) == sorted(CHANNELS)  # both shards' channels
                await synced(consumer)
                a_open = False
                await a_ctx.__aexit__(None, None, None)  # shard A's collector dies
                await rec.wait_for("stale", timeout=WAIT_S, channel="orderbook:AAPL")
                await rec.wait_for("stale", timeout=WAIT_S, channel="orderbook:MSFT")
                stale = rec.named("stale", channel="orderbook:AAPL")
                assert stale[0].reason == "collector_lost"  # type: ignore[attr-defined]
                assert consumer.book("BTC-USD").synced  # shard B's book never left
                assert not rec.named("disconnected")  # the link stayed up for shard B
                # shard A comes back (a new collector): its reset Snaps re-seed the books
                async with shard(shard_a):
                    await synced(consumer)
                    await asyncio.sleep(0.3)
                    assert assert_books_match_truth(consumer, gw) == len(BOOKS)
                assert not rec.named("stale", channel="orderbook:BTC-USD")
                await rec.close()
        finally:
            if a_open:
                await a_ctx.__aexit__(None, None, None)


async def test_a_nats_restart_and_the_consumer_comes_back_exact(
    gw: Gateway, nats_server: NatsServer
) -> None:
    async with collector(gw, nats_server.url, heartbeat_every_s=0.2) as (_src, col):
        consumer = Client(source=nats_server.url, venue="vts", reconnect=FAST_RECONNECT)
        async with consumer:
            rec = Recorder(consumer)
            await consumer.subscribe(CHANNELS)
            await synced(consumer)
            nats_server.stop()
            await rec.wait_for("disconnected", timeout=WAIT_S)  # no heartbeat: blind
            assert all(not consumer.book(s).synced for s in BOOKS)
            nats_server.restart()  # same port, same store: the stream is still there
            await synced(consumer)  # reconnected, re-subscribed, re-seeded from the bus
            await asyncio.sleep(0.5)
            assert assert_books_match_truth(consumer, gw) == len(BOOKS)
            await rec.close()
        assert col.published["delta"] > 0
