"""The venue-flood benchmark's Binance spot imitation: valid ``depthUpdate`` floods on loopback.

Run it as its own process (``benchmarks/venue_flood.py`` does, pinned to CPU 0)::

    python -m benchmarks.venue_flood_sender --corpus DIR [--cpu 0] [--stop-on-stdin-eof]

It prints one JSON line ``{"event": "ready", "stream_url", "rest_url", ...}`` and serves until
SIGTERM/SIGINT (or, with ``--stop-on-stdin-eof``, until its parent closes its stdin).

**The corpus** (:func:`generate`, cached in ``$TMPDIR/tickpipe-vflood-<hash>/``): ``books``
Binance spot symbols (``BTCUSDT``, ``ETHUSDT``, ...) with ~``depth`` (300) levels a side,
prices and sizes written with 8 decimals as Binance spot writes them (``quoteAssetPrecision``
and ``baseAssetPrecision`` 8) on coarser grids (PRICE_FILTER ``tickSize``, LOT_SIZE
``stepSize``). ``warmup + frames`` events follow, each one symbol's ``depthUpdate`` with 1-3
changed levels near the top (updates, removals, inserts; the depth stays within ±10 % of its
start), each spanning 1-3 update ids: ``U``/``u`` are contiguous per symbol
(``U == previous u + 1``). Every event is encoded by the client's own codec
(:meth:`tickpipe.venues.binance.codec.Codec.encode_delta`, wrapped for ``/stream`` by
``encode_combined``), so the bytes are exactly the documented shape the clients decode.

**The stream** (raw asyncio, frames pre-built into ~256 KiB chunks at load, so the sender's
cost per frame is a fraction of a receiver's): ``ws://HOST:PORT/ws`` then ``SUBSCRIBE``
(acked ``{"result":null,"id":N}``; tickpipe's way) or ``/stream?streams=a/b/...`` (combined
wrapper ``{"stream","data"}``, flowing at once; cryptofeed's way). Streaming starts once every
symbol's ``<symbol>@depth@100ms`` is subscribed: the ``warmup`` events are written at once,
then nothing until ``POST /flood/go``; then the ``frames`` measured events are written back to
back, TCP backpressure (``pause_writing``) the only brake, so the receiver sets the pace and is
CPU-bound. Then the stream is silent (server pings every 10 s). ``POST /flood/reset`` (the
benchmark calls it before each row) closes every connection and rewinds to the start.

**Snapshots** (``GET /api/v3/depth?symbol=S&limit=N``, body by ``Codec.encode_depth_snapshot``):
the exact book after the events handed to the socket so far (``pos``; under backpressure it is
ahead of what the client has read), as a real venue answers. Its ``lastUpdateId`` lies inside
the id range of the symbol's next event when that one spans several ids (the next event's
``U`` plus 0..span-2), so a client must apply Binance's bridge rule
``U <= lastUpdateId + 1 <= u`` and not only ``U == lastUpdateId + 1`` (the next event's levels
are final sizes, so applying it whole over this book gives the true book after it). Books are
rebuilt from checkpoints every ``CHECKPOINT_EVERY`` events of a symbol.

Also ``GET /api/v3/exchangeInfo`` (written here, not by the codec's encoder: a real body has
precision 8 beside coarser filters, and ``baseAsset``/``quoteAsset``, which cryptofeed reads;
checked at load with the codec's decoder), ``GET /api/v3/ping``, ``GET /api/v3/time``.

Control: ``GET /flood/info`` (symbols, each symbol's last ``u`` of the warm-up and of the whole
stream, counts), ``POST /flood/go``, ``POST /flood/reset``, ``GET /flood/truth`` (every book
at ``pos``, whole, ``[[price, size], ...]`` best first, with its last ``u``), ``GET
/flood/stats``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import hashlib
import json
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from aiohttp import web
from sortedcontainers import SortedDict

from benchmarks import corpus_cache
from benchmarks.sender import CHUNK_BYTES
from benchmarks.wsserver import WsConn, parse_request, ws_header
from tickpipe.errors import FrameError
from tickpipe.protocol.normalised import BookDelta, BookSnapshot
from tickpipe.venues.binance.codec import Codec
from tickpipe.venues.binance.endpoints import SPOT
from tickpipe.venues.binance.limits import USED_WEIGHT_HEADER

CORPUS_VERSION = 1
DECIMALS = 8  # Binance spot writes prices and sizes with 8 decimals
UNIT: int = 10**DECIMALS
CHECKPOINT_EVERY = 512  # events of one symbol between kept books: bounds a snapshot's replay
PING_EVERY_S = 10.0
DEPTH_SUFFIX = SPOT.depth_suffix  # "@depth@100ms"
Level = tuple[int, int]  # (price, size) in units of 1e-8

# (base, quote, mid price, tickSize, stepSize, max lots a level): ten liquid spot books
_MARKETS = (
    ("BTC", "USDT", "65000.00", "0.01", "0.00001", 20_000),
    ("ETH", "USDT", "3400.00", "0.01", "0.0001", 20_000),
    ("BNB", "USDT", "580.00", "0.01", "0.001", 5_000),
    ("SOL", "USDT", "150.00", "0.01", "0.001", 50_000),
    ("XRP", "USDT", "0.5200", "0.0001", "1", 50_000),
    ("DOGE", "USDT", "0.12000", "0.00001", "1", 200_000),
    ("ADA", "USDT", "0.4500", "0.0001", "0.1", 100_000),
    ("TRX", "USDT", "0.1200", "0.0001", "0.1", 100_000),
    ("AVAX", "USDT", "35.00", "0.01", "0.01", 10_000),
    ("LINK", "USDT", "15.00", "0.01", "0.01", 10_000),
)


def units(txt: str) -> int:
    """``"0.01"`` -> 1_000_000 (units of 1e-8)."""
    whole, _, frac = txt.partition(".")
    return int(whole) * UNIT + int((frac + "0" * DECIMALS)[:DECIMALS] or 0)


def text(u: int) -> str:
    """1_000_000 -> ``"0.01000000"``: Binance's fixed 8 decimals."""
    return f"{u // UNIT}.{u % UNIT:08d}"


