"""The venue-flood benchmark cannot rot: a tiny corpus through the real sender and two rows.

No timing is asserted (figures belong to ``benchmarks/venue_flood.py``'s output); what is
checked is that the corpus is valid Binance spot (contiguous ids, the client's codec decodes
every event, the books it describes stay uncrossed), that the imitation serves what the tickpipe
Binance client and a naive client need, and that both rows end with every book equal to the
sender's truth. The cryptofeed row needs its own venv and is not run here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import venue_flood as vf  # noqa: E402
from benchmarks import venue_flood_sender as vfs  # noqa: E402
from tickpipe.protocol.normalised import BookDelta  # noqa: E402
from tickpipe.venues.binance.codec import Codec  # noqa: E402
from tickpipe.venues.binance.endpoints import SPOT  # noqa: E402

TINY = vfs.FloodSpec(books=4, warmup=200, frames=2_000, depth=40, seed=5)


@pytest.fixture(scope="module")
def corpus() -> Path:
    return vfs.ensure(TINY)


@pytest.fixture(scope="module")
def sender(corpus: Path) -> Iterator[vf.SenderProc]:
    s = vf.SenderProc("venue_flood_sender", corpus)
    try:
        yield s
    finally:
        s.stop()


def test_corpus_is_valid_binance_spot(corpus: Path) -> None:
    c = vfs.load(corpus)
    codec = Codec(SPOT)
    assert len(c.events) == TINY.warmup + TINY.frames
    last = list(c.initial_id)
    books = [(dict(b), dict(a)) for b, a in c.initial]
    for i, raw in enumerate(c.events):
        ev = codec.decode_frame(raw)
        assert isinstance(ev, BookDelta)
        b = c.book_of[i]
        assert ev.symbol == c.symbols[b]
        assert ev.first_id == last[b] + 1 and ev.last_id is not None  # U == previous u + 1
        assert 1 <= ev.last_id - ev.first_id + 1 <= 3 and 1 <= len(ev.bids) + len(ev.asks) <= 3
        last[b] = ev.last_id
        vfs._apply(books[b][0], c.bids[i])
        vfs._apply(books[b][1], c.asks[i])
        assert max(books[b][0]) < min(books[b][1])  # never crossed
    assert set(c.book_of[: TINY.books]) == set(range(TINY.books))  # each book early in warm-up


def test_exchange_info_is_taken_by_the_client_codec(corpus: Path) -> None:
    insts = Codec(SPOT).decode_exchange_info(vfs.exchange_info(vfs.load(corpus)))
    assert list(insts) == ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
    assert insts["BTCUSDT"].tick_size == "0.00000001"  # the book grid: 8 decimals


def test_snapshot_ids_sit_inside_the_next_event(corpus: Path) -> None:
    truth = vfs.Truth(vfs.load(corpus))
    inside = 0
    for b in range(truth.n):
        for k in range(len(truth.idx[b])):
            sid = truth.snapshot_id(b, k)
            nxt = truth.idx[b][k]
            first, last = truth.c.first[nxt], truth.c.last[nxt]
            assert first <= sid + 1 <= last  # Binance's bridge rule holds for the next event
            inside += sid + 1 > first
    assert inside > 0  # some snapshots need U <= id + 1 <= u, not only U == id + 1


@pytest.mark.parametrize("row", [vf.TICKPIPE, vf.NAIVE], ids=lambda r: r.key)
def test_row_books_equal_the_truth(sender: vf.SenderProc, row: vf.Row) -> None:
    r = vf.run_once(row, sender, sys.executable, False, 40.0, 0, None)
    assert "error" not in r, r
    assert r["books_equal"] == r["books_checked"] == TINY.books, r["book_diffs"]
    assert r["frames"] == TINY.frames and r["fps"] > 0 and r["cpu_us"] > 0
    assert r["gaps"] == 0
    assert r["sender"]["frames_written"] == TINY.warmup + TINY.frames
    if row is vf.TICKPIPE:
        assert r["client_frames"] == TINY.frames and r["bad_frames"] == 0
        assert r["hot_path"]


def test_table_reports_a_wrong_book() -> None:
    truth = {"X": {"last_id": 5, "bids": [["1.0", "2"]], "asks": [["3", "1"]]}}
    ok, _ = vf.books_equal(
        {"X": {"seq": 5, "bids": [["1", "2.0"]], "asks": [["3", "1"]]}}, truth, 0
    )
    assert ok == 1  # compared as decimals
    bad, why = vf.books_equal(
        {"X": {"seq": 5, "bids": [["1", "3"]], "asks": [["3", "1"]]}}, truth, 0
    )
    assert bad == 0 and "bids" in why[0]
    row: dict[str, Any] = {"fps": 1.0, "cpu_us": 1.0, "books_equal": 0, "books_checked": 1}
    res = {"tickpipe": {**row, "book_diffs": why}}
    assert "WRONG" in vf.table(res, {})
