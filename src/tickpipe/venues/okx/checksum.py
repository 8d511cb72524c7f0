"""OKX's order book checksum over an ``OrderBook`` of integer units. Pure.

Documented in the OKX API v5 reference, "Order book channel › Checksum": take the first 25
bids and the first 25 asks of the whole book AFTER applying the update, write each level as
``price:size`` with the strings as OKX sent them, interleave ``bid1:ask1:bid2:ask2:...`` (when
one side has fewer than 25 levels, the other side's remaining levels follow alone), and take
the CRC-32 of that text as a SIGNED 32-bit integer.

The book keeps integer units, not OKX's text. OKX writes every price and size in its shortest
decimal form ("30244", "0.08", "1.2112": no trailing zeros, no trailing point); every one of the
8,057 price and size strings in the recorded BTC-USDT session is minimal (checked in
``tests/venues/test_okx.py``). So the text is recovered exactly from units and the instrument's
decimals by :func:`minimal_text`, and every recorded checksum verifies from the book alone.

A checksum of 0 means "no check": OKX sends 0 on every ``books`` frame from 23 June 2026 (the
codec decodes it to ``checksum=None``); :func:`verify` accepts None and 0. A genuine CRC of 0
(1 in 2**32) is therefore never checked; that costs nothing measurable.
"""

from __future__ import annotations

import zlib

from tickpipe import hotpath
from tickpipe.protocol.book import BookSide, OrderBook
from tickpipe.protocol.instruments import format_units

_hot = hotpath.hot  # the compiled twin of checksum() (None: pure; see tickpipe.hotpath)

CHECKSUM_DEPTH = 25


def minimal_text(units: int, decimals: int) -> str:
    """Units -> OKX's shortest decimal text: (30244_0, 1) -> "30244", (8_000_000, 8) -> "0.08"."""
    text = format_units(units, decimals)
    if decimals:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _texts(side: BookSide, pd: int, sd: int) -> list[str]:
    levels = side.levels
    return [
        f"{minimal_text(p, pd)}:{minimal_text(levels[p], sd)}"
        for p in side.top_prices(CHECKSUM_DEPTH)
    ]


def checksum_string(book: OrderBook) -> str:
    """``bid1:ask1:bid2:ask2:...`` over the top 25 of each side, then the longer side's tail."""
    pd, sd = book.instrument.price_decimals, book.instrument.size_decimals
    bids, asks = _texts(book.bids, pd, sd), _texts(book.asks, pd, sd)
    n = min(len(bids), len(asks))
    parts = [x for pair in zip(bids[:n], asks[:n], strict=True) for x in pair]
    parts += bids[n:] or asks[n:]
    return ":".join(parts)


def signed32(crc: int) -> int:
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def checksum(book: OrderBook) -> int:
    """OKX's signed CRC-32 of the book (~25 µs for 25 + 25 levels; ~1 µs compiled)."""
    if _hot is not None:
        bids, asks, inst = book.bids, book.asks, book.instrument
        crc = _hot.top_crc(
            bids.levels,
            bids.prices,
            asks.levels,
            asks.prices,
            inst.price_decimals,
            inst.size_decimals,
            CHECKSUM_DEPTH,
            1,  # _hot.STYLE_OKX
        )
        if crc is not None:
            return signed32(crc)
    return signed32(zlib.crc32(checksum_string(book).encode()))


def verify(book: OrderBook, expected: int | None) -> bool:
    """True when ``expected`` matches, or is None/0 (OKX's "no check")."""
    return not expected or checksum(book) == expected
