"""The compiled one-step delta path (``OrderBook.apply_texts``, ``BookSync.on_delta_texts``)
against the reference route it short-cuts (``frames.parse_levels`` + ``apply``/``on_delta``):
the same books, checksums and results; a declined delta leaves the book untouched, and the
reference then decides, with its own error naming the bad level."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickpipe import hotpath
from tickpipe.errors import FrameError
from tickpipe.protocol import frames
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.sync import BookSync, DeltaResult, SyncConfig

INST = Instrument("ETH-USD", "crypto", "0.05", "0.001")

pytestmark = pytest.mark.skipif(hotpath.hot is None, reason=hotpath.describe())

good_price = st.integers(1, 40).map(lambda k: f"{100 + k * 0.05:.2f}")
good_size = st.integers(0, 3000).map(lambda u: f"{u / 1000:.3f}")
odd_text = st.sampled_from(
    ["", "1.", ".5", "-1", "1e3", "100.01", "100.051", " 100.05", "١٠٠", "0", "0.00",
     "100.0500000", "99999999999999999999.05", "100.05\x00"]
)  # fmt: skip
level = st.tuples(st.one_of(good_price, odd_text), st.one_of(good_size, odd_text))
side = st.lists(st.one_of(level, level.map(list)), max_size=6)


def _seeded() -> OrderBook:
    book = OrderBook(INST)
    book.load([(2000 + 2 * k, 1000) for k in range(15)], [(2040 + 2 * k, 1000) for k in range(15)])
    return book


def _reference(raw_bids: list[object], raw_asks: list[object]) -> tuple[object, OrderBook]:
    book = _seeded()
    with hotpath.pure():
        try:
            bids = frames.parse_levels(raw_bids, INST, "orderbook:ETH-USD", "bids")  # type: ignore[arg-type]
            asks = frames.parse_levels(raw_asks, INST, "orderbook:ETH-USD", "asks")  # type: ignore[arg-type]
        except FrameError as exc:
            return ("error", str(exc), exc.field), book
        book.apply(bids, asks)
        return ("crc", book.checksum()), book


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(side, side)
def test_apply_texts_equals_parse_then_apply(
    raw_bids: list[object], raw_asks: list[object]
) -> None:
    want, ref_book = _reference(raw_bids, raw_asks)
    book = _seeded()
    before = (dict(book.bids.levels), dict(book.asks.levels), book.checksum())
    if book.apply_texts(raw_bids, raw_asks):  # type: ignore[arg-type]
        assert want == ("crc", book.checksum())
        assert book == ref_book and book.bids.prices == ref_book.bids.prices
        assert book.asks.prices == ref_book.asks.prices
    else:  # declined: untouched, and the reference route gives the answer (maybe an error)
        assert (dict(book.bids.levels), dict(book.asks.levels), book.checksum()) == before
        try:
            bids = frames.parse_levels(raw_bids, INST, "orderbook:ETH-USD", "bids")  # type: ignore[arg-type]
            asks = frames.parse_levels(raw_asks, INST, "orderbook:ETH-USD", "asks")  # type: ignore[arg-type]
        except FrameError as exc:
            assert want == ("error", str(exc), exc.field)
            return
        book.apply(bids, asks)
        assert want == ("crc", book.checksum()) and book == ref_book


def test_a_bad_second_side_leaves_the_first_unapplied() -> None:
    book = _seeded()
    assert not book.apply_texts([("100.10", "5.000")], [("100.11", "1.000")])  # off the 0.05 grid
    assert 10010 not in book.bids.levels and book.bids.levels[2002] == 1000


def _live_sync() -> BookSync:
    sync = BookSync("orderbook:ETH-USD", INST, lambda: 0.5, SyncConfig())
    sync.start()
    book = _seeded()
    sync.on_snapshot(sync.epoch, 10, book.bids.top(50), book.asks.top(50))
    assert sync.synced
    sync.take_events()
    return sync


def test_on_delta_texts_takes_only_a_live_books_next_delta() -> None:
    sync = _live_sync()
    crc = sync.book.checksum()
    assert sync.on_delta_texts(12, [], [], None) is None  # a gap: on_delta decides
    assert sync.on_delta_texts(10, [], [], None) is None  # a duplicate: on_delta decides
    assert sync.seq == 10 and sync.book.checksum() == crc
    assert sync.on_delta_texts(11, [("100.05", "2.000")], [], None) is DeltaResult.APPLIED
    assert sync.seq == 11 and sync.book.bids.levels[10005] == 2000
    assert sync.on_delta_texts(12, [("100.05", "0")], [], 12345) is DeltaResult.GAP  # bad CRC
    assert not sync.synced and [type(e).__name__ for e in sync.take_events()][:1] == ["Gap"]
    assert sync.on_delta_texts(13, [], [], None) is None  # not LIVE any more


def test_on_delta_texts_declines_to_the_reference_on_a_bad_level() -> None:
    sync = _live_sync()
    assert sync.on_delta_texts(11, [("100.06", "1.000")], [], None) is None
    assert sync.seq == 10  # untouched: the caller parses, and parse_levels names the level
    with pytest.raises(FrameError) as err:
        frames.parse_levels([("100.06", "1.000")], INST, "orderbook:ETH-USD", "bids")
    assert err.value.field == "bids[0].price"
