"""The collector (tickpipe.bus.collector) against the real reference gateway and a real
nats-server: what lands in the stream rebuilds books equal to the gateway's truth, faults and
overflow re-seed the books that need it, a standby takes over when the active goes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.js.api import StorageType

from tests.bus.helpers import BusBook, answered, read_stream, text_book, wait_until
from tests.integration.conftest import gateway_config, make_client
from tickpipe import Client
from tickpipe.bus import schema
from tickpipe.bus.collector import Collector, CollectorConfig
from tickpipe.bus.natsserver import NatsCluster, NatsServer
from tickpipe.bus.streams import StreamSettings
from tickpipe.errors import BusError, ConfigError
from tickpipe.gateway import Gateway

BOOKS = ["orderbook:AAPL", "orderbook:BTC-USD", "orderbook:EUR-USD"]
VENUE = "vts"


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async with Gateway(gateway_config(rate=60.0)) as g:
        yield g


class Run:
    """A client with a collector, both closed at the end."""

    def __init__(self, gw: Gateway, url: str, **cfg: Any) -> None:
        self.client: Client = make_client(gw)
        self.events: list[dict[str, Any]] = []
        self.collector = Collector(
            self.client, url, CollectorConfig(**cfg), on_event=self.events.append
        )

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]

    async def start(self, channels: list[str]) -> None:
        await self.collector.start()
        await self.client.start()
        await self.client.subscribe(channels)
        for ch in channels:
            if ch.startswith("orderbook:"):
                await self.client.wait_synced(ch, timeout=10)

    async def settle(self) -> None:
        """Until everything queued is acked."""
        c = self.collector
        await wait_until(lambda: c.queue_depth == 0 and c.in_flight == 0, timeout=15)

    async def close(self, **kw: Any) -> None:
        await self.client.close()
        await self.collector.close(**kw)


@contextlib.asynccontextmanager
async def running(gw: Gateway, url: str, **cfg: Any) -> AsyncIterator[Run]:
    run = Run(gw, url, **cfg)
    try:
        yield run
    finally:
        await run.close()


def by_book(
    msgs: list[tuple[str, dict[str, str], schema.BusMessage]],
) -> dict[str, list[tuple[str, dict[str, str], schema.BusMessage]]]:
    out: dict[str, list[tuple[str, dict[str, str], schema.BusMessage]]] = {}
    for subject, hdrs, m in msgs:
        if isinstance(m, schema.Snap | schema.Delta | schema.State):
            out.setdefault(m.channel, []).append((subject, hdrs, m))
    return out


def check_against_truth(gw: Gateway, channel: str, msgs: list[Any]) -> BusBook:
    """Rebuild ``channel`` from its messages: every Delta applied in sequence must give the
    gateway's book at its venue id."""
    symbol = channel.partition(":")[2]
    inst = next(i for i in gw.instruments if i.symbol == symbol)
    bb = BusBook(inst)
    checked = 0
    for _, _, m in msgs:
        if bb.feed(m) or (isinstance(m, schema.Snap) and m.reset):
            assert bb.venue_id is not None
            truth = gw.true_book(symbol, bb.venue_id)
            assert text_book(bb.book) == text_book(truth), f"{channel} at {bb.venue_id}"
            checked += 1
    assert checked > 0
    return bb


