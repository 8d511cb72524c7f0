"""A real venue's API key (issue 17): arguments, TICKPIPE_<VENUE>_*, a 0600 file; clear errors
that never hold a secret."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tickpipe import Client
from tickpipe.client.credentials import venue_credentials
from tickpipe.errors import ConfigError, UnsupportedError
from tickpipe.venues.trading import Credentials

SECRET = "s3cr3t-never-shown"


def test_from_the_environment_with_the_venue_name_as_prefix() -> None:
    env = {"TICKPIPE_BINANCE_USDM_KEY": "k", "TICKPIPE_BINANCE_USDM_SECRET": SECRET}
    c = venue_credentials("binance-usdm", environ=env)
    assert c == Credentials("k", SECRET, None)
    assert SECRET not in repr(c)
    assert venue_credentials("binance", environ=env) is None  # another venue's key is not used


def test_arguments_win_over_the_environment() -> None:
    env = {
        "TICKPIPE_OKX_KEY": "envk",
        "TICKPIPE_OKX_SECRET": "envs",
        "TICKPIPE_OKX_PASSPHRASE": "p",
    }
    c = venue_credentials("okx", key="argk", secret="args", environ=env, needs_passphrase=True)
    assert c is not None and (c.key, c.secret, c.passphrase) == ("argk", "args", "p")


@pytest.mark.parametrize(
    ("env", "needs", "match"),
    [
        ({"TICKPIPE_OKX_KEY": "k"}, False, "secret is missing"),
        ({"TICKPIPE_OKX_SECRET": SECRET}, False, "key is missing"),
        ({"TICKPIPE_OKX_KEY": "k", "TICKPIPE_OKX_SECRET": SECRET}, True, "PASSPHRASE"),
    ],
)
def test_half_set_keys_are_config_errors_without_the_secret(
    env: dict[str, str], needs: bool, match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        venue_credentials("okx", environ=env, needs_passphrase=needs)
    assert SECRET not in str(err.value)


def test_a_credentials_file_must_be_0600(tmp_path: Path) -> None:
    f = tmp_path / "kraken.json"
    f.write_text(json.dumps({"key": "k", "secret": SECRET}))
    os.chmod(f, 0o644)
    with pytest.raises(ConfigError, match=r"mode 0644.*chmod 600") as err:
        venue_credentials("kraken", credentials_file=str(f), environ={})
    assert SECRET not in str(err.value)
    os.chmod(f, 0o600)
    c = venue_credentials("kraken", credentials_file=str(f), environ={})
    assert c == Credentials("k", SECRET, None)


@pytest.mark.parametrize("content", ["not json", "[1, 2]", json.dumps({"key": "k"})])
def test_a_bad_credentials_file_is_named(tmp_path: Path, content: str) -> None:
    f = tmp_path / "c.json"
    f.write_text(content)
    os.chmod(f, 0o600)
    with pytest.raises(ConfigError, match=re.escape(str(f))):
        venue_credentials("kraken", credentials_file=str(f), environ={})


def test_a_missing_credentials_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no-such\.json"):
        venue_credentials("kraken", credentials_file=str(tmp_path / "no-such.json"), environ={})


async def test_a_market_data_venue_without_a_key_refuses_orders_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k in list(os.environ):
        if k.startswith("TICKPIPE_"):
            monkeypatch.delenv(k)
    client = Client(venue="binance")
    assert not client.orders_enabled
    with pytest.raises(UnsupportedError, match="binance"):
        await client.place_limit_order("BTCUSDT", "buy", "1", "1")
