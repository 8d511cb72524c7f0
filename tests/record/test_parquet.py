"""`tickpipe replay --parquet DIR`: tables read back with pyarrow, exact decimals, and the
last top-of-book / levels rows of each book equal the replay's final_book lines."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tickpipe.gateway.testing import GatewayProcess

pytestmark = pytest.mark.slow


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tickpipe", *args], capture_output=True,
                          text=True, timeout=90)  # fmt: skip


def test_parquet_tables_hold_the_replayed_books_exactly(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    with GatewayProcess("--fault", "drop_delta=0.01") as gw:
        r = run("record", "orderbook:AAPL", "orderbook:BTC-USD", "ticker:BTC-USD",
                "trades:BTC-USD", "--stream-url", gw.stream_url, "--rest-url", gw.rest_url,
                "--out", str(rec), "--duration", "4")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = tmp_path / "pq"
    p = run("replay", str(rec), "--jsonl", "--parquet", str(out), "--depth", "5")
    assert p.returncode == 0, p.stderr
    finals = [json.loads(x) for x in p.stdout.splitlines() if '"final_book"' in x]
    top = pq.read_table(out / "top_of_book.parquet")
    assert pa.types.is_decimal(top.schema.field("bid_price").type)
    assert b"tickpipe.decimals" in top.schema.metadata
    levels = pq.read_table(out / "levels.parquet").to_pylist()
    tops = top.to_pylist()
    # a drop near the end can leave a book re-seeding when the recording stops: its final_book
    # is not synced and has no top-of-book row to match; the others are checked
    synced = [fb for fb in finals if fb["synced"]]
    assert synced, f"no book synced at the end: {finals}"
    for fb in synced:
        ch = fb["channel"]
        last = [row for row in tops if row["channel"] == ch][-1]
        assert last["seq"] == fb["seq"]
        assert last["bid_price"] == Decimal(fb["bids"][0][0])
        assert last["ask_size"] == Decimal(fb["asks"][0][1])
        at = [x for x in levels if x["channel"] == ch and x["recv_mono_ns"] == last["recv_mono_ns"]]
        bids = [[x["price"], x["size"]] for x in at if x["side"] == "bid"]
        assert bids == [[Decimal(a), Decimal(b)] for a, b in fb["bids"]]
    trades = pq.read_table(out / "trades.parquet").to_pylist()
    lines = [json.loads(x) for x in p.stdout.splitlines() if '"trade"' in x]
    assert [(t["seq"], t["price"]) for t in trades] == [
        (x["seq"], Decimal(x["price"])) for x in lines
    ]
    assert pq.read_table(out / "tickers.parquet").num_rows > 0
    health = pq.read_table(out / "health.parquet").to_pylist()
    assert {"connected", "synced", "gap"} <= {h["event"] for h in health}
    # --every-ms thins the book rows
    out2 = tmp_path / "pq2"
    p2 = run("replay", str(rec), "--quiet", "--parquet", str(out2), "--every-ms", "1000")
    assert p2.returncode == 0, p2.stderr
    assert 0 < pq.read_table(out2 / "top_of_book.parquet").num_rows < top.num_rows


def test_parquet_without_pyarrow_is_a_usage_error_naming_the_extra(tmp_path: Path) -> None:
    """pyarrow is an optional extra: without it --parquet exits 2 saying how to get it, before
    reading anything; replay without --parquet does not need it."""
    code = (
        "import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None\n"
        "from tickpipe.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    rec = tmp_path / "rec"
    with GatewayProcess() as gw:
        r = run("record", "orderbook:AAPL", "--stream-url", gw.stream_url,
                "--rest-url", gw.rest_url, "--out", str(rec), "--duration", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    p = subprocess.run(
        [sys.executable, "-c", code, "replay", str(rec), "--parquet", str(tmp_path / "pq")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    assert "--parquet needs pyarrow" in p.stderr and "tickpipe[parquet]" in p.stderr
    assert "Traceback" not in p.stderr
    p2 = subprocess.run(
        [sys.executable, "-c", code, "replay", str(rec), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p2.returncode == 0, p2.stderr
