"""A spread-reacting bot: quote inside a wide spread, step back when it narrows.

What it shows a bot author:
- one ``Client`` (one WebSocket) that keeps an exact local book and re-seeds it by itself after
  any gap or reconnect;
- ``client.book_updates()``: an async iterator of books that changed (coalesced, so a slow
  bot sees the latest state instead of falling behind);
- trading only while ``view.usable()`` says the book is synced, fresh and the stream is up;
- placing and cancelling limit orders through the client, so that it knows which orders are
  its own and cancels them by itself when it goes blind (the kill switch).

Run it against the reference gateway (``tickpipe gateway`` in another terminal)::

    .venv/bin/python examples/spread_bot.py --symbol BTC-USD --duration 30

It ends by itself after ``--duration`` seconds, cancels what it still has resting, asks the
gateway how each order it placed ended (filled, cancelled by the bot or by the kill switch)
and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from decimal import Decimal

import aiohttp

from tickpipe import BookView, Client, ClientEvent
from tickpipe.errors import BlindError, RestError


async def tick_size(rest_url: str, symbol: str) -> Decimal:
    """The instrument's price step, from the public ``GET /v1/instruments``."""
    async with aiohttp.ClientSession() as http, http.get(f"{rest_url}/v1/instruments") as r:
        body = await r.json()
    for inst in body["instruments"]:
        if inst["symbol"] == symbol:
            return Decimal(inst["tick_size"])
    raise SystemExit(f"unknown symbol {symbol!r}")


class SpreadBot:
    """Reacts to the spread of one book.

    - spread at least ``min_ticks`` wide: improve it, one buy a tick above the best bid and
      one sell a tick under the best ask;
    - narrower: step back, resting ``back_ticks`` ticks behind the best bid and ask.

    Orders move at most every ``min_requote_s`` seconds a side: every cancel and place is a
    REST call, and a book changes many times a second.
    """

    def __init__(
        self,
        client: Client,
        symbol: str,
        tick: Decimal,
        size: str,
        min_ticks: int = 2,
        back_ticks: int = 3,
        min_requote_s: float = 0.5,
    ) -> None:
        self.client, self.symbol, self.tick, self.size = client, symbol, tick, size
        self.min_ticks, self.back_ticks, self.min_requote_s = min_ticks, back_ticks, min_requote_s
        self.resting: dict[str, tuple[str, Decimal]] = {}  # side -> (order_id, price)
        self.last_move: dict[str, float] = {}  # side -> loop time of the last requote
        self.placed: list[str] = []  # every order id placed, to ask how each one ended
        self.cancelled_by_bot: set[str] = set()
        self.skipped = 0

    async def on_book(self, view: BookView) -> None:
        if not view.usable(max_age_s=2.0):
            # Not synced (a gap, a reconnect) or stale: never act on a book we cannot trust.
            # Resting orders are handled for us: the client cancels them when it goes blind.
            self.skipped += 1
            return
        bid, ask = view.best_bid(), view.best_ask()
        if bid is None or ask is None:
            return
        if (ask[0] - bid[0]) / self.tick >= self.min_ticks:
            buy, sell = bid[0] + self.tick, ask[0] - self.tick  # wide: improve
        else:
            away = self.tick * self.back_ticks  # tight: step back
            buy, sell = bid[0] - away, ask[0] + away
        await self.quote("buy", buy)
        await self.quote("sell", sell)

    async def quote(self, side: str, price: Decimal) -> None:
        current = self.resting.get(side)
        if current is not None and current[1] == price:
            return  # already there
        now = asyncio.get_running_loop().time()
        if now - self.last_move.get(side, -1e9) < self.min_requote_s:
            return  # moved a moment ago: let the book settle
        self.last_move[side] = now
        await self.pull(side)
        try:
            order = await self.client.place_limit_order(self.symbol, side, price, self.size)
        except BlindError:  # the stream is down: the client refuses orders until it is back
            return
        except RestError as exc:  # rejected, rate limited, gateway unreachable: try next time
            print(f"place {side} @ {price} failed: {exc}")
            return
        self.placed.append(order.order_id)
        if order.is_open:
            self.resting[side] = (order.order_id, price)

    async def pull(self, side: str) -> None:
        current = self.resting.pop(side, None)
        if current is None or current[0] not in self.client.own_orders:
            return  # none, or cancelled by the kill switch meanwhile
        try:
            order = await self.client.cancel_order(current[0])
        except RestError:
            return  # the gateway did not answer: the final tally asks again
        # A cancel answers with the order in its final state: "filled" if it filled first,
        # "cancelled" with the gateway's reason ("user" for ours, else the kill switch's).
        if order.status == "cancelled" and order.raw.get("cancel_reason", "user") == "user":
            self.cancelled_by_bot.add(order.order_id)

    async def tally(self) -> dict[str, int]:
        """How every order placed ended, asked of the gateway (the truth, not a guess)."""
        out = {"filled": 0, "cancelled": 0, "open": 0, "unknown": 0}
        for oid in self.placed:
            try:
                status = (await self.client.get_order(oid)).status
            except RestError:
                status = "unknown"
            out[status if status in out else "unknown"] += 1
        return out


