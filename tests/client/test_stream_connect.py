"""Stream connect (issue 12): a permanent 4xx on the upgrade fails start() at once, typed."""

from __future__ import annotations

import time

import pytest

from tickpipe import Client
from tickpipe.client.supervisor import classify
from tickpipe.errors import HandshakeRejected
from tickpipe.gateway import Gateway


async def test_404_on_the_upgrade_fails_start_at_once(gateway: Gateway) -> None:
    bad = gateway.stream_url.replace("/v1/stream", "/v1/nope")
    client = Client(stream_url=bad, rest_url=gateway.rest_url)
    events = client.events()
    t0 = time.monotonic()
    with pytest.raises(HandshakeRejected) as info:
        await client.start()
    assert time.monotonic() - t0 < 3.0  # was: retried for first_connect_timeout_s (10 s)
    assert info.value.status == 404 and "HTTP 404" in str(info.value) and bad in str(info.value)
    names = []
    while (ev := events.get_nowait()) is not None:
        names.append(ev.name)
    assert "reconnecting" not in names and "connect_retry" not in names


@pytest.mark.parametrize(("status", "first"), [(404, "fatal"), (400, "fatal"), (403, "fatal")])
def test_permanent_4xx_is_fatal_only_before_the_first_connection(status: int, first: str) -> None:
    exc = HandshakeRejected("x", status)
    assert classify(exc) == first
    assert classify(exc, connected_before=True) == "retry"  # a proxy during a deploy
