"""What the venue-dialect tests (test_dialect_binance.py, test_dialect_okx.py) share: an
in-process gateway serving one dialect, a book seeded from a snapshot and fed deltas, and the
check that a ``disconnect`` fault ended a connection with or without its close frame."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import BookDelta, BookSnapshot

WAIT_S = 10.0  # generous: the machine is shared


@asynccontextmanager
async def dialect_gateway(dialect: str, rate: float, **options: Any) -> AsyncIterator[Gateway]:
    """An in-process gateway (free ports, seed 3) serving ``dialect`` with ``options``."""
    cfg = GatewayConfig(
        port=0,
        admin_port=0,
        seed=3,
        rate=rate,
        dialect=dialect,
        dialect_options=tuple(options.items()),
    )
    async with Gateway(cfg) as gw:
        yield gw


def load(inst: Instrument, snap: BookSnapshot) -> OrderBook:
    book = OrderBook(inst)
    book.load(
        [(inst.price_units(p), inst.size_units(s)) for p, s in snap.bids],
        [(inst.price_units(p), inst.size_units(s)) for p, s in snap.asks],
    )
    return book


def apply(book: OrderBook, d: BookDelta) -> None:
    inst = book.instrument
    book.apply(
        [(inst.price_units(p), inst.size_units(s)) for p, s in d.bids],
        [(inst.price_units(p), inst.size_units(s)) for p, s in d.asks],
    )


async def assert_disconnected(ws: aiohttp.ClientWebSocketResponse, close_frame: bool) -> None:
    """After a ``disconnect`` fault: the data frames end in a 1001 close frame, or (without
    ``close_frame``) the connection just drops."""
    for _ in range(1000):
        msg = await ws.receive(timeout=WAIT_S)
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
    if close_frame:
        assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1001
    else:
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert ws.close_code != 1001
