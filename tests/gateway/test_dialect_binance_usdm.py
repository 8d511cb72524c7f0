"""`tickpipe gateway --dialect binance-usdm`, seen as a Binance USD-M futures client sees it.

Every test runs the real gateway (in-process on 127.0.0.1 port 0, or a subprocess for the CLI),
talks to it with a plain aiohttp client and decodes everything with
``tickpipe.venues.binance.codec.Codec(USDM)`` (the client's own decoder). Books are seeded from
``/fapi/v1/depth``, bridged and followed with ``tickpipe.protocol.continuity`` (LINK: ``pu`` ==
previous ``u``), applied with ``OrderBook`` and compared with the gateway's truth at hub seq
``u / update_id_step``.
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
from tickpipe.gateway import Gateway
from tickpipe.gateway.testing import GatewayProcess
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.continuity import Step, bridges, follows
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import (
    BookDelta,
    BookSnapshot,
    Continuity,
    TickerEvent,
    TradeEvent,
)
from tickpipe.venues.binance.codec import Codec, CommandAck, VenueError
from tickpipe.venues.binance.endpoints import USDM

CODEC = Codec(USDM)
LINK = Continuity.LINK
DEPTH = "btcusdt@depth@100ms"
STEP = 10  # the dialect's default update_id_step


@asynccontextmanager
async def usdm_gateway(rate: float = 200.0, **options: Any) -> AsyncIterator[Gateway]:
    async with dialect_gateway("binance-usdm", rate, **options) as gw:
        yield gw


async def instruments(http: aiohttp.ClientSession, gw: Gateway) -> dict[str, Instrument]:
    async with http.get(gw.rest_url + "/fapi/v1/exchangeInfo") as r:
        assert r.status == 200
        return CODEC.decode_exchange_info(await r.read())


async def snapshot(http: aiohttp.ClientSession, gw: Gateway, symbol: str) -> BookSnapshot:
    async with http.get(gw.rest_url + f"/fapi/v1/depth?symbol={symbol}&limit=1000") as r:
        assert r.status == 200, await r.text()
        return CODEC.decode_depth_snapshot(await r.read(), symbol)


async def next_raw(ws: aiohttp.ClientWebSocketResponse) -> str:
    """The next text frame (pings answered), within WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    for _ in range(100_000):
        msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        if msg.type == aiohttp.WSMsgType.PING:
            await ws.pong(msg.data)
            continue
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
        return str(msg.data)
    raise AssertionError("no text frame")


async def next_event(ws: aiohttp.ClientWebSocketResponse, kind: Any) -> Any:
    """The next decoded frame of type ``kind`` (others skipped), within WAIT_S."""
    for _ in range(100_000):
        ev = CODEC.decode_frame(await next_raw(ws))
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
    """A USD-M book as a client keeps it: buffer, seed from REST, bridge, follow by ``pu``."""

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.book: OrderBook | None = None
        self.last_id = 0

    def seed(self, snap: BookSnapshot, buffered: list[BookDelta]) -> None:
        assert snap.last_id is not None
        self.book = load(self.inst, snap)
        self.last_id = snap.last_id
        bridged = False
        for d in buffered:
            if not bridged:
                step = bridges(LINK, self.last_id, d)
                assert step is not Step.GAP, (snap.last_id, d.prev_id, d.last_id)
                if step is Step.COVERED:
                    continue
                bridged = True
                apply(self.book, d)
                self.last_id = d.last_id or 0
            else:
                assert self.feed(d) is Step.NEXT

    def feed(self, d: BookDelta) -> Step:
        step = follows(LINK, self.last_id, d)
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
    assert snap.last_id is not None
    for _ in range(200):  # buffer until an event reaches past the snapshot
        if buffered[-1].last_id is not None and buffered[-1].last_id > snap.last_id:
            break
        buffered.append(await next_event(ws, BookDelta))
    f = Follower(insts[symbol])
    f.seed(snap, buffered)
    return f


# -- the book ------------------------------------------------------------------------------


