"""Gateway settings: validation names the setting; keys come from flags, env or the demo pair."""

from __future__ import annotations

import pytest

from tickpipe.errors import ConfigError
from tickpipe.gateway import FaultSettings, GatewayConfig
from tickpipe.gateway.config import parse_key_arg, resolve_keys


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"port": 70000}, "port"),
        ({"rate": -1}, "rate"),
        ({"heartbeat_ms": 0}, "heartbeat_ms"),
        ({"max_channels": 0}, "max_channels"),
        ({"depth": 5}, "depth"),
        ({"keys": (("k", ""),)}, "keys"),
    ],
)
def test_bad_config_names_the_setting(kw: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        GatewayConfig(**kw)  # type: ignore[arg-type]


def test_key_sources() -> None:
    assert resolve_keys([("a", "b")], {"TICKPIPE_KEY": "x", "TICKPIPE_SECRET": "y"}) == (
        {"a": "b"},
        "--key",
    )
    keys, source = resolve_keys([], {"TICKPIPE_KEY": "x", "TICKPIPE_SECRET": "y"})
    assert keys == {"x": "y"} and "TICKPIPE_KEY" in source
    keys, source = resolve_keys([], {})
    assert keys == {"demo": "demo-secret"} and "demo" in source


def test_parse_key_arg() -> None:
    assert parse_key_arg("k:s:with:colons") == ("k", "s:with:colons")
    for bad in ("nocolon", ":secret", "key:"):
        with pytest.raises(ConfigError, match="KEY:SECRET"):
            parse_key_arg(bad)


def test_fault_settings_merge_and_round_trip() -> None:
    s = FaultSettings().merged({"drop_delta": 0.5, "silence_channel": "ticker:AAPL"})
    assert s.drop_delta.rate == 0.5 and s.silence_channel == ("ticker:AAPL",)
    assert FaultSettings().merged(s.to_json()) == s


def test_every_client_venue_has_a_dialect_to_rehearse_against() -> None:
    """Each --venue name maps to the --dialect serving it (gateway --replay picks it for a
    recording of that venue); bybit-linear is served by the bybit dialect."""
    from tickpipe.gateway.dialects import dialect_for_venue
    from tickpipe.venues.registry import VENUES

    assert {v: dialect_for_venue(v) for v in VENUES} == {
        "vts": "vts",
        "binance": "binance",
        "okx": "okx",
        "binance-usdm": "binance-usdm",
        "bybit": "bybit",
        "bybit-linear": "bybit",
        "kraken": "kraken",
        "coinbase": "coinbase",
    }
    assert dialect_for_venue("nasdaq") is None