async def test_stream_rebuilds_every_book_equal_to_the_truth(
    gw: Gateway, nats_server: NatsServer
) -> None:
    async with running(gw, nats_server.url, snapshot_every_s=0.3) as run:
        await run.start([*BOOKS, "ticker:BTC-USD", "trades:AAPL"])
        await asyncio.sleep(1.0)  # deltas, tickers, trades, periodic snaps flow
        gw.pause_market()
        await run.settle()
        c = run.collector
        assert c.active and c.dropped == 0
        msgs = await read_stream(nats_server.url)
    books = by_book(msgs)
    assert sorted(books) == sorted(BOOKS)
    for channel, ms in books.items():
        first = ms[0][2]
        # every book opens with a reset Snap, seq 1, epoch 1, from this collector
        assert isinstance(first, schema.Snap) and first.reset
        assert (first.seq, first.epoch, first.collector) == (1, 1, c.id)
        assert first.exact_depth is None and first.depth is None
        assert ms[0][0] == schema.book_subject(VENUE, channel.partition(":")[2], "snap")
        deltas = [m for _, _, m in ms if isinstance(m, schema.Delta)]
        assert len(deltas) > 5
        assert [d.seq for d in deltas] == list(range(2, 2 + len(deltas)))  # no hole
        periodic = [m for _, _, m in ms if isinstance(m, schema.Snap) and not m.reset]
        assert periodic, "a periodic Snap every snapshot_every_s"
        for subject, hdrs, m in ms:  # Msg-Id: collector, subject, seq
            assert isinstance(m, schema.Snap | schema.Delta | schema.State)
            assert hdrs[nats.js.api.Header.MSG_ID].startswith(f"{c.id}:{subject}:{m.seq}")
        bb = check_against_truth(gw, channel, ms)
        assert bb.holes == 0 and bb.resets == 1
    trades = [m for _, _, m in msgs if isinstance(m, schema.Trade)]
    tickers = [m for _, _, m in msgs if isinstance(m, schema.Ticker)]
    assert trades and all(t.channel == "trades:AAPL" for t in trades)
    assert tickers and all(t.channel == "ticker:BTC-USD" and t.bid for t in tickers)
    insts = [m for _, _, m in msgs if isinstance(m, schema.Instruments)]
    assert len(insts) == 1 and {"AAPL", "BTC-USD"} <= {i.symbol for i in insts[0].instruments}
    stats = c.stats()
    assert stats["messages"] >= len(msgs)  # periodic Snaps go on after the read
    assert stats["by_kind"]["delta"] == sum(isinstance(m, schema.Delta) for _, _, m in msgs)
    assert [e["event"] for e in run.events][:1] == ["bus_connected"]


async def test_gap_at_the_venue_publishes_state_then_a_new_reset_snap(
    gw: Gateway, nats_server: NatsServer
) -> None:
    async with running(gw, nats_server.url) as run:
        await run.start(BOOKS)
        await asyncio.sleep(0.3)
        gw.trigger("drop_delta", channel="orderbook:AAPL")
        bc = run.client.book("AAPL")._bc
        await wait_until(lambda: bc.sync.stats.resyncs >= 1 and bc.sync.synced, timeout=10)
        await asyncio.sleep(0.3)
        gw.pause_market()
        await run.settle()
        msgs = await read_stream(nats_server.url)
    books = by_book(msgs)
    aapl = [m for _, _, m in books["orderbook:AAPL"]]
    kinds = [type(m).__name__ + ("*" if isinstance(m, schema.Snap) and m.reset else "")
             for m in aapl]  # fmt: skip
    i_state = kinds.index("State")
    assert kinds[0] == "Snap*" and "Snap*" in kinds[i_state:]
    state = aapl[i_state]
    assert isinstance(state, schema.State)
    assert (state.state, state.reason) == ("resyncing", "seq_gap")
    reset2 = next(m for m in aapl[i_state:] if isinstance(m, schema.Snap) and m.reset)
    assert reset2.epoch == 2 and reset2.seq == state.seq + 1  # the next seq, a new epoch
    assert state.seq == aapl[i_state - 1].seq  # a State carries the current seq
    bb = check_against_truth(gw, "orderbook:AAPL", books["orderbook:AAPL"])
    assert bb.resets == 2 and bb.states == ["resyncing"]
    for ch in ("orderbook:BTC-USD", "orderbook:EUR-USD"):  # the others untouched
        assert not any(isinstance(m, schema.State) for _, _, m in books[ch])


