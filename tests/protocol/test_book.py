"""OrderBook: apply, remove, best, top N, size_at, crossed, to_lists, and the section-5
checksum against values computed independently: literal CRC-32s here, and the plain-dict
reference of protocol_model.py (zlib.crc32 over Decimal-formatted text)."""

from __future__ import annotations

import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_model import ref_checksum  # the plain-dict reference, shared by tests

from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument

CENT = Instrument("AAPL", "equity", "0.01", "1")
HALF = Instrument("XAU-USD", "metal", "0.50", "1")  # tick "0.50", lot "1": decimals 2 and 0
FINE = Instrument("BTC-USD", "crypto", "0.1", "0.00000001")


def test_empty_book() -> None:
    book = OrderBook(CENT)
    assert book.checksum_string() == ""
    assert book.checksum() == zlib.crc32(b"") == 0
    assert book.best_bid() is None and book.best_ask() is None
    assert not book.is_crossed()
    assert book.to_lists() == ([], [])
    assert len(book) == 0


def test_apply_sets_totals_and_zero_removes() -> None:
    book = OrderBook(CENT)
    book.apply([(18912, 300), (18910, 5)], [(18915, 100)])
    assert book.best_bid() == (18912, 300) and book.best_ask() == (18915, 100)
    book.apply([(18912, 200)], [])  # size is the new total, not an increment
    assert book.bids.size_at(18912) == 200
    book.apply([(18912, 0)], [(18999, 0)])  # remove, and remove an absent level: no-op
    assert book.best_bid() == (18910, 5)
    assert book.bids.size_at(18912) == 0 and book.asks.size_at(18999) == 0
    assert book.to_lists() == ([(18910, 5)], [(18915, 100)])


def test_top_n_best_first_on_both_sides() -> None:
    book = OrderBook(CENT)
    book.load([(p, p - 90) for p in range(100, 115)], [(p, 1) for p in range(120, 125)])
    assert book.bids.top(3) == [(114, 24), (113, 23), (112, 22)]
    assert book.asks.top(3) == [(120, 1), (121, 1), (122, 1)]
    assert book.asks.top(50) == [(p, 1) for p in range(120, 125)]
    assert book.bids.top(0) == [] and book.asks.top(-1) == []
    bids, asks = book.to_lists(2)
    assert bids == [(114, 24), (113, 23)] and asks == [(120, 1), (121, 1)]
    bids, asks = book.to_lists()
    assert len(bids) == 15 and len(asks) == 5


def test_load_replaces_skips_zero_and_keeps_last_duplicate() -> None:
    book = OrderBook(CENT)
    book.apply([(1, 1)], [(9, 9)])
    book.load([(100, 1), (99, 0), (100, 4)], [(105, 2)])
    assert book.to_lists() == ([(100, 4)], [(105, 2)])


def test_crossed_book() -> None:
    book = OrderBook(CENT)
    book.load([(100, 1)], [(101, 1)])
    assert not book.is_crossed()
    book.apply([(101, 1)], [])
    assert book.is_crossed()
    book.apply([(101, 0), (102, 3)], [])
    assert book.is_crossed()
    book.apply([(102, 0), (101, 0)], [])
    assert not book.is_crossed()


def test_equality_compares_levels() -> None:
    a, b = OrderBook(CENT), OrderBook(CENT)
    a.apply([(1, 2)], [(3, 4)])
    b.load([(1, 2)], [(3, 4)])
    assert a == b
    b.apply([], [(3, 5)])
    assert a != b
    assert a != "not a book"


def test_checksum_string_format_with_tick_050_and_lot_1() -> None:
    book = OrderBook(HALF)
    book.load([(200050, 3), (200000, 10)], [(200100, 7)])
    assert book.checksum_string() == "2000.50:3:2001.00:7:2000.00:10"
    assert book.checksum() == zlib.crc32(b"2000.50:3:2001.00:7:2000.00:10")


def test_checksum_writes_exact_decimals() -> None:
    book = OrderBook(FINE)
    book.load([(1000, 1)], [(1001, 123456789)])
    assert book.checksum_string() == "100.0:0.00000001:100.1:1.23456789"


def test_checksum_one_sided_books() -> None:
    book = OrderBook(CENT)
    book.load([(p, 1) for p in range(100, 104)], [])
    assert book.checksum_string() == "1.03:1:1.02:1:1.01:1:1.00:1"
    assert book.checksum() == ref_checksum(CENT, {p: 1 for p in range(100, 104)}, {})
    book.load([], [(200, 5)])
    assert book.checksum() == zlib.crc32(b"2.00:5")


