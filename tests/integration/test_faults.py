"""Every fault the gateway can inject, against the real client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.conftest import (
    Recorder,
    assert_books_match_truth,
    gateway_config,
    make_client,
)
from tickpipe.client.events import GapEvent
from tickpipe.gateway import Gateway

BOOKS = ["orderbook:AAPL", "orderbook:MSFT", "orderbook:BTC-USD"]


async def _synced_client(gw: Gateway, **knobs: Any) -> tuple[Any, Recorder]:
    client = make_client(gw, **knobs)
    rec = Recorder(client)
    await client.start()
    await client.subscribe(BOOKS)
    for ch in BOOKS:
        await client.wait_synced(ch, timeout=5)
    return client, rec


def _snapshot_requests(client: Any) -> dict[str, int]:
    return {ch: v._bc.sync.stats.snapshot_requests for ch, v in client.books().items()}


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("drop_delta", "seq_gap"), ("bad_checksum", "checksum"), ("reorder_delta", "seq_gap")],
)
async def test_gap_found_within_one_frame_only_hit_book_reseeded(
    gw: Gateway, fault: str, reason: str
) -> None:
    client, rec = await _synced_client(gw)
    try:
        before = _snapshot_requests(client)
        out = gw.trigger(fault, channel="orderbook:AAPL")
        await rec.wait_for("gap", channel="orderbook:AAPL")
        gap = rec.named("gap", channel="orderbook:AAPL")[0]
        assert isinstance(gap, GapEvent)
        assert gap.reason == reason
        if reason == "seq_gap":
            # found on the first frame after the hole: the one frame that skipped a seq
            assert gap.expected is not None and gap.got is not None
            assert gap.got - gap.expected <= 1
            assert gap.expected == out["after_seq"] + 1
        await client.wait_synced("AAPL", timeout=5)
        await rec.wait_for(lambda evs: len(rec.named("synced", channel="orderbook:AAPL")) >= 2)
        after = _snapshot_requests(client)
        assert after["orderbook:AAPL"] > before["orderbook:AAPL"]
        for ch in ("orderbook:MSFT", "orderbook:BTC-USD"):
            assert after[ch] == before[ch], f"{ch} was re-seeded by a gap elsewhere"
            assert rec.named("gap", channel=ch) == []
        assert_books_match_truth(client, gw)
    finally:
        await rec.close()
        await client.close()


async def test_duplicate_delta_is_dropped_not_a_gap(gw: Gateway) -> None:
    client, rec = await _synced_client(gw)
    try:
        gw.trigger("duplicate_delta", channel="orderbook:MSFT", count=3)
        for _ in range(100):
            if client.stats().duplicates >= 3:
                break
            await asyncio.sleep(0.02)
        assert client.stats().duplicates >= 3
        assert rec.named("gap") == []
        assert client.book("MSFT").synced
        assert_books_match_truth(client, gw)
    finally:
        await rec.close()
        await client.close()


async def test_malformed_frame_reported_book_resynced_client_alive(gw: Gateway) -> None:
    client, rec = await _synced_client(gw)
    try:
        gw.trigger("malformed_frame", channel="orderbook:BTC-USD")
        await rec.wait_for("bad_frame")
        bad = rec.named("bad_frame")[0].to_dict()
        assert bad["error"] and bad["channel"] == "orderbook:BTC-USD"
        await rec.wait_for("gap", channel="orderbook:BTC-USD", reason="bad_frame")
        await client.wait_synced("BTC-USD", timeout=5)
        await asyncio.sleep(0.1)
        assert client.connected and client.stats().connections_opened == 1
        assert_books_match_truth(client, gw)
        for ch in ("orderbook:AAPL", "orderbook:MSFT"):
            assert rec.named("gap", channel=ch) == []
    finally:
        await rec.close()
        await client.close()


@pytest.mark.slow
async def test_constant_bad_frames_never_crash_nor_corrupt(gw: Gateway) -> None:
    client, rec = await _synced_client(gw)
    try:
        gw.set_faults(malformed_frame=0.03, drop_delta=0.01, duplicate_delta=0.01)
        for _ in range(20):  # bounded: 2 s of faults, books checked every 100 ms
            await asyncio.sleep(0.1)
            assert_books_match_truth(client, gw)
        gw.reset_faults()
        for ch in BOOKS:
            await client.wait_synced(ch, timeout=10)
        assert client.stats().bad_frames > 0
        assert client.connected and client.stats().connections_opened == 1
        assert_books_match_truth(client, gw)
    finally:
        await rec.close()
        await client.close()


async def test_stale_snapshot_is_refetched(gw: Gateway) -> None:
    client, rec = await _synced_client(gw)
    try:
        gw.trigger("stale_snapshot", symbol="AAPL")
        gw.trigger("drop_delta", channel="orderbook:AAPL")
        await rec.wait_for("gap", channel="orderbook:AAPL", reason="stale_snapshot")
        await rec.wait_for(lambda evs: len(rec.named("synced", channel="orderbook:AAPL")) >= 2)
        assert_books_match_truth(client, gw)
    finally:
        await rec.close()
        await client.close()


async def test_snapshot_error_is_retried(gw: Gateway) -> None:
    client, rec = await _synced_client(gw)
    try:
        gw.trigger("snapshot_error", symbol="MSFT", count=2)
        gw.trigger("drop_delta", channel="orderbook:MSFT")
        await rec.wait_for("snapshot_error", channel="orderbook:MSFT")
        await rec.wait_for(lambda evs: len(rec.named("synced", channel="orderbook:MSFT")) >= 2)
        assert client.stats().snapshot_errors >= 2
        assert_books_match_truth(client, gw)
    finally:
        await rec.close()
        await client.close()


async def test_silent_channel_flagged_stale_while_socket_healthy() -> None:
    async with Gateway(gateway_config()) as gw:
        client, rec = await _synced_client(gw, stale_after_s=0.3)
        try:
            gw.trigger("silence_channel", channel="orderbook:AAPL")
            await rec.wait_for("stale", channel="orderbook:AAPL", reason="silent")
            aapl = client.book("AAPL")
            assert aapl.synced and aapl.state == "stale" and aapl.reason == "silent"
            assert not aapl.usable()
            assert client.book("MSFT").usable()
            assert rec.named("stale", channel="orderbook:MSFT") == []
            assert client.connected
            gw.set_faults(silence_channel=[])
            await rec.wait_for("active", channel="orderbook:AAPL")
            assert aapl.usable(max_age_s=5)
            assert_books_match_truth(client, gw)
        finally:
            await rec.close()
            await client.close()


async def test_full_buffer_keeps_the_newest_and_only_a_too_old_snapshot_is_a_gap(
    gw: Gateway,
) -> None:
    """A slow snapshot is an older one (the gateway takes it when asked, replies later). With a
    buffer smaller than the deltas sent meanwhile, the book trims its oldest deltas (no gap),
    finds the snapshot older than everything it kept (gap ``stale_snapshot``, never
    ``overflow``) and asks again; once snapshots are prompt it syncs to the truth."""
    from tickpipe.protocol.sync import SyncConfig

    gw.set_faults(snapshot_delay_ms=400)
    client = make_client(gw, sync=SyncConfig(max_buffered_deltas=4))
    rec = Recorder(client)
    try:
        await client.start()
        await client.subscribe(["orderbook:AAPL"])
        await rec.wait_for("gap", channel="orderbook:AAPL", reason="stale_snapshot", timeout=5)
        gw.reset_faults()
        await client.wait_synced("AAPL", timeout=10)
        stats = client.stats()
        assert stats.gaps["overflow"] == 0 and stats.gaps["seq_gap"] == 0
        assert client.books()["orderbook:AAPL"]._bc.sync.stats.trimmed > 0
        assert_books_match_truth(client, gw)
    finally:
        await rec.close()
        await client.close()


async def test_slow_and_failing_callbacks_never_stall_ingestion(gw: Gateway) -> None:
    client = make_client(gw, data_queue_size=8)
    calls = 0

    async def slow_book(view: Any) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.3)

    def failing_ticker(t: Any) -> None:
        raise ValueError("strategy bug")

    client.on_book(slow_book)
    client.on_ticker(failing_ticker)
    rec = Recorder(client)
    try:
        await client.start()
        await client.subscribe([*BOOKS, "ticker:BTC-USD", "trades:BTC-USD"])
        for ch in BOOKS:
            await client.wait_synced(ch, timeout=5)
        f0 = client.stats().frames
        await asyncio.sleep(1.0)
        stats = client.stats()
        assert stats.frames - f0 > 50  # frames kept flowing while the callback slept
        assert calls <= 5  # the slow consumer saw coalesced, latest states only
        for _ in range(100):  # bounded: the slow book callback delays later callbacks only
            if client.stats().callback_errors:
                break
            await asyncio.sleep(0.05)
        assert client.stats().callback_errors >= 1
        if client.stats().overflow_dropped:
            await rec.wait_for("overflow", queue="callbacks")
        assert all(client.book(ch).synced for ch in BOOKS)
        assert_books_match_truth(client, gw)
        assert client.connected and stats.connections_opened == 1
    finally:
        await rec.close()
        await client.close()
