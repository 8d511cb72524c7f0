"""Kraken spot WebSocket v2 public market data behind the venue interface
(``venues.base.Venue``). Pure: it builds frames and decodes bodies and frames with
:mod:`.codec`; the client shell does every I/O.

- Stream: ``<stream base>/v2``, then one ``{"method": "subscribe"|"unsubscribe", "params":
  {"channel", "symbol": [...], "depth"?}, "req_id"}`` per Kraken channel a request names
  (``book``, ``trade``, ``ticker``: ``params.channel`` is one name), each with the shell's
  request id. Kraken answers each symbol on its own (``{"method": "subscribe", "result":
  {"channel": "book", "symbol": "BTC/USD", ...}, "success": true, "req_id": 7}``):
  :class:`~tickpipe.venues.base.Ack` with that ``channel``; ``success: false`` ->
  :class:`~tickpipe.venues.base.Refused` (code ``venue_refused``, Kraken's ``error`` text).
  Kraken's ``status`` frame on connect needs no answer; nothing is sent on open.
- Books: ``book`` at ``depth`` levels (1000, the deepest Kraken serves), ``Seeding.IN_BAND``
  (a ``snapshot`` follows the subscribe), ``Continuity.NONE`` (no ids: a book's ``seq`` is
  None); integrity is Kraken's CRC-32 of the top 10 levels after every snapshot and update
  (:mod:`.checksum`, the instrument's decimals as the wire precision), and the book is
  truncated to ``depth`` after each update (Kraken never deletes the levels that fall out of
  scope). A mismatch re-seeds that one book by unsubscribing and subscribing its symbol again.
- Liveness: Kraken sends ``{"channel": "heartbeat"}`` about once a second on a subscribed
  connection with nothing else to send (:class:`~tickpipe.venues.base.Pong` here: a sign of
  life). A connection with no subscription gets no heartbeat, so the shell also sends
  ``{"method": "ping"}`` every ``client_ping_interval_s`` (2 s; Kraken answers ``pong``), and
  any frame counts as alive: ``heartbeat_timeout_s`` (5 s, five missed heartbeats) without a
  frame is a dead link.
- Re-seeds: Kraken publishes no subscribe-message number (its limit is dynamic, answered
  ``Exceeded msg rate``); each re-seed costs 2 requests, and the shell's token bucket over
  them allows ``resubscribes_per_s`` (1.0: 2 requests a second sustained, under the 5 a
  second tickpipe paces itself to, ``limits.SUGGESTED_REQUESTS_PER_S``) with a burst of 10.
- REST: ``/0/public/AssetPairs`` (v1; ``tick_size`` or ``pair_decimals``, ``lot_decimals``:
  the book grid and the checksum's precision), symbols under their v2 names (``XBT/USD`` ->
  ``BTC/USD``). No API key is sent. Books never seed over REST (no checksum there to verify).
- Orders (issue 17): :meth:`KrakenVenue.order_codec` (``venues/kraken/orders.py``), signed
  REST calls on the same base (``https://api.kraken.com``: ``--rest-url`` replaces its scheme,
  host and port); the pair names it sends (``XBTUSD``) are learned from the AssetPairs body
  the instruments come from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tickpipe.errors import ConfigError, FrameError
from tickpipe.protocol.frames import Snapshot
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.sync import SyncRules
from tickpipe.venues.base import Ack, Opened, OpenRefused, Pong, Refused
from tickpipe.venues.kraken import checksum, codec, endpoints, limits
from tickpipe.venues.kraken.codec import SubscribeParams, SubscribeRequest, UnsubscribeRequest
from tickpipe.venues.kraken.orders import ORDERS_BURST, ORDERS_PER_S, KrakenOrders, KrakenPairs

CLIENT_PING = b'{"method":"ping"}'
CLIENT_PING_INTERVAL_S = 2.0
"""The shell's ``ping`` period: a connection with no subscription gets no heartbeat."""
HEARTBEAT_TIMEOUT_S = 5.0
"""No frame at all this long (five of Kraken's 1 s heartbeats missed): the link is dead."""
DEPTH_BOOK_SNAPSHOT = "/0/public/Depth"  # REST book: not used to seed (no checksum to verify)


def _rules(depth: int) -> SyncRules:
    return SyncRules(
        continuity=endpoints.VENUE.continuity,
        seeding=endpoints.VENUE.seeding,
        checksum=checksum.checksum,
        depth=depth,
    )


