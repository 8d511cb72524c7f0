"""RecordingWriter: a full queue drops (never blocks), says so once per episode, and writes an
Overflow record; parts rotate with a header each."""

from __future__ import annotations

from pathlib import Path

from tickpipe.record import format as fmt
from tickpipe.record.reader import PartReader, find_parts
from tickpipe.record.writer import RecordingWriter


def writer(tmp: Path, **kw: object) -> RecordingWriter:
    return RecordingWriter(
        tmp,
        venue="vts",
        channels=["orderbook:AAPL"],
        stream_url="ws://x",
        rest_url="http://x",
        instruments_target="/v1/instruments",
        snapshot_depth=None,
        max_snapshot_levels=10_000,
        **kw,
    )  # type: ignore[arg-type]


def test_a_full_queue_drops_loudly_and_the_file_says_how_many(tmp_path: Path) -> None:
    told: list[int] = []
    w = writer(tmp_path, max_queue_records=10, on_overflow=told.append)
    seen: list[bytes] = []
    on_text = w.wrap_text(lambda d: seen.append(bytes(d)), opened=True)
    for i in range(25):  # the writer thread is not running yet: nothing drains
        on_text(b"frame %d" % i)
    assert len(seen) == 25  # the live path got every frame
    assert w.dropped == 15 and told == [1]  # one loud call per episode
    w.start()
    w.close()
    recs = list(PartReader(find_parts([tmp_path])[0]))
    overflows = [r for r in recs if isinstance(r, fmt.Overflow)]
    assert [o.dropped for o in overflows] == [15]
    assert recs.index(overflows[0]) >= 10  # after the frames that were kept
    assert [r.data for r in recs if isinstance(r, fmt.Frame)] == [
        b"frame %d" % i for i in range(10)
    ]
    assert any(isinstance(r, fmt.End) for r in recs)


def test_parts_rotate_each_with_its_header(tmp_path: Path) -> None:
    w = writer(tmp_path, rotate_mb=0.01, flush_records=50)
    w.start()
    w.rest("GET", "/v1/instruments", 200, b'{"instruments":[]}', None)
    on_text = w.wrap_text(lambda d: None, opened=True)
    import os

    for _ in range(400):
        on_text(os.urandom(200))  # incompressible: ~80 KB in all
    w.close()
    parts = find_parts([tmp_path])
    assert len(parts) >= 3
    frames = 0
    for i, p in enumerate(parts, start=1):
        r = PartReader(p)
        assert r.header.part == i and r.header.channels == ["orderbook:AAPL"]
        frames += sum(1 for x in r if isinstance(x, fmt.Frame))
        assert not r.truncated
    assert frames == 400
    assert PartReader(parts[-1]).header.instruments_body == b'{"instruments":[]}'


def test_replay_refuses_parts_of_two_recordings(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    for _ in range(2):
        w = writer(tmp_path)
        w.start()
        w.close()
        time.sleep(0.01)  # another millisecond: another recording's name
    r = subprocess.run([sys.executable, "-m", "tickpipe", "replay", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "2 recordings" in r.stderr, r.stderr
