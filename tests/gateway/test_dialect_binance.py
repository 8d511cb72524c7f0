"""`tickpipe gateway --dialect binance`, seen as a Binance spot client sees it.

Every test runs the real gateway (in-process on 127.0.0.1 port 0, or a subprocess for the CLI),
talks to it with a plain aiohttp client, and decodes everything with
``tickpipe.venues.binance.codec`` (the client's own decoder). Books are seeded from
``/api/v3/depth``, bridged and followed with ``tickpipe.protocol.continuity`` (RANGE), applied
with ``OrderBook`` and compared with the gateway's truth at the same update id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from tests.gateway.dialect_helpers import (
    WAIT_S,
    apply,
    assert_disconnected,
    dialect_gateway,
    load,
)
from tickpipe.errors import ConfigError
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.testing import GatewayProcess
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.continuity import Step, bridges, follows
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, Continuity, TradeEvent
from tickpipe.venues.binance.codec import Codec, CommandAck, VenueError

CODEC = Codec()
RANGE = Continuity.RANGE
DEPTH = "btcusdt@depth@100ms"


@asynccontextmanager
async def binance_gateway(rate: float = 200.0, **options: Any) -> AsyncIterator[Gateway]:
    async with dialect_gateway("binance", rate, **options) as gw:
        yield gw


async def instruments(http: aiohttp.ClientSession, gw: Gateway) -> dict[str, Instrument]:
    async with http.get(gw.rest_url + "/api/v3/exchangeInfo") as r:
        assert r.status == 200
        return CODEC.decode_exchange_info(await r.read())


async def snapshot(http: aiohttp.ClientSession, gw: Gateway, symbol: str) -> BookSnapshot:
    async with http.get(gw.rest_url + f"/api/v3/depth?symbol={symbol}&limit=5000") as r:
        assert r.status == 200, await r.text()
        return CODEC.decode_depth_snapshot(await r.read(), symbol)


async def next_event(ws: aiohttp.ClientWebSocketResponse, kind: Any) -> Any:
    """The next decoded frame of type ``kind`` (others skipped), within WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    for _ in range(100_000):
        msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        if msg.type == aiohttp.WSMsgType.PING:  # a connection with autoping off
            await ws.pong(msg.data)
            continue
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
        ev = CODEC.decode_frame(msg.data)
        if isinstance(ev, kind):
            return ev
    raise AssertionError("no such event")


async def reply(ws: aiohttp.ClientWebSocketResponse) -> CommandAck | VenueError:
    ev = await next_event(ws, CommandAck | VenueError)
    assert isinstance(ev, CommandAck | VenueError)
    return ev


async def send(ws: aiohttp.ClientWebSocketResponse, obj: Any) -> None:
    await ws.send_str(obj if isinstance(obj, str) else json.dumps(obj))


class Follower:
    """A Binance book as a client keeps it: buffer, seed from REST, bridge, follow (RANGE)."""

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.book: OrderBook | None = None
        self.last_id = 0
        self.steps: list[tuple[Step, BookDelta]] = []

    def seed(self, snap: BookSnapshot, buffered: list[BookDelta]) -> None:
        assert snap.last_id is not None
        self.book = load(self.inst, snap)
        self.last_id = snap.last_id
        bridged = False
        for d in buffered:
            if not bridged:
                step = bridges(RANGE, self.last_id, d)
                assert step is not Step.GAP, (snap.last_id, d.first_id, d.last_id)
                if step is Step.COVERED:
                    continue
                bridged = True
                apply(self.book, d)
                self.last_id = d.last_id or 0
            else:
                self.feed(d)

    def feed(self, d: BookDelta) -> Step:
        step = follows(RANGE, self.last_id, d)
        self.steps.append((step, d))
        if step is Step.NEXT:
            assert self.book is not None
            apply(self.book, d)
            self.last_id = d.last_id or 0
        return step


