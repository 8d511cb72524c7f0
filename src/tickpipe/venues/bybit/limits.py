"""Bybit v5 public market data limits, as documented. Plain data, pure.

Sources (https://bybit-exchange.github.io/docs/v5/): "WebSocket › Connect" (IP limits, args
limits, heartbeat), "Public › Orderbook" (depths, push intervals), "Rate Limit" (REST, by IP),
"Market › Get Orderbook" (REST depth).
"""

from __future__ import annotations

# -- WebSocket ("Connect") -------------------------------------------------------------------
WS_CONNECTS_PER_5MIN_PER_IP = 500
"""Do not open more than 500 connections in 5 minutes, counted per WebSocket domain."""
WS_MAX_CONNECTIONS_PER_IP_PER_CATEGORY = 1000
"""Market data connections per IP, per category (spot, linear, inverse, option)."""
WS_SPOT_MAX_ARGS_PER_REQUEST = 10
"""Spot: at most 10 topics in one subscribe request."""
WS_MAX_ARGS_CHARS_PER_CONNECTION = 21_000
"""One public connection's subscribed ``args`` may total at most 21,000 characters (~900
``orderbook.200.SYMBOL`` topics); shard past it."""
WS_PING_INTERVAL_S = 20.0
"""Send ``{"op":"ping"}`` every 20 s to keep the connection (Bybit's recommendation)."""
WS_FORCED_DISCONNECT_S: float | None = None
"""No documented periodic disconnect for public streams."""
WS_SUBSCRIBE_RATE: float | None = None
"""No documented subscribe-message rate for public streams (the args limits above apply)."""

# -- order book depths: push interval in ms ("Orderbook") ------------------------------------
BOOK_DEPTHS_MS: dict[str, dict[int, int]] = {
    "spot": {1: 10, 50: 20, 200: 100, 1000: 200},  # spot 200: 100 ms since Bybit's 2026-03-18 docs
    "linear": {1: 10, 50: 20, 200: 100, 1000: 200},
}
BOOK_DEPTH = 200
"""tickpipe subscribes ``orderbook.200.SYMBOL`` on both categories."""
LEVEL1_RESNAPSHOT_S = 3.0
"""Depth 1 only: with no change for 3 s a snapshot is pushed again with the same ``u``."""

# -- REST ("Rate Limit", "Get Orderbook") -----------------------------------------------------
REST_REQUESTS_PER_5S_PER_IP = 600
"""600 requests within any 5 s window per IP across HTTP endpoints; past it Bybit answers 403
"access too frequently" and blocks the IP for at least 10 minutes (no 429 with Retry-After)."""
REST_IP_BAN_S = 600.0
REST_ORDERBOOK_MAX_DEPTH = {"spot": 200, "linear": 500}
"""GET /v5/market/orderbook ``limit``: spot 1-200, linear/inverse 1-500."""
REST_INSTRUMENTS_PAGE_MAX = 1000
"""GET /v5/market/instruments-info ``limit`` (linear pages with ``nextPageCursor``; spot
answers in one page)."""