async def test_overflow_drops_counts_and_reseeds_dirty_books_without_blocking(
    gw: Gateway, nats_server: NatsServer
) -> None:
    """NATS goes away: publishes fail and are retried, the tiny queue overflows (dropped,
    counted, books dirty) while the client goes on; NATS back: a reset Snap per dirty book at
    the next seq, bus_overflow reported, and the stream again rebuilds the truth."""
    async with running(
        gw, nats_server.url, queue_size=8, ack_timeout_s=0.5, max_retry_s=60.0
    ) as run:
        await run.start(BOOKS)
        await asyncio.sleep(0.3)
        c = run.collector
        nats_server.stop()
        frames = run.client.stats().frames
        await wait_until(lambda: c.dropped > 20, timeout=10)
        assert run.client.stats().frames > frames  # the read path never waited
        assert all(v.synced for v in run.client.books().values())
        assert c.queue_depth <= 8
        await asyncio.sleep(1.0)  # longer than ack_timeout_s: the batch in flight is retried
        nats_server.start()
        await wait_until(lambda: run.named("bus_overflow"), timeout=20)
        await asyncio.sleep(0.3)
        gw.pause_market()
        await run.settle()
        msgs = await read_stream(nats_server.url)
    ev = run.named("bus_overflow")[0]
    assert ev["dropped"] > 20 and set(ev["books"]) <= set(BOOKS) and ev["books"]
    assert ev["reasons"] == ["queue_full"]
    assert c.resets == len(ev["books"])
    assert len(run.named("bus_overflow")) == 1  # reported once, when NATS was back
    books = by_book(msgs)
    for channel in ev["books"]:
        ms = books[channel]
        resets = [m for _, _, m in ms if isinstance(m, schema.Snap) and m.reset]
        assert len(resets) >= 2 and resets[1].seq > resets[0].seq + 1  # a hole before it
        assert resets[1].epoch == resets[0].epoch == 1  # no venue re-sync: same epoch
        bb = check_against_truth(gw, channel, ms)
        assert bb.resets >= 2
    names = [e["event"] for e in run.events]
    assert names.index("bus_disconnected") < names.index("bus_reconnected")
    assert names.index("bus_reconnected") < names.index("bus_overflow")


async def test_a_short_nats_outage_loses_and_duplicates_nothing(
    gw: Gateway, nats_server: NatsServer
) -> None:
    """With room in the queue, what failed is retried (same Nats-Msg-Id) once NATS is back:
    every book's seqs in the stream are contiguous, none twice."""
    async with running(gw, nats_server.url, ack_timeout_s=0.3, max_retry_s=60.0) as run:
        await run.start(BOOKS)
        await asyncio.sleep(0.3)
        c = run.collector
        nats_server.stop()
        await wait_until(lambda: c.retries > 0, timeout=10)
        await asyncio.sleep(0.5)
        nats_server.start()
        await asyncio.sleep(0.5)
        gw.pause_market()
        await run.settle()
        msgs = await read_stream(nats_server.url)
    assert c.dropped == 0 and not run.named("bus_overflow")
    books = by_book(msgs)
    for channel in BOOKS:
        ms = books[channel]
        seqs = [m.seq for _, _, m in ms if isinstance(m, schema.Snap | schema.Delta)]
        assert seqs == list(range(1, len(seqs) + 1)), channel  # in order, no hole, no twice
        bb = check_against_truth(gw, channel, ms)
        assert bb.resets == 1 and bb.holes == 0


