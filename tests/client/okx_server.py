"""A small OKX-speaking server for the client's tests: aiohttp on 127.0.0.1, free port.

Built with the OKX codec's own encoders (``venues.okx.codec``: ``encode_book``,
``encode_trades``, ``encode_ticker``, ``encode_event``, ``encode_instruments``) and its
client-frame decoder, so that the real :class:`tickpipe.Client` (``venue="okx"``) can be tested
before the gateway's OKX dialect exists. It serves:

- ``GET /api/v5/public/instruments?instType=SPOT``: ``BTC-USDT`` and ``ETH-USDT``;
- ``/ws/v5/public``: ``subscribe``/``unsubscribe`` answered per argument (``event``), a
  ``books`` snapshot right after a book's subscribe, then updates every ``tick_s`` with
  ``seqId``/``prevSeqId`` (ids step by 1..3, as OKX's do not step by one) and OKX's checksum
  of the true book; trades and tickers; ``ping`` answered ``pong``.

Faults, set by the test, each for the next occurrence: :attr:`drop` (an update not sent to
anyone; the truth moves on), :attr:`bad_checksum` (an update with a wrong checksum),
:attr:`lose_snapshot` (subscribes of that book answered with no snapshot), :attr:`silent`
(every open connection stops sending, pongs included). What clients sent is recorded in
:attr:`ops` (connection number, op, channels) and :attr:`pings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tickpipe.errors import FrameError
from tickpipe.protocol.book import Level, OrderBook
from tickpipe.protocol.frames import parse_levels
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import (
    BookDelta,
    BookSnapshot,
    RawLevel,
    TickerEvent,
    TradeEvent,
)
from tickpipe.venues.okx import checksum, codec

INSTRUMENTS = [
    Instrument("BTC-USDT", "crypto", "0.1", "0.0001"),
    Instrument("ETH-USDT", "crypto", "0.01", "0.001"),
]


@dataclass
class _Book:
    inst: Instrument
    book: OrderBook
    seq: int = 1000
    history: dict[int, tuple[list[Level], list[Level]]] = field(default_factory=dict)
    order: deque[int] = field(default_factory=deque)

    def remember(self) -> None:
        self.history[self.seq] = self.book.to_lists()
        self.order.append(self.seq)
        while len(self.order) > 5000:
            self.history.pop(self.order.popleft(), None)


class _Conn:
    def __init__(self, number: int, ws: web.WebSocketResponse) -> None:
        self.number = number
        self.ws = ws
        self.out: asyncio.Queue[bytes | str] = asyncio.Queue()
        self.books: set[str] = set()  # symbols of subscribed books
        self.other: set[str] = set()  # subscribed ticker:/trades: channels
        self.silent = False

    def put(self, data: bytes | str) -> None:
        if not self.silent:
            self.out.put_nowait(data)


class OkxServer:
    def __init__(self, *, tick_s: float = 0.02, seed: int = 5) -> None:
        self.tick_s = tick_s
        self._rng = random.Random(seed)
        self.books = {i.symbol: self._new_book(i) for i in INSTRUMENTS}
        self.drop: dict[str, int] = {}
        self.bad_checksum: dict[str, int] = {}
        self.lose_snapshot: dict[str, int] = {}
        self.ops: list[tuple[int, str, list[str]]] = []
        self.op_times: list[float] = []  # time.monotonic() of each entry of ops
        self.pings = 0
        self.connections = 0
        self.conns: list[_Conn] = []
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._trade_id = 1
        self.port = 0

    @property
    def stream_url(self) -> str:  # scheme, host and port: the client appends /ws/v5/public
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _new_book(self, inst: Instrument) -> _Book:
        b = _Book(inst, OrderBook(inst))
        mid = 30000.0 if inst.symbol.startswith("BTC") else 2000.0
        bids = [self._level(inst, mid - (i + 1) * 0.5, "1") for i in range(20)]
        asks = [self._level(inst, mid + (i + 1) * 0.5, "1") for i in range(20)]
        b.book.load(self._parse(inst, bids, "bids"), self._parse(inst, asks, "asks"))
        b.remember()
        return b

    @staticmethod
    def _level(inst: Instrument, price: float, size: str) -> RawLevel:
        return (f"{price:.{inst.price_decimals}f}", size)

    @staticmethod
    def _parse(inst: Instrument, raw: list[RawLevel], side: str) -> list[Level]:
        return parse_levels(raw, inst, f"orderbook:{inst.symbol}", side)

    def truth(self, symbol: str, seq: int) -> tuple[list[list[str]], list[list[str]]]:
        """The true book of ``symbol`` at ``seq`` as text levels (BookView.text_levels)."""
        b = self.books[symbol]
        bids, asks = b.history[seq]
        inst = b.inst
        return (
            [[inst.format_price(p), inst.format_size(s)] for p, s in bids],
            [[inst.format_price(p), inst.format_size(s)] for p, s in asks],
        )

    def ops_of(self, op: str, channel: str) -> int:
        return sum(1 for _, o, chans in self.ops if o == op and channel in chans)

    def send_all(self, text: str) -> None:
        """A raw text frame to every open connection (a test venue's own control frame)."""
        for c in self.conns:
            c.put(text)

    def go_silent(self) -> None:
        """Every open connection stops sending (pongs too), as a dead link would."""
        for c in self.conns:
            c.silent = True

    # -- life ---------------------------------------------------------------------------------
    async def __aenter__(self) -> OkxServer:
        app = web.Application()
        app.router.add_get("/api/v5/public/instruments", self._instruments)
        app.router.add_get("/ws/v5/public", self._stream)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._spawn(self._market())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
        if self._runner is not None:
            await self._runner.cleanup()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _instruments(self, request: web.Request) -> web.Response:
        assert request.query.get("instType") == "SPOT"
        return web.Response(
            body=codec.encode_instruments(INSTRUMENTS), content_type="application/json"
        )

    # -- the market: one update per book every tick, sent to every subscriber -------------------
    async def _market(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            for symbol, b in self.books.items():
                self._step(symbol, b)

    def _step(self, symbol: str, b: _Book) -> None:
        inst, rng = b.inst, self._rng
        mid = 30000.0 if symbol.startswith("BTC") else 2000.0
        side = rng.choice(("bids", "asks"))
        offset = rng.randint(1, 25) * 0.5
        price = mid - offset if side == "bids" else mid + offset
        size = rng.choice(("0", "0.5", "1", "2.25", "3"))
        if symbol.startswith("ETH"):
            size = size if size == "0" else size + "1"
        raw = [self._level(inst, price, size)]
        levels = self._parse(inst, raw, side)
        if side == "bids":
            b.book.apply(levels, [])
        else:
            b.book.apply([], levels)
        prev = b.seq
        b.seq += rng.randint(1, 3)
        b.remember()
        cs = checksum.checksum(b.book)
        if self.bad_checksum.get(symbol, 0) > 0:
            self.bad_checksum[symbol] -= 1
            cs = cs + 1 if cs < 2**31 - 1 else cs - 1
        delta = BookDelta(
            symbol,
            raw if side == "bids" else [],
            raw if side == "asks" else [],
            last_id=b.seq,
            prev_id=prev,
            checksum=cs,
            ts_ns=time.time_ns(),
        )
        dropped = self.drop.get(symbol, 0) > 0
        if dropped:
            self.drop[symbol] -= 1
        frame = codec.encode_book(delta)
        trade = codec.encode_trades(
            [TradeEvent(symbol, str(self._trade_id), raw[0][0], "0.5", "buy", time.time_ns())]
        )
        self._trade_id += 1
        best_bid, best_ask = b.book.best_bid(), b.book.best_ask()
        assert best_bid is not None and best_ask is not None
        ticker = codec.encode_ticker(
            TickerEvent(
                symbol,
                inst.format_price(best_bid[0]),
                inst.format_size(best_bid[1]),
                inst.format_price(best_ask[0]),
                inst.format_size(best_ask[1]),
                raw[0][0],
                "100",
                time.time_ns(),
            )
        )
        for c in self.conns:
            if symbol in c.books and not dropped:
                c.put(frame)
            if f"trades:{symbol}" in c.other:
                c.put(trade)
            if f"ticker:{symbol}" in c.other:
                c.put(ticker)

    def _snapshot(self, symbol: str) -> bytes:
        b = self.books[symbol]
        inst = b.inst
        bids, asks = b.book.to_lists()
        return codec.encode_book(
            BookSnapshot(
                symbol,
                b.seq,
                [(inst.format_price(p), inst.format_size(s)) for p, s in bids],
                [(inst.format_price(p), inst.format_size(s)) for p, s in asks],
                checksum.checksum(b.book),
                time.time_ns(),
            )
        )

    # -- one connection -----------------------------------------------------------------------
    async def _writer(self, c: _Conn) -> None:
        with contextlib.suppress(Exception):
            while True:
                data = await c.out.get()
                await c.ws.send_str(data.decode() if isinstance(data, bytes) else data)

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        self.connections += 1
        c = _Conn(self.connections, ws)
        self.conns.append(c)
        writer = self._spawn(self._writer(c))
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    req = codec.decode_client(msg.data)
                except FrameError as exc:
                    c.put(codec.encode_event(codec.VenueError("60012", str(exc))))
                    continue
                if isinstance(req, codec.Ping):
                    self.pings += 1
                    c.put("pong")
                    continue
                self.ops.append((c.number, req.op, list(req.channels)))
                self.op_times.append(time.monotonic())
                for ch in req.channels:
                    self._op(c, req.op, ch, req.request_id)
        finally:
            writer.cancel()
            self.conns.remove(c)
        return ws

    def _op(self, c: _Conn, op: str, channel: str, request_id: str | None) -> None:
        kind, _, symbol = channel.partition(":")
        if symbol not in self.books:
            c.put(
                codec.encode_event(codec.VenueError("60018", f"{symbol} doesn't exist", request_id))
            )
            return
        if op == "unsubscribe":
            if kind == "orderbook":
                c.books.discard(symbol)
            else:
                c.other.discard(channel)
            c.put(codec.encode_event(codec.Unsubscribed(channel, "", request_id)))
            return
        c.put(codec.encode_event(codec.Subscribed(channel, "", request_id)))
        if kind != "orderbook":
            c.other.add(channel)
            return
        c.books.add(symbol)
        if self.lose_snapshot.get(symbol, 0) > 0:
            self.lose_snapshot[symbol] -= 1
            return
        c.put(self._snapshot(symbol))
