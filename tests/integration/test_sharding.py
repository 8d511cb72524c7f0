"""Streams per connection: a venue's ``max_streams_per_connection`` splits the wanted channels
over several connections (shards) of one client, against ``tickpipe gateway --dialect binance``
run with ``max_streams_per_connection=4`` (the dialect refuses a fifth stream on a connection).

One event stream and one health view for the user; losing one connection stales only its
books, which re-seed while the others stay live; unsubscribing frees room, subscribing fills it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import generate_latest

from tickpipe import Client
from tickpipe.client.prometheus import client_registry
from tickpipe.errors import ConfigError
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.venues.binance.adapter import BinanceSpotVenue

from .conftest import FAST_RECONNECT, Recorder, assert_books_match_truth

LIMIT = 4  # streams a connection may carry, on the dialect and in the client's adapter
WAIT_S = 30.0  # generous: the machine is shared
BOOKS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XAUUSDT"]
# 10 channels in this order fill connections 0 (4), 1 (4) and 2 (2): books on each of them
CHANNELS = [
    "orderbook:BTCUSDT",
    "ticker:BTCUSDT",
    "trades:BTCUSDT",
    "orderbook:ETHUSDT",
    "ticker:ETHUSDT",
    "trades:ETHUSDT",
    "orderbook:SOLUSDT",
    "ticker:SOLUSDT",
    "trades:SOLUSDT",
    "orderbook:XAUUSDT",
]


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(
        port=0,
        admin_port=0,
        seed=21,
        rate=40.0,
        dialect="binance",
        dialect_options=(("max_streams_per_connection", float(LIMIT)),),
    )
    async with Gateway(cfg) as g:
        yield g


def narrow_binance() -> BinanceSpotVenue:
    """The Binance adapter, told a connection carries LIMIT streams (as the dialect does)."""
    venue = BinanceSpotVenue()
    venue.max_streams_per_connection = LIMIT
    return venue


def gateway_streams(g: Gateway) -> list[list[str]]:
    """The streams of each open connection on the gateway's side."""
    d: Any = g.dialect
    return [sorted(c.streams) for c in d.conns.values() if not c.closing]


async def wait_until(pred: Any, what: str) -> None:
    async with asyncio.timeout(WAIT_S):
        while not pred():
            await asyncio.sleep(0.05)
    assert pred(), what


async def started(client: Client) -> Recorder:
    rec = Recorder(client)
    res = await client.subscribe(CHANNELS)
    assert sorted(res.accepted) == sorted(CHANNELS), res
    assert res.refused == {}
    for s in BOOKS:
        await client.wait_synced(s, timeout=WAIT_S)
    return rec


def client_for(g: Gateway) -> Client:
    return Client(
        venue=narrow_binance(),
        stream_url=g.stream_url,
        rest_url=g.rest_url,
        reconnect=FAST_RECONNECT,
        snapshot_jitter_s=0.02,
    )


async def test_ten_channels_over_three_connections_books_exact(gw: Gateway) -> None:
    async with client_for(gw) as client:
        rec = await started(client)
        shards = client.stats().shards
        assert [s.channels for s in shards] == [4, 4, 2]
        assert all(s.connection == "connected" for s in shards)
        assert client.connection_state == "connected" and client.connected
        streams = gateway_streams(gw)
        assert sorted(len(s) for s in streams) == [2, 4, 4], streams
        assert sorted(client.channels) == sorted(CHANNELS)
        await asyncio.sleep(0.5)  # updates applied on every connection
        assert assert_books_match_truth(client, gw) == len(BOOKS)
        # one health view: the metrics list every connection's books
        text = generate_latest(client_registry(client, venue="binance")).decode()
        for s in BOOKS:
            assert f'channel="orderbook:{s}"' in text, s
        # one event stream: each new connection said it was up; nothing refused by the venue
        assert len(rec.named("connected")) == 2  # the first was up before rec started
        assert rec.named("subscribe_error") == []
        # tickers and trades of every connection reach the one feed
        seen: set[str] = set()
        feed = client.tickers()
        async with asyncio.timeout(WAIT_S):
            while len(seen) < 3:
                t = await feed.__anext__()
                seen.add(str(getattr(t, "channel", "")))
        assert seen == {"ticker:BTCUSDT", "ticker:ETHUSDT", "ticker:SOLUSDT"}
        await rec.close()


async def test_one_lost_connection_stales_only_its_books(gw: Gateway) -> None:
    async with client_for(gw) as client:
        rec = await started(client)
        d: Any = gw.dialect
        (victim,) = [c for c in d.conns.values() if "solusdt@depth@100ms" in c.streams]
        assert len(victim.streams) == LIMIT  # connection 1: ETH ticker+trades, SOL all three
        # a ticker goes stale on a loss only once it had a value: wait for both (a loaded box
        # may not have delivered one yet)
        await wait_until(
            lambda: all(
                client.stats().channel_seqs.get(f"ticker:{s}") is not None
                for s in ("SOLUSDT", "ETHUSDT")
            ),
            "a first value of each ticker on the victim connection",
        )
        synced_before = {s: len(rec.named("synced", channel=f"orderbook:{s}")) for s in BOOKS}
        gw.trigger("disconnect", session=victim.id)
        await rec.wait_for("stale", timeout=WAIT_S, channel="orderbook:SOLUSDT")
        await rec.wait_for(
            lambda evs: (
                len(rec.named("synced", channel="orderbook:SOLUSDT")) > synced_before["SOLUSDT"]
            ),
            timeout=WAIT_S,
        )
        await client.wait_synced("SOLUSDT", timeout=WAIT_S)
        # only that connection's book and tickers went stale; the others never left LIVE
        stale = {getattr(e, "channel", None) for e in rec.named("stale")}
        assert stale == {"orderbook:SOLUSDT", "ticker:SOLUSDT", "ticker:ETHUSDT"}, stale
        assert len(rec.named("disconnected")) == 1
        for s in ("BTCUSDT", "ETHUSDT", "XAUUSDT"):
            assert len(rec.named("synced", channel=f"orderbook:{s}")) == synced_before[s]
            assert client.book(s).state == "live"
        # the lost connection came back with its own 4 streams; 3 connections again
        await wait_until(
            lambda: sorted(len(s) for s in gateway_streams(gw)) == [2, 4, 4],
            "three connections carrying 4, 4 and 2 streams",
        )
        await wait_until(lambda: client.connected, "every connection up again")
        await asyncio.sleep(0.5)
        assert assert_books_match_truth(client, gw) == len(BOOKS)
        await rec.close()


