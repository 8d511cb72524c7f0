"""One WebSocket connection on ``/v1/stream``: auth, subscriptions, limits, pings, outbound queue.

Reading and writing are separate tasks: the reader handles client frames; the writer drains a
bounded queue of already-encoded frames (:meth:`Session.enqueue` never blocks the market). The
pinger sends a WebSocket ping every ``heartbeat_ms`` (aiohttp's autoping is off so the gateway
sees each pong) and closes a connection that stopped answering (close 4008).

Section 1 limits: a frame over ``max_frame_bytes`` or beyond ``max_frames_per_s`` in a one-second
window gets an ``error`` frame (``frame_too_large`` / ``too_many_frames``) and is not processed;
the second breach on the connection closes it with 1008. Excess frames inside the same window
are dropped silently, except that twice the rate in one window is a second breach. Before auth,
a first frame over ``max_frame_bytes`` gets ``frame_too_large`` and close 1009, unread.

Abuse bounds (docs/security.md): text a client sent is clipped before it is echoed or logged;
JSON nested too deeply is a ``bad_json`` error, never a crash; a ``subscribe`` or
``unsubscribe`` naming more than ``max_channels`` channels is refused whole with one ``error``
(then an empty ``subscribed``/``unsubscribed``); per-channel refusals of one request stop at
:data:`REFUSAL_BUDGET_BYTES` or the request's own size, whichever is larger, and the rest are
summed up in one last ``error`` without ``channel``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct
import time
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import WSMsgType, web

from tickpipe.errors import FrameError
from tickpipe.gateway.guard import clip, clipr
from tickpipe.gateway.logs import log_event
from tickpipe.protocol import frames

if TYPE_CHECKING:
    from tickpipe.gateway.server import Gateway

CLOSE_POLICY = 1008
CLOSE_AUTH_FAILED = 4001
CLOSE_NO_AUTH = 4003
CLOSE_PONG_TIMEOUT = 4008
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
REFUSAL_BUDGET_BYTES = 4096  # per request: refusal frames up to max(this, request size)
CHANNEL_ECHO_CHARS = 128  # a refused channel name is echoed in `channel` up to this length

_json = msgspec.json.Decoder()
_BATCH_BYTES = 256 * 1024  # frames joined into one write
_WRITE_HIGH = 256 * 1024  # transport buffer above which the writer waits


def text_frame_header(n: int) -> bytes:
    """RFC 6455 header of an unmasked, final text frame of ``n`` payload bytes (server side)."""
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n)
    return struct.pack("!BBQ", 0x81, 127, n)


def decode_frame(text: str) -> frames.ClientFrame:
    """:func:`frames.decode_client_frame`, with too-deep JSON as a FrameError."""
    try:
        return frames.decode_client_frame(text)
    except RecursionError:
        raise FrameError("JSON nested too deeply") from None


def error_frame(code: str, message: str, **extra: object) -> bytes:
    body: dict[str, object] = {"type": "error", "code": code, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return frames.encode(body)


class Session:
    """State of one stream connection. Created by the gateway's ``/v1/stream`` handler."""

    def __init__(self, gw: Gateway, request: web.Request) -> None:
        self.gw = gw
        self.config = gw.config
        self.request = request
        self.id = secrets.token_hex(6)
        self.peer = request.remote or "?"
        self.ws = web.WebSocketResponse(
            autoping=False,
            autoclose=True,
            max_msg_size=gw.config.hard_frame_bytes,
            compress=False,  # frames are written pre-framed, uncompressed (RFC 7692 allows it)
        )
        self.key: str | None = None
        self.channels: set[str] = set()
        self.queue: deque[bytes] = deque()
        self.cancel_on_disconnect = False
        self.closing = False
        self.end_reason = "client closed"
        self.stalled_until = 0.0  # monotonic; > now = stalled
        self.pings_stopped_until = 0.0
        self.last_pong = time.monotonic()
        self.frames_sent = 0
        self.dropped_while_stalled = 0
        self._wake = asyncio.Event()
        self.room = asyncio.Event()  # clear while the queue is over half full
        self.room.set()
        self.room_lost_at = 0.0
        self._violations = 0
        self._window_start = 0.0
        self._window_count = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._close_task: asyncio.Task[None] | None = None

    # -- outbound ---------------------------------------------------------------------------
    def stalled(self) -> bool:
        return self.stalled_until > time.monotonic()

    def enqueue(self, data: bytes) -> None:
        """Queue one encoded frame; a full queue closes the connection (slow consumer)."""
        if self.closing:
            return
        if self.stalled_until and self.stalled():
            self.dropped_while_stalled += 1
            return
        q = self.queue
        if len(q) >= self.config.max_queue_frames:
            self.kill(CLOSE_POLICY, "slow consumer: outbound queue full", reason="slow_consumer")
            return
        q.append(data)
        if len(q) > self.config.max_queue_frames // 2 and self.room.is_set():
            self.room.clear()
            self.room_lost_at = time.monotonic()
        self._wake.set()

    async def _writer(self) -> None:
        """Drain the queue in batches: many frames framed by hand, one ``transport.write``
        (one syscall instead of one per frame), then wait while the transport holds more
        than ``_WRITE_HIGH`` unsent bytes (the kernel buffer is full: TCP back-pressure)."""
        q = self.queue
        low = self.config.max_queue_frames // 4
        transport = self.request.transport
        while not self.closing:
            await self._wake.wait()
            self._wake.clear()
            while q and not self.closing:
                if self.stalled_until and self.stalled():
                    break
                if transport is None or transport.is_closing():
                    self.end_reason = "send failed"
                    return
                parts: list[bytes] = []
                size = 0
                while q and size < _BATCH_BYTES:
                    data = q.popleft()
                    parts.append(text_frame_header(len(data)))
                    parts.append(data)
                    size += len(data)
                transport.write(b"".join(parts))
                self.frames_sent += len(parts) // 2
                if len(q) < low:
                    self.room.set()
                while transport.get_write_buffer_size() > _WRITE_HIGH:
                    if transport.is_closing() or self.closing:
                        return
                    await asyncio.sleep(0.002)
            self.room.set()

    async def _pinger(self) -> None:
        interval = self.config.heartbeat_ms / 1000
        timeout = interval * self.config.pong_timeout_factor
        paused = False
        while not self.closing:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if (
                self.stalled()
                or self.pings_stopped_until > now
                or self.gw.faults.settings.stop_pings
            ):
                paused = True
                continue
            if paused:  # pings resume: the client gets a fresh allowance
                paused = False
                self.last_pong = now
            if now - self.last_pong > timeout:
                self.gw.on_pong_timeout(self, now - self.last_pong)
                self.kill(CLOSE_PONG_TIMEOUT, "no pong", reason="pong_timeout")
                return
            try:
                await self.ws.ping(b"")
            except (ConnectionError, RuntimeError):
                return

    def kill(
        self,
        code: int,
        message: str,
        *,
        reason: str,
        close_frame: bool = True,
        last_frame: bytes | None = None,
        flush: bool = False,
    ) -> None:
        """End the connection (idempotent): with a close frame ``code``, or abruptly.

        With ``flush`` the frames already queued go out first (answers the client is owed),
        then ``last_frame``, then the close frame, all within one second; else the queue is
        dropped (a slow consumer would never read it)."""
        if self.closing:
            return
        self.closing = True
        self.end_reason = reason
        if not flush or not close_frame:
            self.queue.clear()
        self._wake.set()
        self.room.set()
        log_event(
            "disconnect",
            level=logging.WARNING,
            session=self.id,
            code=code if close_frame else None,
            reason=reason,
            detail=message,
            close_frame=close_frame,
        )
        self._close_task = asyncio.get_running_loop().create_task(
            self._close(code, message, close_frame, last_frame)
        )

    async def _close(
        self, code: int, message: str, close_frame: bool, last_frame: bytes | None
    ) -> None:
        transport = self.request.transport
        if close_frame:
            if last_frame is not None:
                self.queue.append(last_frame)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._flush(), 1.0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code=code, message=message.encode()), 1.0)
        if transport is not None:
            transport.abort()

    async def _flush(self) -> None:
        q = self.queue
        while q:
            await self.ws.send_frame(q.popleft(), WSMsgType.TEXT)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)

    async def send_now(self, data: bytes) -> None:
        """Send a frame outside the queue (before auth, or an error right before a close)."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_frame(data, WSMsgType.TEXT)

    # -- the connection ---------------------------------------------------------------------
    async def run(self) -> web.WebSocketResponse:
        ws = self.ws
        await ws.prepare(self.request)
        try:
            if await self._authenticate():
                self._spawn(self._writer())
                self._spawn(self._pinger())
                await self._read_loop()
        finally:
            self.closing = True
            self._wake.set()
            self.gw.on_session_end(self)
            for t in self._tasks:
                t.cancel()
            tasks = [*self._tasks, *([self._close_task] if self._close_task else [])]
            await asyncio.gather(*tasks, return_exceptions=True)
        return ws

    async def _next_text(self, deadline: float) -> str | None:
        """The next text frame before ``deadline`` (monotonic), answering pings; None if none."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = await asyncio.wait_for(self.ws.receive(), left)
            except TimeoutError:
                return None
            if msg.type == WSMsgType.TEXT:
                return str(msg.data)
            if msg.type == WSMsgType.PING:
                await self.ws.pong(msg.data)
                continue
            if msg.type == WSMsgType.PONG:
                self.last_pong = time.monotonic()
                continue
            if msg.type == WSMsgType.BINARY:
                return ""
            return None  # closed / error

    async def _authenticate(self) -> bool:
        cfg = self.config
        text = await self._next_text(time.monotonic() + cfg.auth_timeout_s)
        if text is None:
            if not self.ws.closed:
                log_event("auth_timeout", session=self.id, peer=self.peer)
                self.end_reason = "auth_timeout"
                await self.ws.close(code=CLOSE_NO_AUTH, message=b"no auth within 5 s")
            return False
        size = len(text)
        if size * 4 > cfg.max_frame_bytes:
            size = len(text.encode(errors="replace"))
        if size > cfg.max_frame_bytes:
            log_event("auth_frame_too_large", level=logging.WARNING, session=self.id, bytes=size)
            await self.send_now(
                error_frame(
                    "frame_too_large",
                    f"frame of {size} bytes is over the {cfg.max_frame_bytes}-byte limit",
                )
            )
            self.end_reason = "frame_too_large"
            await self.ws.close(code=CLOSE_TOO_BIG, message=b"frame too large")
            return False
        try:
            frame = decode_frame(text)
        except FrameError as exc:
            frame = None
            why = f"first frame must be a valid auth frame: {clip(str(exc), 200)}"
        else:
            why = f"first frame must be auth, got {type(frame).__name__.lower()}"
        if not isinstance(frame, frames.Auth):
            await self.send_now(error_frame("auth_required", why))
            self.end_reason = "auth_required"
            await self.ws.close(code=CLOSE_NO_AUTH, message=b"auth required")
            return False
        problem = self.gw.check_stream_auth(frame)
        if problem is not None:
            log_event(
                "auth_failed",
                level=logging.WARNING,
                session=self.id,
                peer=self.peer,
                key=clip(frame.key),
                why=problem,
            )
            await self.send_now(error_frame("auth_failed", problem))
            self.end_reason = "auth_failed"
            await self.ws.close(code=CLOSE_AUTH_FAILED, message=b"auth failed")
            return False
        self.key = frame.key
        self.last_pong = time.monotonic()
        self.queue.append(
            frames.encode(
                {
                    "type": "authenticated",
                    "session": self.id,
                    "heartbeat_ms": cfg.heartbeat_ms,
                    "max_channels": cfg.max_channels,
                }
            )
        )
        self._wake.set()
        self.gw.on_session_authenticated(self)
        return True

    async def _read_loop(self) -> None:
        async for msg in self.ws:
            if self.closing:
                break
            if msg.type == WSMsgType.TEXT:
                self._on_text(str(msg.data))
            elif msg.type == WSMsgType.PING:
                if not self.stalled():  # a stalled connection sends nothing at all
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await self.ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                self.last_pong = time.monotonic()
            elif msg.type == WSMsgType.BINARY:
                if self._admit(len(msg.data)):
                    self.enqueue(
                        error_frame("bad_frame", "binary frames are not accepted; send JSON text")
                    )
            else:
                break

    # -- limits -----------------------------------------------------------------------------
    def _breach(self, code: str, message: str) -> None:
        self._violations += 1
        if self._violations >= 2:
            last = error_frame(code, message + "; repeated: closing (1008)")
            self.kill(
                CLOSE_POLICY,
                f"limit broken again: {code}",
                reason=code,
                last_frame=last,
                flush=True,
            )
        else:
            self.enqueue(error_frame(code, message))
        log_event("limit", level=logging.WARNING, session=self.id, code=code, detail=message)

    def _admit(self, size_hint: int) -> bool:
        """Rate and size checks for one inbound frame; False = do not process it."""
        cfg = self.config
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        n = self._window_count
        if n > cfg.max_frames_per_s:
            if n == cfg.max_frames_per_s + 1 or n == 2 * cfg.max_frames_per_s + 1:
                self._breach(
                    "too_many_frames",
                    f"more than {cfg.max_frames_per_s} frames in one second; frame dropped",
                )
            return False
        if size_hint > cfg.max_frame_bytes:
            self._breach(
                "frame_too_large",
                f"frame of {size_hint} bytes is over the {cfg.max_frame_bytes}-byte limit",
            )
            return False
        return True

    # -- client frames ----------------------------------------------------------------------
    def _on_text(self, text: str) -> None:
        size = len(text)
        if size * 4 > self.config.max_frame_bytes:
            size = len(text.encode())
        if not self._admit(size):
            return
        try:
            frame = decode_frame(text)
        except FrameError as exc:
            self.enqueue(self._explain_bad_frame(text, exc))
            return
        if isinstance(frame, frames.Subscribe):
            self._subscribe(frame, size)
        elif isinstance(frame, frames.Unsubscribe):
            self._unsubscribe(frame, size)
        elif isinstance(frame, frames.CancelOnDisconnect):
            self.cancel_on_disconnect = frame.enabled
            log_event("cancel_on_disconnect", session=self.id, key=self.key, enabled=frame.enabled)
            self.enqueue(frames.encode({"type": "cancel_on_disconnect", "enabled": frame.enabled}))
        else:
            self.enqueue(
                error_frame("already_authenticated", "this connection is already authenticated")
            )

    @staticmethod
    def _explain_bad_frame(text: str, exc: FrameError) -> bytes:
        try:
            obj = _json.decode(text)
        except (msgspec.DecodeError, RecursionError):
            return error_frame("bad_json", f"frame is not valid JSON: {clip(exc.reason, 200)}")
        if not isinstance(obj, dict):
            return error_frame("bad_frame", "frame must be a JSON object")
        req_id = obj.get("id") if isinstance(obj.get("id"), int) else None
        action = obj.get("action")
        known = ("auth", "subscribe", "unsubscribe", "cancel_on_disconnect")
        if action not in known:
            return error_frame(
                "unknown_action",
                f"unknown action {clipr(action)}; known: {', '.join(known)}",
                id=req_id,
            )
        where = f" (field {exc.field!r})" if exc.field else ""
        return error_frame(
            "bad_frame", f"bad {action} frame{where}: {clip(exc.reason, 200)}", id=req_id
        )

    def _over_cap(self, kind: str, names: list[str], req_id: int | None) -> bool:
        """Refuse a whole request naming more than ``max_channels`` channels: one error, then
        an empty answer frame (the request's ``id`` resolves; the answer is a few hundred
        bytes whatever the request's size)."""
        cap = self.config.max_channels
        if len(names) <= cap:
            return False
        self.enqueue(
            error_frame(
                "too_many_channels",
                f"{kind} names {len(names)} channels; at most {cap} a request (nothing done)",
                id=req_id,
            )
        )
        answer = "subscribed" if kind == "subscribe" else "unsubscribed"
        self.enqueue(frames.encode({"type": answer, "channels": [], "id": req_id}))
        log_event("limit", level=logging.WARNING, session=self.id, code=f"{kind}_too_many",
                  channels=len(names))  # fmt: skip
        return True

    def _send_refusals(
        self, refusals: list[tuple[str, str, str]], req_id: int | None, request_bytes: int
    ) -> None:
        """One ``error`` per refused channel (VTS/1) while within the request's refusal budget;
        the rest in one summary ``error`` without ``channel``."""
        budget = max(REFUSAL_BUDGET_BYTES, request_bytes)
        used = 0
        rest: list[tuple[str, str]] = []
        for ch, code, message in refusals:
            if rest:
                rest.append((ch, code))
                continue
            frame = error_frame(code, message, channel=clip(ch, CHANNEL_ECHO_CHARS), id=req_id)
            if used + len(frame) > budget:
                rest.append((ch, code))
                continue
            used += len(frame)
            self.enqueue(frame)
        if rest:
            codes = ", ".join(sorted({code for _, code in rest}))
            names = clip(", ".join(ch for ch, _ in rest[:20]), 200)
            self.enqueue(
                error_frame(
                    rest[0][1],
                    f"{len(rest)} more channel(s) refused ({codes}): {names}",
                    id=req_id,
                )
            )

    def _subscribe(self, frame: frames.Subscribe, request_bytes: int = 0) -> None:
        hub = self.gw.hub
        names = list(dict.fromkeys(frame.channels))
        if self._over_cap("subscribe", names, frame.id):
            return
        accepted: list[str] = []
        refusals: list[tuple[str, str, str]] = []
        for ch in names:
            if ch not in hub.channels:
                refusals.append(
                    (
                        ch,
                        "unknown_channel",
                        f"no channel {clipr(ch)}: channels are KIND:SYMBOL with KIND orderbook, "
                        "ticker or trades and a symbol of GET /v1/instruments",
                    )
                )
            elif ch in self.channels:
                accepted.append(ch)
            elif len(self.channels) >= self.config.max_channels:
                refusals.append(
                    (
                        ch,
                        "too_many_channels",
                        f"at most {self.config.max_channels} channels a connection",
                    )
                )
            else:
                self.channels.add(ch)
                accepted.append(ch)
        self._send_refusals(refusals, frame.id, request_bytes)
        self.enqueue(frames.encode({"type": "subscribed", "channels": accepted, "id": frame.id}))
        for ch in accepted:
            hub.subscribe(ch, self)

    def _unsubscribe(self, frame: frames.Unsubscribe, request_bytes: int = 0) -> None:
        names = list(dict.fromkeys(frame.channels))
        if self._over_cap("unsubscribe", names, frame.id):
            return
        removed: list[str] = []
        refusals: list[tuple[str, str, str]] = []
        for ch in names:
            if ch in self.channels:
                self.channels.discard(ch)
                self.gw.hub.unsubscribe(ch, self)
                removed.append(ch)
            else:
                refusals.append(
                    (
                        ch,
                        "not_subscribed",
                        f"channel {clipr(ch)} is not subscribed on this connection",
                    )
                )
        self._send_refusals(refusals, frame.id, request_bytes)
        self.enqueue(frames.encode({"type": "unsubscribed", "channels": removed, "id": frame.id}))
