"""The real client on ``venue="okx"`` against the reference gateway's OKX dialect
(``tickpipe gateway --dialect okx``), in-process on 127.0.0.1 port 0. Books are compared with
the gateway's truth at the book's ``seqId``; each fault re-seeds only the book it hit, by
re-subscribing that one channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tickpipe import Client
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.protocol.sync import SyncConfig

from .conftest import FAST_RECONNECT, assert_books_match_truth

WAIT_S = 20.0  # generous: the machine is shared
BTC, ETH = "orderbook:BTC-USDT", "orderbook:ETH-USDT"


@pytest.fixture
async def ogw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(
        port=0,
        admin_port=0,
        seed=7,
        rate=40.0,
        dialect="okx",
        dialect_options=(("max_connects_per_s", 100),),
    )
    async with Gateway(cfg) as g:
        yield g


def okx_client(g: Gateway, **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault(
        "sync",
        SyncConfig(snapshot_retry=BackoffPolicy(base_s=0.05, cap_s=0.3, healthy_after_s=0.0)),
    )
    return Client(venue="okx", stream_url=g.stream_url, rest_url=g.rest_url, **knobs)


async def _advanced(client: Client, symbol: str) -> None:
    view = await client.wait_synced(symbol, timeout=WAIT_S)
    start = view.seq
    assert start is not None
    for _ in range(2000):
        if view.synced and (view.seq or 0) > start:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{symbol} did not advance")


async def test_books_seed_in_band_and_equal_the_truth(ogw: Gateway) -> None:
    async with okx_client(ogw) as client:
        res = await client.subscribe([BTC, ETH, "trades:BTC-USDT", "ticker:BTC-USDT"])
        assert sorted(res.accepted) == sorted([BTC, ETH, "trades:BTC-USDT", "ticker:BTC-USDT"])
        for s in ("BTC-USDT", "ETH-USDT"):
            await _advanced(client, s)
        assert assert_books_match_truth(client, ogw) == 2
        assert sum(client.stats().gaps.values()) == 0


@pytest.mark.parametrize(
    ("fault", "reason"), [("drop_delta", "seq_gap"), ("bad_checksum", "checksum")]
)
async def test_a_fault_reseeds_only_that_book(ogw: Gateway, fault: str, reason: str) -> None:
    async with okx_client(ogw) as client:
        await client.subscribe([BTC, ETH])
        for s in ("BTC-USDT", "ETH-USDT"):
            await _advanced(client, s)
        ogw.trigger(fault, channel=BTC)
        for _ in range(2000):
            if client.stats().books[BTC].resyncs == 1 and client.book("BTC-USDT").synced:
                break
            await asyncio.sleep(0.01)
        stats = client.stats()
        assert stats.books[BTC].resyncs == 1 and stats.gaps[reason] == 1
        assert stats.books[ETH].resyncs == 0 and stats.connections_opened == 1
        await _advanced(client, "BTC-USDT")
        assert assert_books_match_truth(client, ogw) == 2