async def test_depth_events_link_by_pu_and_keep_a_seeded_book_equal_to_the_truth() -> None:
    async with usdm_gateway() as gw, aiohttp.ClientSession() as http:
        url = gw.stream_url + f"/stream?streams={DEPTH}/ethusdt@depth@100ms"
        async with http.ws_connect(url) as ws:
            f = await synced_follower(http, gw, ws, "BTCUSDT")
            prev: BookDelta | None = None
            spans = []
            for _ in range(15):
                raw = json.loads(await next_raw(ws))
                assert raw["stream"] in (DEPTH, "ethusdt@depth@100ms")
                # the documented field order: e E T s U u pu b a
                assert list(raw["data"]) == ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]
                d = CODEC.decode_frame(json.dumps(raw))
                assert isinstance(d, BookDelta)
                if d.symbol != "BTCUSDT":
                    continue
                assert f.feed(d) is Step.NEXT, (f.last_id, d.prev_id, d.last_id)
                assert d.first_id is not None and d.last_id is not None and d.prev_id is not None
                # ids are left out between two events, as on the live venue: U > pu + 1
                assert d.first_id == d.prev_id + STEP and d.last_id % STEP == 0
                if prev is not None:
                    assert d.prev_id == prev.last_id
                prev = d
                spans.append((d.last_id - d.first_id) // STEP + 1)
            assert f.book is not None
            assert f.book == gw.true_book("BTCUSDT", f.last_id // STEP)
            assert max(spans) > 1  # many simulator steps merged into one 100 ms event
            async with http.get(
                f"{gw.admin_url}/admin/book/BTCUSDT?seq={f.last_id // STEP}",
                headers={"X-Admin-Token": gw.admin_token},
            ) as r:
                truth = await r.json()
            inst = f.inst
            bids, asks = f.book.to_lists()
            assert truth["bids"] == [[inst.format_price(p), inst.format_size(s)] for p, s in bids]
            assert truth["asks"] == [[inst.format_price(p), inst.format_size(s)] for p, s in asks]


async def test_a_spot_style_client_following_u_plus_one_breaks_on_usdm() -> None:
    # the dialect must not let a client that ignores pu pass: RANGE sees a gap on every event
    async with (
        usdm_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + f"/ws/{DEPTH}") as ws,
    ):
        f = await synced_follower(http, gw, ws, "BTCUSDT")
        d = await next_event(ws, BookDelta)
        assert follows(Continuity.RANGE, f.last_id, d) is Step.GAP
        assert f.feed(d) is Step.NEXT


async def test_update_id_step_one_makes_ids_contiguous() -> None:
    async with (
        usdm_gateway(update_id_step=1) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + f"/ws/{DEPTH}") as ws,
    ):
        f = await synced_follower(http, gw, ws, "BTCUSDT")
        d = await next_event(ws, BookDelta)
        assert f.feed(d) is Step.NEXT and d.first_id == d.prev_id + 1
        assert f.book == gw.true_book("BTCUSDT", f.last_id)


