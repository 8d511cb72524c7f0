"""Each script in ``examples/`` runs against the reference gateway and exits 0 by itself.

The examples are run as a user runs them (``python examples/X.py --stream-url ... --duration
N``) against a gateway subprocess on 127.0.0.1; the spread bot also meets the ``flaky`` fault
profile and a forced disconnect in the middle of its run.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tickpipe.client.rest import RestClient
from tickpipe.gateway.testing import GatewayProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_S = 4.0
TIMEOUT_S = 40.0


def run_example(name: str, gw: GatewayProcess, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--stream-url", gw.stream_url,
         "--rest-url", gw.rest_url, "--duration", str(RUN_S), *extra],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip


def admin_post(gw: GatewayProcess, path: str, body: dict[str, object]) -> dict[str, object]:
    req = urllib.request.Request(
        gw.admin_url + path,
        data=json.dumps(body).encode(),
        headers={"X-Admin-Token": gw.admin_token, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        out: dict[str, object] = json.loads(resp.read())
    return out


def test_every_example_is_tested():
    assert {p.name for p in EXAMPLES.glob("*.py")} == {
        "spread_bot.py",
        "multi_asset_watcher.py",
        "health_gated_strategy.py",
        "live_smoke.py",  # never against the internet here: see the tests at the end
    }


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_multi_asset_watcher_sees_every_asset_class(gateway_process):
    res = run_example("multi_asset_watcher.py", gateway_process)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    for cls_, sym in (("crypto", "BTC-USD"), ("equity", "AAPL"), ("metal", "XAU-USD"),
                      ("fx", "EUR-USD")):  # fmt: skip
        assert re.search(rf"final\s+{cls_}\s+{sym}\s+state=live seq=\d+", res.stdout), res.stdout
        assert re.search(rf"book\s+{sym}\s", res.stdout), f"no book line for {sym}"
    assert "trade  trades:" in res.stdout
    assert "event  {'event': 'synced'" in res.stdout


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_health_gated_strategy_counts_usable_checks(gateway_process):
    res = run_example("health_gated_strategy.py", gateway_process)
    assert res.returncode == 0, res.stderr
    for sym in ("ETH-USD", "MSFT", "XAU-USD", "EUR-USD"):
        m = re.search(rf"{sym}\s+usable (\d+)/(\d+) checks", res.stdout)
        assert m, res.stdout
        usable, total = int(m.group(1)), int(m.group(2))
        assert 0 < usable <= total
    assert "signals:" in res.stdout


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_spread_bot_trades_through_a_fault_profile_and_a_disconnect():
    with GatewayProcess("--faults", "flaky", "--rate", "50", "--heartbeat-ms", "1000") as gw:
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "spread_bot.py"), "--stream-url", gw.stream_url,
             "--rest-url", gw.rest_url, "--symbol", "AAPL", "--size", "1", "--duration", "6"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            time.sleep(3.0)
            admin_post(gw, "/admin/trigger", {"fault": "disconnect", "close_frame": False})
            out, err = proc.communicate(timeout=TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        truth = asyncio.run(_orders_by_status(gw))
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    m = re.search(
        r"placed (\d+) orders: (\d+) filled, (\d+) cancelled \((\d+) by the bot, "
        r"(\d+) by the kill switch\), (\d+) still open;.*reconnects (\d+)",
        out,
    )
    assert m, out
    placed, filled, cancelled, by_bot, by_ks, still_open, reconnects = map(int, m.groups())
    assert placed > 0, out
    assert int(reconnects) >= 1, f"the forced disconnect was not survived: {out}"
    # the bot's accounting is the gateway's: a filled order is never counted as cancelled
    assert (filled, cancelled, still_open) == (
        truth.get("filled", 0),
        truth.get("cancelled", 0),
        truth.get("open", 0),
    ), (out, truth)
    assert placed == filled + cancelled + still_open and by_bot + by_ks == cancelled, out
    assert still_open == 0, out
    assert "kill switch None" not in out
    assert re.search(r"kill switch: (never triggered|cancelled \d+, failed \d+)", out), out


async def _orders_by_status(gw: GatewayProcess) -> dict[str, int]:
    rest = RestClient(gw.rest_url, gw.key, gw.secret, 5.0)
    try:
        body = await rest.list_orders(None)
    finally:
        await rest.close()
    return dict(Counter(o["status"] for o in body["orders"]))


def test_example_docstrings_name_the_venv_python():
    for path in EXAMPLES.glob("*.py"):
        doc = path.read_text().split('"""')[1]
        assert f".venv/bin/python examples/{path.name}" in doc, path.name
        assert not re.search(r"(?m)^\s+python examples/", doc), path.name


# -- live_smoke.py: for users with internet; here only offline (never the real venue) --------
def test_live_smoke_help_and_usage_errors():
    ok = subprocess.run(
        [sys.executable, str(EXAMPLES / "live_smoke.py"), "--help"],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert ok.returncode == 0 and "not run in CI" in ok.stdout
    bads = (
        ["nope", "BTCUSDT"],
        ["binance"],
        ["binance", "BTCUSDT", "--duration", "0"],
        ["binance", "BTCUSDT", "--stream-url", "ftp://x:1", "--duration", "1"],
    )
    for bad in bads:
        r = subprocess.run(
            [sys.executable, str(EXAMPLES / "live_smoke.py"), *bad],
            capture_output=True, text=True, timeout=TIMEOUT_S,
        )  # fmt: skip
        assert r.returncode == 2, (bad, r.stdout, r.stderr)
        assert "error:" in r.stderr, r.stderr


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_live_smoke_offline_against_the_binance_dialect():
    with GatewayProcess("--dialect", "binance", "--rate", "20") as gw:
        r = subprocess.run(
            [sys.executable, str(EXAMPLES / "live_smoke.py"), "binance", "BTCUSDT",
             "--stream-url", gw.stream_url, "--rest-url", gw.rest_url, "--duration", "6"],
            capture_output=True, text=True, timeout=TIMEOUT_S,
        )  # fmt: skip
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "state=live" in r.stdout and "BTCUSDT synced" in r.stdout


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_live_smoke_exits_1_when_the_book_never_syncs():
    # nothing listens there: never connected, never synced, bounded by --duration
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "live_smoke.py"), "binance", "BTCUSDT",
         "--stream-url", "ws://127.0.0.1:9", "--rest-url", "http://127.0.0.1:9",
         "--duration", "2"],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "NEVER synced" in r.stdout
