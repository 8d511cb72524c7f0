"""Where tickpipe's microseconds per frame go: each stage of the hot path timed alone.

    .venv/bin/python -m benchmarks.breakdown [--frames 50000]

Replays the first ``--frames`` corpus frames (no sockets) through the core pieces the client
calls per frame, one pass per cumulative stage, each pass on fresh books seeded from the
snapshots:

1. ``decode``: ``frames.decode_server_frame`` (msgspec, typed structs).
2. ``+ parse``: ``frames.parse_levels`` of both sides of every delta (text -> int units).
3. ``+ apply``: ``OrderBook.apply`` (dict + sorted list per side).
4. ``+ checksum``: ``OrderBook.checksum`` (CRC-32 of the top 10, the client verifies every one).
   Once a book has been checksummed, ``apply`` also keeps each side's top-10 texts in step
   (formatting the levels that changed), so that work shows up here, not in stage 3.
5. ``BookSync``: ``decode`` + ``BookSync.on_delta_texts`` (the compiled one-step parse and
   apply of a LIVE book's next delta; else ``parse`` + ``BookSync.on_delta``), seq check and
   checksum compare: what the client's ``Channels._on_delta`` wraps with metrics and dispatch.

Run on both hot paths (``tickpipe.hotpath``): the compiled one, then the pure-Python reference
in the same process; only the pure one when the compiled one is not built.

The difference between consecutive stages is that stage's cost; the client row's
``cpu_us`` minus stage 5 is the client shell (picows callback, metrics, dispatch, tickers and
trades). Process CPU time, best of ``--repeat`` (3) passes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import framegen
from tickpipe import hotpath
from tickpipe.client.config import ClientConfig
from tickpipe.protocol import frames as vts
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.sync import BookSync, SyncConfig


def _books(snap: framegen.Snapshots) -> dict[str, OrderBook]:
    insts = {i["symbol"]: Instrument.from_wire(dict(i)) for i in snap.instruments}
    out = {}
    for sym, body in snap.snapshots.items():
        s = vts.decode_snapshot(body)
        inst = insts[sym]
        b = OrderBook(inst)
        b.load(
            vts.parse_levels(s.bids, inst, sym, "bids"),
            vts.parse_levels(s.asks, inst, sym, "asks"),
        )
        out[f"orderbook:{sym}"] = b
    return out


def _syncs(snap: framegen.Snapshots) -> dict[str, BookSync]:
    insts = {i["symbol"]: Instrument.from_wire(dict(i)) for i in snap.instruments}
    out = {}
    for sym, body in snap.snapshots.items():
        s = vts.decode_snapshot(body)
        inst = insts[sym]
        ch = f"orderbook:{sym}"
        bs = BookSync(ch, inst, lambda: 0.5, SyncConfig())
        bs.start()
        bs.on_snapshot(
            bs.epoch,
            s.seq,
            vts.parse_levels(s.bids, inst, sym, "bids"),
            vts.parse_levels(s.asks, inst, sym, "asks"),
        )
        bs.take_events()
        out[ch] = bs
    return out


def _pass(stage: int, snap: framegen.Snapshots, data: list[bytes]) -> float:
    decode, parse = vts.decode_server_frame, vts.parse_levels
    delta = vts.Delta
    books = _books(snap)
    syncs = _syncs(snap) if stage == 5 else {}
    t = time.process_time()  # CPU time: a busy neighbour does not inflate it
    for d in data:
        f = decode(d)
        if stage == 1 or type(f) is not delta:
            continue
        ch = f.channel
        b = books[ch]
        inst = b.instrument
        if stage == 5:
            sync = syncs[ch]  # as the client: the compiled one-step path, else parse + on_delta
            if sync.on_delta_texts(f.seq, f.bids, f.asks, f.checksum) is None:
                bids = parse(f.bids, inst, ch, "bids")
                asks = parse(f.asks, inst, ch, "asks")
                sync.on_delta(f.seq, bids, asks, f.checksum)
            continue
        bids = parse(f.bids, inst, ch, "bids")
        asks = parse(f.asks, inst, ch, "asks")
        if stage >= 3:
            b.apply(bids, asks)
            if stage == 4 and b.checksum() != f.checksum:
                raise AssertionError(f"checksum mismatch on {ch}")
    el = time.process_time() - t
    if stage == 5 and any(not s.synced for s in syncs.values()):
        raise AssertionError("a book lost sync during the replay")
    return el


def run(corpus: Path, frames: int, repeat: int, out: Callable[[str], None] = print) -> None:
    """Both hot paths when the compiled one is built (compiled first), else the pure one."""
    paths = ["compiled", "pure"] if hotpath.hot is not None else ["pure"]
    out(f"hot path in this process: {hotpath.describe()}")
    for path in paths:
        if path == "pure":
            with hotpath.pure():
                _run(path, corpus, frames, repeat, out)
        else:
            _run(path, corpus, frames, repeat, out)


def _run(path: str, corpus: Path, frames: int, repeat: int, out: Callable[[str], None]) -> None:
    snap, frm = framegen.load_snapshots(corpus), framegen.load_frames(corpus)
    data = frm.frames[:frames]
    n = len(data)
    deltas = sum(1 for i in frm.channel_index[:frames] if i < len(snap.book_channels))
    names = ("decode", "+ parse", "+ apply", "+ checksum", "BookSync (all of it)")
    prev = 0.0
    out(f"{path} path: {n:,} frames ({deltas:,} deltas); µs per frame, best of {repeat}")
    from benchmarks.rows.tickpipe_row import checksum_is_verified

    if not checksum_is_verified(ClientConfig()):
        out("  WARNING: BookSync does not verify checksums as the core stands; stage 5 skips it")
    for stage, name in enumerate(names, start=1):
        best = min(_pass(stage, snap, data) for _ in range(repeat))
        us = best / n * 1e6
        step = us - prev if stage <= 4 else us
        out(f"  {stage}. {name:22s} {us:7.2f} µs/frame  (this stage {step:5.2f})")
        if stage <= 4:
            prev = us


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    run(framegen.ensure(framegen.CorpusSpec()), a.frames, a.repeat)


if __name__ == "__main__":
    main()
