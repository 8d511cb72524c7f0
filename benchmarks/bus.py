"""The bus against direct connections, in one run: 1, 4 and 16 consumer processes.

    .venv/bin/python -m benchmarks.bus            # 2k, 10k deltas/s x 1, 4, 16 + flood: ~2 min
    .venv/bin/python -m benchmarks.bus --quick    # 10k deltas/s only, 2 s windows: ~1 min
    .venv/bin/python -m benchmarks.bus --smoke    # 4 books, 1 consumer, a 0.5 s window: seconds

Every row runs the reference gateway (``tickpipe.gateway.Gateway``, VTS/1) in THIS process
with ``--books`` order books (20) at a fixed total delta rate, and N consumer processes
(``benchmarks/bus_child.py``: one ``tickpipe.Client`` each, uvloop, subscribed to every book):

- **direct**: each consumer connects to the gateway (``Client(stream_url, rest_url, ...)``);
  the gateway fans every delta out to N WebSockets.
- **bus**: a fresh ``nats-server`` (JetStream, file storage in a temp dir,
  ``tickpipe.bus.natsserver.NatsServer``), one collector process (``Client`` + ``Collector``: the
  gateway's only connection) and N consumers ``Client(source="nats://...", venue="vts")``.

Nothing is pinned: with 16 consumers, a collector, nats-server and the gateway on 2 cores the
CPU is oversubscribed on purpose (the table shows what each side does then;
``--consumer-nice`` / ``--producer-nice`` change who comes first). The market is paused while
the processes start and seed their books (16 interpreters starting would starve the collector
and open the window on its backlog); then it runs, every process must reach the gateway's seqs
of that moment (``--catchup-timeout-s``; a bus consumer's books are synced from the collector's
last Snap and then replay the deltas after it), 0.5 s of warm-up, and the window
(``--window-s``) is opened and closed in every child at once (stdin commands). Per row:

- **gw deltas/s**: deltas the gateway generated in the window / its wall time (what the rate
  actually was: a starved gateway falls behind its schedule; "behind" counts its
  ``market_behind`` warnings, when it gave up catching up).
- **applied/s per consumer**: deltas applied to books in the window, mean and lowest consumer.
- **latency**: gateway ``ts`` (its clock at writing) -> book applied in the consumer (same
  machine, same clock), p50 and p99 of every delta of the window: median over consumers, and
  the worst consumer's p99.
- **µs CPU/delta**: a consumer's CPU (``psutil``, user + system) in the window / deltas it
  applied (mean over consumers); the collector's CPU / deltas it applied; nats-server's CPU /
  deltas the collector published (it stores each once and delivers it N times).
- **CPU, cores**: the gateway (this process: the gateway and an idle orchestrator), all
  consumers together, collector, nats-server; **load** is the 1-minute load average as the
  window closed (other users of the machine included: the noise indicator).
- **books = truth**: after the window the gateway's market is paused; each process gets
  ``--final-timeout-s`` to reach the final seq of every book; then every book's every level
  (SHA-1 of ``text_levels(None)``) is compared with the gateway's ``true_book`` at that seq.
  Counted over all consumers (N x books) and, for the bus, the collector.
- **collector published deltas/s**, its queue at the window's end, and its mean publish batch
  (messages, and ms from the first ``publish_async`` to the last ack: the collector keeps one
  batch in flight, so batch / ack time is its publishing ceiling; timed by wrapping its
  private ``_try``, a diagnostic).
- **gaps / reconnects**, and the collector's dropped messages (its queue overflowed).

The JSON also has nats-server's own counters over the window (``nats_window``: messages in and
out, slow consumers, JetStream API requests, consumers) and every child's raw window.
``TICKPIPE_BENCH_PROFILE=DIR`` cProfiles each child's window (``benchmarks/bus_child.py``).

The exit status is 0 whatever the figures (a measurement); ``--json PATH`` writes every raw
figure (per consumer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import uvloop

from benchmarks.bus_child import book_digest
from benchmarks.run_all import machine
from tickpipe.bus.natsserver import NatsServer
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.markets import DEFAULT_MARKETS, MarketSpec
from tickpipe.protocol.instruments import Instrument

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SECRET = "bench-secret"  # each process has its own key: the gateway refuses a signature seen
# before, and two processes signing the same key in the same millisecond would collide
MAX_KEYS = 64
WARMUP_S = 0.5
READY_TIMEOUT_S = 120.0  # 16 processes importing and seeding at once on 2 cores
REPLY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RowSpec:
    rate: int  # total deltas/s over all books; 0 = flood (as fast as the slowest connection)
    consumers: int
    mode: str  # "bus" | "direct"

    @property
    def rate_label(self) -> str:
        return "flood" if self.rate == 0 else f"{self.rate:,}"


def markets(n: int) -> tuple[MarketSpec, ...]:
    """``n`` markets: the gateway's defaults, cycled, with a suffix after the first round."""
    out: list[MarketSpec] = []
    for i in range(n):
        base = DEFAULT_MARKETS[i % len(DEFAULT_MARKETS)]
        inst = base.instrument
        lap = i // len(DEFAULT_MARKETS)
        sym = inst.symbol if lap == 0 else f"{inst.symbol}-{lap}"
        out.append(
            MarketSpec(
                Instrument(sym, inst.asset_class, inst.tick_size, inst.lot_size),
                base.start_mid,
                base.typical_lots,
            )
        )
    return tuple(out)


