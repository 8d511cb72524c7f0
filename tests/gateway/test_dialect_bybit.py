"""`tickpipe gateway --dialect bybit`, seen as a Bybit v5 public client sees it.

Every test runs the real gateway (in-process on 127.0.0.1 port 0), talks to it with a plain
aiohttp client and decodes everything with ``tickpipe.venues.bybit.codec`` (the client's own
decoder). Books are seeded from the ``snapshot``, followed on ``u`` (``Continuity.SEQ``) and
compared with the gateway's truth (top 200 levels) at the hub seq the dialect maps ``u`` to.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from tests.gateway.dialect_helpers import WAIT_S, apply, assert_disconnected, dialect_gateway, load
from tickpipe.errors import ConfigError
from tickpipe.gateway import Gateway
from tickpipe.gateway.dialects.bybit import FIRST_U, BybitDialect
from tickpipe.gateway.testing import GatewayProcess
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.continuity import Step, follows
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, Continuity, TickerEvent
from tickpipe.venues.bybit import codec, endpoints
from tickpipe.venues.bybit.codec import Pong, Subscribed, VenueError
from tickpipe.venues.bybit.endpoints import BYBIT, BYBIT_LINEAR

SEQ = Continuity.SEQ
BOOK = "orderbook:BTCUSDT"
SPOT, LINEAR = "/v5/public/spot", "/v5/public/linear"


@asynccontextmanager
async def bybit_gateway(rate: float = 200.0, **options: Any) -> AsyncIterator[Gateway]:
    async with dialect_gateway("bybit", rate, **options) as gw:
        yield gw


@asynccontextmanager
async def connected(
    path: str, rate: float = 200.0, **options: Any
) -> AsyncIterator[tuple[Gateway, aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]]:
    """A bybit gateway, an HTTP session and a WebSocket on ``path``."""
    async with (
        bybit_gateway(rate, **options) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + path) as ws,
    ):
        yield gw, http, ws


def dialect(gw: Gateway) -> BybitDialect:
    assert isinstance(gw.dialect, BybitDialect)
    return gw.dialect


async def next_event(ws: aiohttp.ClientWebSocketResponse, kind: Any) -> Any:
    """The next decoded event of type ``kind`` (others skipped), within WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    for _ in range(100_000):
        msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
        for ev in codec.decode(msg.data):
            if isinstance(ev, kind):
                return ev
    raise AssertionError("no such event")


async def instrument(http: aiohttp.ClientSession, gw: Gateway, category: str) -> Instrument:
    async with http.get(f"{gw.rest_url}/v5/market/instruments-info?category={category}") as r:
        assert r.status == 200
        insts, cursor = codec.decode_instruments(await r.read(), category)  # type: ignore[arg-type]
    assert cursor == ""
    return {i.symbol: i for i in insts}["BTCUSDT"]


def truth(gw: Gateway, u: int) -> OrderBook:
    book = gw.true_book("BTCUSDT", dialect(gw).hub_seq("BTCUSDT", u))
    book.truncate(200)
    return book


async def subscribe_book(
    http: aiohttp.ClientSession, gw: Gateway, ws: aiohttp.ClientWebSocketResponse, path: str
) -> tuple[OrderBook, int]:
    inst = await instrument(http, gw, "spot" if path == SPOT else "linear")
    spec = BYBIT if path == SPOT else BYBIT_LINEAR
    await ws.send_str(endpoints.subscribe_message([BOOK], "1", spec).decode())
    ack = await next_event(ws, Subscribed | VenueError)
    assert ack == Subscribed("subscribe", "1", ack.conn_id)
    snap = await next_event(ws, BookSnapshot)
    assert snap.last_id is not None and snap.last_id >= FIRST_U - 1
    book = load(inst, snap)
    assert book == truth(gw, snap.last_id)
    assert len(snap.bids) == 200 and len(snap.asks) == 200  # the simulator keeps ~300 a side
    return book, snap.last_id


@pytest.mark.parametrize("path", [SPOT, LINEAR])
async def test_snapshot_then_contiguous_u_deltas_equal_the_top_200_of_the_truth(path: str) -> None:
    async with connected(path) as (gw, http, ws):
        book, u = await subscribe_book(http, gw, ws, path)
        for _ in range(30):
            d = await next_event(ws, BookDelta)
            assert follows(SEQ, u, d) is Step.NEXT, (u, d.last_id)  # u + 1, every frame
            apply(book, d)
            u = d.last_id or 0
            assert len(book.bids) <= 200 and len(book.asks) <= 200
            assert book == truth(gw, u)


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        (SPOT, {"success": True, "ret_msg": "pong", "op": "ping"}),
        (LINEAR, {"success": True, "ret_msg": "pong", "req_id": "9", "op": "ping"}),
    ],
)
async def test_ping_answered_with_the_documented_pong(path: str, shape: dict[str, Any]) -> None:
    async with connected(path) as (_gw, _http, ws):
        await ws.send_str(endpoints.ping_message("9").decode())
        msg = await ws.receive(timeout=WAIT_S)
        body = json.loads(msg.data)
        assert body.pop("conn_id")
        assert body == shape
        assert isinstance(codec.decode(msg.data)[0], Pong)


