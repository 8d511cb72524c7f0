"""Kraken's book checksum (WebSocket v1 and v2: the same algorithm) and the depth rule.

Documented in "Book checksum (WebSocket v2)" (docs.kraken.com/exchange/guides/websockets/
book-checksum-v2) and its v1 twin:

- process every level of a message, then truncate the book to the subscribed depth (levels that
  fall out of scope are never sent with qty 0): :func:`truncate`;
- take the top 10 asks, price low to high, then the top 10 bids, high to low; for each level
  write price and qty with the pair's precision, remove the ``.``, strip leading zeros, and
  append price then qty; CRC-32 of asks string + bids string, unsigned: :func:`checksum`.

"The pair's precision" is the number of decimals the venue writes on the wire: v2's
``instrument`` channel gives it (``price_precision``, ``qty_precision``); in v1 the texts carry it.
It is NOT always AssetPairs' ``pair_decimals``: in the recorded 2021 v1 sessions ETH/CHF had
``pair_decimals`` 2 while the feed wrote ``2192.68000`` (5 decimals), and the checksums are over
the 5-decimal text. So the precision is a parameter here (default: the book's instrument
decimals), and :func:`wire_precision` reads it from a snapshot's texts.
"""

from __future__ import annotations

import zlib

from tickpipe import hotpath
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument, decimals_of, format_units
from tickpipe.protocol.normalised import BookSnapshot

CHECKSUM_DEPTH = 10  # "always calculated over the top 10 price levels regardless of depth"

_hot = hotpath.hot  # the compiled twin of checksum() (None: pure; see tickpipe.hotpath)


def _digits(units: int, decimals: int, precision: int) -> str:
    """``units`` of ``10**-decimals`` written with ``precision`` decimals, '.' removed, leading
    zeros stripped: that is the decimal text of the value in units of ``10**-precision``. A
    value that needs more digits than ``precision`` keeps them (its checksum then cannot match:
    an honest mismatch, never a rounding)."""
    if precision > decimals:
        units *= 10 ** (precision - decimals)
    elif precision < decimals:
        q, r = divmod(units, 10 ** (decimals - precision))
        if r == 0:
            units = q
    return str(units) if units else ""


def checksum_string(
    book: OrderBook, price_precision: int | None = None, qty_precision: int | None = None
) -> str:
    """The text whose CRC-32 Kraken sends: top-10 asks (ascending) then top-10 bids
    (descending), each ``price`` then ``qty`` digits."""
    inst = book.instrument
    pd, sd = inst.price_decimals, inst.size_decimals
    pp = pd if price_precision is None else price_precision
    qp = sd if qty_precision is None else qty_precision
    parts: list[str] = []
    if pp == pd and qp == sd:  # the usual case: the digits are the units' own
        for side in (book.asks, book.bids):
            for price, size in side.top(CHECKSUM_DEPTH):
                parts.append(str(price))
                parts.append(str(size))
        return "".join(parts)
    for side in (book.asks, book.bids):
        for price, size in side.top(CHECKSUM_DEPTH):
            parts.append(_digits(price, pd, pp))
            parts.append(_digits(size, sd, qp))
    return "".join(parts)


def checksum(
    book: OrderBook, price_precision: int | None = None, qty_precision: int | None = None
) -> int:
    """Kraken's CRC-32 (unsigned) of ``book``'s top 10 levels (see the module docstring)."""
    if _hot is not None:
        inst = book.instrument
        pd, sd = inst.price_decimals, inst.size_decimals
        if (price_precision is None or price_precision == pd) and (
            qty_precision is None or qty_precision == sd
        ):  # the units' own digits: what the compiled twin writes
            bids, asks = book.bids, book.asks
            crc = _hot.top_crc(
                bids.levels, bids.prices, asks.levels, asks.prices, pd, sd, CHECKSUM_DEPTH, 2
            )  # 2: _hot.STYLE_KRAKEN
            if crc is not None:
                return crc  # type: ignore[no-any-return]
    return zlib.crc32(checksum_string(book, price_precision, qty_precision).encode())


def truncate(book: OrderBook, depth: int) -> int:
    """Drop the levels beyond ``depth`` on each side (the documented rule after each update);
    returns how many were dropped."""
    dropped = 0
    for side in (book.bids, book.asks):
        extra = len(side) - depth
        if extra > 0:
            prices = side.prices  # ascending: bids' worst first, asks' worst last
            worst = prices[:extra] if side.descending else prices[-extra:]
            side.apply([(p, 0) for p in worst])
            dropped += extra
    return dropped


def wire_precision(snapshot: BookSnapshot) -> tuple[int, int]:
    """(price, qty) decimals the venue wrote in a snapshot: the most seen on each field."""
    levels = [*snapshot.bids, *snapshot.asks]
    if not levels:
        return 0, 0
    return max(decimals_of(p) for p, _ in levels), max(decimals_of(q) for _, q in levels)


def with_precision(inst: Instrument, price_precision: int, qty_precision: int) -> Instrument:
    """The same grid written with more decimals (``tick_size`` ``"0.01"`` -> ``"0.01000"``), so
    that the book formats (and the VTS/1 views print) what the venue writes. A precision below
    the grid's own decimals is a ValueError."""
    pd, sd = inst.price_decimals, inst.size_decimals
    if price_precision < pd or qty_precision < sd:
        raise ValueError(
            f"{inst.symbol}: precision ({price_precision}, {qty_precision}) is coarser than the "
            f"grid ({inst.tick_size}, {inst.lot_size})"
        )
    tick = format_units(inst.tick_units * 10 ** (price_precision - pd), price_precision)
    lot = format_units(inst.lot_units * 10 ** (qty_precision - sd), qty_precision)
    return Instrument(inst.symbol, inst.asset_class, tick, lot)
