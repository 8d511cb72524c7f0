"""``RecordingWriter``: the client's :class:`~tickpipe.client.recorder.Recorder` for
``tickpipe record``. The live path only queues; one writer thread encodes, compresses and
writes.

- Never blocks the live path: each hook builds one record and appends it to a deque (no lock,
  no wake-up per frame). Past ``max_queue_records`` waiting, the record is dropped, counted
  (``dropped``) and ``on_overflow`` is called once per episode (``tickpipe record`` prints a
  loud ``overflow`` line); the writer then writes an ``Overflow`` record saying how many were
  lost at that point, so a replay knows.
- Crash safe: every ``flush_interval_s`` (and every ``flush_records`` records) the queued
  records become one independently decodable zstd frame, written to the file (os.write: in
  the kernel's page cache, so a ``kill -9`` of this process loses at most what was still
  queued; ``fsync_each_chunk`` also survives a machine crash, at a cost per chunk).
- Rotated: once a part reaches ``rotate_bytes`` the next chunk starts a new part, with its
  own header (the same venue, channels and the last instruments answer).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tickpipe import __version__
from tickpipe.client.recorder import TextHandler
from tickpipe.record import format as fmt

log = logging.getLogger("tickpipe.record")

DEFAULT_ROTATE_MB = 256.0
DEFAULT_MAX_QUEUE_RECORDS = 200_000
DEFAULT_FLUSH_RECORDS = 5_000
DEFAULT_FLUSH_INTERVAL_S = 0.1
PART_SUFFIX = ".tpr.zst"


class RecordingWriter:
    """Record into ``out_dir`` (created). ``start()`` before the client starts, ``end(reason)``
    when the run's books are final, ``close()`` at the end (joins the thread)."""

    def __init__(
        self,
        out_dir: str | Path,
        *,
        venue: str,
        channels: list[str],
        stream_url: str,
        rest_url: str,
        instruments_target: str,
        snapshot_depth: int | None,
        max_snapshot_levels: int,
        rotate_mb: float = DEFAULT_ROTATE_MB,
        max_queue_records: int = DEFAULT_MAX_QUEUE_RECORDS,
        flush_records: int = DEFAULT_FLUSH_RECORDS,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        fsync_each_chunk: bool = False,
        zstd_level: int = 3,
        on_overflow: Callable[[int], None] | None = None,
        on_part: Callable[[Path], None] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.venue = venue
        self.channels = list(channels)
        self.stream_url = stream_url
        self.rest_url = rest_url
        self.instruments_target = instruments_target
        self.instruments_body: bytes | None = None
        self.snapshot_depth = snapshot_depth
        self.max_snapshot_levels = max_snapshot_levels
        self.rotate_bytes = max(1, int(rotate_mb * (1 << 20)))
        self.max_queue_records = max_queue_records
        self.flush_records = flush_records
        self.flush_interval_s = flush_interval_s
        self.fsync_each_chunk = fsync_each_chunk
        self.zstd_level = zstd_level
        self.on_overflow = on_overflow
        self.on_part = on_part
        self._q: deque[fmt.Record] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._part_bytes = 0
        self._ended = False
        self._overflowing = False
        self.started_wall_ns = time.time_ns()
        secs, ns = divmod(self.started_wall_ns, 1_000_000_000)
        self._stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(secs)) + f".{ns // 1_000_000:03d}Z"
        self.parts: list[Path] = []
        self.records = 0  # written
        self.frames = 0  # stream frames queued
        self.dropped = 0  # records lost to a full queue
        self._dropped_written = 0
        self.bytes_written = 0
        self.error: str | None = None  # the disk error that stopped the writer, if any

    # -- life --------------------------------------------------------------------------------
    def start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._open_part()  # the header is on disk before the first record
        self._thread = threading.Thread(target=self._run, name="tickpipe recorder", daemon=True)
        self._thread.start()

    def end(self, reason: str) -> None:
        """The live run's books are final: write ``End``, record nothing after it."""
        if not self._ended:
            self._q.append(fmt.End(time.monotonic_ns(), time.time_ns(), reason))
            self._ended = True

    def close(self) -> None:
        self.end("closed")
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- Recorder (called on the event loop: never blocks) ----------------------------------
    def _put(self, rec: fmt.Record) -> None:
        if self._ended:
            return
        if len(self._q) >= self.max_queue_records:
            self.dropped += 1
            if not self._overflowing:
                self._overflowing = True
                log.warning(
                    "recording queue full (%d records): the disk is falling behind, records "
                    "are being dropped",
                    self.max_queue_records,
                )
                if self.on_overflow is not None:
                    self.on_overflow(self.dropped)
            return
        self._q.append(rec)

    def wrap_text(self, handler: TextHandler, opened: bool) -> TextHandler:
        q = self._q
        cap = self.max_queue_records
        mono, wall = time.monotonic_ns, time.time_ns
        kind = fmt.Frame if opened else fmt.OpenFrame
        put = self._put

        def on_text(data: bytes | memoryview) -> None:
            if len(q) < cap and not self._ended:
                q.append(kind(mono(), wall(), bytes(data)))
            else:
                put(kind(mono(), wall(), b""))  # counted as dropped (or ignored after end)
            handler(data)

        return on_text

    def rest(
        self, method: str, path: str, status: int, body: bytes, retry_after: str | None
    ) -> None:
        if path == self.instruments_target and 200 <= status < 300:
            self.instruments_body = body  # later parts' headers carry it
        self._put(
            fmt.Rest(time.monotonic_ns(), time.time_ns(), method, path, status, body, retry_after)
        )

    def snapshot_delivered(
        self, channel: str, epoch: int, error: BaseException | None, retry_after_s: float | None
    ) -> None:
        self._put(
            fmt.SnapshotDelivered(
                time.monotonic_ns(),
                time.time_ns(),
                channel,
                epoch,
                error is None,
                None if error is None else str(error),
                retry_after_s,
            )
        )

    def connection(self, what: str, **fields: Any) -> None:
        self._put(fmt.Connection(time.monotonic_ns(), time.time_ns(), what, fields))

    def sent(self, req_id: int, kind: str, channels: list[str]) -> None:
        self._put(fmt.Sent(time.monotonic_ns(), time.time_ns(), req_id, kind, list(channels)))

    def event(self, event: dict[str, Any]) -> None:
        """A client event seen live (kept for the record; replay recomputes them)."""
        self._put(fmt.Event(time.monotonic_ns(), time.time_ns(), event))

    # -- the writer thread -------------------------------------------------------------------
    def _header(self, part: int) -> fmt.Header:
        return fmt.Header(
            fmt.MAGIC,
            fmt.FORMAT_VERSION,
            __version__,
            self.venue,
            self.channels,
            part,
            self.started_wall_ns,
            self.stream_url,
            self.rest_url,
            self.snapshot_depth,
            self.max_snapshot_levels,
            self.instruments_target,
            self.instruments_body,
        )

    def _open_part(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        n = len(self.parts) + 1
        path = self.out_dir / f"{self.venue}-{self._stamp}-{n:04d}{PART_SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.parts.append(path)
        self._part_bytes = 0
        self._write(fmt.compress_chunk(fmt.encode_record(self._header(n)), self.zstd_level))
        if self.on_part is not None:
            self.on_part(path)

    def _write(self, chunk: bytes) -> None:
        assert self._fd is not None
        view = memoryview(chunk)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        if self.fsync_each_chunk:
            os.fsync(self._fd)
        self._part_bytes += len(chunk)
        self.bytes_written += len(chunk)

    def _run(self) -> None:
        try:
            while True:
                stopping = self._stop.wait(self.flush_interval_s)
                self._flush()
                if stopping:
                    self._flush()
                    return
        except OSError as exc:  # a full or broken disk: stop recording, keep the live run
            self.error = f"{type(exc).__name__}: {exc}"
            self._ended = True
            log.error("recording stopped: %s", self.error)

    def _flush(self) -> None:
        q = self._q
        while q:
            batch: list[fmt.Record] = []
            dropped = self.dropped  # records dropped came after every record queued now
            popleft = q.popleft
            for _ in range(min(len(q), self.flush_records)):
                batch.append(popleft())
            if dropped != self._dropped_written:
                now_m, now_w = time.monotonic_ns(), time.time_ns()
                batch.append(fmt.Overflow(now_m, now_w, dropped - self._dropped_written))
                self._dropped_written = dropped
            self.frames += sum(1 for r in batch if type(r) is fmt.Frame)
            raw = fmt.encode_records(batch)
            if self._part_bytes >= self.rotate_bytes:
                self._open_part()
            self._write(fmt.compress_chunk(raw, self.zstd_level))
            self.records += len(batch)
        if self._overflowing and len(q) < self.max_queue_records // 2:
            self._overflowing = False