async def test_stop_pings_stops_the_pongs_not_the_stream() -> None:
    async with connected(LINEAR) as (gw, http, ws):
        await subscribe_book(http, gw, ws, LINEAR)
        gw.trigger("stop_pings", duration_ms=60_000)
        await ws.send_str(endpoints.ping_message("1").decode())
        deltas = 0
        for _ in range(20):  # 20 frames: all data, no pong among them
            msg = await ws.receive(timeout=WAIT_S)
            ev = codec.decode(msg.data)[0]
            assert not isinstance(ev, Pong)
            deltas += isinstance(ev, BookDelta)
        assert deltas == 20


async def test_limits_and_bad_requests_are_refused_by_request() -> None:
    async with connected(SPOT) as (gw, http, ws):
        eleven = {
            "op": "subscribe",
            "req_id": "a",
            "args": [f"tickers.X{i}" for i in range(11)],
        }
        await ws.send_str(json.dumps(eleven))
        err = await next_event(ws, VenueError)
        assert err.request_id == "a" and "args size >10" in err.message
        bad = {"op": "subscribe", "req_id": "b", "args": ["orderbook.200.NOPE"]}
        await ws.send_str(json.dumps(bad))
        err = await next_event(ws, VenueError)
        assert err.request_id == "b" and "orderbook.200.NOPE" in err.message
        await ws.send_str('{"op":"subscribe","req_id":"c","args":["kline.1.BTCUSDT"]}')
        err = await next_event(ws, VenueError)
        assert "kline.1.BTCUSDT" in err.message
        await subscribe_book(http, gw, ws, SPOT)
        await ws.send_str(endpoints.subscribe_message([BOOK], "d").decode())
        err = await next_event(ws, VenueError)
        assert err.request_id == "d" and "already subscribed" in err.message
        async with http.ws_connect(gw.stream_url + LINEAR) as lws:  # linear: no args cap
            chans = [f"ticker:{s}" for s in gw.hub.markets][:11]
            await lws.send_str(endpoints.subscribe_message(chans, "e", BYBIT_LINEAR).decode())
            ack = await next_event(lws, Subscribed | VenueError)
            assert ack == Subscribed("subscribe", "e", ack.conn_id)


async def test_args_chars_per_connection_bound() -> None:
    async with connected(LINEAR, max_args_chars=30) as (_gw, _http, ws):
        await ws.send_str(endpoints.subscribe_message([BOOK], "1", BYBIT_LINEAR).decode())
        assert isinstance(await next_event(ws, Subscribed | VenueError), Subscribed)
        await ws.send_str(
            endpoints.subscribe_message(["ticker:ETHUSDT"], "2", BYBIT_LINEAR).decode()
        )
        err = await next_event(ws, VenueError)
        assert err.request_id == "2" and "21000" not in err.message and "30" in err.message


async def test_drop_delta_shows_as_a_skipped_u() -> None:
    async with connected(SPOT) as (gw, http, ws):
        _, u = await subscribe_book(http, gw, ws, SPOT)
        d = await next_event(ws, BookDelta)
        gw.trigger("drop_delta", channel=BOOK)
        u = d.last_id or 0
        for _ in range(50):
            d = await next_event(ws, BookDelta)
            step = follows(SEQ, u, d)
            if step is Step.GAP:
                assert d.last_id == u + 2  # exactly one u missing
                break
            assert step is Step.NEXT
            u = d.last_id or 0
        else:
            raise AssertionError("no gap seen")
        assert gw.faults_json()["counts"]["drop_delta"] == 1


async def test_venue_restart_sends_a_u1_snapshot_then_u2() -> None:
    async with connected(LINEAR) as (gw, http, ws):
        book, _ = await subscribe_book(http, gw, ws, LINEAR)
        out = gw.trigger("venue_restart", channel=BOOK)
        assert out["u"] == 1
        raw = None
        for _ in range(1000):
            msg = await ws.receive(timeout=WAIT_S)
            if '"type":"snapshot"' in msg.data and '"u":1,' in msg.data:
                raw = msg.data
                break
        assert raw is not None
        (snap,) = codec.decode(raw)
        assert isinstance(snap, BookSnapshot) and snap.last_id == 1
        book = load(book.instrument, snap)
        assert book == truth(gw, 1)
        d = await next_event(ws, BookDelta)
        assert d.last_id == 2
        apply(book, d)
        assert book == truth(gw, 2)


