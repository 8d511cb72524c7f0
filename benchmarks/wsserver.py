"""The benchmark senders' WebSocket server side, on a raw ``asyncio.Protocol``.

The senders (``sender``, ``sat_sender``, ``venue_flood_sender``) write pre-built frames in
~256 KiB chunks and must cost a fraction of what a receiver spends a frame, so they do not go
through a WebSocket library: :class:`WsConn` does the HTTP upgrade, pops the client's (masked)
frames, answers pings and closes, and turns TCP backpressure into an event (``can_write``) the
flood loops wait on. A sender's connection class says which paths it serves
(:meth:`WsConn._handshake`) and what a data frame means (:meth:`WsConn._on_data`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterator
from typing import Any, cast

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def ws_header(n: int, opcode: int = 0x1) -> bytes:
    """Header of one unmasked, final server frame with an ``n``-byte payload."""
    b0 = 0x80 | opcode
    if n < 126:
        return bytes((b0, n))
    if n < 65536:
        return bytes((b0, 126)) + n.to_bytes(2, "big")
    return bytes((b0, 127)) + n.to_bytes(8, "big")


def parse_client_frames(buf: bytearray) -> Iterator[tuple[int, bytes]]:
    """Pop complete (masked) client frames off ``buf``: yields (opcode, payload)."""
    while len(buf) >= 2:
        opcode, n, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
        masked = buf[1] & 0x80
        if n == 126:
            if len(buf) < 4:
                return
            n, pos = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                return
            n, pos = int.from_bytes(buf[2:10], "big"), 10
        end = pos + (4 if masked else 0) + n
        if len(buf) < end:
            return
        if masked:
            key = bytes(buf[pos : pos + 4])
            raw = bytes(buf[pos + 4 : end])
            mask = (key * (n // 4 + 1))[:n]
            payload = (int.from_bytes(raw, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
        else:
            payload = bytes(buf[pos:end])
        del buf[:end]
        yield opcode, payload


def parse_request(head: str) -> tuple[str, dict[str, str]]:
    """(request target, headers by lower-case name) of an HTTP request head."""
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    parts = lines[0].split(" ")
    return (parts[1] if len(parts) > 1 else ""), headers


class WsConn(asyncio.Protocol):
    """One receiver's connection. ``conns``: the sender's set of live connections (this one is
    in it from ``connection_made`` to ``connection_lost``)."""

    def __init__(self, conns: set[Any]) -> None:
        self.conns = conns
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.open = False  # upgraded
        self.closed = False
        self.can_write = asyncio.Event()  # clear while the transport's buffer is over its mark
        self.can_write.set()

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.conns.discard(self)
        self.can_write.set()  # a flood loop waiting on it sees ``closed`` and ends

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[: end + 4]
            self._handshake(head)
            if not self.open:
                return
        for opcode, payload in parse_client_frames(self.buf):
            if opcode == 0x9:  # ping -> pong
                self.write(ws_header(len(payload), 0xA) + payload)
            elif opcode == 0x8:  # close -> echo and hang up
                self.write(ws_header(len(payload[:2]), 0x8) + payload[:2])
                if self.transport is not None:
                    self.transport.close()
            elif opcode in (0x1, 0x2):
                self._on_data(payload)

    # -- for the senders --------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def send_text(self, body: bytes) -> None:
        """One text frame."""
        self.write(ws_header(len(body)) + body)

    def upgrade(self, key: str) -> None:
        """Answer the upgrade (101) for the client's ``Sec-WebSocket-Key``."""
        accept = base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest()).decode()
        self.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        self.open = True

    def refuse(self) -> None:
        """404 and hang up: not a path this sender serves, or not an upgrade."""
        self.write(_NOT_FOUND)
        if self.transport is not None:
            self.transport.close()

    def _handshake(self, head: str) -> None:
        """The request ``head``: :meth:`upgrade` or :meth:`refuse`."""
        raise NotImplementedError

    def _on_data(self, payload: bytes) -> None:
        """One text or binary frame from the client."""
        raise NotImplementedError
