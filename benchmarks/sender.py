"""The benchmark's gateway stand-in: replays the pre-generated corpus over one WebSocket.

Run it as its own process (one core for it, one for the receiver)::

    python -m benchmarks.sender --corpus DIR [--port 0] [--rest-port 0] [--cpu 0]

It prints one JSON line ``{"event": "ready", "stream_url": ..., "rest_url": ...}`` and serves until
SIGTERM/SIGINT (or, with ``--stop-on-stdin-eof``, until its parent closes its stdin).

Stream (``ws://HOST:PORT/v1/stream``, raw asyncio, no WebSocket library on the send path):
answers VTS/1 ``auth`` with ``authenticated`` (any key and signature are accepted),
``subscribe`` with ``subscribed`` (every channel), ``unsubscribe`` with ``unsubscribed``,
``cancel_on_disconnect`` with its ack, WebSocket pings with pongs; sends a ping every
``heartbeat_ms`` (5000). No data flows until a receiver asks for it:

``POST {rest_url}/bench/start`` with ``{"mode": "flood" | "rate", "frames": N, "rate": R}``
starts streaming the first ``N`` corpus frames to the most recently subscribed connection and
answers at once ``{"frames": N, "wire_bytes": B, "last_seqs": {channel: seq},
"last_checksums": {book channel: CRC-32 of its top 10 after the last frame}}``.

- ``flood``: the frames are pre-framed into 256 KiB chunks and written back to back; TCP
  backpressure (``pause_writing``) is the only brake, so the receiver sets the pace.
- ``rate``: ``R`` frames a second in all, released each loop turn (~1 ms) for what is due; each
  frame's ``ts`` is overwritten with ``time.time_ns()`` at write, so receivers measure
  ts -> applied latency against the same clock.

The fixed-rate loop sleeps 1 ms between releases (``RATE_TICK_S``). Not less: uvloop turns
``asyncio.sleep(0.0005)`` into a 0 ms libuv timer, and an earlier version of this sender then
spun a whole core, which on this 2-core box put 1-2 ms into every receiver's p99 (measured: a
paced sender that sleeps gives a uvloop receiver p99 0.05-0.09 ms at 1k frames/s). It runs on
the stock asyncio loop by default (``--loop uvloop`` to compare).

``GET {rest_url}/bench/last`` -> ``{"mode", "frames", "send_s", "paused_s"}`` of the last stream.
REST for the receivers that fetch snapshots: ``GET /v1/health``, ``GET /v1/instruments``,
``GET /v1/orderbook/{symbol}[?depth=N]`` (the corpus snapshot, whose seq bridges to the stream's
first delta), ``GET /v1/orders`` (none) and ``DELETE /v1/orders`` (nothing to cancel).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from benchmarks import framegen
from benchmarks.wsserver import WsConn, parse_request, ws_header
from tickpipe.errors import FrameError
from tickpipe.protocol import frames as vts

CHUNK_BYTES = 256 * 1024
HEARTBEAT_MS = 5000
RATE_TICK_S = 0.001  # timers have 1 ms resolution; under it uvloop spins (0 ms libuv timer)


class Corpus:
    """The loaded corpus plus the per-prefix wire forms, built once per frame count."""

    def __init__(self, d: Path) -> None:
        self.snap = framegen.load_snapshots(d)
        self.frm = framegen.load_frames(d)
        self.channels = self.snap.channels
        self._flood: dict[int, tuple[list[bytes], int]] = {}
        self._heads = [
            ws_header(len(f)) + f[:o]
            for f, o in zip(self.frm.frames, self.frm.ts_offsets, strict=True)
        ]
        self._tails = [
            f[o + framegen.TS_DIGITS :]
            for f, o in zip(self.frm.frames, self.frm.ts_offsets, strict=True)
        ]

    def flood_chunks(self, n: int) -> tuple[list[bytes], int]:
        if n not in self._flood:
            chunks: list[bytes] = []
            buf = bytearray()
            for f in self.frm.frames[:n]:
                buf += ws_header(len(f))
                buf += f
                if len(buf) >= CHUNK_BYTES:
                    chunks.append(bytes(buf))
                    buf.clear()
            if buf:
                chunks.append(bytes(buf))
            self._flood = {n: (chunks, sum(map(len, chunks)))}  # keep one prefix only
        return self._flood[n]

    def rate_batch(self, a: int, b: int, ts: bytes) -> bytes:
        heads, tails = self._heads, self._tails
        parts: list[bytes] = []
        for i in range(a, b):
            parts += (heads[i], ts, tails[i])
        return b"".join(parts)

    def last_checksums(self, n: int) -> dict[str, int]:
        """Each book's checksum after the prefix: the ``checksum`` of its last delta in it."""
        books = set(range(len(self.snap.book_channels)))
        out: dict[str, int] = {}
        for i in range(n - 1, -1, -1):
            ci = self.frm.channel_index[i]
            if ci in books:
                books.discard(ci)
                f = vts.decode_server_frame(self.frm.frames[i])
                if isinstance(f, vts.Delta) and f.checksum is not None:
                    out[f.channel] = f.checksum
                if not books:
                    break
        return out

    def last_seqs(self, n: int) -> dict[str, int]:
        last = {ch: self.snap.first_seq[ch] - 1 for ch in self.channels}
        chans = self.channels
        for ci in self.frm.channel_index[:n]:
            last[chans[ci]] += 1
        return last