async def test_resend_snapshot_keeps_u() -> None:
    async with connected(SPOT) as (gw, http, ws):
        await subscribe_book(http, gw, ws, SPOT)
        out = gw.trigger("resend_snapshot", channel=BOOK)
        snap = await next_event(ws, BookSnapshot)
        assert snap.last_id == out["u"] and snap.last_id > 1


async def test_faults_that_do_not_apply_are_refused() -> None:
    async with bybit_gateway() as gw:
        for fault in ("bad_checksum", "stale_snapshot", "snapshot_error"):
            with pytest.raises(ConfigError, match="bybit"):
                gw.trigger(fault, channel=BOOK)
        with pytest.raises(ConfigError, match="orderbook channel"):
            gw.trigger("venue_restart", channel="ticker:BTCUSDT")


@pytest.mark.parametrize("close_frame", [True, False])
async def test_disconnect(close_frame: bool) -> None:
    async with connected(SPOT) as (gw, http, ws):
        await subscribe_book(http, gw, ws, SPOT)
        gw.trigger("disconnect", close_frame=close_frame)
        await assert_disconnected(ws, close_frame)


async def test_tickers_linear_snapshot_then_partial_deltas_spot_without_bid_ask() -> None:
    async with connected(LINEAR) as (gw, http, ws):
        await ws.send_str(
            endpoints.subscribe_message(["ticker:BTCUSDT"], "1", BYBIT_LINEAR).decode()
        )
        msg = await ws.receive(timeout=WAIT_S)
        assert isinstance(codec.decode(msg.data)[0], Subscribed)
        msg = await ws.receive(timeout=WAIT_S)
        first = codec.decode(msg.data)[0]
        assert isinstance(first, TickerEvent) and '"type":"snapshot"' in msg.data
        assert None not in (first.bid, first.ask, first.bid_size, first.ask_size, first.last)
        delta = await next_event(ws, TickerEvent)
        merged = codec.merge_ticker(first, delta)
        assert merged.bid is not None and merged.ask is not None
        assert delta != merged or delta.bid is not None  # a delta holds what changed
        async with http.ws_connect(gw.stream_url + SPOT) as ws:
            await ws.send_str(endpoints.subscribe_message(["ticker:BTCUSDT"], "1").decode())
            spot = await next_event(ws, TickerEvent)
            assert spot.bid is None and spot.ask is None and spot.last is not None


async def test_rest_orderbook_and_instrument_pages() -> None:
    async with bybit_gateway(rest_requests_per_5s=5) as gw, aiohttp.ClientSession() as http:
        url = gw.rest_url + "/v5/market/instruments-info?category=linear&limit=4"
        async with http.get(url) as r:
            page, cursor = codec.decode_instruments(await r.read(), "linear")
        assert len(page) == 4 and cursor == "4"
        url = gw.rest_url + "/v5/market/orderbook?category=spot&symbol=BTCUSDT&limit=5"
        async with http.get(url) as r:
            snap = codec.decode_rest_orderbook(await r.read())
        assert len(snap.bids) == 5 and snap.last_id is not None
        statuses = []
        for _ in range(5):
            async with http.get(url) as r:
                statuses.append(r.status)
        assert statuses[-1] == 403  # Bybit's IP limit: "access too frequently"


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_serves_bybit_and_refuses_a_bad_option() -> None:
    help_out = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "bybit" in help_out and "/v5/public/spot" in help_out
    with GatewayProcess("--dialect", "bybit") as gp:
        assert gp.ready["dialect"] == "bybit" and "BTCUSDT" in gp.ready["symbols"]

        async def restart_over_admin() -> None:
            headers = {"X-Admin-Token": gp.admin_token}
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(gp.stream_url + LINEAR) as ws,
            ):
                await ws.send_str(endpoints.subscribe_message([BOOK], "1", BYBIT_LINEAR).decode())
                first = await next_event(ws, BookSnapshot)
                assert first.last_id is not None and first.last_id > 1
                body = {"fault": "venue_restart", "channel": BOOK}
                async with http.post(
                    gp.admin_url + "/admin/trigger", json=body, headers=headers
                ) as r:
                    assert r.status == 200, await r.text()
                    assert (await r.json())["u"] == 1
                again = await next_event(ws, BookSnapshot)
                assert again.last_id == 1
                body = {"fault": "no_such_fault"}
                async with http.post(
                    gp.admin_url + "/admin/trigger", json=body, headers=headers
                ) as r:
                    assert r.status == 400 and "venue_restart" in await r.text()

        asyncio.run(restart_over_admin())
    bad = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--port", "0", "--no-admin",
         "--dialect", "bybit", "--dialect-option", "max_args_chars=-1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "max_args_chars" in bad.stderr
