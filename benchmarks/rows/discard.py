"""Row 0: the sender's own ceiling — a receiver that reads bytes and throws them away.

A blocking socket does the WebSocket upgrade by hand, sends auth and subscribe (masked, as a
client must), then ``recv_into`` one reused 1 MiB buffer until the stream's ``wire_bytes`` have
arrived: no frame parsing, no Python object per frame. Whatever frames/s this reaches is the
most the sender (and loopback) can deliver; every other row must stay well below it for its
figure to be the receiver's and not the sender's.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from urllib.parse import urlsplit

from benchmarks.rows.common import KEY, SECRET, Run, fail, parse_args
from tickpipe.protocol import frames as vts


def _masked(payload: bytes) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    head = bytes((0x81, 0x80 | n)) if n < 126 else bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    mask = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
    return head + key + body


def _read_until(sock: socket.socket, marker: bytes, limit_s: float = 10) -> bytes:
    got = b""
    deadline = time.monotonic() + limit_s
    while marker not in got:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {marker!r} from the sender")
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("sender closed the connection")
        got += chunk
    return got


def main() -> None:
    args = parse_args()
    run = Run.load("discard", args)
    u = urlsplit(args.stream_url)
    sock = socket.create_connection((u.hostname, u.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    _read_until(sock, b"\r\n\r\n")
    sock.sendall(_masked(vts.encode(vts.auth_frame(KEY, SECRET, time.time_ns() // 10**6))))
    _read_until(sock, b'"authenticated"')
    sock.sendall(_masked(vts.encode(vts.Subscribe(run.snap.channels, id=1))))
    _read_until(sock, b'"subscribed"')
    run.setup_done()
    info = run.begin()
    want = int(info["wire_bytes"])
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    got = 0
    sock.settimeout(args.timeout_s)
    try:
        while got < want:
            n = sock.recv_into(view)
            if not n:
                break
            got += n
    except TimeoutError:
        run.extra["timed_out"] = True
    run.end()
    run.received = int(info["frames"]) if got >= want else 0
    run.extra["wire_bytes"] = got
    sock.close()
    run.emit()


if __name__ == "__main__":
    try:
        main()
    except (OSError, RuntimeError) as exc:
        fail("discard", f"{type(exc).__name__}: {exc}")
