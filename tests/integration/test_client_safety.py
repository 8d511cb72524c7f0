"""Issue 12, library side: a closed client refuses everything, a blind client refuses orders,
stats report a real frame rate, unsubscribe returns its refusals. Against the real gateway."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.integration.conftest import make_client
from tickpipe import Client
from tickpipe.errors import BlindError, ClientClosedError, StreamError, UnknownOrderError
from tickpipe.gateway import Gateway
from tickpipe.protocol.backoff import BackoffPolicy


async def _open_on_gateway(gw: Gateway) -> list[Any]:
    """Open orders of the demo key, asked of the gateway with a fresh client."""
    async with make_client(gw) as probe:
        return await probe.open_orders()


def _calls(client: Client) -> dict[str, Callable[[], Awaitable[Any]]]:
    async def feed_next() -> Any:
        return await client.events().__anext__()

    return {
        "place_limit_order": lambda: client.place_limit_order("AAPL", "buy", "100.00", "1"),
        "cancel_order": lambda: client.cancel_order("O-1"),
        "get_order": lambda: client.get_order("O-1"),
        "cancel_all_orders": lambda: client.cancel_all_orders(),
        "open_orders": lambda: client.open_orders(),
        "subscribe": lambda: client.subscribe(["orderbook:AAPL"]),
        "unsubscribe": lambda: client.unsubscribe(["orderbook:AAPL"]),
        "wait_synced": lambda: client.wait_synced("AAPL", timeout=30),
        "start": lambda: client.start(),
        "events": feed_next,
    }


async def test_every_call_on_a_closed_client_raises_at_once(gw: Gateway) -> None:
    async with make_client(gw) as client:
        await client.subscribe(["orderbook:AAPL"])
        await client.wait_synced("AAPL", timeout=10)
    assert client.connection_state == "closed"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, call in _calls(client).items():
            t0 = time.monotonic()
            with pytest.raises(ClientClosedError, match="client is closed"):
                await asyncio.wait_for(call(), 5.0)
            assert time.monotonic() - t0 < 1.0, f"{name} did not raise at once"
        for sync_call in (client.events, client.book_updates, client.trades, client.tickers):
            with pytest.raises(ClientClosedError, match="client is closed"):
                sync_call()
        with pytest.raises(ClientClosedError):
            client.on_book(lambda v: None)
        assert client._rest is None or client._rest._session is None, "a session was re-created"
        gc.collect()
    leaks = [w for w in caught if "Unclosed" in str(w.message)]
    assert leaks == [], leaks
    assert await _open_on_gateway(gw) == [], "an order was placed through a closed client"
    # reading what is left stays allowed: final stats and books
    assert client.stats().connection == "closed"
    assert not client.book("AAPL").synced
    await client.close()  # still idempotent


async def test_closed_error_is_a_stream_error_and_close_before_start(gw: Gateway) -> None:
    client = make_client(gw)
    await client.close()
    with pytest.raises(StreamError, match="client is closed"):
        await client.start()
    with pytest.raises(ClientClosedError):
        async with client:
            pass


async def test_close_wakes_calls_waiting_on_the_client(gw: Gateway) -> None:
    client = make_client(gw)
    await client.start()
    await client.subscribe(["orderbook:AAPL"])
    gw.trigger("stall", duration_ms=5000)  # nothing answers: subscribe and wait_synced wait
    waiting = [
        asyncio.create_task(client.wait_synced("MSFT", timeout=30)),
        asyncio.create_task(client.subscribe(["orderbook:MSFT"])),
    ]
    await asyncio.sleep(0.3)
    t0 = time.monotonic()
    await client.close()
    for t in waiting:
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(t, 5.0)
    assert time.monotonic() - t0 < 5.0


SLOW_RECONNECT = BackoffPolicy(base_s=4.0, cap_s=4.0, jitter="none", healthy_after_s=60.0)


async def _wait_state(client: Client, states: set[str], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while client.connection_state not in states:
            await asyncio.sleep(0.01)


async def test_place_limit_order_is_refused_while_blind(gw: Gateway) -> None:
    async with make_client(gw, reconnect=SLOW_RECONNECT) as client:
        await client.subscribe(["orderbook:AAPL"])
        await client.wait_synced("AAPL", timeout=10)
        gw.trigger("disconnect", close_frame=False)
        await _wait_state(client, {"blind", "backoff", "connecting"})
        with pytest.raises(BlindError, match="stream is down") as exc:
            await client.place_limit_order("AAPL", "buy", "100.00", "1")
        assert isinstance(exc.value, StreamError)
        assert "refused" in str(exc.value)
        assert await client.open_orders() == []  # nothing reached the gateway
        assert client.own_orders == {}
        # once the stream is back, orders go through again
        await _wait_state(client, {"connected"}, timeout=15.0)
        order = await client.place_limit_order("AAPL", "buy", "100.00", "1")
        assert order.is_open and order.order_id in client.own_orders
        await client.cancel_all_orders()


@pytest.fixture
async def stalling_rest_proxy(gw: Gateway) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A REST front for the real gateway that, on POST /v1/orders, disconnects the stream and
    answers only once told to (``release``): an order in flight while the stream goes down."""
    release = asyncio.Event()
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        if request.method == "POST" and request.path == "/v1/orders":
            gw.trigger("disconnect", close_frame=False)
            await asyncio.wait_for(release.wait(), 10.0)
        async with session.request(
            request.method,
            gw.rest_url + request.path_qs,
            data=body,
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        ) as r:
            return web.Response(body=await r.read(), status=r.status, content_type=r.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", release
    finally:
        release.set()
        await runner.cleanup()
        await session.close()


async def test_order_in_flight_when_the_stream_drops_is_cancelled_not_orphaned(
    gw: Gateway, stalling_rest_proxy: tuple[str, asyncio.Event]
) -> None:
    rest_url, release = stalling_rest_proxy
    client = Client(
        gw.stream_url,
        rest_url,
        key=gw.key,
        secret=gw.secret,
        reconnect=SLOW_RECONNECT,
        cancel_on_disconnect=False,  # only the client's own kill switch protects the order
    )
    async with client:
        await client.subscribe(["orderbook:AAPL"])
        await client.wait_synced("AAPL", timeout=10)
        place = asyncio.create_task(client.place_limit_order("AAPL", "buy", "100.00", "1"))
        await _wait_state(client, {"backoff"})  # the kill switch ran while the order was out
        release.set()
        with pytest.raises(BlindError, match="cancelled"):
            await asyncio.wait_for(place, 10.0)
        assert client.own_orders == {}
    assert await _open_on_gateway(gw) == []


async def test_stats_frames_per_s_is_a_real_rate_on_a_single_call(gw: Gateway) -> None:
    async with make_client(gw) as client:
        await client.subscribe(["orderbook:AAPL", "orderbook:MSFT", "ticker:BTC-USD"])
        await client.wait_synced("AAPL", timeout=10)
        async with asyncio.timeout(10):
            while client.metrics.frames < 20:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        rate = client.stats().frames_per_s  # the first and only call
        assert rate > 0.0
        # the gateway sends ~40 deltas/s a book: the order of magnitude is right
        assert 5.0 < rate < 2000.0, rate


async def test_unsubscribe_of_a_channel_never_subscribed_is_returned_refused(
    gw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_client(gw) as client:
        sub = await client.subscribe(["orderbook:AAPL", "orderbook:NOPE"])
        assert sub.refused == {"orderbook:NOPE": "unknown_channel"}
        res = await client.unsubscribe(["orderbook:MSFT", "orderbook:AAPL"])
        assert type(res) is type(sub)
        assert res.accepted == ["orderbook:AAPL"]
        assert res.refused == {"orderbook:MSFT": "not_subscribed"}
        only = await client.unsubscribe("ticker:BTC-USD")
        assert only.accepted == [] and only.refused == {"ticker:BTC-USD": "not_subscribed"}
        assert client.channels == []
    assert not [r for r in caplog.records if "not_subscribed" in r.getMessage()]


async def test_get_order_reports_the_gateway_state(gw: Gateway) -> None:
    async with make_client(gw) as client:
        o = await client.place_limit_order("AAPL", "buy", "100.00", "1")
        assert (await client.get_order(o.order_id)).status == "open"
        await client.cancel_order(o.order_id)
        got = await client.get_order(o.order_id)
        assert got.status == "cancelled" and got.order_id == o.order_id
        with pytest.raises(UnknownOrderError):
            await client.get_order("O-nope")
