import pytest

from tickpipe.client.config import ClientConfig
from tickpipe.errors import ConfigError
from tickpipe.protocol.backoff import BackoffPolicy


def test_defaults_are_valid_and_documented() -> None:
    cfg = ClientConfig()
    assert cfg.cancel_on_disconnect is True
    assert cfg.heartbeat_timeout(5000) == pytest.approx(12.5)
    doc = ClientConfig.__doc__ or ""
    for name in ClientConfig.__dataclass_fields__:
        assert f"``{name}``" in doc, f"knob {name} is not documented"


def test_heartbeat_override() -> None:
    assert ClientConfig(heartbeat_timeout_s=1.0).heartbeat_timeout(5000) == 1.0
    assert ClientConfig(heartbeat_timeout_factor=2.0).heartbeat_timeout(100) == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("knob", "value"),
    [
        ("connect_timeout_s", 0),
        ("connect_timeout_s", -1.0),
        ("connect_timeout_s", float("nan")),
        ("stale_after_s", 0.0),
        ("heartbeat_timeout_s", -2.0),
        ("snapshot_concurrency", 0),
        ("snapshot_burst", 1.5),
        ("snapshot_rate_per_s", 0),
        ("snapshot_jitter_s", -0.1),
        ("snapshot_depth", 0),
        ("event_queue_size", True),
        ("cancel_orders_on_blind", "all"),
        ("reconnect", {"base_s": 1}),
    ],
)
def test_bad_values_name_the_knob(knob: str, value: object) -> None:
    with pytest.raises(ConfigError, match=knob):
        ClientConfig(**{knob: value})  # type: ignore[arg-type]


def test_unknown_knob_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="stale_after"):
        ClientConfig.from_kwargs(stale_after=3)
    cfg = ClientConfig.from_kwargs(stale_after_s=3.0, reconnect=BackoffPolicy(base_s=0.1))
    assert cfg.stale_after_s == 3.0
