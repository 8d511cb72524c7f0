"""The demo's small built-in strategy: resting limit orders for the kill switch to protect.

Every ``requote_s`` it looks at each of its books. While a book is usable (synced and fresh,
``BookView.usable(max_age_s)``) it cancels its previous pair of orders there and rests a new
buy ``ticks_away`` ticks under the best bid and a new sell as far over the best ask, one lot
each: far enough from the top not to fill in the simulator, close enough to look real. When a
book is not usable it does nothing there: it does not cancel, because going blind is exactly
when the client's kill switch (VTS/1 section 8) cancels the orders, and the dashboard shows what
it cancelled. Once the book is usable again the strategy re-quotes.

It is deliberately simple and never raises: REST failures are counted, shown and retried at the
next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from tickpipe.cli.dashboard_model import StrategyRow
from tickpipe.errors import RestError, TickpipeError
from tickpipe.protocol.instruments import Instrument


class _BookView(Protocol):
    def usable(self, max_age_s: float = ...) -> bool: ...
    def bids(self, n: int = ...) -> list[tuple[Decimal, Decimal]]: ...
    def asks(self, n: int = ...) -> list[tuple[Decimal, Decimal]]: ...


class _Order(Protocol):
    @property
    def order_id(self) -> str: ...


class OrderingClient(Protocol):
    """What the strategy needs from :class:`tickpipe.Client`."""

    def book(self, symbol: str) -> Any: ...
    async def place_limit_order(
        self, symbol: str, side: str, price: Any, size: Any, client_order_id: str | None = ...
    ) -> Any: ...
    async def cancel_order(self, order_id: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """Knobs of the demo strategy.

    - ``ticks_away`` (20): distance of each order from the top of the book, in ticks.
    - ``lots`` (1): order size in lots of the instrument.
    - ``requote_s`` (2.0 s): how often orders are cancelled and placed again; each requote is
      four REST calls a book (two cancels, two places).
    - ``max_age_s`` (3.0 s): a book older than this (no delta applied) counts as not usable.
    """

    ticks_away: int = 20
    lots: int = 1
    requote_s: float = 2.0
    max_age_s: float = 3.0


class DemoStrategy:
    """Quotes ``symbols`` through ``client``; ``row()`` describes it for the dashboard."""

    def __init__(
        self,
        client: OrderingClient,
        symbols: Sequence[str],
        instruments: Mapping[str, Instrument],
        config: StrategyConfig | None = None,
    ) -> None:
        self.client = client
        self.symbols = [s for s in symbols if s in instruments]
        self.instruments = instruments
        self.config = config or StrategyConfig()
        self.resting: dict[str, list[str]] = {s: [] for s in self.symbols}
        self.placed = 0
        self.cancelled = 0
        self.errors = 0
        self.last_error = ""
        self.status = "starting"

    def row(self) -> StrategyRow:
        return StrategyRow(
            enabled=True,
            status=self.status,
            open_orders=sum(len(v) for v in self.resting.values()),
            placed=self.placed,
            cancelled=self.cancelled,
            errors=self.errors,
            last_error=self.last_error,
        )

    async def run(self) -> None:
        """Quote until cancelled."""
        while True:
            await self.step()
            await asyncio.sleep(self.config.requote_s)

    async def step(self) -> None:
        """One requote pass over every book."""
        self._forget_cancelled()
        paused: list[str] = []
        for symbol in self.symbols:
            view = self.client.book(symbol)
            if not view.usable(max_age_s=self.config.max_age_s):
                paused.append(symbol)
                continue
            await self._requote(symbol, view)
        if not self.symbols:
            self.status = "no instruments"
        elif len(paused) == len(self.symbols):
            self.status = "paused: no usable book"
        elif paused:
            self.status = f"quoting; paused {', '.join(paused)}"
        else:
            self.status = f"quoting {len(self.symbols)} books"

    def _forget_cancelled(self) -> None:
        """Drop orders the client no longer holds as open (the kill switch cancelled them)."""
        own = getattr(self.client, "own_orders", None)
        if not isinstance(own, Mapping):
            return
        for symbol, ids in self.resting.items():
            self.resting[symbol] = [i for i in ids if i in own]

    async def _requote(self, symbol: str, view: _BookView) -> None:
        bids, asks = view.bids(1), view.asks(1)
        if not bids or not asks:
            return
        inst = self.instruments[symbol]
        tick = inst.price_decimal(inst.tick_units)
        size = inst.size_decimal(inst.lot_units * self.config.lots)
        away = tick * self.config.ticks_away
        buy_px = bids[0][0] - away
        sell_px = asks[0][0] + away
        for order_id in self.resting[symbol]:
            await self._cancel(order_id)
        self.resting[symbol] = []
        for side, px in (("buy", buy_px), ("sell", sell_px)):
            if px <= 0:
                continue
            try:
                order = await self.client.place_limit_order(symbol, side, px, size)
            except (RestError, TickpipeError, OSError) as exc:
                self._error(f"place {symbol} {side}: {exc}")
                continue
            self.placed += 1
            if getattr(order, "status", "open") not in ("cancelled", "filled", "rejected"):
                self.resting[symbol].append(str(order.order_id))

    async def _cancel(self, order_id: str) -> None:
        try:
            order = await self.client.cancel_order(order_id)
        except RestError as exc:
            if exc.status != 404:  # 404: already gone (the kill switch got there first)
                self._error(f"cancel {order_id}: {exc}")
            return
        except (TickpipeError, OSError) as exc:
            self._error(f"cancel {order_id}: {exc}")
            return
        if getattr(order, "status", "cancelled") == "cancelled":
            self.cancelled += 1

    def _error(self, text: str) -> None:
        self.errors += 1
        self.last_error = text[:120]

    async def stop(self) -> None:
        """Cancel what is still resting (best effort: the demo is shutting down)."""
        for symbol, ids in self.resting.items():
            for order_id in ids:
                with contextlib.suppress(TickpipeError, OSError, TimeoutError):
                    await asyncio.wait_for(self.client.cancel_order(order_id), 2.0)
            self.resting[symbol] = []
