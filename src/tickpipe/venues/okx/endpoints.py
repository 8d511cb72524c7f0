"""OKX v5 public endpoints, channel mapping, subscribe messages and heartbeat style. Pure.

Documented in the OKX API v5 reference, https://www.okx.com/docs-v5/en/ ("Overview ›
WebSocket", "Order Book Trading › Market Data › WS / Order book channel", "Public Data › REST
API / Get instruments").

A tickpipe channel ``KIND:SYMBOL`` maps to one OKX subscription argument::

    orderbook:BTC-USDT  ->  {"channel": "books",   "instId": "BTC-USDT"}   (400 levels, 100 ms)
    trades:BTC-USDT     ->  {"channel": "trades",  "instId": "BTC-USDT"}
    ticker:BTC-USDT     ->  {"channel": "tickers", "instId": "BTC-USDT"}

Heartbeat: the client sends the text ``ping`` and OKX answers the text ``pong``; OKX closes a
connection on which nothing was pushed for 30 s, so a client pings after
``CLIENT_PING_INTERVAL_S`` of silence and treats no ``pong`` within ``PONG_TIMEOUT_S`` as a
dead connection. OKX itself never pings.

Book integrity: ``Continuity.LINK`` (an update's ``prevSeqId`` is the previous ``seqId``; the
snapshot has ``prevSeqId == -1``; see :func:`tickpipe.venues.okx.codec.follows` for the two
documented exceptions) and the checksum of :mod:`.checksum` where it is non-zero.
``Seeding.IN_BAND``: the snapshot arrives on the socket after subscribing; re-seeding one book
means unsubscribing and subscribing that one ``books`` argument again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import msgspec

from tickpipe.errors import ConfigError
from tickpipe.protocol.normalised import Continuity, Seeding

Kind = Literal["orderbook", "trades", "ticker"]

KIND_TO_CHANNEL: dict[str, str] = {"orderbook": "books", "trades": "trades", "ticker": "tickers"}
CHANNEL_TO_KIND: dict[str, str] = {v: k for k, v in KIND_TO_CHANNEL.items()}

CLIENT_PING_INTERVAL_S = 20.0
"""Send ``ping`` after this long without a frame (OKX cuts a connection silent for 30 s)."""
PONG_TIMEOUT_S = 10.0
"""No ``pong`` (nor any frame) this long after a ``ping``: the connection is dead."""
REQUEST_ID_MAX_LEN = 32
"""OKX's optional request ``id``: up to 32 alphanumerics, echoed in the ``event`` answer."""


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """Plain data the generic shell needs about a venue (no behaviour)."""

    name: str
    stream_base_url: str  # scheme://host:port, replaced by --stream-url
    stream_path: str  # appended unchanged
    rest_base_url: str  # replaced by --rest-url
    instruments_path: str  # with its query
    snapshot_path: str | None  # REST book (not needed to seed an IN_BAND venue)
    continuity: Continuity
    seeding: Seeding
    checksum: str | None  # name of the integrity check, None where the venue has none
    heartbeat: Literal["client_text_ping", "client_json_ping", "server_ping", "channel"]
    client_ping: str | None  # exact text the client sends
    client_ping_interval_s: float | None
    pong_timeout_s: float | None
    book_depth: int  # levels the book channel carries


VENUE = VenueSpec(
    name="okx",
    stream_base_url="wss://ws.okx.com:8443",
    stream_path="/ws/v5/public",
    rest_base_url="https://www.okx.com",
    instruments_path="/api/v5/public/instruments?instType=SPOT",
    snapshot_path="/api/v5/market/books",  # ?instId=BTC-USDT&sz=400 (no seqId: not for seeding)
    continuity=Continuity.LINK,
    seeding=Seeding.IN_BAND,
    checksum="okx_crc32_top25",
    heartbeat="client_text_ping",
    client_ping="ping",
    client_ping_interval_s=CLIENT_PING_INTERVAL_S,
    pong_timeout_s=PONG_TIMEOUT_S,
    book_depth=400,
)


def stream_url(base: str | None = None) -> str:
    """The public stream URL; ``base`` (scheme://host:port) replaces the documented one."""
    return (base or VENUE.stream_base_url).rstrip("/") + VENUE.stream_path


def instruments_url(base: str | None = None, inst_type: str = "SPOT") -> str:
    root = (base or VENUE.rest_base_url).rstrip("/")
    return f"{root}/api/v5/public/instruments?instType={inst_type}"


def snapshot_url(symbol: str, depth: int = 400, base: str | None = None) -> str:
    root = (base or VENUE.rest_base_url).rstrip("/")
    return f"{root}/api/v5/market/books?instId={symbol}&sz={depth}"


def split_channel(channel: str) -> tuple[str, str]:
    """``"orderbook:BTC-USDT"`` -> ``("orderbook", "BTC-USDT")``; ConfigError names it if bad."""
    kind, sep, symbol = channel.partition(":")
    if not sep or kind not in KIND_TO_CHANNEL or not symbol:
        raise ConfigError(
            f"channel {channel[:100]!r}: expected orderbook:SYMBOL, trades:SYMBOL or "
            "ticker:SYMBOL with an OKX instId such as BTC-USDT"
        )
    return kind, symbol


def to_arg(channel: str) -> dict[str, str]:
    """A tickpipe channel -> OKX's subscription argument."""
    kind, symbol = split_channel(channel)
    return {"channel": KIND_TO_CHANNEL[kind], "instId": symbol}


def from_arg(okx_channel: str, inst_id: str) -> str | None:
    """OKX's ``arg`` -> a tickpipe channel, or None for a channel tickpipe does not map."""
    kind = CHANNEL_TO_KIND.get(okx_channel)
    return None if kind is None else f"{kind}:{inst_id}"


def _check_id(request_id: str | None) -> None:
    if request_id is not None and not (
        0 < len(request_id) <= REQUEST_ID_MAX_LEN and request_id.isascii() and request_id.isalnum()
    ):
        raise ConfigError(f"OKX request id {request_id[:40]!r}: 1-32 ASCII letters or digits")


def _op_message(op: str, channels: Iterable[str], request_id: str | None) -> bytes:
    _check_id(request_id)
    args = [to_arg(c) for c in channels]
    if not args:
        raise ConfigError(f"an OKX {op} needs at least one channel")
    body: dict[str, object] = {"id": request_id} if request_id is not None else {}
    body["op"] = op
    body["args"] = args
    return msgspec.json.encode(body)


def subscribe_message(channels: Iterable[str], request_id: str | None = None) -> bytes:
    """``{"id":"7","op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}``."""
    return _op_message("subscribe", channels, request_id)


def unsubscribe_message(channels: Iterable[str], request_id: str | None = None) -> bytes:
    return _op_message("unsubscribe", channels, request_id)


PING_MESSAGE = b"ping"
PONG_MESSAGE = b"pong"
