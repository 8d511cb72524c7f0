"""Coinbase Exchange (legacy, ``wss://ws-feed.exchange.coinbase.com``) ``level2`` frames ->
``protocol.normalised``: the shape of the recorded 2021 sessions.

``{"type": "snapshot", "product_id", "bids": [[price, size], ...], "asks": [...]}`` then
``{"type": "l2update", "product_id", "changes": [[side buy|sell, price, size], ...], "time"}``;
size is the new total at the price, ``"0"`` (any zeros) removes it. No sequence numbers: the
legacy ``level2`` channel guaranteed delivery. Advanced Trade ``level2`` (:mod:`.codec`) carries
the same levels as ``l2_data`` events.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from tickpipe.errors import FrameError
from tickpipe.protocol.decode_errors import DECODE_ERRORS
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, RawLevel
from tickpipe.venues.kraken.rfc3339 import parse_ns


class _Snapshot(msgspec.Struct, tag="snapshot", tag_field="type", frozen=True):
    product_id: str
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


class _L2Update(msgspec.Struct, tag="l2update", tag_field="type", frozen=True):
    product_id: str
    changes: list[tuple[Literal["buy", "sell"], str, str]]
    time: str | None = None


_decoder = msgspec.json.Decoder(_Snapshot | _L2Update)
_NUM = re.compile(r"\d+(?:\.\d+)?\Z")


def _levels(levels: list[tuple[str, str]], channel: str, side: str) -> list[RawLevel]:
    for i, (p, s) in enumerate(levels):
        if not _NUM.match(p) or not _NUM.match(s):
            raise FrameError(
                "a level must be two decimal strings", channel=channel, field=f"{side}[{i}]"
            )
    return list(levels)


def decode_level2(data: bytes | str) -> BookSnapshot | BookDelta:
    """One legacy ``snapshot`` or ``l2update`` frame (``last_id`` None: no ids)."""
    try:
        msg = _decoder.decode(data)
    except DECODE_ERRORS as exc:
        raise FrameError(f"legacy level2 frame: {str(exc)[:200]}") from None
    ch = f"orderbook:{msg.product_id}"
    if isinstance(msg, _Snapshot):
        return BookSnapshot(
            msg.product_id, None, _levels(msg.bids, ch, "bids"), _levels(msg.asks, ch, "asks")
        )
    bids: list[RawLevel] = []
    asks: list[RawLevel] = []
    for i, (side, p, s) in enumerate(msg.changes):
        if not _NUM.match(p) or not _NUM.match(s):
            raise FrameError(
                "price and size must be decimal strings", channel=ch, field=f"changes[{i}]"
            )
        (bids if side == "buy" else asks).append((p, s))
    ts = None
    if msg.time is not None:
        try:
            ts = parse_ns(msg.time)
        except ValueError as exc:
            raise FrameError(str(exc), channel=ch, field="time") from None
    return BookDelta(msg.product_id, bids, asks, ts_ns=ts)
