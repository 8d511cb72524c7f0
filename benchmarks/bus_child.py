"""The child processes of ``benchmarks/bus.py``: a collector, or a consumer (direct or bus).

    python -m benchmarks.bus_child collector --stream-url WS --rest-url HTTP --nats URL --symbols A
    python -m benchmarks.bus_child consumer --stream-url WS --rest-url HTTP --symbols A,B
    python -m benchmarks.bus_child consumer --source nats://... --symbols A,B

Each runs one ``tickpipe.Client`` on uvloop (as ``tickpipe watch`` does) subscribed to
``orderbook:<symbol>`` for every symbol: a **consumer** straight from the gateway (``--stream-url``)
or from the bus (``--source``, ``Client(source=..., venue="vts")``); the **collector** from the
gateway, with a ``tickpipe.bus.collector.Collector`` publishing its books to ``--nats``.

Once every book is synced it prints ``{"event": "ready"}`` and then obeys JSON commands, one a
line on stdin, answering each with one JSON line on stdout:

- ``{"op": "start"}``: the window opens: this process's CPU (``psutil``), the client's counters,
  and a fresh latency ring (``--ring`` samples: every applied delta of the window is kept, not
  only the client's last 8,192). Answers ``{"event": "started"}``.
- ``{"op": "stop"}``: the window closes. Answers ``window``: ``applied`` (deltas applied: the
  latency ring's count, one sample per applied delta with a ``ts``), ``wall_s``, ``cpu_s``,
  latency percentiles (gateway ``ts`` -> book applied, ms), gaps, resyncs, reconnects; the
  collector adds messages published, dropped, resets and its queue depth.
- ``{"op": "catchup", "seqs": {symbol: seq}, "timeout_s": S}``: wait (at most S) until every
  book is synced at or past that seq (the gateway's seqs a moment ago: a consumer that joined
  late replays the deltas since the collector's last Snap first, and its books are synced, but
  seconds behind, meanwhile). Answers ``{"event": "caught_up", "took_s": seconds or null}``.
- ``{"op": "final", "seqs": {symbol: seq}, "timeout_s": S}``: wait (at most S) until every book
  is synced at that seq (the gateway has paused its market there), then answer ``final``: per
  book its seq, synced flag and :func:`book_digest` of every level, and how long it took.
- ``{"op": "exit"}`` or end of stdin: close and exit 0.

``TICKPIPE_BENCH_PROFILE=DIR`` cProfiles each process's window into ``DIR/<role>-<pid>.prof``
(where a consumer's or the collector's CPU goes; slows the process down).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import json
import math
import os
import statistics
import sys
import threading
import time
from typing import Any

import psutil
import uvloop

from tickpipe import Client
from tickpipe.bus.collector import Collector, CollectorConfig
from tickpipe.client.metrics import LatencyWindow

PROFILE_ENV = "TICKPIPE_BENCH_PROFILE"
SYNC_TIMEOUT_S = 60.0  # 16 consumers starting at once on 2 cores take a while
CLOSE_TIMEOUT_S = 5.0


def book_digest(bids: list[list[str]], asks: list[list[str]]) -> str:
    """SHA-1 of every level, as ``BookView.text_levels(None)`` gives them (decimal strings)."""
    return hashlib.sha1(json.dumps([bids, asks], separators=(",", ":")).encode()).hexdigest()


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "p999": None, "max": None}
    s = sorted(values)
    n = len(s)

    def q(p: float) -> float:
        return s[max(0, min(n - 1, math.ceil(p * n) - 1))]  # nearest rank

    return {"p50": q(0.50), "p99": q(0.99), "p999": q(0.999), "max": s[-1]}


def stdin_commands(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[dict[str, Any] | None]:
    """Lines of stdin as parsed commands (None at EOF), read by a daemon thread."""
    q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            if line.strip():
                loop.call_soon_threadsafe(q.put_nowait, json.loads(line))
        loop.call_soon_threadsafe(q.put_nowait, None)

    threading.Thread(target=read, daemon=True).start()
    return q


class Window:
    """What one process measures between ``start`` and ``stop``."""

    def __init__(self, client: Client, ring: int, role: str) -> None:
        self.client = client
        self.role = role
        self.prof: cProfile.Profile | None = None
        self.ring_size = ring
        self.proc = psutil.Process()
        self.t0 = self.c0 = 0.0
        self.base: dict[str, Any] = {}

    def _counters(self) -> dict[str, Any]:
        m = self.client.metrics
        return {
            "frames": m.frames,
            "gaps": sum(m.gaps.values()),
            "resyncs": m.resyncs,
            "reconnects": m.reconnects,
        }

    def start(self) -> None:
        self.base = self._counters()
        self.client.metrics.latency = LatencyWindow(self.ring_size)
        if os.environ.get(PROFILE_ENV):
            self.prof = cProfile.Profile()
            self.prof.enable()
        self.c0 = cpu_s(self.proc)
        self.t0 = time.perf_counter()

    def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.t0
        cpu = cpu_s(self.proc) - self.c0
        if self.prof is not None:
            self.prof.disable()
            out_dir = os.environ[PROFILE_ENV]
            self.prof.dump_stats(os.path.join(out_dir, f"{self.role}-{os.getpid()}.prof"))
            self.prof = None
        ring = self.client.metrics.latency
        values = ring.values()
        now = self._counters()
        out: dict[str, Any] = {"event": "window", "wall_s": wall, "cpu_s": cpu}
        out["applied"] = ring.count
        out["ring_wrapped"] = ring.count > ring.size
        out["latency_ms"] = percentiles(values)
        for k, v in now.items():
            out[k] = v - self.base[k]
        return out


def final_books(client: Client, symbols: list[str]) -> dict[str, Any]:
    books: dict[str, Any] = {}
    for s in symbols:
        v = client.book(s)
        bids, asks = v.text_levels(None)
        books[s] = {"seq": v.seq, "synced": v.synced, "digest": book_digest(bids, asks)}
    return books


async def wait_at(
    client: Client, seqs: dict[str, int], timeout_s: float, exact: bool = True
) -> float | None:
    """Seconds until every book is synced at (``exact``) or past its seq in ``seqs``; None if
    not within ``timeout_s``."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        if all(
            (v := client.book(s)).synced
            and v.seq is not None
            and (v.seq == q if exact else v.seq >= q)
            for s, q in seqs.items()
        ):
            return time.perf_counter() - t0
        await asyncio.sleep(0.02)
    return None


