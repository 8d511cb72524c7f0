"""Bybit v5 public endpoints, topics, subscribe messages and heartbeat style. Pure.

Documented in the Bybit v5 API docs, https://bybit-exchange.github.io/docs/v5/ ("WebSocket ›
Connect", "Public › Orderbook / Trade / Ticker", "Market › Get Instruments Info").

A tickpipe channel maps to one topic (the depth is fixed at 200 levels)::

    orderbook:BTCUSDT -> orderbook.200.BTCUSDT   (100 ms pushes, spot and linear)
    trades:BTCUSDT    -> publicTrade.BTCUSDT
    ticker:BTCUSDT    -> tickers.BTCUSDT

Heartbeat: the client sends ``{"req_id":"..","op":"ping"}`` every 20 s (Bybit's advice) and
Bybit answers a pong; Bybit never pings. Continuity: ``Continuity.SEQ`` on ``u`` (the update id
of one topic: "Update ID, is a sequence", each delta is the previous ``u`` + 1); a snapshot
(sent after subscribing, and again whenever Bybit restarts or repairs the book) and any message
with ``u == 1`` (the service restarted) replace the book. Seeding: ``IN_BAND``; re-seeding one
book = unsubscribe + subscribe that one topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import msgspec

from tickpipe.errors import ConfigError
from tickpipe.protocol.normalised import Continuity, Seeding

BOOK_DEPTH = 200
KIND_TO_TOPIC: dict[str, str] = {
    "orderbook": f"orderbook.{BOOK_DEPTH}",
    "trades": "publicTrade",
    "ticker": "tickers",
}
TOPIC_TO_KIND: dict[str, str] = {v: k for k, v in KIND_TO_TOPIC.items()}

CLIENT_PING_INTERVAL_S = 20.0
"""Bybit: "we recommend that you send the ping heartbeat packet every 20 seconds"."""
PONG_TIMEOUT_S = 10.0
"""No pong (nor any frame) this long after a ping: the connection is dead."""


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """Plain data the generic shell needs about a venue (no behaviour)."""

    name: str
    category: Literal["spot", "linear"]
    stream_base_url: str
    stream_path: str
    rest_base_url: str
    instruments_path: str
    snapshot_path: str | None
    continuity: Continuity
    seeding: Seeding
    checksum: str | None
    heartbeat: Literal["client_text_ping", "client_json_ping", "server_ping", "channel"]
    client_ping_interval_s: float
    pong_timeout_s: float
    book_depth: int
    max_args_per_subscribe: int | None  # spot: 10 topics a request


BYBIT = VenueSpec(
    name="bybit",
    category="spot",
    stream_base_url="wss://stream.bybit.com",
    stream_path="/v5/public/spot",
    rest_base_url="https://api.bybit.com",
    instruments_path="/v5/market/instruments-info?category=spot",
    snapshot_path="/v5/market/orderbook",  # ?category=spot&symbol=..&limit=200
    continuity=Continuity.SEQ,
    seeding=Seeding.IN_BAND,
    checksum=None,
    heartbeat="client_json_ping",
    client_ping_interval_s=CLIENT_PING_INTERVAL_S,
    pong_timeout_s=PONG_TIMEOUT_S,
    book_depth=BOOK_DEPTH,
    max_args_per_subscribe=10,
)

BYBIT_LINEAR = VenueSpec(
    name="bybit-linear",
    category="linear",
    stream_base_url="wss://stream.bybit.com",
    stream_path="/v5/public/linear",
    rest_base_url="https://api.bybit.com",
    instruments_path="/v5/market/instruments-info?category=linear",
    snapshot_path="/v5/market/orderbook",
    continuity=Continuity.SEQ,
    seeding=Seeding.IN_BAND,
    checksum=None,
    heartbeat="client_json_ping",
    client_ping_interval_s=CLIENT_PING_INTERVAL_S,
    pong_timeout_s=PONG_TIMEOUT_S,
    book_depth=BOOK_DEPTH,
    max_args_per_subscribe=None,
)

VENUES = {v.name: v for v in (BYBIT, BYBIT_LINEAR)}


def stream_url(venue: VenueSpec, base: str | None = None) -> str:
    """The public stream URL; ``base`` (scheme://host:port) replaces the documented one."""
    return (base or venue.stream_base_url).rstrip("/") + venue.stream_path


def instruments_url(venue: VenueSpec, base: str | None = None) -> str:
    return (base or venue.rest_base_url).rstrip("/") + venue.instruments_path


def snapshot_url(venue: VenueSpec, symbol: str, base: str | None = None) -> str:
    root = (base or venue.rest_base_url).rstrip("/")
    return f"{root}/v5/market/orderbook?category={venue.category}&symbol={symbol}&limit=200"


def to_topic(channel: str) -> str:
    """``orderbook:BTCUSDT`` -> ``orderbook.200.BTCUSDT``; ConfigError names a bad channel."""
    kind, sep, symbol = channel.partition(":")
    if not sep or kind not in KIND_TO_TOPIC or not symbol or "." in symbol:
        raise ConfigError(
            f"channel {channel[:100]!r}: expected orderbook:SYMBOL, trades:SYMBOL or "
            "ticker:SYMBOL with a Bybit symbol such as BTCUSDT"
        )
    return f"{KIND_TO_TOPIC[kind]}.{symbol}"


def from_topic(topic: str) -> tuple[str, str] | None:
    """``orderbook.200.BTCUSDT`` -> (``orderbook:BTCUSDT``, ``BTCUSDT``); None if unmapped.
    Any ``orderbook.N`` depth maps (documented examples use 50)."""
    head, _, symbol = topic.rpartition(".")
    if head.startswith("orderbook.") and head[10:].isdigit():  # any depth: 1, 50, 200, 1000
        head = KIND_TO_TOPIC["orderbook"]
    kind = TOPIC_TO_KIND.get(head)
    if kind is None or not symbol:
        return None
    return f"{kind}:{symbol}", symbol


def _op_message(
    op: str, channels: Iterable[str], request_id: str | None, venue: VenueSpec
) -> bytes:
    args = [to_topic(c) for c in channels]
    if not args:
        raise ConfigError(f"a Bybit {op} needs at least one channel")
    cap = venue.max_args_per_subscribe
    if cap is not None and len(args) > cap:
        raise ConfigError(f"{venue.name}: at most {cap} topics a {op} request, got {len(args)}")
    body: dict[str, object] = {"op": op, "args": args}
    if request_id is not None:
        body["req_id"] = request_id
    return msgspec.json.encode(body)


def subscribe_message(
    channels: Iterable[str], request_id: str | None = None, venue: VenueSpec = BYBIT
) -> bytes:
    """``{"op":"subscribe","args":["orderbook.200.BTCUSDT"],"req_id":"7"}``."""
    return _op_message("subscribe", channels, request_id, venue)


def unsubscribe_message(
    channels: Iterable[str], request_id: str | None = None, venue: VenueSpec = BYBIT
) -> bytes:
    return _op_message("unsubscribe", channels, request_id, venue)


def ping_message(request_id: str | None = None) -> bytes:
    """``{"req_id":"100001","op":"ping"}`` (req_id optional)."""
    body: dict[str, str] = {"req_id": request_id} if request_id is not None else {}
    body["op"] = "ping"
    return msgspec.json.encode(body)
