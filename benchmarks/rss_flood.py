"""RSS of the real client over millions of frames: is memory flat under a sustained flood?

    .venv/bin/python -m benchmarks.rss_flood                      # 10,000,000 frames (cap 15 min)
    .venv/bin/python -m benchmarks.rss_flood --frames 2000000     # shorter

A reference gateway runs in a child process at ``--rate max`` (its memory is not counted) and one
``tickpipe.Client`` subscribes every channel it lists (books, tickers, trades of all instruments)
over one socket, with default settings: checksums verified, gap checks and metrics on. Every
``--report-every`` seconds it prints the client's RSS, frames so far and frames/s; at the end the
RSS after warm-up (the first 10 % of the frames) against the RSS at the end, and that every book
is still synced. Bounded: stops at ``--frames`` or ``--max-minutes``, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time

import psutil

from tickpipe import Client
from tickpipe.gateway.testing import GatewayProcess


def _mib(n: int) -> float:
    return n / (1024 * 1024)


async def run(frames: int, max_minutes: float, report_every: float) -> int:
    proc = psutil.Process()
    with GatewayProcess("--rate", "max") as gw:
        async with Client(stream_url=gw.stream_url, rest_url=gw.rest_url) as client:
            symbols = sorted(client.instruments)
            kinds = ("orderbook", "ticker", "trades")
            channels = [f"{kind}:{s}" for s in symbols for kind in kinds]
            await client.subscribe(channels)
            for s in symbols:
                await client.wait_synced(s, timeout=30)
            print(f"{len(channels)} channels over one socket, {len(symbols)} books synced")
            print(f"{'t (s)':>7} {'RSS MiB':>9} {'frames':>12} {'frames/s':>10}")
            t0 = time.monotonic()
            deadline = t0 + max_minutes * 60
            warm_rss: int | None = None
            last_t, last_frames = t0, client.stats().frames
            next_report = t0 + report_every
            while True:
                await asyncio.sleep(0.25)
                now = time.monotonic()
                st = client.stats()
                if warm_rss is None and st.frames >= frames // 10:
                    gc.collect()
                    warm_rss = proc.memory_info().rss
                    print(f"warm-up done at {st.frames:,} frames: RSS {_mib(warm_rss):.1f} MiB")
                done = st.frames >= frames or now >= deadline
                if now >= next_report or done:
                    rate = (st.frames - last_frames) / max(now - last_t, 1e-9)
                    rss = proc.memory_info().rss
                    print(f"{now - t0:7.0f} {_mib(rss):9.1f} {st.frames:12,} {rate:10,.0f}")
                    last_t, last_frames, next_report = now, st.frames, now + report_every
                if done:
                    break
            gc.collect()
            end_rss = proc.memory_info().rss
            st = client.stats()
            synced = sum(1 for v in client.books().values() if v.synced)
            print(
                f"frames {st.frames:,} in {time.monotonic() - t0:.0f} s; gaps "
                f"{sum(st.gaps.values())} {st.gaps}, reconnects {st.reconnects}; books synced "
                f"{synced}/{len(symbols)}"
            )
            if warm_rss is not None:
                print(
                    f"RSS after warm-up {_mib(warm_rss):.1f} MiB, at the end {_mib(end_rss):.1f} "
                    f"MiB: drift {_mib(end_rss - warm_rss):+.1f} MiB"
                )
            if st.frames < frames:
                print(f"stopped by --max-minutes before {frames:,} frames", file=sys.stderr)
            return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, default=10_000_000, help="frames to receive (10M)")
    ap.add_argument("--max-minutes", type=float, default=15.0, help="time cap (15)")
    ap.add_argument("--report-every", type=float, default=15.0, help="seconds between lines (15)")
    a = ap.parse_args()
    if a.frames < 1000 or a.max_minutes <= 0 or a.report_every <= 0:
        ap.error("--frames must be >= 1000, --max-minutes and --report-every > 0")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(run(a.frames, a.max_minutes, a.report_every))


if __name__ == "__main__":
    sys.exit(main())
