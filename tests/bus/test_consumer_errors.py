"""A bus consumer's clear errors: bad arguments, no NATS, no collector (a real nats-server)."""

from __future__ import annotations

import subprocess
import sys
import time

import nats
import pytest

from tickpipe import Client
from tickpipe.bus import schema
from tickpipe.bus.natsserver import NatsServer
from tickpipe.errors import ConfigError, StreamError


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"source": "http://127.0.0.1:4222"}, "not a nats:// URL"),
        ({"source": " , "}, "no NATS URL"),
        ({"source": 4222}, "source must be a nats:// URL"),
        ({"source": "nats://127.0.0.1:4222", "stream_url": "ws://x:1"}, "do not apply"),
    ],
)
def test_bad_source_arguments_are_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Client(venue="binance", **kwargs)  # type: ignore[arg-type]


async def test_no_nats_server_fails_start_naming_the_url() -> None:
    client = Client(source="nats://127.0.0.1:9", venue="vts", first_connect_timeout_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(StreamError, match=r"nats://127\.0\.0\.1:9"):
        await client.start()
    assert time.monotonic() - t0 < 15


async def test_no_collector_fails_start_naming_what_is_missing(nats_server: NatsServer) -> None:
    client = Client(source=nats_server.url, venue="okx", first_connect_timeout_s=1.0)
    with pytest.raises(StreamError, match="tickpipe publish --venue okx"):
        await client.start()


async def test_instruments_but_no_heartbeat_names_the_heartbeat_subject(
    nats_server: NatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(name=schema.DEFAULT_STREAM, subjects=schema.stream_subjects())
    entry = schema.InstrumentEntry("BTC-USDT", "crypto", "0.1", "0.00000001")
    await js.publish(
        schema.instruments_subject("okx"), schema.encode(schema.Instruments("okx", "c", [entry]))
    )
    await nc.close()
    client = Client(
        source=nats_server.url, venue="okx", first_connect_timeout_s=1.5, connect_timeout_s=1.0
    )
    with pytest.raises(StreamError, match=r"tickpipe\.v1\.okx\.heartbeat"):
        await client.start()


def test_watch_source_usage_errors_exit_2() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tickpipe.cli.main", "watch", "--source", "redis://x:1",
         "orderbook:BTCUSDT", "--venue", "binance"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 2, out
    assert "not a nats:// URL" in out.stderr
