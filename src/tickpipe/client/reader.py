"""The picows listener: the only code that touches incoming WebSocket frames.

picows (Cython) was chosen over ``websockets`` and aiohttp's client for the read path: it
parses frames in C, hands each one to a synchronous callback without creating a task or a
future, and lets us see PING frames (``enable_auto_pong=False``) so the heartbeat watchdog
is fed by the gateway's pings themselves, as VTS/1 section 6 asks. See
``benchmarks/`` for the figures.

- TEXT: handed to :meth:`Channels.on_text` at once (decode + sequence + apply, inline).
  Fragmented messages are reassembled up to ``max_frame_bytes`` and ``max_fragmented_s``:
  past either, the connection is closed with 1009 exactly as picows closes it for one frame
  over ``max_frame_bytes`` (a ``bad_frame`` is reported, then the supervisor goes blind and
  reconnects). Before, the rest of an endless message was silently skipped and the socket
  kept, with no data flowing and every book still ``live``. The time bound is checked on each
  continuation frame and on each PING, so a message trickling one byte a second (always under
  the byte bound) while the gateway keeps pinging cannot hold the socket either; a gateway
  that stops pinging is caught by the heartbeat watchdog as usual.
- Bounded work per event-loop turn: picows delivers every frame of one socket read in one
  callback, and under a flood its read buffer doubles until one read is the whole kernel
  receive buffer (measured: 76,212 frames in one callback, the loop blocked 4.9 s, a REST
  snapshot waiting 4.6 s behind it, so books could not re-seed). Once frames have been
  processed for ``read_slice_s`` in one turn, the rest of that read is copied to a backlog,
  reading is paused (TCP carries the back-pressure), and the backlog is processed
  ``read_slice_s`` at a time on later turns, so REST replies, timers and user tasks get the
  loop in between; reading resumes when it is empty. Order is kept: while a backlog exists
  every text frame joins it. Pings are answered at once; a close frame ends the connection at
  once (the backlog is dropped with it: the books go stale anyway). The backlog holds at most
  the rest of one read.
- PING: answered with a PONG carrying the same payload at once; the watchdog is fed.
- BINARY: VTS/1 frames are text; a binary frame is reported as a bad frame and dropped.
- CLOSE: the code and reason are kept for the supervisor; we answer and disconnect.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from time import perf_counter

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from tickpipe.errors import FrameError


class ConnectionSink:
    """What the listener reports to (implemented by the supervisor's connection)."""

    def on_text(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def on_ping(self) -> None:
        raise NotImplementedError

    def on_close_frame(self, code: int, reason: str) -> None:
        raise NotImplementedError

    def on_bad_frame(self, exc: FrameError) -> None:
        raise NotImplementedError

    def on_disconnected(self) -> None:
        raise NotImplementedError


_CHECK_EVERY = 32  # frames between clock reads (a read costs ~50 ns; 32 frames ~0.4 ms)


class StreamListener(WSListener):  # type: ignore[misc]
    """Per-connection listener; ``sink`` gets every frame."""

    def __init__(
        self,
        sink: ConnectionSink,
        max_frame_bytes: int,
        read_slice_s: float = 0.005,
        max_fragmented_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.max_frame_bytes = max_frame_bytes
        self.read_slice_s = read_slice_s
        self.max_fragmented_s = max_fragmented_s
        self.transport: WSTransport | None = None
        self._fragments: bytearray | None = None
        self._fragments_since = 0.0
        self._clock = clock
        self._on_text: Callable[[bytes | memoryview], None] = sink.on_text
        self._backlog: deque[bytes] | None = None  # text frames waiting for a later turn
        self._turn_t0 = 0.0  # when the current read's first frame was processed (0: none yet)
        self._since_check = 0
        self._paused = False
        self.deferred = 0  # frames that went through the backlog (stats)
        self.slices = 0  # backlog slices run on later loop turns (stats)

    def _too_big(self, reason: str) -> None:
        """Report, then close with 1009 and disconnect, as picows does for one frame over
        ``max_frame_bytes``. (Not by raising WSProtocolError from ``on_ws_frame``, which picows
        would turn into the same close: an exception through its Cython callback was seen to
        upset CPython 3.11's recursion-depth bookkeeping, a SystemError later in ``ast``.)"""
        self._fragments = None
        self.sink.on_bad_frame(FrameError(reason))
        t = self.transport
        if t is not None and not t.is_disconnected:
            t.send_close(WSCloseCode.MESSAGE_TOO_BIG, reason.encode()[:120])
            t.disconnect()

    def _check_fragment_age(self) -> None:
        if self._fragments is not None:
            age = self._clock() - self._fragments_since
            if age > self.max_fragmented_s:
                self._too_big(
                    f"fragmented message not complete after {age:.1f}s "
                    f"(max_fragmented_message_s {self.max_fragmented_s:g})"
                )

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    # -- bounded work per loop turn -----------------------------------------------------------
    def _check_turn(self) -> None:
        """Every ``_CHECK_EVERY`` frames processed inline: has this turn used its slice? Then
        the rest of this read goes to the backlog."""
        self._since_check = 0
        now = perf_counter()
        if self._turn_t0 == 0.0:
            self._turn_t0 = now
        elif now - self._turn_t0 >= self.read_slice_s:
            self._backlog = deque()

    def _text(self, data: bytes | memoryview, last_in_buffer: bool) -> None:
        """A whole text message (the fast path in on_ws_frame inlines this)."""
        backlog = self._backlog
        if backlog is not None:
            backlog.append(bytes(data))
            self.deferred += 1
        else:
            self._on_text(data)
            n = self._since_check + 1
            if n >= _CHECK_EVERY:
                self._check_turn()
            else:
                self._since_check = n
        if last_in_buffer:
            self._end_of_read()

    def _end_of_read(self) -> None:
        """The last frame of one socket read: the next read starts a new turn."""
        self._turn_t0 = 0.0
        self._since_check = 0
        if self._backlog is not None and not self._paused:
            if not self._backlog:  # the slice ran out exactly on the read's last frame
                self._backlog = None
                return
            self._pause(True)
            asyncio.get_running_loop().call_soon(self._drain)

    def _pause(self, on: bool) -> None:
        tr = self.transport
        if tr is None:
            return
        under = tr.underlying_transport
        if on:
            under.pause_reading()
        elif not under.is_closing():
            under.resume_reading()
        self._paused = on

    def _drain(self) -> None:
        """One slice of the backlog; schedules the next, or resumes reading when empty."""
        backlog = self._backlog
        if backlog is None:  # disconnected meanwhile
            return
        self.slices += 1
        on_text = self._on_text
        t0 = perf_counter()
        n = 0
        while backlog:
            on_text(backlog.popleft())
            n += 1
            if n >= _CHECK_EVERY:
                n = 0
                if perf_counter() - t0 >= self.read_slice_s:
                    break
            if self._backlog is not backlog:  # the connection ended inside on_text
                return
        if backlog:
            asyncio.get_running_loop().call_soon(self._drain)
            return
        self._backlog = None
        self._pause(False)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        t = frame.msg_type
        if t is WSMsgType.TEXT:
            if frame.fin:
                # the hot path: _text inlined (one Python call less a frame). A view of
                # picows' read buffer, no copy, valid during this call only; a frame deferred
                # to a later turn is copied.
                backlog = self._backlog
                if backlog is None:
                    self._on_text(frame.get_payload_as_memoryview())
                    n = self._since_check + 1
                    if n >= _CHECK_EVERY:
                        self._check_turn()
                    else:
                        self._since_check = n
                else:
                    backlog.append(frame.get_payload_as_bytes())
                    self.deferred += 1
                if frame.last_in_buffer:
                    self._end_of_read()
                return
            else:
                self._fragments = bytearray(frame.get_payload_as_memoryview())
                self._fragments_since = self._clock()
        elif t is WSMsgType.CONTINUATION:
            buf = self._fragments
            if buf is None:
                return
            buf += frame.get_payload_as_memoryview()
            if len(buf) > self.max_frame_bytes:
                self._too_big(
                    f"fragmented message over {self.max_frame_bytes} bytes (max_frame_bytes)"
                )
            elif frame.fin:
                self._fragments = None
                self._text(bytes(buf), False)
            else:
                self._check_fragment_age()
        elif t is WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
            self.sink.on_ping()
            self._check_fragment_age()
        elif t is WSMsgType.CLOSE:
            code = frame.get_close_code()
            code_int = int(code.value) if isinstance(code, WSCloseCode) else int(code)
            message = frame.get_close_message()  # None when the close frame carries none
            reason = message.decode(errors="replace") if message else ""
            self.sink.on_close_frame(code_int, reason)
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()
        elif t is WSMsgType.BINARY:
            self.sink.on_bad_frame(FrameError("binary frame: VTS/1 frames are text"))

        if frame.last_in_buffer:
            self._end_of_read()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._backlog = None
        self.sink.on_disconnected()
