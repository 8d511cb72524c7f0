"""Kraken's documented limits (spot, WebSocket v2 and public REST). Plain data.

Each value cites where it is documented; where Kraken documents no number, the value is None
and the comment says what Kraken does instead.
"""

from __future__ import annotations

# Book depths a subscription may ask for; default 10.
# docs.kraken.com/exchange/api-reference/spot-websocket-v2/book ("depth: one of 10, 25, 100,
# 500, 1000", "Default: 10").
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
MAX_BOOK_DEPTH = 1000

# The checksum covers the top 10 levels "regardless of subscription depth".
# docs.kraken.com/exchange/guides/websockets/book-checksum-v2
CHECKSUM_DEPTH = 10

# Connection attempts: "Cloudflare imposes a connection/re-connection rate limit (per IP
# address) of approximately 150 attempts per rolling 10 minutes. If this is exceeded, the IP is
# banned for 10 minutes." Kraken WebSockets API docs, "General Considerations" (v1 site
# docs.kraken.com/websockets; the v2 overview refers to the same Cloudflare front).
CONNECT_ATTEMPTS_PER_WINDOW = 150
CONNECT_WINDOW_S = 600.0
CONNECT_BAN_S = 600.0

# Subscribe/unsubscribe (and any request) message rate: dynamic, "varies depending on system
# load"; on excess the server answers an error ("Exceeded msg rate") — no fixed number.
# docs.kraken.com/api/docs/guides/spot-ratelimits. tickpipe paces requests itself (below).
SUBSCRIBE_MESSAGES_PER_S: float | None = None
SUGGESTED_REQUESTS_PER_S = 5.0  # our pacing, not Kraken's number: one symbol list per request

# Streams (symbols x channels) per connection: not documented (no limit published).
MAX_SUBSCRIPTIONS_PER_CONNECTION: int | None = None

# Heartbeat: "heartbeat ... sent approximately once every second in the absence of any other
# channel updates" (spot-websocket-v2/heartbeat). A watchdog may call a book stale after a few
# seconds of total silence.
HEARTBEAT_INTERVAL_S = 1.0

# Forced disconnect interval: none documented (Kraken does not cut connections on a schedule).
FORCED_DISCONNECT_S: float | None = None

# Public REST (AssetPairs, the instruments): "public endpoints ... rate limited per IP: about
# one call per second" (docs.kraken.com/api/docs/guides/spot-rest-ratelimits; the per-key
# counter applies to private calls only). Books are seeded in band, never over REST.
REST_PUBLIC_CALLS_PER_S = 1.0
REST_BOOK_SNAPSHOT_COST: int | None = None  # books seed in band (no REST snapshot)

# Private REST (orders, issue 17). The REST call counter per API key: "Starter: max 15,
# -0.33/sec; Intermediate: 20, -0.5/sec; Pro: 20, -1/sec"; Ledger/trade history calls +2, other
# private calls +1, "except AddOrder, CancelOrder which operate on a different limiter"
# (docs.kraken.com/api/docs/guides/spot-rest-ratelimits). Past it: EAPI:Rate limit exceeded.
REST_PRIVATE_COUNTER_MAX = 15.0
REST_PRIVATE_DECAY_PER_S = 0.33

# The trading engine's counter, per pair: "Starter 60 (-1/sec), Intermediate 125 (-2.34/sec),
# Pro 180 (-3.75/sec)"; AddOrder +1; CancelOrder +8/+6/+5/+4/+2/+1 for an order younger than
# 5/10/15/45/90/300 s. Past it: EOrder:Rate limit exceeded. Open orders per pair: Starter 60,
# Intermediate 80, Pro 225 (docs.kraken.com/api/docs/guides/spot-ratelimits).
TRADING_COUNTER_MAX = 60.0
TRADING_DECAY_PER_S = 1.0
MAX_OPEN_ORDERS_PER_PAIR = 60

# The dead man's switch (CancelAllOrdersAfter): "The recommended use is to make a call every 15
# to 30 seconds, providing a timeout of 60 seconds" (docs.kraken.com/api-reference/trading/
# cancel-all-orders-after-x); timeout in whole seconds, 0 disables.
DEAD_MAN_RECOMMENDED_REFRESH_S = 20.0
DEAD_MAN_RECOMMENDED_TIMEOUT_S = 60
