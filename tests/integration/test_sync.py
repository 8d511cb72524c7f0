"""Books against the real gateway: synced means equal to the truth at that seq; one socket."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.integration.conftest import Recorder, assert_books_match_truth, make_client
from tickpipe.errors import ConfigError
from tickpipe.gateway import Gateway

BOOKS = ["orderbook:AAPL", "orderbook:BTC-USD", "orderbook:EUR-USD", "orderbook:XAU-USD"]


async def test_multiplexed_books_equal_truth_over_one_socket(gw: Gateway) -> None:
    async with make_client(gw) as client:
        rec = Recorder(client)
        res = await client.subscribe([*BOOKS, "ticker:BTC-USD", "trades:XAU-USD"])
        assert sorted(res.accepted) == sorted([*BOOKS, "ticker:BTC-USD", "trades:XAU-USD"])
        assert res.refused == {}
        for ch in BOOKS:
            await client.wait_synced(ch.partition(":")[2], timeout=5)
        checked = 0
        for _ in range(15):  # bounded: 15 samples, 50 ms apart, while deltas flow
            await asyncio.sleep(0.05)
            checked += assert_books_match_truth(client, gw)
        assert checked >= 15 * len(BOOKS) - 2
        stats = client.stats()
        assert stats.connections_opened == 1
        assert gw.stats()["connections"] == 1
        assert stats.frames > 0 and stats.latency_p50_ms is not None
        assert sum(stats.gaps.values()) == 0
        assert client.ticker("BTC-USD") is not None
        names = [e.name for e in rec.events]
        assert "subscribed" in names and names.count("synced") == len(BOOKS)
        await rec.close()


async def test_synced_book_matches_admin_endpoint(gw: Gateway) -> None:
    """The same check through the admin HTTP API (GET /admin/book/{symbol}?seq=N)."""
    async with make_client(gw) as client:
        await client.subscribe(["orderbook:MSFT"])
        view = await client.wait_synced("MSFT", timeout=5)
        await asyncio.sleep(0.2)
        seq = view.seq
        bids, asks = view.text_levels(None)  # read at once: same loop turn as seq
        async with aiohttp.ClientSession() as http:
            url = f"{gw.admin_url}/admin/book/MSFT?seq={seq}"
            async with http.get(url, headers={"X-Admin-Token": gw.admin_token}) as r:
                assert r.status == 200
                truth = await r.json()
        assert truth["seq"] == seq
        assert truth["bids"] == bids and truth["asks"] == asks


async def test_unknown_channel_is_refused_and_reported(gw: Gateway) -> None:
    async with make_client(gw) as client:
        rec = Recorder(client)
        res = await client.subscribe(["orderbook:AAPL", "ticker:NOPE"])
        assert res.accepted == ["orderbook:AAPL"]
        assert res.refused == {"ticker:NOPE": "unknown_channel"}
        await rec.wait_for("subscribe_error", channel="ticker:NOPE", code="unknown_channel")
        assert "ticker:NOPE" not in client.channels
        await rec.close()


async def test_refusals_the_gateway_summarises_are_refused_and_never_resent(gw: Gateway) -> None:
    """Past its answer budget the gateway refuses the rest of a request in one error frame that
    names no channel: those channels come back refused too, and leave the wanted set (else a
    reconnect would send them again, and again be refused)."""
    unknown = [f"ticker:NOPE{i:03d}" for i in range(150)]
    async with make_client(gw) as client:
        res = await client.subscribe(["orderbook:AAPL", *unknown])
        assert res.accepted == ["orderbook:AAPL"]
        assert set(res.refused) == set(unknown)
        assert set(res.refused.values()) == {"unknown_channel"}
        assert client.channels == ["orderbook:AAPL"]
        too_many = [f"ticker:X{i}" for i in range(gw.config.max_channels + 1)]
        res = await client.subscribe(too_many)
        assert res.accepted == [] and set(res.refused) == set(too_many)
        assert client.channels == ["orderbook:AAPL"]


async def test_unsubscribe_forgets_the_book(gw: Gateway) -> None:
    async with make_client(gw) as client:
        await client.subscribe(["orderbook:AAPL", "orderbook:MSFT"])
        await client.wait_synced("AAPL", timeout=5)
        res = await client.unsubscribe(["orderbook:AAPL"])
        assert res.accepted == ["orderbook:AAPL"]
        assert "orderbook:AAPL" not in client.books()
        await client.wait_synced("MSFT", timeout=5)


async def test_clean_shutdown_leaves_no_task_or_socket(gw: Gateway) -> None:
    before = set(asyncio.all_tasks())
    client = make_client(gw)
    async with client:
        await client.subscribe(BOOKS)
        await client.wait_synced("AAPL", timeout=5)
        await client.place_limit_order("AAPL", "buy", "1.00", "1")
    await asyncio.sleep(0.05)
    left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    mine = [t for t in left if "tickpipe" in t.get_name() or "snapshot" in t.get_name()]
    assert mine == []
    for _ in range(50):  # the gateway notices the close within a few loop turns
        if gw.stats()["connections"] == 0:
            break
        await asyncio.sleep(0.02)
    assert gw.stats()["connections"] == 0


async def test_instruments_are_exposed_with_their_grid(gw: Gateway) -> None:
    async with make_client(gw) as client:
        insts = client.instruments
        assert {"BTC-USD", "AAPL", "XAU-USD", "EUR-USD"} <= set(insts)
        assert {i.asset_class for i in insts.values()} >= {"crypto", "equity", "metal", "fx"}
        aapl = client.instrument("orderbook:AAPL")
        assert aapl == client.instrument("AAPL")
        assert aapl.tick_size == "0.01"
        try:
            client.instrument("NOPE")
        except ConfigError as exc:
            assert "NOPE" in str(exc)
        else:
            raise AssertionError("unknown symbol must raise ConfigError")
