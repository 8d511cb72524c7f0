"""Dispatcher and feeds: bounded, reported overflow, isolated callbacks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from tickpipe.client.dispatch import Dispatcher, Feed
from tickpipe.client.events import Overflow, SyncedEvent
from tickpipe.client.metrics import Metrics
from tickpipe.protocol import frames


def _trade(seq: int) -> frames.Trade:
    return frames.Trade(
        channel="trades:BTC-USD",
        seq=seq,
        ts=0,
        id=f"T{seq}",
        price="1.00",
        size="2",
        side="buy",
    )


async def test_feed_drops_oldest_and_reports_overflow_first() -> None:
    closed: list[object] = []
    f: Feed[int] = Feed("events", 3, closed.append)
    for i in range(5):
        f.put(i)
    first = await f.__anext__()
    assert isinstance(first, Overflow) and first.dropped == 2 and first.queue == "events"
    assert [await f.__anext__() for _ in range(3)] == [2, 3, 4]
    f.close()
    assert closed == [f]
    async for _ in f:
        raise AssertionError("closed feed yields nothing more")


async def test_failing_callback_is_counted_and_others_still_run() -> None:
    m = Metrics()
    d = Dispatcher(m, data_queue_size=100, feed_size=100)
    seen: list[int] = []

    def bad(t: object) -> None:
        raise RuntimeError("user bug")

    d.add_callback("trade", bad)
    d.add_callback("trade", lambda t: seen.append(t.seq))
    task = asyncio.create_task(d.run())
    for i in range(5):
        d.trade(_trade(i))
    await asyncio.sleep(0.05)
    task.cancel()
    assert seen == [0, 1, 2, 3, 4]
    assert m.callback_errors == 5


async def test_slow_consumer_overflow_is_reported_not_silent() -> None:
    m = Metrics()
    d = Dispatcher(m, data_queue_size=4, feed_size=100)
    events = d.feed("events")
    seen: list[int] = []
    d.add_callback("trade", lambda t: seen.append(t.seq))
    for i in range(10):  # the dispatcher task is not running: the consumer is "slow"
        d.trade(_trade(i))
    task = asyncio.create_task(d.run())
    await asyncio.sleep(0.05)
    task.cancel()
    assert seen == [6, 7, 8, 9]
    assert m.overflow_dropped == 6
    ov = events.get_nowait()
    assert isinstance(ov, Overflow) and ov.dropped == 6 and ov.queue == "callbacks"


async def test_events_reach_every_feed_and_state_callbacks() -> None:
    d = Dispatcher(Metrics(), data_queue_size=10, feed_size=10)
    a, b = d.feed("events"), d.feed("events")
    states: list[str] = []
    d.add_callback("state", lambda e: states.append(e.name))
    task = asyncio.create_task(d.run())
    d.event(SyncedEvent(channel="orderbook:AAPL", seq=3))
    await asyncio.sleep(0.02)
    task.cancel()
    assert a.get_nowait() == b.get_nowait()
    assert states == ["synced"]


async def test_book_feed_coalesces_per_channel() -> None:
    class View:
        def __init__(self, channel: str) -> None:
            self.channel = channel

    d = Dispatcher(Metrics(), data_queue_size=10, feed_size=10)
    f = d.feed("book")
    a, b = View("orderbook:A"), View("orderbook:B")
    for _ in range(100):
        f.put(a)
        f.put(b)
    assert len(f) == 2
    assert f.get_nowait() is a
    f.put(a)  # taken: may be queued again
    assert [f.get_nowait(), f.get_nowait(), f.get_nowait()] == [b, a, None]


async def test_raising_callback_logs_one_traceback_then_bounded_summaries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    m = Metrics()
    d = Dispatcher(m, data_queue_size=1000, feed_size=100, clock=lambda: now[0])

    def bad(t: object) -> None:
        raise RuntimeError("user bug")

    def other_bad(t: object) -> None:
        raise KeyError("other")

    d.add_callback("trade", bad)
    d.add_callback("trade", other_bad)
    task = asyncio.create_task(d.run())
    caplog.set_level(logging.DEBUG, logger="tickpipe.client.dispatch")
    try:
        for i in range(85):
            d.trade(_trade(i))
        await _until(lambda: m.callback_errors == 170)
        tracebacks = [r for r in caplog.records if r.exc_info]
        assert len(tracebacks) == 2  # the first error of each callback, in full
        assert {r.exc_info[0] for r in tracebacks if r.exc_info} == {RuntimeError, KeyError}
        assert len(caplog.records) == 2  # no line per further error
        counts = d.callback_error_counts
        assert sum(counts.values()) == 170 and len(counts) == 2
        assert any("bad" in k and v == 85 for k, v in counts.items()), counts
        now[0] += d.error_log_every_s + 0.1  # time passes; the next error brings a summary
        d.trade(_trade(85))
        await _until(lambda: m.callback_errors == 172)
        summaries = [r for r in caplog.records[2:] if not r.exc_info]
        assert len(summaries) == 2, [r.getMessage() for r in caplog.records]
        assert any("85 more" in r.getMessage() or "85 times" in r.getMessage()
                   for r in summaries), [r.getMessage() for r in summaries]  # fmt: skip
        for i in range(86, 120):  # still within the interval: silent again
            d.trade(_trade(i))
        await _until(lambda: m.callback_errors == 240)
        assert len(caplog.records) == 4
    finally:
        task.cancel()


async def _until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.005)
