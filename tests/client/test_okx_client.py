"""The real client on ``venue="okx"`` against a small OKX-speaking server (``okx_server.py``,
built with the OKX codec's encoders): in-band seeding, re-seeding one book by re-subscribing
it, the bounded wait for a snapshot, client pings and the heartbeat watchdog they feed.

Real sockets on 127.0.0.1, the client's generic shell with the OKX adapter. Books are compared
with the server's true book at the book's ``seqId``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tickpipe import Client
from tickpipe.client.events import ClientEvent, Disconnected, GapEvent, SnapshotError
from tickpipe.client.views import BookView
from tickpipe.errors import UnsupportedError
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.protocol.sync import SyncConfig
from tickpipe.venues.base import ConnectionGap
from tickpipe.venues.okx.adapter import OkxVenue

from .hostile import until
from .okx_server import OkxServer

WAIT_S = 20.0  # generous: the machine is shared
FAST_RECONNECT = BackoffPolicy(base_s=0.05, cap_s=0.2, healthy_after_s=0.0)
FAST_RESEED = SyncConfig(
    snapshot_retry=BackoffPolicy(base_s=0.05, cap_s=0.3, healthy_after_s=0.0),
    healthy_after_deltas=5,
)
BTC, ETH = "orderbook:BTC-USDT", "orderbook:ETH-USDT"


@pytest.fixture
async def okx() -> AsyncIterator[OkxServer]:
    async with OkxServer() as s:
        yield s


def okx_client(s: OkxServer, venue: OkxVenue | None = None, **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault("sync", FAST_RESEED)
    return Client(venue=venue or OkxVenue(), stream_url=s.stream_url, rest_url=s.rest_url, **knobs)


def assert_books_match(client: Client, s: OkxServer) -> int:
    checked = 0
    for channel, view in client.books().items():
        if not view.synced:
            continue
        assert view.seq is not None
        assert view.text_levels(None) == s.truth(view.symbol, view.seq), channel
        checked += 1
    return checked


async def settle(client: Client, s: OkxServer, *channels: str) -> None:
    """Every book LIVE and some updates applied on top of its snapshot."""
    for ch in channels:
        view = await client.wait_synced(ch.partition(":")[2], timeout=WAIT_S)
        start = view.seq
        assert start is not None

        def moved(v: BookView = view, st: int = start) -> bool:
            return v.synced and (v.seq or 0) > st

        await until(moved, WAIT_S, ch)


async def test_books_seeded_in_band_equal_truth(okx: OkxServer) -> None:
    client = okx_client(okx)
    assert client.stream_url == okx.stream_url + "/ws/v5/public"
    async with client:
        trades, tickers = client.trades(), client.tickers()
        res = await client.subscribe([BTC, ETH, "trades:BTC-USDT", "ticker:BTC-USDT"])
        assert sorted(res.accepted) == sorted([BTC, ETH, "trades:BTC-USDT", "ticker:BTC-USDT"])
        await settle(client, okx, BTC, ETH)
        assert assert_books_match(client, okx) == 2
        trade = await asyncio.wait_for(anext(aiter(trades)), WAIT_S)
        tick = await asyncio.wait_for(anext(aiter(tickers)), WAIT_S)
        assert getattr(trade, "symbol", None) == "BTC-USDT"
        assert getattr(tick, "symbol", None) == "BTC-USDT"
        assert okx.ops_of("subscribe", BTC) == 1  # seeded by the subscription itself
        assert sum(client.stats().gaps.values()) == 0
        with pytest.raises(UnsupportedError):
            await client.open_orders()


def subscribed_twice(okx: OkxServer, channel: str) -> Callable[[], bool]:
    return lambda: okx.ops_of("subscribe", channel) == 2


def collect(client: Client) -> tuple[list[ClientEvent], asyncio.Task[None]]:
    got: list[ClientEvent] = []
    feed = client.events()

    async def run() -> None:
        async for ev in feed:
            got.append(ev)

    return got, asyncio.create_task(run())


async def reseeded_alone(client: Client, okx: OkxServer, events: list[ClientEvent]) -> None:
    """BTC was re-seeded by one unsubscribe + subscribe of its channel, and synced again to the
    truth; ETH was never touched (no gap, no re-subscribe)."""
    await until(lambda: okx.ops_of("unsubscribe", BTC) == 1, WAIT_S, "BTC unsubscribed")
    await until(lambda: okx.ops_of("subscribe", BTC) == 2, WAIT_S, "BTC subscribed again")
    await settle(client, okx, BTC, ETH)
    assert assert_books_match(client, okx) == 2
    assert okx.ops_of("subscribe", ETH) == 1 and okx.ops_of("unsubscribe", ETH) == 0
    assert [e.channel for e in events if isinstance(e, GapEvent)] == [BTC]
    stats = client.stats()
    assert stats.books[ETH].resyncs == 0 and stats.books[BTC].resyncs == 1
    assert stats.connections_opened == 1


@pytest.mark.parametrize("fault", ["drop", "bad_checksum"])
async def test_a_broken_book_alone_resubscribes_and_resyncs(okx: OkxServer, fault: str) -> None:
    client = okx_client(okx)
    async with client:
        events, task = collect(client)
        await client.subscribe([BTC, ETH])
        await settle(client, okx, BTC, ETH)
        getattr(okx, fault)["BTC-USDT"] = 1
        await until(lambda: any(isinstance(e, GapEvent) for e in events), WAIT_S, "a gap")
        gap = next(e for e in events if isinstance(e, GapEvent))
        assert gap.reason == ("seq_gap" if fault == "drop" else "checksum")
        await reseeded_alone(client, okx, events)
        task.cancel()


async def test_resubscribes_keep_within_the_venues_subscribe_budget(okx: OkxServer) -> None:
    """Two books break at once; the bucket holds one re-seed: the second waits for a token
    (1 every 2 s), it is not sent at once."""
    venue = OkxVenue(resubscribes_per_s=0.5, resubscribe_burst=1)
    client = okx_client(okx, venue)
    async with client:
        await client.subscribe([BTC, ETH])
        await settle(client, okx, BTC, ETH)
        okx.drop["BTC-USDT"] = okx.drop["ETH-USDT"] = 1
        for ch in (BTC, ETH):
            await until(subscribed_twice(okx, ch), WAIT_S, f"{ch} again")
        unsubs = [
            t for t, (_, op, _) in zip(okx.op_times, okx.ops, strict=True) if op == "unsubscribe"
        ]
        assert len(unsubs) == 2
        assert unsubs[1] - unsubs[0] >= 1.5  # one token every 2 s (less the backoff's jitter)
        await settle(client, okx, BTC, ETH)
        assert assert_books_match(client, okx) == 2


class ConnectionSeqVenue(OkxVenue):
    """OKX plus a connection-wide sequence (as Coinbase has): the frame ``connection-gap``
    stands for a skipped ``sequence_num``, which the adapter reports as ConnectionGap."""

    def _decode(self, data: Any) -> object:
        if bytes(data) == b"connection-gap":
            return ConnectionGap()
        return super()._decode(data)


async def test_a_connection_gap_reseeds_every_book_on_the_same_connection(okx: OkxServer) -> None:
    client = okx_client(okx, ConnectionSeqVenue())
    async with client:
        events, task = collect(client)
        await client.subscribe([BTC, ETH])
        await settle(client, okx, BTC, ETH)
        okx.send_all("connection-gap")
        for ch in (BTC, ETH):
            await until(subscribed_twice(okx, ch), WAIT_S, f"{ch} again")
            assert okx.ops_of("unsubscribe", ch) == 1
        await settle(client, okx, BTC, ETH)
        assert assert_books_match(client, okx) == 2
        assert sorted(e.channel for e in events if isinstance(e, GapEvent)) == [BTC, ETH]
        assert client.stats().connections_opened == 1
        task.cancel()


async def test_a_lost_snapshot_is_awaited_a_bounded_time_then_resubscribed(
    okx: OkxServer,
) -> None:
    okx.lose_snapshot["BTC-USDT"] = 1
    client = okx_client(okx, stream_snapshot_timeout_s=0.5)
    async with client:
        events, task = collect(client)
        await client.subscribe([BTC, ETH])
        await settle(client, okx, ETH)
        await until(lambda: okx.ops_of("subscribe", BTC) == 2, WAIT_S, "BTC subscribed again")
        assert okx.ops_of("unsubscribe", BTC) == 1
        await settle(client, okx, BTC, ETH)
        assert assert_books_match(client, okx) == 2
        errors = [e for e in events if isinstance(e, SnapshotError)]
        assert [e.channel for e in errors] == [BTC]
        assert "no snapshot on the stream within 0.5s" in errors[0].error
        assert okx.ops_of("subscribe", ETH) == 1
        task.cancel()


async def test_a_resubscribe_for_a_book_live_again_is_not_sent(okx: OkxServer) -> None:
    """A reset snapshot (or any seed) that makes the book LIVE before the delay ends cancels
    the re-subscribe: the server sees none."""
    client = okx_client(okx)
    async with client:
        await client.subscribe([BTC])
        await settle(client, okx, BTC)
        sup = client._sup
        assert sup is not None
        bc = client._channels.books[BTC] if client._channels is not None else None
        assert bc is not None
        epoch = bc.sync.epoch
        sup._resubscribe(BTC, epoch)  # the book is LIVE at this epoch: nothing to do
        sup._resubscribe(BTC, epoch - 1)  # an older epoch: nothing to do
        await asyncio.sleep(0.2)
        assert okx.ops_of("unsubscribe", BTC) == 0 and sup.resubscribes == 0


async def test_client_pings_get_pongs_and_keep_an_idle_link_alive(okx: OkxServer) -> None:
    venue = OkxVenue(client_ping_interval_s=0.3, pong_timeout_s=1.7)  # dead after 2 s
    async with okx_client(okx, venue) as client:
        assert client.stats().heartbeat_ms == 800
        await until(lambda: okx.pings >= 8, WAIT_S, "8 pings")  # >= 2.4 s, no subscription
        assert okx.connections == 1 and client.connected  # only pongs came: alive


async def test_a_silent_server_is_a_heartbeat_loss_then_reconnect_resubscribe_reseed(
    okx: OkxServer,
) -> None:
    venue = OkxVenue(client_ping_interval_s=0.3, pong_timeout_s=1.7)
    async with okx_client(okx, venue) as client:
        events, task = collect(client)
        await client.subscribe([BTC, "trades:BTC-USDT"])
        await settle(client, okx, BTC)
        await until(lambda: okx.pings >= 8, WAIT_S, "8 pings")  # >= 2.4 s: past the 2 s timeout
        assert okx.connections == 1  # frames and pongs kept it alive
        okx.go_silent()
        await until(lambda: okx.connections == 2, WAIT_S, "a second connection")
        lost = [e for e in events if isinstance(e, Disconnected)]
        assert lost and lost[0].reason == "heartbeat"
        await until(
            lambda: any(n == 2 and op == "subscribe" and BTC in ch for n, op, ch in okx.ops),
            WAIT_S,
            "re-subscribed on the new connection",
        )
        await settle(client, okx, BTC)
        assert assert_books_match(client, okx) == 1
        task.cancel()


async def test_watch_venue_okx_prints_events_and_final_books(okx: OkxServer) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tickpipe",
        "watch",
        "--venue",
        "okx",
        BTC,
        "trades:BTC-USDT",
        "ticker:ETH-USDT",
        "--stream-url",
        okx.stream_url,
        "--rest-url",
        okx.rest_url,
        "--jsonl",
        "--duration",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(x) for x in out.decode().splitlines() if x.strip()]
    names = [x["event"] for x in lines]
    assert "synced" in names and "trade" in names and "ticker" in names
    final = [x for x in lines if x["event"] == "final_book"]
    assert len(final) == 1 and final[0]["channel"] == BTC
    assert final[0]["synced"] is True and isinstance(final[0]["seq"], int)
    assert final[0]["bids"] and final[0]["asks"]
    assert okx.ops_of("subscribe", BTC) == 1
