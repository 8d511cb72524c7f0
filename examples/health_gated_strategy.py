"""A strategy that only acts on books it can trust: gated by ``BookView.usable()``.

What it shows a bot author:
- ``view.usable(max_age_s=...)`` is the one question to ask before trading: the book is synced
  (known to equal the gateway's at its seq), not silent, the stream is up, and it changed
  within ``max_age_s``. ``view.state`` / ``view.reason`` say why not (``resyncing`` after a
  ``seq_gap``, ``stale`` after a ``disconnected``...);
- a periodic decision loop (here: every 200 ms) instead of reacting to every delta;
- counting how long the gate was closed: the time the bot would have traded on a wrong book
  without it.

Run it against the reference gateway (try ``tickpipe gateway --faults flaky``)::

    .venv/bin/python examples/health_gated_strategy.py --duration 20

It exits 0 after ``--duration`` seconds and prints, per book, how often it was usable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections import Counter

from tickpipe import Client

SYMBOLS = ("ETH-USD", "MSFT", "XAU-USD", "EUR-USD")


def decide(mid_now: float, mid_before: float | None) -> str:
    """A toy signal: follow a move of more than 1 bp. Replace with your own."""
    if mid_before is None:
        return "wait"
    move = (mid_now - mid_before) / mid_before
    return "buy" if move > 1e-4 else "sell" if move < -1e-4 else "hold"


async def main(args: argparse.Namespace) -> None:
    async with Client(args.stream_url, args.rest_url) as client:
        await client.subscribe([f"orderbook:{s}" for s in SYMBOLS])
        usable, blocked = Counter[str](), Counter[str]()
        why_blocked: Counter[tuple[str, str]] = Counter()
        signals: Counter[str] = Counter()
        last_mid: dict[str, float] = {}
        loop = asyncio.get_running_loop()
        end = loop.time() + args.duration
        while loop.time() < end:
            for symbol in SYMBOLS:
                view = client.book(symbol)
                # The gate: never decide on a book that is resyncing, stale or old.
                if not view.usable(max_age_s=args.max_age):
                    blocked[symbol] += 1
                    why_blocked[(view.state, view.reason)] += 1
                    last_mid.pop(symbol, None)  # a gap breaks the price history too
                    continue
                usable[symbol] += 1
                bid, ask = view.best_bid(), view.best_ask()
                if bid is None or ask is None:
                    continue
                mid = float((bid[0] + ask[0]) / 2)
                signals[decide(mid, last_mid.get(symbol))] += 1
                last_mid[symbol] = mid
            await asyncio.sleep(0.2)
        for symbol in SYMBOLS:
            total = usable[symbol] + blocked[symbol]
            print(f"{symbol:8} usable {usable[symbol]}/{total} checks")
        print(f"blocked because: {dict(why_blocked)}")
        print(f"signals: {dict(signals)}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stream-url", default="ws://127.0.0.1:8765/v1/stream")
    p.add_argument("--rest-url", default="http://127.0.0.1:8765")
    p.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    p.add_argument("--max-age", type=float, default=2.0, help="freshest acceptable book (s)")
    return p.parse_args()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse_args()))
