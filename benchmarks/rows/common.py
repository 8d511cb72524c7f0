"""What every receiver row shares: arguments, the start call, timing, the result line.

A row runs in its own process (``python -m benchmarks.rows.<name> ...``): it connects to the
sender, authenticates, subscribes to every corpus channel, seeds its books from the corpus
snapshots, then calls ``POST /bench/start``. The measured window runs from the moment that call
returns (the sender starts writing right after) to the moment the row has applied the last
frame, so every row is timed the same way. The row prints one JSON line (:meth:`Run.result`).

Figures:

- ``fps``: data frames / wall seconds of the window.
- ``cpu_us``: process CPU seconds (user + system, all threads) in the window / frames, in µs.
- ``lat_*_us`` (rate mode only): ``time.time_ns()`` right after a delta was applied minus the
  frame's ``ts`` (stamped by the sender at write, same machine clock); p50 / p99 / p99.9 over
  every delta of the run.
- ``rss_*_mb``: resident set size after imports (base), after setup (books seeded), at the
  window's start and end; ``rss_per_channel_kb`` = (setup - base) / channels: what 200
  subscribed channels with their books (300 levels a side) cost, connection included.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
import urllib.request
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import framegen

KEY = "bench"
SECRET = "bench-secret"


@dataclass
class RowArgs:
    stream_url: str
    rest_url: str
    corpus: Path
    mode: str
    frames: int
    rate: float
    variant: str
    timeout_s: float


def parse_args(argv: list[str] | None = None, variants: tuple[str, ...] = ("",)) -> RowArgs:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stream-url", required=True)
    ap.add_argument("--rest-url", required=True)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--mode", choices=("flood", "rate"), default="flood")
    ap.add_argument("--frames", type=int, default=100_000, help="data frames to receive")
    ap.add_argument("--rate", type=float, default=0.0, help="frames/s in all (rate mode)")
    ap.add_argument("--variant", choices=variants, default=variants[0])
    ap.add_argument("--timeout", type=float, default=120.0, help="give up after (s)")
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    ap.add_argument("--nice", type=int, default=0, help="os.nice() increment (< 0 needs root)")
    a = ap.parse_args(argv)
    if a.nice:
        os.nice(a.nice)
    if a.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {a.cpu})
    return RowArgs(
        a.stream_url, a.rest_url, a.corpus, a.mode, a.frames, a.rate, a.variant, a.timeout
    )


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def start_stream(a: RowArgs) -> dict[str, Any]:
    """``POST /bench/start``; blocking on purpose: nothing flows until it returns."""
    body = json.dumps({"mode": a.mode, "frames": a.frames, "rate": a.rate}).encode()
    req = urllib.request.Request(
        f"{a.rest_url}/bench/start", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        out: dict[str, Any] = json.loads(resp.read())
    return out


def sender_last(rest_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{rest_url}/bench/last", timeout=10) as resp:
        out: dict[str, Any] = json.loads(resp.read())
    return out


def pct(sorted_vals: array[int] | list[int], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, int(q * len(sorted_vals)))
    return float(sorted_vals[i])


@dataclass
class Run:
    """The window's clocks and counters; rows fill ``lat`` (ns) and ``gaps``."""

    row: str
    args: RowArgs
    snap: framegen.Snapshots
    rss_base: float = field(default_factory=rss_mb)  # after imports, before any setup
    rss_setup: float = 0.0
    t0: float = 0.0
    c0: float = 0.0
    rss0: float = 0.0
    t1: float = 0.0
    c1: float = 0.0
    rss1: float = 0.0
    received: int = 0
    gaps: int = 0
    errors: int = 0
    lat: array[int] = field(default_factory=lambda: array("q"))
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, row: str, args: RowArgs) -> Run:
        return cls(row, args, framegen.load_snapshots(args.corpus))

    @property
    def rate_mode(self) -> bool:
        return self.args.mode == "rate"

    def setup_done(self) -> None:
        gc.collect()
        self.rss_setup = rss_mb()
        gc.callbacks.append(self._gc_timer)

    _gc_t: float = 0.0
    gc_total_s: float = 0.0
    gc_max_s: float = 0.0
    gc_full: int = 0

    def _gc_timer(self, phase: str, info: dict[str, int]) -> None:
        """Time every collection in the window: pauses explain latency tails."""
        if phase == "start":
            self._gc_t = time.perf_counter()
            return
        if not self.t0 or self.t1:
            return
        d = time.perf_counter() - self._gc_t
        self.gc_total_s += d
        self.gc_max_s = max(self.gc_max_s, d)
        self.gc_full += info.get("generation") == 2

    def begin(self) -> dict[str, Any]:
        """Start the stream and open the window; returns the sender's answer."""
        info = start_stream(self.args)
        self.rss0 = rss_mb()
        self.c0 = cpu_s()
        self.t0 = time.perf_counter()
        return info

    def end(self) -> None:
        self.t1 = time.perf_counter()
        self.c1 = cpu_s()
        self.rss1 = rss_mb()

    def result(self) -> dict[str, Any]:
        el = self.t1 - self.t0
        n = self.received
        lat = array("q", sorted(self.lat))
        try:
            sender = sender_last(self.args.rest_url)
        except OSError:
            sender = {}
        out: dict[str, Any] = {
            "row": self.row,
            "variant": self.args.variant,
            "mode": self.args.mode,
            "rate": self.args.rate,
            "frames": n,
            "elapsed_s": round(el, 4),
            "fps": round(n / el, 1) if el > 0 else 0.0,
            "cpu_us": round((self.c1 - self.c0) / n * 1e6, 3) if n else None,
            "channels": len(self.snap.channels),
            "rss_base_mb": round(self.rss_base, 2),
            "rss_setup_mb": round(self.rss_setup, 2),
            "rss_per_channel_kb": round(
                (self.rss_setup - self.rss_base) * 1e3 / len(self.snap.channels), 1
            ),
            "rss_start_mb": round(self.rss0, 2),
            "rss_end_mb": round(self.rss1, 2),
            "gaps": self.gaps,
            "gc_ms": round(self.gc_total_s * 1e3, 2),
            "gc_max_ms": round(self.gc_max_s * 1e3, 2),
            "gc_full": self.gc_full,
            "errors": self.errors,
            "sender": sender,
        }
        if self.rate_mode:
            out["latency_samples"] = len(lat)
            for name, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999)):
                out[f"lat_{name}_us"] = round(pct(lat, q) / 1000, 1)
        out.update(self.extra)
        return out

    def emit(self) -> None:
        print("RESULT " + json.dumps(self.result()), flush=True)


def fail(row: str, msg: str) -> None:
    print("RESULT " + json.dumps({"row": row, "error": msg}), flush=True)
    sys.exit(1)
