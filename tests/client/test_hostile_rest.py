"""The real client's REST against a hostile gateway (issue 13): endless and huge bodies,
absurd ``Retry-After``, snapshots with too many levels. Each is refused with an error naming
the limit, and the book backs off and asks again instead of hanging or eating memory.
(Peak memory and loop blocking at the default caps: benchmarks/hostile_memory.py.)"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from aiohttp import web

from tests.client.hostile import Handler, HostileGateway, snapshot_body, until
from tickpipe import Client
from tickpipe.client.events import ClientEvent
from tickpipe.client.rest import (
    BODY_TOO_LARGE,
    DEFAULT_RETRY_AFTER_S,
    RestClient,
    is_retryable,
    parse_retry_after,
)
from tickpipe.errors import ConfigError, FrameError, RateLimitedError, RestError


def _client(gw: HostileGateway, **knobs: Any) -> Client:
    return Client(gw.stream_url, gw.rest_url, key="k", secret="s", **knobs)


def _errors(events: list[ClientEvent]) -> list[str]:
    return [e.to_dict()["error"] for e in events if e.name == "snapshot_error"]


async def _endless(request: web.Request) -> web.StreamResponse:
    """200, chunked, 64 KiB chunks until the client hangs up (bounded: 1 GiB)."""
    resp = web.StreamResponse()
    await resp.prepare(request)
    chunk = b'{"symbol":"X","seq":1,"ts":1,"bids":[' + b'["1.00","1.000"],' * 3600
    try:
        for _ in range(16_384):
            await resp.write(chunk)
    except (ConnectionError, RuntimeError):
        pass
    return resp


async def test_an_endless_snapshot_body_is_refused_at_the_cap_and_the_book_backs_off() -> None:
    """Before: read whole until the 10 s timeout (2.8 GB RSS in the issue)."""
    async with (
        HostileGateway(snapshot=_endless) as gw,
        _client(gw, max_rest_body_bytes=1 << 20) as client,
    ):
        seen: list[ClientEvent] = []
        client.on_state(seen.append)
        await client.subscribe(["orderbook:X"])
        await until(lambda: len(_errors(seen)) >= 2, 8, "two snapshot_error events")
        assert all("max_rest_body_bytes (1048576 bytes)" in e for e in _errors(seen))
        assert gw.snapshot_requests >= 2  # backed off and asked again
        rest = client._require(client._rest)
        assert rest.bodies_refused >= 2 and client.connected


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(1 << 40)})
        await resp.prepare(request)
        await asyncio.sleep(30)  # never sends it: a reader that waits would time out
        return resp

    async with HostileGateway(snapshot=huge) as gw:
        rest = RestClient(gw.rest_url, "k", "s", timeout_s=20.0)  # default cap, 16 MiB
        try:
            with pytest.raises(RestError) as info:
                await asyncio.wait_for(rest.snapshot("X"), 10)
        finally:
            await rest.close()
    assert info.value.code == BODY_TOO_LARGE and is_retryable(info.value)
    assert "max_rest_body_bytes (16777216 bytes)" in str(info.value)


async def test_every_rest_answer_is_capped_not_only_snapshots() -> None:
    async def orders(_: web.Request) -> web.Response:
        return web.json_response({"orders": ["x" * 100] * 100})  # ~10 KB

    async def big_429(_: web.Request) -> web.Response:
        return web.Response(status=429, body=b"x" * (1 << 20), headers={"Retry-After": "2"})

    app = web.Application()
    app.router.add_get("/v1/orders", orders)
    app.router.add_get("/v1/instruments", big_429)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    rest = RestClient(url, "k", "s", timeout_s=10.0, max_body_bytes=4096)
    try:
        with pytest.raises(RestError, match="max_rest_body_bytes") as info:
            await rest.list_orders()
        assert info.value.status == 200 and info.value.code == BODY_TOO_LARGE
        # an error body over the cap is cut (64 KiB at most), the 429 still reads as one
        with pytest.raises(RateLimitedError) as limited:
            await rest.instruments()
        assert limited.value.retry_after_s == 2.0
    finally:
        await rest.close()
        await runner.cleanup()


@pytest.mark.parametrize(
    ("header", "seconds", "note"),
    [
        (None, DEFAULT_RETRY_AFTER_S, None),
        ("3", 3.0, None),
        ("0.5", 0.5, None),
        ("inf", DEFAULT_RETRY_AFTER_S, "not a finite number"),
        ("-inf", DEFAULT_RETRY_AFTER_S, "not a finite number"),
        ("nan", DEFAULT_RETRY_AFTER_S, "not a finite number"),
        ("-1", DEFAULT_RETRY_AFTER_S, "not a finite number"),
        ("Wed, 21 Oct 2015 07:28:00 GMT", DEFAULT_RETRY_AFTER_S, "not a finite number"),
        ("1e300", 60.0, "clamped to max_retry_after_s 60s"),
        ("61", 60.0, "clamped"),
    ],
)
def test_retry_after_is_clamped_and_checked(
    header: str | None, seconds: float, note: str | None
) -> None:
    got, why = parse_retry_after(header, 60.0)
    assert got == seconds and math.isfinite(got)
    assert (why is None) if note is None else (why is not None and note in why)


def test_a_huge_retry_after_header_is_truncated_in_the_note() -> None:
    _, why = parse_retry_after("9" * 10_000, 60.0)
    assert why is not None and len(why) < 120


def _rate_limited_once(retry_after: str) -> Handler:
    answered = {"n": 0}

    async def handler(_: web.Request) -> web.Response:
        answered["n"] += 1
        if answered["n"] == 1:
            return web.json_response(
                {"error": {"code": "rate_limited", "message": "slow down"}},
                status=429,
                headers={"Retry-After": retry_after},
            )
        return web.json_response(snapshot_body())

    return handler


@pytest.mark.parametrize(
    ("header", "knobs", "note"),
    [
        ("inf", {}, "not a finite number"),
        ("100000", {"max_retry_after_s": 0.5}, "clamped to max_retry_after_s 0.5s"),
    ],
)
async def test_an_absurd_retry_after_does_not_keep_books_syncing(
    header: str, knobs: dict[str, Any], note: str
) -> None:
    """Before: ``inf`` paused every fetch for ever; 100000 for 28 hours."""
    async with (
        HostileGateway(snapshot=_rate_limited_once(header)) as gw,
        _client(gw, **knobs) as client,
    ):
        seen: list[ClientEvent] = []
        client.on_state(seen.append)
        await client.subscribe(["orderbook:X"])
        await client.wait_synced("X", timeout=10)
        errors = _errors(seen)
        assert len(errors) == 1 and note in errors[0], errors
        assert client._require(client._rest).retry_after_fixed == 1


def _levels_body(bids: int, asks: int) -> Handler:
    body = json.dumps(snapshot_body(bids=bids, asks=asks)).encode()

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return handler


@pytest.mark.parametrize(
    ("bids", "asks", "match"),
    [
        (101, 0, "field 'bids': snapshot has 101 levels, over max_snapshot_levels"),
        (0, 101, "field 'asks': snapshot has 101 levels"),
        (150, 150, "more than 100 levels a side can need"),  # refused before decoding
    ],
)
async def test_a_snapshot_over_max_snapshot_levels_is_refused(
    bids: int, asks: int, match: str
) -> None:
    async with HostileGateway(snapshot=_levels_body(bids, asks)) as gw:
        rest = RestClient(gw.rest_url, "k", "s", timeout_s=10.0, max_snapshot_levels=100)
        try:
            with pytest.raises(FrameError, match=match) as info:
                await rest.snapshot("X")
            assert info.value.channel == "orderbook:X"
        finally:
            await rest.close()


async def test_a_snapshot_at_max_snapshot_levels_is_accepted() -> None:
    async with HostileGateway(snapshot=_levels_body(100, 100)) as gw:
        rest = RestClient(gw.rest_url, "k", "s", timeout_s=10.0, max_snapshot_levels=100)
        try:
            snap = await rest.snapshot("X")
        finally:
            await rest.close()
    assert len(snap.bids) == len(snap.asks) == 100


async def test_a_huge_snapshot_is_a_snapshot_error_and_the_book_retries() -> None:
    """Default cap (10,000 a side). Before: 10,001 levels (or 2 million) accepted whole."""
    first = _levels_body(10_001, 1)
    calls = {"n": 0}

    async def handler(request: web.Request) -> web.StreamResponse:
        calls["n"] += 1
        if calls["n"] == 1:
            return await first(request)
        return web.json_response(snapshot_body())

    async with HostileGateway(snapshot=handler) as gw, _client(gw) as client:
        seen: list[ClientEvent] = []
        client.on_state(seen.append)
        await client.subscribe(["orderbook:X"])
        book = await client.wait_synced("X", timeout=10)
        assert len(book.bids(100)) == 1
        (error,) = _errors(seen)
        assert "10001 levels, over max_snapshot_levels (10000)" in error


@pytest.mark.parametrize(
    "knob",
    [
        {"max_rest_body_bytes": 0},
        {"max_snapshot_levels": -1},
        {"max_retry_after_s": math.inf},
        {"max_fragmented_message_s": 0},
    ],
)
def test_the_new_knobs_are_validated(knob: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(knob))):
        Client(key="k", secret="s", **knob)
