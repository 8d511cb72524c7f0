"""``benchmarks/bus.py`` cannot rot: its ``--smoke`` run (4 books, one consumer process, bus and
direct, a real gateway, nats-server and collector process) prints its tables and every
consumer's books equal the gateway's truth. No figure is asserted (the box is shared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bus import markets  # noqa: E402
from benchmarks.bus_child import book_digest  # noqa: E402


def test_markets_have_distinct_symbols() -> None:
    syms = [m.instrument.symbol for m in markets(25)]
    assert len(set(syms)) == 25
    assert syms[0] == "BTC-USD" and syms[11] == "BTC-USD-1"


def test_book_digest_covers_every_level() -> None:
    a = book_digest([["1.00", "2"]], [["1.01", "3"]])
    assert a == book_digest([["1.00", "2"]], [["1.01", "3"]])
    assert a != book_digest([["1.00", "2"]], [["1.01", "3"], ["1.02", "1"]])
    assert a != book_digest([["1.00", "2"]], [["1.01", "4"]])


def test_smoke_run_rebuilds_every_book_in_both_modes(tmp_path: Path) -> None:
    out = tmp_path / "bus.json"
    p = subprocess.run(
        [sys.executable, "-m", "benchmarks.bus", "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["mode"], r["consumers"]) for r in rows] == [("bus", 1), ("direct", 1)]
    for r in rows:
        assert "error" not in r, r.get("error")
        assert r["books_equal"] == r["books_total"] == 4
        assert r["books_differ"] == 0
        assert r["consumers_raw"][0]["applied"] > 0
        assert r["p50_ms"] is not None
        assert r["gaps"] == 0
    bus = rows[0]
    assert bus["collector_books_equal"] == 4
    assert bus["published_deltas"] > 0
    assert bus["collector_dropped"] == 0
    # both tables printed, every line with as many cells as its header
    tables = [b for b in p.stdout.split("\n\n") if b.startswith("|")]
    assert len(tables) == 2
    for t, body_rows in zip(tables, (2, 1), strict=True):  # a row per mode; one ratio row
        lines = t.strip().splitlines()
        assert len(lines) == 2 + body_rows  # header, rule, rows
        assert len({ln.count("|") for ln in lines}) == 1, t
