"""Binance spot (``binance``) and USD-M futures (``binance-usdm``): documented URLs, paths,
stream names, subscribe messages, heartbeat style and book-sync rules, as plain data. Pure.

Sources (read 2026-07): spot ``web-socket-streams.md`` and ``rest-api.md`` of
github.com/binance/binance-spot-api-docs (commit a5e0bc3); USD-M
developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams and
.../market-data/rest-api/Order-Book.

A channel is ``orderbook:SYMBOL``, ``ticker:SYMBOL`` or ``trades:SYMBOL`` with the venue's own
symbol (``BTCUSDT``); Binance stream names use the symbol in lower case
(``btcusdt@depth@100ms``). ``--stream-url``/``--rest-url`` replace only scheme, host and port of
:attr:`VenueSpec.stream_base_url` / :attr:`VenueSpec.rest_base_url`; the paths here are appended
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import msgspec

from tickpipe.errors import ConfigError, FrameError
from tickpipe.protocol.normalised import Continuity, Seeding

KINDS = ("orderbook", "ticker", "trades")


class HeartbeatStyle(StrEnum):
    SERVER_PING = "server_ping"  # the server sends WebSocket pings; the client answers pong
    CLIENT_PING = "client_ping"  # the client sends a ping message (not Binance)
    CHANNEL = "channel"  # a heartbeat channel (not Binance)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """How the connection proves it is alive.

    Binance: the server sends a WebSocket ``ping`` frame every ``server_ping_interval_s``; the
    client must answer a ``pong`` with a copy of the ping's payload, or the server disconnects
    after ``pong_timeout_s``. No JSON heartbeat exists, so a client watchdog reads silence as
    "no frame (data or ping) for longer than ``server_ping_interval_s`` plus a margin".
    """

    style: HeartbeatStyle
    server_ping_interval_s: float | None
    pong_timeout_s: float | None
    client_ping_message: bytes | None = None
    client_ping_interval_s: float | None = None
    heartbeat_channel: str | None = None


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """One Binance market. Everything a client shell and a gateway dialect need to agree on."""

    name: str
    stream_base_url: str
    rest_base_url: str
    raw_stream_path: str  # /ws/<stream> (or /ws then SUBSCRIBE)
    combined_stream_path: str  # /stream?streams=a/b/c, frames wrapped {"stream","data"}
    snapshot_path: str
    instruments_path: str
    depth_suffix: str
    trades_suffix: str
    ticker_suffix: str
    continuity: Continuity
    seeding: Seeding
    heartbeat: Heartbeat
    snapshot_depths: tuple[int, ...]  # the depth ``limit`` values the snapshot endpoint takes
    default_snapshot_depth: int
    max_snapshot_depth: int
    checksum: str | None = None  # Binance defines no book checksum

    # -- channels <-> streams ------------------------------------------------------------
    def stream_name(self, channel: str) -> str:
        """``orderbook:BTCUSDT`` -> ``btcusdt@depth@100ms`` (ConfigError on a bad channel)."""
        kind, symbol = parse_channel(channel)
        suffix = {
            "orderbook": self.depth_suffix,
            "ticker": self.ticker_suffix,
            "trades": self.trades_suffix,
        }[kind]
        return symbol.lower() + suffix

    def channel_of_stream(self, stream: str) -> str:
        """``btcusdt@depth@100ms`` -> ``orderbook:BTCUSDT``; FrameError naming the stream when
        it is not one of this market's book, trade or ticker streams."""
        symbol, at, suffix = stream.partition("@")
        kind = {
            self.depth_suffix[1:]: "orderbook",
            self.trades_suffix[1:]: "trades",
            self.ticker_suffix[1:]: "ticker",
        }.get(suffix)
        if not at or not symbol or kind is None:
            raise FrameError(f"unknown stream {stream!r} for {self.name}", field="stream")
        return f"{kind}:{symbol.upper()}"

    # -- URLs ------------------------------------------------------------------------------
    def combined_stream_url(self, channels: list[str], base_url: str | None = None) -> str:
        """The combined-stream URL carrying ``channels`` (``/stream?streams=a/b``)."""
        streams = "/".join(self.stream_name(c) for c in channels)
        return f"{base_url or self.stream_base_url}{self.combined_stream_path}?streams={streams}"

    def snapshot_target(self, symbol: str, depth: int | None = None) -> str:
        """Path and query of the REST depth snapshot:
        ``/api/v3/depth?symbol=BTCUSDT&limit=1000``."""
        depth = self.default_snapshot_depth if depth is None else depth
        if depth not in self.snapshot_depths:
            ok = self.snapshot_depths
            allowed = f"{ok[0]}..{ok[-1]}" if len(ok) > 10 else ", ".join(map(str, ok))
            raise ConfigError(f"snapshot depth {depth}: {self.name} accepts {allowed}")
        return f"{self.snapshot_path}?symbol={symbol.upper()}&limit={depth}"

    # -- control messages (client -> venue) -------------------------------------------------
    def subscribe_message(self, channels: list[str], request_id: int) -> bytes:
        """``{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms"],"id":1}``; acked by
        ``{"result":null,"id":1}`` (:class:`~tickpipe.venues.binance.codec.CommandAck`)."""
        return _command("SUBSCRIBE", [self.stream_name(c) for c in channels], request_id)

    def unsubscribe_message(self, channels: list[str], request_id: int) -> bytes:
        return _command("UNSUBSCRIBE", [self.stream_name(c) for c in channels], request_id)

    def list_subscriptions_message(self, request_id: int) -> bytes:
        return msgspec.json.encode({"method": "LIST_SUBSCRIPTIONS", "id": request_id})


