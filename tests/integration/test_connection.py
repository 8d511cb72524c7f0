"""Connection faults: heartbeat loss, disconnects, going blind, backoff, auth, re-seeding."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.conftest import (
    Recorder,
    assert_books_match_truth,
    gateway_config,
    make_client,
)
from tickpipe.client.events import Disconnected, Reconnecting
from tickpipe.errors import AuthError
from tickpipe.gateway import Gateway
from tickpipe.gateway.markets import MarketSpec
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.protocol.instruments import Instrument

BOOKS = ["orderbook:AAPL", "orderbook:MSFT"]


async def _start(gw: Gateway, **knobs: Any) -> tuple[Any, Recorder]:
    client = make_client(gw, **knobs)
    rec = Recorder(client)
    await client.start()
    await client.subscribe([*BOOKS, "ticker:BTC-USD", "trades:BTC-USD"])
    for ch in BOOKS:
        await client.wait_synced(ch, timeout=5)
    return client, rec


async def test_heartbeat_loss_found_within_timeout_then_recovers(gw: Gateway) -> None:
    client, rec = await _start(gw)
    try:
        timeout = client.config.heartbeat_timeout(gw.config.heartbeat_ms)  # 1.25 s
        gw.trigger("stop_pings", duration_ms=60_000)
        await rec.wait_for("disconnected", timeout=5)
        d = rec.named("disconnected")[0]
        assert isinstance(d, Disconnected)
        assert d.reason == "heartbeat"
        assert d.heartbeat_age_s is not None
        # dead no sooner than the timeout, and found by the watchdog's own deadline
        assert timeout <= d.heartbeat_age_s < timeout + 1.0
        stale = {e.to_dict()["channel"]: e.to_dict()["reason"] for e in rec.named("stale")}
        assert stale == {ch: "heartbeat" for ch in [*BOOKS, "ticker:BTC-USD"]}
        for ch in BOOKS:
            assert not client.book(ch).synced and client.book(ch).state == "stale"
        await rec.wait_for(lambda evs: len(rec.named("connected")) >= 2, timeout=5)
        for ch in BOOKS:
            await client.wait_synced(ch, timeout=5)
        assert client.stats().connections_opened == 2
        assert_books_match_truth(client, gw)
    finally:
        await rec.close()
        await client.close()


async def test_going_blind_order_is_stale_cancel_reconnect(gw: Gateway) -> None:
    client, rec = await _start(gw)
    try:
        await rec.wait_for("cancel_on_disconnect", enabled=True)
        assert client.stats().cancel_on_disconnect is True
        assert all(s["cancel_on_disconnect"] for s in gw.stats()["sessions"])
        o1 = await client.place_limit_order("AAPL", "buy", "1.00", "1")
        o2 = await client.place_limit_order("MSFT", "sell", "9999.00", "2")
        assert set(client.own_orders) == {o1.order_id, o2.order_id}
        gw.trigger("disconnect", close_frame=False)
        await rec.wait_for(lambda evs: len(rec.named("connected")) >= 2, timeout=5)
        names = [e.name for e in rec.events]
        i_disc = names.index("disconnected")
        i_cancel = names.index("orders_cancelled")
        i_reconn = names.index("reconnecting")
        i_conn2 = len(names) - 1 - names[::-1].index("connected")
        first_stale = names.index("stale")
        assert i_disc < first_stale < i_cancel < i_reconn < i_conn2
        oc = rec.named("orders_cancelled")[0].to_dict()
        assert sorted(oc["cancelled"]) == sorted([o1.order_id, o2.order_id])
        assert oc["failed"] == []
        assert client.own_orders == {}
        assert gw.desk.find(gw.key, "open", None) == []
    finally:
        await rec.close()
        await client.close()


async def test_own_orders_cancelled_by_rest_when_switch_off(gw: Gateway) -> None:
    """cancel_on_disconnect off: only the client's REST kill switch cancels its orders."""
    client, rec = await _start(gw, cancel_on_disconnect=False)
    try:
        o = await client.place_limit_order("AAPL", "buy", "1.00", "3")
        assert not any(s["cancel_on_disconnect"] for s in gw.stats()["sessions"])
        gw.trigger("stop_pings", duration_ms=60_000)
        await rec.wait_for("orders_cancelled", timeout=5)
        oc = rec.named("orders_cancelled")[0].to_dict()
        assert oc["cancelled"] == [o.order_id] and oc["failed"] == []
        assert gw.desk.find(gw.key, "open", None) == []
        assert client.stats().last_kill_switch == {
            "cancelled": [o.order_id],
            "failed": [],
            "scope": "own",
        }
    finally:
        await rec.close()
        await client.close()