async def test_exchange_info_depth_limits_weights_ping_and_time() -> None:
    async with usdm_gateway(rate=20) as gw, aiohttp.ClientSession() as http:
        async with http.get(gw.rest_url + "/fapi/v1/exchangeInfo") as r:
            body = await r.read()
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "1"  # weight 1 on USD-M
        info = json.loads(body)
        assert info["rateLimits"][0] == {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": 2400,
        }
        sym = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
        assert "pricePrecision" in sym and "quantityPrecision" in sym
        by_filters = CODEC.decode_exchange_info(body, grid="filters")
        sim = {m.instrument.symbol: m.instrument for m in gw.hub.markets.values()}
        assert set(by_filters) == set(sim) >= {"BTCUSDT", "ETHUSDT"}
        for s, inst in by_filters.items():
            assert (inst.tick_size, inst.lot_size) == (sim[s].tick_size, sim[s].lot_size)
        base = gw.rest_url + "/fapi/v1/depth?symbol=BTCUSDT"
        used = 1
        cases = [("", 500, 10), ("&limit=1000", 1000, 20), ("&limit=5", 5, 2)]
        for query, levels, weight in cases:
            async with http.get(base + query) as r:
                assert r.status == 200, query
                body = await r.read()
                used += weight
                assert r.headers["X-MBX-USED-WEIGHT-1M"] == str(used), query
            assert list(json.loads(body)) == ["lastUpdateId", "E", "T", "bids", "asks"]
            snap = CODEC.decode_depth_snapshot(body, "BTCUSDT")
            full_bids, full_asks = gw.true_book("BTCUSDT").to_lists()
            assert len(snap.bids) == min(levels, len(full_bids))
            assert len(snap.asks) == min(levels, len(full_asks))
            assert snap.last_id is not None and snap.last_id % STEP == 0
        for query, code in [("&limit=7", -1130), ("&limit=5000", -1130), ("&limit=x", -1130)]:
            async with http.get(base + query) as r:
                assert r.status == 400, query
                err = CODEC.decode_rest_error(await r.read())
                assert err.code == code and "5, 10, 20, 50, 100, 500, 1000" in err.msg
        async with http.get(gw.rest_url + "/fapi/v1/depth?symbol=DOGEUSDT") as r:
            assert r.status == 400 and CODEC.decode_rest_error(await r.read()).code == -1121
        async with http.get(gw.rest_url + "/fapi/v1/ping") as r:
            assert r.status == 200 and await r.json() == {}
        async with http.get(gw.rest_url + "/fapi/v1/time") as r:
            assert abs((await r.json())["serverTime"] - time.time() * 1000) < 60_000
        async with http.get(gw.rest_url + "/api/v3/depth?symbol=BTCUSDT") as r:
            assert r.status == 404  # spot's path is not served here


async def test_agg_trade_and_book_ticker_frames() -> None:
    async with (
        usdm_gateway(max_incoming_per_s=100) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + "/ws") as ws,
    ):
        params = ["btcusdt@aggTrade", "btcusdt@bookTicker"]
        await send(ws, {"method": "SUBSCRIBE", "params": params, "id": 1})
        assert await reply(ws) == CommandAck(1, None)
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(2000):
            raw = json.loads(await next_raw(ws))
            seen.setdefault(raw["e"], raw)
            if len(seen) == 2:
                break
        agg, bt = seen["aggTrade"], seen["bookTicker"]
        assert list(agg) == ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m"]
        assert agg["a"] == agg["f"] == agg["l"] and agg["E"] > 0
        assert list(bt) == ["e", "u", "E", "T", "s", "b", "B", "a", "A"]
        assert bt["u"] % STEP == 0 and bt["E"] > 0
        trade = CODEC.decode_frame(json.dumps(agg))
        ticker = CODEC.decode_frame(json.dumps(bt))
        assert isinstance(trade, TradeEvent) and trade.side in ("buy", "sell")
        assert isinstance(ticker, TickerEvent) and ticker.bid < ticker.ask  # type: ignore[operator]
        # spot's trade stream is not a USD-M stream
        await send(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 2})
        err = await reply(ws)
        assert isinstance(err, VenueError) and "aggTrade" in err.msg


# -- limits ----------------------------------------------------------------------------------


async def test_more_than_ten_incoming_messages_a_second_closes_the_connection() -> None:
    async with (
        usdm_gateway(rate=20) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + "/ws") as ws,
    ):
        for i in range(10):  # ten at once: allowed (spot's 5 would close here)
            await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": i})
        for i in range(10):
            assert await reply(ws) == CommandAck(i, [])
        for i in range(10, 21):  # eleven more back to back: over 10 within one second
            await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": i})
        for _ in range(20):
            msg = await ws.receive(timeout=WAIT_S)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
        assert msg.type == aiohttp.WSMsgType.CLOSE, msg
        assert ws.close_code == 1008 and "more than 10 incoming" in (msg.extra or "")


async def test_defaults_are_the_documented_usdm_limits() -> None:
    async with usdm_gateway(rate=20) as gw:
        opts = gw.stats()["dialect"]["options"]
        assert opts["ping_interval_s"] == 180.0 and opts["pong_timeout_s"] == 600.0
        assert opts["max_incoming_per_s"] == 10 and opts["max_streams_per_connection"] == 1024
        assert opts["weight_per_window"] == 2400 and opts["max_connection_age_s"] == 86_400.0
        assert opts["update_id_step"] == STEP
        with pytest.raises(ConfigError, match="no checksum"):
            gw.trigger("bad_checksum", channel="orderbook:BTCUSDT")


