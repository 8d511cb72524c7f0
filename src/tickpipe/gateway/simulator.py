"""A simulated market for one instrument: a truth order book that moves like a real one.

Each :meth:`MarketSim.step` produces one book delta (the levels it changed, final sizes, ``0`` =
removed) and the trades it printed. What happens in a step:

1. A hidden *fair* price random-walks (Gaussian steps of ``vol_ticks``, weak pull back to the
   start so a long run stays in range).
2. When fair moves through the best ask (bid), an aggressive order walks the book up (down) to
   it: whole levels are taken, each fill is a trade.
3. One random book event: a size change near the top (45 %), a new level in a gap (25 %), a
   level pulled (15 %), or a small market order that walks one to three levels (15 %).
4. The inside is refilled towards fair, and each side is kept about ``depth`` levels deep by
   adding far levels or pulling the farthest.

Books never cross: a new bid is always below the best ask and a new ask above the best bid; a
test checks it over thousands of steps. Everything random comes from the ``random.Random`` the
simulator owns, seeded from ``(seed, symbol)``, so a seed replays the same market.

Prices and sizes are integer units of the instrument (``tick_units``/``lot_units`` multiples).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Literal

from tickpipe.gateway.markets import MarketSpec
from tickpipe.protocol.book import BookSide, OrderBook
from tickpipe.protocol.instruments import Instrument

Side = Literal["buy", "sell"]


@dataclass(frozen=True, slots=True)
class SimTrade:
    """One print: ``price``/``size`` in units, ``side`` is the aggressor's side."""

    price: int
    size: int
    side: Side


@dataclass(slots=True)
class StepResult:
    """What one step changed: ``bids``/``asks`` map price -> new total size (0 = removed)."""

    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    trades: list[SimTrade] = field(default_factory=list)
    prior_bids: dict[int, int] = field(default_factory=dict)  # size before the step
    prior_asks: dict[int, int] = field(default_factory=dict)

    def empty(self) -> bool:
        return not self.bids and not self.asks


