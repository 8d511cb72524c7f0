"""The saturation benchmark's flood gateway: endless valid VTS/1 deltas as fast as a client reads.

Run it as its own process (``benchmarks/saturation.py`` does, pinned to CPU 0)::

    python -m benchmarks.sat_sender --corpus DIR [--faults --fault-every-s 2] [--cpu 0]
                                    [--snapshot-limit-per-s N] [--stop-on-stdin-eof]

It prints one JSON line ``{"event": "ready", "stream_url", "rest_url", ...}`` and serves until
SIGTERM/SIGINT (or, with ``--stop-on-stdin-eof``, until its parent closes its stdin).

**The corpus is a cycle** (:func:`generate`, cached in ``$TMPDIR/tickpipe-sat-<hash>/``):
``half`` deltas are generated over ``books`` order books (``benchmarks/framegen.py``'s book
model: ~300 levels a side, 1-4 changes a side clustered near the top), then the same deltas
are undone in reverse order (each level set back to the size it had before). Every book ends
the cycle exactly as it started, so the cycle can be replayed for ever: only the seqs move on.
Each frame is stored with a fixed-width (13-digit) seq and ``ts`` placeholder; the sender
writes the real seq (and the chunk's clock as ``ts``) into a copy of the bytes as it frames
them, so seqs never repeat however long a row runs, and every delta's CRC-32 (computed at
generation with :class:`tickpipe.protocol.book.OrderBook`) stays right on every lap.

**Stream** (``ws://HOST:PORT/v1/stream``; the WebSocket and VTS/1 control frames are
``benchmarks/sender.py``'s ``StreamConn``): as soon as a connection subscribes, frames are
built into ~256 KiB chunks and written back to back; TCP backpressure (``pause_writing``) is
the only brake, so the client sets the pace and is CPU-bound. After each chunk the position
"handed to the socket" (``pos``, frames since the start, dropped ones included) is advanced.
The stream goes on from ``pos`` on whichever connection subscribes next.

**Snapshots** (``GET /v1/orderbook/{symbol}``): the exact book at the seq most recently handed
to the socket for that symbol, as a real venue answers (under backpressure it is ahead of
what the client has read). At load, each book's state is kept every ``CHECKPOINT_EVERY``
deltas of that book; a request takes the checkpoint at or before ``pos`` and applies at most
that many deltas with ``OrderBook`` (~1 ms with the body). ``--snapshot-limit-per-s N``
(default 0 = off, as tickpipe's own gateway) answers 429 + ``Retry-After`` past N a second,
with tickpipe's gateway limiter.

**Faults** (``--faults``): one every ``--fault-every-s`` (2 s) from the first subscription,
cycling ``drop`` (one delta of one book is not sent: its seq is skipped, so that book gaps
and re-seeds; the venue's book still has it), ``checksum`` (one delta of one book carries a
wrong CRC-32) and ``disconnect`` (the socket is aborted after a chunk; what was in its
buffers is lost and every book must re-seed on the new connection). The books of the truth
never change because of a fault.

Control (for the benchmark): ``POST /sat/stop`` stops writing (the frame count is then
final) and answers ``{"pos", "frames_written", "seqs": {symbol: seq}, ...}``;
``GET /sat/truth`` answers every book at ``pos``: ``{symbol: {"seq", "checksum", "bids",
"asks"}}`` (whole book, decimal strings, best first); ``GET /sat/stats`` the counters and
each book's seq at ``pos``.
Also ``GET /v1/health``, ``GET /v1/instruments``, ``GET /v1/orders`` (none) and
``DELETE /v1/orders`` (nothing to cancel).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import hashlib
import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import msgspec
from aiohttp import web

from benchmarks import corpus_cache, framegen
from benchmarks.sender import CHUNK_BYTES, HEARTBEAT_MS, Sender, StreamConn
from benchmarks.wsserver import ws_header
from tickpipe.gateway.rest import SnapshotLimiter
from tickpipe.protocol import frames as vts
from tickpipe.protocol.book import Level, OrderBook
from tickpipe.protocol.instruments import Instrument

SEQ_DIGITS = 13
SEQ_BASE = 10 ** (SEQ_DIGITS - 1)  # first seqs are SEQ_BASE + U(0, 10^9): 13 digits for ever
SEQ_PLACEHOLDER = 10**SEQ_DIGITS - 1
TS_DIGITS = framegen.TS_DIGITS
CHECKPOINT_EVERY = 128  # deltas of one book between kept states: bounds a snapshot's replay
CYCLE_VERSION = 1
FAULT_KINDS = ("drop", "checksum", "disconnect")


@dataclass(frozen=True)
class CycleSpec:
    """The knobs of a cyclic corpus.

    - ``books`` (50): order-book channels (``orderbook:SYM``), all on one connection.
    - ``half`` (30_000): deltas generated forward; the cycle is twice that (then undone).
    - ``depth`` (300): levels a side at the start; deltas keep books within ±10 % of it.
    - ``seed`` (11): the random seed; another seed is another corpus (and cache file).
    """

    books: int = 50
    half: int = 30_000
    depth: int = 300
    seed: int = 11

    def cache_key(self) -> str:
        text = repr((CYCLE_VERSION, sorted(asdict(self).items())))
        return hashlib.sha1(text.encode()).hexdigest()[:12]


class Cycle(msgspec.Struct):
    """One lap of the stream: ``2 * half`` deltas after which every book is back at its start."""

    instruments: list[dict[str, str]]
    symbols: list[str]
    first_seq: list[int]  # per book: seq of its first delta on the first lap
    initial: list[tuple[list[Level], list[Level]]]  # per book: (bids, asks) at the start
    book_of: list[int]  # per frame: index of its book
    bids: list[list[Level]]  # per frame: the delta's levels in int units
    asks: list[list[Level]]
    frames: list[bytes]  # per frame: encoded delta, seq and ts placeholders


def _encode(
    inst: Instrument, channel: str, bids: list[Level], asks: list[Level], checksum: int
) -> bytes:
    fp, fs = inst.format_price, inst.format_size
    return vts.encode(
        vts.Delta(
            channel,
            SEQ_PLACEHOLDER,
            framegen.TS_PLACEHOLDER,
            [(fp(p), fs(s)) for p, s in bids],
            [(fp(p), fs(s)) for p, s in asks],
            checksum,
        )
    )


def generate(spec: CycleSpec) -> Cycle:
    """Build the cycle in memory (a few seconds: every delta is applied and checksummed twice)."""
    rnd = random.Random(spec.seed)
    gens = [
        framegen._BookGen(inst, mid, lots, spec.depth, rnd)
        for inst, mid, lots in framegen._instruments(spec.books)
    ]
    symbols = [g.inst.symbol for g in gens]
    channels = [f"orderbook:{s}" for s in symbols]
    initial = [g.book.to_lists() for g in gens]
    book_of: list[int] = []
    undo: list[tuple[list[Level], list[Level]]] = []
    all_bids: list[list[Level]] = []
    all_asks: list[list[Level]] = []
    out: list[bytes] = []
    for _ in range(spec.half):
        b = rnd.randrange(spec.books)
        g = gens[b]
        bids, asks = g._side_changes(True), g._side_changes(False)
        undo.append(
            (
                [(p, g.book.bids.size_at(p)) for p, _ in bids],
                [(p, g.book.asks.size_at(p)) for p, _ in asks],
            )
        )
        g.book.apply(bids, asks)
        book_of.append(b)
        all_bids.append(bids)
        all_asks.append(asks)
        out.append(_encode(g.inst, channels[b], bids, asks, g.book.checksum()))
    for j in range(spec.half - 1, -1, -1):
        b = book_of[j]
        g = gens[b]
        bids, asks = undo[j]
        g.book.apply(bids, asks)
        book_of.append(b)
        all_bids.append(bids)
        all_asks.append(asks)
        out.append(_encode(g.inst, channels[b], bids, asks, g.book.checksum()))
    for g, start in zip(gens, initial, strict=True):
        assert g.book.to_lists() == start, g.inst.symbol  # the lap closes exactly
    return Cycle(
        instruments=[g.inst.to_wire() for g in gens],
        symbols=symbols,
        first_seq=[SEQ_BASE + rnd.randint(0, 10**9) for _ in gens],
        initial=initial,
        book_of=book_of,
        bids=all_bids,
        asks=all_asks,
        frames=out,
    )


def cache_dir(spec: CycleSpec) -> Path:
    return corpus_cache.cache_dir("tickpipe-sat", spec.cache_key())


def ensure(spec: CycleSpec) -> Path:
    """Generate into the cache directory unless it is already there; return it."""
    return corpus_cache.ensure(cache_dir(spec), "cycle.msgpack", lambda: generate(spec))


def load(d: Path) -> Cycle:
    return corpus_cache.load(d, "cycle.msgpack", Cycle)


class Truth:
    """The venue's books at any stream position, from checkpoints; and the framed stream."""

    def __init__(self, cyc: Cycle) -> None:
        self.cyc = cyc
        self.n = len(cyc.symbols)
        self.length = len(cyc.frames)
        self.insts = [Instrument.from_wire(dict(i)) for i in cyc.instruments]
        self.index = {s: b for b, s in enumerate(cyc.symbols)}
        # per book: cycle indices of its deltas, and its state every CHECKPOINT_EVERY of them
        self.idx: list[list[int]] = [[] for _ in range(self.n)]
        for i, b in enumerate(cyc.book_of):
            self.idx[b].append(i)
        self.checkpoints: list[list[tuple[list[Level], list[Level]]]] = []
        for b in range(self.n):
            book = OrderBook(self.insts[b])
            book.load(*cyc.initial[b])
            cps = [cyc.initial[b]]
            for k, i in enumerate(self.idx[b], start=1):
                book.apply(cyc.bids[i], cyc.asks[i])
                if k % CHECKPOINT_EVERY == 0:
                    cps.append(book.to_lists())
            self.checkpoints.append(cps)
        # each frame as (ws header + bytes before the seq, bytes between seq and ts, tail)
        self.head: list[bytes] = []
        self.mid: list[bytes] = []
        self.tail: list[bytes] = []
        self.size: list[int] = []
        ph_seq = str(SEQ_PLACEHOLDER).encode()
        ph_ts = str(framegen.TS_PLACEHOLDER).encode()
        for f in cyc.frames:
            s = f.index(b'"seq":' + ph_seq) + 6
            t = f.index(b'"ts":' + ph_ts) + 5
            assert s < t
            hdr = ws_header(len(f))
            self.head.append(hdr + f[:s])
            self.mid.append(f[s + SEQ_DIGITS : t])
            self.tail.append(f[t + TS_DIGITS :])
            self.size.append(len(hdr) + len(f))

    def seq_at(self, b: int, pos: int) -> tuple[int, int]:
        """(last seq of book ``b`` within the first ``pos`` frames, its deltas this lap)."""
        lap, i = divmod(pos, self.length)
        k = bisect.bisect_left(self.idx[b], i)
        cnt = len(self.idx[b])
        return self.cyc.first_seq[b] - 1 + lap * cnt + k, k

    def book_at(self, b: int, pos: int) -> tuple[int, OrderBook]:
        """Book ``b`` after the first ``pos`` frames of the stream: (seq, book)."""
        seq, k = self.seq_at(b, pos)
        if k == len(self.idx[b]):
            k = 0  # end of a lap == its start
        cp = k // CHECKPOINT_EVERY
        book = OrderBook(self.insts[b])
        book.load(*self.checkpoints[b][cp])
        cyc = self.cyc
        for i in self.idx[b][cp * CHECKPOINT_EVERY : k]:
            book.apply(cyc.bids[i], cyc.asks[i])
        return seq, book

    def bad_frame(self, i: int, seq: int, ts: int) -> bytes:
        """Frame ``i`` of the cycle at ``seq`` with a wrong CRC-32."""
        f = vts.decode_server_frame(self.cyc.frames[i])
        assert isinstance(f, vts.Delta) and f.checksum is not None
        bad = msgspec.structs.replace(f, seq=seq, ts=ts, checksum=(f.checksum + 1) & 0xFFFFFFFF)
        data = vts.encode(bad)
        return ws_header(len(data)) + data


