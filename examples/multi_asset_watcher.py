"""Watch books, tickers and trades across asset classes on ONE connection, with async iterators.

What it shows a bot author:
- one ``subscribe`` call mixing crypto, equities, metals and FX, multiplexed on one socket;
- three independent consumers, each an ``async for`` over its own bounded feed:
  ``client.book_updates()`` (synced books that changed, coalesced), ``client.trades()`` and
  ``client.events()`` (connection and sync events: gaps, stale, reconnects, ...);
- a slow consumer never stalls the socket: feeds are bounded and report what they dropped.

Run it against the reference gateway (``tickpipe gateway`` in another terminal)::

    .venv/bin/python examples/multi_asset_watcher.py --duration 20

It prints a line a second per book, every trade and every event, and exits 0 after
``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

from tickpipe import BookView, Client, TradeUpdate

SYMBOLS = {"crypto": "BTC-USD", "equity": "AAPL", "metal": "XAU-USD", "fx": "EUR-USD"}


async def watch_books(client: Client) -> None:
    """Top of each book, at most once a second per book (the feed itself is coalesced)."""
    last_print: dict[str, float] = {}
    async for view in client.book_updates():
        if not isinstance(view, BookView):  # an Overflow notice: we lagged, nothing lost here
            continue
        now = time.monotonic()
        if now - last_print.get(view.symbol, 0.0) < 1.0:
            continue
        last_print[view.symbol] = now
        bid, ask = view.best_bid(), view.best_ask()
        if bid and ask:
            print(f"book   {view.symbol:8} {bid[0]} / {ask[0]}  seq {view.seq}")


async def watch_trades(client: Client) -> None:
    async for trade in client.trades():
        if isinstance(trade, TradeUpdate):
            print(f"trade  {trade.channel:16} {trade.side:4} {trade.size} @ {trade.price}")


async def watch_events(client: Client) -> None:
    """Gaps, staleness and reconnects: what a bot must know before it trusts a price."""
    async for ev in client.events():
        print(f"event  {ev.to_dict()}")


async def main(args: argparse.Namespace) -> None:
    async with Client(args.stream_url, args.rest_url) as client:
        channels = [f"orderbook:{s}" for s in SYMBOLS.values()]
        channels += [f"trades:{SYMBOLS['crypto']}", f"trades:{SYMBOLS['metal']}"]
        result = await client.subscribe(channels)
        print(f"subscribed: {result}")
        consumers = [
            asyncio.create_task(watch_books(client)),
            asyncio.create_task(watch_trades(client)),
            asyncio.create_task(watch_events(client)),
        ]
        await asyncio.sleep(args.duration)
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        for asset_class, symbol in SYMBOLS.items():
            view = client.book(symbol)
            print(f"final  {asset_class:6} {symbol:8} state={view.state} seq={view.seq}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stream-url", default="ws://127.0.0.1:8765/v1/stream")
    p.add_argument("--rest-url", default="http://127.0.0.1:8765")
    p.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    return p.parse_args()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse_args()))
