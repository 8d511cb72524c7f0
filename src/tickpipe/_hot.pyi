"""Types of the compiled hot path (``_hot.c``); see ``tickpipe.hotpath``."""

from collections.abc import Iterable, Sequence

ABI: int
STYLE_VTS: int
STYLE_OKX: int
STYLE_KRAKEN: int

def parse_side(
    levels: Sequence[Sequence[str]],
    price_decimals: int,
    size_decimals: int,
    tick_units: int,
    lot_units: int,
) -> list[tuple[int, int]] | None: ...
def side_apply(
    levels: dict[int, int], prices: list[int], descending: bool, updates: Iterable[tuple[int, int]]
) -> bool: ...
def apply_texts(
    bid_levels: dict[int, int],
    bid_prices: list[int],
    ask_levels: dict[int, int],
    ask_prices: list[int],
    raw_bids: Sequence[Sequence[str]],
    raw_asks: Sequence[Sequence[str]],
    price_decimals: int,
    size_decimals: int,
    tick_units: int,
    lot_units: int,
    pending: bool,
    want_crc: bool,
) -> int | None: ...
def top_text(
    bid_levels: dict[int, int],
    bid_prices: list[int],
    ask_levels: dict[int, int],
    ask_prices: list[int],
    price_decimals: int,
    size_decimals: int,
    depth: int,
    style: int,
) -> bytes | None: ...
def top_crc(
    bid_levels: dict[int, int],
    bid_prices: list[int],
    ask_levels: dict[int, int],
    ask_prices: list[int],
    price_decimals: int,
    size_decimals: int,
    depth: int,
    style: int,
) -> int | None: ...
def crc32(data: bytes | bytearray | memoryview) -> int: ...
