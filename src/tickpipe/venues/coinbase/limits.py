"""Coinbase Advanced Trade's documented limits (WebSocket market data and public REST).

Each value cites where it is documented; where Coinbase documents no number, the value is None.
"""

from __future__ import annotations

# WebSocket connections per second per IP. docs.cdp.coinbase.com/coinbase-app/advanced-trade-
# apis/websocket/websocket-rate-limits says 8; the coinbase-business copy of the page says 750.
# tickpipe keeps the stricter figure.
CONNECTIONS_PER_S_PER_IP = 8

# "unauthenticated messages are rate-limited at 8 per second per IP address" (same page):
# subscribe/unsubscribe without a JWT count here.
UNAUTHENTICATED_MESSAGES_PER_S_PER_IP = 8

# "You must send a subscribe message within 5 seconds or your connection is closed"
# (advanced-trade websocket overview).
SUBSCRIBE_DEADLINE_S = 5.0

# "Most channels close within 60-90 seconds if no updates are sent. Subscribe to heartbeats to
# keep all subscriptions open." Heartbeats: "receive heartbeats messages every second"
# (websocket-channels, Heartbeats Channel).
CHANNEL_IDLE_CLOSE_S = 60.0
HEARTBEAT_INTERVAL_S = 1.0

# level2 sends the whole book in its snapshot event: no depth option, no documented maximum.
BOOK_DEPTHS: tuple[int, ...] = ()
MAX_BOOK_DEPTH: int | None = None

# Products per subscription / subscriptions per connection: not documented.
MAX_PRODUCTS_PER_CONNECTION: int | None = None

# Forced disconnect interval: none documented.
FORCED_DISCONNECT_S: float | None = None

# Public REST endpoints (products, market data): 10 requests per second per IP
# (docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/rest-api-rate-limits; private
# endpoints 30/s per user). Books seed in band, never over REST.
REST_PUBLIC_REQUESTS_PER_S = 10
REST_BOOK_SNAPSHOT_COST: int | None = None
