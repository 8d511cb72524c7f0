"""`tickpipe gateway --dialect coinbase`, seen as a Coinbase Advanced Trade client sees it.

Every test runs the real gateway (in-process on 127.0.0.1 port 0), talks to it with a plain
aiohttp client and decodes everything with ``tickpipe.venues.coinbase.codec`` (the client's own
decoder). ``sequence_num`` is checked on every message of a connection (contiguous from 0,
across channels); books are seeded from the in-band ``snapshot``, followed, and compared with
the gateway's truth at the hub update id the dialect says each message brought the book to.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

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
from tickpipe.gateway.dialects.coinbase import CoinbaseDialect, coinbase_symbol
from tickpipe.gateway.testing import GatewayProcess
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, TickerEvent, TradeEvent
from tickpipe.venues.coinbase import codec, endpoints
from tickpipe.venues.coinbase.codec import Heartbeat, Message, Subscriptions, VenueError

BOOK = "orderbook:BTC-USD"
PRODUCTS = "/api/v3/brokerage/market/products"
WS = aiohttp.ClientWebSocketResponse


@asynccontextmanager
async def cb_gateway(rate: float = 200.0, **options: Any) -> AsyncIterator[Gateway]:
    options.setdefault("max_connects_per_s", 100)
    options.setdefault("max_messages_per_s", 100)
    async with dialect_gateway("coinbase", rate, **options) as gw:
        yield gw


def dialect(gw: Gateway) -> CoinbaseDialect:
    return cast(CoinbaseDialect, gw.dialect)


class Reader:
    """One connection's messages, decoded, with ``sequence_num`` checked to be contiguous
    (``skips`` and ``old`` count the breaks instead when ``strict`` is False)."""

    def __init__(self, ws: WS, strict: bool = True) -> None:
        self.ws = ws
        self.strict = strict
        self.last: int | None = None
        self.skips: list[tuple[int, int]] = []
        self.old: list[int] = []
        self.raw: list[str] = []

    async def next(self) -> Message:
        msg = await self.ws.receive(timeout=WAIT_S)
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
        self.raw.append(msg.data)
        m = codec.decode(msg.data)
        if m.sequence_num is not None:
            if self.last is None:
                assert m.sequence_num == 0
            elif m.sequence_num != self.last + 1:
                assert not self.strict, (self.last, m.sequence_num)
                if m.sequence_num <= self.last:
                    self.old.append(m.sequence_num)
                    return m
                self.skips.append((self.last, m.sequence_num))
            self.last = m.sequence_num
        return m

    async def until(self, kind: Any, channel: str | None = None) -> tuple[Message, Any]:
        """The next message carrying an event of type ``kind`` (and channel), within WAIT_S."""
        deadline = time.monotonic() + WAIT_S
        for _ in range(100_000):
            assert time.monotonic() < deadline, f"no {kind}"
            m = await self.next()
            for ev in m.events:
                if isinstance(ev, kind) and (channel is None or m.channel == channel):
                    return m, ev
        raise AssertionError("unreachable")


async def sub(
    ws: WS, channel: str, products: list[str] | None = None, op: str = "subscribe"
) -> None:
    body: dict[str, Any] = {"type": op, "channel": channel}
    if products is not None:
        body["product_ids"] = products
    await ws.send_str(json.dumps(body))


def truth(gw: Gateway, m: Message) -> OrderBook:
    sym, uid = dialect(gw).update_id_at(m.sequence_num or 0)
    return gw.true_book(sym, uid)


async def seeded(gw: Gateway, r: Reader) -> OrderBook:
    """Subscribe BTC-USD level2: the subscriptions answer, then the snapshot (= the truth)."""
    await sub(r.ws, "level2", ["BTC-USD"])
    m, subs = await r.until(Subscriptions)
    assert subs.channels["level2"] == ["BTC-USD"]
    m, snap = await r.until(BookSnapshot)
    inst = gw.hub.markets["BTC-USD"].instrument
    book = load(inst, snap)
    assert book == truth(gw, m)
    return book


# -- the book and the numbering ---------------------------------------------------------------


async def test_snapshot_then_updates_numbered_per_connection_equal_to_the_truth() -> None:
    async with (
        cb_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url) as ws,
    ):
        r = Reader(ws)
        book = await seeded(gw, r)
        assert book.bids and book.asks  # the whole book, no depth option
        for _ in range(15):
            m, d = await r.until(BookDelta)
            assert len(m.events) == 1 and isinstance(m.events[0], BookDelta)
            apply(book, d)
            assert d.last_id == m.sequence_num
            assert book == truth(gw, m)
        body = json.loads(r.raw[-1])
        assert set(body) == {"channel", "client_id", "timestamp", "sequence_num", "events"}
        assert body["channel"] == "l2_data" and body["events"][0]["type"] == "update"
        assert {u["side"] for u in body["events"][0]["updates"]} <= {"bid", "offer"}
        # a second connection numbers its own messages from 0
        async with http.ws_connect(gw.stream_url) as ws2:
            r2 = Reader(ws2)
            await sub(ws2, "market_trades", ["ETH-USD"])
            m2, _ = await r2.until(Subscriptions)
            assert m2.sequence_num == 0


async def test_heartbeats_every_second_counter_and_numbering_across_channels() -> None:
    async with (
        cb_gateway(heartbeat_interval_s=0.2) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url) as ws,
    ):
        r = Reader(ws)
        await sub(ws, "heartbeats")
        _, subs = await r.until(Subscriptions)
        assert "heartbeats" in subs.channels
        await sub(ws, "level2", ["BTC-USD"])
        counters, channels = [], set()
        for _ in range(2000):
            m = await r.next()  # strict: sequence_num contiguous across every channel
            channels.add(m.channel)
            counters += [e.counter for e in m.events if isinstance(e, Heartbeat)]
            if len(counters) >= 4:
                break
        assert counters == list(range(1, 5))
        assert {"heartbeats", "l2_data", "subscriptions"} <= channels


async def test_trades_snapshot_then_updates_and_tickers() -> None:
    async with (
        cb_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url) as ws,
    ):
        r = Reader(ws)
        await asyncio.sleep(0.3)  # some trades to show in the snapshot
        await sub(ws, "market_trades", ["BTC-USD"])
        await r.until(Subscriptions)
        m = await r.next()
        assert m.channel == "market_trades" and json.loads(r.raw[-1])["events"][0]["type"] == (
            "snapshot"
        )
        ids = [int(t.trade_id) for t in m.events if isinstance(t, TradeEvent)]
        assert ids == sorted(ids)
        for _ in range(4):
            _, t = await r.until(TradeEvent)
            assert t.symbol == "BTC-USD" and t.side in ("buy", "sell")
            ids.append(int(t.trade_id))
        assert ids[-4:] == list(range(ids[-4], ids[-4] + 4))  # contiguous per product
        await sub(ws, "ticker", ["ETH-USD"])
        _, tick = await r.until(TickerEvent)
        assert tick.symbol == "ETH-USD" and tick.bid and tick.ask
        assert float(tick.bid) < float(tick.ask)


async def test_unsubscribe_answered_and_resubscribe_gives_a_fresh_snapshot() -> None:
    async with (
        cb_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url) as ws,
    ):
        r = Reader(ws)
        await seeded(gw, r)
        await sub(ws, "level2", ["BTC-USD"], op="unsubscribe")
        _, subs = await r.until(Subscriptions)
        assert "level2" not in subs.channels
        after = len(r.raw)
        await sub(ws, "heartbeats")
        await r.until(Subscriptions)
        for _ in range(3):
            await r.until(Heartbeat)
        # nothing of level2 after its unsubscribe answer
        assert all(codec.decode(x).channel != "l2_data" for x in r.raw[after:])
        await seeded(gw, r)  # subscribed again: a new snapshot, equal to the truth


def test_symbols() -> None:
    assert coinbase_symbol("BTC-USD") == "BTC-USD"
    assert coinbase_symbol("AAPL") == "AAPL-USD"


async def test_products_rest_gives_the_grids_and_429_past_the_rate() -> None:
    async with cb_gateway(rest_requests_per_s=3) as gw, aiohttp.ClientSession() as http:
        async with http.get(gw.rest_url + PRODUCTS) as resp:
            assert resp.status == 200
            insts = {i.symbol: i for i in codec.decode_products(await resp.read())}
        for sym, m in gw.hub.markets.items():
            got, want = insts[sym], m.instrument
            assert (got.tick_size, got.lot_size) == (want.tick_size, want.lot_size)
        assert "AAPL-USD" in insts
        async with http.get(gw.rest_url + PRODUCTS + "?product_ids=ETH-USD") as resp:
            assert [i.symbol for i in codec.decode_products(await resp.read())] == ["ETH-USD"]
        statuses = []
        for _ in range(3):
            async with http.get(gw.rest_url + PRODUCTS) as resp:
                statuses.append(resp.status)
        assert statuses[-1] == 429
        assert dialect(gw).stats()["refused"]["rest"] >= 1


# -- requests, errors, limits -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        ("not json", "failed to parse"),
        ('{"type":"subscribe","channel":"level2","product_ids":["NOPE-USD"]}', "NOPE-USD"),
        ('{"type":"subscribe","channel":"candles","product_ids":["BTC-USD"]}', "candles"),
        ('{"type":"subscribe","channel":"level2"}', "needs product_ids"),
        ('{"type":"resubscribe","channel":"level2","product_ids":["BTC-USD"]}', "parse"),
    ],
)
async def test_bad_requests_get_an_error_and_nothing_is_subscribed(frame: str, words: str) -> None:
    async with (
        cb_gateway(rate=20) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url) as ws,
    ):
        r = Reader(ws)
        await ws.send_str(frame)
        m = await r.next()
        assert m.sequence_num is None and m.channel == "error"
        err = m.events[0]
        assert isinstance(err, VenueError) and words in err.message, err
        assert json.loads(r.raw[-1])["type"] == "error"
        assert all(not c["channels"] for c in dialect(gw).stats()["connections"])
        # the connection keeps going
        await sub(ws, "market_trades", ["BTC-USD"])
        m, _ = await r.until(Subscriptions)
        assert m.sequence_num == 0  # the error took no number


async def test_more_than_max_messages_per_s_are_refused() -> None:
    async with (
        cb_gateway(rate=20, max_messages_per_s=3) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url) as ws,
    ):
        r = Reader(ws)
        for _ in range(4):
            await sub(ws, "heartbeats")
        answers = []
        for _ in range(4):
            m = await r.next()
            while m.channel == "heartbeats":
                m = await r.next()
            answers.append(m.channel)
        assert answers == ["subscriptions"] * 3 + ["error"]
        assert "rate limit" in r.raw[-1] or any("rate limit" in x for x in r.raw)
        assert dialect(gw).stats()["refused"]["messages"] == 1


async def test_connections_past_the_rate_get_429() -> None:
    async with cb_gateway(rate=20, max_connects_per_s=2) as gw, aiohttp.ClientSession() as http:
        opened = [await http.ws_connect(gw.stream_url) for _ in range(2)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await http.ws_connect(gw.stream_url)
        assert exc.value.status == 429
        for ws in opened:
            await ws.close()


async def test_no_subscribe_in_time_closes_and_no_heartbeats_idle_closes() -> None:
    async with (
        cb_gateway(rate=20, subscribe_deadline_s=0.5, idle_close_s=0.6) as gw,
        aiohttp.ClientSession() as http,
    ):
        async with http.ws_connect(gw.stream_url) as ws:
            msg = await ws.receive(timeout=WAIT_S)
            assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1008
        # subscribed to a silenced channel only, without heartbeats: closed once idle
        gw.trigger("silence_channel", channel="trades:BTC-USD")
        async with http.ws_connect(gw.stream_url) as ws:
            r = Reader(ws)
            await sub(ws, "market_trades", ["BTC-USD"])
            await r.until(Subscriptions)
            for _ in range(100):
                msg = await ws.receive(timeout=WAIT_S)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
            assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1001
        # with heartbeats it stays open past the idle time
        async with http.ws_connect(gw.stream_url) as ws:
            r = Reader(ws)
            await sub(ws, "heartbeats")
            await sub(ws, "market_trades", ["BTC-USD"])
            t0 = time.monotonic()
            while time.monotonic() - t0 < 1.5:
                await r.next()
        assert dialect(gw).disconnects.get("idle_close") == 1


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["drop_delta", "duplicate_delta", "reorder_delta"])
async def test_book_message_faults_show_in_sequence_num(fault: str) -> None:
    async with (
        cb_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url) as ws,
    ):
        r = Reader(ws, strict=False)
        await seeded(gw, r)
        await r.until(BookDelta)
        gw.trigger(fault, channel=BOOK)
        for _ in range(10):
            await r.until(BookDelta)
        if fault == "drop_delta":
            assert len(r.skips) == 1 and r.skips[0][1] == r.skips[0][0] + 2 and not r.old
        elif fault == "duplicate_delta":
            assert not r.skips and len(r.old) == 1
            assert r.raw.count(r.raw[-1]) == 1 and len(set(r.raw)) == len(r.raw) - 1
        else:
            assert len(r.skips) == 1 and r.old == [r.skips[0][0] + 1]
        assert gw.faults.counts[fault] == 1


async def test_malformed_frame_is_half_a_message_then_a_skip() -> None:
    async with (
        cb_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url) as ws,
    ):
        r = Reader(ws, strict=False)
        await seeded(gw, r)
        gw.trigger("malformed_frame", channel=BOOK)
        for _ in range(500):
            msg = await ws.receive(timeout=WAIT_S)
            try:
                json.loads(msg.data)
            except ValueError:
                break
        else:
            raise AssertionError("no malformed message")
        await r.until(BookDelta)
        assert len(r.skips) == 1


async def test_silenced_book_resumes_without_a_skip_and_equal_to_the_truth() -> None:
    async with (
        cb_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url) as ws,
    ):
        r = Reader(ws)  # strict: no skip at all
        book = await seeded(gw, r)
        gw.trigger("silence_channel", channel=BOOK, duration_ms=500)
        t0 = time.monotonic()
        for _ in range(200):
            m, d = await r.until(BookDelta)
            apply(book, d)
            assert book == truth(gw, m)
            if time.monotonic() - t0 > 1.0:
                break


async def test_stop_pings_stops_heartbeats_then_they_resume() -> None:
    async with (
        cb_gateway(rate=20, heartbeat_interval_s=0.1) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url) as ws,
    ):
        r = Reader(ws)  # strict: stopped heartbeats spend no sequence_num
        await sub(ws, "heartbeats")
        await sub(ws, "market_trades", ["BTC-USD"])
        _, hb = await r.until(Heartbeat)
        beats: list[tuple[float, int]] = [(time.monotonic(), hb.counter)]
        gw.trigger("stop_pings", duration_ms=800)
        trades_meanwhile = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            m = await r.next()
            beats += [(time.monotonic(), e.counter) for e in m.events if isinstance(e, Heartbeat)]
            trades_meanwhile += m.channel == "market_trades"
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(beats)]
        assert max(gaps) > 0.6  # none for the duration
        counters = [c for _, c in beats]
        assert counters == list(range(counters[0], counters[0] + len(counters)))
        assert trades_meanwhile > 0  # the other channels kept flowing


async def test_stall_sends_nothing_then_resumes_with_a_skip() -> None:
    async with (
        cb_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url) as ws,
    ):
        r = Reader(ws, strict=False)
        await seeded(gw, r)
        await r.until(BookDelta)
        gw.trigger("stall", duration_ms=400)
        for _ in range(5):
            await r.until(BookDelta)
        assert len(r.skips) == 1


@pytest.mark.parametrize("close_frame", [True, False])
async def test_disconnect(close_frame: bool) -> None:
    async with (
        cb_gateway(rate=20) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url) as ws,
    ):
        await sub(ws, "heartbeats")
        await ws.receive(timeout=WAIT_S)
        gw.trigger("disconnect", close_frame=close_frame)
        await assert_disconnected(ws, close_frame)


@pytest.mark.parametrize("fault", ["bad_checksum", "snapshot_error", "stale_snapshot"])
async def test_faults_that_do_not_apply_are_refused(fault: str) -> None:
    async with cb_gateway(rate=20) as gw:
        with pytest.raises(ConfigError, match="does not apply to the coinbase dialect"):
            gw.trigger(fault, channel=BOOK)


def test_subscribe_messages_of_the_codec_are_served() -> None:
    # the frames the client sends (endpoints.subscribe_messages) are what the dialect reads
    frames = endpoints.subscribe_messages([BOOK, "trades:BTC-USD"])
    assert [json.loads(f)["channel"] for f in frames] == ["heartbeats", "level2", "market_trades"]


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_serves_coinbase_and_refuses_a_bad_option() -> None:
    help_out = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "coinbase" in help_out and "\n  coinbase      Coinbase Advanced Trade" in help_out
    with GatewayProcess(
        "--dialect", "coinbase", "--dialect-option", "heartbeat_interval_s=0.5"
    ) as gp:
        assert gp.ready["dialect"] == "coinbase" and "AAPL-USD" in gp.ready["symbols"]

        async def check() -> None:
            async with aiohttp.ClientSession() as http, http.ws_connect(gp.stream_url) as ws:
                r = Reader(ws)
                await sub(ws, "level2", ["BTC-USD"])
                await r.until(Subscriptions)
                _, snap = await r.until(BookSnapshot)
                assert snap.symbol == "BTC-USD" and snap.bids

        asyncio.run(check())
    bad = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--port", "0", "--no-admin",
         "--dialect", "coinbase", "--dialect-option", "heartbeat_interval_s=-1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "heartbeat_interval_s" in bad.stderr
