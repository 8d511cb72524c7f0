"""Soak: one client, 50 channels, a fault every few seconds, RSS printed over time.

    .venv/bin/python benchmarks/soak.py                 # 10 minutes (the default)
    .venv/bin/python benchmarks/soak.py --minutes 1     # shorter

The gateway runs in a child process (this script re-run with ``--serve-gateway``) so the RSS
printed is the client's alone. Channels: 20 order books, 15 tickers, 15 trade streams over one
socket. Every ``--fault-every`` seconds (default 3) one fault is injected through the admin
API, cycling through: drop_delta, bad_checksum, malformed_frame, duplicate_delta,
reorder_delta, snapshot_error, stale_snapshot, silence_channel (2 s), stop_pings (heartbeat
loss: reconnect), disconnect (abrupt, no close frame).

Printed: a line every ``--report-every`` seconds (RSS MiB, frames, frames/s, gaps, resyncs,
reconnects, synced books, latency p50/p99), then a summary: RSS at warm-up end and at the end
(the drift is what matters: flat memory under faults), and a check that every synced book
equals the gateway's true book at its seq. Bounded: it always stops after ``--minutes``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import aiohttp
import psutil

N_BOOKS, N_TICKERS, N_TRADES = 20, 15, 15

FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("drop_delta", {}),
    ("bad_checksum", {}),
    ("malformed_frame", {}),
    ("duplicate_delta", {}),
    ("reorder_delta", {}),
    ("snapshot_error", {}),
    ("stale_snapshot", {}),
    ("silence_channel", {"duration_ms": 2000}),
    ("stop_pings", {"duration_ms": 60_000}),
    ("disconnect", {"close_frame": False}),
]


def _symbols() -> list[str]:
    return [f"SK{i:02d}" for i in range(N_BOOKS)]


async def serve_gateway(rate: float, heartbeat_ms: int) -> None:
    """Child mode: a gateway with N_BOOKS synthetic markets; prints one ready JSON line."""
    from tickpipe.gateway import Gateway, GatewayConfig
    from tickpipe.gateway.markets import MarketSpec
    from tickpipe.protocol.instruments import Instrument

    markets = tuple(
        MarketSpec(Instrument(s, "equity", "0.01", "1"), "100.00", 100) for s in _symbols()
    )
    cfg = GatewayConfig(
        port=0,
        admin_port=0,
        seed=11,
        rate=rate,
        heartbeat_ms=heartbeat_ms,
        markets=markets,
        depth=100,
    )
    async with Gateway(cfg) as gw:
        print(
            json.dumps(
                {
                    "event": "ready",
                    "stream_url": gw.stream_url,
                    "rest_url": gw.rest_url,
                    "admin_url": gw.admin_url,
                    "admin_token": gw.admin_token,
                }
            ),
            flush=True,
        )
        await asyncio.Event().wait()


async def soak(args: argparse.Namespace, ready: dict[str, Any]) -> int:
    from tickpipe import Client
    from tickpipe.protocol.backoff import BackoffPolicy

    proc = psutil.Process()
    syms = _symbols()
    channels = (
        [f"orderbook:{s}" for s in syms]
        + [f"ticker:{s}" for s in syms[:N_TICKERS]]
        + [f"trades:{s}" for s in syms[-N_TRADES:]]
    )
    admin = ready["admin_url"]
    headers = {"X-Admin-Token": ready["admin_token"]}
    client = Client(
        ready["stream_url"],
        ready["rest_url"],
        key="demo",
        secret="demo-secret",
        reconnect=BackoffPolicy(base_s=0.2, cap_s=2.0, healthy_after_s=5.0),
        stale_after_s=1.0,
    )
    events = client.events()
    counts: dict[str, int] = {}

    async def count_events() -> None:
        async for ev in events:
            counts[ev.name] = counts.get(ev.name, 0) + 1

    duration = args.minutes * 60.0
    warmup = min(60.0, duration / 5)
    t0 = time.monotonic()
    rss_warm: float | None = None
    snap_warm: tracemalloc.Snapshot | None = None
    if args.tracemalloc:
        tracemalloc.start(8)
    rss_max = 0.0
    async with aiohttp.ClientSession() as http, client:
        counter = asyncio.create_task(count_events())
        res = await client.subscribe(channels)
        print(
            f"# subscribed {len(res.accepted)} channels over one socket; faults every "
            f"{args.fault_every}s; {args.minutes} min",
            flush=True,
        )
        print(
            f"{'t_s':>6} {'rss_mib':>8} {'frames':>9} {'f/s':>7} {'gaps':>5} {'resync':>6} "
            f"{'reconn':>6} {'synced':>6} {'p50_ms':>7} {'p99_ms':>7}",
            flush=True,
        )
        next_fault = t0 + args.fault_every
        next_report = t0
        i = 0
        while (now := time.monotonic()) - t0 < duration:
            if now >= next_fault:
                name, params = FAULTS[i % len(FAULTS)]
                body: dict[str, Any] = {"fault": name, **params}
                if name in (
                    "drop_delta",
                    "bad_checksum",
                    "malformed_frame",
                    "duplicate_delta",
                    "reorder_delta",
                ):
                    body["channel"] = f"orderbook:{syms[i % len(syms)]}"
                elif name in ("snapshot_error", "stale_snapshot"):
                    body["symbol"] = syms[i % len(syms)]
                    await http.post(
                        f"{admin}/admin/trigger",
                        json={"fault": "drop_delta", "channel": f"orderbook:{syms[i % len(syms)]}"},
                        headers=headers,
                    )
                elif name == "silence_channel":
                    body["channel"] = f"ticker:{syms[0]}"
                async with http.post(f"{admin}/admin/trigger", json=body, headers=headers) as r:
                    if r.status != 200:
                        print(f"# trigger {name} -> {r.status} {await r.text()}", flush=True)
                if name == "stop_pings":  # end it once the client has noticed
                    await asyncio.sleep(1.0)
                    await http.post(
                        f"{admin}/admin/trigger",
                        json={"fault": "stop_pings", "duration_ms": 0},
                        headers=headers,
                    )
                i += 1
                next_fault += args.fault_every
            if now >= next_report:
                rss = proc.memory_info().rss / 2**20
                rss_max = max(rss_max, rss)
                if rss_warm is None and now - t0 >= warmup:
                    rss_warm = rss
                    if args.tracemalloc:
                        snap_warm = tracemalloc.take_snapshot()
                s = client.stats()
                synced = sum(1 for b in s.books.values() if b.synced)
                p50 = f"{s.latency_p50_ms:.2f}" if s.latency_p50_ms is not None else "-"
                p99 = f"{s.latency_p99_ms:.2f}" if s.latency_p99_ms is not None else "-"
                print(
                    f"{now - t0:6.0f} {rss:8.1f} {s.frames:9d} {s.frames_per_s:7.0f} "
                    f"{sum(s.gaps.values()):5d} {s.resyncs:6d} {s.reconnects:6d} "
                    f"{synced:6d} {p50:>7} {p99:>7}",
                    flush=True,
                )
                next_report += args.report_every
            await asyncio.sleep(0.1)
        # final: every synced book equals the truth at its seq
        checked = bad = 0
        for ch, view in client.books().items():
            if not view.synced:
                continue
            seq, levels = view.seq, view.text_levels(None)
            async with http.get(
                f"{admin}/admin/book/{view.symbol}?seq={seq}", headers=headers
            ) as r:
                if r.status != 200:
                    continue
                truth = await r.json()
            checked += 1
            if (truth["bids"], truth["asks"]) != levels:
                bad += 1
                print(f"# MISMATCH {ch} at seq {seq}", flush=True)
        s = client.stats()
        counter.cancel()
    rss_end = proc.memory_info().rss / 2**20
    warm = rss_warm if rss_warm is not None else rss_end
    print("# summary", flush=True)
    print(
        f"#   duration_s={time.monotonic() - t0:.0f} faults={i} frames={s.frames} "
        f"reconnects={s.reconnects} resyncs={s.resyncs} gaps={s.gaps}"
    )
    print(
        f"#   rss_mib warm={warm:.1f} end={rss_end:.1f} max={rss_max:.1f} "
        f"drift={rss_end - warm:+.1f}"
    )
    print(
        f"#   snapshot_requests={s.snapshot_requests} snapshot_429={s.snapshot_429} "
        f"bad_frames={s.bad_frames} callback_errors={s.callback_errors}"
    )
    print(f"#   events={dict(sorted(counts.items()))}")
    print(f"#   books checked against truth: {checked}, mismatches: {bad}")
    if snap_warm is not None:
        gc.collect()
        diff = tracemalloc.take_snapshot().compare_to(snap_warm, "traceback")
        total = sum(st.size_diff for st in diff) / 2**20
        print(f"# tracemalloc: Python heap {total:+.2f} MiB since warm-up; top growth:")
        for stat in diff[:8]:
            print(
                f"#   {stat.size_diff / 1024:+8.1f} KiB {stat.count_diff:+6d} blocks  "
                f"{stat.traceback.format()[-2].strip() if stat.traceback else ''}"
            )
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long (10)")
    p.add_argument("--fault-every", type=float, default=3.0, help="seconds between faults (3)")
    p.add_argument("--report-every", type=float, default=30.0, help="seconds between lines (30)")
    p.add_argument("--rate", type=float, default=20.0, help="gateway deltas/s per book (20)")
    p.add_argument(
        "--tracemalloc", action="store_true", help="print the top allocation growth at the end"
    )
    p.add_argument("--serve-gateway", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_gateway:
        asyncio.run(serve_gateway(args.rate, heartbeat_ms=500))
        return 0
    if not args.minutes > 0:
        p.error("--minutes must be > 0")
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve-gateway", "--rate", str(args.rate)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            print("soak: gateway child did not start", file=sys.stderr)
            return 1
        ready = json.loads(line)
        try:
            import uvloop

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        except ImportError:
            runner = asyncio.Runner()
        with runner:
            return runner.run(soak(args, ready))
    finally:
        child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()


if __name__ == "__main__":
    sys.exit(main())
