"""A small hostile gateway for the client's tests (issue 13): aiohttp on 127.0.0.1, free port.

It speaks just enough VTS/1 for the real :class:`tickpipe.Client` to start and subscribe:
``GET /v1/instruments`` (one instrument, ``X``), ``GET /v1/orderbook/{symbol}`` (a small valid
snapshot unless the test passes its own ``snapshot`` handler), and ``/v1/stream``: answers
``auth`` with ``authenticated``, ``subscribe`` with ``subscribed``, ``cancel_on_disconnect``
with its ack, pings every ``heartbeat_ms``, and after each subscribe runs the test's
``script(peer, channels)``: the hostile frames. :meth:`Peer.raw` writes a hand-made frame
(fragments, say), which aiohttp's API cannot send.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

INSTRUMENT = {"symbol": "X", "asset_class": "crypto", "tick_size": "0.01", "lot_size": "0.001"}
OP_CONT, OP_TEXT = 0x0, 0x1

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def snapshot_body(seq: int = 10, bids: int = 1, asks: int = 1) -> dict[str, Any]:
    """A valid snapshot of ``X`` with that many levels a side."""
    return {
        "symbol": "X",
        "seq": seq,
        "ts": time.time_ns(),
        "bids": [[f"{1000 - i * 0.01:.2f}", "1.000"] for i in range(bids)],
        "asks": [[f"{1001 + i * 0.01:.2f}", "1.000"] for i in range(asks)],
    }


def ticker(seq: int, channel: str = "ticker:X") -> dict[str, Any]:
    return {
        "type": "ticker",
        "channel": channel,
        "seq": seq,
        "ts": time.time_ns(),
        "bid": "100.00",
        "bid_size": "1.000",
        "ask": "100.01",
        "ask_size": "1.000",
        "last": "100.00",
        "volume": "5.000",
    }


class Peer:
    """One stream connection, as the script sees it."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request

    async def send(self, obj: dict[str, Any] | str) -> None:
        await self.ws.send_str(obj if isinstance(obj, str) else json.dumps(obj))

    def raw(self, opcode: int, payload: bytes, fin: bool) -> None:
        """One unmasked server frame, written as is (FIN bit as asked)."""
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([n])
        elif n < 1 << 16:
            head += bytes([126]) + struct.pack("!H", n)
        else:
            head += bytes([127]) + struct.pack("!Q", n)
        transport = self.request.transport
        assert transport is not None
        transport.write(head + payload)

    async def drained(self, high: int = 1 << 20) -> None:
        """Wait (at most ~10 s) until at most ``high`` bytes wait in the send buffer."""
        t = self.request.transport
        for _ in range(1000):
            if t is None or t.is_closing() or t.get_write_buffer_size() <= high:
                return
            await asyncio.sleep(0.01)

    @property
    def closed(self) -> bool:
        t = self.request.transport
        return self.ws.closed or t is None or t.is_closing()


Script = Callable[[Peer, list[str]], Awaitable[None]]


class HostileGateway:
    def __init__(
        self,
        *,
        snapshot: Handler | None = None,
        script: Script | None = None,
        heartbeat_ms: int = 500,
    ) -> None:
        self._snapshot = snapshot
        self._script = script
        self.heartbeat_ms = heartbeat_ms
        self.snapshot_requests = 0
        self.connections = 0
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> HostileGateway:
        app = web.Application()
        app.router.add_get("/v1/instruments", self._instruments)
        app.router.add_get("/v1/orderbook/{symbol}", self._snapshot_route)
        app.router.add_get("/v1/stream", self._stream)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
        if self._runner is not None:
            await self._runner.cleanup()

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _instruments(self, _: web.Request) -> web.Response:
        return web.json_response({"instruments": [INSTRUMENT]})

    async def _snapshot_route(self, request: web.Request) -> web.StreamResponse:
        self.snapshot_requests += 1
        if self._snapshot is not None:
            return await self._snapshot(request)
        return web.json_response(snapshot_body())

    async def _pinger(self, ws: web.WebSocketResponse) -> None:
        with contextlib.suppress(Exception):
            while not ws.closed:
                await ws.ping()
                await asyncio.sleep(self.heartbeat_ms / 1000)

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        self.connections += 1
        peer = Peer(ws, request)
        mine: list[asyncio.Task[None]] = []
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                action = frame.get("action")
                if action == "auth":
                    await ws.send_json(
                        {
                            "type": "authenticated",
                            "session": f"s{self.connections}",
                            "heartbeat_ms": self.heartbeat_ms,
                            "max_channels": 100,
                        }
                    )
                    mine.append(self._spawn(self._pinger(ws)))
                elif action == "cancel_on_disconnect":
                    await ws.send_json({"type": "cancel_on_disconnect", "enabled": True})
                elif action == "subscribe":
                    channels = list(frame["channels"])
                    await ws.send_json(
                        {"type": "subscribed", "channels": channels, "id": frame.get("id")}
                    )
                    if self._script is not None:
                        mine.append(self._spawn(self._script(peer, channels)))
        finally:
            for t in mine:
                t.cancel()
        return ws


async def until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait (polling every 20 ms, at most ``timeout`` s) until ``cond()``; AssertionError naming
    ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.02)
