"""Kraken spot orders (issue 17): the real client on ``venue="kraken"`` with an API key, against
the reference gateway's kraken dialect (its private REST endpoints over ``gw.desk`` and
``gw.dead_man``), in-process on 127.0.0.1 port 0.

Orders are placed far from the market (a buy at one tick never fills), so they rest until
cancelled: by the client (going blind), by the gateway's dead man's switch (a network cut), or
by the test."""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from tickpipe import Client
from tickpipe.client.events import ClientEvent
from tickpipe.errors import CredentialsRejected
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.dialects.kraken import KrakenDialect
from tickpipe.gateway.dialects.kraken_orders import desk_id, txid
from tickpipe.gateway.orders import Order as DeskOrder
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.venues.kraken.adapter import KrakenVenue
from tickpipe.venues.kraken.orders import KrakenOrders, KrakenPairs
from tickpipe.venues.trading import Credentials, HttpCall, NewOrder

from .conftest import FAST_RECONNECT, Recorder

WAIT_S = 8.0  # generous: the machine is shared
KEY = "tickpipe-kraken-test-key"
SECRET = base64.b64encode(bytes(range(7, 71))).decode()  # 64 bytes, base64 as Kraken's are
FAST_RETRY = BackoffPolicy(base_s=0.05, cap_s=0.2, healthy_after_s=0.0)


@pytest.fixture
async def kgw() -> AsyncIterator[Gateway]:
    cfg = GatewayConfig(
        port=0,
        admin_port=0,
        seed=7,
        rate=40.0,
        dialect="kraken",
        keys=((KEY, SECRET),),
        # the tests refresh the dead man's switch several times a second: a faster REST
        # counter decay than Kraken's Starter 0.33/s
        dialect_options=(("rest_calls_per_s", 100), ("api_decay_per_s", 50)),
    )
    async with Gateway(cfg) as g:
        yield g


def dialect(g: Gateway) -> KrakenDialect:
    assert isinstance(g.dialect, KrakenDialect)
    return g.dialect


def kraken(g: Gateway, *, secret: str = SECRET, key: str = KEY, **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault("order_retry", FAST_RETRY)
    knobs.setdefault("rest_timeout_s", 3.0)
    return Client(
        venue=KrakenVenue(orders_per_s=50.0, orders_burst=50),
        stream_url=g.stream_url,
        rest_url=g.rest_url,
        key=key,
        secret=secret,
        **knobs,
    )


def far_buy(g: Gateway, symbol: str = "BTC/USD") -> tuple[str, str]:
    """A price and size for a buy that never fills (one tick)."""
    inst = g.hub.markets[symbol].instrument
    return inst.tick_size, inst.lot_size


def desk_orders(g: Gateway) -> list[DeskOrder]:
    return g.desk.find(KEY, None, None)


async def until(pred: Any, what: str, timeout: float = WAIT_S) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.02)
    assert pred(), what


def named(events: list[ClientEvent], name: str, **fields: Any) -> list[Any]:
    return [
        e
        for e in events
        if e.name == name and all(getattr(e, k, None) == v for k, v in fields.items())
    ]


# -- orders through the client ---------------------------------------------------------------


async def test_orders_are_placed_listed_got_and_cancelled(kgw: Gateway) -> None:
    px, sz = far_buy(kgw)
    epx, esz = far_buy(kgw, "ETH/USD")
    async with kraken(kgw, dead_man_timeout_s=None) as client:
        a = await client.place_limit_order("BTC/USD", "buy", px, sz)
        b = await client.place_limit_order("BTC/USD", "buy", px, sz, client_order_id="mine-1")
        c = await client.place_limit_order("ETH/USD", "buy", epx, esz)
        for o in (a, b, c):
            assert o.is_open and desk_id(o.order_id) is not None  # Kraken txids
        assert b.client_order_id == "mine-1"
        assert {o.client_order_id for o in desk_orders(kgw)} == {
            a.client_order_id,
            "mine-1",
            c.client_order_id,
        }
        listed = await client.open_orders()
        assert {o.order_id for o in listed} == {a.order_id, b.order_id, c.order_id}
        by_id = {o.order_id: o for o in listed}
        assert by_id[a.order_id].symbol == "BTC/USD" and by_id[c.order_id].symbol == "ETH/USD"
        assert by_id[b.order_id].client_order_id == "mine-1"
        assert {o.order_id for o in await client.open_orders("BTC/USD")} == {a.order_id, b.order_id}
        got = await client.get_order(a.order_id)
        assert (got.status, got.symbol, got.side, got.filled_size) == (
            "open",
            "BTC/USD",
            "buy",
            kgw.hub.markets["BTC/USD"].instrument.format_size(0),
        )
        done = await client.cancel_order(a.order_id)
        assert (done.order_id, done.status) == (a.order_id, "cancelled")
        assert (await client.get_order(a.order_id)).status == "cancelled"
        # one symbol: no pair filter at Kraken, so its open orders are cancelled one by one
        assert await client.cancel_all_orders("BTC/USD") == [b.order_id]
        assert [o.order_id for o in await client.open_orders()] == [c.order_id]
        assert await client.cancel_all_orders() == []  # Kraken's CancelAll answers a count
        assert all(o.status == "cancelled" for o in desk_orders(kgw))
        assert client.own_orders == {}
        # many calls at once: one at a time, nonces rising, none refused
        results = await asyncio.gather(*(client.open_orders() for _ in range(8)))
        assert all(r == [] for r in results)
    refused = dialect(kgw).private.refused
    assert refused == {"auth": 0, "nonce": 0, "rate": 0, "args": 0}