def test_checksum_takes_only_the_top_10_and_interleaves_uneven_sides() -> None:
    bids = {10_000 - i: i + 1 for i in range(25)}
    asks = {10_001 + i: 2 * i + 1 for i in range(3)}
    book = OrderBook(CENT)
    book.load(bids.items(), asks.items())
    assert book.checksum() == ref_checksum(CENT, bids, asks)
    text = book.checksum_string()
    assert text.startswith("100.00:1:100.01:1:99.99:2:100.02:3:99.98:3:100.03:5:99.97:4:")
    assert text.endswith("99.91:10")
    assert text.count(":") == 2 * 13 - 1


def test_checksum_is_right_after_deep_and_top_changes() -> None:
    bids = {10_000 - i: 5 for i in range(40)}
    asks = {10_001 + i: 5 for i in range(40)}
    book = OrderBook(CENT)
    book.load(bids.items(), asks.items())
    steps: list[tuple[dict[int, int], list[tuple[int, int]], bool]] = [
        (bids, [(9_970, 9)], True),  # deep change: cannot change the checksum
        (bids, [(9_995, 0)], True),  # remove the 6th level
        (asks, [(10_010, 0)], False),  # remove the 10th ask: the 11th moves up
        (asks, [(10_011, 3)], False),  # the new 10th changes size
        (bids, [(10_001, 8)], True),  # improve the best bid
        (bids, [(9_991, 1), (9_990, 0)], True),  # at and just below the 10th bid
    ]
    for side, levels, is_bid in steps:
        for p, s in levels:
            if s:
                side[p] = s
            else:
                side.pop(p, None)
        if is_bid:
            book.apply(levels, [])
        else:
            book.apply([], levels)
        assert book.checksum() == ref_checksum(CENT, bids, asks)


def test_direct_side_set_keeps_checksum_right() -> None:
    """The gateway's simulator writes through BookSide.set: the cache must see it."""
    book = OrderBook(CENT)
    book.load([(100, 1)], [(105, 1)])
    first = book.checksum()
    book.bids.set(101, 2)
    assert book.checksum() != first
    assert book.checksum() == ref_checksum(CENT, {100: 1, 101: 2}, {105: 1})
    book.clear()
    assert book.checksum() == 0


# -- property: any sequence of operations, checksum and levels equal a plain-dict model -------
prices = st.integers(min_value=1, max_value=40)
op = st.one_of(
    st.tuples(st.just("apply"), st.lists(st.tuples(prices, st.integers(0, 4)), max_size=4),
              st.lists(st.tuples(prices, st.integers(0, 4)), max_size=4)),
    st.tuples(st.just("load"), st.lists(st.tuples(prices, st.integers(0, 4)), max_size=30),
              st.lists(st.tuples(prices, st.integers(0, 4)), max_size=30)),
    st.tuples(st.just("set"), st.booleans(), st.tuples(prices, st.integers(0, 4))),
    st.tuples(st.just("clear")),
    st.tuples(st.just("checksum")),
)  # fmt: skip


def _put(side: dict[int, int], p: int, s: int) -> None:
    if s:
        side[p] = s
    else:
        side.pop(p, None)


def _step(
    book: OrderBook, bids: dict[int, int], asks: dict[int, int], o: tuple[object, ...]
) -> tuple[dict[int, int], dict[int, int]]:
    """Carry out one generated op on ``book`` and on the plain-dict model; return the model.
    Prices are drawn in ticks of HALF's 0.50 grid (x50 units); a "checksum" op changes nothing."""
    kind = o[0]
    if kind == "apply":
        b = [(p * 50, s) for p, s in o[1]]  # type: ignore[attr-defined]
        a = [(p * 50, s) for p, s in o[2]]  # type: ignore[attr-defined]
        book.apply(b, a)
        for p, s in b:
            _put(bids, p, s)
        for p, s in a:
            _put(asks, p, s)
    elif kind == "load":
        b = [(p * 50, s) for p, s in o[1]]  # type: ignore[attr-defined]
        a = [(p * 50, s) for p, s in o[2]]  # type: ignore[attr-defined]
        book.load(b, a)
        bids = {p: s for p, s in dict(b).items() if s}
        asks = {p: s for p, s in dict(a).items() if s}
    elif kind == "set":
        is_bid, (p, s) = o[1], o[2]  # type: ignore[misc]
        (book.bids if is_bid else book.asks).set(p * 50, s)
        _put(bids if is_bid else asks, p * 50, s)
    elif kind == "clear":
        book.clear()
        bids, asks = {}, {}
    return bids, asks


