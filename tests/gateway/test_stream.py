"""Stream basics: auth, subscriptions, data frames, snapshots+deltas vs the truth book."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from tests.gateway.wire import auth_msg, connect, recv, recv_until, subscribe
from tickpipe.gateway import Gateway
from tickpipe.protocol import frames
from tickpipe.protocol.book import OrderBook


async def test_auth_ok_and_announces_heartbeat(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(gateway.stream_url)
        await ws.send_json(auth_msg())
        f = await recv(ws)
        assert f["type"] == "authenticated"
        assert f["heartbeat_ms"] == gateway.config.heartbeat_ms
        assert f["max_channels"] == 200
        assert isinstance(f["session"], str) and f["session"]
        await ws.close()


async def test_bad_signature_gets_auth_failed_and_4001(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(gateway.stream_url)
        await ws.send_json(auth_msg(secret="wrong"))
        f = await recv(ws)
        assert f["type"] == "error" and f["code"] == "auth_failed"
        assert "signature" in f["message"]
        msg = await ws.receive(timeout=3)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001


async def test_unknown_key_gets_auth_failed(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(gateway.stream_url)
        await ws.send_json(auth_msg(key="nobody"))
        f = await recv(ws)
        # the same text as a bad signature: the answer does not tell which keys exist
        assert f["code"] == "auth_failed" and "nobody" not in f["message"]
        assert "unknown key, bad signature" in f["message"]
        assert (await ws.receive(timeout=3)).data == 4001


async def test_clock_skew_over_5s_is_auth_failed(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        for skew in (-6000, 6000):
            ws = await s.ws_connect(gateway.stream_url)
            await ws.send_json(auth_msg(ts_ms=int(time.time() * 1000) + skew))
            f = await recv(ws)
            assert f["code"] == "auth_failed" and "skew" in f["message"]
            assert (await ws.receive(timeout=3)).data == 4001


async def test_no_auth_within_timeout_closes_4003() -> None:
    from tests.conftest import gateway_config

    async with (
        Gateway(gateway_config(auth_timeout_s=0.3)) as gw,
        aiohttp.ClientSession() as s,
    ):
        ws = await s.ws_connect(gw.stream_url)
        msg = await ws.receive(timeout=3)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4003


async def test_subscribe_before_auth_is_refused_with_4003(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(gateway.stream_url)
        await ws.send_json({"action": "subscribe", "channels": ["ticker:AAPL"], "id": 1})
        f = await recv(ws)
        assert f["type"] == "error" and f["code"] == "auth_required"
        assert "auth" in f["message"]
        assert (await ws.receive(timeout=3)).data == 4003


async def test_subscribe_partial_errors(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gateway.stream_url)
        sub, errors = await subscribe(
            ws, ["ticker:AAPL", "orderbook:NOPE", "candles:AAPL", "trades:XAU-USD"], 7
        )
        assert sub == {"type": "subscribed", "channels": ["ticker:AAPL", "trades:XAU-USD"], "id": 7}
        assert sorted(e["channel"] for e in errors) == ["candles:AAPL", "orderbook:NOPE"]
        assert all(e["code"] == "unknown_channel" and e["id"] == 7 for e in errors)
        # all refused: still a subscribed frame, with an empty list
        sub, errors = await subscribe(ws, ["x:y"], 8)
        assert sub["channels"] == [] and errors[0]["code"] == "unknown_channel"


async def test_too_many_channels_refused_per_channel() -> None:
    from tests.conftest import gateway_config

    async with Gateway(gateway_config(max_channels=2)) as gw, aiohttp.ClientSession() as s:
        ws = await connect(s, gw.stream_url)
        sub, errors = await subscribe(ws, ["ticker:AAPL", "ticker:MSFT"], 2)
        assert sub["channels"] == ["ticker:AAPL", "ticker:MSFT"] and errors == []
        sub, errors = await subscribe(ws, ["ticker:AAPL", "ticker:NVDA"], 3)
        assert sub["channels"] == ["ticker:AAPL"]
        assert [(e["code"], e["channel"]) for e in errors] == [("too_many_channels", "ticker:NVDA")]


async def test_unsubscribe_stops_the_channel(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gateway.stream_url)
        await subscribe(ws, ["orderbook:AAPL", "orderbook:MSFT"])
        await ws.send_json({"action": "unsubscribe", "channels": ["orderbook:AAPL"], "id": 9})
        f, _ = await recv_until(ws, lambda f: f["type"] == "unsubscribed")
        assert f == {"type": "unsubscribed", "channels": ["orderbook:AAPL"], "id": 9}
        after = [await recv(ws) for _ in range(20)]
        assert all(x["channel"] == "orderbook:MSFT" for x in after)


async def test_data_frames_are_well_formed_and_contiguous(gateway: Gateway) -> None:
    chans = ["orderbook:BTC-USD", "ticker:BTC-USD", "trades:BTC-USD"]
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gateway.stream_url)
        await subscribe(ws, chans)
        last: dict[str, int] = {}
        kinds: set[str] = set()
        for _ in range(150):
            raw = await ws.receive(timeout=3)
            f = frames.decode_server_frame(raw.data)  # validates every field's type
            assert isinstance(f, frames.Delta | frames.Ticker | frames.Trade)
            kinds.add(type(f).__name__)
            if f.channel in last:
                assert f.seq == last[f.channel] + 1, (f.channel, f.seq, last[f.channel])
            last[f.channel] = f.seq
            if isinstance(f, frames.Trade):
                assert f.id == f"T{f.seq}"
        assert kinds >= {"Delta", "Ticker"}


async def test_snapshot_plus_deltas_equal_truth_and_checksums(gateway: Gateway) -> None:
    inst = {i.symbol: i for i in gateway.instruments}
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gateway.stream_url)
        symbols = ["AAPL", "XAU-USD", "EUR-USD", "BTC-USD"]
        await subscribe(ws, [f"orderbook:{x}" for x in symbols])
        buffered: list[frames.Delta] = []
        # buffer a little, then fetch snapshots
        for _ in range(8):
            f = frames.decode_server_frame((await ws.receive(timeout=3)).data)
            assert isinstance(f, frames.Delta)
            buffered.append(f)
        books: dict[str, OrderBook] = {}
        seqs: dict[str, int] = {}
        for sym in symbols:
            async with s.get(f"{gateway.rest_url}/v1/orderbook/{sym}") as r:
                assert r.status == 200
                snap = frames.decode_snapshot(await r.read())
            b = OrderBook(inst[sym])
            b.load(
                frames.parse_levels(snap.bids, inst[sym], sym, "bids"),
                frames.parse_levels(snap.asks, inst[sym], sym, "asks"),
            )
            assert b == gateway.true_book(sym, snap.seq)
            books[sym], seqs[sym] = b, snap.seq
        checked = 0
        for _ in range(400):
            if buffered:
                f = buffered.pop(0)
            else:
                dec = frames.decode_server_frame((await ws.receive(timeout=3)).data)
                assert isinstance(dec, frames.Delta)
                f = dec
            sym = f.channel.split(":", 1)[1]
            if f.seq <= seqs[sym]:
                continue
            assert f.seq == seqs[sym] + 1
            b = books[sym]
            b.apply(
                frames.parse_levels(f.bids, inst[sym], f.channel, "bids"),
                frames.parse_levels(f.asks, inst[sym], f.channel, "asks"),
            )
            seqs[sym] = f.seq
            assert b.checksum() == f.checksum
            assert not b.is_crossed()
            checked += 1
            if checked % 50 == 0:
                assert b == gateway.true_book(sym, f.seq)
        assert checked > 300


async def test_rest_instruments_health_and_snapshot_depth(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gateway.rest_url}/v1/instruments") as r:
            body = await r.json()
        insts = frames.decode_instruments(json.dumps(body))
        assert len(insts) >= 8
        assert {i.asset_class for i in insts} == {"crypto", "equity", "metal", "fx"}
        assert len({(i.tick_size, i.lot_size) for i in insts}) >= 5
        async with s.get(f"{gateway.rest_url}/v1/health") as r:
            h = await r.json()
            assert r.status == 200 and h["status"] == "ok"
        async with s.get(f"{gateway.rest_url}/v1/orderbook/AAPL?depth=5") as r:
            snap = await r.json()
        assert len(snap["bids"]) == 5 and len(snap["asks"]) == 5
        async with s.get(f"{gateway.rest_url}/v1/orderbook/AAPL") as r:
            full = await r.json()
        assert len(full["bids"]) >= 200 and len(full["asks"]) >= 200
        # prices written with exactly the instrument's decimals
        assert all(len(p.split(".")[1]) == 2 for p, _ in full["bids"])
        async with s.get(f"{gateway.rest_url}/v1/orderbook/EUR-USD?depth=3") as r:
            fx = await r.json()
        assert all(len(p.split(".")[1]) == 5 and "." not in q for p, q in fx["bids"])


async def test_rest_errors_are_json(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        for path, status, code in [
            ("/v1/orderbook/NOPE", 404, "unknown_symbol"),
            ("/v1/orderbook/AAPL?depth=-1", 400, "bad_depth"),
            ("/v1/orderbook/AAPL?depth=abc", 400, "bad_depth"),
            ("/v1/nothing", 404, "not_found"),
            ("/v1/stream", 400, "bad_request"),  # plain GET, no WebSocket upgrade
            ("/v1/orders/", 404, "not_found"),
        ]:
            async with s.get(gateway.rest_url + path) as r:
                assert r.status == status, path
                body = await r.json()
                assert body["error"]["code"] == code and body["error"]["message"]
        async with s.post(gateway.rest_url + "/v1/instruments") as r:
            assert r.status == 405
            assert (await r.json())["error"]["code"] == "method_not_allowed"


async def test_seq_is_per_channel_across_connections(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        a = await connect(s, gateway.stream_url)
        await subscribe(a, ["orderbook:MSFT"])
        fa = await recv(a)
        await asyncio.sleep(0.2)
        b = await connect(s, gateway.stream_url)
        await subscribe(b, ["orderbook:MSFT"])
        fb = await recv(b)
        assert fb["seq"] > fa["seq"]
        # the same seq carries the same bytes on both connections
        seen_a = {fa["seq"]: fa}
        for _ in range(40):
            f = await recv(a)
            seen_a[f["seq"]] = f
        assert seen_a.get(fb["seq"]) == fb
