"""`tickpipe record` against the real gateway (subprocess, faults injected), then `tickpipe
replay`: the replayed final_book lines equal the live ones, gaps are reproduced, two replays
are byte-identical, and a recording cut by SIGKILL still replays."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tickpipe.gateway.testing import GatewayProcess

pytestmark = pytest.mark.slow

SESSION_EVENTS = ("connected", "subscribed", "synced", "gap", "stale", "disconnected")


def tickpipe(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickpipe", *args], capture_output=True, text=True, timeout=timeout
    )


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def strip_t(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != "t"}


def pick(ds: list[dict[str, Any]], names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [strip_t(d) for d in ds if d["event"] in names]


def record_and_replay(
    gw: GatewayProcess,
    out: Path,
    channels: list[str],
    venue: str,
    seconds: float,
    *extra: str,
) -> tuple[list[dict[str, Any]], str, str]:
    rec = tickpipe(
        "record",
        *channels,
        "--venue",
        venue,
        "--stream-url",
        gw.stream_url,
        "--rest-url",
        gw.rest_url,
        "--out",
        str(out),
        "--duration",
        str(seconds),
        *extra,
    )
    assert rec.returncode == 0, rec.stderr
    live = lines(rec.stdout)
    a = tickpipe("replay", str(out), "--jsonl")
    b = tickpipe("replay", str(out), "--jsonl")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert "frames/s" in a.stderr
    return live, a.stdout, b.stdout


def test_vts_with_drops_and_disconnects_replays_to_the_live_books(tmp_path: Path) -> None:
    faults = ("--fault", "drop_delta=0.03", "--fault", "disconnect=0.25")
    channels = ["orderbook:AAPL", "orderbook:BTC-USD", "trades:BTC-USD"]
    with GatewayProcess("--seed", "3", *faults) as gw:
        live, out_a, out_b = record_and_replay(
            gw, tmp_path / "rec", channels, "vts", 6.0, "--metrics-port", "0"
        )
    assert any(d["event"] == "metrics" for d in live)
    assert out_a == out_b  # deterministic, byte for byte
    replay = lines(out_a)
    finals = pick(live, ("final_book",))
    assert len(finals) == 2, finals  # synced or not: disconnects may fall at the very end
    assert sum(d["event"] == "synced" for d in live) >= 2
    assert pick(replay, ("final_book",)) == finals
    assert any(d["event"] == "gap" for d in live), "the fault injected no gap: test is void"
    assert pick(replay, SESSION_EVENTS) == pick(live, SESSION_EVENTS)
    assert pick(replay, ("trade",)) == pick(live, ("trade",))
    recorded = next(d for d in live if d["event"] == "recorded")
    assert recorded["dropped"] == 0 and recorded["frames"] > 0


def test_binance_dialect_replays_to_the_live_books(tmp_path: Path) -> None:
    with GatewayProcess("--dialect", "binance", "--fault", "drop_delta=0.03") as gw:
        live, out_a, out_b = record_and_replay(
            gw, tmp_path / "rec", ["orderbook:BTCUSDT", "trades:BTCUSDT"], "binance", 5.0
        )
    assert out_a == out_b
    replay = lines(out_a)
    finals = pick(live, ("final_book",))
    assert finals and finals[0]["bids"], finals
    assert pick(replay, ("final_book",)) == finals
    assert pick(replay, SESSION_EVENTS) == pick(live, SESSION_EVENTS)


def test_okx_in_band_seeding_replays_to_the_live_books(tmp_path: Path) -> None:
    faults = ("--fault", "drop_delta=0.03", "--fault", "disconnect=0.2")
    with GatewayProcess("--dialect", "okx", *faults) as gw:
        live, out_a, out_b = record_and_replay(
            gw, tmp_path / "rec", ["orderbook:BTC-USDT", "trades:BTC-USDT"], "okx", 6.0
        )
    assert out_a == out_b
    replay = lines(out_a)
    finals = pick(live, ("final_book",))
    assert finals and finals[0]["bids"], finals
    assert pick(replay, ("final_book",)) == finals
    assert pick(replay, SESSION_EVENTS) == pick(live, SESSION_EVENTS)


def test_a_recording_cut_by_sigkill_replays_up_to_the_cut(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    with GatewayProcess() as gw:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tickpipe",
                "record",
                "orderbook:AAPL",
                "--stream-url",
                gw.stream_url,
                "--rest-url",
                gw.rest_url,
                "--out",
                str(out),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 60
            synced = False
            while time.monotonic() < deadline:  # bounded: the deadline and the process's output
                line = proc.stdout.readline()
                if not line:
                    break
                if json.loads(line)["event"] == "synced":
                    synced = True
                    break
            assert synced
            time.sleep(1.0)  # some deltas after the sync, some flushed, some not
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
    parts = sorted(out.iterdir())
    assert len(parts) == 1
    r = tickpipe("replay", str(out), "--jsonl")
    assert r.returncode == 0, r.stderr
    replay = lines(r.stdout)
    assert any(d["event"] == "synced" for d in replay)
    final = next(d for d in replay if d["event"] == "final_book")
    assert final["synced"] and final["bids"] and final["asks"]
    # cut a few more bytes off: still replays, up to fewer records
    data = parts[0].read_bytes()
    parts[0].write_bytes(data[: len(data) - 7])
    r2 = tickpipe("replay", str(out), "--jsonl")
    assert r2.returncode == 0, r2.stderr
    assert "cut short" in r2.stderr


def test_replay_names_a_path_that_is_not_a_recording(tmp_path: Path) -> None:
    bad = tmp_path / "x.tpr.zst"
    bad.write_bytes(b"not zstd at all")
    r = tickpipe("replay", str(bad))
    assert r.returncode == 2 and "x.tpr.zst" in r.stderr and "not a tickpipe recording" in r.stderr
    r = tickpipe("replay", str(tmp_path / "missing"))
    assert r.returncode == 2 and "missing" in r.stderr