@dataclass(frozen=True)
class FloodSpec:
    """The knobs of a corpus: ``books`` symbols (at most 10), ``warmup`` events to seed every
    book before the window, ``frames`` measured events, ~``depth`` levels a side, ``seed``."""

    books: int = 10
    warmup: int = 2_000
    frames: int = 200_000
    depth: int = 300
    seed: int = 18

    def cache_key(self) -> str:
        t = repr((CORPUS_VERSION, sorted(asdict(self).items())))
        return hashlib.sha1(t.encode()).hexdigest()[:12]


class Corpus(msgspec.Struct):
    symbols: list[str]
    markets: list[tuple[str, str, str, str]]  # (base, quote, tickSize, stepSize)
    initial_id: list[int]  # per book: lastUpdateId of the initial book (first U - 1)
    initial: list[tuple[list[Level], list[Level]]]  # per book: (bids, asks) best first
    warmup: int
    book_of: list[int]  # per event
    first: list[int]  # per event: U
    last: list[int]  # per event: u
    bids: list[list[Level]]  # per event: changed levels (size 0 removes)
    asks: list[list[Level]]
    events: list[bytes]  # per event: the raw depthUpdate


class _Gen:
    """One symbol's book in units, changed near the top (prices never cross the mid)."""

    def __init__(
        self, mid: int, tick: int, lot: int, max_lots: int, depth: int, rnd: random.Random
    ):
        self.mid, self.tick, self.lot, self.max_lots, self.depth, self.rnd = (
            mid,
            tick,
            lot,
            max_lots,
            depth,
            rnd,
        )
        span = int(depth * 1.3)
        self.bids: SortedDict = SortedDict(
            {
                (mid - k) * tick: rnd.randint(1, max_lots) * lot
                for k in rnd.sample(range(1, span), depth)
            }
        )
        self.asks: SortedDict = SortedDict(
            {
                (mid + k) * tick: rnd.randint(1, max_lots) * lot
                for k in rnd.sample(range(1, span), depth)
            }
        )

    def change(self, bid: bool) -> Level:
        """One changed level of a side (applied here): an update, a removal or an insert."""
        rnd, side = self.rnd, (self.bids if bid else self.asks)
        n = len(side)
        roll = rnd.random()
        if n > self.depth * 1.1:
            roll = min(roll, 0.79)  # no inserts while too deep
        if n < self.depth * 0.9 and roll < 0.2:
            roll = 0.5  # no removals while too shallow
        if roll >= 0.8 or n == 0:  # insert (or update) near the top
            k = 1 + int(rnd.expovariate(1 / 8))
            price = (self.mid - k if bid else self.mid + k) * self.tick
            size = rnd.randint(1, self.max_lots) * self.lot
        else:
            i = min(int(rnd.expovariate(1 / 6)), n - 1)
            price = side.keys()[-1 - i] if bid else side.keys()[i]
            size = 0 if roll < 0.2 else rnd.randint(1, self.max_lots) * self.lot
        if size:
            side[price] = size
        else:
            side.pop(price, None)
        return price, size

    def lists(self) -> tuple[list[Level], list[Level]]:
        return list(reversed(self.bids.items())), list(self.asks.items())


