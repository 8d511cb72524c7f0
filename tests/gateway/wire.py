"""A small, independent VTS/1 test client for the gateway tests (aiohttp; no tickpipe client).

Signing is written out here from the spec text on purpose, so the tests check the gateway
against VTS/1 and not against its own helpers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp

KEY, SECRET = "demo", "demo-secret"
_last_ts = [0]  # signed_headers: strictly increasing ts, as VTS/1 clients must (replay guard)


def hmac_hex(secret: str, msg: str) -> str:
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def auth_msg(key: str = KEY, secret: str = SECRET, ts_ms: int | None = None) -> dict[str, Any]:
    if ts_ms is None:  # strictly increasing: two connects in one ms are not a replay
        ts = _last_ts[0] = max(int(time.time() * 1000), _last_ts[0] + 1)
    else:
        ts = ts_ms
    return {"action": "auth", "key": key, "ts": ts, "sig": hmac_hex(secret, f"{ts}GET/v1/stream")}


def signed_headers(
    method: str, path_qs: str, body: str = "", key: str = KEY, secret: str = SECRET,
    ts_ms: int | None = None,
) -> dict[str, str]:  # fmt: skip
    if ts_ms is None:
        ts = _last_ts[0] = max(int(time.time() * 1000), _last_ts[0] + 1)
    else:
        ts = ts_ms
    return {
        "X-VT-KEY": key,
        "X-VT-TS": str(ts),
        "X-VT-SIGN": hmac_hex(secret, f"{ts}{method}{path_qs}{body}"),
        "Content-Type": "application/json",
    }


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> dict[str, Any]:
    """Next text frame as JSON (pings are answered by aiohttp's autoping)."""
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    obj: dict[str, Any] = json.loads(msg.data)
    return obj


async def recv_until(
    ws: aiohttp.ClientWebSocketResponse, pred: Any, timeout: float = 5.0, limit: int = 100_000
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Frames until one satisfies ``pred``; returns it and those seen before it (bounded)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    for _ in range(limit):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        f = await recv(ws, left)
        if pred(f):
            return f, seen
        seen.append(f)
    raise AssertionError(f"no matching frame within {timeout} s; last seen: {seen[-3:]}")


async def connect(
    session: aiohttp.ClientSession, url: str, *, auth: bool = True, **kw: Any
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url, **kw)
    if auth:
        await ws.send_json(auth_msg())
        f = await recv(ws)
        assert f["type"] == "authenticated", f
    return ws


async def subscribe(
    ws: aiohttp.ClientWebSocketResponse, channels: list[str], req_id: int = 1
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Subscribe; returns the ``subscribed`` frame and the error frames before it."""
    await ws.send_json({"action": "subscribe", "channels": channels, "id": req_id})
    return await recv_until(ws, lambda f: f.get("type") == "subscribed")


async def admin(
    session: aiohttp.ClientSession, url: str, token: str, method: str, path: str,
    body: Any = None,
) -> tuple[int, Any]:  # fmt: skip
    async with session.request(
        method, url + path, json=body, headers={"X-Admin-Token": token}
    ) as r:
        return r.status, await r.json()


async def rest(
    session: aiohttp.ClientSession, base: str, method: str, path_qs: str, body: Any = None,
    *, raw_body: str | None = None, headers: dict[str, str] | None = None, **sign: Any,
) -> tuple[int, Any, Any]:  # fmt: skip
    """A signed REST call: (status, JSON body, response headers)."""
    text = raw_body if raw_body is not None else ("" if body is None else json.dumps(body))
    hdrs = signed_headers(method, path_qs, text, **sign) if headers is None else headers
    async with session.request(
        method, base + path_qs, data=text.encode() if text else None, headers=hdrs
    ) as r:
        return r.status, await r.json(), r.headers


async def collect(
    ws: aiohttp.ClientWebSocketResponse, seconds: float, *, answer_pings: bool = True
) -> list[tuple[str, Any]]:
    """Everything that arrives for ``seconds`` (bounded by time): ("text", str), ("ping", b""),
    and a last ("close", code) / ("closed", None) / ("error", exc) when the socket ends.
    Use with ``autoping=False`` to see pings; they are answered when ``answer_pings``."""
    out: list[tuple[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            break
        if msg.type == aiohttp.WSMsgType.PING:
            out.append(("ping", msg.data))
            if answer_pings:
                await ws.pong(msg.data)
        elif msg.type == aiohttp.WSMsgType.TEXT:
            out.append(("text", msg.data))
        else:
            out.append((msg.type.name.lower(), msg.data))
            break
    return out


def texts(items: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The JSON frames among ``collect``'s items (malformed ones skipped)."""
    out = []
    for kind, data in items:
        if kind == "text":
            try:
                out.append(json.loads(data))
            except json.JSONDecodeError:
                continue
    return out
