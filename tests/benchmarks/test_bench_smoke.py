"""The benchmark suite cannot rot: a tiny bounded run of every piece, real sockets on loopback.

No timing is asserted here (figures belong to ``benchmarks/run_all.py``'s output); what is
checked is that every row receives every frame with no gap, that the corpus is valid VTS/1,
and that the sender speaks enough VTS/1 for the real client.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.sender_proc import SenderProc  # noqa: E402

from benchmarks import framegen  # noqa: E402

TINY = framegen.CorpusSpec(frames=1_500, books=12, tickers=3, trades=3, depth=40, seed=3)


@pytest.fixture(scope="module")
def tiny_corpus() -> Path:
    return framegen.ensure(TINY)


@pytest.fixture()
def sender(tiny_corpus: Path) -> Iterator[dict[str, str]]:
    proc = SenderProc("sender", tiny_corpus)
    try:
        ready = proc.ready
        assert ready["event"] == "ready"
        yield ready
    finally:
        proc.stop()


def test_corpus_seqs_and_checksums_are_valid(tiny_corpus: Path) -> None:
    assert framegen.verify(tiny_corpus, limit=TINY.frames) > 0
    frm = framegen.load_frames(tiny_corpus)
    assert len(frm.frames) == TINY.frames
    for data, off in zip(frm.frames, frm.ts_offsets, strict=True):
        assert data[off : off + framegen.TS_DIGITS] == str(framegen.TS_PLACEHOLDER).encode()


def test_corpus_cache_is_reused(tiny_corpus: Path) -> None:
    before = (tiny_corpus / "frames.msgpack").stat().st_mtime_ns
    assert framegen.ensure(TINY) == tiny_corpus
    assert (tiny_corpus / "frames.msgpack").stat().st_mtime_ns == before


def _start(rest_url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(
        f"{rest_url}/bench/start", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_sender_speaks_vts1_and_replays_in_seq(
    sender: dict[str, str], tiny_corpus: Path
) -> None:
    snap = framegen.load_snapshots(tiny_corpus)
    # nothing to stream to yet: a clear refusal, not a hang
    status, _ = _start(sender["rest_url"], {"mode": "flood", "frames": 10})
    assert status == 409
    async with websockets.connect(sender["stream_url"]) as ws:
        await ws.send("not json")
        err = json.loads(await ws.recv())
        assert err["type"] == "error" and err["code"] == "bad_frame"
        await ws.send(json.dumps({"action": "auth", "key": "k", "ts": 1, "sig": "00"}))
        assert json.loads(await ws.recv())["type"] == "authenticated"
        await ws.send(json.dumps({"action": "cancel_on_disconnect", "enabled": True}))
        assert json.loads(await ws.recv()) == {"type": "cancel_on_disconnect", "enabled": True}
        await ws.send(json.dumps({"action": "subscribe", "channels": snap.channels, "id": 4}))
        sub = json.loads(await ws.recv())
        assert sub["type"] == "subscribed" and sub["id"] == 4
        status, info = _start(sender["rest_url"], {"mode": "rate", "frames": 300, "rate": 20_000})
        assert status == 200 and info["frames"] == 300
        last = {ch: snap.first_seq[ch] - 1 for ch in snap.channels}
        for _ in range(300):
            f = json.loads(await ws.recv())
            assert f["seq"] == last[f["channel"]] + 1
            last[f["channel"]] = f["seq"]
            assert f["ts"] != framegen.TS_PLACEHOLDER  # stamped at send
        assert last == info["last_seqs"]
        crcs = info["last_checksums"]
        assert isinstance(crcs, dict) and set(crcs) <= set(snap.book_channels)
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{sender['rest_url']}/v1/orderbook/NOPE", timeout=5)
    assert exc.value.code == 404


@pytest.mark.slow
def test_whole_suite_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "res.json"
    p = subprocess.run(
        [sys.executable, "-m", "benchmarks.run_all", "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    res = json.loads(out.read_text())
    frames = res["profile"]["frames"]
    assert set(res["flood"]) == {
        "raw",
        "decode",
        "decode_orjson",
        "naive",
        "peer",
        "peer_crc",
        "tickpipe",
    }
    for key, r in res["flood"].items():
        assert "error" not in r, (key, r)
        assert r["frames"] == frames and r["gaps"] == 0 and r["errors"] == 0, (key, r)
        assert r["fps"] > 0 and r["cpu_us"] > 0
    assert res["flood"]["tickpipe"]["synced_books"] == res["profile"]["books"]
    assert len(res["stacks"]) == 4
    for key, r in res["stacks"].items():
        assert "error" not in r and r["frames"] == frames and r["gaps"] == 0, (key, r)
    tp = res["flood"]["tickpipe"]
    assert tp["books_checked"] > 0 and tp["books_equal_truth"] == tp["books_checked"]
    for hz, rows in res["rate"].items():
        for key, r in rows.items():
            assert "error" not in r, (hz, key, r)
            assert r["latency_samples"] > 0 and r["lat_p50_us"] > 0, (hz, key, r)
    for st in ("tickpipe", "peer", "naive"):
        assert isinstance(res["memory"][st]["traced"], float | int), res["memory"]
    assert "tickpipe / naive" in p.stdout and "| 5 tickpipe.Client" in p.stdout
