"""VTS/1 frames as typed values: decode, validate, encode, sign. No I/O.

Server frames (gateway -> client) are msgspec structs tagged by ``type``; client frames
(client -> gateway) are tagged by ``action``. One msgspec decoder per direction turns a text
frame into a struct in C; any failure becomes a single :class:`~tickpipe.errors.FrameError`
that names the channel (when it can be read) and the field.

Prices and sizes stay strings here; :func:`parse_levels` turns a side of a delta or snapshot
into integer units, checking the instrument's grid.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import re
from typing import Annotated, Literal

import msgspec

from tickpipe import hotpath
from tickpipe.errors import ConfigError, FrameError
from tickpipe.protocol.decode_errors import DECODE_ERRORS, utf8_error
from tickpipe.protocol.instruments import Instrument

_hot = hotpath.hot  # the compiled twin of parse_levels (None: pure; see tickpipe.hotpath)

# -- server -> client ---------------------------------------------------------------------

RawLevel = tuple[str, str]

# Constraints msgspec checks in C while decoding: seq and ts are non-negative, a checksum is an
# unsigned 32-bit CRC. (That a data frame's channel is of its own kind is checked after decoding,
# with str.startswith: a msgspec ``pattern`` would cost ~0.4 µs a frame.)
Seq = Annotated[int, msgspec.Meta(ge=0)]
Nanos = Annotated[int, msgspec.Meta(ge=0)]
Crc32 = Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]


class Delta(msgspec.Struct, tag="delta", tag_field="type", frozen=True, gc=False):
    channel: str
    seq: Seq
    ts: Nanos
    bids: list[RawLevel]
    asks: list[RawLevel]
    checksum: Crc32 | None = None


class Ticker(msgspec.Struct, tag="ticker", tag_field="type", frozen=True, gc=False):
    channel: str
    seq: Seq
    ts: Nanos
    bid: str
    bid_size: str
    ask: str
    ask_size: str
    last: str
    volume: str


class Trade(msgspec.Struct, tag="trade", tag_field="type", frozen=True, gc=False):
    channel: str
    seq: Seq
    ts: Nanos
    id: str
    price: str
    size: str
    side: Literal["buy", "sell"]


class Authenticated(msgspec.Struct, tag="authenticated", tag_field="type", frozen=True):
    session: str
    heartbeat_ms: Annotated[int, msgspec.Meta(gt=0)]
    max_channels: Annotated[int, msgspec.Meta(ge=0)]


class Subscribed(msgspec.Struct, tag="subscribed", tag_field="type", frozen=True):
    channels: list[str]
    id: int | None = None


class Unsubscribed(msgspec.Struct, tag="unsubscribed", tag_field="type", frozen=True):
    channels: list[str]
    id: int | None = None


class ErrorFrame(msgspec.Struct, tag="error", tag_field="type", frozen=True):
    code: str
    message: str = ""
    channel: str | None = None
    id: int | None = None


class CancelOnDisconnectAck(
    msgspec.Struct, tag="cancel_on_disconnect", tag_field="type", frozen=True
):
    enabled: bool


ServerFrame = (
    Delta
    | Ticker
    | Trade
    | Authenticated
    | Subscribed
    | Unsubscribed
    | ErrorFrame
    | CancelOnDisconnectAck
)
DataFrame = Delta | Ticker | Trade

_CHANNEL_PREFIX: dict[type, str] = {Delta: "orderbook:", Ticker: "ticker:", Trade: "trades:"}

# -- client -> server ---------------------------------------------------------------------


class Auth(msgspec.Struct, tag="auth", tag_field="action", frozen=True):
    key: str
    ts: int
    sig: str


class Subscribe(msgspec.Struct, tag="subscribe", tag_field="action", frozen=True):
    channels: list[str]
    id: int | None = None


class Unsubscribe(msgspec.Struct, tag="unsubscribe", tag_field="action", frozen=True):
    channels: list[str]
    id: int | None = None


class CancelOnDisconnect(
    msgspec.Struct, tag="cancel_on_disconnect", tag_field="action", frozen=True
):
    enabled: bool


ClientFrame = Auth | Subscribe | Unsubscribe | CancelOnDisconnect

# -- REST bodies --------------------------------------------------------------------------


class Snapshot(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    seq: Seq
    ts: Nanos
    bids: list[RawLevel]
    asks: list[RawLevel]


class InstrumentInfo(msgspec.Struct, frozen=True):
    symbol: str
    asset_class: str
    tick_size: str
    lot_size: str


class InstrumentList(msgspec.Struct, frozen=True):
    instruments: list[InstrumentInfo]


# -- decode -------------------------------------------------------------------------------

_server_decoder = msgspec.json.Decoder(ServerFrame)
_client_decoder = msgspec.json.Decoder(ClientFrame)
_snapshot_decoder = msgspec.json.Decoder(Snapshot)
_instruments_decoder = msgspec.json.Decoder(InstrumentList)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()

# msgspec <= 0.22 raises UnicodeDecodeError (not a MsgspecError) for invalid UTF-8 inside a
# string; 0.23 raises DecodeError for the strings it decodes and does not look inside the ones it
# skips (unknown fields), and a type error can come first. So UTF-8 is checked here, by us, with
# the same answer whichever msgspec is installed (VTS/1 section 1: frames are UTF-8).
#
# JSON nested deeper than the interpreter's recursion limit (~1,000 levels: `[[[[...]]]]`, a
# few KB) makes msgspec raise RecursionError, which is not a MsgspecError either: before it
# was caught here, one such frame dropped the whole connection (every book stale) where one
# `bad_frame` was due. Every decode_* below turns it into a FrameError.
# (The helpers are shared with every venue codec: protocol/decode_errors.py.)
_DECODE_ERRORS = DECODE_ERRORS
_utf8_decode = codecs.utf_8_decode
_utf8_error = utf8_error


_PATH_RE = re.compile(r"at `\$\.?([^`]*)`")
_MISSING_RE = re.compile(r"missing required field `([^`]*)`")
_LEVEL_RE = re.compile(r"\[(\d+)\]\[([01])\]$")


def _field_name(msg: str) -> str | None:
    """The offending field from a msgspec message: ``bids[2][0]`` -> ``bids[2].price``."""
    m = _PATH_RE.search(msg)
    path = m.group(1) if m else ""
    missing = _MISSING_RE.search(msg)
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
    path = _LEVEL_RE.sub(lambda g: f"[{g.group(1)}].{('price', 'size')[int(g.group(2))]}", path)
    return path or None


def _frame_error(exc: Exception, data: bytes | str, what: str) -> FrameError:
    """Turn a msgspec error into a FrameError naming channel and field (slow path only)."""
    utf8 = _utf8_error(data, what)
    if utf8 is not None:
        return utf8
    if isinstance(exc, RecursionError):  # re-decoding it below would only recurse again
        return FrameError(f"{what} is nested too deeply to decode")
    msg = str(exc)
    field = _field_name(msg)
    reason = _PATH_RE.sub("", msg).strip().rstrip("-").strip() or msg
    channel: str | None = None
    try:
        obj = _any_decoder.decode(data)
    except RecursionError:
        return FrameError(f"{what} is nested too deeply to decode")
    except _DECODE_ERRORS:
        return FrameError(f"{what} is not valid JSON: {msg}", field=None)
    if isinstance(obj, dict):
        ch = obj.get("channel")
        if isinstance(ch, str):
            channel = ch[:200]  # a hostile channel name must not bloat every log line
    else:
        return FrameError(f"{what} is not a JSON object", field=None)
    return FrameError(reason, channel=channel, field=field)


_CHANNEL_RE = re.compile(rb'"channel"\s*:\s*"([a-z]+:[A-Za-z0-9._\-]{1,40})"')


def _with_channel_guess(exc: FrameError, data: bytes) -> FrameError:
    """A server frame that is not even JSON (truncated, say) still usually names its channel:
    find it (slow path only), so that the book it belonged to can resync at once instead of at
    its next delta, and the report says which channel was hit."""
    m = _CHANNEL_RE.search(data[:4096])
    if m is None:
        return exc
    return FrameError(exc.reason, channel=m.group(1).decode(), field=exc.field)


def decode_server_frame(data: bytes | str) -> ServerFrame:
    """Decode one gateway text frame; FrameError on anything that is not valid VTS/1.

    The error names the frame's channel when it can be read, even from a frame that is not
    valid JSON."""
    try:
        frame: ServerFrame = _server_decoder.decode(data)
        if data.__class__ is not str:  # msgspec skips unknown fields without checking them
            _utf8_decode(data, "strict", True)  # type: ignore[arg-type]  # not str here
    except _DECODE_ERRORS as exc:
        err = _frame_error(exc, data, "frame")
        if err.channel is None:
            raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
            err = _with_channel_guess(err, raw)
        raise err from None
    if isinstance(frame, (Delta, Ticker, Trade)):
        channel = frame.channel
        prefix = _CHANNEL_PREFIX[type(frame)]
        if not channel.startswith(prefix) or len(channel) == len(prefix):
            raise FrameError(
                f"a {type(frame).__name__.lower()} frame needs a {prefix}SYMBOL channel",
                channel=channel[:200],
                field="channel",
            )
    return frame


def decode_client_frame(data: bytes | str) -> ClientFrame:
    """Decode one client text frame (the gateway's side)."""
    try:
        cframe: ClientFrame = _client_decoder.decode(data)
    except _DECODE_ERRORS as exc:
        raise _frame_error(exc, data, "frame") from None
    utf8 = _utf8_error(data, "frame")
    if utf8 is not None:
        raise utf8
    return cframe


def decode_snapshot(data: bytes | str) -> Snapshot:
    try:
        snap: Snapshot = _snapshot_decoder.decode(data)
    except _DECODE_ERRORS as exc:
        raise _frame_error(exc, data, "snapshot body") from None
    utf8 = _utf8_error(data, "snapshot body")
    if utf8 is not None:
        raise utf8
    return snap


def decode_instruments(data: bytes | str) -> list[Instrument]:
    try:
        body = _instruments_decoder.decode(data)
    except _DECODE_ERRORS as exc:
        raise _frame_error(exc, data, "instruments body") from None
    utf8 = _utf8_error(data, "instruments body")
    if utf8 is not None:
        raise utf8
    out: list[Instrument] = []
    for n, i in enumerate(body.instruments):
        try:
            out.append(Instrument(i.symbol, i.asset_class, i.tick_size, i.lot_size))
        except ConfigError as exc:  # a bad grid from the wire is the peer's error, not ours
            raise FrameError(str(exc), field=f"instruments[{n}]") from None
    return out


def encode(frame: msgspec.Struct | dict[str, object]) -> bytes:
    """Encode any frame or body as compact JSON bytes."""
    return _encoder.encode(frame)


def parse_levels(
    levels: list[RawLevel], instrument: Instrument, channel: str, side: str
) -> list[tuple[int, int]]:
    """Convert ``[[price, size], ...]`` to integer units, validating the grid.

    A price must be > 0 and on the tick grid, a size >= 0 (0 removes the level) and on the lot
    grid. Raises FrameError naming ``channel`` and the field (``"bids[3].price"``). The fast path
    parses without building field names (prices through the instrument's bounded cache); only a
    bad level pays for the precise error.

    Both texts are looked up in the instrument's bounded caches inline (a hit is one dict
    ``get``); only a miss calls the parsing method, which validates and fills the cache.
    (A comprehension with ``cache.get(s) or size_of(s)`` was 0.4 µs a delta slower: a size of
    0, a removal, is falsy and took the method call every time.) Measured in
    ``benchmarks/breakdown.py``, stage 2: 3.9 -> ~2.5 µs a frame with the size cache.

    With the compiled hot path (``tickpipe.hotpath``) ``_hot.parse_side`` parses the whole side
    in C; it returns None for anything it does not take (a malformed or off-grid level, units
    beyond 63 bits, a level that is not a list or tuple of two str) and this reference decides,
    so the errors are always the ones below.
    """
    if _hot is not None:
        fast: list[tuple[int, int]] | None = _hot.parse_side(
            levels,
            instrument.price_decimals,
            instrument.size_decimals,
            instrument.tick_units,
            instrument.lot_units,
        )
        if fast is not None:
            return fast
        # declined (a bad level, or units beyond 63 bits): the reference below decides
    prices = instrument._price_cache
    sizes = instrument._size_cache
    price_of = instrument.price_units_fast
    size_of = instrument.size_units_fast
    out: list[tuple[int, int]] = []
    try:
        for p, s in levels:
            pu = prices.get(p)  # a price is never 0: None is the only miss
            if pu is None:
                pu = price_of(p)
            su = sizes.get(s)
            if su is None:
                su = size_of(s)
            out.append((pu, su))
        return out
    except (ValueError, TypeError):
        pass  # find the first bad level and name it
    _raise_level_error(levels, instrument, channel, side)
    raise AssertionError("unreachable")  # pragma: no cover


def _raise_level_error(
    levels: list[RawLevel], instrument: Instrument, channel: str, side: str
) -> None:
    """Slow path of :func:`parse_levels`: raise the FrameError for the first bad level."""
    for i, level in enumerate(levels):
        where = f"{side}[{i}]"
        if not isinstance(level, (tuple, list)) or len(level) != 2:
            raise FrameError("a level must be [price, size]", channel=channel, field=where)
        p, s = level
        if instrument.price_units(p, channel=channel, field=f"{where}.price") == 0:
            raise FrameError("price must be > 0", channel=channel, field=f"{where}.price")
        instrument.size_units(s, channel=channel, field=f"{where}.size")
    raise FrameError("invalid levels", channel=channel, field=side)  # pragma: no cover


# -- channels -----------------------------------------------------------------------------

CHANNEL_KINDS = ("orderbook", "ticker", "trades")


def split_channel(channel: str) -> tuple[str, str]:
    """``"orderbook:AAPL"`` -> ``("orderbook", "AAPL")``; ValueError when not ``KIND:SYMBOL``."""
    kind, sep, symbol = channel.partition(":")
    if not sep or kind not in CHANNEL_KINDS or not symbol:
        raise ValueError(
            f"channel {channel!r} is not KIND:SYMBOL with KIND one of {', '.join(CHANNEL_KINDS)}"
        )
    return kind, symbol


# -- signing (sections 3 and 7) ----------------------------------------------------------

STREAM_PATH = "/v1/stream"


def hmac_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign_stream_auth(secret: str, ts_ms: int) -> str:
    """``sig`` of the auth frame: HMAC-SHA256(secret, f"{ts_ms}GET/v1/stream")."""
    return hmac_hex(secret, f"{ts_ms}GET{STREAM_PATH}")


def auth_frame(key: str, secret: str, ts_ms: int) -> Auth:
    return Auth(key=key, ts=ts_ms, sig=sign_stream_auth(secret, ts_ms))


def sign_rest(secret: str, ts_ms: int, method: str, path_with_query: str, body: str = "") -> str:
    """``X-VT-SIGN``: HMAC-SHA256(secret, ts + METHOD + path-with-query + body)."""
    return hmac_hex(secret, f"{ts_ms}{method.upper()}{path_with_query}{body}")


def rest_headers(
    key: str, secret: str, ts_ms: int, method: str, path_with_query: str, body: str = ""
) -> dict[str, str]:
    return {
        "X-VT-KEY": key,
        "X-VT-TS": str(ts_ms),
        "X-VT-SIGN": sign_rest(secret, ts_ms, method, path_with_query, body),
    }


def verify_signature(expected_hex: str, given_hex: str) -> bool:
    return hmac.compare_digest(expected_hex, given_hex.lower() if given_hex else "")