async def test_heartbeat_names_the_channels_and_the_venue_link(
    gw: Gateway, nats_server: NatsServer
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        sub = await nc.subscribe(schema.heartbeat_subject(VENUE))
        async with running(gw, nats_server.url, heartbeat_every_s=0.1) as run:
            await run.start(["orderbook:AAPL", "ticker:BTC-USD"])
            hb: schema.BusMessage | None = None
            async with asyncio.timeout(5):
                while True:
                    hb = schema.decode((await sub.next_msg(timeout=2)).data)
                    assert isinstance(hb, schema.Heartbeat)
                    if not hb.blind:
                        break
            assert isinstance(hb, schema.Heartbeat)
            assert hb.collector == run.collector.id and hb.venue == VENUE
            assert sorted(hb.channels) == ["orderbook:AAPL", "ticker:BTC-USD"]
            assert hb.interval_ms == 100
            await gw.stop()  # the venue goes away: the collector is blind
            async with asyncio.timeout(5):
                while not hb.blind:
                    hb = schema.decode((await sub.next_msg(timeout=2)).data)
                    assert isinstance(hb, schema.Heartbeat)
        stream = await read_stream(nats_server.url)
        assert not any(isinstance(m, schema.Heartbeat) for _, _, m in stream)  # not stored
    finally:
        await nc.close()


async def test_standby_takes_over_when_the_active_dies(
    gw: Gateway, nats_server: NatsServer
) -> None:
    lease = 1.0
    a = Run(gw, nats_server.url, group="g1", lease_s=lease, heartbeat_every_s=0.1)
    b = Run(gw, nats_server.url, group="g1", lease_s=lease, heartbeat_every_s=0.1)
    try:
        await a.start(BOOKS)
        await wait_until(lambda: a.collector.active, timeout=5)
        await b.start(BOOKS)
        await asyncio.sleep(lease)  # b tries, and fails, a few times
        assert a.collector.active and not b.collector.active
        assert [e["role"] for e in b.named("role")] == ["standby"] or not b.named("role")
        assert b.collector.stats()["messages"] == 0
        loop = asyncio.get_running_loop()
        died = loop.time()
        await a.close(release=False)  # as a crash: the lease runs out on the server
        await wait_until(lambda: b.collector.active, timeout=lease * 4)
        took = loop.time() - died
        assert [e["role"] for e in b.named("role")][-1] == "active"
        await asyncio.sleep(0.3)
        gw.pause_market()
        await b.settle()
        msgs = await read_stream(nats_server.url)
    finally:
        await a.close()
        await b.close()
    print(f"standby active {took:.2f} s after the active died (lease {lease} s)")
    ids = [h[nats.js.api.Header.MSG_ID].split(":")[0] for _, h, _ in msgs]
    first_b = ids.index(b.collector.id)
    assert set(ids[:first_b]) == {a.collector.id} and set(ids[first_b:]) == {b.collector.id}
    books = by_book(msgs)
    for channel in BOOKS:
        ms = [x for x in books[channel] if x[1][nats.js.api.Header.MSG_ID].startswith(
            b.collector.id)]  # fmt: skip
        first = ms[0][2]
        assert isinstance(first, schema.Snap) and first.reset
        assert first.collector == b.collector.id
        check_against_truth(gw, channel, ms)
    insts = [m for _, _, m in msgs if isinstance(m, schema.Instruments)]
    assert [i.collector for i in insts] == [a.collector.id, b.collector.id]


async def test_a_clean_stop_hands_over_at_once(gw: Gateway, nats_server: NatsServer) -> None:
    """close() releases the lease: the standby wins at its next try (lease / 3)."""
    lease = 3.0
    a = Run(gw, nats_server.url, group="g2", lease_s=lease)
    b = Run(gw, nats_server.url, group="g2", lease_s=lease)
    try:
        await a.start(["orderbook:AAPL"])
        await wait_until(lambda: a.collector.active, timeout=5)
        await b.start(["orderbook:AAPL"])
        await asyncio.sleep(0.2)
        assert not b.collector.active
        await a.close()
        await wait_until(lambda: b.collector.active, timeout=lease * 0.9)  # before any expiry
    finally:
        await a.close()
        await b.close()
    assert [e["role"] for e in a.named("role")] == ["active"]


async def test_unreachable_nats_fails_fast_naming_the_url(gw: Gateway) -> None:
    client = make_client(gw)
    c = Collector(client, "nats://127.0.0.1:1", CollectorConfig(connect_timeout_s=0.5))
    with pytest.raises(BusError, match=r"nats://127\.0\.0\.1:1 within 0\.5 s"):
        await c.start()
    await client.close()
    with pytest.raises(ConfigError, match="--nats 'http://x:1'"):
        Collector(client, "http://x:1")
    with pytest.raises(ConfigError, match="group"):
        CollectorConfig(group="bad name")
    with pytest.raises(ConfigError, match="queue_size"):
        CollectorConfig(queue_size=1)


async def test_an_existing_stream_with_other_settings_is_used_as_it_is(
    gw: Gateway, nats_server: NatsServer
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await js.add_stream(
            name="MINE",
            subjects=["tickpipe.v1.>"],
            max_age=60.0,
            duplicate_window=30.0,
            storage=StorageType.MEMORY,
        )
        async with running(gw, nats_server.url, stream=StreamSettings(name="MINE")) as run:
            await run.start(["orderbook:AAPL"])
            diff = run.named("bus_connected")[0]["differences"]
            assert any(d.startswith("max_age 60 s") for d in diff)
            assert any(d.startswith("storage") for d in diff)  # memory, asked file
            await run.settle()
        info = await js.stream_info("MINE")
        assert info.config.max_age == 60.0 and info.state.messages > 0  # untouched, used
        await js.add_stream(name="OTHER", subjects=["elsewhere.>"])
        with pytest.raises(BusError, match="stream OTHER exists but does not store"):
            async with running(gw, nats_server.url, stream=StreamSettings(name="OTHER")) as run:
                await run.collector.start()
    finally:
        await nc.close()


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_killing_the_stream_leader_of_a_3_node_cluster_loses_nothing(
    gw: Gateway, nats_cluster: NatsCluster
) -> None:
    """Replicas 3: the leader's death stalls publishing during the election; the collector
    retries (same Nats-Msg-Id, bounded backoff), so the stream still rebuilds the truth."""
    urls = nats_cluster.urls
    async with running(
        gw, urls, stream=StreamSettings(replicas=3), ack_timeout_s=1.0, max_retry_s=60.0
    ) as run:
        await run.start(BOOKS)
        await asyncio.sleep(0.5)
        c = run.collector
        nc = await nats.connect(servers=urls.split(","))
        try:
            js = nc.jetstream(timeout=5.0)
            info = await answered(lambda: js.stream_info(schema.DEFAULT_STREAM))
        finally:
            await nc.close()
        assert info.cluster is not None and info.cluster.leader is not None
        assert info.config.num_replicas == 3
        victim = nats_cluster.index_of(info.cluster.leader)
        before = c.published["delta"]
        nats_cluster.kill(victim)
        await wait_until(lambda: c.published["delta"] > before + 50, timeout=40)
        gw.pause_market()
        await run.settle()
        alive = ",".join(s.url for i, s in enumerate(nats_cluster.servers) if i != victim)
        msgs = await read_stream(alive)
    assert c.dropped == 0
    books = by_book(msgs)
    for channel in BOOKS:
        ms = books[channel]
        seqs = [m.seq for _, _, m in ms if isinstance(m, schema.Snap | schema.Delta)]
        assert len(seqs) == len(set(seqs))  # nothing twice
        assert seqs == sorted(seqs) and seqs == list(range(1, len(seqs) + 1))
        check_against_truth(gw, channel, ms)
    print(f"killed {nats_cluster.servers[victim].name}: {c.retries} retries, nothing lost")


async def test_an_active_that_cannot_renew_stops_publishing_within_the_lease(
    gw: Gateway, nats_server: NatsServer
) -> None:
    """Fencing by time: NATS gone, the lease cannot be renewed, so the active stops before the
    server could give the key to another (0.8 lease), discarding its queue; once NATS is back
    and the key expired, it wins again and re-seeds every book."""
    lease = 1.0
    async with running(gw, nats_server.url, group="g3", lease_s=lease) as run:
        await run.start(BOOKS)
        c = run.collector
        await wait_until(lambda: c.active, timeout=5)
        # Every book's first reset Snap stored before NATS goes (a loaded box saw the last one
        # still in flight, lost with the server, and the book had one reset in the stream).
        await wait_until(lambda: c.stats()["by_kind"]["snap"] >= len(BOOKS), timeout=10)
        nats_server.stop()
        await wait_until(lambda: not c.active, timeout=lease * 3)
        assert [e["role"] for e in run.named("role")] == ["active", "standby"]
        assert c.queue_depth == 0
        queued = c.stats()["messages"]
        await asyncio.sleep(0.3)
        assert c.queue_depth == 0  # a standby queues nothing
        nats_server.start()
        await wait_until(lambda: c.active, timeout=lease * 6)
        await asyncio.sleep(0.3)
        gw.pause_market()
        await run.settle()
        assert c.stats()["messages"] > queued
        msgs = await read_stream(nats_server.url)
    books = by_book(msgs)
    for channel in BOOKS:
        resets = [m for _, _, m in books[channel] if isinstance(m, schema.Snap) and m.reset]
        assert len(resets) >= 2  # the first, and the one on winning again
        check_against_truth(gw, channel, books[channel])


async def test_a_collector_started_after_subscribe_publishes_the_books_already_there(
    gw: Gateway, nats_server: NatsServer
) -> None:
    run = Run(gw, nats_server.url)
    try:
        await run.client.start()
        await run.client.subscribe(BOOKS)
        for ch in BOOKS:
            await run.client.wait_synced(ch, timeout=10)
        await run.collector.start()
        await asyncio.sleep(0.3)
        gw.pause_market()
        await run.settle()
        msgs = await read_stream(nats_server.url)
    finally:
        await run.close()
    books = by_book(msgs)
    for channel in BOOKS:
        first = books[channel][0][2]
        assert isinstance(first, schema.Snap) and first.reset and first.seq == 1
        check_against_truth(gw, channel, books[channel])


async def test_a_venue_without_ids_and_with_a_depth_kraken(nats_server: NatsServer) -> None:
    """Kraken (in-band snapshots, no update ids, a book kept 1000 deep): the Snap says the
    depth, venue ids are null, and the stream rebuilds the collector's own books."""
    from tests.integration.test_kraken_client import BTC, ETH, kraken_client
    from tickpipe.gateway import GatewayConfig

    cfg = GatewayConfig(port=0, admin_port=0, seed=7, rate=40.0, dialect="kraken")
    async with Gateway(cfg) as kgw:
        client = kraken_client(kgw)
        c = Collector(client, nats_server.url)
        try:
            await c.start()
            await client.start()
            await client.subscribe([BTC, ETH])
            for ch in (BTC, ETH):
                await client.wait_synced(ch, timeout=20)
            await asyncio.sleep(0.5)
            kgw.pause_market()
            await asyncio.sleep(0.3)
            await wait_until(lambda: c.queue_depth == 0 and c.in_flight == 0, timeout=15)
            want = {ch: client.book(ch).text_levels(None) for ch in (BTC, ETH)}
            msgs = await read_stream(nats_server.url)
        finally:
            await client.close()
            await c.close()
    books = by_book(msgs)
    assert books[BTC][0][0] == "tickpipe.v1.kraken.book.BTC/USD.snap"
    for ch in (BTC, ETH):
        first = books[ch][0][2]
        assert isinstance(first, schema.Snap) and first.reset
        assert first.venue_id is None and first.depth == 1000
        inst = client.instrument(ch)
        bb = BusBook(inst)
        for _, _, m in books[ch]:
            bb.feed(m)
        assert bb.holes == 0
        assert [list(x) for x in text_book(bb.book)] == [list(x) for x in want[ch]]