async def test_unsubscribe_frees_room_and_subscribe_fills_it(gw: Gateway) -> None:
    async with client_for(gw) as client:
        rec = await started(client)
        res = await client.unsubscribe(["ticker:BTCUSDT", "trades:BTCUSDT"])
        assert sorted(res.accepted) == ["ticker:BTCUSDT", "trades:BTCUSDT"]
        assert [s.channels for s in client.stats().shards] == [2, 4, 2]
        # three new channels: two fill connection 0's room, one connection 2's
        new = ["orderbook:AAPL", "ticker:XAUUSDT", "trades:XAUUSDT"]
        res = await client.subscribe(new)
        assert sorted(res.accepted) == sorted(new), res
        assert [s.channels for s in client.stats().shards] == [4, 4, 3]
        await client.wait_synced("AAPL", timeout=WAIT_S)
        # past every connection's room: a fourth connection, the others untouched
        more = ["orderbook:MSFT", "ticker:AAPL"]
        res = await client.subscribe(more)
        assert sorted(res.accepted) == sorted(more), res
        assert [s.channels for s in client.stats().shards] == [4, 4, 4, 1]
        await client.wait_synced("MSFT", timeout=WAIT_S)
        await wait_until(
            lambda: sorted(len(s) for s in gateway_streams(gw)) == [1, 4, 4, 4],
            "four connections carrying 4, 4, 4 and 1 streams",
        )
        assert all(len(s) <= LIMIT for s in gateway_streams(gw))
        assert rec.named("subscribe_error") == []
        assert rec.named("stale") == []
        # subscribing a channel already wanted stays on its connection
        res = await client.subscribe(["orderbook:BTCUSDT"])
        assert res.accepted == ["orderbook:BTCUSDT"]
        assert [s.channels for s in client.stats().shards] == [4, 4, 4, 1]
        await asyncio.sleep(0.5)
        assert assert_books_match_truth(client, gw) == len(BOOKS) + 2
        await rec.close()


async def test_every_connection_lost_every_shard_comes_back(gw: Gateway) -> None:
    async with client_for(gw) as client:
        rec = await started(client)
        assert all(len(rec.named("synced", channel=f"orderbook:{s}")) == 1 for s in BOOKS)
        gw.trigger("disconnect", close_frame=False)  # every connection, no close frame
        await rec.wait_for(lambda evs: len(rec.named("disconnected")) == 3, timeout=WAIT_S)
        await rec.wait_for(
            lambda evs: all(len(rec.named("synced", channel=f"orderbook:{s}")) >= 2 for s in BOOKS),
            timeout=WAIT_S,
        )
        await wait_until(lambda: client.connected, "every connection up again")
        for s in BOOKS:
            await client.wait_synced(s, timeout=WAIT_S)
        await wait_until(
            lambda: sorted(len(s) for s in gateway_streams(gw)) == [2, 4, 4],
            "three connections carrying 4, 4 and 2 streams",
        )
        assert len(client.stats().shards) == 3
        await asyncio.sleep(0.5)
        assert assert_books_match_truth(client, gw) == len(BOOKS)
        await rec.close()


class _NullRecorder:
    """A recorder that keeps nothing (``client/recorder.py``'s protocol)."""

    def wrap_text(self, handler: Any, opened: bool) -> Any:
        return handler

    def rest(self, *args: Any) -> None:
        pass

    def snapshot_delivered(self, *args: Any) -> None:
        pass

    def connection(self, what: str, **fields: Any) -> None:
        pass

    def sent(self, req_id: int, kind: str, channels: list[str]) -> None:
        pass


async def test_recording_refuses_a_second_connection_and_keeps_the_first(gw: Gateway) -> None:
    client = Client(
        venue=narrow_binance(),
        stream_url=gw.stream_url,
        rest_url=gw.rest_url,
        reconnect=FAST_RECONNECT,
        recorder=_NullRecorder(),
    )
    async with client:
        res = await client.subscribe(CHANNELS[:LIMIT])
        assert sorted(res.accepted) == sorted(CHANNELS[:LIMIT])
        with pytest.raises(ConfigError, match="recording covers one connection"):
            await client.subscribe(CHANNELS[LIMIT:])
        assert sorted(client.channels) == sorted(CHANNELS[:LIMIT])  # nothing else changed
        assert [s.channels for s in client.stats().shards] == [LIMIT]
        await client.wait_synced("BTCUSDT", timeout=WAIT_S)
        assert client.book("BTCUSDT").state == "live"
