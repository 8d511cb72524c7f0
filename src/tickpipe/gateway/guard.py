"""Defences of the reference gateway against abusive peers (docs/security.md, "Gateway").

- :func:`clip`: attacker-controlled text, shortened before it goes into a reply or a log line.
- :class:`ReplayGuard`: signatures seen within the clock-skew window; a second use is refused.
- :class:`RateWindow`: at most N events per identity in any one-second window.
- :class:`ConnectionGuard`: per-address connection cap and a deadline for the first request
  head on the stream/REST listener (hooks on aiohttp's ``web.Server``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

CLIP_CHARS = 64


def clip(value: object, limit: int = CLIP_CHARS) -> str:
    """``repr``-free text of ``value`` cut to ``limit`` characters with an ellipsis and the
    full length, e.g. ``'aaaa…(4194304 chars)'``: safe to echo back or log."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text)} chars)"


def clipr(value: object, limit: int = CLIP_CHARS) -> str:
    """Like :func:`clip`, quoted like ``repr`` for strings (for messages naming a value)."""
    if isinstance(value, str):
        return repr(clip(value, limit))
    return clip(repr(value), limit)


class ReplayGuard:
    """Signatures accepted within the last ``2 x window_ms`` (wall clock).

    A signed request or auth frame is accepted only when its timestamp is within
    ``window_ms`` of the gateway clock, so a signature can be valid for at most
    ``2 x window_ms`` after it is first seen; remembering it that long is enough to refuse
    every replay. ``max_entries`` caps the memory whatever the rate: when full (after
    forgetting expired entries) :meth:`check_and_add` answers ``"full"`` and the caller refuses
    the request (fail closed; the caller asks to retry later).
    """

    def __init__(self, window_ms: int, max_entries: int) -> None:
        self.window_ms = window_ms
        self.max_entries = max_entries
        self._seen: dict[str, float] = {}
        self._order: deque[tuple[float, str]] = deque()  # (wall ms when seen, signature)

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now_ms: float) -> None:
        keep = 2 * self.window_ms
        order, seen = self._order, self._seen
        while order and now_ms - order[0][0] > keep:
            _, sig = order.popleft()
            seen.pop(sig, None)

    def check_and_add(self, signature: str, now_ms: float | None = None) -> str | None:
        """None (and remembered) for a first use; ``"replayed"`` or ``"full"`` otherwise."""
        now = time.time() * 1000 if now_ms is None else now_ms
        self._expire(now)
        if signature in self._seen:
            return "replayed"
        if len(self._seen) >= self.max_entries:
            return "full"
        self._seen[signature] = now
        self._order.append((now, signature))
        return None


class RateWindow:
    """At most ``limit`` events per identity in any one-second window (sliding)."""

    def __init__(self, max_identities: int = 10_000) -> None:
        self._seen: dict[str, deque[float]] = {}
        self._max_identities = max_identities

    def retry_after(self, identity: str, limit: int, now: float | None = None) -> float:
        """0 when admitted (and counted), else seconds until one would be admitted."""
        if limit <= 0:
            return 0.0
        t = time.monotonic() if now is None else now
        q = self._seen.setdefault(identity, deque())
        while q and t - q[0] >= 1.0:
            q.popleft()
        if len(q) >= limit:
            return max(0.001, 1.0 - (t - q[0]))
        q.append(t)
        if len(self._seen) > self._max_identities:  # bound memory: forget idle identities
            self._seen = {k: v for k, v in self._seen.items() if v}
        return 0.0


def _refusal(status: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": "too_many_connections", "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class ConnectionGuard:
    """Per-address connection cap and first-request-head deadline for one aiohttp listener.

    :meth:`install` wraps the ``web.Server``'s ``connection_made``/``connection_lost`` hooks
    (aiohttp calls them for every accepted socket). A socket over ``max_per_address`` gets a
    one-line ``503`` and is closed at once; a socket whose first request head is not complete
    within ``header_timeout_s`` is aborted (the app's middleware calls :meth:`request_started`).
    Later requests on a kept-alive connection fall under aiohttp's ``keepalive_timeout``.
    """

    def __init__(
        self,
        max_per_address: int,
        header_timeout_s: float,
        on_event: Callable[..., None] | None = None,
    ) -> None:
        self.max_per_address = max_per_address
        self.header_timeout_s = header_timeout_s
        self.per_address: dict[str, int] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._peers: dict[int, str] = {}
        self._on_event = on_event or (lambda *a, **k: None)
        self.refused = 0
        self.timed_out = 0

    def install(self, server: Any) -> None:
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._on_made(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            lost(handler, exc)
            self._on_lost(handler)

        server.connection_made = connection_made
        server.connection_lost = connection_lost

    def _on_made(self, handler: Any, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        addr = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        n = self.per_address.get(addr, 0)
        if n >= self.max_per_address:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                self._on_event("connection_refused", peer=addr, open=n, refused=self.refused)
            transport.write(
                _refusal(
                    "503 Service Unavailable",
                    f"more than {self.max_per_address} connections from this address",
                )
            )
            transport.close()
            return
        self.per_address[addr] = n + 1
        hid = id(handler)
        self._peers[hid] = addr
        loop = asyncio.get_running_loop()
        self._timers[hid] = loop.call_later(self.header_timeout_s, self._expire, handler, transport)

    def _expire(self, handler: Any, transport: asyncio.Transport) -> None:
        self._timers.pop(id(handler), None)
        self.timed_out += 1
        if self.timed_out == 1 or self.timed_out % 1000 == 0:
            self._on_event(
                "header_timeout",
                peer=self._peers.get(id(handler), "?"),
                timeout_s=self.header_timeout_s,
                timed_out=self.timed_out,
            )
        transport.abort()

    def _on_lost(self, handler: Any) -> None:
        hid = id(handler)
        timer = self._timers.pop(hid, None)
        if timer is not None:
            timer.cancel()
        addr = self._peers.pop(hid, None)
        if addr is None:
            return
        n = self.per_address.get(addr, 1) - 1
        if n > 0:
            self.per_address[addr] = n
        else:
            self.per_address.pop(addr, None)

    def request_started(self, handler: Any) -> None:
        """A request head arrived on ``handler``'s connection: its deadline is met."""
        timer = self._timers.pop(id(handler), None)
        if timer is not None:
            timer.cancel()
