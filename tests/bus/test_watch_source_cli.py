"""`tickpipe watch --source` through a subprocess, fed by `tickpipe publish` (another one): the
real gateway, a real nats-server; the consumer's final books equal the gateway's truth."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tickpipe.bus.natsserver import NatsServer
from tickpipe.gateway import Gateway, GatewayConfig

CHANNELS = ["orderbook:AAPL", "orderbook:BTC-USD", "ticker:AAPL"]


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async with Gateway(GatewayConfig(port=0, admin_port=0, seed=5, rate=30.0)) as g:
        yield g


async def _run(*args: str, timeout: float = 40.0) -> tuple[int, list[dict[str, Any]], str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tickpipe", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    lines = [json.loads(x) for x in out.decode().splitlines() if x.strip().startswith("{")]
    return proc.returncode, lines, err.decode()


def _truth_levels(gw: Gateway, symbol: str, seq: int) -> tuple[list[list[str]], ...]:
    truth = gw.true_book(symbol, seq)
    inst = truth.instrument
    bids, asks = truth.to_lists()
    return (
        [[inst.format_price(p), inst.format_size(s)] for p, s in bids],
        [[inst.format_price(p), inst.format_size(s)] for p, s in asks],
    )


async def test_publish_then_watch_source_gives_books_equal_to_the_truth(
    gw: Gateway, nats_server: NatsServer
) -> None:
    publisher = asyncio.create_task(
        _run("publish", *CHANNELS, "--nats", nats_server.url, "--stream-url", gw.stream_url,
             "--rest-url", gw.rest_url, "--duration", "9", "--jsonl")
    )  # fmt: skip
    await asyncio.sleep(3.0)
    code, lines, err = await _run(
        "watch", "--source", nats_server.url, *CHANNELS, "--duration", "4", "--jsonl"
    )
    assert code == 0, err
    finals = [d for d in lines if d["event"] == "final_book"]
    assert {d["channel"] for d in finals} == {"orderbook:AAPL", "orderbook:BTC-USD"}
    for d in finals:
        assert d["synced"], d
        bids, asks = _truth_levels(gw, d["channel"].partition(":")[2], d["seq"])
        assert d["bids"] and d["asks"]
        assert d["bids"] == bids[: len(d["bids"])] and d["asks"] == asks[: len(d["asks"])]
    assert any(d["event"] == "ticker" for d in lines)
    pcode, plines, perr = await publisher
    assert pcode == 0, perr
    names = [d["event"] for d in plines]
    assert "bus_connected" in names and "published" in names
    published = next(d for d in plines if d["event"] == "published")
    assert published["by_kind"]["delta"] > 10 and published["dropped"] == 0
