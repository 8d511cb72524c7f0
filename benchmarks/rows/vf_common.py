"""What every venue-flood row shares: arguments, the window, the result line. Standard library
only: the cryptofeed row imports this from another interpreter (its own venv), where neither
tickpipe nor the project's packages are installed.

A row (``python -m benchmarks.rows.vf_<name> --stream-url WS --rest-url HTTP ...``) reads
``GET /flood/info`` (symbols, each book's last update id after the warm-up and at the end),
subscribes every symbol's depth stream and seeds its books the way its client does, on the
sender's warm-up events (the sender then holds the stream). Once every book is synced at or past
its warm-up id, :meth:`Window.start` notes the clocks and calls ``POST /flood/go``; the sender
floods the measured events; :meth:`Window.end` is called when every book is at its final id.

Figures: ``fps`` = measured events / wall seconds of the window; ``cpu_us`` = process CPU
(user + system, all threads) in the window / measured events, in µs. The books (every level, or
the top ``--check-depth``) go into the result line; ``benchmarks/venue_flood.py`` compares them
with the sender's truth.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

Book = dict[str, Any]  # {"seq": int | None, "bids": [[p, s], ...], "asks": [[p, s], ...]}


@dataclass
class RowArgs:
    stream_url: str  # the venue's WebSocket base (ws://127.0.0.1:PORT)
    rest_url: str
    variant: str
    timeout_s: float
    check_depth: int  # 0: whole books


def parse_args(argv: list[str] | None = None) -> RowArgs:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stream-url", required=True)
    ap.add_argument("--rest-url", required=True)
    ap.add_argument("--variant", default="")
    ap.add_argument("--timeout", type=float, default=60.0, help="warm-up + window, at most")
    ap.add_argument("--check-depth", type=int, default=0, help="levels a side reported (0: all)")
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    a = ap.parse_args(argv)
    if a.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {a.cpu})
    return RowArgs(a.stream_url, a.rest_url.rstrip("/"), a.variant, a.timeout, a.check_depth)


def http_json(url: str, method: str = "GET") -> Any:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class Window:
    """The measured window of one row."""

    args: RowArgs
    name: str
    info: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    t0: float = 0.0
    c0: float = 0.0
    t1: float = 0.0
    c1: float = 0.0
    t_setup: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.info = http_json(self.args.rest_url + "/flood/info")
        self.symbols: list[str] = list(self.info["symbols"])
        self.warm_ids: dict[str, int] = dict(self.info["warm_ids"])
        self.final_ids: dict[str, int] = dict(self.info["final_ids"])
        self.frames = int(self.info["frames"])
        self.deadline = time.perf_counter() + self.args.timeout_s

    def start(self) -> None:
        """Every book is seeded: note the clocks and let the sender flood."""
        self.extra["warmup_s"] = round(time.perf_counter() - self.t_setup, 3)
        self.t0 = time.perf_counter()
        self.c0 = cpu_s()
        http_json(self.args.rest_url + "/flood/go", "POST")

    def end(self) -> None:
        self.t1 = time.perf_counter()
        self.c1 = cpu_s()

    def started(self) -> bool:
        return self.t0 > 0.0

    def levels(self, levels: list[list[str]]) -> list[list[str]]:
        d = self.args.check_depth
        return levels[:d] if d > 0 else levels

    def emit(self, books: dict[str, Book]) -> None:
        out: dict[str, Any] = {"row": self.name, "variant": self.args.variant, **self.extra}
        if self.t1 > self.t0 > 0.0:
            wall = self.t1 - self.t0
            out.update(
                frames=self.frames,
                window_s=round(wall, 4),
                fps=round(self.frames / wall, 1),
                cpu_us=round((self.c1 - self.c0) / self.frames * 1e6, 3),
            )
        else:
            out["error"] = "did not finish: " + (
                "warm-up (books not all seeded)" if not self.started() else "flood window"
            )
        out["books"] = books
        print("RESULT " + json.dumps(out), flush=True)


def fail(name: str, why: str) -> None:
    print("RESULT " + json.dumps({"row": name, "error": why}), flush=True)
    sys.exit(0)
