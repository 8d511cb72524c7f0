"""`tickpipe watch` through a subprocess against the real gateway: JSONL contract, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tickpipe.gateway import Gateway, GatewayConfig


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(port=0, admin_port=0, seed=3, rate=30.0, heartbeat_ms=300)
    async with Gateway(cfg) as g:
        yield g


async def _watch(
    gw: Gateway | None, *args: str, stop_after: float | None = None, timeout: float = 20.0
) -> tuple[int, str, str]:
    urls: list[str] = []
    if gw is not None:
        urls = ["--stream-url", gw.stream_url, "--rest-url", gw.rest_url]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TICKPIPE_KEY", None)
    env.pop("TICKPIPE_SECRET", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tickpipe",
        "watch",
        *args,
        *urls,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    if stop_after is not None:
        await asyncio.sleep(stop_after)
        proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    for d in lines:
        assert isinstance(d["event"], str) and isinstance(d["t"], float)
    return lines


def _check_final_book(d: dict[str, Any]) -> None:
    assert set(d) >= {"event", "t", "channel", "synced", "seq", "bids", "asks"}
    assert d["synced"] is True and isinstance(d["seq"], int)
    for side in ("bids", "asks"):
        levels = d[side]
        assert 1 <= len(levels) <= 10
        for price, size in levels:
            assert isinstance(price, str) and isinstance(size, str)
            float(price), float(size)
    prices_b = [float(p) for p, _ in d["bids"]]
    prices_a = [float(p) for p, _ in d["asks"]]
    assert prices_b == sorted(prices_b, reverse=True)
    assert prices_a == sorted(prices_a)
    assert prices_b[0] < prices_a[0]


async def test_jsonl_contract_and_exit_0_at_duration(gw: Gateway) -> None:
    code, out, err = await _watch(
        gw,
        "orderbook:AAPL",
        "ticker:BTC-USD",
        "trades:XAU-USD",
        "orderbook:NOPE",
        "--duration",
        "1.5",
        "--jsonl",
    )
    assert code == 0, err
    lines = _lines(out)
    names = [d["event"] for d in lines]
    assert names[0] == "connected" and lines[0]["url"] == gw.stream_url
    sub = next(d for d in lines if d["event"] == "subscribed")
    assert sorted(sub["channels"]) == ["orderbook:AAPL", "ticker:BTC-USD", "trades:XAU-USD"]
    se = next(d for d in lines if d["event"] == "subscribe_error")
    assert se["channel"] == "orderbook:NOPE" and se["code"] == "unknown_channel"
    synced = next(d for d in lines if d["event"] == "synced")
    assert synced["channel"] == "orderbook:AAPL" and isinstance(synced["seq"], int)
    finals = [d for d in lines if d["event"] == "final_book"]
    assert [d["channel"] for d in finals] == ["orderbook:AAPL", "orderbook:NOPE"]
    _check_final_book(finals[0])
    assert finals[1]["synced"] is False and finals[1]["bids"] == []
    assert names[-2:] == ["final_book", "final_book"]


async def test_jsonl_reports_faults(gw: Gateway) -> None:
    async def inject() -> None:
        await asyncio.sleep(1.5)
        gw.trigger("drop_delta", channel="orderbook:MSFT")
        gw.trigger("malformed_frame", channel="orderbook:MSFT")
        await asyncio.sleep(0.5)
        gw.trigger("stop_pings", duration_ms=60_000)

    task = asyncio.create_task(inject())
    code, out, err = await _watch(gw, "orderbook:MSFT", "--duration", "4", "--jsonl")
    await task
    assert code == 0, err
    lines = _lines(out)
    gap = next(d for d in lines if d["event"] == "gap")
    assert gap["channel"] == "orderbook:MSFT" and gap["reason"] in ("seq_gap", "bad_frame")
    assert {"expected", "got"} <= set(gap)
    assert any(d["event"] == "bad_frame" and d["channel"] == "orderbook:MSFT" for d in lines)
    disc = next(d for d in lines if d["event"] == "disconnected")
    assert disc["reason"] == "heartbeat"
    stale = next(d for d in lines if d["event"] == "stale")
    assert stale == {**stale, "channel": "orderbook:MSFT", "reason": "heartbeat"}
    oc = next(d for d in lines if d["event"] == "orders_cancelled")
    assert oc["cancelled"] == [] and oc["failed"] == []
    rc = next(d for d in lines if d["event"] == "reconnecting")
    assert rc["attempt"] == 0 and rc["delay_s"] > 0
    assert [d["event"] for d in lines].count("connected") == 2
    _check_final_book(next(d for d in lines if d["event"] == "final_book"))


async def test_auth_failed_exit_3(gw: Gateway) -> None:
    code, out, _ = await _watch(
        gw, "orderbook:AAPL", "--key", "demo", "--secret", "wrong", "--jsonl", "--duration", "5"
    )  # a whole pair: half of one is a usage error (exit 2, tests/client/test_credentials.py)
    assert code == 3
    lines = _lines(out)
    assert [d["event"] for d in lines] == ["auth_failed"]
    assert lines[0]["message"]


async def test_ctrl_c_exit_0_with_final_book(gw: Gateway) -> None:
    code, out, err = await _watch(gw, "orderbook:AAPL", "--jsonl", stop_after=2.0)
    assert code == 0, err
    lines = _lines(out)
    _check_final_book(next(d for d in lines if d["event"] == "final_book"))


async def test_human_output(gw: Gateway) -> None:
    code, out, err = await _watch(gw, "orderbook:AAPL", "--duration", "1.5")
    assert code == 0, err
    assert "connected" in out and "synced" in out and "final_book orderbook:AAPL synced" in out
    assert not out.lstrip().startswith("{")


@pytest.mark.parametrize(
    "args",
    [
        ("book:AAPL",),
        ("orderbook:",),
        ("orderbook:AAPL", "--duration", "-1"),
        ("orderbook:AAPL", "--duration", "abc"),
        ("orderbook:AAPL", "--stale-after", "0"),
        ("orderbook:AAPL", "--stream-url", "http://x"),
        (),
    ],
)
async def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    code, out, err = await _watch(None, *args, timeout=10)
    assert code == 2
    assert out == ""
    assert "error" in err
