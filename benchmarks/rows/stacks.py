"""The WebSocket stack choice: receive + msgspec decode over each stack and event loop.

Row 2 is picows on uvloop; these variants do the same work (receive every frame, decode it with
msgspec into tickpipe's typed structs) over the alternatives, so the table shows what the stack
alone costs:

- ``picows-asyncio``: picows on the standard asyncio loop.
- ``websockets-uvloop`` / ``websockets-asyncio``: ``websockets`` (asyncio client, defaults
  except ``max_size``), ``await ws.recv()`` per frame.
- ``aiohttp-uvloop``: ``aiohttp.ClientSession.ws_connect``, ``await ws.receive()`` per frame.

Flood mode only (the suite runs them once each); rate mode works too.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from benchmarks.rows import picows_base
from benchmarks.rows.common import KEY, SECRET, Run, fail, parse_args
from benchmarks.rows.raw import MsgspecDecode
from tickpipe.protocol import frames as vts

VARIANTS = ("picows-asyncio", "websockets-uvloop", "websockets-asyncio", "aiohttp-uvloop")


def _auth() -> bytes:
    return vts.encode(vts.auth_frame(KEY, SECRET, time.time_ns() // 10**6))


async def _consume(run: Run, recv: Any, send: Any) -> None:
    """Shared by the websockets and aiohttp variants: ``recv()`` returns one text frame."""
    decode = msgspec.json.Decoder(vts.ServerFrame).decode
    await send(_auth().decode())
    while decode(await recv()).__class__ is not vts.Authenticated:
        pass
    await send(vts.encode(vts.Subscribe(run.snap.channels, id=1)).decode())
    while decode(await recv()).__class__ is not vts.Subscribed:
        pass
    run.setup_done()
    expected = int(run.begin()["frames"])
    rate_mode = run.rate_mode
    deadline = time.perf_counter() + run.args.timeout_s
    n = 0
    last: object = None
    while n < expected:
        try:
            data = await asyncio.wait_for(recv(), max(0.1, deadline - time.perf_counter()))
        except TimeoutError:
            run.extra["timed_out"] = True
            break
        f = decode(data)
        last = f
        if rate_mode and type(f) is vts.Delta:
            run.lat.append(time.time_ns() - f.ts)
        n += 1
    del last
    run.end()
    run.received = n


async def _websockets(run: Run) -> None:
    import websockets

    async with websockets.connect(run.args.stream_url, max_size=2**22) as ws:
        await _consume(run, ws.recv, ws.send)


async def _aiohttp(run: Run) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(run.args.stream_url, max_msg_size=2**22) as ws,
    ):

        async def recv() -> str:
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"aiohttp: unexpected {msg.type}")
            return str(msg.data)

        await _consume(run, recv, ws.send_str)


def main() -> None:
    args = parse_args(variants=VARIANTS)
    stack, _, loop = args.variant.partition("-")
    if stack == "picows":  # row 2's code on the stock loop
        try:
            asyncio.run(picows_base.session("stacks", args, MsgspecDecode))
        except (OSError, RuntimeError) as exc:
            fail("stacks", f"{type(exc).__name__}: {exc}")
        return
    run = Run.load("stacks", args)
    coro = _websockets(run) if stack == "websockets" else _aiohttp(run)
    try:
        if loop == "uvloop":
            import uvloop

            uvloop.run(coro)
        else:
            asyncio.run(coro)
    except (OSError, RuntimeError) as exc:
        fail("stacks", f"{type(exc).__name__}: {exc}")
    run.emit()


if __name__ == "__main__":
    main()
