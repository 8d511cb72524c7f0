"""The bus as the client shell sees it: a venue adapter over another venue's channels.

``Client(source="nats://...", venue="binance")`` wraps the venue's adapter in :class:`BusVenue`:
the same channel names and instrument grid (read from the bus, never from the venue), the
books' rules of that venue (its depth truncation) but seeded in band (a Snap from the bus) and
with no id check of their own (the bus's per-book seq is checked by ``bus/decoder.py``; the book
keeps the venue's update id as its ``seq``) and no checksum (the collector verified it). Frames
"sent" are commands to the link (``bus/link.py``), which answers with local messages.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from tickpipe.bus.decoder import BusDecoder, LinkCommand
from tickpipe.bus.link import load_instruments
from tickpipe.errors import UnsupportedError
from tickpipe.protocol.frames import Snapshot
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import Continuity, Seeding
from tickpipe.protocol.sync import SyncRules
from tickpipe.venues.base import Opened, OpenRefused, Venue

_cmd_encoder = msgspec.json.Encoder()


class BusVenue:
    """``inner``'s channels, rebuilt from a bus. ``source``: the NATS URL(s), comma-separated;
    ``stream``: the JetStream stream the collectors publish to."""

    supports_orders = False
    checks_symbols_locally = True  # the collector's instruments list the symbols
    stream_path: str | None = None
    rest_base_url = "http://127.0.0.1"
    sends_key = False
    awaits_open_answer = True  # up once an active collector's heartbeat is heard
    heartbeat_ms: int | None = None  # the collector's, announced in its heartbeat
    auth_close_code: int | None = None
    rate_limit_statuses: tuple[int, ...] = ()
    # a re-seed re-reads the bus: cheap, no venue limit to respect
    resubscribes_per_s = 50.0
    resubscribe_burst = 200
    max_streams_per_connection: int | None = None
    max_connection_age_s: float | None = None

    def __init__(self, inner: Venue, source: str, stream: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.title = f"{inner.title} (from the bus)"
        self.stream_base_url = source
        self.source = source
        self.stream = stream
        self.codec = BusDecoder()
        self.decode: Any = self.codec.decode
        self.exact_depth_seen: int | None = None  # from the collector's instruments message

    def parse_channel(self, channel: str) -> tuple[str, str]:
        return self.inner.parse_channel(channel)

    def open_frames(self, key: str, secret: str, ts_ms: int) -> list[bytes]:
        return []

    def decode_open(self, data: Any) -> Opened | OpenRefused | None:
        return self.codec.decode_open(data)

    def subscribe_frame(self, channels: list[str], request_id: int) -> bytes:
        return _cmd_encoder.encode(LinkCommand("subscribe", request_id, channels))

    def unsubscribe_frame(self, channels: list[str], request_id: int) -> bytes:
        return _cmd_encoder.encode(LinkCommand("unsubscribe", request_id, channels))

    def cancel_on_disconnect_frame(self) -> bytes | None:
        return None

    def instruments_target(self) -> str:
        raise UnsupportedError("a bus consumer reads instruments from the bus", self.name)

    def decode_instruments(self, body: bytes) -> list[Instrument]:
        raise UnsupportedError("a bus consumer reads instruments from the bus", self.name)

    def snapshot_target(self, symbol: str, depth: int | None) -> str:
        raise UnsupportedError("a bus consumer seeds books from the bus", self.name)

    def decode_snapshot(self, body: bytes, symbol: str) -> Snapshot:
        raise UnsupportedError("a bus consumer seeds books from the bus", self.name)

    def snapshot_budget(
        self, depth: int | None, rate_per_s: float, burst: int
    ) -> tuple[float, int]:
        return rate_per_s, burst

    def sync_rules(self, symbol: str) -> SyncRules:
        return dataclasses.replace(
            self.inner.sync_rules(symbol),
            continuity=Continuity.NONE,
            seeding=Seeding.IN_BAND,
            checksum=None,
        )

    async def load_instruments(self, timeout_s: float) -> list[Instrument]:
        """The collector's instruments message (the latest on the bus)."""
        insts, depth = await load_instruments(self.source, self.name, self.stream, timeout_s)
        self.exact_depth_seen = depth
        return insts
