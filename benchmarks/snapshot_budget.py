"""200 Binance books seeded under Binance's real request-weight budget (issue 14).

    .venv/bin/python -m benchmarks.snapshot_budget [--quick] [--books 200]

An in-process gateway with ``--dialect binance`` (6000 weight a 60 s window aligned on the
wall clock, depth 1000 = weight 50, depth 100 = weight 5, 429 + Retry-After, 418 bans) serves
``--books`` markets with 1000 simulated levels a side; the real client (``venue="binance"``)
subscribes every book plus a few tickers at once, starting 0.5 s into a window (the worst
case: the whole budget of the first window is there to spend, and the rest must wait for the
next one). Printed per depth (1000, then 100): seconds to all books synced, snapshot
requests, 429s and 418s (client and gateway counts), ticker updates received while books were
still waiting (the other streams keep flowing). ``--quick``: the same with a 6 s window.

Bounded: the 1000-level run takes one window plus a little (~61 s; ~7 s with ``--quick``), the
100-level run a few seconds. Nothing else is measured: run it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import time

from tickpipe import Client
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.markets import MarketSpec
from tickpipe.protocol.instruments import Instrument
from tickpipe.venues.binance.adapter import BinanceSpotVenue
from tickpipe.venues.binance.limits import SPOT_LIMITS


def _markets(n: int) -> tuple[MarketSpec, ...]:
    return tuple(
        MarketSpec(Instrument(f"B{i:03d}USDT", "crypto", "0.01", "0.001"), "100.00", 50)
        for i in range(n)
    )


async def run(books: int, depth: int, window_s: float, timeout_s: float) -> dict[str, object]:
    cfg = GatewayConfig(
        port=0,
        admin_port=None,
        seed=14,
        rate=2.0,
        depth=1000,
        markets=_markets(books),
        dialect="binance",
        dialect_options=(("weight_window_s", window_s),),
    )
    limits = dataclasses.replace(SPOT_LIMITS, weight_window_s=window_s)
    symbols = [m.instrument.symbol for m in cfg.markets]
    async with Gateway(cfg) as gw:
        client = Client(
            venue=BinanceSpotVenue(limits=limits),
            stream_url=gw.stream_url,
            rest_url=gw.rest_url,
            snapshot_depth=None if depth == 1000 else depth,
        )
        async with client:
            tickers = client.tickers()
            ticks: list[float] = []

            async def count() -> None:
                async for _ in tickers:
                    ticks.append(time.time())

            counter = asyncio.create_task(count())
            now = time.time()
            start_at = (math.floor(now / window_s) + 1) * window_s + 0.5
            await asyncio.sleep(start_at - now)
            t0 = time.time()
            channels = [f"orderbook:{s}" for s in symbols] + [f"ticker:{s}" for s in symbols[:5]]
            res = await client.subscribe(channels)
            assert len(res.accepted) == len(channels), res
            synced_at: dict[str, float] = {}
            async with asyncio.timeout(timeout_s):
                while len(synced_at) < books:
                    for s in symbols:
                        if s not in synced_at and client.book(s).synced:
                            synced_at[s] = time.time()
                    await asyncio.sleep(0.05)
            t_all = max(synced_at.values())
            counter.cancel()
            stats = client.stats()
            assert gw.dialect is not None
            refused = gw.dialect.stats()["refused"]
            first_window_end = math.floor(t0 / window_s) * window_s + window_s
            return {
                "books": books,
                "depth": depth,
                "weight_each": SPOT_LIMITS.snapshot_weight(depth),
                "window_s": window_s,
                "time_to_all_synced_s": round(t_all - t0, 2),
                "synced_in_first_window": sum(
                    1 for t in synced_at.values() if t < first_window_end
                ),
                "snapshot_requests": stats.snapshot_requests,
                "client_429": stats.snapshot_429,
                "gateway_429": refused.get("429", 0),
                "gateway_418": refused.get("418", 0),
                "exact_depth": client.book(symbols[0]).exact_depth,
                "ticker_updates_while_seeding": sum(1 for t in ticks if t0 < t < t_all),
            }


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a 6 s window instead of 60 s")
    p.add_argument("--books", type=int, default=200)
    args = p.parse_args()
    window_s = 6.0 if args.quick else 60.0
    for depth in (1000, 100):
        out = await run(args.books, depth, window_s, timeout_s=3 * window_s + 30)
        print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
