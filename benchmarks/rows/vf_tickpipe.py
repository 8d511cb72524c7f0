"""Venue-flood row ``tickpipe``: the real ``tickpipe.Client(venue="binance")``, default settings.

``Client(stream_url=WS, rest_url=HTTP, venue="binance")`` (the URLs replace only scheme, host and
port of Binance's; the client appends ``/ws`` and ``/api/v3/...``) subscribes every symbol's
``orderbook:SYMBOL`` and seeds each book from ``/api/v3/depth`` with its own snapshot scheduler,
on the sender's warm-up events; then the window (``vf_common``). Completion is polled every
10 ms (each book's ``seq`` at its final update id): a little CPU the other rows do not pay.

The row reports which hot path ran (``tickpipe.hotpath.describe()``; ``TICKPIPE_PURE=1`` in its
environment forces the pure-Python one), the client's gap and bad-frame counters, and, with
``TICKPIPE_BENCH_PROFILE=PATH``, a cProfile of the window dumped to PATH (slower; hot spots
only). Variants: ``uvloop`` (default) or ``asyncio``.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import time

from benchmarks.rows.vf_common import Book, RowArgs, Window, fail, parse_args
from tickpipe import Client, hotpath
from tickpipe.errors import TickpipeError

POLL_S = 0.01
PROFILE_ENV = "TICKPIPE_BENCH_PROFILE"


async def _main(args: RowArgs) -> None:
    win = Window(args, "tickpipe")
    win.extra["hot_path"] = hotpath.describe()
    books: dict[str, Book] = {}
    try:
        async with Client(stream_url=args.stream_url, rest_url=args.rest_url, venue="binance") as c:
            await c.subscribe([f"orderbook:{s}" for s in win.symbols])
            views = [(c.book(s), win.warm_ids[s], win.final_ids[s]) for s in win.symbols]
            while not all(v.synced and (v.seq or 0) >= w for v, w, _ in views):
                if time.perf_counter() > win.deadline:
                    win.extra["states"] = {
                        s: v.state for s, (v, _, _) in zip(win.symbols, views, strict=True)
                    }
                    return
                await asyncio.sleep(POLL_S)
            m = c.metrics
            f0, gaps0, bad0 = m.frames, sum(m.gaps.values()), m.bad_frames
            prof = cProfile.Profile() if os.environ.get(PROFILE_ENV) else None
            if prof is not None:
                prof.enable()
            win.start()
            while not all(v.seq == f for v, _, f in views):
                if time.perf_counter() > win.deadline:
                    break
                await asyncio.sleep(POLL_S)
            else:
                win.end()
            if prof is not None:
                prof.disable()
                prof.dump_stats(os.environ[PROFILE_ENV])
            win.extra.update(
                client_frames=m.frames - f0,
                gaps=sum(m.gaps.values()) - gaps0,
                bad_frames=m.bad_frames - bad0,
                snapshot_requests=m.snapshot_requests,
            )
            for s, (v, _, _) in zip(win.symbols, views, strict=True):
                bids, asks = v.text_levels(None)
                books[s] = {
                    "seq": v.seq if v.synced else None,
                    "bids": win.levels(bids),
                    "asks": win.levels(asks),
                }
    finally:
        win.emit(books)


if __name__ == "__main__":
    a = parse_args()
    try:
        if a.variant in ("", "uvloop"):
            import uvloop

            uvloop.run(_main(a))
        else:
            asyncio.run(_main(a))
    except (OSError, RuntimeError, TickpipeError) as exc:
        fail("tickpipe", f"{type(exc).__name__}: {exc}")