async def test_a_stream_fault_cancels_own_orders_and_the_switch_is_armed_once_per_healthy_period(
    kgw: Gateway,
) -> None:
    px, sz = far_buy(kgw)
    # dead man: Kraken timeout 3 s, refreshed every 1 s; blind for ~1.5 s (longer than a refresh)
    slow_reconnect = BackoffPolicy(base_s=1.5, cap_s=1.5, jitter="none", healthy_after_s=0.0)
    async with kraken(kgw, dead_man_timeout_s=3.0, reconnect=slow_reconnect) as client:
        rec = Recorder(client)
        try:
            await rec.wait_for("dead_man_switch", timeout=WAIT_S, armed=True)
            ids = [
                (await client.place_limit_order("BTC/USD", "buy", px, sz)).order_id
                for _ in range(3)
            ]
            kgw.trigger("disconnect")
            await rec.wait_for("orders_cancelled", timeout=WAIT_S, venue="kraken")
            ev = named(rec.events, "orders_cancelled", venue="kraken")[0]
            assert sorted(ev.cancelled) == sorted(ids) and ev.failed == [] and not ev.background
            assert all(
                o.status == "cancelled" and o.cancel_reason == "user" for o in desk_orders(kgw)
            )
            await rec.wait_for("connected", timeout=WAIT_S)
            await rec.wait_for(
                lambda evs: len(named(evs, "dead_man_switch", armed=True)) >= 2, timeout=WAIT_S
            )
            await asyncio.sleep(1.2)  # one more refresh period
        finally:
            await rec.close()
    armed = named(rec.events, "dead_man_switch", armed=True)
    assert len(armed) == 2  # once per healthy period
    assert all(e.venue == "kraken" and e.timeout_s == 3.0 for e in armed)
    arms = list(dialect(kgw).private.arms)
    assert all(timeout == 3 for _, timeout in arms)  # whole seconds, as Kraken takes them
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(arms)]
    assert gaps and min(gaps) > 0.5, gaps  # never re-armed twice within one refresh period
    assert kgw.dead_man.stats()["arm_calls"] == len(arms)


async def test_a_network_cut_ends_with_the_venue_timer_cancelling_the_orders(kgw: Gateway) -> None:
    px, sz = far_buy(kgw)
    async with kraken(kgw, dead_man_timeout_s=1.0) as client:  # Kraken: 1 s, refreshed each 0.33 s
        rec = Recorder(client)
        try:
            await rec.wait_for("dead_man_switch", timeout=WAIT_S, armed=True)
            ids = [
                (await client.place_limit_order("BTC/USD", "buy", px, sz)).order_id
                for _ in range(2)
            ]
            kgw.trigger("partition", duration_ms=3000)
            await rec.wait_for("orders_cancelled", timeout=WAIT_S, venue="kraken")
            ev = named(rec.events, "orders_cancelled", venue="kraken")[0]
            assert sorted(ev.failed) == sorted(ids)  # the client's own cancels could not reach it
            await until(lambda: kgw.dead_man.stats()["fired"] >= 1, "the venue timer fired")
            assert all(
                o.status == "cancelled" and o.cancel_reason == "dead_man" for o in desk_orders(kgw)
            )
            assert kgw.desk.open_count(KEY) == 0
            # after the cut the background retries find them gone, and the client re-arms
            await until(lambda: client.own_orders == {}, "own orders settled", timeout=WAIT_S)
            await rec.wait_for(
                lambda evs: len(named(evs, "dead_man_switch", armed=True)) >= 2, timeout=WAIT_S
            )
        finally:
            await rec.close()