class StreamConn(WsConn):
    """One receiver connection: HTTP upgrade, VTS/1 control frames, then the replay."""

    def __init__(self, server: Sender) -> None:
        super().__init__(server.conns)
        self.server = server
        self.subscribed = False
        self.paused_s = 0.0
        self.task: asyncio.Task[None] | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.task is not None:
            self.task.cancel()

    def _handshake(self, head: str) -> None:
        path, headers = parse_request(head)
        key = headers.get("sec-websocket-key")
        if not path.startswith(vts.STREAM_PATH) or key is None:
            self.refuse()
        else:
            self.upgrade(key)

    def send_json(self, obj: dict[str, Any]) -> None:
        self.send_text(vts.encode(obj))

    def _on_data(self, payload: bytes) -> None:
        try:
            frame = vts.decode_client_frame(payload)
        except FrameError as exc:
            self.send_json({"type": "error", "code": "bad_frame", "message": str(exc)})
            return
        if isinstance(frame, vts.Auth):
            self.send_json(
                {
                    "type": "authenticated",
                    "session": f"bench-{id(self):x}",
                    "heartbeat_ms": HEARTBEAT_MS,
                    "max_channels": 200,
                }
            )
        elif isinstance(frame, vts.Subscribe):
            self.subscribed = True
            self.server.current = self
            self.send_json({"type": "subscribed", "channels": frame.channels, "id": frame.id})
        elif isinstance(frame, vts.Unsubscribe):
            self.send_json({"type": "unsubscribed", "channels": frame.channels, "id": frame.id})
        else:
            self.send_json({"type": "cancel_on_disconnect", "enabled": frame.enabled})

    async def _wait_writable(self) -> None:
        if not self.can_write.is_set():
            t = time.perf_counter()
            await self.can_write.wait()
            self.paused_s += time.perf_counter() - t

    async def flood(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            if self.closed:
                return
            self.write(chunk)
            await self._wait_writable()

    async def rate(self, corpus: Corpus, n: int, rate: float) -> None:
        t0 = time.perf_counter()
        sent = 0
        while not self.closed:
            due = min(n, int((time.perf_counter() - t0) * rate) + 1)
            if due > sent:
                self.write(corpus.rate_batch(sent, due, str(time.time_ns()).encode()))
                sent = due
            await self._wait_writable()
            if sent >= n:
                return
            await asyncio.sleep(RATE_TICK_S)


class Sender:
    """Owns the listening sockets, the corpus and the last stream's figures."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self.conns: set[StreamConn] = set()
        self.current: StreamConn | None = None
        self.last: dict[str, Any] = {}

    async def heartbeat(self) -> None:
        ping = ws_header(0, 0x9)
        while True:
            await asyncio.sleep(HEARTBEAT_MS / 1000)
            for c in list(self.conns):
                if c.open:
                    c.write(ping)

    async def _run_stream(self, conn: StreamConn, mode: str, n: int, rate: float) -> None:
        t = time.perf_counter()
        conn.paused_s = 0.0
        if mode == "flood":
            chunks, _ = self.corpus.flood_chunks(n)
            await conn.flood(chunks)
        else:
            await conn.rate(self.corpus, n, rate)
        self.last = {
            "mode": mode,
            "frames": n,
            "send_s": time.perf_counter() - t,
            "paused_s": conn.paused_s,
        }

    # -- REST -------------------------------------------------------------------------
    async def start(self, request: web.Request) -> web.Response:
        body = await request.json()
        mode = body.get("mode", "flood")
        n = min(int(body.get("frames", 0)), len(self.corpus.frm.frames))
        rate = float(body.get("rate", 0))
        conn = self.current
        if conn is None or conn.closed or mode not in ("flood", "rate") or n <= 0:
            return web.json_response({"error": "no subscribed connection or bad body"}, status=409)
        if mode == "rate" and rate <= 0:
            return web.json_response({"error": "rate mode needs rate > 0"}, status=400)
        wire = self.corpus.flood_chunks(n)[1]  # the same in rate mode: ts keeps its width
        self.last = {}
        conn.task = asyncio.get_running_loop().create_task(self._run_stream(conn, mode, n, rate))
        return web.json_response(
            {
                "frames": n,
                "wire_bytes": wire,
                "last_seqs": self.corpus.last_seqs(n),
                "last_checksums": self.corpus.last_checksums(n),
            }
        )

    async def last_stream(self, request: web.Request) -> web.Response:
        return web.json_response(self.last)

    async def instruments(self, request: web.Request) -> web.Response:
        return web.json_response({"instruments": self.corpus.snap.instruments})

    async def orderbook(self, request: web.Request) -> web.Response:
        sym = request.match_info["symbol"]
        body = self.corpus.snap.snapshots.get(sym)
        if body is None:
            return web.json_response(
                {"error": {"code": "unknown_symbol", "message": sym}}, status=404
            )
        depth = request.query.get("depth")
        if depth is not None:
            snap = vts.decode_snapshot(body)
            d = int(depth)
            body = vts.encode(
                vts.Snapshot(snap.symbol, snap.seq, snap.ts, snap.bids[:d], snap.asks[:d])
            )
        return web.Response(body=body, content_type="application/json")

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def orders(self, request: web.Request) -> web.Response:
        return web.json_response({"orders": []})

    async def cancel_all(self, request: web.Request) -> web.Response:
        return web.json_response({"cancelled": []})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bench/start", self.start)
        app.router.add_get("/bench/last", self.last_stream)
        app.router.add_get("/v1/health", self.health)
        app.router.add_get("/v1/instruments", self.instruments)
        app.router.add_get("/v1/orderbook/{symbol}", self.orderbook)
        app.router.add_get("/v1/orders", self.orders)
        app.router.add_delete("/v1/orders", self.cancel_all)
        return app


async def serve(
    corpus_dir: Path, host: str, port: int, rest_port: int, watch_stdin: bool = False
) -> None:
    sender = Sender(Corpus(corpus_dir))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: StreamConn(sender), host, port)
    runner = web.AppRunner(sender.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, rest_port)
    await site.start()
    ws_port = server.sockets[0].getsockname()[1]
    http_port = runner.addresses[0][1]
    print(
        json.dumps(
            {
                "event": "ready",
                "stream_url": f"ws://{host}:{ws_port}{vts.STREAM_PATH}",
                "rest_url": f"http://{host}:{http_port}",
                "pid": os.getpid(),
            }
        ),
        flush=True,
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if watch_stdin:  # the parent holds our stdin open; EOF means it is gone
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(0, 1) else None)
    hb = loop.create_task(sender.heartbeat())
    await stop.wait()
    hb.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await hb
    server.close()
    for c in list(sender.conns):
        if c.transport is not None:
            c.transport.close()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, required=True, help="directory made by framegen")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="stream port (0: any free)")
    ap.add_argument("--rest-port", type=int, default=0, help="REST/control port (0: any free)")
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    ap.add_argument("--stop-on-stdin-eof", action="store_true", help="exit when stdin closes")
    ap.add_argument("--nice", type=int, default=0, help="os.nice() increment (< 0 needs root)")
    ap.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop of the sender (default asyncio; both pace at 1 ms)",
    )
    args = ap.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    main_coro = serve(args.corpus, args.host, args.port, args.rest_port, args.stop_on_stdin_eof)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(main_coro)
    else:
        asyncio.run(main_coro)


if __name__ == "__main__":
    main()