async def test_reconnect_delays_follow_backoff_with_jitter(gw: Gateway) -> None:
    policy = BackoffPolicy(base_s=0.05, cap_s=0.3, healthy_after_s=60.0)
    client, rec = await _start(gw, reconnect=policy)
    try:
        for n in range(1, 5):  # bounded: 4 disconnects
            gw.trigger("disconnect")
            await rec.wait_for(lambda evs, n=n: len(rec.named("connected")) >= n + 1, timeout=5)
        recon = [e for e in rec.events if isinstance(e, Reconnecting)]
        assert [e.attempt for e in recon] == [0, 1, 2, 3]
        ratios = []
        for e in recon:
            ceiling = policy.ceiling(e.attempt)
            assert 0.5 * ceiling <= e.delay_s <= 1.5 * ceiling
            ratios.append(e.delay_s / ceiling)
        assert len({round(r, 6) for r in ratios}) > 1, "no jitter"
        connected = rec.named("connected")[1:]
        for e, c in zip(recon, connected, strict=True):
            assert c.t - e.t >= e.delay_s * 0.9  # waited (wall clock, small tolerance)
        assert client.stats().reconnects == 4
        assert gw.stats()["connections"] == 1
    finally:
        await rec.close()
        await client.close()


async def test_no_book_trigger_while_stale(gw: Gateway) -> None:
    client = make_client(gw)
    timeline: list[tuple[str, str, bool]] = []
    client.on_book(lambda v: timeline.append(("book", v.channel, v.synced)))
    client.on_state(lambda e: timeline.append((e.name, getattr(e, "channel", "") or "", True)))
    async with client:
        await client.subscribe(BOOKS)
        for ch in BOOKS:
            await client.wait_synced(ch, timeout=5)
        await asyncio.sleep(0.2)
        gw.trigger("stop_pings", duration_ms=60_000)
        await asyncio.sleep(0.1)
        for _ in range(200):
            if client.stats().connections_opened == 2 and all(client.book(c).synced for c in BOOKS):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
    assert all(synced for kind, _, synced in timeline if kind == "book")
    for ch in BOOKS:
        blind = False
        fired_while_blind = 0
        for kind, c, _ in timeline:
            if kind == "stale" and c == ch:
                blind = True
            elif kind == "synced" and c == ch:
                blind = False
            elif kind == "book" and c == ch and blind:
                fired_while_blind += 1
        assert fired_while_blind == 0
        assert any(k == "stale" and c == ch for k, c, _ in timeline)
    assert sum(1 for k, _, _ in timeline if k == "book") > 10


async def test_auth_failure_surfaced_never_retried(gw: Gateway) -> None:
    client = make_client(gw, first_connect_timeout_s=3.0)
    client._secret = "wrong"
    rec = Recorder(client)
    with pytest.raises(AuthError):
        await client.start()
    await asyncio.sleep(0.3)  # time for a (wrong) retry loop to show itself
    assert [e.name for e in rec.events] == ["auth_failed"]
    assert client.stats().connections_opened == 1
    assert client.connection_state == "auth_failed"
    await rec.close()


def _markets(n: int) -> tuple[MarketSpec, ...]:
    return tuple(
        MarketSpec(Instrument(f"S{i:03d}", "equity", "0.01", "1"), "100.00", 50) for i in range(n)
    )


@pytest.mark.slow
async def test_200_books_reseed_after_reconnect_under_rate_limit() -> None:
    cfg = gateway_config(markets=_markets(200), depth=40, rate=1.0, heartbeat_ms=1000)
    async with Gateway(cfg) as gw:
        gw.set_faults(snapshot_rate_limit=100)
        client = make_client(
            gw, snapshot_rate_per_s=70.0, snapshot_burst=20, snapshot_concurrency=8
        )
        rec = Recorder(client)
        async with client:
            chans = [f"orderbook:S{i:03d}" for i in range(200)]
            res = await client.subscribe(chans)
            assert len(res.accepted) == 200
            for ch in chans:
                await client.wait_synced(ch, timeout=20)
            gw.trigger("disconnect")
            await rec.wait_for(lambda evs: len(rec.named("connected")) >= 2, timeout=5)
            await rec.wait_for(lambda evs: len(rec.named("synced")) >= 400, timeout=30)
            assert all(client.book(ch).synced for ch in chans)
            stats = client.stats()
            assert stats.snapshot_429 == 0
            assert gw.faults_json()["counts"].get("snapshot_rate_limit", 0) == 0
            assert stats.snapshot_requests == 400
            assert client._scheduler.max_in_flight <= 8
            assert_books_match_truth(client, gw)
        await rec.close()


