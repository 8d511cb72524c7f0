"""Bad arguments give a clear ConfigError naming what was wrong, before any I/O."""

from __future__ import annotations

import pytest

from tickpipe import Client, ClientConfig
from tickpipe.client.client import _channel_list
from tickpipe.client.orders import _decimal_text
from tickpipe.errors import ConfigError, StreamError


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stream_url": "http://127.0.0.1:1/v1/stream"}, "stream_url"),
        ({"stream_url": "ws:///nohost"}, "stream_url"),
        ({"rest_url": "ws://127.0.0.1:1"}, "rest_url"),
        ({"key": ""}, "key"),
        ({"stale_after_s": -1}, "stale_after_s"),
        ({"stale_after": 1}, "stale_after"),
        ({"config": ClientConfig(), "stale_after_s": 1.0}, "either"),
    ],
)
def test_constructor_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Client(**kwargs)  # type: ignore[arg-type]


def test_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKPIPE_KEY", "k1")
    monkeypatch.setenv("TICKPIPE_SECRET", "s1")
    assert Client().key == "k1"
    monkeypatch.delenv("TICKPIPE_KEY")
    with pytest.raises(ConfigError, match="TICKPIPE_KEY"):  # half a pair (issue 13)
        Client()
    monkeypatch.delenv("TICKPIPE_SECRET")
    assert Client().key == "demo"


@pytest.mark.parametrize("bad", ["AAPL", "orderbook:", "quotes:AAPL", 7])
def test_bad_channel_names(bad: object) -> None:
    with pytest.raises(ConfigError):
        _channel_list([bad])  # type: ignore[list-item]


def test_channel_list_dedups_and_accepts_one_string() -> None:
    assert _channel_list("ticker:BTC-USD") == ["ticker:BTC-USD"]
    assert _channel_list(["trades:A", "trades:A", "ticker:A"]) == ["trades:A", "ticker:A"]


@pytest.mark.parametrize("bad", ["abc", "-1", "0", "NaN", "inf", True, 1.5])
def test_order_numbers_validated(bad: object) -> None:
    with pytest.raises(ConfigError, match="price"):
        _decimal_text("price", bad)  # type: ignore[arg-type]


async def test_use_before_start_is_a_clear_error() -> None:
    c = Client()
    with pytest.raises(StreamError, match="not started"):
        await c.subscribe(["orderbook:AAPL"])
    with pytest.raises(StreamError, match="not started"):
        c.book("AAPL")


async def test_unreachable_gateway_raises_stream_error_in_time() -> None:
    c = Client("ws://127.0.0.1:9/v1/stream", "http://127.0.0.1:9", first_connect_timeout_s=0.3)
    with pytest.raises(StreamError, match=r"127\.0\.0\.1:9"):
        await c.start()
