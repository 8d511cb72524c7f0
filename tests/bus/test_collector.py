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

from tests.bus.helpers import BusBook, read_stream, text_book, wait_until
from tests.integration.conftest import gateway_config, make_client
from tickpipe import Client
from tickpipe.bus import schema
from tickpipe.bus.collector import Collector, CollectorConfig
from tickpipe.bus.natsserver import NatsServer
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
    assert stats["by_kind"]["delta"] == sum(
        isinstance(m, schema.Delta) for _, _, m in msgs
    )
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
