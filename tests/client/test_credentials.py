"""Key and secret come in pairs (issue 13): half a pair is refused, naming the missing part,
instead of signing the user's key with the public demo secret."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tickpipe import Client
from tickpipe.client.credentials import DEFAULT_KEY, DEFAULT_SECRET, resolve_credentials
from tickpipe.errors import ConfigError


@pytest.mark.parametrize(
    ("key", "secret", "env", "want"),
    [
        (None, None, {}, (DEFAULT_KEY, DEFAULT_SECRET)),
        (None, None, {"TICKPIPE_KEY": "k", "TICKPIPE_SECRET": "s"}, ("k", "s")),
        ("k2", "s2", {"TICKPIPE_KEY": "k", "TICKPIPE_SECRET": "s"}, ("k2", "s2")),
        ("k2", None, {"TICKPIPE_SECRET": "s"}, ("k2", "s")),
        (None, "s2", {"TICKPIPE_KEY": "k"}, ("k", "s2")),
    ],
)
def test_whole_pairs(
    key: str | None, secret: str | None, env: dict[str, str], want: tuple[str, str]
) -> None:
    assert resolve_credentials(key, secret, env) == want


@pytest.mark.parametrize(
    ("key", "secret", "env", "names"),
    [
        (None, None, {"TICKPIPE_KEY": "mine"}, ("TICKPIPE_KEY", "no secret", "TICKPIPE_SECRET")),
        (None, None, {"TICKPIPE_SECRET": "S3CRET"}, ("TICKPIPE_SECRET", "no key", "TICKPIPE_KEY")),
        ("mine", None, {}, ("key=", "no secret")),
        (None, "S3CRET", {}, ("secret=", "no key")),
        (None, None, {"TICKPIPE_KEY": "", "TICKPIPE_SECRET": "S3CRET"}, ("non-empty",)),
    ],
)
def test_half_a_pair_is_refused_naming_what_is_missing(
    key: str | None, secret: str | None, env: dict[str, str], names: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_credentials(key, secret, env)
    msg = str(info.value)
    assert all(n in msg for n in names), msg
    assert "S3CRET" not in msg  # no secret in the message


def test_the_client_refuses_a_half_set_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: Client() signed TICKPIPE_KEY with the demo secret, silently."""
    monkeypatch.setenv("TICKPIPE_KEY", "my-real-key")
    monkeypatch.delenv("TICKPIPE_SECRET", raising=False)
    with pytest.raises(ConfigError, match="TICKPIPE_SECRET"):
        Client()


def test_watch_exits_2_on_half_a_pair() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKPIPE_")}
    env["TICKPIPE_KEY"] = "my-real-key"
    proc = subprocess.run(
        [sys.executable, "-m", "tickpipe", "watch", "ticker:BTC-USD", "--duration", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "TICKPIPE_SECRET" in proc.stderr