async def test_gateway_down_then_back_client_recovers_by_itself() -> None:
    """The gateway dies (REST too): the kill switch reports the cancel it could not make and
    keeps retrying; reconnect attempts back off; a new gateway on the same port is rejoined,
    re-subscribed and re-seeded without the user doing anything."""
    policy = BackoffPolicy(base_s=0.05, cap_s=0.2, healthy_after_s=60.0)
    gw1 = Gateway(gateway_config())
    await gw1.start()
    port = gw1.port
    client, rec = await _start(
        gw1, reconnect=policy, cancel_on_disconnect=False, rest_timeout_s=1.0
    )
    try:
        order = await client.place_limit_order("AAPL", "buy", "1.00", "1")
        await gw1.stop()
        await rec.wait_for("orders_cancelled", timeout=10)
        oc = rec.named("orders_cancelled")[0].to_dict()
        assert oc["cancelled"] == [] and oc["failed"] == [order.order_id]
        await rec.wait_for(lambda evs: len(rec.named("reconnecting")) >= 3, timeout=10)
        attempts = [e.to_dict()["attempt"] for e in rec.named("reconnecting")]
        assert attempts[:3] == [0, 1, 2]
        assert len(rec.named("disconnected")) == 1
        async with Gateway(gateway_config(port=port)) as gw2:
            await rec.wait_for(lambda evs: len(rec.named("connected")) >= 2, timeout=10)
            for ch in BOOKS:
                await client.wait_synced(ch, timeout=5)
            assert_books_match_truth(client, gw2)
            for _ in range(100):  # the background retry learns the order is gone
                if client._orders.pending_retries == 0:
                    break
                await asyncio.sleep(0.05)
            assert client._orders.pending_retries == 0
            assert client.own_orders == {}
            await rec.close()
            await client.close()
    finally:
        await rec.close()
        await client.close()


async def test_close_while_backing_off_is_prompt() -> None:
    policy = BackoffPolicy(base_s=5.0, cap_s=30.0)
    async with Gateway(gateway_config()) as gw:
        client, rec = await _start(gw, reconnect=policy)
        gw.trigger("disconnect")
        await rec.wait_for("reconnecting", timeout=5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await client.close()
        assert loop.time() - t0 < 1.0  # not the 2.5 s..7.5 s backoff sleep
        assert client.connection_state == "closed"
        await rec.close()


async def test_gap_cancels_own_orders_in_that_symbol_when_asked(gw: Gateway) -> None:
    client, rec = await _start(gw, cancel_orders_on_gap=True)
    try:
        a = await client.place_limit_order("AAPL", "buy", "1.00", "1")
        m = await client.place_limit_order("MSFT", "buy", "1.00", "1")
        gw.trigger("drop_delta", channel="orderbook:AAPL")
        await rec.wait_for("orders_cancelled", timeout=5)
        oc = rec.named("orders_cancelled")[0].to_dict()
        assert oc["cancelled"] == [a.order_id] and oc["scope"] == "gap:AAPL"
        assert set(client.own_orders) == {m.order_id}
        assert client.connected
    finally:
        await rec.close()
        await client.close()


async def test_stalled_connection_found_by_heartbeat(gw: Gateway) -> None:
    """A stalled connection (TCP open, nothing at all arrives) is dead within the timeout."""
    client, rec = await _start(gw)
    try:
        gw.trigger("stall", duration_ms=60_000)
        await rec.wait_for("disconnected", timeout=5)
        assert rec.named("disconnected")[0].to_dict()["reason"] == "heartbeat"
        await rec.wait_for(lambda evs: len(rec.named("connected")) >= 2, timeout=5)
        for ch in BOOKS:
            await client.wait_synced(ch, timeout=5)
        assert_books_match_truth(client, gw)
    finally:
        await rec.close()
        await client.close()


@pytest.mark.slow
async def test_chaos_profile_books_never_wrong_and_no_snapshot_refused() -> None:
    from tickpipe.gateway import load_profile

    async with Gateway(gateway_config()) as gw:
        # chaos limits snapshots to 2 in any second: a budget of 1/s + burst 1 fits under it
        client, rec = await _start(gw, snapshot_rate_per_s=1.0, snapshot_burst=1)
        try:
            gw.set_faults(load_profile("chaos").to_json())
            for _ in range(30):  # bounded: 3 s of chaos, every synced book checked each 100 ms
                await asyncio.sleep(0.1)
                assert_books_match_truth(client, gw)
            gw.reset_faults()
            for ch in BOOKS:
                await client.wait_synced(ch, timeout=20)
            assert_books_match_truth(client, gw)
            stats = client.stats()
            assert stats.snapshot_429 == 0
            assert gw.faults_json()["counts"].get("snapshot_rate_limit", 0) == 0
            assert client.connected
        finally:
            await rec.close()
            await client.close()