def generate(spec: FloodSpec) -> Corpus:
    """Build the corpus in memory (a few seconds for 200k events)."""
    if not 1 <= spec.books <= len(_MARKETS):
        raise ValueError(f"books must be 1..{len(_MARKETS)}")
    if spec.warmup < 2 * spec.books:
        raise ValueError("warmup must give every book at least two events")
    rnd = random.Random(spec.seed)
    codec = Codec(SPOT)
    markets = _MARKETS[: spec.books]
    symbols = [b + q for b, q, *_ in markets]
    gens = [
        _Gen(units(mid) // units(tick), units(tick), units(step), lots, spec.depth, rnd)
        for _, _, mid, tick, step, lots in markets
    ]
    initial = [g.lists() for g in gens]
    initial_id = [rnd.randint(10**9, 10**10) for _ in gens]
    nxt = [i + 1 for i in initial_id]
    total = spec.warmup + spec.frames
    # every book gets an event early in the warm-up (cryptofeed snapshots on a symbol's first)
    order = list(range(spec.books))
    rnd.shuffle(order)
    book_of: list[int] = []
    first: list[int] = []
    last: list[int] = []
    all_bids: list[list[Level]] = []
    all_asks: list[list[Level]] = []
    events: list[bytes] = []
    ts_ms = 1_750_000_000_000
    for i in range(total):
        b = order[i] if i < len(order) else rnd.randrange(spec.books)
        g = gens[b]
        changes: dict[bool, dict[int, int]] = {True: {}, False: {}}
        for _ in range(rnd.randint(1, 3)):
            bid = rnd.random() < 0.5
            p, s = g.change(bid)
            changes[bid][p] = s
        bids = sorted(changes[True].items(), reverse=True)
        asks = sorted(changes[False].items())
        span = rnd.randint(1, 3)
        u0 = nxt[b]
        nxt[b] = u0 + span
        ts_ms += rnd.randint(0, 1)
        delta = BookDelta(
            symbols[b],
            [(text(p), text(s)) for p, s in bids],
            [(text(p), text(s)) for p, s in asks],
            last_id=u0 + span - 1,
            first_id=u0,
            ts_ns=ts_ms * 1_000_000,
        )
        events.append(codec.encode_delta(delta))
        book_of.append(b)
        first.append(u0)
        last.append(u0 + span - 1)
        all_bids.append(bids)
        all_asks.append(asks)
    return Corpus(
        symbols=symbols,
        markets=[(m[0], m[1], m[3], m[4]) for m in markets],
        initial_id=initial_id,
        initial=initial,
        warmup=spec.warmup,
        book_of=book_of,
        first=first,
        last=last,
        bids=all_bids,
        asks=all_asks,
        events=events,
    )


def cache_dir(spec: FloodSpec) -> Path:
    return corpus_cache.cache_dir("tickpipe-vflood", spec.cache_key())


def ensure(spec: FloodSpec) -> Path:
    """Generate into the cache directory unless it is already there; return it."""
    return corpus_cache.ensure(cache_dir(spec), "corpus.msgpack", lambda: generate(spec))


def load(d: Path) -> Corpus:
    return corpus_cache.load(d, "corpus.msgpack", Corpus)


def exchange_info(corpus: Corpus) -> bytes:
    """A minimal real-shaped exchangeInfo: precision 8, the filters' coarser grid, assets."""
    symbols = [
        {
            "symbol": sym,
            "status": "TRADING",
            "baseAsset": base,
            "baseAssetPrecision": DECIMALS,
            "quoteAsset": quote,
            "quotePrecision": DECIMALS,
            "quoteAssetPrecision": DECIMALS,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": text(units(tick)),
                    "maxPrice": "1000000.00000000",
                    "tickSize": text(units(tick)),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": text(units(step)),
                    "maxQty": "9000000.00000000",
                    "stepSize": text(units(step)),
                },
            ],
        }
        for sym, (base, quote, tick, step) in zip(corpus.symbols, corpus.markets, strict=True)
    ]
    body = msgspec.json.encode(
        {
            "timezone": "UTC",
            "serverTime": time.time_ns() // 1_000_000,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                }
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }
    )
    Codec(SPOT).decode_exchange_info(body)  # the client's own decoder takes it (or raises)
    return body


