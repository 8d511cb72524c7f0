"""Row 5: the real ``tickpipe.Client``, end to end, default hot-path settings.

Socket -> decode -> sequencing -> synced book, with checksums verified (``SyncConfig``
default), gap checks and metrics on: the client's own code path, nothing bypassed. The client
authenticates, arms ``cancel_on_disconnect``, subscribes to all 200 channels and seeds its 150
books from the sender's REST snapshots; the window opens once every book is synced.

Settings that differ from the defaults, and why (none is on the per-frame path):

- ``snapshot_rate_per_s=1000``, ``snapshot_burst=200``, ``snapshot_concurrency=16``,
  ``snapshot_jitter_s=0``: the default scheduler (8/s) would spend ~20 s seeding 150 books
  before each run; the snapshot fetch is not what is measured.
- ``client.metrics.latency`` is swapped for a ``LatencyWindow`` holding every sample of the run
  (the default ring keeps the last 8,192): same per-frame cost (one store into an ``array``),
  but p99.9 over the whole run, like the other rows.

At the end every book is checked against the truth: its top 10, read through the public
``BookView``, must give the CRC-32 that the stream's last delta for it carried
(``books_equal_truth``, out of 150).

Completion is polled every 10 ms: ``metrics.frames`` has grown by the frames sent and every
book's ``seq`` is the stream's last. The polling costs the row a little CPU the other rows do
not pay, so the row's figures are, if anything, pessimistic.

``TICKPIPE_BENCH_TRACEMALLOC=1`` adds the 8 allocation sites that grew most in the window
(``grown``; slow, for leak hunting only). ``TICKPIPE_BENCH_PROFILE=PATH`` profiles the window
with cProfile (slower; for hot spots only).

Variants: ``uvloop`` (default: what a latency-minded user runs) or ``asyncio`` (stock loop).
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import time
import tracemalloc
import zlib

from benchmarks.rows.common import KEY, SECRET, Run, fail, parse_args, rss_mb
from tickpipe import Client, ClientConfig
from tickpipe.client.metrics import LatencyWindow
from tickpipe.errors import TickpipeError
from tickpipe.protocol.instruments import Instrument, decimals_of
from tickpipe.protocol.sync import BookSync, DeltaResult

POLL_S = 0.01  # each wake-up costs CPU on this VM; 10 ms is 0.3 % of a 3 s window
TRACEMALLOC_ENV = "TICKPIPE_BENCH_TRACEMALLOC"  # set: report what grew in the window (slow)
PROFILE_ENV = "TICKPIPE_BENCH_PROFILE"  # a path: cProfile the window and dump the stats there
SETUP_CONFIG = ClientConfig(
    snapshot_rate_per_s=1000.0, snapshot_burst=200, snapshot_concurrency=16, snapshot_jitter_s=0.0
)


def checksum_is_verified(config: ClientConfig) -> bool:
    """Guard: does the core, as it is on disk now, reject a delta with a wrong checksum?

    A figure measured with verification off does not count (issue 7); the row reports this
    and ``run_all`` flags the row when it is False.
    """
    inst = Instrument("GUARD", "crypto", "0.01", "1")
    bs = BookSync("orderbook:GUARD", inst, lambda: 0.5, config.sync)
    bs.start()
    bs.on_snapshot(bs.epoch, 10, [(100, 1)], [(101, 1)])
    good = zlib.crc32(b"1.00:1:1.01:1")
    bad = (good + 1) & 0xFFFFFFFF
    applied = bs.on_delta(11, [(100, 1)], [], good) is DeltaResult.APPLIED
    return applied and bs.on_delta(12, [(100, 1)], [], bad) is DeltaResult.GAP


def books_equal_truth(run: Run, client: Client, truth: dict[str, int]) -> int:
    """How many books end equal to the sender's at the last seq (top 10 through the public
    ``BookView``, checked against the CRC-32 the last delta carried)."""
    decimals = {
        i["symbol"]: (decimals_of(i["tick_size"]), decimals_of(i["lot_size"]))
        for i in run.snap.instruments
    }
    ok = 0
    for ch, want in truth.items():
        sym = ch.partition(":")[2]
        pd, sd = decimals[sym]
        view = client.book(sym)
        bids, asks = view.bids(10), view.asks(10)
        parts = []
        for i in range(max(len(bids), len(asks))):
            for side in (bids, asks):
                if i < len(side):
                    p, s = side[i]
                    parts.append(f"{p:.{pd}f}:{s:.{sd}f}")
        ok += view.synced and zlib.crc32(":".join(parts).encode()) == want
    return ok


async def _main(run: Run) -> None:
    args = run.args
    snap = run.snap
    symbols = [ch.partition(":")[2] for ch in snap.book_channels]
    run.extra["checksum_verified"] = checksum_is_verified(SETUP_CONFIG)
    async with Client(args.stream_url, args.rest_url, KEY, SECRET, config=SETUP_CONFIG) as client:
        t = time.perf_counter()
        await client.subscribe(snap.channels)
        for sym in symbols:
            await client.wait_synced(sym, timeout=60)
        run.extra["sync_s"] = round(time.perf_counter() - t, 2)
        m = client.metrics
        m.latency = LatencyWindow(size=max(args.frames, 1))
        run.setup_done()
        base = m.frames
        gaps0 = sum(m.gaps.values())
        prof = cProfile.Profile() if os.environ.get(PROFILE_ENV) else None
        traced = bool(os.environ.get(TRACEMALLOC_ENV))
        if traced:
            tracemalloc.start(8)
            snap0 = tracemalloc.take_snapshot()
        info = run.begin()
        if prof is not None:
            prof.enable()
        expected = int(info["frames"])
        last_seqs: dict[str, int] = info["last_seqs"]
        deadline = time.perf_counter() + args.timeout_s
        views = [(client.book(s), last_seqs[f"orderbook:{s}"]) for s in symbols]
        rss_trace: list[tuple[int, float]] = []
        next_rss = 0.0
        while True:
            now = time.perf_counter()
            if now >= next_rss:  # RSS against frames applied, ~4 times a second
                rss_trace.append((m.frames - base, round(rss_mb(), 2)))
                next_rss = now + 0.25
            if m.frames - base >= expected and all(v.seq == want for v, want in views):
                break
            if time.perf_counter() > deadline:
                run.extra["timed_out"] = True
                break
            await asyncio.sleep(POLL_S)
        run.end()
        if traced:
            grown = tracemalloc.take_snapshot().compare_to(snap0, "traceback")
            tracemalloc.stop()
            run.extra["grown"] = [
                (f"{st.size_diff / 1e6:.2f} MB", st.count_diff, str(st.traceback.format()[-4:]))
                for st in grown[:8]
            ]
        if prof is not None:
            prof.disable()
            prof.dump_stats(os.environ[PROFILE_ENV])
        run.received = m.frames - base
        run.gaps = sum(m.gaps.values()) - gaps0
        run.errors = m.bad_frames + m.unexpected_frames
        run.extra["synced_books"] = sum(1 for v, _ in views if v.synced)
        run.extra["books_checked"] = len(info["last_checksums"])
        run.extra["books_equal_truth"] = books_equal_truth(run, client, info["last_checksums"])
        run.extra["rss_trace"] = rss_trace
        if run.rate_mode:
            run.lat.extend(int(x * 1e6) for x in m.latency.values())


if __name__ == "__main__":
    a = parse_args(variants=("uvloop", "asyncio"))
    r = Run.load("tickpipe", a)
    try:
        if a.variant == "uvloop":
            import uvloop

            uvloop.run(_main(r))
        else:
            asyncio.run(_main(r))
    except (OSError, RuntimeError, TickpipeError) as exc:
        fail("tickpipe", f"{type(exc).__name__}: {exc}")
    r.emit()
