"""Recording overhead and replay speed, in one run.

- recording overhead: the benchmark corpus (150 books, tickers, trades; every delta
  checksummed) fed through the client's per-frame path (``Channels.on_text``, the real venue
  decode and ``BookSync``) in alternating blocks, without and with the recorder's frame hook
  (``RecordingWriter.wrap_text``, its writer thread compressing and writing to a temp
  directory meanwhile). The ratio recorded / plain frames/s is the share of the live path's
  throughput recording keeps (1.00 = free).
- replay: the same frames written as a recording, then ``tickpipe.record.replay.Replay`` at
  ``--speed max``: frames/s.

    .venv/bin/python -m benchmarks.recording [--frames 100000] [--blocks 10]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from benchmarks import framegen
from tickpipe.client.snapshots import SnapshotOutcome
from tickpipe.protocol import frames as vts
from tickpipe.record import format as fmt
from tickpipe.record.reader import PartReader
from tickpipe.record.replay import Replay
from tickpipe.record.writer import RecordingWriter


class NullSink:
    def event(self, ev: Any, t: float) -> None: ...
    def data(self, item: Any, t: float) -> None: ...
    def book(self, view: Any, t: float, mono_ns: int) -> None: ...


def _setup_records(snap: framegen.Snapshots) -> tuple[fmt.Header, list[fmt.Record]]:
    body = msgspec.json.encode({"instruments": snap.instruments})
    header = fmt.Header(fmt.MAGIC, fmt.FORMAT_VERSION, "bench", "vts", snap.channels, 1, 0,
                        "ws://bench/v1/stream", "http://bench", None, 10_000,
                        "/v1/instruments", body)  # fmt: skip
    recs: list[fmt.Record] = [
        fmt.Sent(1, 1, 1, "subscribe", snap.channels),
        fmt.Frame(2, 2, vts.encode(vts.Subscribed(channels=snap.channels, id=1))),
    ]
    for ch in snap.book_channels:
        sym = ch.partition(":")[2]
        recs.append(fmt.Rest(3, 3, "GET", f"/v1/orderbook/{sym}", 200, snap.snapshots[sym]))
        recs.append(fmt.SnapshotDelivered(3, 3, ch, 1, True))
    return header, recs


def _live(snap: framegen.Snapshots) -> Replay:
    """A client shell fed the setup (instruments, subscribe answer, snapshots)."""
    header, recs = _setup_records(snap)
    r = Replay(NullSink())
    r._setup(header)
    for rec in recs:
        if isinstance(rec, fmt.SnapshotDelivered):  # the epoch each book is waiting for
            assert r.channels is not None
            bc = r.channels.books[rec.channel]
            sym = rec.channel.partition(":")[2]
            r.channels.on_snapshot(
                SnapshotOutcome(
                    rec.channel, bc.sync.epoch, vts.decode_snapshot(snap.snapshots[sym])
                )
            )
        else:
            r._feed(rec)
    return r


async def overhead(snap: framegen.Snapshots, data: list[bytes], blocks: int) -> dict[str, float]:
    live = _live(snap)
    assert live.channels is not None
    plain = live.channels.on_text
    with tempfile.TemporaryDirectory() as d:
        w = RecordingWriter(d, venue="vts", channels=snap.channels, stream_url="ws://bench",
                            rest_url="http://bench", instruments_target="/v1/instruments",
                            snapshot_depth=None, max_snapshot_levels=10_000)  # fmt: skip
        w.start()
        recorded = w.wrap_text(plain, opened=True)
        size = len(data) // (2 * blocks)
        t = {"plain": 0.0, "recorded": 0.0}
        n = {"plain": 0, "recorded": 0}
        pos = 0
        for b in range(2 * blocks):
            kind = "plain" if b % 2 == 0 else "recorded"
            fn = plain if kind == "plain" else recorded
            block = data[pos : pos + size]
            pos += size
            t0 = time.perf_counter()
            for f in block:
                fn(f)
            t[kind] += time.perf_counter() - t0
            n[kind] += len(block)
        w.close()
        gaps = sum(live.channels.metrics.gaps.values())
        written = w.bytes_written
    return {
        "plain_fps": n["plain"] / t["plain"],
        "recorded_fps": n["recorded"] / t["recorded"],
        "gaps": gaps,
        "dropped": w.dropped,
        "bytes_per_frame": written / max(1, n["recorded"]),
    }


async def replay_speed(snap: framegen.Snapshots, data: list[bytes]) -> dict[str, float]:
    header, recs = _setup_records(snap)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench-0001.tpr.zst"
        out = bytearray(fmt.compress_chunk(fmt.encode_record(header)))
        out += fmt.compress_chunk(fmt.encode_records(recs))
        for i in range(0, len(data), 5000):
            chunk: list[fmt.Record] = [fmt.Frame(10 + j, 10 + j, f) for j, f in
                                       enumerate(data[i : i + 5000], start=i)]  # fmt: skip
            out += fmt.compress_chunk(fmt.encode_records(chunk))
        path.write_bytes(bytes(out))
        replay = Replay(NullSink())
        t0 = time.perf_counter()
        stats = await replay.run([PartReader(path)])
        wall = time.perf_counter() - t0
        assert replay.channels is not None
        synced = sum(1 for v in replay.channels.views.values() if v.synced)
    return {"replay_fps": stats.frames / wall, "synced": synced, "books": len(snap.book_channels)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--blocks", type=int, default=10, help="A/B pairs (alternated)")
    a = ap.parse_args()
    corpus = framegen.ensure(framegen.CorpusSpec())
    snap, frm = framegen.load_snapshots(corpus), framegen.load_frames(corpus)
    data = frm.frames[: a.frames]
    o = asyncio.run(overhead(snap, data, a.blocks))
    r = asyncio.run(replay_speed(snap, data))
    print(f"{len(data):,} frames, {len(snap.channels)} channels, {a.blocks} A/B block pairs")
    print("| row | frames/s | ratio |")
    print("|---|---:|---:|")
    print(f"| live path, not recording | {o['plain_fps']:,.0f} | 1.00 |")
    ratio = o["recorded_fps"] / o["plain_fps"]
    print(f"| live path, recording | {o['recorded_fps']:,.0f} | {ratio:.3f} |")
    print(f"| replay --speed max | {r['replay_fps']:,.0f} | - |")
    print(
        f"gaps {o['gaps']:.0f}, dropped {o['dropped']:.0f}, {o['bytes_per_frame']:.1f} bytes a "
        f"frame on disk (zstd), replay synced {r['synced']}/{r['books']} books"
    )


if __name__ == "__main__":
    main()
