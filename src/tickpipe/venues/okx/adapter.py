"""OKX v5 public market data behind the venue interface (``venues.base.Venue``). Pure: it
builds frames and decodes bodies and frames with :mod:`.codec`; the client shell does every I/O.

- Stream: ``<stream base>/ws/v5/public``, then ``{"id","op":"subscribe"|"unsubscribe","args"}``
  with the shell's integer request ids written as OKX's alphanumeric ``id``. OKX answers each
  argument on its own (``{"event":"subscribe","arg":{...},"id":"7"}``):
  :class:`~tickpipe.venues.base.Ack` with that ``channel``; ``{"event":"error"}`` ->
  :class:`~tickpipe.venues.base.Refused` (code ``venue_refused``, the message names OKX's code);
  ``{"event":"notice","code":"64008"}`` (closing for an upgrade) ->
  :class:`~tickpipe.venues.base.Closing`. Nothing is sent on open; the link is up at once.
- Books: ``books`` (400 levels, 100 ms), ``Continuity.LINK`` (``prevSeqId`` == the previous
  ``seqId``), ``Seeding.IN_BAND`` (the snapshot arrives on the socket after a subscribe; a
  broken book is re-seeded by unsubscribing and subscribing that one argument again), OKX's
  signed CRC-32 of the top 25 levels (:mod:`.checksum`) where the frame's checksum is non-zero.
  A book's ``seq`` is OKX's ``seqId``.
- Heartbeat: OKX never pings; the shell sends the text ``ping`` every ``client_ping_interval_s``
  (20 s; OKX cuts a connection with no push for 30 s) and OKX answers ``pong``
  (:class:`~tickpipe.venues.base.Pong`). Every frame counts as alive; ``heartbeat_ms`` is set
  so that the client's ``heartbeat_timeout_factor`` (2.5) gives ping interval + pong deadline
  (20 s + 10 s = 30 s) without a frame as a dead link.
- Re-seeds: each costs 2 of OKX's 480 subscribe/unsubscribe operations an hour per connection;
  the shell's token bucket over them (``resubscribes_per_s``, ``resubscribe_burst``) spends at
  most half of that budget (one re-seed every 30 s sustained, 10 at once), leaving the rest for
  the user's own subscribes and reconnects.
- REST: ``/api/v5/public/instruments?instType=SPOT`` (``tickSz``/``lotSz``: the book grid). No
  API key is sent. OKX's REST book has no ``seqId``, so it never seeds a book.
- Orders (issue 17): :meth:`OkxVenue.order_codec` gives :class:`.orders.OkxOrderCodec` (spot
  limit orders signed with :mod:`.auth`, ``cancel-all-after`` as the dead man's switch); the
  client uses it when an OKX key is set (key, secret and passphrase).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tickpipe.errors import FrameError
from tickpipe.protocol.frames import Snapshot
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.sync import SyncRules
from tickpipe.venues.base import Ack, Closing, Opened, OpenRefused, Pong, Refused
from tickpipe.venues.okx import checksum, codec, endpoints, limits
from tickpipe.venues.okx.orders import DEAD_MAN_RANGE_S, OkxOrderCodec
from tickpipe.venues.trading import OrderCodec

NOTICE_CLOSING = "64008"  # "The connection will soon be closed for a service upgrade"

_RULES = SyncRules(
    continuity=endpoints.VENUE.continuity,
    seeding=endpoints.VENUE.seeding,
    checksum=checksum.checksum,
)


def _request_id(text: str | None) -> int | str | None:
    if text is not None and text.isascii() and text.isdigit():
        return int(text)
    return text


class OkxVenue:
    """OKX v5 public market data, spot (``--venue okx``), and its orders with a key.

    ``client_ping_interval_s`` (20.0 s) and ``pong_timeout_s`` (10.0 s) are OKX's documented
    heartbeat; tests pass shorter ones. Orders (:class:`.orders.OkxOrderCodec`):
    ``demo_trading`` (False: live; True: OKX Demo Trading, ``x-simulated-trading: 1`` on every
    request, with a demo key), ``dead_man_refresh_s`` (10.0 s: the ``cancel-all-after``
    refresh period while healthy, one request each) and ``dead_man_range_s`` ((10, 120): OKX's
    ``timeOut`` range; lower only to rehearse against the reference gateway)."""

    name = "okx"
    title = "OKX"
    supports_orders = False
    checks_symbols_locally = True  # an unknown instId is refused by OKX too, but only later
    sends_key = False
    awaits_open_answer = False
    auth_close_code: int | None = None
    rate_limit_statuses: tuple[int, ...] = (429,)
    client_ping: bytes | None = endpoints.PING_MESSAGE
    # no documented periodic cut (a 64008 notice rotates): None, or a value to rehearse with
    max_connection_age_s: float | None = limits.WS_FORCED_DISCONNECT_S
    max_streams_per_connection: int | None = limits.WS_MAX_STREAMS_PER_CONNECTION  # none stated

    def __init__(
        self,
        client_ping_interval_s: float = endpoints.CLIENT_PING_INTERVAL_S,
        pong_timeout_s: float = endpoints.PONG_TIMEOUT_S,
        resubscribes_per_s: float = limits.WS_OPS_PER_HOUR_PER_CONNECTION / 3600.0 / 2 / 2,
        resubscribe_burst: int = 10,
        *,
        demo_trading: bool = False,
        dead_man_refresh_s: float = 10.0,
        dead_man_range_s: tuple[int, int] = DEAD_MAN_RANGE_S,
    ) -> None:
        spec = endpoints.VENUE
        self.stream_base_url = spec.stream_base_url
        self.stream_path: str | None = spec.stream_path
        self.rest_base_url = spec.rest_base_url
        self.client_ping_interval_s = client_ping_interval_s
        self.heartbeat_ms: int | None = max(1, int((client_ping_interval_s + pong_timeout_s) * 400))
        self.resubscribes_per_s = resubscribes_per_s
        self.resubscribe_burst = resubscribe_burst
        self.decode: Callable[[Any], object] = self._decode
        self._orders = OkxOrderCodec(
            simulated=demo_trading,
            dead_man_refresh_s=dead_man_refresh_s,
            dead_man_range_s=dead_man_range_s,
        )

    def order_codec(self) -> OrderCodec:
        """OKX's signed spot orders (:class:`.orders.OkxOrderCodec`)."""
        return self._orders

    def _decode(self, data: Any) -> object:
        if isinstance(data, memoryview):
            data = bytes(data)
        events = codec.decode(data)
        out = [self._control(ev) for ev in events]
        return out[0] if len(out) == 1 else out

    def _control(self, ev: object) -> object:
        tp = type(ev)
        if tp is codec.Subscribed or tp is codec.Unsubscribed:
            assert isinstance(ev, codec.Subscribed | codec.Unsubscribed)
            return Ack(_request_id(ev.request_id), ev.channel)
        if tp is codec.VenueError:
            assert isinstance(ev, codec.VenueError)
            return Refused(
                _request_id(ev.request_id), "venue_refused", f"okx error {ev.code}: {ev.message}"
            )
        if tp is codec.Pong:
            return Pong()
        if tp is codec.Notice:
            assert isinstance(ev, codec.Notice)
            return Closing() if ev.code == NOTICE_CLOSING else ev
        return ev

    def parse_channel(self, channel: str) -> tuple[str, str]:
        return endpoints.split_channel(channel)  # ConfigError (a ValueError) names the channel

    def open_frames(self, key: str, secret: str, ts_ms: int) -> list[bytes]:
        return []

    def decode_open(self, data: Any) -> Opened | OpenRefused | None:
        return None  # never asked: awaits_open_answer is False

    def subscribe_frame(self, channels: list[str], request_id: int) -> bytes:
        return endpoints.subscribe_message(channels, str(request_id))

    def unsubscribe_frame(self, channels: list[str], request_id: int) -> bytes:
        return endpoints.unsubscribe_message(channels, str(request_id))

    def cancel_on_disconnect_frame(self) -> bytes | None:
        return None  # no orders here

    def instruments_target(self) -> str:
        return endpoints.VENUE.instruments_path

    def decode_instruments(self, body: bytes) -> list[Instrument]:
        return codec.decode_instruments(body)

    def snapshot_target(self, symbol: str, depth: int | None) -> str:
        return f"{codec.BOOKS_PATH}?instId={symbol}&sz={depth or limits.REST_BOOKS_MAX_DEPTH}"

    def decode_snapshot(self, body: bytes, symbol: str) -> Snapshot:
        raise FrameError(
            "OKX books are seeded on the stream: the REST book has no seqId to bridge",
            channel=f"orderbook:{symbol}",
        )

    def snapshot_budget(
        self, depth: int | None, rate_per_s: float, burst: int
    ) -> tuple[float, int]:
        # never used to seed (in band); kept within OKX's 40 requests per 2 s all the same
        per_s = limits.REST_BOOKS_PER_2S_PER_IP / 2.0
        return min(rate_per_s, per_s * 0.75), min(burst, int(per_s))

    def sync_rules(self, symbol: str) -> SyncRules:
        return _RULES
