"""Rotation's handover in the generic shell, step by step: ``Channels`` fed the frames of two
connections (Binance's own encoding of depth events), and the knobs that time a rotation.
The whole thing against the real gateway: tests/integration/test_rotation.py."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from tickpipe.client.channels import Channels
from tickpipe.client.config import ClientConfig
from tickpipe.client.dispatch import Dispatcher
from tickpipe.client.metrics import Metrics
from tickpipe.client.snapshots import SnapshotOutcome, SnapshotScheduler
from tickpipe.client.venue import max_connection_age
from tickpipe.errors import ConfigError
from tickpipe.protocol.frames import Snapshot
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import BookDelta
from tickpipe.protocol.watchdog import SilenceDetector
from tickpipe.venues.binance.codec import Codec
from tickpipe.venues.binance.endpoints import SPOT
from tickpipe.venues.okx.adapter import OkxVenue
from tickpipe.venues.registry import venue_named

CH = "orderbook:BTCUSDT"
CODEC = Codec(SPOT)


def depth(first: int, last: int, price: str = "100.00", size: str = "1.000") -> bytes:
    """A Binance depth event with update ids ``first``..``last``."""
    return CODEC.encode_delta(
        BookDelta("BTCUSDT", [(price, size)], [], last_id=last, first_id=first, ts_ns=1)
    )


class Setup:
    """A real Channels on the Binance adapter, one book LIVE at update id 10."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.dispatcher = Dispatcher(self.metrics, 100, 100)
        self.feed = self.dispatcher.feed("events")

        async def never(channel: str) -> Snapshot:
            raise AssertionError("not fetched here")

        self.scheduler = SnapshotScheduler(
            never,
            lambda out: None,
            concurrency=1,
            rate_per_s=1.0,
            burst=1,
            jitter_s=0.0,
            clock=time.monotonic,
            random=random.random,
        )
        self.ch = Channels(
            metrics=self.metrics,
            dispatcher=self.dispatcher,
            scheduler_ref=lambda: self.scheduler,
            sync_config=ClientConfig().sync,
            clock=time.monotonic,
            random=random.random,
            silence=SilenceDetector(None),
            connected=lambda: True,
            venue=venue_named("binance"),
        )
        self.ch.instruments["BTCUSDT"] = Instrument("BTCUSDT", "crypto", "0.01", "0.001")
        assert self.ch.activate(CH) is None
        bc = self.ch.books[CH]
        snap = Snapshot("BTCUSDT", 10, 0, [("99.00", "1.000")], [("101.00", "1.000")])
        self.ch.on_snapshot(SnapshotOutcome(CH, bc.sync.epoch, snap))
        assert bc.sync.state.value == "live" and bc.sync.seq == 10
        self.events()  # the first seed's

    @property
    def seq(self) -> int | None:
        return self.ch.books[CH].sync.seq

    @property
    def state(self) -> str:
        return self.ch.books[CH].sync.state.value

    def events(self) -> list[str]:
        out = [e.name for e in self.feed._items]
        self.feed._items.clear()
        return out


async def test_new_connection_level_with_the_book_takes_over() -> None:
    s = Setup()
    s.ch.begin_rotation()
    s.ch.on_text_old(depth(11, 12))
    s.ch.on_text_new(depth(9, 10))  # older than the book: dropped
    s.ch.on_text_new(depth(11, 12))  # the book's last update: the new stream is level
    assert s.ch.rotation_ready.is_set()
    s.ch.on_text_old(depth(13, 14, size="9.000"))  # the old connection's copy: dropped
    assert s.seq == 12
    s.ch.on_text_new(depth(13, 14))
    assert s.seq == 14 and s.state == "live"
    s.ch.finish_rotation()
    s.ch.on_text(depth(15, 15))
    assert s.seq == 15
    assert s.events() == []  # no gap, no stale, no synced
    assert s.ch.books[CH].sync.book.bids.size_at(10000) == 1000  # the new one's 1.000 kept


async def test_new_connection_ahead_waits_for_the_old_one() -> None:
    s = Setup()
    s.ch.begin_rotation()
    s.ch.on_text_new(depth(13, 14))  # ahead of the book (10): held
    s.ch.on_text_new(depth(15, 16))
    assert not s.ch.rotation_ready.is_set() and s.seq == 10
    s.ch.on_text_old(depth(11, 12))  # the book reaches 12: the held 13..16 follow
    assert s.ch.rotation_ready.is_set()
    assert s.seq == 16 and s.state == "live"
    assert s.events() == []


async def test_unbridged_book_reseeds_at_the_deadline_and_abort_reseeds_moved() -> None:
    s = Setup()
    s.ch.begin_rotation()
    s.ch.on_text_new(depth(20, 21))  # never joined: the old stream stops at 10
    s.ch.finish_rotation()
    assert s.state == "syncing"
    assert s.events()[:1] == ["stale"]
    assert s.ch.rotation_reseeds == 1
    s2 = Setup()
    s2.ch.begin_rotation()
    s2.ch.on_text_new(depth(9, 10))  # moved
    s2.ch.abort_rotation()  # the new connection died: the old one's values were dropped
    assert s2.state == "syncing" and not s2.ch.rotating


def test_rotation_knobs_and_venue_age() -> None:
    assert max_connection_age(venue_named("binance")) == 86_400.0
    assert max_connection_age(OkxVenue()) is None
    assert max_connection_age(venue_named("vts")) is None
    cfg = ClientConfig()
    assert cfg.rotation_margin_s == 600.0 and cfg.rotation_handover_timeout_s == 30.0
    for name in ("rotation_margin_s", "rotation_handover_timeout_s"):
        bad: dict[str, Any] = {name: 0}
        with pytest.raises(ConfigError, match=name):
            ClientConfig(**bad)
