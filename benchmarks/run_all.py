"""The benchmark suite in one command: every row, the same frames, one run, one table.

    .venv/bin/python -m benchmarks.run_all            # full run: ~5-8 min on 2 cores
    .venv/bin/python -m benchmarks.run_all --quick    # ~1 min, fewer frames, same rows
    .venv/bin/python -m benchmarks.run_all --smoke    # ~20 s, a tiny corpus: plumbing only

What happens:

1. The corpus (``benchmarks/framegen.py``) is generated once into ``$TMPDIR`` and reused.
2. The sender (``benchmarks/sender.py``) starts in its own process, pinned to CPU 0; each row
   runs in a fresh process pinned to CPU 1 (``--no-pin`` to let the OS place them).
3. Sender ceiling: a discard receiver (``rows/discard.py``) drains a flood and a 2M frames/s
   fixed-rate stream: whatever it reaches is the most any row could be fed.
4. Flood: every row receives the first ``--frames`` frames as fast as it can take them.
5. Fixed rate: every row receives ``rate x --rate-seconds`` frames at each total rate (1k, 10k,
   50k frames/s over 200 channels) and reports ts -> applied latency.
6. Memory: 1,000-levels-a-side books in each structure, each in a fresh process.
7. The tables and the ratios are printed; ``--json PATH`` also writes every raw result.

Every row is bounded by its frame count and by a timeout (``frames / 5,000 + 30`` s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import framegen
from benchmarks.sender_proc import SenderProc

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    module: str
    variant: str
    in_rate: bool = True


ROWS = (
    Row("raw", "1 raw: picows+uvloop, receive only", "raw", "receive"),
    Row("decode", "2 raw+decode: + msgspec typed", "raw", "msgspec"),
    Row("decode_orjson", "2b raw+decode: + orjson dicts", "raw", "orjson", in_rate=False),
    Row("naive", "3 naive: websockets+json+SortedDict[Decimal]", "naive", ""),
    Row("peer", "4 peer: order_book C ext, msgspec, seq check", "peer", "seq"),
    Row("peer_crc", "4b peer + VTS checksum in Python", "peer", "crc", in_rate=False),
    Row("tickpipe", "5 tickpipe.Client (uvloop), defaults", "tickpipe_row", "uvloop"),
)


# The WebSocket stack choice: the same receive + msgspec decode as row 2 over the alternatives.
STACKS = tuple(
    Row(f"stack_{v}", f"{v.replace('-', ' on ')} + msgspec", "stacks", v, in_rate=False)
    for v in ("picows-asyncio", "websockets-uvloop", "websockets-asyncio", "aiohttp-uvloop")
)


@dataclass(frozen=True)
class Profile:
    corpus: framegen.CorpusSpec
    frames: int
    rates: tuple[int, ...]
    rate_s: float
    mem_books: int
    mem_levels: int
    repeat: int


PROFILES = {
    "full": Profile(framegen.CorpusSpec(), 200_000, (1_000, 10_000, 50_000), 3.0, 100, 1000, 3),
    "quick": Profile(
        framegen.CorpusSpec(frames=120_000), 50_000, (1_000, 10_000, 50_000), 1.0, 20, 1000, 1
    ),
    "smoke": Profile(framegen.CorpusSpec(frames=6_000, depth=60), 3_000, (1_000,), 0.5, 2, 100, 1),
}


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run_row(
    module: str, args: list[str], timeout_s: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    cmd = [PY, "-m", f"benchmarks.rows.{module}", *args]
    try:
        p = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s + 30, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{module} did not finish in {timeout_s + 30:.0f}s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            out: dict[str, Any] = json.loads(line[7:])
            return out
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    return {"error": f"{module} exit {p.returncode}: {' | '.join(tail)}"}


class Suite:
    def __init__(
        self, prof: Profile, pin: bool, repeat: int, only: set[str] | None, nice: int = 0
    ) -> None:
        self.prof = prof
        self.nice = nice
        self.pin = pin and (os.cpu_count() or 1) >= 2
        self.repeat = repeat
        self.rows = [r for r in ROWS if only is None or r.key in only]
        self.stacks = only is None or "stacks" in only
        self.results: dict[str, Any] = {"machine": machine(), "profile": {}}
        self.log = print

    def common(self, s: SenderProc, corpus: Path) -> list[str]:
        a = ["--stream-url", s.stream_url, "--rest-url", s.rest_url, "--corpus", str(corpus)]
        return a + (["--cpu", "1"] if self.pin else []) + ["--nice", str(self.nice)]

    def stream_row(
        self,
        s: SenderProc,
        corpus: Path,
        row: Row,
        mode: str,
        frames: int,
        rate: float,
        repeat: int | None = None,
    ) -> dict[str, Any]:
        timeout = frames / 5_000 + 30
        args = [*self.common(s, corpus), "--mode", mode, "--frames", str(frames)]
        args += ["--rate", str(rate), "--timeout", str(timeout)]
        if row.variant:
            args += ["--variant", row.variant]
        runs = [run_row(row.module, args, timeout) for _ in range(repeat or self.repeat)]
        good = [r for r in runs if "error" not in r]
        if not good:
            return runs[0]
        # the median run by the figure that matters in this mode
        key = "fps" if mode == "flood" else "lat_p99_us"
        good.sort(key=lambda r: r.get(key) or 0.0)
        med = dict(good[len(good) // 2])
        if len(good) > 1:
            med["repeats"] = [r.get(key) for r in runs]
        return med

    def run(self) -> dict[str, Any]:
        prof = self.prof
        t_all = time.perf_counter()
        t = time.perf_counter()
        corpus = framegen.ensure(prof.corpus)
        self.log(f"corpus: {corpus} ({time.perf_counter() - t:.1f}s)")
        self.results["profile"] = {
            "frames": prof.frames,
            "rates": list(prof.rates),
            "rate_seconds": prof.rate_s,
            "channels": prof.corpus.books + prof.corpus.tickers + prof.corpus.trades,
            "books": prof.corpus.books,
            "depth": prof.corpus.depth,
            "pinned": self.pin,
            "repeat": self.repeat,
            "nice": self.nice,
        }
        sender = SenderProc("sender", corpus, ["--nice", str(self.nice)], 0 if self.pin else None)
        try:
            self._stream_phases(sender, corpus)
        finally:
            sender.stop()
        self._memory()
        self.results["total_s"] = round(time.perf_counter() - t_all, 1)
        return self.results

    def _stream_phases(self, s: SenderProc, corpus: Path) -> None:
        prof = self.prof
        n_corpus = prof.corpus.frames
        ceiling = Row("sender", "sender ceiling (discard receiver)", "discard", "")
        self.results["sender_flood"] = self.stream_row(s, corpus, ceiling, "flood", n_corpus, 0)
        self.results["sender_rate"] = self.stream_row(
            s, corpus, ceiling, "rate", n_corpus, 2_000_000
        )
        self.log(
            f"sender ceiling: flood {self.results['sender_flood'].get('fps', 0):,.0f} frames/s, "
            f"rate mode {self.results['sender_rate'].get('fps', 0):,.0f} frames/s"
        )
        flood: dict[str, Any] = {}
        for row in self.rows:
            flood[row.key] = r = self.stream_row(s, corpus, row, "flood", prof.frames, 0)
            self.log(f"flood  {row.key:14s} {_brief(r)}")
        self.results["flood"] = flood
        if self.stacks:
            stacks: dict[str, Any] = {}
            for row in STACKS:
                # a side table: one run each keeps the suite well under 10 minutes
                stacks[row.key] = r = self.stream_row(s, corpus, row, "flood", prof.frames, 0, 1)
                self.log(f"flood  {row.key:14s} {_brief(r)}")
            self.results["stacks"] = stacks
        rate: dict[str, dict[str, Any]] = {}
        for hz in prof.rates:
            n = min(n_corpus, int(hz * prof.rate_s))
            rate[str(hz)] = {}
            for row in self.rows:
                if not row.in_rate:
                    continue
                rate[str(hz)][row.key] = r = self.stream_row(s, corpus, row, "rate", n, hz)
                self.log(f"rate {hz:>6} {row.key:14s} {_brief(r)}")
        self.results["rate"] = rate

    def _memory(self) -> None:
        prof = self.prof
        mem: dict[str, Any] = {}
        for st in ("tickpipe", "peer", "naive"):
            mem[st] = {}
            for traced in (False, True):
                args = ["--structure", st, "--books", str(prof.mem_books)]
                args += ["--levels", str(prof.mem_levels)] + (["--traced"] if traced else [])
                r = run_row("memory", args, 120)
                mem[st]["traced" if traced else "rss"] = r.get("bytes_per_level", r.get("error"))
            self.log(f"memory {st:9s} {mem[st]}")
        self.results["memory"] = mem


def _brief(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"ERROR {r['error']}"
    s = f"{r.get('fps', 0):>12,.0f} fps {r.get('cpu_us') or 0:7.2f} us/frame"
    if "lat_p99_us" in r:
        s += f"  p50 {r['lat_p50_us']} p99 {r['lat_p99_us']} p99.9 {r['lat_p999_us']} us"
    if r.get("gaps"):
        s += f"  GAPS {r['gaps']}"
    if "books_equal_truth" in r and r["books_equal_truth"] != r.get("books_checked"):
        s += f"  ONLY {r['books_equal_truth']} BOOKS EQUAL THE TRUTH"
    if r.get("checksum_verified") is False:
        s += "  CHECKSUM VERIFICATION OFF: figure does not count"
    return s


# -- the report -----------------------------------------------------------------------------


def _f(x: Any, fmt: str = "{:,.0f}") -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    return fmt.format(x)


def _ratio(a: Any, b: Any) -> float | None:
    try:
        return float(a) / float(b) if a and b else None
    except (TypeError, ValueError):
        return None


def report(res: dict[str, Any]) -> str:
    m, prof = res["machine"], res["profile"]
    out: list[str] = []
    w = out.append
    w(
        f"machine: {m['nproc']} CPU ({m['cpu']}), Python {m['python']}, {m['platform']}; "
        f"pinned: {prof['pinned']}; repeat: {prof['repeat']}; nice: {prof.get('nice', 0)}"
    )
    w(
        f"corpus: {prof['channels']} channels ({prof['books']} books, ~{prof['depth']} levels "
        f"a side), flood {prof['frames']:,} frames, rate runs {prof['rate_seconds']} s each"
    )
    sf, sr = res.get("sender_flood", {}), res.get("sender_rate", {})
    w(
        f"sender ceiling (discard receiver): flood {_f(sf.get('fps'))} frames/s, "
        f"fixed-rate loop {_f(sr.get('fps'))} frames/s"
    )
    w("")
    flood = res.get("flood", {})
    labels = {r.key: r.label for r in ROWS}
    decode_best = min(
        (flood.get(k, {}).get("cpu_us") or 1e9 for k in ("decode", "decode_orjson")), default=0
    )
    w(
        "| row | frames/s | µs CPU/frame | frames per CPU-s | % of raw+decode (CPU) "
        "| RSS setup MB | KiB/channel | RSS start→end MB | gaps |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, r in flood.items():
        if "error" in r:
            w(f"| {labels.get(key, key)} | error: {r['error'][:60]} | | | | | | | |")
            continue
        pct = _ratio(decode_best, r.get("cpu_us"))
        per_cpu_s = _ratio(1e6, r.get("cpu_us"))
        w(
            f"| {labels.get(key, key)} | {_f(r.get('fps'))} | {_f(r.get('cpu_us'), '{:.2f}')} | "
            f"{_f(per_cpu_s)} | {_f(pct and pct * 100, '{:.0f}%')} | "
            f"{_f(r.get('rss_setup_mb'), '{:.1f}')} | "
            f"{_f(r.get('rss_per_channel_kb'), '{:.1f}')} | "
            f"{_f(r.get('rss_start_mb'), '{:.1f}')}→{_f(r.get('rss_end_mb'), '{:.1f}')} | "
            f"{r.get('gaps', '-')} |"
        )
    stacks = res.get("stacks", {})
    if stacks:
        w("")
        w("| WebSocket stack (receive + msgspec decode) | frames/s | µs CPU/frame |")
        w("|---|---:|---:|")
        d = flood.get("decode", {})
        if d and "error" not in d:
            w(
                f"| picows on uvloop + msgspec (row 2) | {_f(d.get('fps'))} | "
                f"{_f(d.get('cpu_us'), '{:.2f}')} |"
            )
        for key, r in stacks.items():
            label = next((s.label for s in STACKS if s.key == key), key)
            if "error" in r:
                w(f"| {label} | error: {r['error'][:60]} | |")
            else:
                w(f"| {label} | {_f(r.get('fps'))} | {_f(r.get('cpu_us'), '{:.2f}')} |")
    rate = res.get("rate", {})
    if rate:
        w("")
        hzs = list(rate)
        w(
            "| row (latency ts→applied, µs p50 / p99 / p99.9) | "
            + " | ".join(f"{int(h):,}/s" for h in hzs)
            + " |"
        )
        w("|---|" + "---:|" * len(hzs))
        keys = [k for k in flood if any(k in rate[h] for h in hzs)] or list(rate[hzs[0]])
        for key in keys:
            cells = []
            for h in hzs:
                r = rate[h].get(key, {})
                if "error" in r or not r:
                    cells.append("error" if r else "-")
                    continue
                c = " / ".join(_f(r[f"lat_{q}_us"], "{:.0f}") for q in ("p50", "p99", "p999"))
                if r.get("fps", 0) < 0.99 * float(h) or r["lat_p50_us"] > 50_000:
                    c += f" (behind: {_f(r.get('fps'))}/s)"  # a backlog, not a latency
                cells.append(c)
            w(f"| {labels.get(key, key)} | " + " | ".join(cells) + " |")
    mem = res.get("memory", {})
    if mem:
        w("")
        w("| structure (1,000 levels a side) | bytes/level (RSS) | bytes/level (tracemalloc) |")
        w("|---|---:|---:|")
        for st, v in mem.items():
            w(f"| {st} | {_f(v.get('rss'), '{:.0f}')} | {_f(v.get('traced'), '{:.0f}')} |")
    w("")
    w("ratios (same run):")
    tp = flood.get("tickpipe", {})
    if tp.get("checksum_verified") is False:
        w(
            "  WARNING: the core did not verify checksums in this run; "
            "tickpipe's figures do not count"
        )
    for other, name in (
        ("naive", "naive"),
        ("decode", "raw+decode (msgspec)"),
        ("decode_orjson", "raw+decode (orjson)"),
        ("peer", "peer (seq check only)"),
        ("peer_crc", "peer + checksum"),
    ):
        o = flood.get(other, {})
        fr = _ratio(tp.get("fps"), o.get("fps"))
        cr = _ratio(o.get("cpu_us"), tp.get("cpu_us"))
        if fr is not None:
            w(
                f"  tickpipe / {name}: {fr:.2f}x frames/s (wall), {cr or 0:.2f}x frames per "
                f"CPU-second ({_f(tp.get('cpu_us'), '{:.2f}')} vs "
                f"{_f(o.get('cpu_us'), '{:.2f}')} µs CPU per frame)"
            )
    r10 = rate.get("10000", {})
    if r10.get("tickpipe"):
        floor = r10.get("decode", {}).get("lat_p99_us")
        w(
            f"  tickpipe p99 at 10k frames/s: {r10['tickpipe'].get('lat_p99_us')} µs "
            f"(target < 1000; the raw+decode floor in the same run: {floor} µs)"
        )
    if mem.get("tickpipe") and mem.get("peer"):
        mr = _ratio(mem["tickpipe"].get("rss"), mem["peer"].get("rss"))
        w(f"  tickpipe / peer bytes per level (RSS): {mr or 0:.2f}x (target <= 1)")
    if tp.get("rss_start_mb"):
        trace = tp.get("rss_trace") or []
        picks = [trace[round(i * (len(trace) - 1) / 4)] for i in range(5)] if trace else []
        path = ", ".join(f"{n:,}: {mb}" for n, mb in picks)
        w(
            f"  tickpipe RSS over {tp.get('frames', 0):,} frames: {tp['rss_start_mb']} → "
            f"{tp['rss_end_mb']} MB (frames applied: MB  {path})"
        )
    w(f"total {res.get('total_s')} s")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="tickpipe end-to-end benchmark suite")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="~1 minute: fewer frames, 1 s rates")
    g.add_argument("--smoke", action="store_true", help="tiny corpus; checks the plumbing")
    ap.add_argument("--no-pin", action="store_true", help="do not pin sender/rows to CPUs")
    ap.add_argument(
        "--repeat", type=int, default=None, help="runs per row and mode, median kept (full: 3)"
    )
    ap.add_argument(
        "--nice",
        type=int,
        default=0,
        help="priority increment for sender and rows; < 0 (root only) shields the figures "
        "from busy neighbours, at their expense",
    )
    ap.add_argument(
        "--rows", default=None, help=f"comma list of {', '.join(r.key for r in ROWS)}, stacks"
    )
    ap.add_argument("--json", type=Path, default=None, help="write every raw result here")
    a = ap.parse_args(argv)
    prof = PROFILES["smoke" if a.smoke else "quick" if a.quick else "full"]
    only = set(a.rows.split(",")) if a.rows else None
    repeat = prof.repeat if a.repeat is None else max(1, a.repeat)
    res = Suite(prof, not a.no_pin, repeat, only, a.nice).run()
    text = report(res)
    print()
    print(text)
    if a.json is not None:
        a.json.write_text(json.dumps(res, indent=1))
    errors = [k for k, r in res.get("flood", {}).items() if "error" in r]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