class KillSwitchLog:
    """Sums the client's ``orders_cancelled`` events: what its kill switch did in the run."""

    def __init__(self) -> None:
        self.runs = 0
        self.cancelled = 0
        self.failed = 0

    def on_event(self, ev: ClientEvent) -> None:
        if ev.name != "orders_cancelled":
            return
        d = ev.to_dict()
        self.cancelled += len(d["cancelled"])
        if not d.get("background"):  # background reports are retries of an earlier run
            self.runs += 1
            self.failed += len(d["failed"])

    def __str__(self) -> str:
        if self.runs == 0:
            return "kill switch: never triggered"
        return (
            f"kill switch: cancelled {self.cancelled}, failed {self.failed} "
            f"in {self.runs} run{'s' if self.runs != 1 else ''}"
        )


async def main(args: argparse.Namespace) -> None:
    tick = await tick_size(args.rest_url, args.symbol)
    async with Client(args.stream_url, args.rest_url) as client:
        kill_switch = KillSwitchLog()
        client.on_state(kill_switch.on_event)
        await client.subscribe([f"orderbook:{args.symbol}"])
        await client.wait_synced(args.symbol, timeout=10)
        bot = SpreadBot(client, args.symbol, tick, args.size, args.min_ticks, args.back_ticks)
        # Run until --duration is over; book_updates() only yields synced books that changed.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.duration):
                async for view in client.book_updates():
                    if isinstance(view, BookView):  # else an Overflow notice: we lagged
                        await bot.on_book(view)
        for side in list(bot.resting):
            await bot.pull(side)
        ended = await bot.tally()
        by_bot = len(bot.cancelled_by_bot)
        stats = client.stats()
        print(
            f"spread_bot {args.symbol}: placed {len(bot.placed)} orders: {ended['filled']} "
            f"filled, {ended['cancelled']} cancelled ({by_bot} by the bot, "
            f"{ended['cancelled'] - by_bot} by the kill switch), {ended['open']} still open"
            + (f", {ended['unknown']} unknown" if ended["unknown"] else "")
            + f"; skipped {bot.skipped} unusable updates; reconnects {stats.reconnects}, "
            f"resyncs {stats.resyncs}; {kill_switch}"
        )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stream-url", default="ws://127.0.0.1:8765/v1/stream")
    p.add_argument("--rest-url", default="http://127.0.0.1:8765")
    p.add_argument("--symbol", default="BTC-USD")
    p.add_argument("--size", default="0.0010", help="order size (on the lot grid)")
    p.add_argument("--min-ticks", type=int, default=2, help="improve a spread this wide (2)")
    p.add_argument("--back-ticks", type=int, default=3, help="else rest this far back (3)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds to run (default 30)")
    return p.parse_args()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the client closes, no traceback
        asyncio.run(main(parse_args()))
