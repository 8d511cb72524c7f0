"""`tickpipe gateway --dialect kraken`, seen as a Kraken WebSocket v2 client sees it.

Every test runs the real gateway (in-process on 127.0.0.1 port 0, or a subprocess for the CLI),
talks to it with a plain aiohttp client and decodes everything with
``tickpipe.venues.kraken.codec`` (the client's own decoder). Books are seeded in band from the
``snapshot``, kept at the subscribed depth (``venues.kraken.checksum.truncate``), verified with
Kraken's CRC-32 of the top 10 (``venues.kraken.checksum``) on every frame, and compared with
the gateway's truth once the market is paused.
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
from tickpipe.errors import ConfigError, FrameError
from tickpipe.gateway import Gateway
from tickpipe.gateway.testing import GatewayProcess
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, TickerEvent, TradeEvent
from tickpipe.venues.kraken import codec, endpoints
from tickpipe.venues.kraken.checksum import checksum, truncate
from tickpipe.venues.kraken.codec import Heartbeat, Pong, Status, Subscribed, VenueError

BOOK = "orderbook:BTC/USD"
WS = "/v2"


@asynccontextmanager
async def kraken_gateway(rate: float = 200.0, **options: Any) -> AsyncIterator[Gateway]:
    options.setdefault("rest_calls_per_s", 100)
    async with dialect_gateway("kraken", rate, **options) as gw:
        yield gw


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


def subscribe(channel: str, symbols: list[str], req_id: int, **params: Any) -> str:
    return json.dumps(
        {
            "method": "subscribe",
            "params": {"channel": channel, "symbol": symbols, **params},
            "req_id": req_id,
        }
    )


class Follower:
    """A Kraken book as a client keeps it: seeded in band, truncated to its depth, checked."""

    def __init__(self, inst: Instrument, snap: BookSnapshot, depth: int) -> None:
        assert snap.checksum is not None
        self.depth = depth
        self.book = load(inst, snap)
        assert len(self.book.bids) <= depth and len(self.book.asks) <= depth
        assert checksum(self.book) == snap.checksum
        self.checked = 1

    def feed(self, d: BookDelta) -> bool:
        """Apply one update, truncate, and tell whether its checksum matched."""
        apply(self.book, d)
        truncate(self.book, self.depth)
        assert d.checksum is not None
        self.checked += 1
        return checksum(self.book) == d.checksum


async def instruments(http: aiohttp.ClientSession, gw: Gateway) -> dict[str, Instrument]:
    async with http.get(gw.rest_url + "/0/public/AssetPairs") as r:
        assert r.status == 200
        return {i.symbol: i for i in codec.decode_asset_pairs(await r.read())}


async def follower(
    http: aiohttp.ClientSession,
    gw: Gateway,
    ws: aiohttp.ClientWebSocketResponse,
    depth: int = 1000,
    symbol: str = "BTC/USD",
) -> Follower:
    insts = await instruments(http, gw)
    await ws.send_str(subscribe("book", [symbol], 1, depth=depth))
    ack = await next_event(ws, Subscribed | VenueError)
    assert isinstance(ack, Subscribed), ack
    assert (ack.channel, ack.req_id, ack.depth) == (f"orderbook:{symbol}", 1, depth)
    return Follower(insts[symbol], await next_event(ws, BookSnapshot), depth)


def truth(gw: Gateway, depth: int, symbol: str = "BTC/USD") -> OrderBook:
    book = gw.true_book(symbol)
    truncate(book, depth)
    return book


async def settle(gw: Gateway, ws: aiohttp.ClientWebSocketResponse, f: Follower) -> None:
    """Pause the market and apply every update still on its way (checked)."""
    gw.pause_market()
    for _ in range(1000):
        try:
            msg = await ws.receive(timeout=0.6)
        except TimeoutError:
            return
        for ev in codec.decode(msg.data):
            if isinstance(ev, BookDelta):
                assert f.feed(ev)
    raise AssertionError("the book did not settle")


# -- the book ------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [10, 1000])
async def test_snapshot_then_updates_checksummed_truncated_and_equal_to_the_truth(
    depth: int,
) -> None:
    async with (
        kraken_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        status = await next_event(ws, Status)  # the first frame of every connection
        assert status.system == "online" and status.connection_id
        f = await follower(http, gw, ws, depth)
        for _ in range(20):
            assert f.feed(await next_event(ws, BookDelta))
        assert f.checked == 21
        await settle(gw, ws, f)
        assert f.book == truth(gw, depth)
        if depth == 10:
            assert len(f.book.bids) == len(f.book.asks) == 10
            assert len(gw.true_book("BTC/USD").bids) > 10  # the truth is deeper


async def test_updates_only_delete_levels_within_the_depth() -> None:
    """Kraken's rule: an update names only levels within the subscribed depth (a qty-0 level
    is always one the client holds); levels pushed out of it are not sent, the client
    truncates."""
    async with (
        kraken_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        f = await follower(http, gw, ws, 10)
        inst = f.book.instrument
        deletes = 0
        for _ in range(30):
            d = await next_event(ws, BookDelta)
            for side, rows in (("bids", d.bids), ("asks", d.asks)):
                book_side = getattr(f.book, side)
                for p, q in rows:
                    if inst.size_units(q) == 0:
                        assert book_side.size_at(inst.price_units(p)) > 0  # one we held
                        deletes += 1
            assert f.feed(d)
        assert deletes > 0


async def test_two_depths_on_two_connections_each_exact() -> None:
    async with (
        kraken_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws10,
        http.ws_connect(gw.stream_url + WS) as ws25,
    ):
        f10 = await follower(http, gw, ws10, 10)
        f25 = await follower(http, gw, ws25, 25)
        for _ in range(10):
            assert f10.feed(await next_event(ws10, BookDelta))
            assert f25.feed(await next_event(ws25, BookDelta))
        await settle(gw, ws10, f10)
        await settle(gw, ws25, f25)
        assert f10.book == truth(gw, 10) and f25.book == truth(gw, 25)


async def test_unsubscribe_then_subscribe_gives_a_fresh_snapshot() -> None:
    async with (
        kraken_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        f = await follower(http, gw, ws, 25)
        await ws.send_str(subscribe("book", ["BTC/USD"], 2, depth=25))
        err = await next_event(ws, VenueError)  # Kraken: one subscription per channel+symbol
        assert err.message == "Already subscribed" and err.symbol == "BTC/USD" and err.req_id == 2
        [(_, unsub)] = endpoints.unsubscribe_messages([BOOK], 3, depth=25)
        await ws.send_str(unsub.decode())
        ack = await next_event(ws, Subscribed)
        assert (ack.channel, ack.req_id, ack.subscribed) == (BOOK, 3, False)
        await ws.send_str(subscribe("book", ["BTC/USD"], 4, depth=25))
        snap = await next_event(ws, BookSnapshot)
        f2 = Follower(f.book.instrument, snap, 25)
        for _ in range(5):
            assert f2.feed(await next_event(ws, BookDelta))


async def test_trades_and_tickers() -> None:
    async with (
        kraken_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        for req in endpoints.subscribe_messages(["trades:BTC/USD", "ticker:ETH/USD"], 5):
            await ws.send_str(req[1].decode())
        first = await next_event(ws, TickerEvent)  # the ticker's snapshot comes at once
        assert first.symbol == "ETH/USD" and float(first.bid or 0) < float(first.ask or 0)
        ids = []
        for _ in range(4):
            t = await next_event(ws, TradeEvent)
            assert t.symbol == "BTC/USD" and t.side in ("buy", "sell")
            ids.append(int(t.trade_id))
        assert ids == list(range(ids[0], ids[0] + 4))  # contiguous per pair
        tick = await next_event(ws, TickerEvent)
        assert tick.symbol == "ETH/USD" and tick.bid and tick.ask


# -- requests, errors, heartbeat, limits ------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "words", "symbol"),
    [
        (subscribe("book", ["NOPE/USD"], 5), "Currency pair not supported NOPE/USD", "NOPE/USD"),
        (subscribe("ohlc", ["BTC/USD"], 5), "Channel not supported: ohlc", None),
        (subscribe("book", ["BTC/USD"], 5, depth=7), "Invalid depth: 7", None),
        (subscribe("book", [], 5), "Must specify at least one symbol", None),
        (
            '{"method":"unsubscribe","params":{"channel":"trade","symbol":["BTC/USD"]},"req_id":5}',
            "Subscription Not Found",
            "BTC/USD",
        ),
        ('{"method":"subscribe","params":{},"req_id":5}', "Malformed request", None),
    ],
)
async def test_bad_requests_get_kraken_error_shapes(
    frame: str, words: str, symbol: str | None
) -> None:
    async with (
        kraken_gateway(rate=20) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        await ws.send_str(frame)
        err = await next_event(ws, VenueError)
        assert words in err.message and err.req_id == 5 and err.symbol == symbol, err
        # the connection keeps going
        await ws.send_str(subscribe("trade", ["BTC/USD"], 6))
        ack = await next_event(ws, Subscribed)
        assert ack.channel == "trades:BTC/USD" and ack.req_id == 6


async def test_not_json_is_answered_and_the_connection_kept() -> None:
    async with (
        kraken_gateway(rate=20) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        await ws.send_str("not json")
        for _ in range(10):
            body = json.loads((await ws.receive(timeout=WAIT_S)).data)
            if body.get("success") is False:
                assert "Malformed request: not json" in body["error"]
                break
        await ws.send_str('{"method":"ping","req_id":9}')
        assert (await next_event(ws, Pong)).req_id == 9


async def test_heartbeats_once_subscribed_and_ping_pong() -> None:
    async with (
        kraken_gateway(rate=20, heartbeat_interval_s=0.2) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        await next_event(ws, Status)
        with pytest.raises(TimeoutError):  # nothing subscribed: no heartbeat
            await ws.receive(timeout=0.6)
        await ws.send_str('{"method":"ping","req_id":3}')
        assert (await next_event(ws, Pong)).req_id == 3
        gw.pause_market()  # no data: heartbeats fill the silence
        await ws.send_str(subscribe("trade", ["BTC/USD"], 4))
        await next_event(ws, Subscribed)
        t0 = time.monotonic()
        for _ in range(3):
            await next_event(ws, Heartbeat)
        assert 0.4 <= time.monotonic() - t0 < WAIT_S


async def test_request_rate_and_connections_per_window() -> None:
    async with (
        kraken_gateway(rate=20, max_requests_per_s=2, max_connects_per_window=2) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        for i in range(2):
            await ws.send_str(f'{{"method":"ping","req_id":{i}}}')
            assert (await next_event(ws, Pong)).req_id == i
        await ws.send_str(subscribe("trade", ["BTC/USD"], 7))
        err = await next_event(ws, VenueError)
        assert err.message == "Exceeded msg rate" and err.req_id == 7
        async with http.ws_connect(gw.stream_url + WS):
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                async with http.ws_connect(gw.stream_url + WS):
                    pass
            assert e.value.status == 429
        assert gw.stats()["dialect"]["refused"] == {"connect": 1, "rest": 0, "requests": 1}


async def test_rest_asset_pairs() -> None:
    async with kraken_gateway(rate=20, rest_calls_per_s=2) as gw, aiohttp.ClientSession() as http:
        async with http.get(gw.rest_url + "/0/public/AssetPairs") as r:
            body = await r.json()
        assert body["result"]["XBTUSD"]["wsname"] == "XBT/USD"  # REST keeps Kraken's XBT
        insts = {i.symbol: i for i in codec.decode_asset_pairs(json.dumps(body).encode())}
        sim = {m.instrument.symbol: m.instrument for m in gw.hub.markets.values()}
        assert set(insts) == set(sim) and {"BTC/USD", "AAPL/USD", "USD/JPY"} <= set(insts)
        for name, inst in insts.items():  # the grid's decimals: what the checksum writes
            assert inst.tick_size == sim[name].tick_size
            assert inst.size_decimals == sim[name].size_decimals
        async with http.get(gw.rest_url + "/0/public/AssetPairs?pair=XBTUSD,ETH/USD") as r:
            assert set((await r.json())["result"]) == {"XBTUSD", "ETHUSD"}
        await asyncio.sleep(1.05)  # a fresh one-second window
        async with http.get(gw.rest_url + "/0/public/AssetPairs?pair=NOPE") as r:
            assert r.status == 200 and (await r.json())["error"] == ["EQuery:Unknown asset pair"]
        async with http.get(gw.rest_url + "/0/public/AssetPairs") as r:
            assert r.status == 200
        async with http.get(gw.rest_url + "/0/public/AssetPairs") as r:
            assert r.status == 429 and r.headers["Retry-After"] == "1"
            assert (await r.json())["error"] == ["EGeneral:Too many requests"]


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["drop_delta", "reorder_delta", "bad_checksum"])
async def test_update_faults_show_as_a_checksum_mismatch(fault: str) -> None:
    async with (
        kraken_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        f = await follower(http, gw, ws)
        assert f.feed(await next_event(ws, BookDelta))  # before the fault
        gw.trigger(fault, channel=BOOK)
        results = []
        for _ in range(50):
            ok = f.feed(await next_event(ws, BookDelta))
            results.append(ok)
            if not ok:
                break
        assert results[-1] is False, results
        assert gw.faults_json()["counts"][fault] == 1


async def test_duplicate_update_is_harmless() -> None:
    """Kraken's updates set absolute quantities: applying one twice changes nothing."""
    async with (
        kraken_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        f = await follower(http, gw, ws)
        gw.trigger("duplicate_delta", channel=BOOK)
        for _ in range(10):
            assert f.feed(await next_event(ws, BookDelta))
        assert gw.faults_json()["counts"]["duplicate_delta"] == 1


async def test_malformed_update_is_not_json() -> None:
    async with (
        kraken_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        await follower(http, gw, ws)
        gw.trigger("malformed_frame", channel=BOOK)
        for _ in range(20):
            msg = await ws.receive(timeout=WAIT_S)
            try:
                codec.decode(msg.data)
            except FrameError as exc:
                assert exc.channel == BOOK
                break
        else:
            raise AssertionError("no malformed frame")


async def test_silenced_book_resumes_with_matching_checksums() -> None:
    async with (
        kraken_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        f = await follower(http, gw, ws)
        gw.set_faults(silence_channel=[BOOK])
        for _ in range(100):  # drain what was sent before the silence
            try:
                msg = await ws.receive(timeout=0.5)
            except TimeoutError:
                break
            for ev in codec.decode(msg.data):
                if isinstance(ev, BookDelta):
                    assert f.feed(ev)
        else:
            raise AssertionError("the book was not silenced")
        gw.set_faults(silence_channel=[])
        for _ in range(3):
            assert f.feed(await next_event(ws, BookDelta))


@pytest.mark.parametrize("close_frame", [True, False])
async def test_disconnect_fault_with_and_without_close_frame(close_frame: bool) -> None:
    async with (
        kraken_gateway(rate=20) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        await ws.send_str(subscribe("book", ["BTC/USD"], 1))
        await next_event(ws, BookSnapshot)
        out = gw.trigger("disconnect", close_frame=close_frame)
        assert len(out["sessions"]) == 1
        await assert_disconnected(ws, close_frame)


async def test_stall_then_the_lost_updates_show_in_the_checksum() -> None:
    async with (
        kraken_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        f = await follower(http, gw, ws)
        gw.trigger("stall", duration_ms=800)
        t0 = time.monotonic()
        for _ in range(10_000):
            if not f.feed(await next_event(ws, BookDelta)):
                break
        assert time.monotonic() - t0 >= 0.5


async def test_stop_pings_stops_heartbeats_and_pongs_for_its_duration() -> None:
    async with (
        kraken_gateway(rate=20, heartbeat_interval_s=0.2) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        gw.pause_market()
        await ws.send_str(subscribe("trade", ["BTC/USD"], 1))
        await next_event(ws, Subscribed)
        await next_event(ws, Heartbeat)
        gw.trigger("stop_pings", duration_ms=1500)
        t0 = time.monotonic()
        await ws.send_str('{"method":"ping","req_id":2}')
        msg = await ws.receive(timeout=WAIT_S)  # the pong was never sent: the next is a beat
        assert codec.decode(msg.data) == [Heartbeat()]
        assert time.monotonic() - t0 >= 1.2
        assert gw.faults_json()["counts"]["stop_pings"] == 1


async def test_faults_that_do_not_apply_are_refused() -> None:
    async with kraken_gateway(rate=20) as gw:
        for fault in ("stale_snapshot", "snapshot_error"):
            with pytest.raises(ConfigError, match="does not apply to the kraken dialect"):
                gw.trigger(fault)


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_serves_kraken_and_refuses_a_bad_option() -> None:
    help_out = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "kraken" in help_out.split("--dialect {", 1)[1].split("}", 1)[0]
    assert "\n  kraken        Kraken spot WebSocket v2" in help_out
    with GatewayProcess(
        "--dialect", "kraken", "--dialect-option", "heartbeat_interval_s=0.5"
    ) as gp:
        assert gp.ready["dialect"] == "kraken" and "BTC/USD" in gp.ready["symbols"]

        async def check() -> None:
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(gp.stream_url + WS) as ws,
            ):
                await ws.send_str(subscribe("book", ["BTC/USD"], 1, depth=10))
                snap = await next_event(ws, BookSnapshot)
                assert snap.symbol == "BTC/USD" and len(snap.bids) == 10 and snap.checksum

        asyncio.run(check())
    bad = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--port", "0", "--no-admin",
         "--dialect", "kraken", "--dialect-option", "depth=5"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "depth" in bad.stderr
