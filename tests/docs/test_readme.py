"""The README's library snippet runs as written against a real gateway (URLs swapped)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tickpipe.gateway.testing import GatewayProcess

README = Path(__file__).resolve().parents[2] / "README.md"


def _snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    code = [b for b in blocks if "from tickpipe import Client" in b]
    assert code, "README has no library snippet"
    return code[0]


def _trigger(gw: GatewayProcess, body: dict[str, object]) -> None:
    req = urllib.request.Request(
        f"{gw.admin_url}/admin/trigger",
        data=json.dumps(body).encode(),
        headers={"X-Admin-Token": gw.admin_token, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def test_readme_snippet_runs_against_the_gateway(tmp_path: Path) -> None:
    with GatewayProcess("--rate", "20") as gw:
        src = (
            _snippet()
            .replace("ws://127.0.0.1:8765/v1/stream", gw.stream_url)
            .replace("http://127.0.0.1:8765", gw.rest_url)
        )
        script = tmp_path / "snippet.py"
        script.write_text(src)
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        lines: list[str] = []
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                ln.startswith("resting ") for ln in lines
            ):
                lines.append(proc.stdout.readline().rstrip("\n"))
            _trigger(gw, {"fault": "drop_delta", "channel": "orderbook:AAPL"})  # a gap on AAPL
            while time.monotonic() < deadline and not any("'synced'" in ln for ln in lines[2:]):
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line.rstrip("\n"))
        finally:
            proc.kill()
            _, err = proc.communicate()
    out = "\n".join(lines)
    assert "Traceback" not in err, err
    assert "Decimal(" in lines[0], out  # seq, bids, asks as exact Decimals
    assert any(ln.startswith("resting O") for ln in lines), out
    events = [ln for ln in lines if ln.startswith("{")]
    assert any("'gap'" in ln and "orderbook:AAPL" in ln for ln in events), out
    assert any("'synced'" in ln and "orderbook:AAPL" in ln for ln in events), out