FIXTURE_OK = [HealthCheck.function_scoped_fixture]  # hot_path holds for every example


@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.lists(op, max_size=60))
def test_book_matches_a_dict_model(hot_path: str, ops: list[tuple[object, ...]]) -> None:
    book = OrderBook(HALF)
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for o in ops:
        bids, asks = _step(book, bids, asks, o)
        assert book.checksum() == ref_checksum(HALF, bids, asks)
        assert book.bids.levels == bids and book.asks.levels == asks
        assert book.bids.prices == sorted(bids) and book.asks.prices == sorted(asks)
        assert book.best_bid() == (max(bids), bids[max(bids)]) if bids else book.best_bid() is None
        for side in (book.bids, book.asks):
            if hot_path == "pure":  # checksum() just ran: kept in step (the compiled path
                assert side.top_texts == side.level_texts(10)  # keeps no texts)


# prices 1-14 keep a side hovering around 10 levels: inserts that push the 10th out, removals
# that pull the 11th in, the side at exactly 10 and 11 levels
near = st.integers(min_value=1, max_value=14)
near_levels = st.lists(st.tuples(near, st.integers(0, 3)), max_size=4)
near_op = st.one_of(
    st.tuples(st.just("apply"), near_levels, near_levels),
    st.tuples(st.just("load"), st.lists(st.tuples(near, st.integers(0, 3)), max_size=14),
              st.lists(st.tuples(near, st.integers(0, 3)), max_size=14)),
    st.tuples(st.just("set"), st.booleans(), st.tuples(near, st.integers(0, 3))),
    st.tuples(st.just("clear")),
    st.tuples(st.just("checksum")),
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.lists(st.one_of(op, near_op), max_size=80))
def test_book_checksummed_now_and_then_matches_a_dict_model(
    hot_path: str, ops: list[tuple[object, ...]]
) -> None:
    """The same model, but the checksum is asked for only at "checksum" ops and at the end: the
    top-10 texts are kept in step across many deltas (and not kept before the first checksum
    after a load or clear), with deltas that hit the top, the 10th/11th boundary and below."""
    book = OrderBook(HALF)
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for o in ops:
        bids, asks = _step(book, bids, asks, o)
        if o[0] == "checksum":
            assert book.checksum() == ref_checksum(HALF, bids, asks)
        for side in (book.bids, book.asks):
            if side.top_valid:
                assert side.top_texts == side.level_texts(10)
    assert book.checksum() == ref_checksum(HALF, bids, asks)
    assert book.bids.levels == bids and book.asks.levels == asks


def test_top_texts_at_the_10th_level_boundary(hot_path: str) -> None:
    """Exhaustive around depth 10: sides of 9-12 levels, one change at every rank (remove,
    resize, insert just better/worse), checksummed before (so the top-10 texts are kept in
    step) and after; both sides, each against the plain-dict reference."""
    for n in (9, 10, 11, 12):
        for target in ("bids", "asks"):
            for rank in range(n):
                for change in ("remove", "resize", "insert_better", "insert_worse"):
                    bids = {(100 - 2 * k) * 50: 1 + k % 3 for k in range(n)}  # 100, 98, ...
                    asks = {(110 + 2 * k) * 50: 1 + k % 3 for k in range(n)}  # 110, 112, ...
                    book = OrderBook(HALF)
                    book.load(bids.items(), asks.items())
                    assert book.checksum() == ref_checksum(HALF, bids, asks)
                    side = bids if target == "bids" else asks
                    price = sorted(side, reverse=target == "bids")[rank]
                    better = 50 if target == "bids" else -50
                    if change == "remove":
                        update = (price, 0)
                    elif change == "resize":
                        update = (price, side[price] + 5)
                    elif change == "insert_better":
                        update = (price + better, 7)
                    else:
                        update = (price - better, 7)
                    if update[1]:
                        side[update[0]] = update[1]
                    else:
                        del side[update[0]]
                    if target == "bids":
                        book.apply([update], [])
                    else:
                        book.apply([], [update])
                    assert book.checksum() == ref_checksum(HALF, bids, asks), (
                        n,
                        target,
                        rank,
                        change,
                    )
