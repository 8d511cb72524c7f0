"""OKX v5 public market data limits, as documented. Plain data, pure.

Sources (OKX API v5 reference, https://www.okx.com/docs-v5/en/):
- "Overview › WebSocket › Connect" and "Connection count limit" (connections, requests per
  connection, the 30 s idle cut, 64 KB subscribe messages);
- "Order Book Trading › Market Data › WS / Order book channel" (depths and push intervals);
- "Order Book Trading › Market Data › GET / Order book" and "Public Data › REST API › GET /
  Instruments" (REST rate limits: requests per 2 s, by IP).
"""

from __future__ import annotations

# -- WebSocket ------------------------------------------------------------------------------
WS_CONNECTS_PER_S_PER_IP = 3
"""New connections: 3 requests per second, per IP ("Connect")."""
WS_OPS_PER_HOUR_PER_CONNECTION = 480
"""subscribe + unsubscribe + login requests per connection per hour ("Connect"): a re-seed by
re-subscribing costs two of these, so at most ~240 re-seeds an hour per connection."""
WS_SUBSCRIBE_MESSAGE_MAX_BYTES = 64 * 1024
"""The args of one subscribe message must not exceed 64 KB in total ("Connect")."""
WS_IDLE_CUT_S = 30.0
"""OKX closes a connection with no subscription or no push for 30 s: send ``ping`` before."""
WS_MAX_STREAMS_PER_CONNECTION: int | None = None
"""No documented cap on public subscriptions per connection (the 64 KB message and the 480
ops an hour bound them in practice)."""
WS_FORCED_DISCONNECT_S: float | None = None
"""No documented periodic disconnect; OKX announces upgrades with ``event: notice`` 64008 and
closes the connection soon after."""

# -- book channels: (levels, push interval ms, login needed) ("Order book channel") --------
BOOK_CHANNELS: dict[str, tuple[int, int, bool]] = {
    "bbo-tbt": (1, 10, False),
    "books5": (5, 100, False),  # snapshots only
    "books": (400, 100, False),  # snapshot then incremental updates: tickpipe's book
    "books50-l2-tbt": (50, 10, True),  # VIP4 and up
    "books-l2-tbt": (400, 10, True),  # VIP5 and up
}
MAX_BOOK_DEPTH = 400
"""The ``books`` channel's snapshot is 400 levels a side; updates keep that window."""
BOOK_NO_CHANGE_HEARTBEAT_S = 60.0
"""With no book change for ~60 s OKX sends an update with empty asks/bids and
``seqId == prevSeqId`` to show the channel is alive ("Order book channel", seqId)."""
CHECKSUM_DEPTH = 25
CHECKSUM_ZERO_FROM = "2026-06-23"
"""From this date OKX sends ``checksum: 0`` on every ``books`` frame: 0 means no check."""

# -- REST (requests per 2 s window) ---------------------------------------------------------
REST_BOOKS_PER_2S_PER_IP = 40
"""GET /api/v5/market/books: 40 requests per 2 s, by IP; ``sz`` up to 400 levels."""
REST_BOOKS_MAX_DEPTH = 400
REST_INSTRUMENTS_PER_2S = 20
"""GET /api/v5/public/instruments: 20 requests per 2 s, by IP and instType."""
REST_RATE_LIMITED_CODE = "50011"
"""The error code OKX answers when a REST rate limit is exceeded (HTTP 429)."""
