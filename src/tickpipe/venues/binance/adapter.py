"""Binance spot and USD-M futures behind the venue interface (``venues.base.Venue``). Pure: it
builds requests and decodes bodies and frames with :mod:`.codec`; the client shell does every
I/O. One class, :class:`BinanceVenue`, parameterised by the market's ``endpoints.VenueSpec`` and
``limits.Limits``; :class:`BinanceSpotVenue` (``--venue binance``) and :class:`BinanceUsdmVenue`
(``--venue binance-usdm``) only name them. Spot first; USD-M's differences follow the list.

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
- Budget (:meth:`BinanceSpotVenue.weight_budget`): the weight window as data (6000 a
  wall-clock minute, ``X-MBX-USED-WEIGHT-1M``), of which ``RESERVED_WEIGHT`` (100) is left for
  exchangeInfo reloads: 118 snapshots of 1000 levels (weight 50) a window, 1180 of 100 (weight
  5). The client's snapshot scheduler spends it window by window (``client/snapshots.py``);
  :meth:`~BinanceSpotVenue.snapshot_budget` keeps the configured token bucket unchanged.
- Books: ``Continuity.RANGE`` (``U <= lastUpdateId + 1 <= u``, then ``U == previous u + 1``),
  REST seeding, no checksum; a book's ``seq`` is the update id ``u``.

Signed orders (issue 17): :meth:`BinanceVenue.order_codec` (``orders.BinanceOrderCodec``,
signing in ``auth``): ``POST/GET/DELETE /api/v3/order``, ``/api/v3/openOrders``; USD-M
``/fapi/v1/...`` plus its dead man's switch ``countdownCancelAll``. Binance spot has no dead
man's switch.

USD-M futures (``endpoints.USDM``, ``limits.USDM_LIMITS``):

- Stream ``wss://fstream.binance.com`` + ``/ws``; REST ``https://fapi.binance.com``:
  ``/fapi/v1/exchangeInfo``, ``/fapi/v1/depth?symbol=S&limit=N`` with ``N`` one of 5, 10, 20,
  50, 100, 500, 1000 (default 1000; another ``snapshot_depth`` is a ConfigError naming the
  valid ones, raised by ``Client.start`` before connecting). Trades are ``@aggTrade``.
- Heartbeat: server pings every 180 s, pong within 600 s: the watchdog counts the venue's
  pings (as for spot and VTS/1), so no ping for 2.5 x 180 s = 450 s is a dead link (also one
  still carrying data), inside Binance's own 600 s pong deadline.
- Budget: the same weight window on 2400 weight a minute, 100 kept as above; 1000 levels
  weigh 20: 115 snapshots a window. 429/418 with ``Retry-After`` as spot.
- Books: ``Continuity.LINK``: an event is next when its ``pu`` equals the book's last ``u``
  (``U`` is not ``pu + 1`` on USD-M: ids of other updates fall between two events). Bridging a
  snapshot at ``lastUpdateId`` drops ``u <= lastUpdateId`` and takes the first event with
  ``pu <= lastUpdateId`` (``protocol.continuity.bridges_ids``). Binance documents the bridge as
  ``U <= lastUpdateId <= u``; live books often answer a ``lastUpdateId`` equal to an event's
  ``pu``, below its ``U`` (dev.binance.vision threads 4072 and 14169), which that test would
  refuse for ever; the link test accepts it and every ``U <= lastUpdateId <= u`` case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tickpipe.protocol.frames import Snapshot
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import BookDelta
from tickpipe.protocol.sync import SyncRules
from tickpipe.venues.base import Ack, Closing, Opened, OpenRefused, Refused, WeightBudget
from tickpipe.venues.binance.codec import Codec, CommandAck, ServerShutdown, VenueError
from tickpipe.venues.binance.endpoints import SPOT, USDM, VenueSpec, parse_channel
from tickpipe.venues.binance.limits import (
    SPOT_LIMITS,
    STATUS_BANNED,
    STATUS_RATE_LIMITED,
    USDM_LIMITS,
    USED_WEIGHT_HEADER,
    Limits,
)
from tickpipe.venues.binance.orders import ORDER_SPECS, BinanceOrderCodec
from tickpipe.venues.trading import OrderCodec

RESERVED_WEIGHT = 100  # weight a window kept for exchangeInfo (spot 20, USD-M 1) and other calls


class BinanceVenue:
    """One Binance market's public market data, by its ``spec`` and ``limits``."""

    title = "Binance"
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
        self.max_streams_per_connection: int | None = limits.ws_streams_per_connection
        self._codec = Codec(spec)
        self._rules = SyncRules(continuity=spec.continuity, seeding=spec.seeding, checksum=None)
        self.decode: Callable[[Any], object] = self._decode

    def _decode(self, data: Any) -> object:
        ev = self._codec.decode_frame(data)
        tp = type(ev)
        if tp is BookDelta:  # the flood: first
            return ev
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
        return rate_per_s, burst  # the venue's budget is the weight window (weight_budget)

    def weight_budget(self, depth: int | None) -> WeightBudget:
        """The request-weight window that ``depth``-level snapshots spend (ConfigError for a
        depth over the documented maximum)."""
        lim, levels = self.limits, self._depth(depth)
        self.spec.snapshot_target("BTCUSDT", levels)  # ConfigError: not a limit the venue takes
        return WeightBudget(
            weight_per_window=lim.request_weight_per_minute,
            window_s=lim.weight_window_s,
            aligned=True,
            snapshot_weight=lim.snapshot_weight(levels),
            snapshot_levels=levels,
            reserve_weight=RESERVED_WEIGHT,
            used_weight_header=USED_WEIGHT_HEADER,
        )

    def sync_rules(self, symbol: str) -> SyncRules:
        return self._rules

    def order_codec(self) -> OrderCodec:
        """This market's signed orders (issue 17; ``orders.BinanceOrderCodec``): spot has no
        dead man's switch, USD-M arms ``countdownCancelAll`` per symbol."""
        return BinanceOrderCodec(ORDER_SPECS[self.name])


class BinanceSpotVenue(BinanceVenue):
    """Binance spot public market data (``--venue binance``)."""

    title = "Binance spot"

    def __init__(self, limits: Limits = SPOT_LIMITS) -> None:
        super().__init__(SPOT, limits)


class BinanceUsdmVenue(BinanceVenue):
    """Binance USD-M futures public market data (``--venue binance-usdm``)."""

    title = "Binance USD-M futures"

    def __init__(self, limits: Limits = USDM_LIMITS) -> None:
        super().__init__(USDM, limits)
