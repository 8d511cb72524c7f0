"""Binance's documented limits, spot and USD-M, as plain data. Pure.

Every figure cites where Binance documents it (read 2026-07):

- [spot-rest] github.com/binance/binance-spot-api-docs ``rest-api.md`` (commit a5e0bc3):
  "LIMITS" / "IP Limits", "HTTP Return Codes", "Order book" (``GET /api/v3/depth``),
  "Exchange information" (``GET /api/v3/exchangeInfo``).
- [spot-enums] same repository, ``enums.md`` "Rate limiters (rateLimitType)"; and
  ``CHANGELOG.md`` 2023-08-25 ("REQUEST_WEIGHT ... adjusted to 6,000 every minute").
- [spot-ws] same repository, ``web-socket-streams.md`` "General WSS information" and
  "WebSocket Limits".
- [usdm-depth] developers.binance.com/docs/derivatives/usds-margined-futures/market-data/
  rest-api/Order-Book; [usdm-info] .../market-data/rest-api/Exchange-Information (its
  ``rateLimits`` example: REQUEST_WEIGHT 2400 a minute); [usdm-ws] .../websocket-market-streams.

The live budget is also in each exchangeInfo body (``rateLimits``) and in every REST response's
``X-MBX-USED-WEIGHT-1M`` header; a scheduler should trust those over these defaults when present.
"""

from __future__ import annotations

from dataclasses import dataclass

from tickpipe.errors import ConfigError

RETRY_AFTER_HEADER = "Retry-After"
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
# [spot-rest] "HTTP 429 return code is used when breaking a request rate limit."
STATUS_RATE_LIMITED = 429
# [spot-rest] "HTTP 418 return code is used when an IP has been auto-banned for continuing to
# send requests after receiving 429 codes." Bans "scale in duration ... from 2 minutes to
# 3 days". "A Retry-After header is sent with a 418 or 429 responses and will give the number of
# seconds required to wait, in the case of a 429, to prevent a ban, or, in the case of a 418,
# until the ban is over."
STATUS_BANNED = 418
# [spot-rest] "HTTP 403 return code is used when a WAF ... rule has been violated. This can
# indicate a rate limit violation or a security block."
STATUS_WAF = 403
BAN_MIN_S = 120.0
BAN_MAX_S = 3 * 86_400.0


@dataclass(frozen=True, slots=True)
class Limits:
    """One market's documented limits. Units are in the names."""

    request_weight_per_minute: int
    exchange_info_weight: int
    max_snapshot_depth: int
    ws_incoming_messages_per_s: int  # client -> server: pings, pongs and JSON commands count
    ws_streams_per_connection: int
    ws_connections_per_5min_per_ip: int | None  # None: not documented for this market
    ws_connection_lifetime_s: float  # the venue closes every connection after this
    server_ping_interval_s: float
    pong_timeout_s: float
    depth_weights: tuple[tuple[int, int], ...]  # (largest limit, weight), ascending
    # the window ``request_weight_per_minute`` is counted over, aligned on the wall clock
    # ([spot-enums] REQUEST_WEIGHT interval MINUTE, intervalNum 1); shorter only for rehearsals
    # against the dialect's ``weight_window_s`` option
    weight_window_s: float = 60.0

    def snapshot_weight(self, depth: int) -> int:
        """Request weight of one depth snapshot of ``depth`` levels (ConfigError if out of
        range)."""
        for upto, weight in self.depth_weights:
            if 1 <= depth <= upto:
                return weight
        raise ConfigError(f"snapshot depth {depth} is above the documented maximum")

    def snapshots_per_minute(self, depth: int) -> int:
        """How many ``depth``-level snapshots one window's weight budget pays for (with
        nothing else spent): spot 1000 levels -> 6000 // 50 = 120 a minute."""
        return self.request_weight_per_minute // self.snapshot_weight(depth)


SPOT_LIMITS = Limits(
    # [spot-enums] REQUEST_WEIGHT, MINUTE, intervalNum 1, limit 6000 (since 2023-08-25).
    request_weight_per_minute=6000,
    # [spot-rest] GET /api/v3/exchangeInfo "Weight: 20".
    exchange_info_weight=20,
    # [spot-rest] GET /api/v3/depth "limit ... Maximum: 5000".
    max_snapshot_depth=5000,
    # [spot-ws] "WebSocket connections have a limit of 5 incoming messages per second."
    ws_incoming_messages_per_s=5,
    # [spot-ws] "A single connection can listen to a maximum of 1024 streams."
    ws_streams_per_connection=1024,
    # [spot-ws] "There is a limit of 300 connections per attempt every 5 minutes per IP."
    ws_connections_per_5min_per_ip=300,
    # [spot-ws] "A single connection to stream.binance.com is only valid for 24 hours".
    ws_connection_lifetime_s=86_400.0,
    # [spot-ws] "The WebSocket server will send a ping frame every 20 seconds", and
    # disconnects when no pong comes back "within a minute".
    server_ping_interval_s=20.0,
    pong_timeout_s=60.0,
    # [spot-rest] GET /api/v3/depth weight by limit: 1-100: 5, 101-500: 25, 501-1000: 50,
    # 1001-5000: 250.
    depth_weights=((100, 5), (500, 25), (1000, 50), (5000, 250)),
)

USDM_LIMITS = Limits(
    # [usdm-info] rateLimits: REQUEST_WEIGHT, MINUTE, intervalNum 1, limit 2400.
    request_weight_per_minute=2400,
    # [usdm-info] GET /fapi/v1/exchangeInfo "Request Weight 1".
    exchange_info_weight=1,
    # [usdm-depth] "Valid limits:[5, 10, 20, 50, 100, 500, 1000]".
    max_snapshot_depth=1000,
    # [usdm-ws] "WebSocket connections have a limit of 10 incoming messages per second."
    ws_incoming_messages_per_s=10,
    # [usdm-ws] "A single connection can listen to a maximum of 1024 streams."
    ws_streams_per_connection=1024,
    # [usdm-ws] documents no per-IP connection-attempt limit for market streams.
    ws_connections_per_5min_per_ip=None,
    # [usdm-ws] "A single connection is only valid for 24 hours".
    ws_connection_lifetime_s=86_400.0,
    # [usdm-ws] "The websocket server will send a ping frame every 3 minutes. If the websocket
    # server does not receive a pong frame back from the connection within a 10 minute
    # period, the connection will be disconnected."
    server_ping_interval_s=180.0,
    pong_timeout_s=600.0,
    # [usdm-depth] weight by limit: 5, 10, 20, 50: 2; 100: 5; 500: 10; 1000: 20. (The valid
    # limits are checked by endpoints.USDM.snapshot_target; this is the weight of each band.)
    depth_weights=((50, 2), (100, 5), (500, 10), (1000, 20)),
)

LIMITS: dict[str, Limits] = {"binance": SPOT_LIMITS, "binance-usdm": USDM_LIMITS}


def retry_after_s(header: str | None, *, default_s: float = 60.0) -> float:
    """Seconds to wait from a 429/418 ``Retry-After`` header (documented as a number of
    seconds). Missing or unreadable: ``default_s`` (one full weight window). Never negative."""
    if header is None:
        return default_s
    text = header.strip()
    if not text.isascii() or not text.isdigit():
        return default_s
    return float(int(text))
