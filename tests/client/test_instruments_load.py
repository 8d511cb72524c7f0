"""Loading instruments at start: a body that is not VTS/1 fails at once (no retry loop) with a
StreamError naming the REST URL. (An unreachable gateway: tests/cli, exit status 1.)"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tickpipe import Client
from tickpipe.errors import StreamError


@pytest.fixture
async def garbage_rest() -> AsyncIterator[str]:
    """A real HTTP server on loopback whose /v1/instruments answers 200 with a bad grid."""

    async def instruments(_: web.Request) -> web.Response:
        body = {
            "instruments": [{"symbol": "X", "asset_class": "fx", "tick_size": "0", "lot_size": "1"}]
        }
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/v1/instruments", instruments)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_instruments_that_are_not_vts1_fail_at_once(garbage_rest: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(StreamError) as info:
        async with Client(stream_url="ws://127.0.0.1:9/v1/stream", rest_url=garbage_rest):
            pass
    assert "not valid VTS/1" in str(info.value) and garbage_rest in str(info.value)
    assert time.monotonic() - t0 < 5  # not retried until the 10 s first-connect deadline