def nats_counters(nats: NatsServer) -> dict[str, int]:
    """nats-server's own counters (``/varz``, ``/jsz``): messages in and out, slow consumers,
    JetStream API requests (consumers created, info, direct gets)."""
    out: dict[str, int] = {}
    try:
        with urllib.request.urlopen(f"{nats.monitor_url}/varz", timeout=2) as r:
            v = json.load(r)
        with urllib.request.urlopen(f"{nats.monitor_url}/jsz", timeout=2) as r:
            j = json.load(r)
    except (OSError, ValueError):
        return out
    for k in ("in_msgs", "out_msgs", "slow_consumers"):
        out[k] = int(v.get(k, 0))
    out["js_api_total"] = int(j.get("api", {}).get("total", 0))
    out["js_consumers"] = int(j.get("consumers", 0))
    return out


def proc_cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


class Child:
    """A ``benchmarks.bus_child`` process: JSON commands in, JSON lines out."""

    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}.stderr"
        self.proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    async def start(self) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = await asyncio.create_subprocess_exec(
            PY, "-m", "benchmarks.bus_child", *self.args,
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=self._log, env=env,
        )  # fmt: skip

    def stderr_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    async def recv(self, event: str, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(
                        f"{self.name} exited (status {await self.proc.wait()}) waiting for "
                        f"{event!r}:\n{self.stderr_tail()}"
                    )
                try:
                    msg: dict[str, Any] = json.loads(line)
                except ValueError:
                    continue
                if msg.get("event") == event:
                    return msg

    def send(self, op: str, **fields: Any) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"op": op, **fields}) + "\n").encode())

    async def ask(self, op: str, event: str, timeout: float, **fields: Any) -> dict[str, Any]:
        self.send(op, **fields)
        return await self.recv(event, timeout)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                if self.proc.stdin is not None and not self.proc.stdin.is_closing():
                    self.send("exit")
                    self.proc.stdin.close()
                await asyncio.wait_for(self.proc.wait(), 15.0)
            except (TimeoutError, OSError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()
        if self._log is not None:
            self._log.close()


class GatewayLog(logging.Handler):
    """The gateway's warnings (``market_behind``: it could not keep its rate), counted instead
    of printed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.events.append(json.loads(record.getMessage()))
        except ValueError:
            self.events.append({"event": record.getMessage()})


def truth_digests(gw: Gateway, seqs: dict[str, int]) -> dict[str, str]:
    out: dict[str, str] = {}
    for sym, seq in seqs.items():
        book = gw.true_book(sym, seq)
        inst = book.instrument
        tb, ta = book.to_lists()
        out[sym] = book_digest(
            [[inst.format_price(p), inst.format_size(s)] for p, s in tb],
            [[inst.format_price(p), inst.format_size(s)] for p, s in ta],
        )
    return out


def books_equal(final: dict[str, Any], seqs: dict[str, int], truth: dict[str, str]) -> int:
    """Books synced at the final seq and equal to the truth, level for level."""
    ok = 0
    for sym, seq in seqs.items():
        b = final["books"].get(sym)
        if b and b["synced"] and b["seq"] == seq and b["digest"] == truth[sym]:
            ok += 1
    return ok


def books_differ(final: dict[str, Any], seqs: dict[str, int], truth: dict[str, str]) -> int:
    """Books synced at the final seq that are NOT equal to the truth (a wrong book)."""
    bad = 0
    for sym, seq in seqs.items():
        b = final["books"].get(sym)
        if b and b["synced"] and b["seq"] == seq and b["digest"] != truth[sym]:
            bad += 1
    return bad


async def run_row(spec: RowSpec, a: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    books = a.books
    per_book = spec.rate / books
    cfg = GatewayConfig(
        port=0,
        admin_port=None,
        seed=1,
        rate=per_book,
        markets=markets(books),
        keys=tuple((f"bench{i}", SECRET) for i in range(MAX_KEYS)),
        max_connections_per_address=4096,  # 16 clients' REST pools: an abuse limit, not measured
    )
    symbols = [m.instrument.symbol for m in cfg.markets]
    ring = int(max(spec.rate, 60_000) * a.window_s * 1.5) + 10_000
    common = ["--symbols", ",".join(symbols), "--ring", str(ring)]
    out: dict[str, Any] = {**asdict(spec), "books": books, "window_s": a.window_s,
                           "final_timeout_s": a.final_timeout_s}  # fmt: skip
    tag = f"{spec.rate_label.replace(',', '')}-{spec.consumers}-{spec.mode}"
    t_setup = time.perf_counter()
    gw_log = GatewayLog()
    glog = logging.getLogger("tickpipe.gateway")
    glog.addHandler(gw_log)
    glog.propagate = False
    try:
        async with Gateway(cfg) as gw:
            await _row(gw, spec, a, log_dir, symbols, common, tag, t_setup, out)
    finally:
        glog.removeHandler(gw_log)
        glog.propagate = True
        out["gateway_warnings"] = gw_log.events
    return out


async def _row(
    gw: Gateway,
    spec: RowSpec,
    a: argparse.Namespace,
    log_dir: Path,
    symbols: list[str],
    common: list[str],
    tag: str,
    t_setup: float,
    out: dict[str, Any],
) -> None:
    books = len(symbols)
    nats: NatsServer | None = None
    collector: Child | None = None
    consumers: list[Child] = []
    urls = ["--stream-url", gw.stream_url, "--rest-url", gw.rest_url, "--secret", SECRET]

    def direct(i: int) -> list[str]:
        return [*urls, "--key", f"bench{i}"]

    # the market waits while the processes start (16 interpreters starting on 2 cores would
    # otherwise starve the collector and start the window with its backlog)
    gw.pause_market()
    try:
        if spec.mode == "bus":
            nats = NatsServer().start()
            if a.producer_nice and nats.pid is not None:
                psutil.Process(nats.pid).nice(a.producer_nice)
            col_args = ["collector", *direct(MAX_KEYS - 1), "--nats", nats.url, *common]
            col_args += ["--nice", str(a.producer_nice)]
            collector = Child(f"{tag}-collector", col_args, log_dir)
            await collector.start()
            await collector.recv("ready", READY_TIMEOUT_S)
        nice = ["--nice", str(a.consumer_nice)]
        consumers = [
            Child(
                f"{tag}-consumer{i}",
                ["consumer", *(["--source", nats.url] if nats else direct(i)), *common, *nice],
                log_dir,
            )
            for i in range(spec.consumers)
        ]
        await asyncio.gather(*(c.start() for c in consumers))
        await asyncio.gather(*(c.recv("ready", READY_TIMEOUT_S) for c in consumers))
        everyone = consumers + ([collector] if collector is not None else [])
        out["setup_s"] = round(time.perf_counter() - t_setup, 2)
        gw.resume_market()
        await asyncio.sleep(WARMUP_S)
        # every process is at the gateway's seqs of now before the window opens (a bus
        # consumer's books are synced from the collector's last Snap, then replay the deltas
        # since it; a loaded box can leave any process behind)
        now = {s: gw.seq(f"orderbook:{s}") for s in symbols}
        t_c = a.catchup_timeout_s
        caught = await asyncio.gather(
            *(
                c.ask("catchup", "caught_up", t_c + REPLY_TIMEOUT_S, seqs=now, timeout_s=t_c)
                for c in everyone
            )
        )
        took = [c["took_s"] for c in caught[: len(consumers)]]
        out["catchup_s"] = None if None in took else max(took)
        out["catchup_missed"] = sum(1 for t in took if t is None)
        out.update(await window(gw, spec, a, symbols, everyone, collector, nats))
        # the end: freeze the market, let every process catch up, compare with the truth
        gw.pause_market()
        seqs = {s: gw.seq(f"orderbook:{s}") for s in symbols}
        truth = truth_digests(gw, seqs)
        t_final = a.final_timeout_s
        finals = await asyncio.gather(
            *(
                c.ask("final", "final", t_final + REPLY_TIMEOUT_S, seqs=seqs, timeout_s=t_final)
                for c in everyone
            )
        )
        cons_final = finals[: len(consumers)]
        out["books_equal"] = sum(books_equal(f, seqs, truth) for f in cons_final)
        out["books_total"] = books * len(consumers)
        out["books_differ"] = sum(books_differ(f, seqs, truth) for f in finals)
        final_took = [f["caught_up_s"] for f in cons_final]
        out["caught_up_s"] = None if None in final_took else max(final_took)
        out["consumer_finals"] = [
            {"caught_up_s": f["caught_up_s"], "equal": books_equal(f, seqs, truth)}
            for f in cons_final
        ]
        if collector is not None:
            cf = finals[-1]
            out["collector_books_equal"] = books_equal(cf, seqs, truth)
            out["collector_final"] = {k: v for k, v in cf.items() if k != "books"}
    finally:
        t_close = time.perf_counter()
        await asyncio.gather(*(c.close() for c in consumers), return_exceptions=True)
        if collector is not None:
            await collector.close()
        if nats is not None:
            nats.close()
        out["close_s"] = round(time.perf_counter() - t_close, 2)


async def window(
    gw: Gateway,
    spec: RowSpec,
    a: argparse.Namespace,
    symbols: list[str],
    everyone: list[Child],
    collector: Child | None,
    nats: NatsServer | None,
) -> dict[str, Any]:
    me = psutil.Process()
    nats_p = psutil.Process(nats.pid) if nats is not None and nats.pid is not None else None
    seq0 = sum(gw.seq(f"orderbook:{s}") for s in symbols)
    gw_c0 = proc_cpu(me)
    nats_c0 = proc_cpu(nats_p) if nats_p is not None else 0.0
    nats_n0 = nats_counters(nats) if nats is not None else {}
    t0 = time.perf_counter()
    await asyncio.gather(*(c.ask("start", "started", REPLY_TIMEOUT_S) for c in everyone))
    await asyncio.sleep(a.window_s)
    wins = await asyncio.gather(*(c.ask("stop", "window", REPLY_TIMEOUT_S) for c in everyone))
    wall = time.perf_counter() - t0
    gw_cpu = proc_cpu(me) - gw_c0
    load = os.getloadavg()[0]
    nats_cpu = proc_cpu(nats_p) - nats_c0 if nats_p is not None else None
    nats_n1 = nats_counters(nats) if nats is not None else {}
    generated = sum(gw.seq(f"orderbook:{s}") for s in symbols) - seq0
    cons = wins[: spec.consumers]
    out: dict[str, Any] = {
        "wall_s": wall,
        "gw_deltas_per_s": generated / wall,
        "gw_cores": gw_cpu / wall,
        "load": load,
        "consumers_raw": cons,
    }
    rates = [w["applied"] / w["wall_s"] for w in cons]
    out["applied_per_s_mean"] = statistics.fmean(rates)
    out["applied_per_s_min"] = min(rates)
    p50s = [w["latency_ms"]["p50"] for w in cons if w["latency_ms"]["p50"] is not None]
    p99s = [w["latency_ms"]["p99"] for w in cons if w["latency_ms"]["p99"] is not None]
    out["p50_ms"] = statistics.median(p50s) if p50s else None
    out["p99_ms"] = statistics.median(p99s) if p99s else None
    out["p99_worst_ms"] = max(p99s) if p99s else None
    per = [w["cpu_s"] / w["applied"] * 1e6 for w in cons if w["applied"]]
    out["consumer_us_per_delta"] = statistics.fmean(per) if per else None
    out["consumers_cores"] = sum(w["cpu_s"] / w["wall_s"] for w in cons)
    out["gaps"] = sum(w["gaps"] for w in cons)
    out["reconnects"] = sum(w["reconnects"] for w in cons)
    out["ring_wrapped"] = any(w["ring_wrapped"] for w in wins)
    if collector is not None:
        cw = wins[-1]
        out["collector_raw"] = cw
        out["collector_us_per_delta"] = cw["cpu_s"] / cw["applied"] * 1e6 if cw["applied"] else None
        out["collector_cores"] = cw["cpu_s"] / cw["wall_s"]
        out["collector_applied_per_s"] = cw["applied"] / cw["wall_s"]
        out["collector_p50_ms"] = cw["latency_ms"]["p50"]
        out["collector_p99_ms"] = cw["latency_ms"]["p99"]
        out["collector_dropped"] = cw["dropped"]
        out["published_deltas"] = cw["published_deltas"]
    if nats_cpu is not None:
        out["nats_window"] = {
            k: v - nats_n0.get(k, 0) if k != "js_consumers" else v for k, v in nats_n1.items()
        }
        out["nats_cores"] = nats_cpu / wall
        pub = out.get("published_deltas") or 0
        out["nats_us_per_delta"] = nats_cpu / pub * 1e6 if pub else None
    return out


def fnum(x: float | None, fmt: str = ",.0f") -> str:
    return "-" if x is None else format(x, fmt)


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| deltas/s (total) | consumers | mode | gw deltas/s | applied/s per consumer (mean / min)"
        " | p50 ms | p99 ms (median / worst) | collector p50 / p99 ms"
        " | collector published deltas/s (queue at end; mean batch: msgs, ms to ack)"
        " | µs CPU/delta consumer | µs CPU/delta collector"
        " | µs CPU/delta nats-server | cores: gateway / consumers / collector / nats | load"
        " | books = truth | gaps / reconnects / dropped |"
    )
    lines = [head, "|" + "---|" * 3 + "---:|" * 9 + "---|" + "---:|" + "---|" * 2]
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['rate_label']} | {r['consumers']} | {r['mode']} | error: {r['error']} |"
                + " |" * 12
            )
            continue
        bus = r["mode"] == "bus"
        cores = " / ".join(
            [
                fnum(r["gw_cores"], ".2f"),
                fnum(r["consumers_cores"], ".2f"),
                fnum(r.get("collector_cores"), ".2f") if bus else "-",
                fnum(r.get("nats_cores"), ".2f") if bus else "-",
            ]
        )
        eq = f"{r['books_equal']}/{r['books_total']}"
        if bus:
            eq += f" (collector {r['collector_books_equal']}/{r['books']})"
        if r["catchup_missed"]:
            eq += f"; {r['catchup_missed']} never at the gateway's seqs before the window"
        if r["caught_up_s"] is None:
            missed = sum(1 for f in r["consumer_finals"] if f["caught_up_s"] is None)
            eq += (
                f"; {missed} consumers not at the final seqs in {r['final_timeout_s']:.0f} s "
                "(not compared)"
            )
        elif r["caught_up_s"] > 0.5:
            eq += f", caught up in {r['caught_up_s']:.1f} s"
        eq += f"; **{r['books_differ']} differ**" if r["books_differ"] else "; 0 differ"
        drops = f"{r['gaps']} / {r['reconnects']} / " + (
            str(r["collector_dropped"]) if bus else "-"
        )
        behind = sum(1 for e in r["gateway_warnings"] if e.get("event") == "market_behind")
        gw_rate = fnum(r["gw_deltas_per_s"]) + (f" (behind x{behind})" if behind else "")
        col_lat = (
            f"{fnum(r.get('collector_p50_ms'), '.2f')} / {fnum(r.get('collector_p99_ms'), '.2f')}"
            if bus
            else "-"
        )
        col_pub = "-"
        if bus:
            cr = r["collector_raw"]
            col_pub = f"{fnum(r['published_deltas'] / r['wall_s'])} ({cr['queue_depth']:,}; "
            ms = None if cr["batch_mean_s"] is None else cr["batch_mean_s"] * 1e3
            col_pub += f"{fnum(cr['batch_mean_msgs'])}, {fnum(ms, '.1f')})"
        lines.append(
            f"| {r['rate_label']} | {r['consumers']} | {r['mode']} "
            f"| {gw_rate} "
            f"| {fnum(r['applied_per_s_mean'])} / {fnum(r['applied_per_s_min'])} "
            f"| {fnum(r['p50_ms'], '.2f')} "
            f"| {fnum(r['p99_ms'], '.2f')} / {fnum(r['p99_worst_ms'], '.2f')} "
            f"| {col_lat} | {col_pub} "
            f"| {fnum(r['consumer_us_per_delta'], '.1f')} "
            f"| {fnum(r.get('collector_us_per_delta'), '.1f') if bus else '-'} "
            f"| {fnum(r.get('nats_us_per_delta'), '.1f') if bus else '-'} "
            f"| {cores} | {r['load']:.1f} | {eq} | {drops} |"
        )
    return "\n".join(lines)


def ratios(rows: list[dict[str, Any]]) -> str:
    """bus / direct per (rate, consumers): applied/s, p50, p99, consumer CPU per delta."""
    by = {(r["rate"], r["consumers"], r["mode"]): r for r in rows if "error" not in r}
    out = ["| deltas/s | consumers | applied/s bus/direct | p50 bus/direct | p99 bus/direct"
           " | consumer µs/delta bus/direct | all our CPU bus/direct |",
           "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip

    def rat(x: float | None, y: float | None) -> str:
        return "-" if x is None or y is None or y == 0 else f"{x / y:.2f}x"

    def ours(r: dict[str, Any]) -> float:
        return float(
            r["gw_cores"]
            + r["consumers_cores"]
            + (r.get("collector_cores") or 0.0)
            + (r.get("nats_cores") or 0.0)
        )

    for (rate, n, mode), b in by.items():
        if mode != "bus" or (rate, n, "direct") not in by:
            continue
        d = by[(rate, n, "direct")]
        out.append(
            f"| {b['rate_label']} | {n} "
            f"| {rat(b['applied_per_s_mean'], d['applied_per_s_mean'])} "
            f"| {rat(b['p50_ms'], d['p50_ms'])} | {rat(b['p99_ms'], d['p99_ms'])} "
            f"| {rat(b['consumer_us_per_delta'], d['consumer_us_per_delta'])} "
            f"| {rat(ours(b), ours(d))} |"
        )
    return "\n".join(out)


def plan(a: argparse.Namespace) -> list[RowSpec]:
    rows: list[RowSpec] = []
    for rate in a.rates:
        for n in a.consumers:
            for mode in ("bus", "direct"):
                rows.append(RowSpec(rate, n, mode))
    for n in a.flood:
        for mode in ("bus", "direct"):
            rows.append(RowSpec(0, n, mode))
    return rows


async def amain(a: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tickpipe-busbench-") as d:
        for spec in plan(a):
            t = time.perf_counter()
            try:
                r = await run_row(spec, a, Path(d))
            except Exception as exc:  # a measurement: report the row, go on
                r = {**asdict(spec), "error": f"{type(exc).__name__}: {exc}"}
            r["rate_label"] = spec.rate_label
            r["row_s"] = round(time.perf_counter() - t, 1)
            rows.append(r)
            print(f"  row {spec.rate_label} deltas/s, {spec.consumers} {spec.mode}: "
                  f"{r['row_s']} s" + (f" ERROR {r['error']}" if "error" in r else ""),
                  file=sys.stderr, flush=True)  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k deltas/s only, 2 s windows")
    ap.add_argument("--smoke", action="store_true", help="4 books, 1 consumer, 0.5 s: plumbing")
    ap.add_argument("--rates", default=None, help="total deltas/s, comma-separated (2000,10000)")
    ap.add_argument("--consumers", default=None, help="consumer processes a row (1,4,16)")
    ap.add_argument("--flood", default=None, help="consumer counts of flood rows (1; '' = none)")
    ap.add_argument("--books", type=int, default=None, help="order books (20)")
    ap.add_argument("--window-s", type=float, default=None, help="measured window (4 s)")
    ap.add_argument("--catchup-timeout-s", type=float, default=None,
                    help="bound on reaching the gateway before the window (10 s)")  # fmt: skip
    ap.add_argument("--final-timeout-s", type=float, default=None,
                    help="bound on reaching the final seqs after it (20 s)")  # fmt: skip
    ap.add_argument("--consumer-nice", type=int, default=0,
                    help="nice of the consumer processes (0; 10: the gateway, collector and "
                    "nats-server come first, as on machines of their own)")  # fmt: skip
    ap.add_argument("--producer-nice", type=int, default=0,
                    help="nice of the gateway (this process), collector and nats-server "
                    "(0; negative needs root: a diagnostic, they then come before "
                    "everything else on the machine)")  # fmt: skip
    ap.add_argument("--json", default=None, help="write every raw figure here")
    a = ap.parse_args()
    if a.smoke:
        dflt = {"rates": "1000", "consumers": "1", "flood": "", "books": 4, "window_s": 0.5,
                "catchup_timeout_s": 5.0, "final_timeout_s": 10.0}  # fmt: skip
    elif a.quick:
        dflt = {"rates": "10000", "consumers": "1,4,16", "flood": "", "books": 20,
                "window_s": 2.0, "catchup_timeout_s": 4.0, "final_timeout_s": 8.0}  # fmt: skip
    else:
        dflt = {"rates": "2000,10000", "consumers": "1,4,16", "flood": "1", "books": 20,
                "window_s": 4.0, "catchup_timeout_s": 10.0, "final_timeout_s": 20.0}  # fmt: skip
    for k, v in dflt.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.rates = [int(x) for x in str(a.rates).split(",") if x]
    a.consumers = [int(x) for x in str(a.consumers).split(",") if x]
    a.flood = [int(x) for x in str(a.flood).split(",") if x]
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    if a.producer_nice:
        psutil.Process().nice(a.producer_nice)
    rows = uvloop.run(amain(a))
    total = time.perf_counter() - t0
    m = machine()
    print(
        f"machine: nproc {m['nproc']}, {m['cpu']}, Python {m['python']}; load average at start "
        f"{load0[0]:.2f}, at end {os.getloadavg()[0]:.2f}; {a.books} books, "
        f"{a.window_s} s windows, total {total:.0f} s"
    )
    print()
    print(table(rows))
    print()
    print(ratios(rows))
    if a.json:
        Path(a.json).write_text(json.dumps({"machine": m, "args": vars(a), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
