"""Kraken WebSocket v1 ``book`` frames -> ``protocol.normalised`` (the recorded 2021 sessions).

v1 is still documented (docs.kraken.com ... spot-websocket-v1/book, book-checksum-v1) and frozen;
tickpipe streams v2 (:mod:`.codec`), and keeps this decoder to replay the recorded sessions and
to check that both shapes give the same book and the same checksums.

Shapes (arrays, not objects): a snapshot ``[chanId, {"as": [...], "bs": [...]}, "book-1000",
"ADA/XBT"]``; an update ``[chanId, {"a": [...]}, "book-1000", "ADA/XBT"]`` or with both sides
``[chanId, {"a": [...]}, {"b": [...], "c": "993647625"}, "book-1000", "ADA/XBT"]`` (the checksum
``c`` is in the last map). A level is ``[price, volume, timestamp]`` with an optional 4th
element ``"r"`` (a republished level: one that re-entered the subscribed depth); all texts.
Within a side, later entries are newer: apply in order (never sort by timestamp).
"""

from __future__ import annotations

import re

import msgspec

from tickpipe.errors import FrameError
from tickpipe.protocol.decode_errors import DECODE_ERRORS
from tickpipe.protocol.normalised import BookDelta, BookSnapshot, RawLevel

_decoder = msgspec.json.Decoder(list[int | str | dict[str, list[list[str]] | str]])
_NUM = re.compile(r"\d+(?:\.\d+)?\Z")
_TS = re.compile(r"(\d+)(?:\.(\d{1,9}))?\Z")


def _level(lv: object, channel: str, field: str) -> tuple[RawLevel, int]:
    if not isinstance(lv, list) or len(lv) not in (3, 4):
        raise FrameError(
            "a level is [price, volume, timestamp(, 'r')]", channel=channel, field=field
        )
    price, vol, ts = lv[0], lv[1], lv[2]
    if not _NUM.match(price):
        raise FrameError(f"bad price {price[:40]!r}", channel=channel, field=f"{field}.price")
    if not _NUM.match(vol):
        raise FrameError(f"bad volume {vol[:40]!r}", channel=channel, field=f"{field}.volume")
    m = _TS.match(ts)
    if m is None:
        raise FrameError(f"bad timestamp {ts[:40]!r}", channel=channel, field=f"{field}.ts")
    if len(lv) == 4 and lv[3] != "r":
        raise FrameError("4th element must be 'r'", channel=channel, field=f"{field}.flag")
    ns = int(m.group(1)) * 1_000_000_000 + int(((m.group(2) or "") + "000000000")[:9])
    return (price, vol), ns


def decode_book(data: bytes | str) -> BookSnapshot | BookDelta:
    """One v1 ``book-N`` frame -> a snapshot or a delta (``ts_ns``: the newest level's time)."""
    try:
        msg = _decoder.decode(data)
    except DECODE_ERRORS as exc:
        raise FrameError(f"v1 book frame: {exc}".split(" - at ")[0][:200]) from None
    if len(msg) < 4 or not isinstance(msg[-1], str) or not isinstance(msg[-2], str):
        raise FrameError("v1 book frame: expected [id, {...}(, {...}), 'book-N', 'PAIR']")
    symbol, name = msg[-1], msg[-2]
    channel = f"orderbook:{symbol}"
    if not name.startswith("book-"):
        raise FrameError(f"not a book frame: {name[:40]!r}", channel=channel, field="name")
    maps = msg[1:-2]
    if not maps or len(maps) > 2 or not all(isinstance(m, dict) for m in maps):
        raise FrameError("expected one or two maps of levels", channel=channel)
    sides: dict[str, list[RawLevel]] = {}
    checksum: int | None = None
    newest = 0
    for m in maps:
        assert isinstance(m, dict)
        for key, val in m.items():
            if key == "c":
                if not isinstance(val, str) or not val.isdigit() or int(val) > 0xFFFFFFFF:
                    raise FrameError("bad checksum", channel=channel, field="c")
                checksum = int(val)
                continue
            if key not in ("a", "b", "as", "bs") or not isinstance(val, list):
                raise FrameError(f"unexpected key {key[:20]!r}", channel=channel, field=key)
            out = sides.setdefault(key, [])
            for i, lv in enumerate(val):
                level, ns = _level(lv, channel, f"{key}[{i}]")
                out.append(level)
                newest = max(newest, ns)
    ts = newest or None
    if "as" in sides or "bs" in sides:
        if "a" in sides or "b" in sides:
            raise FrameError("snapshot and update keys mixed", channel=channel)
        return BookSnapshot(symbol, None, sides.get("bs", []), sides.get("as", []), checksum, ts)
    if checksum is None:
        raise FrameError("update without a checksum", channel=channel, field="c")
    return BookDelta(symbol, sides.get("b", []), sides.get("a", []), checksum=checksum, ts_ns=ts)
