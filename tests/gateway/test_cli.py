"""`tickpipe gateway` as a user runs it: --help, the ready line, clean stop, bad flags."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tickpipe.gateway.testing import GatewayProcess


def test_help_documents_every_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--help"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    flags = "--host --port --admin-port --key --seed --rate --heartbeat-ms --faults --fault"
    for flag in [*flags.split(), "--ready-json", "--admin-token"]:
        assert flag in out
    assert "TICKPIPE_KEY" in out and "demo" in out


def test_ready_line_serves_and_sigterm_exits_zero(gateway_process: GatewayProcess) -> None:
    gp = gateway_process
    r = gp.ready
    assert r["event"] == "ready" and r["key"] == "demo"
    assert gp.stream_url.startswith("ws://127.0.0.1:") and gp.stream_url.endswith("/v1/stream")
    with urllib.request.urlopen(gp.rest_url + "/v1/health", timeout=5) as resp:
        assert json.loads(resp.read())["status"] == "ok"
    req = urllib.request.Request(
        gp.admin_url + "/admin/stats", headers={"X-Admin-Token": gp.admin_token}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["connections"] == 0
    assert gp.stop() == 0
    log = gp.log_text()
    assert "Traceback" not in log
    assert "keys demo (from TICKPIPE_KEY/TICKPIPE_SECRET)" in log


def test_sigint_exits_zero_without_traceback() -> None:
    gp = GatewayProcess("--rate", "5").start()
    try:
        assert gp.proc is not None
        gp.proc.send_signal(signal.SIGINT)
        assert gp.proc.wait(10) == 0
        assert "Traceback" not in gp.log_text()
    finally:
        gp.stop()


def test_key_from_environment_is_used_and_said() -> None:
    import os

    env = dict(os.environ, TICKPIPE_KEY="envkey", TICKPIPE_SECRET="envsecret")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickpipe", "gateway", "--port", "0", "--no-admin", "--ready-json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["key"] == "envkey" and ready["admin_url"] is None
        assert "TICKPIPE_KEY" in ready["key_source"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--rate", "fast"], "--rate"),
        (["--rate", "inf"], "0 to 100,000"),
        (["--rate", "nan"], "0 to 100,000"),
        (["--rate", "-1"], "0 to 100,000"),
        (["--rate", "1e9"], "0 to 100,000"),
        (["--key", "nosecret"], "--key"),
        (["--faults", "no-such-profile"], "bundled"),
        (["--fault", "drop_delta=2"], "drop_delta"),
        (["--fault", "nonsense=1"], "nonsense"),
    ],
)
def test_bad_flags_exit_2_with_a_clear_message(args: list[str], needle: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--port", "0", *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert res.returncode == 2
    assert needle in res.stderr and "Traceback" not in res.stderr


def test_bundled_profiles_load() -> None:
    from tickpipe.gateway.faults import bundled_profiles, load_profile

    assert {"calm", "flaky", "chaos"} <= set(bundled_profiles())
    assert load_profile("chaos").drop_delta.rate > 0
    assert load_profile("calm").drop_delta.rate == 0


async def test_faults_are_logged_on_stderr_with_channel_and_seq(
    gateway_process: GatewayProcess,
) -> None:
    import aiohttp

    from tests.gateway.wire import admin, connect, recv, subscribe

    gp = gateway_process
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gp.stream_url)
        await subscribe(ws, ["orderbook:AAPL"])
        await recv(ws)
        body = {"fault": "drop_delta", "channel": "orderbook:AAPL"}
        st, _ = await admin(s, gp.admin_url, gp.admin_token, "POST", "/admin/trigger", body)
        assert st == 200
        for _ in range(10):
            await recv(ws)
    lines = [json.loads(x) for x in gp.log_text().splitlines() if x.startswith("{")]
    faults = [x for x in lines if x.get("event") == "fault"]
    assert len(faults) == 1
    assert faults[0]["fault"] == "drop_delta" and faults[0]["channel"] == "orderbook:AAPL"
    assert isinstance(faults[0]["seq"], int)


def test_same_seed_same_books_across_processes() -> None:
    def book(gp: GatewayProcess, seq: int) -> object:
        req = urllib.request.Request(
            f"{gp.admin_url}/admin/book/EUR-USD?seq={seq}&depth=50",
            headers={"X-Admin-Token": gp.admin_token},
        )
        for _ in range(100):  # bounded: wait until the seq is published (rate 50: ~0.4 s)
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    body = json.loads(resp.read())
                    return body["bids"], body["asks"], body["checksum"]
            except urllib.error.HTTPError as exc:
                assert exc.code == 404
                time.sleep(0.05)
        raise AssertionError("seq never published")

    with (
        GatewayProcess("--seed", "5", "--rate", "50") as a,
        GatewayProcess("--seed", "5", "--rate", "50") as b,
        GatewayProcess("--seed", "6", "--rate", "50") as c,
    ):
        assert book(a, 20) == book(b, 20)
        assert book(a, 20) != book(c, 20)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_gateway_at_the_highest_rate(sig: signal.Signals) -> None:
    """Issue 12: at --rate 1e7 the market loop never yielded and Ctrl-C/SIGTERM were ignored.
    1e7 is refused now; at the highest rate accepted a signal stops it promptly."""
    gp = GatewayProcess("--rate", "100000").start()
    try:
        assert gp.proc is not None
        time.sleep(1.0)  # the market is running flat out and behind
        t0 = time.monotonic()
        gp.proc.send_signal(sig)
        assert gp.proc.wait(10) == 0
        assert time.monotonic() - t0 < 5.0
        assert "Traceback" not in gp.log_text()
    finally:
        gp.stop()


def test_rate_1e7_is_refused_at_once() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--port", "0", "--rate", "1e7"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "--rate must be a number from 0 to 100,000" in res.stderr
    assert "got '1e7'" in res.stderr


def test_key_without_colon_says_the_form_and_does_not_echo_it() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--port", "0", "--key", "nocolon"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert res.returncode == 2
    assert "--key expects KEY:SECRET" in res.stderr and "e.g. --key " in res.stderr
    assert "nocolon" not in res.stderr  # it may be a secret pasted alone


def _busy_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, int(s.getsockname()[1])


@pytest.mark.parametrize("which", ["--port", "--admin-port"])
def test_busy_port_names_the_port_and_the_flag(which: str) -> None:
    busy, port = _busy_port()
    try:
        other = "--admin-port" if which == "--port" else "--port"
        res = subprocess.run(
            [sys.executable, "-m", "tickpipe", "gateway", which, str(port), other, "0"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    finally:
        busy.close()
    assert res.returncode == 1
    line = next(x for x in res.stderr.splitlines() if "cannot listen" in x)
    assert f"127.0.0.1:{port}" in line and f"{which} changes it" in line
    assert "in use" in line.lower() and "Traceback" not in res.stderr
