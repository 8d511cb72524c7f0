"""Orders (VTS/1 section 7): limit orders that rest and fill when the simulated market trades
through their price.

Fill rule (the gateway's choice, in docs/protocol.md): a resting buy at price P fills against
every simulated sell print at a price <= P, up to that print's size; a sell at P against buy
prints >= P. Orders at better prices fill first, then older orders. An order that is marketable
when placed (a buy at or above the best ask) fills at once against the displayed levels up to
its price. Client orders never change the public book: the simulated market is the same with
or without them, which keeps ``--seed`` replays exact.

``client_order_id`` is unique per key: posting one that the key already used returns the same
order (HTTP 200), never a second one, whatever the rest of the body says. Only the last
``finished_per_key`` finished (filled or cancelled) orders of a key are kept: older ones, and
their ``client_order_id``, are forgotten, so memory stays bounded however many orders a key
places and cancels.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from tickpipe.gateway.logs import log_event
from tickpipe.gateway.simulator import SimTrade
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument

OrderSide = Literal["buy", "sell"]
OrderStatus = Literal["open", "filled", "cancelled"]


@dataclass(slots=True)
class Order:
    order_id: str
    client_order_id: str
    key: str
    instrument: Instrument
    side: OrderSide
    price: int
    size: int
    filled: int = 0
    status: OrderStatus = "open"
    created_ns: int = 0
    updated_ns: int = 0
    cancel_reason: str | None = None

    @property
    def remaining(self) -> int:
        return self.size - self.filled

    def to_json(self) -> dict[str, Any]:
        inst = self.instrument
        return {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "symbol": inst.symbol,
            "side": self.side,
            "type": "limit",
            "price": inst.format_price(self.price),
            "size": inst.format_size(self.size),
            "filled_size": inst.format_size(self.filled),
            "remaining_size": inst.format_size(self.remaining),
            "status": self.status,
            "created_ts": self.created_ns,
            "updated_ts": self.updated_ns,
            "cancel_reason": self.cancel_reason,
        }


class OrderDesk:
    """Every key's orders. ``max_open_per_key`` (1,000): open orders a key may have; bounds
    the fill scan per trade. ``finished_per_key`` (1,000): finished orders kept per key, the
    oldest finished forgotten first (with their ``client_order_id``)."""

    def __init__(self, max_open_per_key: int = 1_000, finished_per_key: int = 1_000) -> None:
        self.max_open_per_key = max_open_per_key
        self.finished_per_key = finished_per_key
        self.forgotten = 0
        self._finished: dict[str, deque[str]] = {}  # key -> order ids, oldest finished first
        self._orders: dict[str, Order] = {}
        self._by_client_id: dict[tuple[str, str], Order] = {}
        self._open: dict[str, dict[str, Order]] = {}  # symbol -> order_id -> order
        self._next = 0
        self.fills = 0

    # -- queries ----------------------------------------------------------------------------
    def get(self, key: str, order_id: str) -> Order | None:
        o = self._orders.get(order_id)
        return o if o is not None and o.key == key else None

    def by_client_id(self, key: str, client_order_id: str) -> Order | None:
        return self._by_client_id.get((key, client_order_id))

    def find(self, key: str, status: str | None, symbol: str | None) -> list[Order]:
        return [
            o
            for o in self._orders.values()
            if o.key == key
            and (status is None or o.status == status)
            and (symbol is None or o.instrument.symbol == symbol)
        ]

    def open_count(self, key: str) -> int:
        return sum(1 for by_id in self._open.values() for o in by_id.values() if o.key == key)

    def counts(self) -> dict[str, int]:
        out = {
            "total": len(self._orders),
            "open": 0,
            "filled": 0,
            "cancelled": 0,
            "fills": self.fills,
            "forgotten": self.forgotten,
        }
        for o in self._orders.values():
            out[o.status] += 1
        return out

    # -- changes ----------------------------------------------------------------------------
    def place(
        self,
        key: str,
        instrument: Instrument,
        side: OrderSide,
        price: int,
        size: int,
        client_order_id: str | None,
        book: OrderBook,
    ) -> Order:
        """A new open order (filled at once as far as it is marketable against ``book``)."""
        self._next += 1
        now = time.time_ns()
        order = Order(
            order_id=f"O{self._next}",
            client_order_id=client_order_id or f"auto-{self._next}",
            key=key,
            instrument=instrument,
            side=side,
            price=price,
            size=size,
            created_ns=now,
            updated_ns=now,
        )
        self._orders[order.order_id] = order
        self._by_client_id[(key, order.client_order_id)] = order
        self._open.setdefault(instrument.symbol, {})[order.order_id] = order
        log_event(
            "order_placed",
            order=order.order_id,
            key=key,
            symbol=instrument.symbol,
            side=side,
            price=instrument.format_price(price),
            size=instrument.format_size(size),
        )
        self._fill_marketable(order, book)
        return order

    def _fill_marketable(self, order: Order, book: OrderBook) -> None:
        if order.side == "buy":
            levels = book.asks.top(50)
            crosses = [(p, s) for p, s in levels if p <= order.price]
        else:
            levels = book.bids.top(50)
            crosses = [(p, s) for p, s in levels if p >= order.price]
        for price, size in crosses:
            if order.status != "open":
                break
            self._fill(order, min(size, order.remaining), price)

    def _fill(self, order: Order, amount: int, price: int) -> None:
        if amount <= 0:
            return
        order.filled += amount
        order.updated_ns = time.time_ns()
        self.fills += 1
        inst = order.instrument
        finished = False
        if order.remaining <= 0:
            order.status = "filled"
            self._open.get(inst.symbol, {}).pop(order.order_id, None)
            finished = True
        log_event(
            "order_fill",
            order=order.order_id,
            key=order.key,
            symbol=inst.symbol,
            price=inst.format_price(price),
            size=inst.format_size(amount),
            status=order.status,
        )
        if finished:
            self._finish(order)

    def _finish(self, order: Order) -> None:
        """Record a finished order; forget the key's oldest finished beyond the cap."""
        q = self._finished.setdefault(order.key, deque())
        q.append(order.order_id)
        while len(q) > self.finished_per_key:
            old = self._orders.pop(q.popleft(), None)
            if old is not None:
                self._by_client_id.pop((old.key, old.client_order_id), None)
                self.forgotten += 1

    def on_trades(self, symbol: str, trades: Iterable[SimTrade]) -> None:
        """Fill resting orders the market traded through (see the module docstring)."""
        book = self._open.get(symbol)
        if not book:
            return
        for t in trades:
            if t.side == "sell":  # sellers hit bids: fills buys at price >= print
                eligible = [o for o in book.values() if o.side == "buy" and o.price >= t.price]
                eligible.sort(key=lambda o: (-o.price, o.created_ns))
            else:
                eligible = [o for o in book.values() if o.side == "sell" and o.price <= t.price]
                eligible.sort(key=lambda o: (o.price, o.created_ns))
            left = t.size
            for o in eligible:
                if left <= 0:
                    break
                take = min(left, o.remaining)
                self._fill(o, take, o.price)
                left -= take

    def cancel(self, order: Order, reason: str = "user") -> Order:
        """Cancel one order if still open; returns it (in its final state either way)."""
        if order.status == "open":
            order.status = "cancelled"
            order.cancel_reason = reason
            order.updated_ns = time.time_ns()
            self._open.get(order.instrument.symbol, {}).pop(order.order_id, None)
            log_event("order_cancelled", order=order.order_id, key=order.key, reason=reason)
            self._finish(order)
        return order

    def cancel_all(self, key: str, symbol: str | None = None, reason: str = "user") -> list[str]:
        """Cancel every open order of ``key`` (on ``symbol`` only when given); their ids."""
        victims = [
            o
            for sym, by_id in self._open.items()
            if symbol is None or sym == symbol
            for o in by_id.values()
            if o.key == key
        ]
        for o in victims:
            self.cancel(o, reason)
        if reason != "user" and victims:
            log_event(
                "cancel_all",
                level=logging.WARNING,
                key=key,
                reason=reason,
                cancelled=[o.order_id for o in victims],
            )
        return [o.order_id for o in victims]