async def test_weight_budget_429_with_retry_after_then_418_for_persisting() -> None:
    opts = {"weight_per_window": 45, "weight_window_s": 3600, "ban_after_429s": 2, "ban_s": 300}
    async with usdm_gateway(rate=20, **opts) as gw, aiohttp.ClientSession() as http:
        url = gw.rest_url + "/fapi/v1/depth?symbol=BTCUSDT&limit=1000"  # weight 20
        statuses = []
        for _ in range(5):
            async with http.get(url) as r:
                statuses.append(r.status)
                body = await r.read()
                if r.status in (429, 418):
                    assert CODEC.decode_rest_error(body).code == -1003
                    retry = int(r.headers["Retry-After"])
                    assert 1 <= retry <= (3600 if r.status == 429 else 300)
                    if r.status == 429:
                        assert "45 request weight" in body.decode()
        assert statuses == [200, 200, 429, 429, 418]


async def test_server_pings_every_interval_and_closes_without_pong() -> None:
    opts = {"ping_interval_s": 0.2, "pong_timeout_s": 1.0, "max_incoming_per_s": 20}
    async with (
        usdm_gateway(rate=20, **opts) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + "/ws", autoping=False) as mute,
    ):
        t0 = time.monotonic()
        pings = 0
        for _ in range(100):
            msg = await mute.receive(timeout=WAIT_S)
            if msg.type == aiohttp.WSMsgType.PING:
                pings += 1
                continue
            break
        assert msg.type == aiohttp.WSMsgType.CLOSE and mute.close_code == 1008
        assert pings >= 2 and 0.9 < time.monotonic() - t0 < WAIT_S
        assert gw.stats()["dialect"]["disconnects"] == {"pong_timeout": 1}


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expect"),
    [
        ("drop_delta", Step.GAP),  # the next event's pu is the dropped one's u
        ("duplicate_delta", Step.COVERED),
        ("reorder_delta", Step.GAP),
    ],
)
async def test_depth_event_faults_break_or_repeat_the_pu_link(
    fault: str, expect: Step, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "tickpipe.gateway")
    async with (
        usdm_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + f"/ws/{DEPTH}") as ws,
    ):
        f = await synced_follower(http, gw, ws, "BTCUSDT")
        assert f.feed(await next_event(ws, BookDelta)) is Step.NEXT
        gw.trigger(fault, channel="orderbook:BTCUSDT")
        seen = None
        raw: list[BookDelta] = []
        for _ in range(5):
            d = await next_event(ws, BookDelta)
            raw.append(d)
            step = f.feed(d)
            if step is not Step.NEXT:
                seen = step
                break
        assert seen is expect, [(d.prev_id, d.first_id, d.last_id) for d in raw]
        if fault == "drop_delta":
            assert raw[-1].prev_id != f.last_id and raw[-1].prev_id > f.last_id  # type: ignore[operator]
        logged = [json.loads(r.getMessage()) for r in caplog.records]
        hits = [e for e in logged if e.get("event") == "fault" and e.get("fault") == fault]
        assert len(hits) == 1 and hits[0]["channel"] == "orderbook:BTCUSDT"
        assert hits[0]["update_id"] % STEP == 0


