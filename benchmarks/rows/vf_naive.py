"""Venue-flood row ``naive``: a lean, correct Binance client a user writes in an afternoon.

``websockets`` (asyncio client on uvloop) on the combined stream
``/stream?streams=<symbol>@depth@100ms/...``, ``orjson``, and per book two plain ``dict``s
keyed by ``Decimal`` price (sorted only when read). Binance's documented sync, per symbol:
buffer the stream's events, fetch ``/api/v3/depth?symbol=S&limit=1000``, refetch while the
snapshot is older than the first buffered event (``lastUpdateId < U - 1``), drop events with
``u <= lastUpdateId``, take the first with ``U <= lastUpdateId + 1 <= u``, then demand
``U == previous u + 1`` (a gap refetches the snapshot and bridges again). No checksum (Binance
has none). Variant ``picows``: the same client on picows (uvloop) instead of websockets.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import uvloop

from benchmarks.rows.vf_common import Book, RowArgs, Window, fail, parse_args

SNAPSHOT_LIMIT = 1000


class Sym:
    """One symbol's book and sync state."""

    __slots__ = ("asks", "bids", "buffer", "last", "live", "snap_id")

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.buffer: list[dict[str, Any]] = []
        self.snap_id: int | None = None  # lastUpdateId of the snapshot still to bridge
        self.last = 0  # u of the last event applied
        self.live = False


def _apply(book: dict[Decimal, Decimal], levels: list[list[str]]) -> None:
    for p, s in levels:
        size = Decimal(s)
        if size:
            book[Decimal(p)] = size
        else:
            book.pop(Decimal(p), None)


class Naive:
    def __init__(self, win: Window, http: aiohttp.ClientSession) -> None:
        self.win = win
        self.http = http
        self.syms = {s: Sym() for s in win.symbols}
        self.gaps = 0
        self.refetches = 0

    async def snapshot(self, sym: str) -> None:
        url = f"{self.win.args.rest_url}/api/v3/depth?symbol={sym}&limit={SNAPSHOT_LIMIT}"
        async with self.http.get(url) as resp:
            resp.raise_for_status()
            snap = orjson.loads(await resp.read())
        st = self.syms[sym]
        st.bids = {Decimal(p): Decimal(s) for p, s in snap["bids"]}
        st.asks = {Decimal(p): Decimal(s) for p, s in snap["asks"]}
        st.snap_id = int(snap["lastUpdateId"])
        st.live = False

    def on_event(self, ev: dict[str, Any]) -> bool:
        """Apply one event; False when its book needs a (new) snapshot first."""
        st = self.syms[ev["s"]]
        if st.live:
            if ev["U"] != st.last + 1:
                self.gaps += 1
                st.live, st.snap_id, st.buffer = False, None, [ev]
                return False
            _apply(st.bids, ev["b"])
            _apply(st.asks, ev["a"])
            st.last = ev["u"]
            return True
        if st.snap_id is None:
            st.buffer.append(ev)
            return False
        if ev["u"] <= st.snap_id:
            return True  # already in the snapshot
        if ev["U"] <= st.snap_id + 1:  # and snap_id + 1 <= u: the bridge
            _apply(st.bids, ev["b"])
            _apply(st.asks, ev["a"])
            st.last = ev["u"]
            st.live = True
            return True
        # the snapshot is older than the stream we have: fetch another
        self.refetches += 1
        st.snap_id, st.buffer = None, [ev]
        return False

    async def resync(self, sym: str) -> None:
        """Snapshot, then the buffered events over it (bounded refetches)."""
        st = self.syms[sym]
        for _ in range(20):
            await self.snapshot(sym)
            pending, st.buffer = st.buffer, []
            if all(self.on_event(ev) for ev in pending):
                return
        raise RuntimeError(f"{sym}: no snapshot bridges the stream after 20 tries")

    def seq(self, st: Sym) -> int | None:
        return st.last if st.live else st.snap_id

    def seeded(self) -> bool:
        w = self.win.warm_ids
        return all((self.seq(st) or 0) >= w[s] for s, st in self.syms.items())

    def done(self) -> bool:
        f = self.win.final_ids
        return all(st.live and st.last == f[s] for s, st in self.syms.items())

    def books(self) -> dict[str, Book]:
        out: dict[str, Book] = {}
        for s, st in self.syms.items():
            bids = [[str(p), str(st.bids[p])] for p in sorted(st.bids, reverse=True)]
            asks = [[str(p), str(st.asks[p])] for p in sorted(st.asks)]
            out[s] = {
                "seq": st.last if st.live else None,
                "bids": self.win.levels(bids),
                "asks": self.win.levels(asks),
            }
        return out


async def _run(args: RowArgs) -> None:
    import websockets

    win = Window(args, "naive")
    win.extra["stack"] = "websockets+orjson+dict[Decimal]"
    streams = "/".join(win.info["depth_streams"])
    url = f"{args.stream_url}/stream?streams={streams}"
    async with aiohttp.ClientSession() as http:
        n = Naive(win, http)
        try:
            async with websockets.connect(url, max_size=2**22) as ws:
                for s in win.symbols:  # the stream flows meanwhile: its events wait
                    await n.snapshot(s)
                final = win.final_ids
                if n.seeded():
                    win.start()
                loop = asyncio.get_running_loop()
                deadline = loop.time() + max(0.0, win.deadline - time.perf_counter())
                async with asyncio.timeout_at(deadline):  # one timer for the whole run
                    async for raw in ws:
                        ev = orjson.loads(raw)["data"]
                        if not n.on_event(ev):
                            await n.resync(ev["s"])
                        if not win.started():
                            if n.seeded():
                                win.start()
                        elif ev["u"] == final[ev["s"]] and n.done():
                            win.end()
                            break
        except TimeoutError:
            win.extra["timed_out"] = True
        finally:
            win.extra.update(gaps=n.gaps, refetches=n.refetches)
            books = n.books()
            win.emit(books)


if __name__ == "__main__":
    a = parse_args()
    try:
        uvloop.run(_run(a))
    except (OSError, RuntimeError, aiohttp.ClientError) as exc:
        fail("naive", f"{type(exc).__name__}: {exc}")
