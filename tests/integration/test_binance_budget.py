"""The snapshot scheduler spends Binance's request-weight window, against the binance dialect.

Everything real (the in-process gateway with ``--dialect binance`` on 127.0.0.1, the client's
generic shell with the Binance adapter); only the window is short: the dialect's
``weight_window_s`` and ``weight_per_window`` options and the adapter's ``Limits`` say 2 s and
600 weight (the reserve stays 100: 10 snapshots of 1000 levels a window, 100 of 100 levels).
``benchmarks/snapshot_budget.py`` runs the same with the real 60 s window and 6000 weight.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tickpipe import Client
from tickpipe.errors import RateLimitedError
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.markets import MarketSpec
from tickpipe.protocol.instruments import Instrument
from tickpipe.venues.binance.adapter import BinanceSpotVenue
from tickpipe.venues.binance.limits import SPOT_LIMITS

from .conftest import FAST_RECONNECT

WINDOW_S = 2.0
WEIGHT = 600
PER_WINDOW = (WEIGHT - 100) // 50  # 1000-level snapshots a window after the reserve
BOOKS = 25


def _markets(n: int) -> tuple[MarketSpec, ...]:
    return tuple(
        MarketSpec(Instrument(f"S{i:03d}", "equity", "0.01", "1"), "100.00", 50) for i in range(n)
    )


@pytest.fixture
async def bgw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(
        port=0,
        admin_port=0,
        seed=14,
        rate=20.0,
        depth=120,
        markets=_markets(BOOKS),
        dialect="binance",
        dialect_options=(("weight_window_s", WINDOW_S), ("weight_per_window", WEIGHT)),
    )
    async with Gateway(cfg) as g:
        yield g


def _client(g: Gateway, **knobs: Any) -> Client:
    venue = BinanceSpotVenue(
        limits=dataclasses.replace(
            SPOT_LIMITS, request_weight_per_minute=WEIGHT, weight_window_s=WINDOW_S
        )
    )
    return Client(
        venue=venue,
        stream_url=g.stream_url,
        rest_url=g.rest_url,
        reconnect=FAST_RECONNECT,
        snapshot_jitter_s=0.02,
        **knobs,
    )


def _refused(g: Gateway) -> dict[str, int]:
    assert g.dialect is not None
    stats: dict[str, Any] = g.dialect.stats()
    refused: dict[str, int] = stats["refused"]
    return refused


async def _wait_all_synced(client: Client, symbols: list[str], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not all(client.book(s).synced for s in symbols):
            await asyncio.sleep(0.02)


async def _to_window_start(offset_s: float) -> None:
    """Sleep to ``offset_s`` into the next wall-clock window (the dialect's windows)."""
    now = time.time()
    await asyncio.sleep((math.floor(now / WINDOW_S) + 1) * WINDOW_S + offset_s - now)


async def test_books_seed_in_ceil_n_over_per_window_windows_with_no_429(bgw: Gateway) -> None:
    symbols = [f"S{i:03d}" for i in range(BOOKS)]
    windows = math.ceil(BOOKS / PER_WINDOW)  # 3
    async with _client(bgw) as client:
        tickers = client.tickers()
        ticker_times: list[float] = []

        async def count() -> None:
            async for _ in tickers:
                ticker_times.append(time.time())

        counter = asyncio.create_task(count())
        await _to_window_start(0.05)  # the worst case: a whole first window to spend
        t0 = time.time()
        res = await client.subscribe(
            [f"orderbook:{s}" for s in symbols] + ["trades:S000", "ticker:S001", "ticker:S002"]
        )
        assert len(res.accepted) == BOOKS + 3
        await _wait_all_synced(client, symbols, 30)
        t_all = time.time()
        elapsed = t_all - t0
        counter.cancel()
        stats = client.stats()
        # the floor: the last window opens (windows - 1) windows after the first one
        assert elapsed >= (windows - 1) * WINDOW_S - 0.1, elapsed
        assert elapsed <= windows * WINDOW_S + 1.5, elapsed  # slack for a loaded machine
        assert stats.snapshot_429 == 0 and stats.snapshot_requests == BOOKS
        assert _refused(bgw) == {"429": 0, "418": 0}
        # the other streams flowed while the last books waited for their window
        assert any(t0 + WINDOW_S < t < t_all - 0.3 for t in ticker_times), (t0, t_all)
        view = client.book("S000")
        assert view.exact_depth == 1000  # Binance's default snapshot depth
        assert view.usable(levels=1000) and not view.usable(levels=1001)


async def test_depth_100_costs_5_and_the_book_says_so(bgw: Gateway) -> None:
    symbols = [f"S{i:03d}" for i in range(BOOKS)]
    async with _client(bgw, snapshot_depth=100) as client:
        await _to_window_start(0.05)
        res = await client.subscribe([f"orderbook:{s}" for s in symbols])
        assert len(res.accepted) == BOOKS
        await _wait_all_synced(client, symbols, WINDOW_S - 0.4 + 5.0)  # one window (+ slack)
        assert client.stats().snapshot_429 == 0
        view = client.book("S003")
        assert view.exact_depth == 100 and len(view.bids(None)) >= 100
        assert view.usable(levels=100) and not view.usable(levels=101)


async def test_another_process_spending_the_ip_budget_makes_the_client_back_off(
    bgw: Gateway,
) -> None:
    """Another user of the same IP spends 300 of the 600 at the start of the window: the
    client's first answer carries X-MBX-USED-WEIGHT-1M over what it sent, so it spends only
    what is left (4 snapshots, not 10) and waits for the next window: no 429."""
    symbols = [f"S{i:03d}" for i in range(BOOKS)]
    depth_url = f"{bgw.rest_url}/api/v3/depth?symbol=S000&limit=1000"
    async with _client(bgw) as client, aiohttp.ClientSession() as other:
        await _to_window_start(0.02)
        for _ in range(6):  # 6 x 50 weight
            async with other.get(depth_url) as r:
                assert r.status == 200
        assert int(r.headers["X-MBX-USED-WEIGHT-1M"]) >= 300
        await client.subscribe([f"orderbook:{s}" for s in symbols])
        sch = client._scheduler
        assert sch is not None and sch.window is not None
        async with asyncio.timeout(10):
            while sch.requests < 4:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        window = sch.window
        if window.start == math.floor(time.time() / WINDOW_S) * WINDOW_S:  # still that window
            assert sch.requests == 4 and window.used >= 500, (sch.requests, window.used)
        await _wait_all_synced(client, symbols, 30)
        assert client.stats().snapshot_429 == 0
        assert _refused(bgw) == {"429": 0, "418": 0}


async def test_a_418_ban_stops_every_call_for_its_length() -> None:
    """Another user of the IP got it banned (418, ``ban_s`` 3 s): the client's first call meets
    the ban, then nothing more is sent (snapshots nor instruments) until it ends."""
    cfg = GatewayConfig(
        port=0,
        admin_port=None,
        seed=14,
        rate=20.0,
        depth=120,
        markets=_markets(4),
        dialect="binance",
        dialect_options=(
            ("weight_window_s", 30.0),
            ("weight_per_window", 100),
            ("ban_after_429s", 1),
            ("ban_s", 3.0),
        ),
    )
    async with Gateway(cfg) as g:
        venue = BinanceSpotVenue(
            limits=dataclasses.replace(
                SPOT_LIMITS, request_weight_per_minute=1000, weight_window_s=30.0
            )
        )  # the client believes in a larger budget than the gateway's
        client = Client(
            venue=venue, stream_url=g.stream_url, rest_url=g.rest_url, reconnect=FAST_RECONNECT
        )
        async with client:
            url = f"{g.rest_url}/api/v3/depth?symbol=S000&limit=1000"
            async with aiohttp.ClientSession() as other:
                statuses = []
                for _ in range(4):  # 50 + 50, then a 429, then the ban
                    async with other.get(url) as r:
                        statuses.append(r.status)
            assert statuses[-1] == 418, statuses
            refused_before = dict(_refused(g))
            rest = client._rest
            assert rest is not None
            sent_before = rest.requests
            t0 = time.monotonic()
            await client.subscribe([f"orderbook:S{i:03d}" for i in range(4)])
            await asyncio.sleep(1.5)
            assert rest.requests - sent_before == 1  # the one that met the ban, no more
            assert _refused(g)["418"] - refused_before["418"] == 1
            assert rest.banned_until > time.monotonic()
            with pytest.raises(RateLimitedError, match="not sent"):
                await rest.venue_instruments(venue)  # any call, refused here
            assert _refused(g)["418"] - refused_before["418"] == 1
        assert time.monotonic() - t0 >= 1.5
