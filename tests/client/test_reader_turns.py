"""The reader bounds its work per event-loop turn (issue 11): under a burst bigger than one
slice, the rest of a socket read waits in a backlog with reading paused, other callbacks run in
between, and every frame still arrives exactly once and in order. Real sockets: an aiohttp
WebSocket server on loopback writes one burst; picows reads it into the real StreamListener."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from picows import ws_connect

from tickpipe.client.reader import ConnectionSink, StreamListener
from tickpipe.errors import FrameError

N = 30_000  # ~1 MB of small frames: several reads, each longer than one slice


class Sink(ConnectionSink):
    def __init__(self, cost_s: float) -> None:
        self.seen: list[int] = []
        self.cost_s = cost_s
        self.done = asyncio.Event()
        self.ticks_during: list[int] = []  # frames seen when each loop tick ran

    def on_text(self, data: bytes | memoryview) -> None:
        self.seen.append(int(bytes(data)))
        end = time.perf_counter() + self.cost_s  # a CPU-bound consumer, like a book update
        while time.perf_counter() < end:
            pass
        if len(self.seen) == N:
            self.done.set()

    def on_ping(self) -> None: ...
    def on_close_frame(self, code: int, reason: str) -> None: ...
    def on_bad_frame(self, exc: FrameError) -> None:
        raise AssertionError(exc)

    def on_disconnected(self) -> None: ...


async def _serve_burst() -> tuple[web.AppRunner, str]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for i in range(N):
            await ws.send_str(str(i))  # buffered by the transport: one burst
        await ws.receive()  # hold the socket open until the client leaves
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"ws://127.0.0.1:{port}/ws"


async def _read_burst(read_slice_s: float) -> tuple[Sink, StreamListener]:
    runner, url = await _serve_burst()
    sink = Sink(cost_s=20e-6)
    listener = StreamListener(sink, 1 << 20, read_slice_s=read_slice_s)
    transport, _ = await ws_connect(lambda: listener, url)

    async def tick() -> None:  # another task: a REST reply, a timer, a user callback
        while not sink.done.is_set():
            sink.ticks_during.append(len(sink.seen))
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    try:
        async with asyncio.timeout(60):
            await sink.done.wait()
    finally:
        ticker.cancel()
        transport.disconnect()
        await runner.cleanup()
    return sink, listener


async def test_a_burst_is_processed_in_slices_with_other_tasks_in_between() -> None:
    sink, listener = await _read_burst(read_slice_s=0.002)
    assert sink.seen == list(range(N))  # every frame, once, in order
    assert listener.deferred > 0 and listener.slices > 0
    # the other task ran many times while the burst was being read, not only before or after
    during = [n for n in sink.ticks_during if 0 < n < N]
    assert len(set(during)) >= 10, (len(during), listener.slices)
    assert listener._backlog is None and not listener._paused  # reading resumed at the end


async def test_without_a_slice_a_whole_read_runs_in_one_turn() -> None:
    """The contrast (what picows does alone): no deferral, the whole read in one callback."""
    sink, listener = await _read_burst(read_slice_s=1e9)
    assert sink.seen == list(range(N))
    assert listener.deferred == 0 and listener.slices == 0