class MarketSim:
    """The truth book of one instrument and the random process that moves it.

    - ``depth`` (300): target levels a side; a side drifts within +-20 of it. Cost: memory of
      two dicts and two sorted lists of that many ints; snapshots of the whole book grow with it.
    - ``vol_ticks`` (0.35): standard deviation of the fair price's step, in ticks per step.
    """

    def __init__(
        self, spec: MarketSpec, seed: int, *, depth: int = 300, vol_ticks: float = 0.35
    ) -> None:
        self.spec = spec
        self.instrument: Instrument = spec.instrument
        self.rng = random.Random(f"{seed}:{spec.instrument.symbol}")
        self.book = OrderBook(spec.instrument)
        self.depth = depth
        self.vol_ticks = vol_ticks
        self._tick = spec.instrument.tick_units
        self._lot = spec.instrument.lot_units
        start = spec.instrument.price_units(spec.start_mid) // self._tick
        self._start_k = float(start)
        self.fair = float(start)
        self.last_price = start * self._tick
        self.volume = 0  # size units traded since start
        self._seed_book(start)

    # -- helpers ----------------------------------------------------------------------------
    def _draw_size(self) -> int:
        typical = self.spec.typical_lots
        lots = 1 + int(self.rng.expovariate(1.0 / typical))
        return min(lots, 6 * typical) * self._lot

    def _seed_book(self, mid_k: int) -> None:
        bids: list[tuple[int, int]] = []
        asks: list[tuple[int, int]] = []
        k = mid_k - 1
        while len(bids) < self.depth and k > 0:
            if self.rng.random() < 0.85:
                bids.append((k * self._tick, self._draw_size()))
            k -= 1
        k = mid_k + 1
        while len(asks) < self.depth:
            if self.rng.random() < 0.85:
                asks.append((k * self._tick, self._draw_size()))
            k += 1
        self.book.load(bids, asks)

    @staticmethod
    def _nth(side: BookSide, n: int) -> int:
        """Price of the n-th best level (n clipped to the side's length)."""
        prices = side.prices
        n = min(n, len(prices) - 1)
        return prices[-1 - n] if side.descending else prices[n]

    def _set(self, out: StepResult, is_bid: bool, price: int, size: int) -> None:
        if is_bid:
            out.prior_bids.setdefault(price, self.book.bids.size_at(price))
            self.book.bids.set(price, size)
            out.bids[price] = size
        else:
            out.prior_asks.setdefault(price, self.book.asks.size_at(price))
            self.book.asks.set(price, size)
            out.asks[price] = size

    def _walk(self, out: StepResult, aggressor: Side, size: int, limit_k: float) -> None:
        """An aggressive order of ``size`` units takes levels up (buy) or down (sell) to
        ``limit_k`` (ticks), at most five levels; each fill prints a trade."""
        side = self.book.asks if aggressor == "buy" else self.book.bids
        levels = 0
        while size > 0 and side.prices and levels < 5:
            best = side.prices[0] if aggressor == "buy" else side.prices[-1]
            k = best // self._tick
            if (aggressor == "buy" and k > limit_k) or (aggressor == "sell" and k < limit_k):
                break
            avail = side.levels[best]
            take = min(avail, size)
            self._set(out, aggressor == "sell", best, avail - take)
            out.trades.append(SimTrade(best, take, aggressor))
            self.last_price = best
            self.volume += take
            size -= take
            levels += 1

    # -- one step ---------------------------------------------------------------------------
    def step(self) -> StepResult:
        """Advance the market by one event group; returns the delta and trades it made."""
        rng = self.rng
        book = self.book
        out = StepResult()
        tick = self._tick
        self.fair += rng.gauss(0.0, self.vol_ticks) + 0.0005 * (self._start_k - self.fair)
        self.fair = max(self.fair, 10.0)

        if book.asks.prices and self.fair > book.asks.prices[0] // tick + 0.5:
            self._walk(out, "buy", 10**18, self.fair)
        elif book.bids.prices and self.fair < book.bids.prices[-1] // tick - 0.5:
            self._walk(out, "sell", 10**18, self.fair)

        op = rng.random()
        is_bid = rng.random() < 0.5
        side = book.bids if is_bid else book.asks
        if op < 0.45 and side.prices:
            price = self._nth(side, int(rng.expovariate(1 / 8)))
            self._set(out, is_bid, price, self._draw_size())
        elif op < 0.70 and side.prices:
            best_k = self._nth(side, 0) // tick
            k = best_k - rng.randint(1, 40) if is_bid else best_k + rng.randint(1, 40)
            if k > 0:  # an existing level at k just changes size
                self._set(out, is_bid, k * tick, self._draw_size())
        elif op < 0.85 and len(side) > 5:
            price = self._nth(side, 1 + int(rng.expovariate(1 / 10)))
            self._set(out, is_bid, price, 0)
        else:
            aggressor: Side = "buy" if is_bid else "sell"
            size = max(self._lot, int(self._draw_size() * rng.uniform(0.2, 1.5)))
            size -= size % self._lot
            self._walk(out, aggressor, size, math.inf if is_bid else -math.inf)

        self._refill(out)
        self._keep_depth(out, True)
        self._keep_depth(out, False)
        return out

    def _refill(self, out: StepResult) -> None:
        """Put a level back at the inside when the spread opened away from fair."""
        book, tick = self.book, self._tick
        best_ask_k = book.asks.prices[0] // tick if book.asks.prices else None
        best_bid_k = book.bids.prices[-1] // tick if book.bids.prices else None
        if best_bid_k is None or self.fair - best_bid_k > 1.5:
            k = math.floor(self.fair) - self.rng.randint(0, 1)
            if best_ask_k is not None:
                k = min(k, best_ask_k - 1)
            if k > 0 and (best_bid_k is None or k > best_bid_k):
                self._set(out, True, k * tick, self._draw_size())
                best_bid_k = k
        if best_ask_k is None or best_ask_k - self.fair > 1.5:
            k = math.ceil(self.fair) + self.rng.randint(0, 1)
            if best_bid_k is not None:
                k = max(k, best_bid_k + 1)
            if best_ask_k is None or k < best_ask_k:
                self._set(out, False, k * tick, self._draw_size())

    def _keep_depth(self, out: StepResult, is_bid: bool) -> None:
        side = self.book.bids if is_bid else self.book.asks
        tick = self._tick
        if len(side) > self.depth + 20:
            worst = side.prices[0] if is_bid else side.prices[-1]
            self._set(out, is_bid, worst, 0)
        elif len(side) < self.depth - 20 and side.prices:
            worst_k = (side.prices[0] if is_bid else side.prices[-1]) // tick
            k = worst_k - self.rng.randint(1, 3) if is_bid else worst_k + self.rng.randint(1, 3)
            if k > 0:
                self._set(out, is_bid, k * tick, self._draw_size())