async def synced_follower(
    http: aiohttp.ClientSession, gw: Gateway, ws: aiohttp.ClientWebSocketResponse, symbol: str
) -> Follower:
    insts = await instruments(http, gw)
    buffered = [await next_event(ws, BookDelta)]
    snap = await snapshot(http, gw, symbol)
    # buffer until an event reaches past the snapshot (Binance: drop u <= lastUpdateId)
    assert snap.last_id is not None
    for _ in range(200):
        if buffered[-1].last_id is not None and buffered[-1].last_id > snap.last_id:
            break
        buffered.append(await next_event(ws, BookDelta))
    f = Follower(insts[symbol])
    f.seed(snap, buffered)
    return f


# -- the book ------------------------------------------------------------------------------


async def test_diff_stream_keeps_a_seeded_book_equal_to_the_truth() -> None:
    async with binance_gateway() as gw, aiohttp.ClientSession() as http:
        url = gw.stream_url + f"/stream?streams={DEPTH}/ethusdt@depth@100ms"
        async with http.ws_connect(url, autoping=True) as ws:
            f = await synced_follower(http, gw, ws, "BTCUSDT")
            spans = []
            for _ in range(15):
                d = await next_event(ws, BookDelta)
                if d.symbol != "BTCUSDT":
                    continue
                assert f.feed(d) is Step.NEXT, (f.last_id, d.first_id, d.last_id)
                spans.append((d.last_id or 0) - (d.first_id or 0) + 1)
            assert f.book is not None
            assert f.book == gw.true_book("BTCUSDT", f.last_id)
            # many simulator steps merged into one 100 ms event, as Binance does
            assert max(spans) > 1
            # the truth over the admin API, by Binance update id
            async with http.get(
                f"{gw.admin_url}/admin/book/BTCUSDT?seq={f.last_id}",
                headers={"X-Admin-Token": gw.admin_token},
            ) as r:
                truth = await r.json()
            inst = f.inst
            bids, asks = f.book.to_lists()
            assert truth["bids"] == [[inst.format_price(p), inst.format_size(s)] for p, s in bids]
            assert truth["asks"] == [[inst.format_price(p), inst.format_size(s)] for p, s in asks]


async def test_exchange_info_lists_the_simulator_grid_and_the_budget() -> None:
    async with (
        binance_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.get(gw.rest_url + "/api/v3/exchangeInfo") as r,
    ):
        body = await r.read()
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "20"
        by_filters = CODEC.decode_exchange_info(body, grid="filters")
        sim = {m.instrument.symbol: m.instrument for m in gw.hub.markets.values()}
        assert set(by_filters) == set(sim) >= {"BTCUSDT", "ETHUSDT", "AAPL", "USDJPY", "XAUUSDT"}
        for sym, inst in by_filters.items():
            assert (inst.tick_size, inst.lot_size) == (sim[sym].tick_size, sim[sym].lot_size)
        assert json.loads(body)["rateLimits"][0]["limit"] == 6000
        async with http.get(gw.rest_url + "/api/v3/exchangeInfo?symbol=NOPE") as r:
            assert r.status == 400
            assert CODEC.decode_rest_error(await r.read()).code == -1121


# -- commands and bad requests ---------------------------------------------------------------


async def test_subscribe_list_unsubscribe_and_properties() -> None:
    async with (
        binance_gateway(max_incoming_per_s=100) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + "/ws") as ws,
    ):
        await send(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1})
        assert await reply(ws) == CommandAck(1, None)
        trade = await next_event(ws, TradeEvent)
        assert trade.symbol == "BTCUSDT" and trade.side in ("buy", "sell")
        await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": "two"})
        assert await reply(ws) == CommandAck("two", ["btcusdt@trade"])
        await send(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 3})
        assert await reply(ws) == CommandAck(3, False)
        await send(ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 4})
        assert await reply(ws) == CommandAck(4, None)
        for _ in range(50):  # now wrapped: {"stream": ..., "data": ...}
            msg = await ws.receive(timeout=WAIT_S)
            if '"stream"' in msg.data:
                assert json.loads(msg.data)["stream"] == "btcusdt@trade"
                break
        else:
            raise AssertionError("no combined frame")
        await send(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 5})
        assert await reply(ws) == CommandAck(5, None)
        await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 6})
        assert await reply(ws) == CommandAck(6, [])


