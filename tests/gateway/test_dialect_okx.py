"""`tickpipe gateway --dialect okx`, seen as an OKX v5 public client sees it.

Every test runs the real gateway (in-process on 127.0.0.1 port 0, or a subprocess for the CLI),
talks to it with a plain aiohttp client and decodes everything with
``tickpipe.venues.okx.codec`` (the client's own decoder). Books are seeded in band from the
``snapshot``, followed with ``tickpipe.protocol.continuity`` (LINK on ``prevSeqId``/``seqId``),
verified with OKX's checksum (``venues.okx.checksum``) on every frame, and compared with the
gateway's truth at the same ``seqId``.
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

from tests.gateway.dialect_helpers import (
    WAIT_S,
    apply,
    assert_disconnected,
    dialect_gateway,
    load,
)
from tickpipe.errors import ConfigError, FrameError
from tickpipe.gateway import Gateway
from tickpipe.gateway.testing import GatewayProcess
from tickpipe.protocol.continuity import Step, follows
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import (
    BookDelta,
    BookSnapshot,
    Continuity,
    TickerEvent,
    TradeEvent,
)
from tickpipe.venues.okx import codec, endpoints
from tickpipe.venues.okx.checksum import checksum, verify
from tickpipe.venues.okx.codec import Pong, Subscribed, Unsubscribed, VenueError

LINK = Continuity.LINK
BOOK = "orderbook:BTC-USDT"
WS = "/ws/v5/public"


@asynccontextmanager
async def okx_gateway(rate: float = 200.0, **options: Any) -> AsyncIterator[Gateway]:
    options.setdefault("max_connects_per_s", 100)
    async with dialect_gateway("okx", rate, **options) as gw:
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


async def send(ws: aiohttp.ClientWebSocketResponse, obj: Any) -> None:
    await ws.send_str(obj if isinstance(obj, str) else json.dumps(obj))


class Follower:
    """An OKX book as a client keeps it: seeded in band, followed (LINK), checksummed."""

    def __init__(self, inst: Instrument, snap: BookSnapshot) -> None:
        assert snap.last_id is not None and snap.checksum is not None
        self.book = load(inst, snap)
        assert checksum(self.book) == snap.checksum
        self.last_id = snap.last_id
        self.checked = 1

    def feed(self, d: BookDelta) -> tuple[Step, bool]:
        """(continuity step, checksum ok); a NEXT update is applied."""
        step = follows(LINK, self.last_id, d)
        if step is not Step.NEXT:
            return step, True
        apply(self.book, d)
        self.last_id = d.last_id or 0
        assert d.checksum is not None  # 0 decodes to None: here every frame has one
        self.checked += 1
        return step, verify(self.book, d.checksum)


async def instruments(http: aiohttp.ClientSession, gw: Gateway) -> dict[str, Instrument]:
    async with http.get(gw.rest_url + "/api/v5/public/instruments?instType=SPOT") as r:
        assert r.status == 200
        return {i.symbol: i for i in codec.decode_instruments(await r.read())}


async def subscribed_follower(
    http: aiohttp.ClientSession, gw: Gateway, ws: aiohttp.ClientWebSocketResponse
) -> Follower:
    insts = await instruments(http, gw)
    await ws.send_str(endpoints.subscribe_message([BOOK], "1").decode())
    ack = await next_event(ws, Subscribed | VenueError)
    assert isinstance(ack, Subscribed) and ack.channel == BOOK and ack.request_id == "1"
    snap = await next_event(ws, BookSnapshot)
    return Follower(insts["BTC-USDT"], snap)


# -- the book ------------------------------------------------------------------------------


async def test_snapshot_then_linked_updates_checksummed_and_equal_to_the_truth() -> None:
    async with (
        okx_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        f = await subscribed_follower(http, gw, ws)
        assert len(f.book.bids) <= 400 and len(f.book.asks) <= 400
        assert f.book == gw.true_book("BTC-USDT", f.last_id)
        spans = []
        for _ in range(15):
            d = await next_event(ws, BookDelta)
            prev = f.last_id
            assert f.feed(d) == (Step.NEXT, True), (prev, d.prev_id, d.last_id)
            spans.append((d.last_id or 0) - prev)
        assert f.checked == 16
        assert f.book == gw.true_book("BTC-USDT", f.last_id)
        assert max(spans) > 1  # many simulator steps merged into one 100 ms update
        async with http.get(
            f"{gw.admin_url}/admin/book/BTC-USDT?seq={f.last_id}",
            headers={"X-Admin-Token": gw.admin_token},
        ) as r:
            truth = await r.json()
        inst = f.book.instrument
        bids, _ = f.book.to_lists()
        assert truth["bids"] == [[inst.format_price(p), inst.format_size(s)] for p, s in bids]


async def test_resubscribe_gives_a_fresh_snapshot_and_unsubscribe_stops_the_book() -> None:
    async with (
        okx_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        f = await subscribed_follower(http, gw, ws)
        for _ in range(3):
            await next_event(ws, BookDelta)
        await ws.send_str(endpoints.subscribe_message([BOOK]).decode())
        snap = await next_event(ws, BookSnapshot)
        assert snap.last_id is not None and snap.last_id > f.last_id
        f2 = Follower(f.book.instrument, snap)
        assert f2.book == gw.true_book("BTC-USDT", snap.last_id)
        await ws.send_str(endpoints.unsubscribe_message([BOOK], "9").decode())
        ack = await next_event(ws, Unsubscribed)
        assert ack.channel == BOOK and ack.request_id == "9"
        await send(ws, "ping")
        # after the unsubscribe answer, no books frame precedes the pong
        for _ in range(1000):
            msg = await ws.receive(timeout=WAIT_S)
            evs = codec.decode(msg.data)
            if isinstance(evs[0], Pong):
                break
            assert not isinstance(evs[0], BookDelta | BookSnapshot)


async def test_trades_and_tickers() -> None:
    async with (
        okx_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        await ws.send_str(
            endpoints.subscribe_message(["trades:BTC-USDT", "ticker:ETH-USDT"]).decode()
        )
        ids = []
        for _ in range(4):
            t = await next_event(ws, TradeEvent)
            assert t.symbol == "BTC-USDT" and t.side in ("buy", "sell")
            ids.append(int(t.trade_id))
        assert ids == list(range(ids[0], ids[0] + 4))  # contiguous per instrument
        tick = await next_event(ws, TickerEvent)
        assert tick.symbol == "ETH-USDT" and tick.bid and tick.ask
        assert float(tick.bid) < float(tick.ask)


async def test_checksum_zero_option_as_okx_from_23_june_2026() -> None:
    async with (
        okx_gateway(zero_checksum=1) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        await ws.send_str(endpoints.subscribe_message([BOOK]).decode())
        for _ in range(3):
            msg = await ws.receive(timeout=WAIT_S)
            body = json.loads(msg.data)
            if "data" in body:
                assert body["data"][0]["checksum"] == 0
        with pytest.raises(ConfigError, match="zero_checksum"):
            gw.trigger("bad_checksum", channel=BOOK)


# -- requests, errors, heartbeat, limits ------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code", "words"),
    [
        ('{"op":"subscribe","argss":[]}', "60012", 'Invalid request: {"op":"subscribe"'),
        ('{"op":"sub","args":[{"channel":"books","instId":"BTC-USDT"}]}', "60012", "Invalid"),
        ("not json", "60012", "Invalid request: not json"),
        (
            '{"id":"5","op":"subscribe","args":[{"channel":"books","instId":"NOPE-USDT"}]}',
            "60018",
            "channel:books,instId:NOPE-USDT doesn't exist",
        ),
        (
            '{"op":"subscribe","args":[{"channel":"candle1m","instId":"BTC-USDT"}]}',
            "60018",
            "channel:candle1m,instId:BTC-USDT",
        ),
    ],
)
async def test_bad_requests_get_okx_error_shapes(frame: str, code: str, words: str) -> None:
    async with (
        okx_gateway(rate=20) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        await send(ws, frame)
        err = await next_event(ws, VenueError)
        assert err.code == code and words in err.message, err
        assert err.conn_id and (err.request_id == "5") == ('"id":"5"' in frame)
        # the connection keeps going
        await ws.send_str(endpoints.subscribe_message(["trades:BTC-USDT"]).decode())
        assert isinstance(await next_event(ws, Subscribed), Subscribed)


async def test_ping_pong_and_the_idle_close() -> None:
    async with (
        okx_gateway(rate=20, idle_timeout_s=0.6) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        t0 = time.monotonic()
        for _ in range(4):  # pings keep it open past the idle timeout
            await send(ws, "ping")
            msg = await ws.receive(timeout=WAIT_S)
            assert msg.type == aiohttp.WSMsgType.TEXT and msg.data == "pong"
            await asyncio.sleep(0.3)
        assert time.monotonic() - t0 > 0.9
        t1 = time.monotonic()
        msg = await ws.receive(timeout=WAIT_S)
        assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4004
        assert time.monotonic() - t1 >= 0.2  # 0.6 s after the last pong
        assert gw.stats()["dialect"]["disconnects"].get("idle_timeout") == 1


async def test_subscribe_ops_per_window_and_connections_per_second() -> None:
    async with (
        okx_gateway(rate=20, max_ops_per_window=2, max_connects_per_s=2) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        for i in range(2):
            await ws.send_str(endpoints.subscribe_message(["ticker:BTC-USDT"], str(i)).decode())
            assert isinstance(await next_event(ws, Subscribed | VenueError), Subscribed)
        await ws.send_str(endpoints.subscribe_message(["ticker:BTC-USDT"], "x").decode())
        err = await next_event(ws, VenueError)
        assert err.code == "60014" and err.request_id == "x"
        async with http.ws_connect(gw.stream_url + WS):
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                async with http.ws_connect(gw.stream_url + WS):
                    pass
            assert e.value.status == 429


async def test_rest_instruments_and_books() -> None:
    async with okx_gateway(rate=20, rest_books_per_2s=4) as gw, aiohttp.ClientSession() as http:
        insts = await instruments(http, gw)
        sim = {m.instrument.symbol: m.instrument for m in gw.hub.markets.values()}
        assert set(insts) == set(sim) and "BTC-USDT" in insts and "AAPL-USDT" in insts
        for name, inst in insts.items():
            assert (inst.tick_size, inst.lot_size) == (sim[name].tick_size, sim[name].lot_size)
        async with http.get(gw.rest_url + "/api/v5/market/books?instId=BTC-USDT&sz=5") as r:
            snap = codec.decode_rest_books(await r.read(), "BTC-USDT")
            assert len(snap.bids) == len(snap.asks) == 5
        for q, status, code in [
            ("", 400, "50014"),
            ("?instId=NOPE-USDT", 400, "51001"),
            ("?instId=BTC-USDT&sz=x", 400, "51000"),
        ]:
            async with http.get(gw.rest_url + "/api/v5/market/books" + q) as r:
                assert r.status == status and (await r.json())["code"] == code, q
        async with http.get(gw.rest_url + "/api/v5/market/books?instId=BTC-USDT") as r:
            assert r.status == 429 and (await r.json())["code"] == "50011"
        async with http.get(gw.rest_url + "/api/v5/public/instruments") as r:
            assert r.status == 400 and (await r.json())["code"] == "50014"


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["drop_delta", "duplicate_delta", "reorder_delta"])
async def test_update_faults_as_a_client_sees_them(fault: str) -> None:
    async with (
        okx_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        f = await subscribed_follower(http, gw, ws)
        assert f.feed(await next_event(ws, BookDelta)) == (Step.NEXT, True)  # before the fault
        gw.trigger(fault, channel=BOOK)
        steps: list[Step] = []
        for _ in range(6):
            d = await next_event(ws, BookDelta)
            step, ok = f.feed(d)
            steps.append(step)
            if step is Step.GAP:
                break
            assert ok
        if fault == "duplicate_delta":  # the second copy links to nothing new: covered
            assert Step.COVERED in steps and Step.GAP not in steps
        else:  # drop: the next update's prevSeqId is not our seqId; reorder: the same
            assert steps[-1] is Step.GAP


async def test_malformed_update_is_not_json() -> None:
    async with (
        okx_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        await subscribed_follower(http, gw, ws)
        gw.trigger("malformed_frame", channel=BOOK)
        for _ in range(10):
            msg = await ws.receive(timeout=WAIT_S)
            try:
                codec.decode(msg.data)
            except FrameError as exc:
                assert exc.channel == BOOK
                break
        else:
            raise AssertionError("no malformed frame")


async def test_bad_checksum_on_one_update() -> None:
    async with (
        okx_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        f = await subscribed_follower(http, gw, ws)
        gw.trigger("bad_checksum", channel=BOOK)
        results = []
        for _ in range(5):
            step, ok = f.feed(await next_event(ws, BookDelta))
            assert step is Step.NEXT  # the link is intact: only the checksum is wrong
            results.append(ok)
        assert results.count(False) == 1


async def test_silenced_book_resumes_without_a_gap() -> None:
    async with (
        okx_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        f = await subscribed_follower(http, gw, ws)
        gw.set_faults(silence_channel=[BOOK])
        await asyncio.sleep(0.5)
        for _ in range(100):  # drain what was sent before the silence
            try:
                msg = await ws.receive(timeout=0.4)
            except TimeoutError:
                break
            for ev in codec.decode(msg.data):
                assert isinstance(ev, BookDelta)
                assert f.feed(ev) == (Step.NEXT, True)
        else:
            raise AssertionError("the book was not silenced")
        gw.set_faults(silence_channel=[])
        for _ in range(3):
            assert f.feed(await next_event(ws, BookDelta)) == (Step.NEXT, True)
        assert f.book == gw.true_book("BTC-USDT", f.last_id)


@pytest.mark.parametrize("close_frame", [True, False])
async def test_disconnect_fault_with_and_without_close_frame(close_frame: bool) -> None:
    async with (
        okx_gateway(rate=20) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        await ws.send_str(endpoints.subscribe_message([BOOK]).decode())
        await next_event(ws, BookSnapshot)
        out = gw.trigger("disconnect", close_frame=close_frame)
        assert len(out["sessions"]) == 1
        await assert_disconnected(ws, close_frame)


async def test_stall_goes_silent_then_resumes_with_a_gap_and_resubscribe_reseeds() -> None:
    async with (
        okx_gateway() as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(gw.stream_url + WS) as ws,
    ):
        f = await subscribed_follower(http, gw, ws)
        gw.trigger("stall", duration_ms=800)
        t0 = time.monotonic()
        gap_at = None
        for _ in range(10_000):
            step, _ = f.feed(await next_event(ws, BookDelta))
            if step is Step.GAP:
                gap_at = time.monotonic()
                break
        assert gap_at is not None and gap_at - t0 >= 0.5
        # OKX's way to re-seed one book: subscribe it again
        await ws.send_str(endpoints.subscribe_message([BOOK]).decode())
        f = Follower(f.book.instrument, await next_event(ws, BookSnapshot))
        for _ in range(3):
            assert f.feed(await next_event(ws, BookDelta)) == (Step.NEXT, True)


async def test_faults_that_do_not_apply_are_refused() -> None:
    async with okx_gateway(rate=20) as gw:
        for fault in ("stop_pings", "stale_snapshot"):
            with pytest.raises(ConfigError, match="does not apply to the okx dialect"):
                gw.trigger(fault)


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_serves_okx_and_refuses_a_bad_option() -> None:
    help_out = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "--dialect {vts,binance,okx," in help_out  # more dialects may follow
    with GatewayProcess("--dialect", "okx", "--dialect-option", "idle_timeout_s=5") as gp:
        assert gp.ready["dialect"] == "okx" and "BTC-USDT" in gp.ready["symbols"]

        async def check() -> None:
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(gp.stream_url + WS) as ws,
            ):
                await ws.send_str(endpoints.subscribe_message([BOOK]).decode())
                snap = await next_event(ws, BookSnapshot)
                assert snap.symbol == "BTC-USDT" and snap.checksum

        asyncio.run(check())
    bad = subprocess.run(
        [sys.executable, "-m", "tickpipe", "gateway", "--port", "0", "--no-admin",
         "--dialect", "okx", "--dialect-option", "zero_checksum=2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "zero_checksum" in bad.stderr
