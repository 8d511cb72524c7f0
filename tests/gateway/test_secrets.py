"""Secrets of the gateway (issue 13, "Secrets"): no half-set key pair, no secret on a command
line or in a repr, the public demo pair only on loopback unless asked for. CLI through a
subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tickpipe.gateway import GatewayConfig
from tickpipe.gateway.testing import GatewayProcess

GATEWAY = [sys.executable, "-m", "tickpipe", "gateway", "--port", "0", "--admin-port", "0"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKPIPE_")}
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(GATEWAY + args, env=env, capture_output=True, text=True, timeout=30)


def _ready(args: list[str], env: dict[str, str]) -> tuple[dict[str, object], bytes]:
    """Start a gateway, read its ready line and its /proc cmdline, stop it."""
    proc = subprocess.Popen(
        [*GATEWAY, "--ready-json", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    finally:
        proc.terminate()
        proc.wait(10)
    return ready, cmdline


@pytest.mark.parametrize("var", ["TICKPIPE_KEY", "TICKPIPE_SECRET"])
def test_half_set_key_pair_is_refused(var: str) -> None:
    out = _run([], _env(**{var: "mine"}))
    assert out.returncode == 2
    assert "set both" in out.stderr and "Traceback" not in out.stderr
    assert "mine" not in out.stderr


def test_key_file_must_be_private_and_is_used(tmp_path: Path) -> None:
    f = tmp_path / "keys"
    f.write_text("# my keys\nalice:s3cret-alice\n\nbob:s3cret-bob\n")
    f.chmod(0o644)
    out = _run(["--key-file", str(f)], _env())
    assert out.returncode == 2 and "chmod 600" in out.stderr
    assert "s3cret" not in out.stderr
    f.chmod(0o600)
    ready, cmdline = _ready(["--key-file", str(f)], _env())
    assert ready["key"] == "alice"
    assert b"s3cret" not in cmdline


def test_admin_token_from_environment_stays_off_the_command_line() -> None:
    ready, cmdline = _ready([], _env(TICKPIPE_ADMIN_TOKEN="tok-from-env-123"))
    assert ready["admin_token"] == "tok-from-env-123"
    assert b"tok-from-env" not in cmdline


def test_gateway_process_passes_its_key_pair_by_environment() -> None:
    with GatewayProcess(key="k1", secret="very-secret-1") as gp:
        cmdline = Path(f"/proc/{gp.pid}/cmdline").read_bytes()
        assert gp.ready["key"] == "k1"
    assert b"very-secret-1" not in cmdline


def test_demo_options_keep_the_secret_off_the_child_command_line() -> None:
    import argparse

    from tickpipe.cli import demo

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    demo.register(sub)
    args = parser.parse_args(["demo", "--key", "k", "--secret", "demo-child-secret"])
    opts = demo.options_from_args(args)
    assert not any("demo-child-secret" in a for a in opts.gateway_args)


def test_demo_pair_on_a_public_address_needs_an_explicit_opt_in() -> None:
    out = _run(["--host", "0.0.0.0"], _env())
    assert out.returncode == 2 and "--allow-demo-key" in out.stderr
    from tickpipe.gateway import Gateway

    Gateway(GatewayConfig(host="0.0.0.0", keys=(("own", "own-secret"),)))  # own key: fine
    Gateway(GatewayConfig(host="0.0.0.0", allow_public_demo_key=True))  # opted in: fine


def test_config_repr_hides_secrets_and_admin_token() -> None:
    cfg = GatewayConfig(keys=(("alice", "alice-s3cret"),), admin_token="admin-t0ken")
    text = repr(cfg)
    assert "alice-s3cret" not in text and "admin-t0ken" not in text
    assert "port=8765" in text
