"""`tickpipe demo --metrics-port 0 --log-format json` and `tickpipe gateway --metrics-port 0`
through subprocesses: the bound port is named, /metrics answers during the run, stderr is JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tickpipe.gateway.testing import GatewayProcess

pytestmark = pytest.mark.slow

SECRET = "Demo-obs-SECRET-81d2aa"


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        rec = json.loads(line)
        assert {"t", "level", "logger"} <= rec.keys(), line
        assert "event" in rec or "message" in rec, line
        out.append(rec)
    return out


def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    assert SECRET not in text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_demo_serves_metrics_and_logs_json(tmp_path: Path) -> None:
    err_path = tmp_path / "err"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TICKPIPE_KEY": "obs", "TICKPIPE_SECRET": SECRET}
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tickpipe", "demo", "--duration", "60", "--no-strategy",
             "--channels", "orderbook:AAPL", "ticker:AAPL",
             "--metrics-port", "0", "--log-format", "json"],
            stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    try:
        url = None
        deadline = time.monotonic() + 40
        while url is None and time.monotonic() < deadline:
            for rec in _json_lines(err_path.read_text().rpartition("\n")[0]):
                if rec.get("event") == "metrics":
                    url = rec["url"]
            time.sleep(0.1)
        assert url is not None, err_path.read_text()
        live = ("tickpipe_book_state", frozenset({("venue", "vts"), ("channel", "orderbook:AAPL"),
                                                  ("state", "live")}))  # fmt: skip
        for _ in range(400):
            s = _scrape(url)
            if s.get(live) == 1.0:
                break
            assert time.monotonic() < deadline + 20, "AAPL never live"
            time.sleep(0.1)
        else:
            raise AssertionError("AAPL never live")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, err_path.read_text()
    stderr = err_path.read_text()
    recs = _json_lines(stderr)
    assert any(r.get("event") == "metrics" for r in recs)
    assert SECRET not in stderr


def test_gateway_names_its_metrics_port_and_serves_gateway_metrics() -> None:
    with GatewayProcess("--metrics-port", "0", "--log-format", "json", secret=SECRET) as gp:
        port = gp.ready["metrics_port"]
        assert isinstance(port, int) and port > 0
        s = _scrape(f"http://127.0.0.1:{port}/metrics")
        assert s[("tickpipe_gateway_connections", frozenset())] == 0
        log = gp.log_text()
    recs = _json_lines(log)
    start = [r for r in recs if r.get("event") == "listening"]
    assert start and start[0]["metrics_url"] == f"http://127.0.0.1:{port}/metrics"
    assert "admin_token" not in log and gp.admin_token not in log and SECRET not in log
