"""``tickpipe gateway --tls-cert FILE --tls-key FILE`` as a user runs it: wss:// and https://
in the ready line, a ``tickpipe watch --ca-file`` that syncs over them, and the bad flags
(one without the other, a missing file, a file of the wrong kind, a key that does not match)
exiting 2 naming what is wrong."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

PYTHON = sys.executable


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: str
    cert: str
    key: str
    other_key: str  # a valid key that is not the certificate's


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    cert = ca.issue_cert("127.0.0.1", "localhost")
    (d / "server.pem").write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(d / "server.key"))
    ca.issue_cert("localhost").private_key_pem.write_to_path(str(d / "other.key"))
    for f in ("server.key", "other.key"):
        (d / f).chmod(0o600)
    yield Pki(str(d / "ca.pem"), str(d / "server.pem"), str(d / "server.key"), str(d / "other.key"))


def _gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "tickpipe", "gateway", "--port", "0", "--no-admin", *args],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.timeout(90)
def test_tls_flags_serve_wss_and_https_and_watch_with_ca_file_syncs(pki: Pki) -> None:
    proc = subprocess.Popen(
        [PYTHON, "-m", "tickpipe", "gateway", "--port", "0", "--no-admin", "--ready-json",
         "--rate", "20", "--tls-cert", pki.cert, "--tls-key", pki.key],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready"
        stream_url, rest_url = ready["stream_url"], ready["rest_url"]
        assert stream_url.startswith("wss://127.0.0.1:") and stream_url.endswith("/v1/stream")
        assert rest_url == f"https://127.0.0.1:{ready['port']}"
        watch = subprocess.run(
            [PYTHON, "-m", "tickpipe", "watch", "orderbook:AAPL", "--stream-url", stream_url,
             "--rest-url", rest_url, "--ca-file", pki.ca, "--duration", "4", "--jsonl"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert watch.returncode == 0, (watch.stdout[-2000:], watch.stderr[-2000:])
        events = [json.loads(x) for x in watch.stdout.splitlines() if x.startswith("{")]
        names = [e["event"] for e in events]
        assert "synced" in names, names
        connected = next(e for e in events if e["event"] == "connected")
        assert connected["url"] == stream_url
        final = [e for e in events if e["event"] == "final_book"]
        assert final and final[0]["channel"] == "orderbook:AAPL" and final[0]["bids"], events[-3:]
        # without the CA the same watch is refused at once, naming the certificate problem
        refused = subprocess.run(
            [PYTHON, "-m", "tickpipe", "watch", "orderbook:AAPL", "--stream-url", stream_url,
             "--rest-url", rest_url, "--duration", "4"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert refused.returncode == 1 and "certificate" in refused.stderr.lower(), refused.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert f"stream {stream_url}  REST {rest_url}" in err and "Traceback" not in err
    assert Path(pki.key).read_text().splitlines()[1] not in err  # the key is never echoed


@pytest.mark.parametrize(
    ("which", "needle"),
    [
        ("cert_only", "--tls-cert needs --tls-key too"),
        ("key_only", "--tls-key needs --tls-cert too"),
        ("missing_key", "--tls-key '/nonexistent/server.key': cannot read it"),
        ("missing_cert", "--tls-cert '/nonexistent/server.pem': cannot read it"),
        ("key_as_cert", "--tls-cert"),
        ("cert_as_key", "--tls-key"),
        ("wrong_key", "--tls-cert"),
    ],
)
def test_bad_tls_flags_exit_2_naming_what_is_wrong(pki: Pki, which: str, needle: str) -> None:
    args = {
        "cert_only": ["--tls-cert", pki.cert],
        "key_only": ["--tls-key", pki.key],
        "missing_key": ["--tls-cert", pki.cert, "--tls-key", "/nonexistent/server.key"],
        "missing_cert": ["--tls-cert", "/nonexistent/server.pem", "--tls-key", pki.key],
        "key_as_cert": ["--tls-cert", pki.key, "--tls-key", pki.key],
        "cert_as_key": ["--tls-cert", pki.cert, "--tls-key", pki.cert],
        "wrong_key": ["--tls-cert", pki.cert, "--tls-key", pki.other_key],
    }[which]
    res = _gateway(*args)
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert res.stdout == ""
    if which == "key_as_cert":
        assert f"--tls-cert {pki.key!r}: not a PEM certificate chain" in res.stderr
        assert "BEGIN" not in res.stderr  # the key's content is not echoed
    if which == "cert_as_key":
        assert f"--tls-key {pki.cert!r}: not a PEM private key" in res.stderr
    if which == "wrong_key":
        assert pki.other_key in res.stderr and "mismatch" in res.stderr.lower()


def test_help_documents_the_tls_flags() -> None:
    out = subprocess.run(
        [PYTHON, "-m", "tickpipe", "gateway", "--help"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "--tls-cert FILE" in out and "--tls-key FILE" in out and "--ca-file" in out
