"""Venue-flood row ``cryptofeed``: the real cryptofeed (3.0.1) Binance feed on the local imitation.

Runs under cryptofeed's own interpreter (a separate venv, never the project's: cryptofeed 3.0.1
needs Python >= 3.13 and pins its own dependencies), given to ``benchmarks/venue_flood.py`` as
``--cryptofeed-python``. Imports only the standard library, cryptofeed and what it installs.

Redirection (cryptofeed's Binance endpoints are class attributes, hard-coded):

- a subclass of ``cryptofeed.exchanges.binance.Binance`` with ``websocket_endpoints`` =
  ``[WebsocketEndpoint("ws://127.0.0.1:PORT")]`` and ``rest_endpoints`` =
  ``[RestEndpoint("http://127.0.0.1:PORT", routes=Routes("/api/v3/exchangeInfo",
  l2book="/api/v3/depth?symbol={}&limit={}"))]``: the same paths as the real ones, on loopback;
- ``WSAsyncConn`` refuses any address not ``wss://``; ``cryptofeed.feed.WSAsyncConn`` (the name
  ``Feed.connect`` builds connections with) is replaced by a subclass that passes the check
  with the ``wss://`` spelling and then connects to the plain ``ws://`` address. Nothing else
  of cryptofeed is touched: its combined-stream reader (websockets), msgspec decoding,
  ``Decimal`` levels, ``order_book`` C books, lazy REST snapshot (``limit=5000``) and U/u
  checks run as shipped.

It runs under ``FeedHandler`` with its default config (uvloop), with ``L2_BOOK`` for every
symbol (``BTC-USDT``...) and one book callback, which counts the deltas applied and watches
``sequence_number``: every book at or past its warm-up id starts the window; every book at its
final id ends it and stops the handler.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import tempfile
import time
from typing import Any, ClassVar

from benchmarks.rows.vf_common import Book, RowArgs, Window, fail, parse_args


def _run(args: RowArgs) -> None:
    import cryptofeed.feed as cf_feed  # type: ignore[import-not-found]
    from cryptofeed import FeedHandler
    from cryptofeed.connection import (  # type: ignore[import-not-found]
        RestEndpoint,
        Routes,
        WebsocketEndpoint,
        WSAsyncConn,
    )
    from cryptofeed.defines import L2_BOOK  # type: ignore[import-not-found]
    from cryptofeed.exchanges.binance import Binance  # type: ignore[import-not-found]

    class PlainWS(WSAsyncConn):  # type: ignore[misc]
        """WSAsyncConn on ``ws://``: its constructor accepts only ``wss://`` addresses."""

        def __init__(self, address: str, conn_id: str, subscription: Any = None, **kw: Any):
            plain = address.startswith("ws://")
            super().__init__(
                "wss://" + address[5:] if plain else address, conn_id, subscription, **kw
            )
            self.address = address

    cf_feed.WSAsyncConn = PlainWS

    class LocalBinance(Binance):  # type: ignore[misc]
        websocket_endpoints: ClassVar[list[Any]] = [WebsocketEndpoint(args.stream_url)]
        rest_endpoints: ClassVar[list[Any]] = [
            RestEndpoint(
                args.rest_url,
                routes=Routes("/api/v3/exchangeInfo", l2book="/api/v3/depth?symbol={}&limit={}"),
            )
        ]

    win = Window(args, "cryptofeed")
    win.extra["version"] = importlib.metadata.version("cryptofeed")
    std = {s: s[:-4] + "-" + s[-4:] for s in win.symbols}  # BTCUSDT -> BTC-USDT (all *USDT)
    warm = {std[s]: w for s, w in win.warm_ids.items()}
    final = {std[s]: f for s, f in win.final_ids.items()}
    seq: dict[str, int] = {}
    obs: dict[str, Any] = {}
    counts = {"callbacks": 0, "deltas": 0}
    fh: Any = None

    async def book(ob: Any, receipt_ts: float) -> None:
        counts["callbacks"] += 1
        if ob.delta is not None:
            counts["deltas"] += 1
        sym = ob.symbol
        n = ob.sequence_number
        seq[sym] = n
        obs[sym] = ob
        if not win.started():
            if len(seq) == len(warm) and all(seq[s] >= w for s, w in warm.items()):
                win.start()
        elif n == final[sym] and all(seq[s] == f for s, f in final.items()):
            win.end()
            fh.request_stop()

    fd, log_file = tempfile.mkstemp(prefix="cf-", suffix=".log")  # cryptofeed's log goes here
    os.close(fd)
    fh = FeedHandler(config={"uvloop": True, "log": {"filename": log_file, "level": "WARNING"}})
    fh.add_feed(
        LocalBinance(
            symbols=list(std.values()),
            channels=[L2_BOOK],
            callbacks={L2_BOOK: book},
        )
    )

    async def bounded() -> None:
        async def stopper() -> None:
            await asyncio.sleep(max(0.0, win.deadline - time.perf_counter()))
            win.extra["timed_out"] = True
            fh.request_stop()

        guard = asyncio.create_task(stopper())
        try:
            await fh.run_async(install_signal_handlers=False)
        finally:
            guard.cancel()

    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(bounded())
    win.extra.update(counts)
    if os.path.getsize(log_file):  # what cryptofeed warned about (gaps, resets) stays there
        win.extra["log"] = log_file
    else:
        os.unlink(log_file)
    books: dict[str, Book] = {}
    for s in win.symbols:
        ob = obs.get(std[s])
        if ob is None:
            continue
        bids, asks = ob.book.bids, ob.book.asks
        b = [[str(p), str(q)] for p, q in (bids.index(i) for i in range(len(bids)))]
        a = [[str(p), str(q)] for p, q in (asks.index(i) for i in range(len(asks)))]
        books[s] = {"seq": seq.get(std[s]), "bids": win.levels(b), "asks": win.levels(a)}
    win.emit(books)


if __name__ == "__main__":
    a = parse_args()
    try:
        _run(a)
    except (OSError, RuntimeError, ImportError) as exc:
        fail("cryptofeed", f"{type(exc).__name__}: {exc}")
