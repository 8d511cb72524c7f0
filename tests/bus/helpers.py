"""Test helpers for the bus: read a stream back, rebuild books from it, wait for conditions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
from nats.js.api import DeliverPolicy

from tickpipe.bus import schema
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument

T = TypeVar("T")


async def read_stream(
    url: str, subject: str = f"{schema.SUBJECT_ROOT}.>", stream: str = schema.DEFAULT_STREAM
) -> list[tuple[str, dict[str, str], schema.BusMessage]]:
    """Every message of ``stream`` on ``subject``, in stream order, as (subject, headers,
    decoded): an ordered consumer read until nothing is pending (bounded: 10 s)."""
    nc = await nats.connect(servers=url.split(","), connect_timeout=2, max_reconnect_attempts=1)
    try:
        js = nc.jetstream()
        info = await answered(lambda: js.stream_info(stream, subjects_filter=subject))
        total = sum((info.state.subjects or {}).values())
        out: list[tuple[str, dict[str, str], schema.BusMessage]] = []
        if total == 0:
            return out
        sub = await answered(
            lambda: js.subscribe(
                subject, stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
            )
        )
        try:
            async with asyncio.timeout(10):
                while True:
                    msg = await sub.next_msg(timeout=5)
                    out.append((msg.subject, dict(msg.headers or {}), schema.decode(msg.data)))
                    if msg.metadata.num_pending == 0:
                        break
        finally:
            await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def answered(call: Callable[[], Awaitable[T]], attempts: int = 6) -> T:
    """``call()`` again after a JetStream API timeout, at most ``attempts`` times (each waits
    5 s): a cluster that has just lost a node answers nothing until it has elected new
    leaders for the meta layer and the stream (a CI run saw a consumer create time out)."""
    for attempt in range(attempts):
        try:
            return await call()
        except nats.errors.TimeoutError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


def levels(inst: Instrument, raw: list[schema.RawLevel]) -> list[tuple[int, int]]:
    return [(inst.price_units(p), inst.size_units(s)) for p, s in raw]


def text_book(book: OrderBook) -> tuple[list[list[str]], list[list[str]]]:
    inst = book.instrument
    b, a = book.to_lists()
    return (
        [[inst.format_price(p), inst.format_size(s)] for p, s in b],
        [[inst.format_price(p), inst.format_size(s)] for p, s in a],
    )


class BusBook:
    """One book rebuilt from bus messages, checking the seq rules as it goes."""

    def __init__(self, inst: Instrument) -> None:
        self.book = OrderBook(inst)
        self.seq: int | None = None
        self.epoch: int | None = None
        self.venue_id: int | None = None
        self.depth: int | None = None
        self.resets = 0
        self.holes = 0
        self.states: list[str] = []

    def feed(self, msg: schema.BusMessage) -> bool:
        """Apply one message; True when it was a Delta applied in sequence (the caller may
        compare with the truth at ``venue_id``)."""
        inst = self.book.instrument
        if isinstance(msg, schema.Snap):
            if msg.reset:
                self.book.load(levels(inst, msg.bids), levels(inst, msg.asks))
                self.seq, self.epoch, self.venue_id = msg.seq, msg.epoch, msg.venue_id
                self.depth = msg.depth
                self.resets += 1
            else:
                assert self.seq is None or msg.seq == self.seq, (msg.seq, self.seq)
            return False
        if isinstance(msg, schema.State):
            self.states.append(msg.state)
            return False
        assert isinstance(msg, schema.Delta)
        if self.seq is None:
            return False
        if msg.seq != self.seq + 1:
            self.holes += 1
            self.seq = None  # wait for a reset Snap
            return False
        assert msg.epoch == self.epoch
        self.book.apply(levels(inst, msg.bids), levels(inst, msg.asks))
        if self.depth is not None:
            self.book.truncate(self.depth)
        self.seq, self.venue_id = msg.seq, msg.venue_id
        return True


async def wait_until(pred: Callable[[], Any], timeout: float = 10.0, every: float = 0.02) -> None:
    """Poll ``pred`` until truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)