@pytest.mark.parametrize(
    ("frame", "code", "words"),
    [
        ("nope", 3, "Invalid JSON"),
        ('{"method": "FOO", "id": 5}', 2, "unknown variant `FOO`"),
        ('{"params": [], "id": 7}', 2, "method"),
        ('{"method": "SUBSCRIBE", "params": ["dogeusdt@depth@100ms"], "id": 8}', 2, "symbol"),
        ('{"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 9}', 2, "unknown stream"),
        ('{"method": "SUBSCRIBE", "params": [7], "id": 10}', 2, "string"),
        ('{"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 11}', 1, "Boolean"),
        ('{"method": "GET_PROPERTY", "params": ["colour"], "id": 12}', 0, "Unknown property"),
    ],
)
async def test_bad_commands_get_binance_error_shapes(frame: str, code: int, words: str) -> None:
    async with (
        binance_gateway(rate=20) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + "/ws") as ws,
    ):
        await send(ws, frame)
        err = await reply(ws)
        assert isinstance(err, VenueError), err
        assert err.code == code and words in err.msg, err
        if '"id"' in frame:
            assert err.id == json.loads(frame)["id"]
        # the connection keeps working
        await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 99})
        assert await reply(ws) == CommandAck(99, [])


async def test_stream_caps_and_unknown_streams_in_the_url() -> None:
    async with binance_gateway(max_streams_per_connection=2) as gw, aiohttp.ClientSession() as http:
        bad = gw.rest_url + "/stream?streams=btcusdt@depth@100ms/nope@trade"
        async with http.get(bad) as r:
            assert r.status == 400
            err = CODEC.decode_rest_error(await r.read())
            assert err.code == 2 and "nope@trade" in err.msg
        three = "btcusdt@trade/ethusdt@trade/solusdt@trade"
        async with http.get(gw.rest_url + f"/stream?streams={three}") as r:
            assert r.status == 400 and "over the 2" in (await r.text())
        async with http.ws_connect(gw.stream_url + "/ws/btcusdt@trade") as ws:
            params = ["ethusdt@trade", "solusdt@trade"]
            await send(ws, {"method": "SUBSCRIBE", "params": params, "id": 1})
            cap = await reply(ws)
            assert isinstance(cap, VenueError) and cap.code == 2 and "over the 2" in cap.msg
            await send(ws, {"method": "SUBSCRIBE", "params": params[:1], "id": 2})
            assert await reply(ws) == CommandAck(2, None)


async def test_more_than_five_incoming_messages_a_second_closes_the_connection() -> None:
    async with (
        binance_gateway(rate=20) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + "/ws") as ws,
    ):
        for i in range(6):  # back to back: well within one second
            await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": i})
        answered = []
        for _ in range(10):
            msg = await ws.receive(timeout=WAIT_S)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            answered.append(CODEC.decode_frame(msg.data))
        assert msg.type == aiohttp.WSMsgType.CLOSE, msg
        assert ws.close_code == 1008 and "incoming messages" in (msg.extra or "")
        assert answered == [CommandAck(i, []) for i in range(len(answered))]
        assert len(answered) <= 5


# -- heartbeat and connection age -----------------------------------------------------------


async def test_server_pings_and_closes_a_connection_that_does_not_pong() -> None:
    # pongs count as incoming messages: room for 5 pongs a second plus a command
    opts = {"ping_interval_s": 0.2, "pong_timeout_s": 1.0, "max_incoming_per_s": 20}
    async with (
        binance_gateway(rate=20, **opts) as gw,
        aiohttp.ClientSession() as http,
    ):
        good = await http.ws_connect(gw.stream_url + "/ws", autoping=True)
        # aiohttp answers pings inside receive(): keep reading on the good connection
        replies: asyncio.Queue[Any] = asyncio.Queue()

        async def read_good() -> None:
            async for msg in good:
                await replies.put(CODEC.decode_frame(msg.data))

        reader = asyncio.create_task(read_good())
        async with http.ws_connect(gw.stream_url + "/ws", autoping=False) as mute:
            t0 = time.monotonic()
            pings: list[bytes] = []
            for _ in range(100):
                msg = await mute.receive(timeout=WAIT_S)
                if msg.type == aiohttp.WSMsgType.PING:
                    pings.append(msg.data)
                    # an unsolicited pong (not the ping's payload) does not count
                    await mute.pong(b"unsolicited")
                    continue
                break
            assert msg.type == aiohttp.WSMsgType.CLOSE, msg
            assert mute.close_code == 1008
            assert len(pings) >= 2 and len(set(pings)) == len(pings)
            assert 0.9 < time.monotonic() - t0 < WAIT_S
        # the connection that answered is still open and has answered pings
        stats = gw.stats()["dialect"]
        assert len(stats["connections"]) == 1 and stats["connections"][0]["pongs"] >= 2
        await good.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        assert await asyncio.wait_for(replies.get(), WAIT_S) == CommandAck(1, [])
        await good.close()
        await asyncio.wait_for(reader, WAIT_S)


