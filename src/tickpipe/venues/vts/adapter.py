"""VTS/1 behind the venue interface (``venues.base.Venue``). Pure.

What it hands the client shell is exactly what the shell did itself before the interface:
auth on open and wait for ``authenticated`` (its ``heartbeat_ms`` sets the watchdog), the
``subscribe``/``unsubscribe``/``cancel_on_disconnect`` frames, ``/v1/instruments`` and
``/v1/orderbook/{symbol}``, the stream URL used whole. Its frames decode with
``frames.decode_server_frame`` (the shell's hot path routes a VTS/1 delta straight to
``BookSync.on_delta``), and its books keep ``VTS1_RULES`` (seq + 1, REST seeding, CRC-32).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tickpipe.protocol import frames
from tickpipe.protocol.frames import Snapshot
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.sync import VTS1_RULES, SyncRules
from tickpipe.venues.base import Opened, OpenRefused

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _quote(text: str) -> str:
    """Percent-encode every byte but the unreserved ones (``urllib.parse.quote(safe="")``)."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode())


class Vts1Venue:
    """VTS/1 (``--venue vts``, the default)."""

    name = "vts"
    title = "VTS/1"
    supports_orders = True
    checks_symbols_locally = False  # the gateway refuses unknown channels itself
    stream_base_url = "ws://127.0.0.1:8765"
    stream_path: str | None = None  # the stream URL is used whole (``.../v1/stream``)
    rest_base_url = "http://127.0.0.1:8765"
    sends_key = True
    awaits_open_answer = True
    heartbeat_ms: int | None = None  # announced in ``authenticated``
    auth_close_code: int | None = 4001
    rate_limit_statuses: tuple[int, ...] = (429,)

    def __init__(self) -> None:
        self.decode: Callable[[Any], object] = frames.decode_server_frame

    def parse_channel(self, channel: str) -> tuple[str, str]:
        return frames.split_channel(channel)

    def open_frames(self, key: str, secret: str, ts_ms: int) -> list[bytes]:
        return [frames.encode(frames.auth_frame(key, secret, ts_ms))]

    def decode_open(self, data: Any) -> Opened | OpenRefused | None:
        """The answer to auth; FrameError when the frame is not VTS/1; None for any other."""
        f = frames.decode_server_frame(data)
        if isinstance(f, frames.Authenticated):
            return Opened(f.session, f.heartbeat_ms)
        if isinstance(f, frames.ErrorFrame) and f.code == "auth_failed":
            return OpenRefused(f.message or "auth_failed")
        return None

    def subscribe_frame(self, channels: list[str], request_id: int) -> bytes:
        return frames.encode(frames.Subscribe(channels=channels, id=request_id))

    def unsubscribe_frame(self, channels: list[str], request_id: int) -> bytes:
        return frames.encode(frames.Unsubscribe(channels=channels, id=request_id))

    def cancel_on_disconnect_frame(self) -> bytes | None:
        return frames.encode(frames.CancelOnDisconnect(enabled=True))

    def instruments_target(self) -> str:
        return "/v1/instruments"

    def decode_instruments(self, body: bytes) -> list[Instrument]:
        return frames.decode_instruments(body)

    def snapshot_target(self, symbol: str, depth: int | None) -> str:
        query = f"?depth={depth}" if depth is not None else ""
        return f"/v1/orderbook/{_quote(symbol)}{query}"

    def decode_snapshot(self, body: bytes, symbol: str) -> Snapshot:
        return frames.decode_snapshot(body)

    def snapshot_budget(
        self, depth: int | None, rate_per_s: float, burst: int
    ) -> tuple[float, int]:
        return rate_per_s, burst  # the knobs as configured (the gateway's limit is per key)

    def sync_rules(self, symbol: str) -> SyncRules:
        return VTS1_RULES