class Truth:
    """Every book at any stream position (from checkpoints), and the pre-framed stream."""

    def __init__(self, corpus: Corpus) -> None:
        self.c = corpus
        self.n = len(corpus.symbols)
        self.total = len(corpus.events)
        self.index = {s: b for b, s in enumerate(corpus.symbols)}
        self.idx: list[list[int]] = [[] for _ in range(self.n)]
        for i, b in enumerate(corpus.book_of):
            self.idx[b].append(i)
        self.checkpoints: list[list[tuple[dict[int, int], dict[int, int]]]] = []
        for b in range(self.n):
            bids, asks = (dict(x) for x in corpus.initial[b])
            cps = [(dict(bids), dict(asks))]
            for k, i in enumerate(self.idx[b], start=1):
                _apply(bids, corpus.bids[i])
                _apply(asks, corpus.asks[i])
                if k % CHECKPOINT_EVERY == 0:
                    cps.append((dict(bids), dict(asks)))
            self.checkpoints.append(cps)
        codec = Codec(SPOT)
        # the stream, framed: raw events (/ws) and wrapped ones (/stream), in chunks with the
        # count of events each holds; warm-up and measured events in separate lists
        self.chunks: dict[bool, tuple[list[tuple[bytes, int]], list[tuple[bytes, int]]]] = {}
        for combined in (False, True):
            frames = [
                codec.encode_combined(f"orderbook:{corpus.symbols[b]}", e) if combined else e
                for b, e in zip(corpus.book_of, corpus.events, strict=True)
            ]
            w = corpus.warmup
            self.chunks[combined] = (_chunks(frames[:w]), _chunks(frames[w:]))

    def count_at(self, b: int, pos: int) -> int:
        """Events of book ``b`` among the first ``pos`` of the stream."""
        return bisect.bisect_left(self.idx[b], pos)

    def last_id(self, b: int, k: int) -> int:
        """``u`` after the first ``k`` events of book ``b``."""
        return self.c.last[self.idx[b][k - 1]] if k else self.c.initial_id[b]

    def book(self, b: int, k: int) -> tuple[list[Level], list[Level]]:
        """Book ``b`` after its first ``k`` events, (bids, asks) best first."""
        cp = k // CHECKPOINT_EVERY
        bids, asks = (dict(x) for x in self.checkpoints[b][cp])
        for i in self.idx[b][cp * CHECKPOINT_EVERY : k]:
            _apply(bids, self.c.bids[i])
            _apply(asks, self.c.asks[i])
        return sorted(bids.items(), reverse=True), sorted(asks.items())

    def snapshot_id(self, b: int, k: int) -> int:
        """The ``lastUpdateId`` served with the book after ``k`` events: inside the next event's
        id range when it spans several ids (see the module doc), else ``u`` of event ``k``."""
        idx = self.idx[b]
        if k < len(idx):
            nxt = idx[k]
            span = self.c.last[nxt] - self.c.first[nxt] + 1
            if span > 1:
                return self.c.first[nxt] + k % (span - 1)
        return self.last_id(b, k)

    def info(self) -> dict[str, Any]:
        w = self.c.warmup
        return {
            "symbols": self.c.symbols,
            "warmup": w,
            "frames": self.total - w,
            "warm_ids": {
                s: self.last_id(b, self.count_at(b, w)) for b, s in enumerate(self.c.symbols)
            },
            "final_ids": {
                s: self.last_id(b, len(self.idx[b])) for b, s in enumerate(self.c.symbols)
            },
            "depth_streams": [s.lower() + DEPTH_SUFFIX for s in self.c.symbols],
        }


