"""Conformance: an independent client that follows only ../shared/protocol.md syncs every book
of a gateway subprocess and verifies every checksum.

Nothing of tickpipe is used here except to start the process: numbers are ``Decimal``, the
book is two dicts, the checksum is written from section 5, signing from section 3.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import zlib
from decimal import Decimal
from typing import Any

import aiohttp

from tickpipe.gateway.testing import GatewayProcess


def _decimals(step: str) -> int:
    return len(step.split(".")[1]) if "." in step else 0


class SpecBook:
    """A book as section 5 describes it: size is the new total, "0" removes the level."""

    def __init__(self, tick_size: str, lot_size: str) -> None:
        self.pd, self.sd = _decimals(tick_size), _decimals(lot_size)
        self.tick, self.lot = Decimal(tick_size), Decimal(lot_size)
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def _check_text(self, price: str, size: str) -> None:
        # section 2: tickpipe's gateway writes exactly the instrument's decimals, on the grid
        assert _decimals(price) == self.pd and _decimals(size) == self.sd, (price, size)
        assert Decimal(price) % self.tick == 0 and Decimal(size) % self.lot == 0

    def load(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        self.bids, self.asks = {}, {}
        self.apply(bids, asks)

    def apply(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, size in levels:
                self._check_text(price, size)
                p, s = Decimal(price), Decimal(size)
                if s == 0:
                    side.pop(p, None)
                else:
                    side[p] = s

    def checksum(self) -> int:
        b = sorted(self.bids.items(), reverse=True)[:10]
        a = sorted(self.asks.items())[:10]
        parts = []
        for i in range(max(len(b), len(a))):
            for levels in (b, a):
                if i < len(levels):
                    p, s = levels[i]
                    parts.append(f"{p:.{self.pd}f}:{s:.{self.sd}f}")
        return zlib.crc32(":".join(parts).encode()) & 0xFFFFFFFF

    def crossed(self) -> bool:
        return bool(self.bids and self.asks) and max(self.bids) >= min(self.asks)


class ChannelSync:
    """Section 5's synchronisation steps for one channel."""

    def __init__(self, book: SpecBook) -> None:
        self.book = book
        self.buffer: list[dict[str, Any]] = []
        self.seq: int | None = None  # None: not synced
        self.verified = 0
        self.duplicates = 0

    def on_delta(self, f: dict[str, Any]) -> None:
        if self.seq is None:
            self.buffer.append(f)
            return
        if f["seq"] <= self.seq:  # rule 4: already reflected (e.g. by the snapshot)
            self.duplicates += 1
            return
        assert f["seq"] == self.seq + 1, (f["channel"], self.seq, f["seq"])
        self.book.apply(f["bids"], f["asks"])
        assert self.book.checksum() == f["checksum"], (f["channel"], f["seq"])
        assert not self.book.crossed()
        self.seq = f["seq"]
        self.verified += 1

    def on_snapshot(self, snap: dict[str, Any]) -> bool:
        """Seed from a snapshot; False when it is too old to bridge (fetch again)."""
        left = [f for f in self.buffer if f["seq"] > snap["seq"]]
        if left and left[0]["seq"] > snap["seq"] + 1:
            return False
        self.book.load(snap["bids"], snap["asks"])
        self.seq = snap["seq"]
        self.buffer = []
        for f in left:
            self.on_delta(f)
        return True


async def _conformance_run(gp: GatewayProcess, min_verified: int, limit_s: float) -> dict[str, int]:
    async with aiohttp.ClientSession() as http:
        async with http.get(gp.rest_url + "/v1/instruments") as r:
            instruments = (await r.json())["instruments"]
        syncs = {
            f"orderbook:{i['symbol']}": ChannelSync(SpecBook(i["tick_size"], i["lot_size"]))
            for i in instruments
        }
        ws = await http.ws_connect(gp.stream_url)
        ts = int(time.time() * 1000)
        sig = hmac.new(gp.secret.encode(), f"{ts}GET/v1/stream".encode(), hashlib.sha256)
        await ws.send_json({"action": "auth", "key": gp.key, "ts": ts, "sig": sig.hexdigest()})
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "authenticated"
        await ws.send_json({"action": "subscribe", "channels": list(syncs), "id": 1})

        async def read() -> None:
            while True:
                msg = await ws.receive()
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                f = json.loads(msg.data)
                if f["type"] == "delta":
                    syncs[f["channel"]].on_delta(f)
                else:
                    assert f["type"] == "subscribed" and f["channels"] == list(syncs)

        reader = asyncio.get_running_loop().create_task(read())
        try:
            await asyncio.sleep(0.1)  # some deltas buffered first, as a real client would
            for channel, sync in syncs.items():
                for _ in range(5):
                    url = f"{gp.rest_url}/v1/orderbook/{channel.split(':', 1)[1]}"
                    async with http.get(url) as r:
                        if sync.on_snapshot(await r.json()):
                            break
                assert sync.seq is not None, channel
            deadline = time.monotonic() + limit_s
            while time.monotonic() < deadline and not reader.done():
                if min(s.verified for s in syncs.values()) >= min_verified:
                    break
                await asyncio.sleep(0.05)
        finally:
            reader.cancel()
        if reader.done() and not reader.cancelled() and reader.exception():
            raise reader.exception()  # type: ignore[misc]
        await ws.close()
        return {ch: s.verified for ch, s in syncs.items()}


async def test_independent_client_syncs_every_book_and_checksum() -> None:
    with GatewayProcess("--rate", "60", "--seed", "11") as gp:
        verified = await _conformance_run(gp, min_verified=40, limit_s=20.0)
    assert len(verified) >= 8
    assert min(verified.values()) >= 40, verified