@pytest.mark.parametrize("wrong", ["secret", "key"])
async def test_bad_credentials_are_one_request_a_clear_error_and_no_secret_anywhere(
    kgw: Gateway, wrong: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad_secret = base64.b64encode(
        b"not the right secret, 64 bytes long, padded out to length!!!!!"
    ).decode()
    creds = {"secret": bad_secret} if wrong == "secret" else {"key": "nobody", "secret": SECRET}
    px, sz = far_buy(kgw)
    # the dead man's switch, armed once connected, is the first signed call
    client = kraken(kgw, dead_man_timeout_s=1.5, **creds)
    texts: list[str] = []
    async with client:
        rec = Recorder(client)
        try:
            await rec.wait_for("dead_man_switch", timeout=WAIT_S, armed=False)
            with pytest.raises(CredentialsRejected) as err:
                await client.place_limit_order("BTC/USD", "buy", px, sz)
            texts.append(str(err.value))
            with pytest.raises(CredentialsRejected):
                await client.open_orders()
        finally:
            await rec.close()
        texts += [str(e) for e in rec.events]
    assert "kraken refused the API key or its signature" in texts[0]
    said = "EAPI:Invalid signature" if wrong == "secret" else "EAPI:Invalid key"
    assert said in texts[0]
    private = dialect(kgw).private
    assert sum(private.calls.values()) == 1  # exactly one signed request reached the gateway
    assert private.refused["auth"] == 1
    assert kgw.desk.counts()["total"] == 0
    blob = "\n".join([caplog.text, *texts])
    for secret in (SECRET, bad_secret):
        assert secret not in blob
        assert secret[:20] not in blob


async def test_a_5xx_on_place_is_retried_with_the_same_client_order_id_and_makes_one_order(
    kgw: Gateway,
) -> None:
    px, sz = far_buy(kgw)
    async with kraken(kgw, dead_man_timeout_s=None) as client:
        kgw.trigger("order_5xx")
        o = await client.place_limit_order("BTC/USD", "buy", px, sz, client_order_id="retry-me")
        assert o.is_open and o.client_order_id == "retry-me"
    assert kgw.order_faults.taken["order_5xx"] == 1
    assert dialect(kgw).private.calls["AddOrder"] == 2
    [placed] = desk_orders(kgw)
    assert placed.client_order_id == "retry-me" and txid(placed.order_id) == o.order_id


async def test_a_lost_place_answer_is_retried_and_the_duplicate_is_the_same_order(
    kgw: Gateway,
) -> None:
    """order_timeout: the order is placed but its answer is held past the client's timeout;
    the retry (same cl_ord_id) meets Kraken's duplicate refusal, which is that order."""
    px, sz = far_buy(kgw)
    async with kraken(kgw, dead_man_timeout_s=None, rest_timeout_s=0.5) as client:
        kgw.trigger("order_timeout", duration_ms=1500)
        o = await client.place_limit_order("BTC/USD", "buy", px, sz, client_order_id="lost-1")
        assert (o.order_id, o.status) == ("lost-1", "open")  # addressed by its cl_ord_id
        [placed] = desk_orders(kgw)
        assert placed.client_order_id == "lost-1" and placed.status == "open"
        assert "lost-1" in client.own_orders
        done = await client.cancel_order(o.order_id)  # CancelOrder cl_ord_id=lost-1
        assert done.status == "cancelled"
        assert placed.status == "cancelled"


async def test_a_cancel_that_fails_once_is_retried_in_the_background(kgw: Gateway) -> None:
    px, sz = far_buy(kgw)
    async with kraken(kgw, dead_man_timeout_s=None) as client:
        rec = Recorder(client)
        try:
            ids = [
                (await client.place_limit_order("BTC/USD", "buy", px, sz)).order_id
                for _ in range(2)
            ]
            kgw.trigger("cancel_fails_once")
            kgw.trigger("disconnect")
            await rec.wait_for("orders_cancelled", timeout=WAIT_S, venue="kraken", background=True)
        finally:
            await rec.close()
    first = named(rec.events, "orders_cancelled", venue="kraken", background=False)[0]
    assert len(first.failed) == 1 and len(first.cancelled) == 1
    later = named(rec.events, "orders_cancelled", venue="kraken", background=True)[0]
    assert later.cancelled == first.failed
    assert sorted(first.cancelled + later.cancelled) == sorted(ids)
    assert kgw.order_faults.taken["cancel_fails_once"] == 1
    assert all(o.status == "cancelled" for o in desk_orders(kgw))


# -- the dialect as Kraken answers ---------------------------------------------------------------


class Raw:
    """Signed calls built by the client's codec, sent with a plain aiohttp session."""

    def __init__(self, g: Gateway, session: aiohttp.ClientSession, **codec: Any) -> None:
        self.g = g
        self.s = session
        pairs = KrakenPairs()
        pairs.add("XBTUSD", "BTC/USD")
        self.codec = KrakenOrders(pairs, **codec)
        self.creds = Credentials(KEY, SECRET)
        self.nonce = 1_700_000_000_000

    def next(self) -> int:
        self.nonce += 1
        return self.nonce

    async def send(self, call: HttpCall) -> tuple[int, dict[str, Any]]:
        async with self.s.request(
            call.method, self.g.rest_url + call.target, data=call.body or None, headers=call.headers
        ) as r:
            return r.status, msgspec.json.decode(await r.read())

    def place(self, cl: str) -> HttpCall:
        px, sz = far_buy(self.g)
        return self.codec.place(self.creds, self.next(), NewOrder("BTC/USD", "buy", px, sz, cl))


async def test_the_dialect_checks_key_signature_and_nonce_as_kraken_does(kgw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        raw = Raw(kgw, s)
        call = raw.place("first")
        assert (await raw.send(call))[1]["result"]["txid"]
        # the same request again: its nonce is not above the last: refused, nothing placed
        assert await raw.send(call) == (200, {"error": ["EAPI:Invalid nonce"]})
        older = raw.codec.open_orders(raw.creds, raw.nonce - 5, None)
        assert (await raw.send(older))[1] == {"error": ["EAPI:Invalid nonce"]}
        # a signature of another body, another key, no key
        good = raw.codec.open_orders(raw.creds, raw.next(), None)
        tampered = HttpCall(
            "POST", good.path, headers=good.headers, body=good.body + b"&trades=true"
        )
        assert (await raw.send(tampered))[1] == {"error": ["EAPI:Invalid signature"]}
        stranger = raw.codec.open_orders(Credentials("nobody", SECRET), raw.next(), None)
        assert (await raw.send(stranger))[1] == {"error": ["EAPI:Invalid key"]}
        unsigned = HttpCall("POST", good.path, body=good.body)
        assert (await raw.send(unsigned))[1] == {"error": ["EAPI:Invalid key"]}
        # a correct call still works (the refused ones did not move the nonce)
        status, body = await raw.send(raw.codec.open_orders(raw.creds, raw.next(), None))
        assert status == 200 and len(body["result"]["open"]) == 1
        # Kraken's cl_ord_id uniqueness among open orders
        assert (await raw.send(raw.place("first")))[1] == {"error": ["EOrder:Duplicate order"]}
        # the server time, public
        async with s.get(kgw.rest_url + "/0/public/Time") as r:
            t = msgspec.json.decode(await r.read())["result"]
        assert isinstance(t["unixtime"], int) and t["rfc1123"].endswith("+0000")
    assert kgw.desk.counts()["total"] == 1
    refused = dialect(kgw).private.refused
    assert (refused["nonce"], refused["auth"]) == (2, 3)


async def test_the_dialect_answers_krakens_rate_limits() -> None:
    cfg = GatewayConfig(
        port=0,
        admin_port=0,
        seed=7,
        rate=40.0,
        dialect="kraken",
        keys=((KEY, SECRET),),
        dialect_options=(
            ("api_counter_max", 3),
            ("api_decay_per_s", 0.01),
            ("trading_counter_max", 12),
            ("trading_decay_per_s", 0.01),
        ),
    )
    async with Gateway(cfg) as g, aiohttp.ClientSession() as s:
        raw = Raw(g, s)
        answers = [
            (await raw.send(raw.codec.open_orders(raw.creds, raw.next(), None)))[1]
            for _ in range(4)
        ]
        assert [a.get("error") for a in answers] == [[], [], [], ["EAPI:Rate limit exceeded"]]
        # trading counter: AddOrder +1; cancelling an order younger than 5 s +8
        placed = [(await raw.send(raw.place(f"o{i}")))[1]["result"]["txid"][0] for i in range(2)]
        cancel = raw.codec.cancel(raw.creds, raw.next(), None, placed[0])
        assert (await raw.send(cancel))[1]["result"] == {"count": 1, "pending": False}  # 2 + 8
        cancel = raw.codec.cancel(raw.creds, raw.next(), None, placed[1])
        assert (await raw.send(cancel))[1] == {"error": ["EOrder:Rate limit exceeded"]}  # 18 > 12
        # the order fault answers the call's own rate-limit error
        g.trigger("order_rate_limit")
        assert (await raw.send(raw.place("o9")))[1] == {"error": ["EOrder:Rate limit exceeded"]}
        assert dialect(g).private.refused["rate"] == 2