async def serve(
    client: Client,
    symbols: list[str],
    ring: int,
    role: str,
    extra: Any = None,
) -> None:
    """The command loop (see the module doc); ``extra()`` adds fields to window/final."""
    cmds = stdin_commands(asyncio.get_running_loop())
    win = Window(client, ring, role)
    emit({"event": "ready"})
    while True:
        cmd = await cmds.get()
        if cmd is None or cmd["op"] == "exit":
            return
        if cmd["op"] == "start":
            win.start()
            if extra is not None:
                extra("start")
            emit({"event": "started"})
        elif cmd["op"] == "stop":
            out = win.stop()
            if extra is not None:
                out.update(extra("stop"))
            emit(out)
        elif cmd["op"] == "catchup":
            took = await wait_at(client, cmd["seqs"], float(cmd["timeout_s"]), exact=False)
            emit({"event": "caught_up", "took_s": took})
        elif cmd["op"] == "final":
            took = await wait_at(client, cmd["seqs"], float(cmd["timeout_s"]))
            out = {"event": "final", "caught_up_s": took, "books": final_books(client, symbols)}
            if extra is not None:
                out.update(extra("final"))
            emit(out)


async def consumer(a: argparse.Namespace, symbols: list[str]) -> None:
    if a.source:
        client = Client(source=a.source, venue="vts")
    else:
        client = Client(a.stream_url, a.rest_url, key=a.key, secret=a.secret)
    await client.start()
    try:
        await client.subscribe([f"orderbook:{s}" for s in symbols])
        for s in symbols:
            await client.wait_synced(s, timeout=SYNC_TIMEOUT_S)
        await serve(client, symbols, a.ring, "consumer-bus" if a.source else "consumer-direct")
    finally:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.close(), CLOSE_TIMEOUT_S)


def time_batches(col: Collector) -> list[tuple[int, float]]:
    """(messages, seconds) of every publish batch: one round of ``publish_async`` for each
    message and the wait for all their acks (a diagnostic: wraps the collector's private
    ``_try``). The list is cleared at each window's start."""
    out: list[tuple[int, float]] = []
    inner = col._try

    async def timed(pending: list[Any]) -> list[BaseException | None]:
        t = time.perf_counter()
        try:
            return await inner(pending)
        finally:
            out.append((len(pending), time.perf_counter() - t))

    col._try = timed  # type: ignore[method-assign]
    return out


async def collector(a: argparse.Namespace, symbols: list[str]) -> None:
    client = Client(a.stream_url, a.rest_url, key=a.key, secret=a.secret)
    events: list[dict[str, Any]] = []
    col = Collector(client, a.nats, CollectorConfig(), on_event=events.append)
    await col.start()
    batches = time_batches(col)
    base: dict[str, int] = {}

    def counters() -> dict[str, int]:
        return {
            "published": sum(col.published.values()),
            "published_deltas": col.published.get("delta", 0),
            "dropped": col.dropped,
            "resets": col.resets,
        }

    def extra(what: str) -> dict[str, Any]:
        nonlocal base
        if what == "start":
            base = counters()
            batches.clear()
            return {}
        now = counters()
        out: dict[str, Any] = {k: v - base[k] for k, v in now.items()}
        if what == "stop":
            out["batches"] = len(batches)
            out["batch_mean_msgs"] = statistics.fmean(n for n, _ in batches) if batches else None
            out["batch_mean_s"] = statistics.fmean(t for _, t in batches) if batches else None
        out["queue_depth"] = col.queue_depth
        if what == "final":
            out["overflow_events"] = sum(1 for e in events if e.get("event") == "bus_overflow")
        return out

    try:
        await client.start()
        await client.subscribe([f"orderbook:{s}" for s in symbols])
        for s in symbols:
            await client.wait_synced(s, timeout=SYNC_TIMEOUT_S)
        await serve(client, symbols, a.ring, "collector", extra)
    finally:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.close(), CLOSE_TIMEOUT_S)
        await col.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("role", choices=("consumer", "collector"))
    ap.add_argument("--symbols", required=True, help="comma-separated")
    ap.add_argument("--stream-url", default=None)
    ap.add_argument("--rest-url", default=None)
    ap.add_argument("--key", default=None)
    ap.add_argument("--secret", default=None)
    ap.add_argument("--source", default=None, help="consumer from the bus: nats://...")
    ap.add_argument("--nats", default=None, help="collector: where to publish")
    ap.add_argument("--nice", type=int, default=0, help="added to this process's nice value")
    ap.add_argument("--ring", type=int, default=200_000, help="latency samples kept a window")
    a = ap.parse_args()
    symbols = a.symbols.split(",")
    if a.nice:
        os.nice(a.nice)
    if a.role == "consumer":
        uvloop.run(consumer(a, symbols))
    else:
        uvloop.run(collector(a, symbols))


if __name__ == "__main__":
    main()
