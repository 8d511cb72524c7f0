"""Binance spot behind the venue interface (``venues.base.Venue``). Pure: it builds requests
and decodes bodies and frames with :mod:`.codec`; the client shell does every I/O.

- Stream: ``<stream base>/ws``, then ``SUBSCRIBE`` / ``UNSUBSCRIBE`` with integer request ids;
  ``{"result": null, "id": N}`` -> :class:`~tickpipe.venues.base.Ack`, an error
  ``{"code", "msg", "id"}`` -> :class:`~tickpipe.venues.base.Refused` (code ``venue_refused``,
  the message names Binance's code), ``serverShutdown`` ->
  :class:`~tickpipe.venues.base.Closing`. Nothing is sent on open; the link is up at once.
- Heartbeat: server pings every 20 s (``limits.SPOT_LIMITS.server_ping_interval_s``), answered
  by the shell's listener, which feeds its watchdog: with the client's
  ``heartbeat_timeout_factor`` (2.5) a link with no ping for 50 s is dead, inside Binance's
  own 60 s pong deadline.
- REST: ``/api/v3/exchangeInfo`` (instruments on the book grid) and
  ``/api/v3/depth?symbol=S&limit=N`` (``N`` = the client's ``snapshot_depth``, else 1000).
  No API key is sent (public market data). 429 and 418 carry ``Retry-After``: both pause every
  fetch for that long (the scheduler never sends into a ban).
- Budget (:meth:`BinanceSpotVenue.snapshot_budget`): of the 6000 weight a minute, 100 are kept
  for exchangeInfo reloads; the token bucket is sized so that its burst plus one minute of its
  rate stays within the rest (1000 levels, weight 50: 118 a minute -> 1.475/s, burst 29), so no
  wall-clock minute can be overspent by the snapshots alone. Configured values lower than that
  are kept.
- Books: ``Continuity.RANGE`` (``U <= lastUpdateId + 1 <= u``, then ``U == previous u + 1``),
  REST seeding, no checksum; a book's ``seq`` is the update id ``u``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tickpipe.protocol.frames import Snapshot
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import Continuity, Seeding
from tickpipe.protocol.sync import SyncRules
from tickpipe.venues.base import Ack, Closing, Opened, OpenRefused, Refused
from tickpipe.venues.binance.codec import Codec, CommandAck, ServerShutdown, VenueError
from tickpipe.venues.binance.endpoints import SPOT, VenueSpec, parse_channel
from tickpipe.venues.binance.limits import (
    SPOT_LIMITS,
    STATUS_BANNED,
    STATUS_RATE_LIMITED,
    Limits,
)

RESERVED_WEIGHT = 100  # weight a minute kept for exchangeInfo (20 each) and other calls

_RULES = SyncRules(continuity=Continuity.RANGE, seeding=Seeding.REST, checksum=None)


class BinanceSpotVenue:
    """Binance spot public market data (``--venue binance``)."""

    title = "Binance spot"
    supports_orders = False
    checks_symbols_locally = True
    sends_key = False
    awaits_open_answer = False
    auth_close_code: int | None = None
    rate_limit_statuses: tuple[int, ...] = (STATUS_RATE_LIMITED, STATUS_BANNED)

    def __init__(self, spec: VenueSpec = SPOT, limits: Limits = SPOT_LIMITS) -> None:
        self.spec = spec
        self.limits = limits
        self.name = spec.name
        self.stream_base_url = spec.stream_base_url
        self.stream_path: str | None = spec.raw_stream_path
        self.rest_base_url = spec.rest_base_url
        self.heartbeat_ms: int | None = int(limits.server_ping_interval_s * 1000)
        # every connection is closed at this age: the client rotates before it
        self.max_connection_age_s: float | None = limits.ws_connection_lifetime_s
        self._codec = Codec(spec)
        self.decode: Callable[[Any], object] = self._decode

    def _decode(self, data: Any) -> object:
        ev = self._codec.decode_frame(data)
        tp = type(ev)
        if tp is CommandAck:
            return Ack(ev.id)  # type: ignore[union-attr]
        if tp is VenueError:
            assert isinstance(ev, VenueError)
            return Refused(ev.id, "venue_refused", f"{self.name} error {ev.code}: {ev.msg}")
        if tp is ServerShutdown:
            return Closing()
        return ev

    def parse_channel(self, channel: str) -> tuple[str, str]:
        kind, symbol = parse_channel(channel)  # ConfigError (a ValueError) names the channel
        if channel.partition(":")[2] != symbol:
            raise ValueError(f"channel {channel!r}: write the symbol as {self.name} does: {symbol}")
        return kind, symbol

    def open_frames(self, key: str, secret: str, ts_ms: int) -> list[bytes]:
        return []

    def decode_open(self, data: Any) -> Opened | OpenRefused | None:
        return None  # never asked: awaits_open_answer is False

    def subscribe_frame(self, channels: list[str], request_id: int) -> bytes:
        return self.spec.subscribe_message(channels, request_id)

    def unsubscribe_frame(self, channels: list[str], request_id: int) -> bytes:
        return self.spec.unsubscribe_message(channels, request_id)

    def cancel_on_disconnect_frame(self) -> bytes | None:
        return None  # no orders here

    def instruments_target(self) -> str:
        return self.spec.instruments_path

    def decode_instruments(self, body: bytes) -> list[Instrument]:
        return list(self._codec.decode_exchange_info(body).values())

    def _depth(self, depth: int | None) -> int:
        return self.spec.default_snapshot_depth if depth is None else depth

    def snapshot_target(self, symbol: str, depth: int | None) -> str:
        return self.spec.snapshot_target(symbol, self._depth(depth))

    def decode_snapshot(self, body: bytes, symbol: str) -> Snapshot:
        snap = self._codec.decode_depth_snapshot(body, symbol)
        assert snap.last_id is not None  # lastUpdateId is required by the codec
        return Snapshot(snap.symbol, snap.last_id, 0, snap.bids, snap.asks)

    def snapshot_budget(
        self, depth: int | None, rate_per_s: float, burst: int
    ) -> tuple[float, int]:
        weight = self.limits.snapshot_weight(self._depth(depth))
        per_minute = max(1, (self.limits.request_weight_per_minute - RESERVED_WEIGHT) // weight)
        rate = per_minute * 0.75 / 60.0
        venue_burst = max(1, per_minute - math.ceil(rate * 60.0))
        return min(rate_per_s, rate), min(burst, venue_burst)

    def sync_rules(self, symbol: str) -> SyncRules:
        return _RULES