def _apply(side: dict[int, int], levels: list[Level]) -> None:
    for p, s in levels:
        if s:
            side[p] = s
        else:
            side.pop(p, None)


def _chunks(frames: list[bytes]) -> list[tuple[bytes, int]]:
    out: list[tuple[bytes, int]] = []
    buf = bytearray()
    n = 0
    for f in frames:
        buf += ws_header(len(f))
        buf += f
        n += 1
        if len(buf) >= CHUNK_BYTES:
            out.append((bytes(buf), n))
            buf.clear()
            n = 0
    if buf:
        out.append((bytes(buf), n))
    return out


class FloodConn(WsConn):
    """One receiver: HTTP upgrade (``/ws`` or ``/stream?streams=``), commands, pings."""

    def __init__(self, feed: Feed) -> None:
        super().__init__(feed.conns)
        self.feed = feed
        self.combined = False
        self.streams: set[str] = set()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _handshake(self, head: str) -> None:
        path, headers = parse_request(head)
        target = urlsplit(path)
        key = headers.get("sec-websocket-key")
        streams: list[str] = []
        if target.path == SPOT.combined_stream_path:
            self.combined = True
            streams = [s for s in parse_qs(target.query).get("streams", [""])[0].split("/") if s]
        elif target.path != SPOT.raw_stream_path:
            key = None
        if key is None:
            self.refuse()
            return
        self.upgrade(key)
        if streams:
            self._subscribed(streams)

    def _on_data(self, payload: bytes) -> None:
        try:
            cmd = Codec.decode_command(payload)
        except FrameError as exc:  # a bad command is answered, never fatal
            self.send_text(Codec.encode_error(2, f"Invalid request: {exc}"))
            return
        if cmd.method == "SUBSCRIBE":
            self.send_text(Codec.encode_ack(cmd.id))
            self._subscribed([str(p) for p in cmd.params])
        elif cmd.method in ("UNSUBSCRIBE", "SET_PROPERTY"):
            self.send_text(Codec.encode_ack(cmd.id))
        else:
            self.send_text(Codec.encode_error(0, f"unsupported method {cmd.method}", cmd.id))

    def _subscribed(self, streams: list[str]) -> None:
        self.streams.update(streams)
        if self.feed.want <= self.streams:
            self.feed.start(self)


