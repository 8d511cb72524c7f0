"""``benchmarks/saturation.py`` and its flood gateway cannot rot: tiny, bounded, real sockets.

No figure is asserted (today's client may not keep its books under the flood: that is what the
benchmark measures). What is checked: the cyclic corpus replays exactly lap after lap, faults
touch only what they should, a snapshot is the exact book at the seq handed to the socket (so
it bridges to the deltas after it), and one small run prints its table and checks every book
against the truth.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import zlib
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import aiohttp
import pytest
import websockets

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.sender_proc import SenderProc  # noqa: E402

from benchmarks import sat_sender  # noqa: E402
from tickpipe.protocol import frames as vts  # noqa: E402
from tickpipe.protocol.book import OrderBook  # noqa: E402

TINY = sat_sender.CycleSpec(books=4, half=400, depth=30, seed=5)


@pytest.fixture(scope="module")
def tiny_cycle() -> Path:
    return sat_sender.ensure(TINY)


def _ws_payloads(data: bytes) -> Iterator[bytes]:
    i = 0
    while i < len(data):
        n, j = data[i + 1] & 0x7F, i + 2
        if n == 126:
            n, j = int.from_bytes(data[i + 2 : i + 4], "big"), i + 4
        yield data[j : j + n]
        i = j + n


def _apply(book: OrderBook, f: vts.Delta) -> int:
    inst = book.instrument
    book.apply(
        vts.parse_levels(f.bids, inst, f.channel, "bids"),
        vts.parse_levels(f.asks, inst, f.channel, "asks"),
    )
    return zlib.crc32(book.checksum_string().encode())


def test_the_stream_replays_lap_after_lap_with_exact_seqs_checksums_and_truth(
    tiny_cycle: Path,
) -> None:
    truth = sat_sender.Truth(sat_sender.load(tiny_cycle))
    feed = sat_sender.Feed(truth, faults=False, fault_every_s=1.0, snapshot_limit=0)
    books: dict[str, OrderBook] = {}
    last: dict[str, int] = {}
    for b, sym in enumerate(truth.cyc.symbols):
        last[f"orderbook:{sym}"], books[f"orderbook:{sym}"] = truth.book_at(b, 0)
    checked = 0
    for _ in range(200):  # bounded: a few laps of 800 frames
        if feed.pos > 3 * truth.length:
            break
        data, cut = feed._chunk()
        assert not cut
        for payload in _ws_payloads(data):
            f = vts.decode_server_frame(payload)
            assert isinstance(f, vts.Delta)
            assert f.seq == last[f.channel] + 1, "seqs go on across laps"
            last[f.channel] = f.seq
            assert _apply(books[f.channel], f) == f.checksum
            checked += 1
    assert feed.pos > 3 * truth.length and checked == feed.pos
    for b, sym in enumerate(truth.cyc.symbols):
        seq, book = truth.book_at(b, feed.pos)
        assert seq == last[f"orderbook:{sym}"]
        assert book == books[f"orderbook:{sym}"]


def test_drop_and_checksum_faults_touch_one_delta_of_one_book(tiny_cycle: Path) -> None:
    truth = sat_sender.Truth(sat_sender.load(tiny_cycle))
    feed = sat_sender.Feed(truth, faults=True, fault_every_s=1.0, snapshot_limit=0)
    sym = truth.cyc.symbols[1]
    for kind in ("drop", "checksum"):
        start = dict(zip(truth.cyc.symbols, feed.next_seq, strict=True))
        book = truth.book_at(1, feed.pos)[1]
        feed.pending = (kind, 1)
        data, cut = feed._chunk()
        assert not cut and feed.pending is None
        seen: dict[str, list[vts.Delta]] = {}
        for payload in _ws_payloads(data):
            f = vts.decode_server_frame(payload)
            assert isinstance(f, vts.Delta)
            seen.setdefault(f.channel.partition(":")[2], []).append(f)
        for s, fs in seen.items():
            seqs = [f.seq for f in fs]
            gaps = [b - a for a, b in pairwise(seqs) if b != a + 1]
            if s == sym and kind == "drop":
                assert seqs[0] == start[s] + 1 or gaps == [2], "exactly one seq skipped"
            else:
                assert seqs[0] == start[s] and not gaps
        if kind == "checksum":  # the levels are right: only that one delta's CRC-32 is wrong
            wrong = [f.seq for f in seen[sym] if _apply(book, f) != f.checksum]
            assert len(wrong) == 1
        (log,) = [e for e in feed.fault_log if e["kind"] == kind]
        assert log["symbol"] == sym
    # the truth is the venue's book: it has the dropped and the corrupted delta applied
    books = {s: truth.book_at(b, 0)[1] for b, s in enumerate(truth.cyc.symbols)}
    for i in range(feed.pos):
        b = truth.cyc.book_of[i % truth.length]
        books[truth.cyc.symbols[b]].apply(
            truth.cyc.bids[i % truth.length], truth.cyc.asks[i % truth.length]
        )
    for b, s in enumerate(truth.cyc.symbols):
        assert truth.book_at(b, feed.pos)[1] == books[s]


@pytest.fixture()
def sat_gateway(tiny_cycle: Path) -> Iterator[dict[str, str]]:
    proc = SenderProc("sat_sender", tiny_cycle)
    try:
        ready = proc.ready
        assert ready["event"] == "ready" and ready["books"] == TINY.books
        yield ready
    finally:
        proc.stop()


async def test_a_snapshot_is_the_book_at_the_seq_handed_to_the_socket(
    sat_gateway: dict[str, str],
) -> None:
    """Read slowly: the snapshot is ahead of what was read, and bridges to the deltas after it."""
    rest = sat_gateway["rest_url"]
    async with aiohttp.ClientSession() as http:
        insts = (await (await http.get(f"{rest}/v1/instruments")).json())["instruments"]
        sym = insts[0]["symbol"]
        ch = f"orderbook:{sym}"
        async with websockets.connect(
            sat_gateway["stream_url"], max_queue=4, close_timeout=0.5
        ) as ws:
            await ws.send(json.dumps({"action": "auth", "key": "k", "ts": 1, "sig": "00"}))
            assert json.loads(await ws.recv())["type"] == "authenticated"
            await ws.send(json.dumps({"action": "subscribe", "channels": [ch], "id": 1}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            read_seq = None
            for _ in range(50):
                f = json.loads(await ws.recv())
                if f["channel"] == ch:
                    read_seq = f["seq"]
            await asyncio.sleep(0.5)  # not reading: the buffers fill, the gateway is paused
            resp = await http.get(f"{rest}/v1/orderbook/{sym}")
            snap = vts.decode_snapshot(await resp.read())
            stats = await (await http.get(f"{rest}/sat/stats")).json()
            assert read_seq is not None and snap.seq > read_seq, "ahead of what was read"
            assert snap.seq == stats["seqs"][sym], "at the last seq handed to the socket"
            inst = vts.decode_instruments(json.dumps({"instruments": insts}).encode())[0]
            book = OrderBook(inst)
            book.load(
                vts.parse_levels(snap.bids, inst, sym, "bids"),
                vts.parse_levels(snap.asks, inst, sym, "asks"),
            )
            bridged = 0
            for _ in range(200_000):  # bounded; the snapshot is a few chunks ahead at most
                msg = await ws.recv()
                assert isinstance(msg, str)
                if f'"{ch}"' not in msg:
                    continue
                f = vts.decode_server_frame(msg.encode())
                assert isinstance(f, vts.Delta)
                if f.seq <= snap.seq:
                    continue
                assert f.seq == snap.seq + 1 + bridged
                assert _apply(book, f) == f.checksum
                bridged += 1
                if bridged == 20:
                    break
            assert bridged == 20
        stop = await (await http.post(f"{rest}/sat/stop")).json()
        truth = (await (await http.get(f"{rest}/sat/truth")).json())["books"]
        assert truth[sym]["seq"] == stop["seqs"][sym] >= snap.seq + 20
        assert stop["frames_written"] == stop["pos"] > 0


@pytest.mark.slow
def test_saturation_smoke_run_prints_the_table_and_checks_every_book(tmp_path: Path) -> None:
    out = tmp_path / "sat.json"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.saturation",
            "--rows",
            "10",
            "--seconds",
            "2",
            "--drain-seconds",
            "2",
            "--cycle-half",
            "3000",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    res = json.loads(out.read_text())
    rows = res["rows"]
    assert [r["row"] for r in rows] == ["10 books", "10 books, faults"]
    for r in rows:
        assert "error" not in r, r
        assert r["frames"] > 0 and r["fps"] > 0
        assert r["books_checked"] == 10, "the truth check ran over every book"
        assert 0 <= r["equal_truth"] <= r["synced_end"] <= 10
        assert r["snapshot_requests"] >= 10
        assert set(r["gaps"]) >= {"overflow", "seq_gap", "checksum"}
    assert {f["kind"] for f in rows[1]["sender"]["faults"]} >= {"drop"}
    assert "| 10 books |" in p.stdout and "| 10 books, faults |" in p.stdout
    assert "targets (issue 11)" in p.stdout
