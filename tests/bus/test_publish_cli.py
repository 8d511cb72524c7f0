"""`tickpipe publish` through a subprocess against the real gateway and a real nats-server:
JSONL (watch's lines and the bus's), the stream it fills, metrics, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.bus.helpers import read_stream
from tickpipe.bus import schema
from tickpipe.bus.natsserver import NatsServer
from tickpipe.gateway import Gateway, GatewayConfig


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(port=0, admin_port=0, seed=3, rate=30.0, heartbeat_ms=300)
    async with Gateway(cfg) as g:
        yield g


async def _publish(
    gw: Gateway | None,
    *args: str,
    stop_after: float | None = None,
    timeout: float = 30.0,
    on_line: Any = None,
) -> tuple[int, list[dict[str, Any]], str]:
    urls: list[str] = []
    if gw is not None:
        urls = ["--stream-url", gw.stream_url, "--rest-url", gw.rest_url]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TICKPIPE_KEY", None)
    env.pop("TICKPIPE_SECRET", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tickpipe", "publish", *args, *urls,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[dict[str, Any]] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            if raw.strip():
                d = json.loads(raw)
                lines.append(d)
                if on_line is not None:
                    await on_line(d)

    reader = asyncio.create_task(read())
    try:
        if stop_after is not None:
            await asyncio.sleep(stop_after)
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout):
            err = await proc.stderr.read()
            await proc.wait()
            await reader
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        reader.cancel()
    assert proc.returncode is not None
    return proc.returncode, lines, err.decode()


async def test_publish_jsonl_stream_and_metrics(gw: Gateway, nats_server: NatsServer) -> None:
    seen: dict[str, str] = {}

    async def on_line(d: dict[str, Any]) -> None:  # scrape /metrics once the book is synced
        if d["event"] == "metrics":
            seen["url"] = d["url"]
        elif d["event"] == "synced" and "text" not in seen:
            url = seen["url"]
            seen["text"] = await asyncio.to_thread(
                lambda: urllib.request.urlopen(url, timeout=5).read().decode()
            )

    code, lines, err = await _publish(
        gw, "orderbook:AAPL", "trades:AAPL", "--nats", nats_server.url, "--jsonl",
        "--duration", "2.5", "--metrics-port", "0", "--snapshot-every-s", "0.5",
        on_line=on_line,
    )  # fmt: skip
    assert code == 0, err
    names = [d["event"] for d in lines]
    assert names[0] == "metrics" and "bus_connected" in names and "synced" in names
    assert names.index("bus_connected") < names.index("connected")
    connected = lines[names.index("bus_connected")]
    assert connected["stream"] == "TICKPIPE" and connected["venue"] == "vts"
    assert connected["group"] is None and connected["differences"] == []
    final = [d for d in lines if d["event"] == "final_book"]
    assert [d["channel"] for d in final] == ["orderbook:AAPL"] and final[0]["synced"]
    assert names[-1] == "published"
    pub = lines[-1]
    assert pub["dropped"] == 0 and pub["queue_depth"] == 0
    assert pub["by_kind"]["snap"] >= 2 and pub["by_kind"]["delta"] > 0
    assert pub["by_kind"]["trade"] > 0 and pub["by_kind"]["instruments"] == 1
    assert "trade" in names  # watch's own lines are there too
    text = seen["text"]
    assert re.search(r'tickpipe_bus_published_total\{kind="(snap|delta)",venue="vts"\} ', text)
    assert 'tickpipe_bus_dropped_total{venue="vts"} 0.0' in text
    assert 'tickpipe_bus_queue_depth{venue="vts"}' in text
    assert 'tickpipe_bus_active{group="",venue="vts"} 1.0' in text
    assert "tickpipe_book_state" in text  # the client's metrics as well
    msgs = await read_stream(nats_server.url)
    kinds = {type(m).__name__ for _, _, m in msgs}
    assert {"Snap", "Delta", "Trade", "Instruments"} <= kinds
    assert sum(isinstance(m, schema.Delta) for _, _, m in msgs) == pub["by_kind"]["delta"]
    # on SIGTERM-less end (--duration) the client closed first: the book's last word is stale
    last = [m for _, _, m in msgs if isinstance(m, schema.State)]
    assert last and last[-1].state == "stale"


async def test_sigterm_stops_and_flushes(gw: Gateway, nats_server: NatsServer) -> None:
    code, lines, err = await _publish(
        gw, "orderbook:MSFT", "--nats", nats_server.url, "--jsonl", "--group", "cli",
        stop_after=2.0,
    )  # fmt: skip
    assert code == 0, err
    names = [d["event"] for d in lines]
    assert [d["role"] for d in lines if d["event"] == "role"] == ["active"]
    assert names[-2:] == ["final_book", "published"]
    assert lines[-1]["group"] == "cli" and lines[-1]["dropped"] == 0
    assert lines[-1]["queue_depth"] == 0


@pytest.mark.parametrize(
    ("nats", "code", "message"),
    [
        ("http://127.0.0.1:4222", 2, r"--nats 'http://127\.0\.0\.1:4222': the scheme must be"),
        ("nats://127.0.0.1:99999", 2, r"--nats 'nats://127\.0\.0\.1:99999' is not a URL"),
        ("nats://127.0.0.1:1", 1, r"cannot connect to NATS at nats://127\.0\.0\.1:1 within"),
    ],
)
async def test_bad_or_unreachable_nats(gw: Gateway, nats: str, code: int, message: str) -> None:
    got, lines, err = await _publish(gw, "orderbook:AAPL", "--nats", nats, "--jsonl")
    assert got == code
    assert re.search(message, err), err
    if code == 1:  # the venue was never contacted
        assert "connected" not in [d["event"] for d in lines]
        assert lines[-1]["event"] == "published" and lines[-1]["messages"] == 0


async def test_bad_group_is_a_usage_error(nats_server: NatsServer) -> None:
    code, _, err = await _publish(
        None, "orderbook:AAPL", "--nats", nats_server.url, "--group", "no spaces"
    )
    assert code == 2 and "--group 'no spaces'" in err
