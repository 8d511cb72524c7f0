"""Orders through the client against the real gateway's desk: signed REST, typed errors."""

from __future__ import annotations

import pytest

from tests.integration.conftest import make_client
from tickpipe.errors import ConfigError, RestError, UnknownOrderError
from tickpipe.gateway import Gateway


async def test_place_list_cancel_cancel_all(gw: Gateway) -> None:
    async with make_client(gw) as client:
        o1 = await client.place_limit_order("AAPL", "buy", "100.00", "5")
        o2 = await client.place_limit_order("AAPL", "sell", "999.00", "1")
        o3 = await client.place_limit_order("MSFT", "buy", "1.00", "2")
        assert o1.order_id and o1.status == "open" and o1.price == "100.00" and o1.size == "5"
        assert set(client.own_orders) == {o1.order_id, o2.order_id, o3.order_id}
        listed = await client.open_orders()
        assert {o.order_id for o in listed} == {o1.order_id, o2.order_id, o3.order_id}
        assert {o.order_id for o in await client.open_orders("MSFT")} == {o3.order_id}
        cancelled = await client.cancel_order(o1.order_id)
        assert cancelled.status == "cancelled" and o1.order_id not in client.own_orders
        ids = await client.cancel_all_orders()
        assert sorted(ids) == sorted([o2.order_id, o3.order_id])
        assert client.own_orders == {} and await client.open_orders() == []


async def test_client_order_id_is_idempotent(gw: Gateway) -> None:
    async with make_client(gw) as client:
        a = await client.place_limit_order("AAPL", "buy", "100.00", "1", client_order_id="bot-1")
        b = await client.place_limit_order("AAPL", "buy", "100.00", "1", client_order_id="bot-1")
        assert a.order_id == b.order_id and a.client_order_id == "bot-1"
        assert len(await client.open_orders()) == 1


async def test_order_errors_are_typed_and_named(gw: Gateway) -> None:
    async with make_client(gw) as client:
        with pytest.raises(UnknownOrderError) as unknown:
            await client.cancel_order("O-nope")
        assert unknown.value.status == 404 and unknown.value.code == "unknown_order"
        with pytest.raises(RestError) as off_grid:
            await client.place_limit_order("AAPL", "buy", "100.001", "1")
        assert off_grid.value.status == 400 and "price" in str(off_grid.value)
        with pytest.raises(ConfigError, match="side"):
            await client.place_limit_order("AAPL", "hold", "1.00", "1")
        assert client.own_orders == {}


async def test_bad_secret_is_401_on_orders_but_market_data_is_public(gw: Gateway) -> None:
    async with make_client(gw) as client:
        client._rest._secret = "wrong"  # the stream is authenticated; REST signing now fails
        with pytest.raises(RestError) as exc:
            await client.place_limit_order("AAPL", "buy", "1.00", "1")
        assert exc.value.status == 401
        insts = await client._rest.instruments()
        assert any(i.symbol == "AAPL" for i in insts)