async def test_connection_is_closed_at_its_max_age() -> None:
    async with (
        binance_gateway(rate=20, max_connection_age_s=0.5) as gw,
        aiohttp.ClientSession() as http,
    ):
        t0 = time.monotonic()
        async with http.ws_connect(gw.stream_url + f"/ws/{DEPTH}") as ws:
            for _ in range(1000):
                msg = await ws.receive(timeout=WAIT_S)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
            assert msg.type == aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 1001 and "max age" in (msg.extra or "")
            assert time.monotonic() - t0 >= 0.45
        assert gw.stats()["dialect"]["disconnects"] == {"max_age": 1}


# -- depth-event faults -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expect"),
    [
        ("drop_delta", [Step.GAP]),
        ("duplicate_delta", [Step.COVERED]),
        ("reorder_delta", [Step.GAP]),
    ],
)
async def test_depth_event_faults_as_a_client_sees_them(
    fault: str, expect: list[Step], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "tickpipe.gateway")
    async with (
        binance_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + f"/ws/{DEPTH}") as ws,
    ):
        f = await synced_follower(http, gw, ws, "BTCUSDT")
        assert f.feed(await next_event(ws, BookDelta)) is Step.NEXT
        gw.trigger(fault, channel="orderbook:BTCUSDT")
        seen: list[Step] = []
        raw: list[BookDelta] = []
        for _ in range(5):
            d = await next_event(ws, BookDelta)
            raw.append(d)
            step = f.feed(d)
            if step is not Step.NEXT:
                seen.append(step)
                break
        assert seen == expect, [(d.first_id, d.last_id) for d in raw]
        if fault == "reorder_delta":  # the held event arrives after the next one: covered
            late = await next_event(ws, BookDelta)
            assert late.last_id is not None and late.last_id < raw[-1].last_id  # type: ignore[operator]
        logged = [json.loads(r.getMessage()) for r in caplog.records]
        hits = [e for e in logged if e.get("event") == "fault" and e.get("fault") == fault]
        assert len(hits) == 1
        assert hits[0]["channel"] == "orderbook:BTCUSDT" and hits[0]["stream"] == DEPTH
        assert hits[0]["update_id"] >= hits[0]["first_update_id"] > 0


async def test_bad_checksum_does_not_apply_to_binance() -> None:
    async with binance_gateway(rate=20) as gw, aiohttp.ClientSession() as http:
        with pytest.raises(ConfigError, match="no checksum"):
            gw.trigger("bad_checksum", channel="orderbook:BTCUSDT")
        async with http.post(
            f"{gw.admin_url}/admin/trigger",
            json={"fault": "bad_checksum", "channel": "orderbook:BTCUSDT"},
            headers={"X-Admin-Token": gw.admin_token},
        ) as r:
            assert r.status == 400 and "no checksum" in await r.text()


async def test_silenced_depth_stream_resumes_without_a_gap() -> None:
    async with (
        binance_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + f"/ws/{DEPTH}") as ws,
    ):
        f = await synced_follower(http, gw, ws, "BTCUSDT")
        gw.set_faults(silence_channel=["orderbook:BTCUSDT"])
        await asyncio.sleep(0.3)
        while True:  # drain what was sent before the silence
            try:
                msg = await ws.receive(timeout=0.3)
            except TimeoutError:
                break
            d = CODEC.decode_frame(msg.data)
            assert isinstance(d, BookDelta) and f.feed(d) is Step.NEXT
        gw.set_faults(silence_channel=[])
        d = await next_event(ws, BookDelta)
        assert f.feed(d) is Step.NEXT  # merged changes, ids contiguous
        assert f.book == gw.true_book("BTCUSDT", f.last_id)


