"""Instruments: strict decimal parsing into integer units, grid checks, formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickpipe.errors import ConfigError, FrameError
from tickpipe.protocol import instruments
from tickpipe.protocol.instruments import Instrument, decimals_of, format_units, parse_units

CENT = Instrument("AAPL", "equity", "0.01", "1")
HALF = Instrument("XAU-USD", "metal", "0.50", "0.001")


@pytest.mark.parametrize(
    ("step", "decimals"), [("0.50", 2), ("0.01", 2), ("1", 0), ("0.00000001", 8), ("5", 0)]
)
def test_decimals_are_counted_as_written(step: str, decimals: int) -> None:
    assert decimals_of(step) == decimals


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [
        ("189.12", 2, 18912),
        ("189", 2, 18900),
        ("189.1", 2, 18910),
        ("189.120", 2, 18912),  # extra zero decimals are accepted
        ("189.12000000", 2, 18912),
        ("0", 2, 0),
        ("0.00", 2, 0),
        ("007.5", 1, 75),
        ("12", 0, 12),
        ("12.000", 0, 12),
        ("123456789012345678901234567890.5", 1, 1234567890123456789012345678905),
    ],
)
def test_parse_units_accepts_plain_decimals(text: str, decimals: int, units: int) -> None:
    assert parse_units(text, decimals) == units


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-1",
        "+1",
        "-0",
        "1e2",
        "1E2",
        "1.5e1",
        " 1",
        "1 ",
        "1. 5",
        "1_000",
        "1,5",
        ".5",
        "5.",
        ".",
        "1.2.3",
        "0x10",
        "inf",
        "nan",
        "NaN",
        "١٢",  # Arabic-Indic digits: isdigit() but not ASCII
        "1.٥",
        "²",  # superscript two: isdigit() is True
        "１２",  # fullwidth digits
        "1\n",
        "1\x00",
    ],
)
def test_parse_units_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError):
        parse_units(text, 2)


@pytest.mark.parametrize("text", ["189.123", "189.1201", "0.001", "1.0000001"])
def test_extra_non_zero_decimals_are_off_grid(text: str) -> None:
    with pytest.raises(ValueError, match="more than 2 decimals"):
        parse_units(text, 2)


def test_parse_units_rejects_non_strings() -> None:
    for value in (12, 1.5, None, b"12", ["1"]):
        with pytest.raises(ValueError, match="expected a decimal string"):
            parse_units(value, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("units", "decimals", "text"),
    [
        (18910, 2, "189.10"),
        (5, 3, "0.005"),
        (0, 3, "0.000"),
        (0, 0, "0"),
        (42, 0, "42"),
        (-5, 2, "-0.05"),
        (-18910, 2, "-189.10"),
        (10**20, 8, "1000000000000.00000000"),
    ],
)
def test_format_units_writes_exactly_the_decimals(units: int, decimals: int, text: str) -> None:
    assert format_units(units, decimals) == text


def test_format_then_parse_round_trips() -> None:
    for decimals in (0, 1, 2, 8):
        for units in (0, 1, 9, 10, 99, 100, 12345, 10**12 + 7):
            assert parse_units(format_units(units, decimals), decimals) == units


def test_instrument_grid_and_edges() -> None:
    assert (HALF.price_decimals, HALF.size_decimals, HALF.tick_units, HALF.lot_units) == (
        2,
        3,
        50,
        1,
    )
    assert HALF.price_units("2000.50") == 200050
    assert HALF.price_units("2000.5") == 200050  # compared numerically, not as text
    assert HALF.format_price(200050) == "2000.50"
    assert HALF.price_decimal(200050) == Decimal("2000.50")
    assert HALF.size_decimal(1500) == Decimal("1.500")
    assert CENT.size_units("300") == 300
    assert CENT.format_size(300) == "300"


def test_price_off_the_tick_grid_names_channel_and_field() -> None:
    with pytest.raises(FrameError) as ei:
        HALF.price_units("2000.25", channel="orderbook:XAU-USD", field="bids[0].price")
    assert ei.value.channel == "orderbook:XAU-USD"
    assert ei.value.field == "bids[0].price"
    assert "tick_size 0.50" in ei.value.reason


def test_size_off_the_lot_grid_and_negative_sizes_are_frame_errors() -> None:
    halves = Instrument("H", "fx", "0.01", "0.5")
    with pytest.raises(FrameError, match=r"lot_size 0\.5") as ei:
        halves.size_units("1.2", channel="orderbook:H", field="asks[1].size")
    assert ei.value.field == "asks[1].size"
    with pytest.raises(FrameError, match="more than 0 decimals"):
        CENT.size_units("1.5", channel="orderbook:AAPL")
    with pytest.raises(FrameError, match="not a non-negative decimal"):
        CENT.size_units("-1", channel="orderbook:AAPL")


def test_fast_price_path_rejects_zero_and_off_grid_and_caches_only_valid() -> None:
    inst = Instrument("X", "fx", "0.50", "1")
    assert inst.price_units_fast("1.50") == 150
    assert inst.price_units_fast("1.50") == 150
    for bad in ("0", "0.00", "1.25", "-1", "x"):
        with pytest.raises(ValueError):
            inst.price_units_fast(bad)
    assert set(inst._price_cache) == {"1.50"}


def test_price_cache_is_bounded() -> None:
    inst = Instrument("X", "fx", "0.01", "1")
    for i in range(1, instruments.PRICE_CACHE_MAX * 3):
        assert inst.price_units_fast(f"{i}.00") == i * 100
        assert len(inst._price_cache) <= instruments.PRICE_CACHE_MAX


def test_instruments_compare_by_value_not_by_cache() -> None:
    a, b = Instrument("X", "fx", "0.01", "1"), Instrument("X", "fx", "0.01", "1")
    a.price_units_fast("1.00")
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize(
    ("tick", "lot"), [("0", "1"), ("0.00", "1"), ("-0.01", "1"), ("abc", "1"), ("0.01", "1e-3")]
)
def test_bad_tick_or_lot_is_a_config_error(tick: str, lot: str) -> None:
    with pytest.raises(ConfigError, match="instrument 'BAD'"):
        Instrument("BAD", "fx", tick, lot)


def test_from_wire_round_trip_and_missing_key() -> None:
    wire = {"symbol": "AAPL", "asset_class": "equity", "tick_size": "0.01", "lot_size": "1"}
    assert Instrument.from_wire(wire).to_wire() == wire  # type: ignore[arg-type]
    with pytest.raises(FrameError) as ei:
        Instrument.from_wire({"symbol": "AAPL", "asset_class": "equity", "tick_size": "0.01"})
    assert ei.value.field == "lot_size"


def test_fast_size_path_rejects_off_grid_and_caches_only_valid() -> None:
    inst = Instrument("X", "fx", "0.01", "0.5")
    assert inst.size_units_fast("1.5") == 15
    assert inst.size_units_fast("1.5") == 15
    assert inst.size_units_fast("0") == 0  # a removal: cached too, and still 0
    assert inst.size_units_fast("0") == 0
    for bad in ("1.2", "1.55", "-1", "x", "1e1", " 1", "١"):
        with pytest.raises(ValueError):
            inst.size_units_fast(bad)
    assert set(inst._size_cache) == {"1.5", "0"}


def test_size_cache_is_bounded() -> None:
    inst = Instrument("X", "fx", "0.01", "0.001")
    for i in range(instruments.SIZE_CACHE_MAX * 3):
        assert inst.size_units_fast(f"{i}.000") == i * 1000
        assert len(inst._size_cache) <= instruments.SIZE_CACHE_MAX


# any text a gateway might write for a valid value: canonical or not (fewer decimals, extra
# trailing zeros, leading zeros), and texts that are not decimals at all
_digits = st.text(alphabet="0123456789", min_size=1, max_size=6)
_valid_text = st.builds(
    lambda whole, frac, zeros, dot: f"{whole}.{frac}{'0' * zeros}" if dot else whole,
    _digits,
    st.text(alphabet="0123456789", min_size=1, max_size=4),
    st.integers(0, 3),
    st.booleans(),
)
_any_text = st.one_of(_valid_text, st.text(max_size=8), st.sampled_from(["0", "00", "0.0", "1."]))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_any_text, max_size=30),
    st.sampled_from([("0.01", "0.001"), ("0.05", "0.5"), ("0.50", "5")]),
)
def test_fast_paths_agree_with_the_strict_parser_whatever_the_order(
    texts: list[str], grid: tuple[str, str]
) -> None:
    """Through the caches (cold, warm, repeated, interleaved) every text parses to exactly what
    the context-giving strict path says, and fails exactly when it fails."""
    inst = Instrument("X", "crypto", *grid)
    for text in texts + texts[::-1]:
        for is_price, fast, strict in (
            (False, inst.size_units_fast, inst.size_units),
            (True, inst.price_units_fast, inst.price_units),
        ):
            try:
                want: int | None = strict(text)
            except FrameError:
                want = None
            if is_price and want == 0:
                want = None  # a book level's price must be > 0
            try:
                got: int | None = fast(text)
            except ValueError:
                got = None
            assert got == want, (text, fast.__name__)
