"""Coinbase Advanced Trade market data: documented endpoints, channel mapping, subscribe
builders, heartbeat style, continuity and seeding. Plain data, pure.

Sources: docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-overview
(``wss://advanced-trade-ws.coinbase.com``; subscribe ``{"type": "subscribe", "product_ids":
[...], "channel": "level2", "jwt": ...}``, one channel per message; JWT optional for public
channels, "for the most reliable connection, authenticate"), .../websocket-channels (level2 ->
``l2_data``, market_trades, ticker, heartbeats: "most channels close within 60-90 seconds if no
updates are sent. Subscribe to heartbeats to keep all subscriptions open"), REST
``GET https://api.coinbase.com/api/v3/brokerage/market/products`` (public products).
"""

from __future__ import annotations

from dataclasses import dataclass

from tickpipe.protocol.normalised import Continuity, Seeding
from tickpipe.venues.coinbase.codec import SubscribeRequest, UnsubscribeRequest, encode_request


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """How to reach and keep a venue (plain data; the shell reads it, the gateway serves it)."""

    name: str
    stream_base: str  # scheme://host[:port]; --stream-url replaces only this part
    stream_path: str  # appended unchanged ("" : the root)
    rest_base: str
    instruments_path: str
    snapshot_path: str | None  # None: books seed in band
    continuity: Continuity
    seeding: Seeding
    checksum: str | None
    channel_topics: dict[str, str]  # tickpipe kind -> the subscribe channel
    heartbeat: str
    server_heartbeat_interval_s: float | None
    client_ping_interval_s: float | None


VENUE = VenueSpec(
    name="coinbase",
    stream_base="wss://advanced-trade-ws.coinbase.com",
    stream_path="",
    rest_base="https://api.coinbase.com",
    instruments_path="/api/v3/brokerage/market/products",
    snapshot_path=None,
    continuity=Continuity.CONNECTION,  # sequence_num counts every message of the connection
    seeding=Seeding.IN_BAND,  # level2 sends a snapshot event first
    checksum=None,
    channel_topics={"orderbook": "level2", "trades": "market_trades", "ticker": "ticker"},
    heartbeat="heartbeats channel, one message a second (subscribe it on every connection)",
    server_heartbeat_interval_s=1.0,
    client_ping_interval_s=None,
)

HEARTBEATS_CHANNEL = "heartbeats"


def topic(channel: str) -> tuple[str, str]:
    """``orderbook:BTC-USD`` -> (``level2``, ``BTC-USD``); ValueError for another kind."""
    kind, sep, symbol = channel.partition(":")
    if not sep or not symbol or kind not in VENUE.channel_topics:
        raise ValueError(f"channel {channel!r} is not orderbook|trades|ticker:SYMBOL")
    return VENUE.channel_topics[kind], symbol


def _grouped(channels: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for ch in channels:
        name, symbol = topic(ch)
        groups.setdefault(name, []).append(symbol)
    return groups


def subscribe_messages(
    channels: list[str], *, heartbeats: bool = True, jwt: str | None = None
) -> list[bytes]:
    """One ``subscribe`` per Coinbase channel (Coinbase takes one channel a message and has no
    request ids: acks come as a ``subscriptions`` message listing everything subscribed). With
    ``heartbeats`` the list starts with the ``heartbeats`` subscription (keeps channels open)."""
    out = []
    if heartbeats:
        out.append(encode_request(SubscribeRequest(HEARTBEATS_CHANNEL, [], jwt)))
    for name, ids in _grouped(channels).items():
        out.append(encode_request(SubscribeRequest(name, ids, jwt)))
    return out


def unsubscribe_messages(channels: list[str], *, jwt: str | None = None) -> list[bytes]:
    return [
        encode_request(UnsubscribeRequest(name, ids, jwt))
        for name, ids in _grouped(channels).items()
    ]
