"""The fastest stack here, shared by rows 1, 2 and 4: picows on uvloop, one event loop.

picows parses WebSocket frames in Cython and hands each one to ``on_ws_frame`` straight from
the read buffer (no per-frame task, no queue); it answers pings itself. Rows plug a
:class:`Handler` in once setup is done: ``on_data(frame)`` runs for every data frame of the
window and calls :meth:`Handler.finish` after the last one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from benchmarks.rows.common import KEY, SECRET, RowArgs, Run, fail
from tickpipe.protocol import frames as vts

_control_decoder = msgspec.json.Decoder()


class Handler:
    """Base of a row's per-frame work; ``expected`` frames end the window."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.expected = 0
        self.n = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_data(self, frame: WSFrame) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        self.run.end()
        self.run.received = self.n
        if not self.done.done():
            self.done.set_result(None)


class _Listener(WSListener):
    def __init__(self) -> None:
        self.control: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self.on_data: Callable[[WSFrame], None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()
            return
        on_data = self.on_data
        if on_data is not None:
            on_data(frame)
        else:
            self.control.put_nowait(_control_decoder.decode(frame.get_payload_as_bytes()))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def _expect(listener: _Listener, kind: str) -> dict[str, object]:
    while True:
        msg = await asyncio.wait_for(listener.control.get(), 10)
        if msg.get("type") == kind:
            return msg
        if msg.get("type") == "error":
            raise RuntimeError(f"sender said {msg}")


async def session(row: str, args: RowArgs, make: Callable[[Run], Handler]) -> None:
    """Connect, auth, subscribe, run the window with ``make(run)``'s handler, print the result."""
    run = Run.load(row, args)
    transport, listener = await ws_connect(lambda: _Listener(), args.stream_url)
    assert isinstance(listener, _Listener)
    transport.send(WSMsgType.TEXT, vts.encode(vts.auth_frame(KEY, SECRET, time.time_ns() // 10**6)))
    await _expect(listener, "authenticated")
    transport.send(WSMsgType.TEXT, vts.encode(vts.Subscribe(run.snap.channels, id=1)))
    await _expect(listener, "subscribed")
    handler = make(run)
    run.setup_done()
    listener.on_data = handler.on_data
    info = run.begin()
    handler.expected = int(info["frames"])
    try:
        await asyncio.wait_for(handler.done, args.timeout_s)
    except TimeoutError:
        run.end()
        run.received = handler.n
        run.extra["timed_out"] = True
    listener.on_data = None
    transport.send_close()
    transport.disconnect()
    run.emit()


def main(row: str, args: RowArgs, make: Callable[[Run], Handler]) -> None:
    try:
        uvloop.run(session(row, args, make))
    except (OSError, RuntimeError) as exc:
        fail(row, f"{type(exc).__name__}: {exc}")
