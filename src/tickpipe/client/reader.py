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
- PING: answered with a PONG carrying the same payload at once; the watchdog is fed.
- BINARY: VTS/1 frames are text; a binary frame is reported as a bad frame and dropped.
- CLOSE: the code and reason are kept for the supervisor; we answer and disconnect.
"""

from __future__ import annotations

import time
from collections.abc import Callable

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


class StreamListener(WSListener):  # type: ignore[misc]
    """Per-connection listener; ``sink`` gets every frame."""

    def __init__(
        self,
        sink: ConnectionSink,
        max_frame_bytes: int,
        max_fragmented_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.max_frame_bytes = max_frame_bytes
        self.max_fragmented_s = max_fragmented_s
        self.transport: WSTransport | None = None
        self._fragments: bytearray | None = None
        self._fragments_since = 0.0
        self._clock = clock
        self._on_text: Callable[[bytes | memoryview], None] = sink.on_text

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

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        t = frame.msg_type
        if t is WSMsgType.TEXT:
            if frame.fin:
                # a view of picows' read buffer: no copy; valid during this call only
                self._on_text(frame.get_payload_as_memoryview())
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
                self._on_text(bytes(buf))
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

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.sink.on_disconnected()