class KrakenVenue:
    """Kraken spot WebSocket v2 public market data (``--venue kraken``).

    - ``depth`` (1000 levels): the ``book`` depth subscribed, one of Kraken's 10, 25, 100,
      500, 1000; the local book is truncated to it. A deeper book costs Kraken's bandwidth
      and the book's memory (two sides of ``depth`` levels); the checksum covers the top 10
      whatever the depth.
    - ``client_ping_interval_s`` (2.0 s), ``heartbeat_timeout_s`` (5.0 s): see the module
      docstring; tests pass shorter ones.
    - ``resubscribes_per_s`` (1.0), ``resubscribe_burst`` (10): re-seeds by re-subscribing.
    - ``orders_per_s`` (1.0), ``orders_burst`` (15): the client's token bucket over Kraken's
      private calls (the Starter tier: trading counter decay 1/s, REST counter ceiling 15; see
      ``venues/kraken/orders.py``). A higher tier may raise them; too high and Kraken answers
      ``EOrder:Rate limit exceeded`` / ``EAPI:Rate limit exceeded`` (then waited out).
    """

    name = "kraken"
    title = "Kraken"
    supports_orders = False
    checks_symbols_locally = True  # Kraken refuses an unknown pair too, but per symbol
    sends_key = False
    awaits_open_answer = False
    auth_close_code: int | None = None
    rate_limit_statuses: tuple[int, ...] = (429,)
    client_ping: bytes | None = CLIENT_PING

    def __init__(
        self,
        depth: int = endpoints.VENUE.default_book_depth,
        client_ping_interval_s: float = CLIENT_PING_INTERVAL_S,
        heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S,
        resubscribes_per_s: float = 1.0,
        resubscribe_burst: int = 10,
        orders_per_s: float = ORDERS_PER_S,
        orders_burst: int = ORDERS_BURST,
    ) -> None:
        if depth not in limits.BOOK_DEPTHS:
            raise ConfigError(
                f"kraken book depth must be one of {', '.join(map(str, limits.BOOK_DEPTHS))}, "
                f"got {depth!r}"
            )
        if not client_ping_interval_s > 0 or not heartbeat_timeout_s > client_ping_interval_s:
            raise ConfigError(
                "kraken: heartbeat_timeout_s must exceed client_ping_interval_s > 0, got "
                f"{heartbeat_timeout_s!r} and {client_ping_interval_s!r}"
            )
        spec = endpoints.VENUE
        self.stream_base_url = spec.stream_base
        self.stream_path: str | None = spec.stream_path
        self.rest_base_url = spec.rest_base
        self.depth = depth
        self.client_ping_interval_s = client_ping_interval_s
        # the shell's timeout is heartbeat_timeout_factor (2.5) x heartbeat_ms
        self.heartbeat_ms: int | None = max(1, int(heartbeat_timeout_s * 400))
        self.resubscribes_per_s = resubscribes_per_s
        self.resubscribe_burst = resubscribe_burst
        self._rules = _rules(depth)
        self.decode: Callable[[Any], object] = self._decode
        self._pairs = KrakenPairs()  # AssetPairs names, shared with the order codec
        self._orders = KrakenOrders(
            self._pairs, orders_per_s=orders_per_s, orders_burst=orders_burst
        )  # checks the knobs now

    def order_codec(self) -> KrakenOrders:
        """Kraken spot orders over REST (signed, ``venues/kraken/orders.py``): used by the
        client when a Kraken API key is set (``TICKPIPE_KRAKEN_KEY`` / ``_SECRET``)."""
        o = self._orders
        return KrakenOrders(self._pairs, orders_per_s=o.orders_per_s, orders_burst=o.orders_burst)

    def _decode(self, data: Any) -> object:
        if isinstance(data, memoryview):
            data = bytes(data)
        events = codec.decode(data)
        if len(events) == 1:
            return self._control(events[0])
        return [self._control(ev) for ev in events]

    def _control(self, ev: object) -> object:
        tp = type(ev)
        if tp is codec.Subscribed:
            assert isinstance(ev, codec.Subscribed)
            return Ack(ev.req_id, ev.channel)
        if tp is codec.VenueError:
            assert isinstance(ev, codec.VenueError)
            where = f" ({ev.symbol})" if ev.symbol else ""
            return Refused(
                ev.req_id, "venue_refused", f"kraken {ev.method} error{where}: {ev.message}"
            )
        if tp is codec.Heartbeat or tp is codec.Pong:
            return Pong()  # a sign of life
        if tp is codec.Status or tp is codec.InstrumentPairs:
            return []  # nothing to do: routes nothing
        return ev

    def parse_channel(self, channel: str) -> tuple[str, str]:
        try:
            endpoints.topic(channel)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        kind, _, symbol = channel.partition(":")
        return kind, symbol

    def open_frames(self, key: str, secret: str, ts_ms: int) -> list[bytes]:
        return []

    def decode_open(self, data: Any) -> Opened | OpenRefused | None:
        return None  # never asked: awaits_open_answer is False

    def _frames(
        self, make: type[SubscribeRequest] | type[UnsubscribeRequest], channels: list[str], rid: int
    ) -> list[bytes]:
        groups: dict[str, list[str]] = {}
        for ch in channels:
            kraken_channel, symbol = endpoints.topic(ch)
            groups.setdefault(kraken_channel, []).append(symbol)
        return [
            codec.encode_request(
                make(SubscribeParams(kc, syms, self.depth if kc == "book" else None), rid)
            )
            for kc, syms in groups.items()
        ]

    def subscribe_frame(self, channels: list[str], request_id: int) -> list[bytes]:
        """One ``subscribe`` per Kraken channel, each with ``request_id``."""
        return self._frames(SubscribeRequest, channels, request_id)

    def unsubscribe_frame(self, channels: list[str], request_id: int) -> list[bytes]:
        return self._frames(UnsubscribeRequest, channels, request_id)

    def cancel_on_disconnect_frame(self) -> bytes | None:
        return None  # no orders here

    def instruments_target(self) -> str:
        return endpoints.VENUE.instruments_path

    def decode_instruments(self, body: bytes) -> list[Instrument]:
        instruments = codec.decode_asset_pairs(body)
        self._pairs.learn(body)  # XBTUSD <-> BTC/USD, for the orders
        return instruments

    def snapshot_target(self, symbol: str, depth: int | None) -> str:
        return f"{DEPTH_BOOK_SNAPSHOT}?pair={symbol}&count={depth or self.depth}"

    def decode_snapshot(self, body: bytes, symbol: str) -> Snapshot:
        raise FrameError(
            "Kraken books are seeded on the stream: the REST book has no checksum to verify",
            channel=f"orderbook:{symbol}",
        )

    def snapshot_budget(
        self, depth: int | None, rate_per_s: float, burst: int
    ) -> tuple[float, int]:
        # never used to seed (in band); kept within Kraken's ~1 public REST call a second
        return min(rate_per_s, limits.REST_PUBLIC_CALLS_PER_S), min(burst, 1)

    def sync_rules(self, symbol: str) -> SyncRules:
        return self._rules