class Feed:
    """Position, the warm-up / go / flood phases and the counters."""

    def __init__(self, truth: Truth) -> None:
        self.truth = truth
        self.want = set(truth.info()["depth_streams"])
        self.conns: set[FloodConn] = set()
        self.pos = 0
        self.go = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.stats: dict[str, Any] = {}
        self._reset_stats()

    def _reset_stats(self) -> None:
        self.stats = {
            "sessions": self.stats.get("sessions", 0),
            "frames_written": 0,
            "chunks": 0,
            "snapshots": 0,
            "paused_s": 0.0,
            "flood_s": None,
        }

    def start(self, conn: FloodConn) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.task = asyncio.get_running_loop().create_task(self._stream(conn))

    async def _stream(self, conn: FloodConn) -> None:
        warm, measured = self.truth.chunks[conn.combined]
        if self.pos == 0:
            await self._write(conn, warm)
        await self.go.wait()
        t = time.perf_counter()
        if self.pos == self.truth.c.warmup:
            await self._write(conn, measured)
        self.stats["flood_s"] = round(time.perf_counter() - t, 3)

    async def _write(self, conn: FloodConn, chunks: list[tuple[bytes, int]]) -> None:
        for data, n in chunks:
            if conn.closed:
                return
            conn.write(data)
            self.pos += n  # handed to the socket: a snapshot now includes these events
            self.stats["frames_written"] += n
            self.stats["chunks"] += 1
            if not conn.can_write.is_set():
                t = time.perf_counter()
                await conn.can_write.wait()
                self.stats["paused_s"] += time.perf_counter() - t
            else:
                await asyncio.sleep(0)  # let REST (snapshots) in between chunks

    async def reset(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for c in list(self.conns):
            c.abort()
        self.pos = 0
        self.go = asyncio.Event()
        self.stats["sessions"] += 1
        self._reset_stats()

    async def pinger(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(PING_EVERY_S)
            n += 1
            payload = str(n).encode()
            for c in list(self.conns):
                if c.open:
                    c.write(ws_header(len(payload), 0x9) + payload)

    # -- REST ---------------------------------------------------------------------------------
    async def depth(self, request: web.Request) -> web.Response:
        sym = request.query.get("symbol", "")
        b = self.truth.index.get(sym)
        if b is None:
            body = Codec.encode_error(-1121, "Invalid symbol.")
            return web.Response(body=body, status=400, content_type="application/json")
        limit_txt = request.query.get("limit", "100")
        limit = min(max(int(limit_txt), 1), 5000) if limit_txt.isdigit() else 100
        k = self.truth.count_at(b, self.pos)
        bids, asks = self.truth.book(b, k)
        snap = BookSnapshot(
            sym,
            self.truth.snapshot_id(b, k),
            [(text(p), text(s)) for p, s in bids[:limit]],
            [(text(p), text(s)) for p, s in asks[:limit]],
        )
        self.stats["snapshots"] += 1
        return web.Response(
            body=Codec(SPOT).encode_depth_snapshot(snap),
            content_type="application/json",
            headers={USED_WEIGHT_HEADER: str(self.stats["snapshots"] * 50 % 6000)},
        )

    async def exchange_info(self, request: web.Request) -> web.Response:
        return web.Response(body=exchange_info(self.truth.c), content_type="application/json")

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def server_time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": time.time_ns() // 1_000_000})

    async def info_handler(self, request: web.Request) -> web.Response:
        return web.json_response(self.truth.info())

    async def go_handler(self, request: web.Request) -> web.Response:
        self.go.set()
        return web.json_response({"pos": self.pos})

    async def reset_handler(self, request: web.Request) -> web.Response:
        await self.reset()
        return web.json_response({"pos": self.pos})

    async def truth_handler(self, request: web.Request) -> web.Response:
        books: dict[str, Any] = {}
        for b, sym in enumerate(self.truth.c.symbols):
            k = self.truth.count_at(b, self.pos)
            bids, asks = self.truth.book(b, k)
            books[sym] = {
                "last_id": self.truth.last_id(b, k),
                "bids": [[text(p), text(s)] for p, s in bids],
                "asks": [[text(p), text(s)] for p, s in asks],
            }
        return web.json_response({"pos": self.pos, "books": books})

    async def stats_handler(self, request: web.Request) -> web.Response:
        return web.json_response({"pos": self.pos, **self.stats})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(SPOT.snapshot_path, self.depth)
        app.router.add_get(SPOT.instruments_path, self.exchange_info)
        app.router.add_get("/api/v3/ping", self.ping)
        app.router.add_get("/api/v3/time", self.server_time)
        app.router.add_get("/flood/info", self.info_handler)
        app.router.add_post("/flood/go", self.go_handler)
        app.router.add_post("/flood/reset", self.reset_handler)
        app.router.add_get("/flood/truth", self.truth_handler)
        app.router.add_get("/flood/stats", self.stats_handler)
        return app


async def serve(args: argparse.Namespace) -> None:
    t = time.perf_counter()
    truth = Truth(load(args.corpus))
    load_s = time.perf_counter() - t
    feed = Feed(truth)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FloodConn(feed), args.host, args.port)
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
                "stream_url": f"ws://{args.host}:{ws_port}",
                "rest_url": f"http://{args.host}:{http_port}",
                "pid": os.getpid(),
                "load_s": round(load_s, 2),
                **truth.info(),
            }
        ),
        flush=True,
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if args.stop_on_stdin_eof:  # the parent holds our stdin open; EOF means it is gone
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(0, 1) else None)
    pings = loop.create_task(feed.pinger())
    await stop.wait()
    pings.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pings
    await feed.reset()
    server.close()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--corpus", type=Path, required=True, help="directory made by ensure()")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="stream port (0: any free)")
    ap.add_argument("--rest-port", type=int, default=0, help="REST/control port (0: any free)")
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    ap.add_argument("--stop-on-stdin-eof", action="store_true", help="exit when stdin closes")
    args = ap.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