# -- snapshot faults and REST ------------------------------------------------------------------


async def test_depth_validation_and_weights() -> None:
    async with binance_gateway(rate=20) as gw, aiohttp.ClientSession() as http:
        base = gw.rest_url + "/api/v3/depth"
        cases = [
            ("", -1102, 5),
            ("?symbol=BTCUSDT&limit=abc", -1100, 10),
            ("?symbol=BTCUSDT&limit=0", -1130, 15),
            ("?symbol=DOGEUSDT", -1121, 20),
        ]
        for query, code, used in cases:
            async with http.get(base + query) as r:
                assert r.status == 400, query
                assert CODEC.decode_rest_error(await r.read()).code == code, query
                assert r.headers["X-MBX-USED-WEIGHT-1M"] == str(used)
        async with http.get(base + "?symbol=BTCUSDT") as r:  # default limit 100: weight 5
            snap = CODEC.decode_depth_snapshot(await r.read(), "BTCUSDT")
            assert len(snap.bids) == len(snap.asks) == 100
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "25"
        async with http.get(base + "?symbol=BTCUSDT&limit=9999") as r:  # clipped to 5000: 250
            assert r.status == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == "275"
        async with http.get(gw.rest_url + "/api/v3/ping") as r:
            assert await r.json() == {} and r.headers["X-MBX-USED-WEIGHT-1M"] == "276"
        async with http.get(gw.rest_url + "/api/v3/time") as r:
            assert abs((await r.json())["serverTime"] - time.time() * 1000) < 60_000


async def test_weight_budget_429_with_retry_after_then_418_for_persisting() -> None:
    opts = {"weight_per_window": 100, "weight_window_s": 3600, "ban_after_429s": 2, "ban_s": 300}
    async with binance_gateway(rate=20, **opts) as gw, aiohttp.ClientSession() as http:
        url = gw.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=1000"  # weight 50
        statuses = []
        for _ in range(5):
            async with http.get(url) as r:
                statuses.append(r.status)
                body = await r.read()
                if r.status in (429, 418):
                    assert CODEC.decode_rest_error(body).code == -1003
                    retry = int(r.headers["Retry-After"])
                    assert 1 <= retry <= (3600 if r.status == 429 else 300)
                    if r.status == 418:
                        assert retry >= 299 and "banned" in body.decode()
        assert statuses == [200, 200, 429, 429, 418]
        async with http.get(gw.rest_url + "/api/v3/ping") as r:  # banned: every endpoint
            assert r.status == 418
        # another IP has its own budget
        conn = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with (
            aiohttp.ClientSession(connector=conn) as other,
            other.get(url) as r,
        ):
            assert r.status == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == "50"
        assert gw.stats()["dialect"]["banned"] == ["127.0.0.1"]


async def test_snapshot_error_rate_limit_and_stale_snapshot() -> None:
    async with binance_gateway() as gw, aiohttp.ClientSession() as http:
        url = gw.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=500"
        gw.trigger("snapshot_error", symbol="BTCUSDT")
        async with http.get(url) as r:
            assert r.status == 503
            assert CODEC.decode_rest_error(await r.read()).code == -1001
        gw.set_faults(snapshot_rate_limit=1)
        async with http.get(url) as r1, http.get(url) as r2:
            assert (r1.status, r2.status) == (200, 429)
            assert r2.headers["Retry-After"] == "1"
        gw.set_faults(snapshot_rate_limit=0, stale_by=50)
        gw.pause_market()  # steps by hand: the stream's ids are known
        gw.step_market(200)
        async with http.ws_connect(gw.stream_url + f"/ws/{DEPTH}") as ws:
            await asyncio.sleep(0.3)  # the subscription is in place
            gw.step_market(5)
            first = await next_event(ws, BookDelta)
            if first.last_id == 200:  # the steps before the subscription came as one event
                first = await next_event(ws, BookDelta)
            assert (first.first_id, first.last_id) == (201, 205)
            gw.trigger("stale_snapshot", symbol="BTCUSDT")
            stale = await snapshot(http, gw, "BTCUSDT")
            assert stale.last_id == gw.seq("orderbook:BTCUSDT") - 50
            # older than the stream: the first buffered event cannot bridge it
            assert bridges(RANGE, stale.last_id, first) is Step.GAP
            fresh = await snapshot(http, gw, "BTCUSDT")
            assert fresh.last_id == gw.seq("orderbook:BTCUSDT")
            assert bridges(RANGE, fresh.last_id, first) is Step.COVERED
            # a stale answer is still the true book at its own id
            inst = gw.true_book("BTCUSDT").instrument
            assert load(inst, stale) == gw.true_book("BTCUSDT", stale.last_id)