def _command(method: str, params: list[str], request_id: int) -> bytes:
    if type(request_id) is not int or not -(2**63) <= request_id < 2**63:
        # documented: "64-bit signed integer" (strings and null are accepted too; we use ints)
        raise ConfigError(f"request id must be a 64-bit signed integer, got {request_id!r}")
    return msgspec.json.encode({"method": method, "params": params, "id": request_id})


def parse_channel(channel: str) -> tuple[str, str]:
    """``"orderbook:BTCUSDT"`` -> ``("orderbook", "BTCUSDT")``; ConfigError names the channel."""
    kind, colon, symbol = channel.partition(":")
    if not colon or kind not in KINDS:
        raise ConfigError(f"channel {channel!r}: expected orderbook:, ticker: or trades:SYMBOL")
    if not symbol.isascii() or not symbol.isalnum():
        raise ConfigError(f"channel {channel!r}: a Binance symbol is letters and digits")
    return kind, symbol.upper()


# Spot: ping every 20 s, pong within a minute (web-socket-streams.md, "General WSS information").
SPOT_HEARTBEAT = Heartbeat(HeartbeatStyle.SERVER_PING, 20.0, 60.0)
# USD-M: ping every 3 minutes, pong within 10 minutes (usds-margined-futures/websocket-market-
# streams, "Connect").
USDM_HEARTBEAT = Heartbeat(HeartbeatStyle.SERVER_PING, 180.0, 600.0)

SPOT = VenueSpec(
    name="binance",
    stream_base_url="wss://stream.binance.com:9443",
    rest_base_url="https://api.binance.com",
    raw_stream_path="/ws",
    combined_stream_path="/stream",
    snapshot_path="/api/v3/depth",
    instruments_path="/api/v3/exchangeInfo",
    depth_suffix="@depth@100ms",
    trades_suffix="@trade",
    ticker_suffix="@bookTicker",
    # drop u <= lastUpdateId; the first has U <= lastUpdateId + 1 <= u; then U == previous u + 1
    continuity=Continuity.RANGE,
    seeding=Seeding.REST,
    heartbeat=SPOT_HEARTBEAT,
    snapshot_depths=tuple(range(1, 5001)),  # rest-api.md /api/v3/depth: limit 1..5000
    default_snapshot_depth=1000,
    max_snapshot_depth=5000,
)

USDM = VenueSpec(
    name="binance-usdm",
    stream_base_url="wss://fstream.binance.com",
    rest_base_url="https://fapi.binance.com",
    raw_stream_path="/ws",
    combined_stream_path="/stream",
    snapshot_path="/fapi/v1/depth",
    instruments_path="/fapi/v1/exchangeInfo",
    depth_suffix="@depth@100ms",
    trades_suffix="@aggTrade",
    ticker_suffix="@bookTicker",
    # drop u < lastUpdateId; the first has U <= lastUpdateId <= u; then pu == previous u
    continuity=Continuity.LINK,
    seeding=Seeding.REST,
    heartbeat=USDM_HEARTBEAT,
    snapshot_depths=(5, 10, 20, 50, 100, 500, 1000),  # Order-Book: "Valid limits"
    default_snapshot_depth=1000,
    max_snapshot_depth=1000,
)

VENUES: dict[str, VenueSpec] = {SPOT.name: SPOT, USDM.name: USDM}