async def test_stale_snapshot_cannot_be_bridged_a_fresh_one_can() -> None:
    async with usdm_gateway() as gw, aiohttp.ClientSession() as http:
        gw.set_faults(stale_by=50)
        gw.pause_market()  # steps by hand: the stream's ids are known
        gw.step_market(200)
        async with http.ws_connect(gw.stream_url + f"/ws/{DEPTH}") as ws:
            await asyncio.sleep(0.3)  # the subscription is in place
            gw.step_market(5)
            first = await next_event(ws, BookDelta)
            if first.last_id == 200 * STEP:  # the steps before the subscription, one event
                first = await next_event(ws, BookDelta)
            assert (first.prev_id, first.first_id, first.last_id) == (2000, 2010, 2050)
            gw.trigger("stale_snapshot", symbol="BTCUSDT")
            stale = await snapshot(http, gw, "BTCUSDT")
            assert stale.last_id == (gw.seq("orderbook:BTCUSDT") - 50) * STEP
            assert bridges(LINK, stale.last_id, first) is Step.GAP
            fresh = await snapshot(http, gw, "BTCUSDT")
            assert fresh.last_id == gw.seq("orderbook:BTCUSDT") * STEP
            assert bridges(LINK, fresh.last_id, first) is Step.COVERED
            inst = gw.true_book("BTCUSDT").instrument
            assert load(inst, stale) == gw.true_book("BTCUSDT", stale.last_id // STEP)


async def test_silenced_depth_stream_resumes_with_the_link_intact() -> None:
    async with (
        usdm_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + f"/ws/{DEPTH}") as ws,
    ):
        f = await synced_follower(http, gw, ws, "BTCUSDT")
        gw.set_faults(silence_channel=["orderbook:BTCUSDT"])
        await asyncio.sleep(0.3)
        for _ in range(100):  # drain what was sent before the silence
            try:
                msg = await ws.receive(timeout=0.3)
            except TimeoutError:
                break
            d = CODEC.decode_frame(msg.data)
            assert isinstance(d, BookDelta) and f.feed(d) is Step.NEXT
        gw.set_faults(silence_channel=[])
        d = await next_event(ws, BookDelta)
        assert f.feed(d) is Step.NEXT
        assert f.book == gw.true_book("BTCUSDT", f.last_id // STEP)


@pytest.mark.parametrize("close_frame", [True, False])
async def test_disconnect_fault_with_and_without_close_frame(close_frame: bool) -> None:
    async with (
        usdm_gateway(rate=20) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + f"/ws/{DEPTH}") as ws,
    ):
        await next_event(ws, BookDelta)
        out = gw.trigger("disconnect", close_frame=close_frame)
        assert len(out["sessions"]) == 1
        await assert_disconnected(ws, close_frame)


async def test_stop_pings_pauses_pings_while_data_flows() -> None:
    async with (
        usdm_gateway(rate=50, ping_interval_s=0.1) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + f"/ws/{DEPTH}", autoping=False) as ws,
    ):
        for _ in range(1000):
            msg = await ws.receive(timeout=WAIT_S)
            if msg.type == aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
                break
        gw.trigger("stop_pings", duration_ms=700)
        t0 = time.monotonic()
        texts = 0
        for _ in range(10_000):
            msg = await ws.receive(timeout=WAIT_S)
            if msg.type == aiohttp.WSMsgType.TEXT:
                texts += 1
                continue
            assert msg.type == aiohttp.WSMsgType.PING
            await ws.pong(msg.data)
            if time.monotonic() - t0 > 0.3:
                break
        assert time.monotonic() - t0 >= 0.6 and texts >= 3  # no pings, depth events kept coming


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_serves_binance_usdm_and_refuses_a_bad_option() -> None:
    with GatewayProcess("--dialect", "binance-usdm", "--dialect-option", "update_id_step=3") as gp:
        assert gp.ready["dialect"] == "binance-usdm" and "BTCUSDT" in gp.ready["symbols"]

        async def check() -> None:
            async with (
                aiohttp.ClientSession() as http,
                http.get(gp.rest_url + "/fapi/v1/ping") as r,
            ):
                assert r.status == 200 and await r.json() == {}
                async with http.ws_connect(gp.stream_url + f"/ws/{DEPTH}") as ws:
                    d = await next_event(ws, BookDelta)
                    assert d.symbol == "BTCUSDT" and d.first_id == d.prev_id + 3

        asyncio.run(check())
    bad = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--port", "0", "--no-admin",
         "--dialect", "binance-usdm", "--dialect-option", "update_id_step=0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "update_id_step must be > 0" in bad.stderr
    out = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "binance-usdm" in out.split("--dialect-option")[0]  # a --dialect choice
