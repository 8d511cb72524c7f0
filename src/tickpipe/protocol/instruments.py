"""Instruments and exact fixed-point numbers.

Prices and sizes travel as decimal strings (VTS/1 section 2). Inside tickpipe they are plain
``int``s counted in units of the instrument's last decimal place: with ``tick_size="0.01"`` the
price ``"189.12"`` is ``18912``; with ``lot_size="0.001"`` the size ``"0.350"`` is ``350``. Integer
keys hash and compare fast and never drift; strings exist only at the edges (decode, display,
checksum).

Parsing is strict: ASCII digits, one optional point with at least one digit on each side, no
sign, no exponent, no spaces, no ``_``, no other Unicode digits. Extra trailing zeros beyond the
instrument's decimals are accepted (another gateway may write ``"189.120"``); any other extra
digit is off the grid and rejected.

Knobs, the bounds of two per-instrument caches of the hot path (each emptied when full and
refilled; every entry was parsed by the exact code below, so a hit is never wrong):

- :data:`PRICE_CACHE_MAX` (1,024): price text -> units behind :meth:`Instrument.price_units_fast`.
  Prices near the top of a book repeat, so most lookups hit. Worst case ~150 KiB an instrument.
- :data:`SIZE_CACHE_MAX` (1,024): size text -> units behind :meth:`Instrument.size_units_fast`.
  A hit is one dict lookup (~0.03 µs) against ~0.26 µs for :func:`parse_units`; sizes repeat
  less than prices (in the benchmark corpus ~85 % hit). Worst case ~150 KiB an instrument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tickpipe.errors import ConfigError, FrameError

ASSET_CLASSES = ("crypto", "equity", "metal", "fx")

PRICE_CACHE_MAX = 1024
SIZE_CACHE_MAX = 1024


def decimals_of(step: str) -> int:
    """Digits after the point of a tick or lot size as written: "0.50" -> 2, "1" -> 0."""
    _, dot, frac = step.partition(".")
    return len(frac) if dot else 0


def parse_units(text: str, decimals: int) -> int:
    """Parse a non-negative decimal string into integer units of ``10**-decimals``.

    Raises ValueError (with a short reason) for anything that is not a plain non-negative decimal,
    or that has non-zero digits beyond ``decimals``.
    """
    if type(text) is not str:
        if not isinstance(text, str):
            raise ValueError(f"expected a decimal string, got {type(text).__name__}")
        text = str(text)  # a str subclass is read as its text (as the level caches hit it)
    if not text.isascii():  # str.isdigit() alone would take "١٢" or "²"
        raise ValueError(f"{text!r} is not a non-negative decimal string")
    whole, dot, frac = text.partition(".")
    if not whole.isdigit():
        raise ValueError(f"{text!r} is not a non-negative decimal string")
    if not dot:
        return int(whole) * int(10**decimals)
    if not frac.isdigit():
        raise ValueError(f"{text!r} is not a non-negative decimal string")
    n = len(frac)
    if n == decimals:
        return int(whole + frac)
    if n < decimals:
        return int(whole + frac) * int(10 ** (decimals - n))
    if frac[decimals:].strip("0"):
        raise ValueError(f"{text!r} has more than {decimals} decimals")
    return int(whole + frac[:decimals])


def format_units(units: int, decimals: int) -> str:
    """Fixed-point text with exactly ``decimals`` digits after the point (VTS/1 section 2)."""
    if decimals == 0:
        return str(units)
    if units < 0:
        return "-" + format_units(-units, decimals)
    digits = str(units).rjust(decimals + 1, "0")
    return f"{digits[:-decimals]}.{digits[-decimals:]}"


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable symbol with its grid. Build with :meth:`from_wire`."""

    symbol: str
    asset_class: str
    tick_size: str
    lot_size: str
    price_decimals: int = field(init=False)
    size_decimals: int = field(init=False)
    tick_units: int = field(init=False)
    lot_units: int = field(init=False)
    _price_cache: dict[str, int] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    _size_cache: dict[str, int] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        pd, sd = decimals_of(self.tick_size), decimals_of(self.lot_size)
        try:
            tick, lot = parse_units(self.tick_size, pd), parse_units(self.lot_size, sd)
        except ValueError as exc:
            raise ConfigError(f"instrument {self.symbol!r}: bad tick or lot size: {exc}") from None
        if tick <= 0 or lot <= 0:
            raise ConfigError(f"instrument {self.symbol!r}: tick_size and lot_size must be > 0")
        object.__setattr__(self, "price_decimals", pd)
        object.__setattr__(self, "size_decimals", sd)
        object.__setattr__(self, "tick_units", tick)
        object.__setattr__(self, "lot_units", lot)

    @classmethod
    def from_wire(cls, obj: dict[str, object]) -> Instrument:
        """From one entry of ``GET /v1/instruments``."""
        try:
            return cls(
                symbol=str(obj["symbol"]),
                asset_class=str(obj["asset_class"]),
                tick_size=str(obj["tick_size"]),
                lot_size=str(obj["lot_size"]),
            )
        except KeyError as exc:
            raise FrameError(
                f"instrument entry lacks {exc.args[0]!r}", field=str(exc.args[0])
            ) from None

    def to_wire(self) -> dict[str, str]:
        return {
            "symbol": self.symbol,
            "asset_class": self.asset_class,
            "tick_size": self.tick_size,
            "lot_size": self.lot_size,
        }

    # -- edges: text <-> units ------------------------------------------------------------
    def price_units(self, text: str, *, channel: str | None = None, field: str = "price") -> int:
        """Parse a price; FrameError names channel and field when it is not on the tick grid."""
        try:
            units = parse_units(text, self.price_decimals)
        except ValueError as exc:
            raise FrameError(str(exc), channel=channel, field=field) from None
        if units % self.tick_units:
            raise FrameError(
                f"price {text!r} is not a multiple of tick_size {self.tick_size}",
                channel=channel,
                field=field,
            )
        return units

    def price_units_fast(self, text: str) -> int:
        """A book level's price for the hot path: cached, > 0, ValueError without context.

        Callers that need the error to name a channel and field re-parse with
        :meth:`price_units` (see ``frames.parse_levels``). The cache holds at most
        :data:`PRICE_CACHE_MAX` valid prices and only texts that parsed.
        """
        cache = self._price_cache
        units = cache.get(text)
        if units is not None:
            return units
        units = parse_units(text, self.price_decimals)
        if units % self.tick_units or not units:
            raise ValueError(f"price {text!r} is zero or not a multiple of {self.tick_size}")
        if len(cache) >= PRICE_CACHE_MAX:
            cache.clear()
        cache[text] = units
        return units

    def size_units_fast(self, text: str) -> int:
        """Like :meth:`size_units` for the hot path: cached (:data:`SIZE_CACHE_MAX`, only texts
        that parsed), ValueError without context."""
        cache = self._size_cache
        units = cache.get(text)
        if units is not None:
            return units
        units = parse_units(text, self.size_decimals)
        if units % self.lot_units:
            raise ValueError(f"size {text!r} is not a multiple of lot_size {self.lot_size}")
        if len(cache) >= SIZE_CACHE_MAX:
            cache.clear()
        cache[text] = units
        return units

    def size_units(self, text: str, *, channel: str | None = None, field: str = "size") -> int:
        """Parse a size (0 allowed); FrameError when negative, malformed or off the lot grid."""
        try:
            units = parse_units(text, self.size_decimals)
        except ValueError as exc:
            raise FrameError(str(exc), channel=channel, field=field) from None
        if units % self.lot_units:
            raise FrameError(
                f"size {text!r} is not a multiple of lot_size {self.lot_size}",
                channel=channel,
                field=field,
            )
        return units

    def format_price(self, units: int) -> str:
        return format_units(units, self.price_decimals)

    def format_size(self, units: int) -> str:
        return format_units(units, self.size_decimals)

    def price_decimal(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.price_decimals)

    def size_decimal(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.size_decimals)
