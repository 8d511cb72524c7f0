"""`tickpipe watch` through a subprocess against the real gateway: JSONL contract, exit codes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tickpipe.client.events import EVENT_TYPES
from tickpipe.gateway import Gateway, GatewayConfig

DEAD = ["--stream-url", "ws://127.0.0.1:9/v1/stream", "--rest-url", "http://127.0.0.1:9"]


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(port=0, admin_port=0, seed=3, rate=30.0, heartbeat_ms=300)
    async with Gateway(cfg) as g:
        yield g


async def _watch(
    gw: Gateway | None,
    *args: str,
    stop_after: float | None = None,
    timeout: float = 20.0,
    sig: signal.Signals = signal.SIGINT,
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
        proc.send_signal(sig)
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
    # a refused channel gets no final_book (issue 12): it is named on stderr instead
    finals = [d for d in lines if d["event"] == "final_book"]
    assert [d["channel"] for d in finals] == ["orderbook:AAPL"]
    _check_final_book(finals[0])
    assert names[-1] == "final_book"
    assert "refused orderbook:NOPE (unknown_channel)" in err and "AAPL, BTC-USD" in err
    assert {"ticker", "trade"} & set(names)  # tickers (10/s) are printed too


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


# -- issue 12 ------------------------------------------------------------------------------


async def test_duration_bounds_the_connect_phase_too() -> None:
    """Against nothing listening, --duration 2 used to run ~10.4 s (the start-up window)."""
    t0 = time.monotonic()
    code, out, err = await _watch(None, "orderbook:AAPL", *DEAD, "--duration", "2", "--jsonl")
    elapsed = time.monotonic() - t0
    assert code == 1, err
    assert elapsed < 7.0, f"--duration 2 ran {elapsed:.1f} s"
    assert "not connected to ws://127.0.0.1:9/v1/stream within --duration 2 s" in err
    lines = _lines(out)
    assert lines and {d["event"] for d in lines} == {"connect_retry"}
    assert [d["attempt"] for d in lines] == list(range(1, len(lines) + 1))
    assert all(d["delay_s"] > 0 and "ConnectionRefused" in d["error"] for d in lines)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_signal_stops_it_while_still_connecting(sig: signal.Signals) -> None:
    """Ctrl-C (three times) and SIGTERM used to be ignored until the start-up window ended."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tickpipe", "watch", "orderbook:AAPL", *DEAD, "--jsonl",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert first["event"] == "connect_retry"  # it is retrying: now stop it
        t0 = time.monotonic()
        proc.send_signal(sig)
        await asyncio.wait_for(proc.wait(), 5)
        assert time.monotonic() - t0 < 3.0
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_stream_url_answering_404_fails_at_once(gw: Gateway) -> None:
    t0 = time.monotonic()
    bad = gw.stream_url.replace("/v1/stream", "/v1/nope")
    code, out, err = await _watch(
        None, "orderbook:AAPL", "--stream-url", bad, "--rest-url", gw.rest_url, "--jsonl"
    )
    assert code == 1, err
    assert time.monotonic() - t0 < 6.0  # was: retried for the whole 10 s start-up window
    assert "HTTP 404" in err and bad in err
    assert err.count("HTTP 404") == 1
    assert "reconnecting" not in out and "Traceback" not in err


async def test_every_channel_refused_exits_2_naming_them(gw: Gateway) -> None:
    code, out, err = await _watch(gw, "orderbook:FOO", "ticker:BAR", "--jsonl", timeout=30)
    assert code == 2, err
    assert "orderbook:FOO (unknown_channel)" in err and "ticker:BAR (unknown_channel)" in err
    assert "AAPL" in err and "XAU-USD" in err  # the symbols the gateway lists
    names = [d["event"] for d in _lines(out)]
    assert "final_book" not in names and names.count("subscribe_error") == 2


async def test_tickers_and_trades_are_shown(gw: Gateway) -> None:
    chans = ["ticker:BTC-USD", *(f"trades:{s}" for s in ("BTC-USD", "ETH-USD", "AAPL", "MSFT"))]
    code, out, err = await _watch(gw, *chans, "--duration", "3", "--jsonl")
    assert code == 0, err
    lines = _lines(out)
    ticker = next(d for d in lines if d["event"] == "ticker")
    assert set(ticker) == {"event", "t", "channel", "seq", "bid", "ask", "last"}
    assert ticker["channel"] == "ticker:BTC-USD" and isinstance(ticker["seq"], int)
    assert float(ticker["bid"]) < float(ticker["ask"])
    trade = next(d for d in lines if d["event"] == "trade")
    assert set(trade) == {"event", "t", "channel", "seq", "price", "size", "side"}
    assert trade["side"] in ("buy", "sell") and float(trade["size"]) > 0
    code, out, err = await _watch(gw, *chans, "--duration", "3")
    assert code == 0, err
    assert re.search(r" ticker +ticker:BTC-USD bid [0-9.]+ ask [0-9.]+ last [0-9.]+ seq=", out)
    assert re.search(r" trade +trades:\S+ (buy|sell) [0-9.]+ @ [0-9.]+ seq=", out)


async def test_human_output_has_no_raw_floats_or_reprs(gw: Gateway) -> None:
    async def inject() -> None:
        await asyncio.sleep(1.5)
        gw.trigger("disconnect", close_frame=False)

    task = asyncio.create_task(inject())
    code, out, err = await _watch(gw, "orderbook:AAPL", "ticker:ETH-USD", "--duration", "4")
    await task
    assert code == 0, err
    assert re.search(r" reconnecting +attempt=0 delay=\d+\.\d\ds", out), out
    assert re.search(r" subscribed +channels=orderbook:AAPL,ticker:ETH-USD", out), out
    assert " orders_cancelled " in out
    for bad in ("['", "False", "True", "None"):
        assert bad not in out
    assert not re.search(r"\d\.\d{5,}", out), "an unrounded float"


def test_help_gives_real_defaults_and_mentions_tickers_and_trades() -> None:
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "tickpipe", "watch", "--help"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    flat = " ".join(out.split())
    assert "else demo-secret" in flat and "else demo)" in flat
    assert "ticker" in flat and "trade" in flat and "connecting included" in flat


def test_readme_lists_every_watch_jsonl_event() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("`tickpipe watch --jsonl` prints") :]
    section = section[: section.index("Exit status")]
    section = " ".join(section.split())
    for t in EVENT_TYPES:
        if t.name == "unsubscribed":
            continue  # watch never unsubscribes
        names = [f.name for f in dataclasses.fields(t) if f.name != "t"]
        assert f"`{t.name} {{{', '.join(names)}}}`" in section, t.name  # fields as emitted
    for extra in (
        "ticker {channel, seq, bid, ask, last}",
        "trade {channel, seq, price, size, side}",
    ):
        assert f"`{extra}`" in section
