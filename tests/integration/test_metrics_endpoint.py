"""`tickpipe watch --metrics-port 0 --log-format json` (a subprocess) against a real gateway
subprocess (`tickpipe gateway --metrics-port 0 --log-format json`): /metrics scraped during the
run while faults are injected through the admin API; every contract name and label set present,
each metric moving as the fault says; every stderr line JSON; a distinctive secret in no output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tickpipe.gateway.testing import GatewayProcess

pytestmark = pytest.mark.slow

SECRET = "Zq7-metrics-SECRET-4f1e9c"  # distinctive: grepped for in every output
KEY = "metrics-key"
AAPL, MSFT = "orderbook:AAPL", "orderbook:MSFT"
CHANNELS = [AAPL, MSFT, "ticker:AAPL", "trades:AAPL"]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

CONTRACT: dict[str, set[str]] = {
    "tickpipe_frames_received_total": {"venue", "channel"},
    "tickpipe_book_state": {"venue", "channel", "state"},
    "tickpipe_book_age_seconds": {"venue", "channel"},
    "tickpipe_gaps_total": {"venue", "channel", "reason"},
    "tickpipe_reconnects_total": {"venue"},
    "tickpipe_heartbeat_age_seconds": {"venue"},
    "tickpipe_snapshot_requests_total": {"venue", "status"},
    "tickpipe_apply_latency_seconds_bucket": {"venue", "le"},
    "tickpipe_apply_latency_seconds_count": {"venue"},
    "tickpipe_apply_latency_seconds_sum": {"venue"},
}


class Scraper:
    def __init__(self, url: str) -> None:
        self.url = url
        self.texts: list[str] = []

    def __call__(self) -> Samples:
        with urllib.request.urlopen(self.url, timeout=10) as r:
            assert r.status == 200
            text = r.read().decode()
        self.texts.append(text)
        out: Samples = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out


def v(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset({"venue": "vts", **labels}.items())))


def wait_until(
    scrape: Scraper, pred: Callable[[Samples], bool], what: str, timeout: float = 30.0
) -> Samples:
    deadline = time.monotonic() + timeout
    for _ in range(2000):  # bounded in count and in time
        s = scrape()
        if pred(s):
            return s
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}; last scrape:\n{scrape.texts[-1]}")


def admin(gp: GatewayProcess, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        gp.admin_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Admin-Token": gp.admin_token, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def first_line(path: Path, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text()
        if "\n" in text:
            return json.loads(text.split("\n", 1)[0])  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"no first line on {path} within {timeout}s")


def live(s: Samples, ch: str) -> bool:
    return v(s, "tickpipe_book_state", channel=ch, state="live") == 1.0


def test_metrics_move_as_faults_are_injected_and_no_secret_leaks(tmp_path: Path) -> None:
    gp = GatewayProcess(
        "--heartbeat-ms", "500", "--rate", "40", "--metrics-port", "0", "--log-format", "json",
        key=KEY, secret=SECRET,
    )  # fmt: skip
    with gp:
        gw_scrape = Scraper(f"http://127.0.0.1:{gp.ready['metrics_port']}/metrics")
        out_path, err_path = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("TICKPIPE_KEY", None)
        env.pop("TICKPIPE_SECRET", None)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [
                    sys.executable, "-m", "tickpipe", "watch", *CHANNELS,
                    "--stream-url", gp.stream_url, "--rest-url", gp.rest_url,
                    "--key", KEY, "--secret", SECRET, "--duration", "110",
                    "--jsonl", "--metrics-port", "0", "--log-format", "json",
                ],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        scraped: list[str] = []
        try:
            _exercise(gp, proc, out_path, gw_scrape, scraped)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait(5)
        gateway_log = gp.log_text()
    assert code == 0, err_path.read_text()[-3000:]
    stdout, stderr = out_path.read_text(), err_path.read_text()

    # --log-format json: every stderr line is one JSON object with t, level, logger and
    # event or message; the lines about events carry the JSONL names
    logged: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        rec = json.loads(line)
        assert {"t", "level", "logger"} <= rec.keys(), line
        assert "event" in rec or "message" in rec, line
        logged.append(rec)
    names = {r.get("event") for r in logged}
    assert {"metrics", "connected", "synced", "gap", "disconnected", "reconnecting"} <= names
    assert any(r.get("event") == "gap" and r.get("channel") == AAPL for r in logged)
    for line in gateway_log.splitlines():  # the gateway's stderr too
        rec = json.loads(line)
        assert {"t", "level", "logger", "event"} <= rec.keys(), line
    jsonl = [json.loads(line) for line in stdout.splitlines()]
    assert jsonl[0]["event"] == "metrics" and jsonl[0]["url"].startswith("http://127.0.0.1:")

    # the secret: in no output, no log, no metric
    everything = {"stdout": stdout, "stderr": stderr, "gateway stderr": gateway_log}
    everything.update({f"scrape {i}": t for i, t in enumerate(scraped)})
    for where, text in everything.items():
        assert SECRET not in text, f"the secret leaked into {where}"
    assert len(scraped) > 10


def _exercise(
    gp: GatewayProcess,
    proc: subprocess.Popen[bytes],
    out_path: Path,
    gw_scrape: Scraper,
    scraped: list[str],
) -> None:
    first = first_line(out_path)
    assert first["event"] == "metrics", first
    port = first["port"]
    assert isinstance(port, int) and port > 0
    scrape = Scraper(f"http://127.0.0.1:{port}/metrics")
    try:
        _steps(gp, scrape, gw_scrape)
    finally:
        scraped.extend(scrape.texts + gw_scrape.texts)
    assert proc.poll() is None, "watch ended early"


def _steps(gp: GatewayProcess, scrape: Scraper, gw_scrape: Scraper) -> None:
    s0 = wait_until(scrape, lambda s: live(s, AAPL) and live(s, MSFT), "both books live")

    # every contract name with exactly its label set
    for name, labels in CONTRACT.items():
        found = [dict(lbl) for (n, lbl) in s0 if n == name]
        assert found, f"{name} missing"
        for lbl in found:
            assert set(lbl) == labels, (name, lbl)
    for ch in (AAPL, MSFT):
        states = {st: v(s0, "tickpipe_book_state", channel=ch, state=st) for st in
                  ("idle", "syncing", "live", "resyncing", "stale")}  # fmt: skip
        assert states == {"idle": 0, "syncing": 0, "live": 1, "resyncing": 0, "stale": 0}
        for reason in ("seq_gap", "checksum", "bad_frame", "overflow", "stale_snapshot"):
            assert v(s0, "tickpipe_gaps_total", channel=ch, reason=reason) == 0
    for status in ("ok", "error", "rate_limited"):
        assert v(s0, "tickpipe_snapshot_requests_total", status=status) is not None
    assert (v(s0, "tickpipe_snapshot_requests_total", status="ok") or 0) >= 2
    assert v(s0, "tickpipe_reconnects_total") == 0
    hb = v(s0, "tickpipe_heartbeat_age_seconds")
    assert hb is not None and 0 <= hb < 5

    # frames and latency samples grow while data flows
    f0 = v(s0, "tickpipe_frames_received_total", channel=AAPL) or 0
    t0 = v(s0, "tickpipe_frames_received_total", channel="ticker:AAPL") or 0
    n0 = v(s0, "tickpipe_apply_latency_seconds_count") or 0
    s1 = wait_until(
        scrape,
        lambda s: (
            (v(s, "tickpipe_frames_received_total", channel=AAPL) or 0) > f0 + 10
            and (v(s, "tickpipe_frames_received_total", channel="ticker:AAPL") or 0) > t0
            and (v(s, "tickpipe_apply_latency_seconds_count") or 0) > n0
        ),
        "frames and latency samples grow",
    )
    inf = v(s1, "tickpipe_apply_latency_seconds_bucket", le="+Inf")
    assert inf == v(s1, "tickpipe_apply_latency_seconds_count")

    # drop_delta with every AAPL snapshot failing: seq_gap counted, AAPL held in resyncing,
    # snapshot errors counted; MSFT untouched
    ok0 = v(s1, "tickpipe_snapshot_requests_total", status="ok") or 0
    admin(gp, "POST", "/admin/faults", {"snapshot_error": {"rate": 1.0, "scope": ["AAPL"]}})
    admin(gp, "POST", "/admin/trigger", {"fault": "drop_delta", "channel": AAPL})
    s2 = wait_until(
        scrape,
        lambda s: (
            v(s, "tickpipe_gaps_total", channel=AAPL, reason="seq_gap") == 1
            and v(s, "tickpipe_book_state", channel=AAPL, state="resyncing") == 1
            and v(s, "tickpipe_book_state", channel=AAPL, state="live") == 0
            and (v(s, "tickpipe_snapshot_requests_total", status="error") or 0) >= 1
        ),
        "seq_gap counted, AAPL resyncing, snapshot errors counted",
    )
    assert live(s2, MSFT)
    assert v(s2, "tickpipe_gaps_total", channel=MSFT, reason="seq_gap") == 0

    # faults off: AAPL live again through a snapshot that worked
    admin(gp, "DELETE", "/admin/faults")
    wait_until(
        scrape,
        lambda s: (
            live(s, AAPL) and (v(s, "tickpipe_snapshot_requests_total", status="ok") or 0) > ok0
        ),
        "AAPL live again, ok snapshots counted",
    )

    # a disconnect: reconnects up, both books re-seeded and live
    admin(gp, "POST", "/admin/trigger", {"fault": "disconnect"})
    wait_until(
        scrape,
        lambda s: v(s, "tickpipe_reconnects_total") == 1 and live(s, AAPL) and live(s, MSFT),
        "reconnects counted, books live again",
    )

    # snapshots rate limited to 1/s, then a disconnect: both books ask at once, a 429 counted
    admin(gp, "POST", "/admin/faults", {"snapshot_rate_limit": 1})
    admin(gp, "POST", "/admin/trigger", {"fault": "disconnect"})
    wait_until(
        scrape,
        lambda s: (
            v(s, "tickpipe_reconnects_total") == 2
            and (v(s, "tickpipe_snapshot_requests_total", status="rate_limited") or 0) >= 1
            and live(s, AAPL)
            and live(s, MSFT)
        ),
        "a 429 counted as rate_limited, books live again",
        timeout=45,
    )
    admin(gp, "DELETE", "/admin/faults")

    # the gateway's own metrics saw the same faults
    g = gw_scrape()

    def gv(name: str, **labels: str) -> float | None:
        return g.get((name, frozenset(labels.items())))

    assert gv("tickpipe_gateway_connections") == 1
    assert (gv("tickpipe_gateway_faults_total", fault="drop_delta") or 0) >= 1
    assert (gv("tickpipe_gateway_faults_total", fault="disconnect") or 0) >= 2
    assert (gv("tickpipe_gateway_snapshots_refused_total", status="error") or 0) >= 1
    assert (gv("tickpipe_gateway_snapshots_refused_total", status="rate_limited") or 0) >= 1
    assert (gv("tickpipe_gateway_frames_sent_total", channel=AAPL) or 0) > 0


def test_metrics_port_in_use_is_named(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "tickpipe", "watch", "orderbook:AAPL",
             "--stream-url", "ws://127.0.0.1:9/v1/stream", "--rest-url", "http://127.0.0.1:9",
             "--duration", "5", "--metrics-port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert r.returncode == 1
    assert f"127.0.0.1:{port} (--metrics-port)" in r.stderr


def test_metrics_port_out_of_range_is_a_usage_error() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "tickpipe", "watch", "orderbook:AAPL", "--metrics-port", "70000"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "--metrics-port" in r.stderr
