"""``tickpipe gateway --dialect binance-usdm``: the simulated markets as Binance USD-M futures
serves them.

The binance dialect (:mod:`.binance`) parameterised by the USD-M spec: everything on the wire
is encoded with :class:`tickpipe.venues.binance.codec.Codec` (``USDM``), the codec the client
decodes with; documented limits come from ``venues.binance.limits.USDM_LIMITS``. What differs
from spot:

- Symbols as spot (``BTC-USD`` -> ``BTCUSDT``).
- Update ids: Binance update id = hub seq x ``update_id_step`` (10), so between two events ids
  are left out as on the live venue (``U`` is not ``pu + 1``). Every ``depthUpdate`` carries
  ``pu`` = the previous event's ``u`` on that stream, ``T`` and ``E``; a client must link on
  ``pu``. ``GET /admin/book/BTCUSDT?seq=N`` is the true book at Binance update id
  ``N x update_id_step``. The depth snapshot's ``lastUpdateId`` and bookTicker's ``u`` use the
  same ids.
- Streams ``<symbol>@depth@100ms``, ``<symbol>@aggTrade`` (one fill per aggregate:
  ``a`` = ``f`` = ``l``), ``<symbol>@bookTicker`` (with ``e``, ``E``, ``T``); paths ``/ws``,
  ``/ws/<stream>``, ``/stream?streams=``; commands as spot.
- REST ``/fapi/v1/depth?symbol=&limit=`` (limit one of 5, 10, 20, 50, 100, 500, 1000, default
  500, another -> 400 code -1130; weight 2 / 5 / 10 / 20 by limit; body ``lastUpdateId E T
  bids asks``), ``/fapi/v1/exchangeInfo`` (weight 1; ``pricePrecision`` /
  ``quantityPrecision``, PRICE_FILTER ``tickSize``, LOT_SIZE ``stepSize``), ``/fapi/v1/ping``,
  ``/fapi/v1/time``; 2400 weight a minute per IP, then 429 + ``Retry-After`` and 418 bans as
  spot.
- Server pings every 180 s, pong deadline 600 s; 10 incoming messages a second; 1024 streams a
  connection; 24 h connection age. Each is a knob of :class:`BinanceUsdmOptions`.

- Signed orders (issue 17; :mod:`.binance_orders`): ``POST/GET/DELETE /fapi/v1/order``,
  ``GET /fapi/v1/openOrders``, ``DELETE /fapi/v1/allOpenOrders`` (answers ``{"code": 200,
  ...}``, no ids), and the dead man's switch ``POST /fapi/v1/countdownCancelAll``
  (``symbol``, ``countdownTime`` ms; 0 disarms) on ``gw.dead_man`` per key and symbol. A
  repeated ``newClientOrderId`` of an open order is ``-4116``.

Faults: as the binance dialect (``drop_delta``, ``duplicate_delta``, ``reorder_delta``,
``malformed_frame``, ``stale_snapshot``, ``snapshot_error``, ``snapshot_rate_limit``,
``snapshot_delay_ms``, ``disconnect``, ``stall``, ``stop_pings``, ``silence_channel``;
``bad_checksum`` refused). A dropped or held-back event breaks the ``pu`` link of the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tickpipe.gateway.dialects.binance import (
    BinanceDialect,
    BinanceOptions,
    binance_markets,
)
from tickpipe.venues.binance.endpoints import USDM, VenueSpec
from tickpipe.venues.binance.limits import USDM_LIMITS, Limits
from tickpipe.venues.binance.orders import USDM_ORDERS, OrderSpec

if TYPE_CHECKING:
    from tickpipe.gateway.markets import MarketSpec
    from tickpipe.gateway.server import Gateway

DEFAULT_DEPTH_LIMIT = 500  # Order-Book: "Default 500; Valid limits:[5, 10, 20, 50, 100, 500, 1000]"


@dataclass(frozen=True, slots=True)
class BinanceUsdmOptions(BinanceOptions):
    """Knobs of the binance-usdm dialect (``--dialect-option NAME=VALUE``); defaults are
    Binance USD-M's documented limits (``venues.binance.limits.USDM_LIMITS``); the meaning of
    each is :class:`~tickpipe.gateway.dialects.binance.BinanceOptions`'. docs/dialects.md.

    - ``ping_interval_s`` (180.0), ``pong_timeout_s`` (600.0), ``max_connection_age_s``
      (86400.0), ``max_incoming_per_s`` (10), ``max_streams_per_connection`` (1024),
      ``weight_per_window`` (2400) per ``weight_window_s`` (60.0), ``ban_after_429s`` (3),
      ``ban_s`` (120.0), ``depth_interval_ms`` (100).
    - ``orders_per_10s`` (300, USD-M's documented order limit per 10 s): new orders one API key
      may place in any 10 s, then 429 ``-1015``.
    - ``update_id_step`` (10): Binance update id per hub seq; 1 makes every event's ``U`` equal
      ``pu + 1`` (which USD-M does not promise). Costs nothing.
    """

    ping_interval_s: float = USDM_LIMITS.server_ping_interval_s
    pong_timeout_s: float = USDM_LIMITS.pong_timeout_s
    max_connection_age_s: float = USDM_LIMITS.ws_connection_lifetime_s
    max_incoming_per_s: int = USDM_LIMITS.ws_incoming_messages_per_s
    max_streams_per_connection: int = USDM_LIMITS.ws_streams_per_connection
    weight_per_window: int = USDM_LIMITS.request_weight_per_minute
    update_id_step: int = 10
    orders_per_10s: int = USDM_ORDERS.orders_per_10s


def binance_usdm_markets(markets: tuple[MarketSpec, ...]) -> tuple[MarketSpec, ...]:
    """The markets under their USD-M symbols (as spot: ``BTC-USD`` -> ``BTCUSDT``)."""
    return binance_markets(markets)


class BinanceUsdmDialect(BinanceDialect):
    """The binance-usdm dialect of one gateway; see the module docstring."""

    name = "binance-usdm"
    spec: ClassVar[VenueSpec] = USDM
    limits: ClassVar[Limits] = USDM_LIMITS
    options: ClassVar[type[BinanceOptions]] = BinanceUsdmOptions
    api_prefix: ClassVar[str] = "/fapi/v1"
    default_depth_limit: ClassVar[int] = DEFAULT_DEPTH_LIMIT
    order_spec: ClassVar[OrderSpec] = USDM_ORDERS

    def __init__(self, gw: Gateway) -> None:
        super().__init__(gw)
        opts = self.opts
        assert isinstance(opts, BinanceUsdmOptions)
        self.id_step = opts.update_id_step

    def depth_limit(self, raw: str | None) -> tuple[int | None, int, str | None]:
        """USD-M takes only its documented limits: another (or non-digits) is refused with
        -1130 and charged the smallest weight."""
        lim = self.limits
        if raw is None:
            return self.default_depth_limit, lim.snapshot_weight(self.default_depth_limit), None
        if raw.isascii() and raw.isdigit() and len(raw) <= 5 and int(raw) in USDM.snapshot_depths:
            return int(raw), lim.snapshot_weight(int(raw)), None
        valid = ", ".join(map(str, USDM.snapshot_depths))
        return (
            None,
            lim.snapshot_weight(USDM.snapshot_depths[0]),
            f"-1130 Data sent for parameter 'limit' is not valid: valid limits are {valid}.",
        )