class SatConn(StreamConn):
    """``StreamConn`` (handshake, auth, subscribe acks, pings) that tells the feed on subscribe."""

    def __init__(self, feed: Feed) -> None:
        super().__init__(cast(Sender, feed))  # StreamConn only uses .conns and .current
        self.feed = feed

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.feed.stats["connections_lost"] += 1

    def _on_data(self, payload: bytes) -> None:
        was = self.subscribed
        super()._on_data(payload)
        if self.subscribed and not was:
            self.feed.on_subscribed(self)


class Feed:
    """The flood: position, per-book next seqs, faults, counters."""

    def __init__(
        self, truth: Truth, faults: bool, fault_every_s: float, snapshot_limit: int
    ) -> None:
        self.truth = truth
        self.conns: set[StreamConn] = set()
        self.current: StreamConn | None = None
        self.pos = 0  # frames handed to a socket (or dropped) since the start
        self.next_seq = list(truth.cyc.first_seq)
        self.stopped = False
        self.task: asyncio.Task[None] | None = None
        self.faults = faults
        self.fault_every_s = fault_every_s
        self.t0: float | None = None  # first subscription
        self.fault_no = 0
        self.pending: tuple[str, int] | None = None  # (kind, book) of the fault due
        self.fault_log: list[dict[str, Any]] = []
        self.limiter = SnapshotLimiter()
        self.snapshot_limit = snapshot_limit
        self.stats: dict[str, Any] = {
            "frames_written": 0,
            "chunks": 0,
            "connections": 0,
            "connections_lost": 0,
            "subscriptions": 0,
            "snapshots": 0,
            "snapshot_429": 0,
            "snapshot_ms_max": 0.0,
            "paused_s": 0.0,
        }

    # -- stream -----------------------------------------------------------------------------
    def on_subscribed(self, conn: SatConn) -> None:
        self.stats["subscriptions"] += 1
        if self.t0 is None:
            self.t0 = time.perf_counter()
        if self.stopped:
            return
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.task = asyncio.get_running_loop().create_task(self._flood(conn))

    def _fault_due(self) -> None:
        if not self.faults or self.pending is not None or self.t0 is None:
            return
        if time.perf_counter() - self.t0 < (self.fault_no + 1) * self.fault_every_s:
            return
        kind = FAULT_KINDS[self.fault_no % len(FAULT_KINDS)]
        book = (self.fault_no * 7 + 3) % self.truth.n
        self.fault_no += 1
        self.pending = (kind, book)

    def _chunk(self) -> tuple[bytes, bool]:
        """Frame the next ~CHUNK_BYTES of the stream; True when the socket is to be cut after."""
        tr = self.truth
        head, mid, tail, size, book_of = tr.head, tr.mid, tr.tail, tr.size, tr.cyc.book_of
        nxt = self.next_seq
        length = tr.length
        now_ns = time.time_ns()
        ts = str(now_ns).encode()
        parts: list[bytes] = []
        total = 0
        pos = self.pos
        i = pos % length
        pend = self.pending
        fault_book = pend[1] if pend is not None and pend[0] != "disconnect" else -1
        cut = pend is not None and pend[0] == "disconnect"
        while total < CHUNK_BYTES:
            b = book_of[i]
            s = nxt[b]
            nxt[b] = s + 1
            if b == fault_book:
                assert pend is not None
                kind = pend[0]
                if kind == "checksum":
                    bad = tr.bad_frame(i, s, now_ns)
                    parts.append(bad)
                    total += len(bad)
                self.fault_log.append(self._log(kind, b, s))
                fault_book = -1
                self.pending = None
            else:
                parts += (head[i], str(s).encode(), mid[i], ts, tail[i])
                total += size[i]
            pos += 1
            i += 1
            if i == length:
                i = 0
        if cut:
            assert pend is not None
            self.fault_log.append(self._log("disconnect", None, None))
            self.pending = None
        self.stats["frames_written"] += pos - self.pos
        self.pos = pos
        return b"".join(parts), cut

    def _log(self, kind: str, b: int | None, seq: int | None) -> dict[str, Any]:
        t = 0.0 if self.t0 is None else time.perf_counter() - self.t0
        sym = None if b is None else self.truth.cyc.symbols[b]
        return {"t": round(t, 3), "kind": kind, "symbol": sym, "seq": seq, "pos": self.pos}

    async def _flood(self, conn: StreamConn) -> None:
        self.stats["connections"] += 1
        while not self.stopped and not conn.closed:
            self._fault_due()
            data, cut = self._chunk()  # pos advances: these frames are handed to the socket
            conn.write(data)
            self.stats["chunks"] += 1
            if cut:
                if conn.transport is not None:
                    conn.transport.abort()  # a lost link: its buffered bytes are gone too
                return
            if not conn.can_write.is_set():
                t = time.perf_counter()
                await conn.can_write.wait()
                self.stats["paused_s"] += time.perf_counter() - t
            else:
                await asyncio.sleep(0)  # let REST (snapshots) in between chunks

    async def stop(self) -> None:
        self.stopped = True
        if self.task is not None and not self.task.done():
            self.task.cancel()  # pos is final: it only moves when a chunk is written
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def heartbeat(self) -> None:
        ping = ws_header(0, 0x9)
        while True:
            await asyncio.sleep(HEARTBEAT_MS / 1000)
            for c in list(self.conns):
                if c.open:
                    c.write(ping)

    # -- REST -------------------------------------------------------------------------------
    async def orderbook(self, request: web.Request) -> web.Response:
        sym = request.match_info["symbol"]
        b = self.truth.index.get(sym)
        if b is None:
            return web.json_response(
                {"error": {"code": "unknown_symbol", "message": sym}}, status=404
            )
        if self.snapshot_limit > 0:
            who = request.headers.get("X-VT-KEY") or str(request.remote)
            wait = self.limiter.retry_after(who, self.snapshot_limit, time.monotonic())
            if wait > 0:
                self.stats["snapshot_429"] += 1
                return web.json_response(
                    {"error": {"code": "rate_limited", "message": "too many snapshots"}},
                    status=429,
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        t = time.perf_counter()
        depth_txt = request.query.get("depth")
        depth = int(depth_txt) if depth_txt and depth_txt.isdigit() else None
        seq, book = self.truth.book_at(b, self.pos)
        inst = book.instrument
        fp, fs = inst.format_price, inst.format_size
        bids, asks = book.to_lists(depth)
        body = vts.encode(
            vts.Snapshot(
                sym,
                seq,
                time.time_ns(),
                [(fp(p), fs(s)) for p, s in bids],
                [(fp(p), fs(s)) for p, s in asks],
            )
        )
        self.stats["snapshots"] += 1
        ms = (time.perf_counter() - t) * 1e3
        self.stats["snapshot_ms_max"] = max(self.stats["snapshot_ms_max"], round(ms, 3))
        return web.Response(body=body, content_type="application/json")

    def seqs(self) -> dict[str, int]:
        tr = self.truth
        return {s: tr.seq_at(b, self.pos)[0] for b, s in enumerate(tr.cyc.symbols)}

    async def stop_handler(self, request: web.Request) -> web.Response:
        await self.stop()
        return web.json_response(
            {"pos": self.pos, "seqs": self.seqs(), "faults": self.fault_log, **self.stats}
        )

    async def truth_handler(self, request: web.Request) -> web.Response:
        out: dict[str, Any] = {}
        for b, sym in enumerate(self.truth.cyc.symbols):
            seq, book = self.truth.book_at(b, self.pos)
            inst = book.instrument
            fp, fs = inst.format_price, inst.format_size
            bids, asks = book.to_lists()
            out[sym] = {
                "seq": seq,
                "checksum": book.checksum(),
                "bids": [[fp(p), fs(s)] for p, s in bids],
                "asks": [[fp(p), fs(s)] for p, s in asks],
            }
        return web.json_response({"pos": self.pos, "stopped": self.stopped, "books": out})

    async def stats_handler(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "pos": self.pos,
                "stopped": self.stopped,
                "seqs": self.seqs(),
                "faults": self.fault_log,
                **self.stats,
            }
        )

    async def instruments(self, request: web.Request) -> web.Response:
        return web.json_response({"instruments": self.truth.cyc.instruments})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def orders(self, request: web.Request) -> web.Response:
        return web.json_response({"orders": []})

    async def cancel_all(self, request: web.Request) -> web.Response:
        return web.json_response({"cancelled": []})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/sat/stop", self.stop_handler)
        app.router.add_get("/sat/truth", self.truth_handler)
        app.router.add_get("/sat/stats", self.stats_handler)
        app.router.add_get("/v1/health", self.health)
        app.router.add_get("/v1/instruments", self.instruments)
        app.router.add_get("/v1/orderbook/{symbol}", self.orderbook)
        app.router.add_get("/v1/orders", self.orders)
        app.router.add_delete("/v1/orders", self.cancel_all)
        return app


