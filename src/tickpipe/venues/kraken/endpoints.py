"""Kraken spot WebSocket v2: documented endpoints, channel mapping, subscribe builders, heartbeat
style, continuity and seeding. Plain data, pure.

Sources: docs.kraken.com/exchange/api-reference/spot-websocket (endpoints: ``wss://ws.kraken.com/v2``
public, v1 at ``wss://ws.kraken.com``), .../spot-websocket-v2/book (depths 10/25/100/500/1000,
default 10; snapshot on subscribe), .../guides/websockets/book-checksum-v2 (integrity),
REST ``https://api.kraken.com/0/public/AssetPairs`` (instruments).
"""

from __future__ import annotations

from dataclasses import dataclass

from tickpipe.protocol.normalised import Continuity, Seeding
from tickpipe.venues.kraken.codec import (
    SubscribeParams,
    SubscribeRequest,
    UnsubscribeRequest,
    encode_request,
)


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """How to reach and keep a venue (plain data; the shell reads it, the gateway serves it)."""

    name: str
    stream_base: str  # scheme://host[:port]; --stream-url replaces only this part
    stream_path: str  # appended unchanged
    rest_base: str
    instruments_path: str
    snapshot_path: str | None  # REST book snapshot; None: the venue seeds in band
    continuity: Continuity
    seeding: Seeding
    checksum: str | None  # the integrity function's name (tickpipe.venues.<name>.checksum)
    channel_topics: dict[str, str]  # tickpipe kind -> the venue's channel
    book_depths: tuple[int, ...]
    default_book_depth: int
    heartbeat: str  # how liveness shows
    server_heartbeat_interval_s: float | None  # expected gap between heartbeats when idle
    client_ping_interval_s: float | None  # None: the client need not ping


VENUE = VenueSpec(
    name="kraken",
    stream_base="wss://ws.kraken.com",
    stream_path="/v2",
    rest_base="https://api.kraken.com",
    instruments_path="/0/public/AssetPairs",
    snapshot_path=None,
    continuity=Continuity.NONE,  # no ids: integrity rests on the CRC-32
    seeding=Seeding.IN_BAND,  # the subscribe answer is followed by a snapshot
    checksum="crc32_top10",
    channel_topics={"orderbook": "book", "trades": "trade", "ticker": "ticker"},
    book_depths=(10, 25, 100, 500, 1000),
    default_book_depth=1000,  # tickpipe asks for the deepest book (Kraken's default is 10)
    # "heartbeat": the server sends {"channel":"heartbeat"} about once a second when no other
    # channel updates flow (on any subscribed connection). A client may also send
    # {"method":"ping"} (answered by "pong"); not required for liveness.
    heartbeat="server heartbeat channel (~1/s when idle), optional client ping method",
    server_heartbeat_interval_s=1.0,
    client_ping_interval_s=None,
)


def topic(channel: str) -> tuple[str, str]:
    """``orderbook:BTC/USD`` -> (``book``, ``BTC/USD``); ValueError for another kind."""
    kind, sep, symbol = channel.partition(":")
    if not sep or not symbol or kind not in VENUE.channel_topics:
        raise ValueError(f"channel {channel!r} is not orderbook|trades|ticker:SYMBOL")
    return VENUE.channel_topics[kind], symbol


def _grouped(channels: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for ch in channels:
        kraken_channel, symbol = topic(ch)
        groups.setdefault(kraken_channel, []).append(symbol)
    return groups


def subscribe_messages(
    channels: list[str], first_req_id: int, *, depth: int = VENUE.default_book_depth
) -> list[tuple[int, bytes]]:
    """One ``subscribe`` request per Kraken channel (``params.channel`` is one name, ``symbol``
    a list): ``[(req_id, bytes), ...]`` with consecutive request ids from ``first_req_id``."""
    if depth not in VENUE.book_depths:
        raise ValueError(f"depth {depth} is not one of {VENUE.book_depths}")
    out = []
    for n, (kc, symbols) in enumerate(_grouped(channels).items()):
        params = SubscribeParams(kc, symbols, depth if kc == "book" else None, None)
        out.append((first_req_id + n, encode_request(SubscribeRequest(params, first_req_id + n))))
    return out


def unsubscribe_messages(
    channels: list[str], first_req_id: int, *, depth: int = VENUE.default_book_depth
) -> list[tuple[int, bytes]]:
    """The matching ``unsubscribe`` requests (the book's depth must match the subscription)."""
    out = []
    for n, (kc, symbols) in enumerate(_grouped(channels).items()):
        params = SubscribeParams(kc, symbols, depth if kc == "book" else None, None)
        out.append((first_req_id + n, encode_request(UnsubscribeRequest(params, first_req_id + n))))
    return out


def ping_message(req_id: int) -> bytes:
    return b'{"method":"ping","req_id":%d}' % req_id
