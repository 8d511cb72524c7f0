"""Live smoke test against a real venue: .venv/bin/python examples/live_smoke.py VENUE SYMBOL.

For users with internet: connects to the venue's public market data (``Client(venue=...)``,
TLS verified against the system's CA store), subscribes ``orderbook:SYMBOL`` and
``ticker:SYMBOL`` in the venue's own symbols (binance, binance-usdm, bybit: BTCUSDT; okx:
BTC-USDT; kraken: BTC/USD; coinbase: BTC-USD), and prints the
book's health and top of book once a second for ``--duration`` seconds (default 30). Exit 0 when
the book synced at least once, 1 when it never did, 2 on a usage error.

NOT run in CI (it needs the internet and the venue's good will). The test suite only checks its
arguments and runs it offline against ``tickpipe gateway --dialect binance`` through
``--stream-url`` / ``--rest-url`` (scheme, host and port only; the venue's paths are appended).

    .venv/bin/python examples/live_smoke.py binance BTCUSDT --duration 30
    .venv/bin/python examples/live_smoke.py kraken BTC/USD
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from tickpipe import Client
from tickpipe.errors import ConfigError, StreamError
from tickpipe.venues.registry import VENUES


async def smoke(args: argparse.Namespace) -> int:
    book_ch = f"orderbook:{args.symbol}"
    client = Client(
        venue=args.venue,
        stream_url=args.stream_url,
        rest_url=args.rest_url,
        ca_file=args.ca_file,
    )
    synced_once = False
    deadline = time.monotonic() + args.duration
    try:
        async with asyncio.timeout(args.duration + 10.0):  # bounded even if connecting hangs
            async with client:
                res = await client.subscribe([book_ch, f"ticker:{args.symbol}"])
                if book_ch not in res.accepted:
                    print(f"refused: {res.refused}", file=sys.stderr)
                    return 1
                while time.monotonic() < deadline:
                    view = client.book(args.symbol)
                    synced_once = synced_once or view.synced
                    st = client.stats()
                    print(
                        f"{time.strftime('%H:%M:%S')} {book_ch} state={view.state} "
                        f"usable={view.usable()} seq={view.seq} bid={view.best_bid()} "
                        f"ask={view.best_ask()} conn={st.connection} gaps={sum(st.gaps.values())} "
                        f"snapshots={st.snapshot_requests} 429s={st.snapshot_429}",
                        flush=True,
                    )
                    await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    except (StreamError, TimeoutError, ConfigError) as exc:
        print(f"live_smoke: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"live_smoke: {book_ch} {'synced' if synced_once else 'NEVER synced'}", flush=True)
    return 0 if synced_once else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Connect to a real venue, print book health for --duration seconds; exit 1 "
        "if the book never synced. Needs the internet; not run in CI."
    )
    p.add_argument("venue", choices=[v for v in VENUES if v != "vts"])
    p.add_argument("symbol", help="the venue's own symbol: BTCUSDT (binance), BTC-USDT (okx)")
    p.add_argument("--duration", type=float, default=30.0, metavar="SECONDS")
    p.add_argument("--stream-url", default=None, help="scheme://host:port (default: the venue's)")
    p.add_argument("--rest-url", default=None, help="scheme://host:port (default: the venue's)")
    p.add_argument("--ca-file", default=None, metavar="PEM", help="trust these CAs only")
    args = p.parse_args(argv)
    if not 0 < args.duration <= 3600:
        p.error(f"--duration must be in (0, 3600] seconds, got {args.duration}")
    try:
        return asyncio.run(smoke(args))
    except ConfigError as exc:
        p.error(str(exc))
    return 2


if __name__ == "__main__":
    sys.exit(main())