async def serve(args: argparse.Namespace) -> None:
    t = time.perf_counter()
    truth = Truth(load(args.corpus))
    load_s = time.perf_counter() - t
    feed = Feed(truth, args.faults, args.fault_every_s, args.snapshot_limit_per_s)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SatConn(feed), args.host, args.port)
    runner = web.AppRunner(feed.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.rest_port)
    await site.start()
    ws_port = server.sockets[0].getsockname()[1]
    http_port = runner.addresses[0][1]
    print(
        json.dumps(
            {
                "event": "ready",
                "stream_url": f"ws://{args.host}:{ws_port}{vts.STREAM_PATH}",
                "rest_url": f"http://{args.host}:{http_port}",
                "pid": os.getpid(),
                "books": truth.n,
                "cycle_frames": truth.length,
                "load_s": round(load_s, 2),
            }
        ),
        flush=True,
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if args.stop_on_stdin_eof:  # the parent holds our stdin open; EOF means it is gone
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(0, 1) else None)
    hb = loop.create_task(feed.heartbeat())
    await stop.wait()
    hb.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await hb
    await feed.stop()
    server.close()
    for c in list(feed.conns):
        if c.transport is not None:
            c.transport.abort()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--corpus", type=Path, required=True, help="directory made by ensure()")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="stream port (0: any free)")
    ap.add_argument("--rest-port", type=int, default=0, help="REST/control port (0: any free)")
    ap.add_argument("--faults", action="store_true", help="inject drop/checksum/disconnect")
    ap.add_argument("--fault-every-s", type=float, default=2.0, help="seconds between faults")
    ap.add_argument(
        "--snapshot-limit-per-s",
        type=int,
        default=0,
        help="snapshots a second per key before 429 (0 = no limit, the default)",
    )
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    ap.add_argument("--stop-on-stdin-eof", action="store_true", help="exit when stdin closes")
    args = ap.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(serve(args))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "gen":  # python -m benchmarks.sat_sender gen BOOKS
        t0 = time.perf_counter()
        spec = CycleSpec(books=int(sys.argv[2]) if len(sys.argv) > 2 else CycleSpec.books)
        path = ensure(spec)
        print(f"cycle at {path} in {time.perf_counter() - t0:.1f}s")
    else:
        main()