# -- connection faults -------------------------------------------------------------------------


@pytest.mark.parametrize("close_frame", [True, False])
async def test_disconnect_fault_with_and_without_close_frame(close_frame: bool) -> None:
    async with (
        binance_gateway(rate=20) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + f"/ws/{DEPTH}") as ws,
    ):
        await next_event(ws, BookDelta)
        out = gw.trigger("disconnect", close_frame=close_frame)
        assert len(out["sessions"]) == 1
        await assert_disconnected(ws, close_frame)


async def test_stall_goes_silent_then_resumes_with_a_gap() -> None:
    async with (
        binance_gateway(ping_interval_s=0.1) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + f"/ws/{DEPTH}", autoping=False) as ws,
    ):
        f = await synced_follower(http, gw, ws, "BTCUSDT")
        gw.trigger("stall", duration_ms=800)
        t0 = time.monotonic()
        quiet_until = None
        for _ in range(10_000):
            msg = await ws.receive(timeout=WAIT_S)
            if msg.type == aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
                continue
            d = CODEC.decode_frame(msg.data)
            assert isinstance(d, BookDelta)
            step = f.feed(d)
            if step is Step.GAP:
                quiet_until = time.monotonic()
                break
        assert quiet_until is not None and quiet_until - t0 >= 0.5


async def test_stop_pings_fault_pauses_pings() -> None:
    async with (
        binance_gateway(rate=20, ping_interval_s=0.1) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + "/ws", autoping=False) as ws,
    ):
        msg = await ws.receive(timeout=WAIT_S)
        assert msg.type == aiohttp.WSMsgType.PING
        await ws.pong(msg.data)
        gw.trigger("stop_pings", duration_ms=700)
        t0 = time.monotonic()
        for _ in range(100):
            msg = await ws.receive(timeout=WAIT_S)
            if msg.type == aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
                if time.monotonic() - t0 > 0.3:
                    break
        assert time.monotonic() - t0 >= 0.6


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_help_names_the_dialect() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "--dialect {vts,binance,okx," in out and "--dialect-option" in out


def test_cli_serves_binance_and_refuses_a_bad_option() -> None:
    with GatewayProcess("--dialect", "binance", "--dialect-option", "ping_interval_s=5") as gp:
        assert gp.ready["dialect"] == "binance" and "BTCUSDT" in gp.ready["symbols"]

        async def check() -> None:
            async with (
                aiohttp.ClientSession() as http,
                http.get(gp.rest_url + "/api/v3/ping") as r,
            ):
                assert r.status == 200 and await r.json() == {}
                async with http.ws_connect(gp.stream_url + f"/ws/{DEPTH}") as ws:
                    d = await next_event(ws, BookDelta)
                    assert d.symbol == "BTCUSDT"

        asyncio.run(check())
    bad = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--port", "0", "--no-admin",
         "--dialect", "binance", "--dialect-option", "ping_every=5"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "unknown option 'ping_every'" in bad.stderr


def test_a_venue_dialect_needs_no_keys_on_a_public_host() -> None:
    # VTS/1 refuses the public demo key pair off loopback; a venue dialect has no keyed endpoint
    with pytest.raises(ConfigError, match="demo key"):
        Gateway(GatewayConfig(host="0.0.0.0", port=0, admin_port=None))
    gw = Gateway(GatewayConfig(host="0.0.0.0", port=0, admin_port=None, dialect="binance"))
    assert gw.dialect is not None and "BTCUSDT" in gw.hub.markets
