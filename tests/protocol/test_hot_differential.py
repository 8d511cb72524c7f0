"""The compiled hot path (``tickpipe._hot``) against the pure-Python reference, differentially.

Every function of ``_hot.c`` is a twin of a pure-Python function that stays the reference: it
gives exactly the reference's result, or declines (None) and the reference runs. One source of
truth for behaviour, so every test here drives BOTH paths with the same inputs (the pure one
inside :func:`tickpipe.hotpath.pure`, op by op) and demands identical results, errors included:

- parsing: ``frames.parse_levels`` on well-formed, off-grid, oversized and malformed levels of
  several grids, and ``_hot.parse_side`` directly (whenever it answers, it is the reference's
  answer);
- books: random apply/load/clear/set/truncate sequences, prices around the 10th level and deep,
  units beyond 64 bits (the C declines), junk updates; after every op the levels, the VTS/1,
  OKX and Kraken checksums and texts, and ``_hot.top_text`` for the three styles;
- BookSync: the same wire frames, snapshots and faults fed to two syncs, identical results,
  events, states and books (VTS/1 rules, and OKX's and Kraken's checksums);
- ``_hot.crc32`` against ``zlib.crc32``.

Skipped where the compiled path is not in use (``tests/test_hotpath.py`` fails loudly then).
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from protocol_model import TrueStream

from tickpipe import hotpath
from tickpipe.errors import FrameError
from tickpipe.protocol import frames
from tickpipe.protocol.book import Level, OrderBook
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import Continuity, Seeding
from tickpipe.protocol.sync import BookSync, SyncConfig, SyncRules, SyncState
from tickpipe.venues.kraken import checksum as kraken
from tickpipe.venues.okx import checksum as okx

hot = hotpath.hot
pytestmark = pytest.mark.skipif(
    hot is None, reason=f"compiled hot path not in use: {hotpath.describe()}"
)

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # one shrunk failure, soon: the examples are costly to shrink, and "explain" (which parts
    # of a failing example vary freely) took over a minute on one
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)

# (tick_size, lot_size): decimals 0 to 21 (above 18 the C declines every level), ticks of one
# unit, of several units ("0.50", "5", "10") and of one unit at many decimals
GRIDS = [
    ("0.50", "1"),
    ("0.01", "0.001"),
    ("1", "0.00000001"),
    ("5", "100"),
    ("0.25", "0.1"),
    ("10", "5"),
    ("0.000000000000000001", "0.000000000000000001"),  # 18 decimals: still the C's
    ("0.0000000000000000001", "1"),  # 19 price decimals: declined
    ("0.01", "0.000000000000000000001"),  # 21 size decimals: declined
]


def instrument(grid: tuple[str, str]) -> Instrument:
    """A fresh instrument (fresh level caches): each path gets its own."""
    return Instrument("X-Y", "crypto", grid[0], grid[1])


def outcome(fn: Callable[[], object]) -> tuple[str, object]:
    """``fn()``'s result, or its error: type, text and, for a FrameError, channel and field."""
    try:
        return "ok", fn()
    except FrameError as exc:
        return "FrameError", (str(exc), exc.channel, exc.field, exc.reason)
    except Exception as exc:  # the reference's own errors (TypeError, ...) must match too
        return type(exc).__name__, str(exc)


def pure_call(fn: Callable[[], object]) -> tuple[str, object]:
    with hotpath.pure():
        return outcome(fn)


# -- parsing --------------------------------------------------------------------------------


class Text(str):
    """A str subclass: the C takes only exact str and declines it to the reference."""


JUNK_TEXTS: list[object] = [
    "", ".", ".5", "5.", "1e5", "1E5", "+1", "-1", "-0", " 1", "1 ", "1_0", "0x10", "NaN", "inf",
    "١", "١٢", "²", "1\u00a0", "\u0000", "é", "1.2.3", "1..2", "0", "00", "0.0", "000.000",
    "9" * 18, "9" * 19, "1" + "0" * 18, "1" + "0" * 19, "9" * 40, "0." + "0" * 30 + "1",
    "0" * 30 + "1", "1." + "0" * 40, "18446744073709551616", "9223372036854775807",
    "9223372036854775808", "922337203685477580.7", Text("1.5"), Text("100"), 1, 0, 1.5, None,
    b"1", True, [], ["1"], ("1", "2"), {"1": 2},
]  # fmt: skip

digits = st.text(alphabet="0123456789", max_size=24)
number_text = st.builds(
    lambda lead, whole, dot, frac, zeros: (
        "0" * lead + whole + ("." + frac + "0" * zeros if dot else "")
    ),
    st.integers(0, 3),
    st.one_of(st.integers(0, 10**6).map(str), digits.filter(bool)),
    st.booleans(),
    st.one_of(st.sampled_from(["", "5", "50", "25", "1", "01", "001", "00000001"]), digits),
    st.integers(0, 3),
)
level_text = st.one_of(
    number_text,
    st.sampled_from(JUNK_TEXTS),
    st.text(alphabet="0123456789.-+e ", max_size=12),
    st.text(max_size=4),
    st.builds(Text, number_text),
)


def on_grid(grid: tuple[str, str]) -> st.SearchStrategy[list[str]]:
    """A well-formed level of ``grid`` (often with extra trailing or leading zeros)."""
    inst = instrument(grid)

    def text(units: int, decimals: int, extra: int, lead: int) -> str:
        t = f"{Decimal(units).scaleb(-decimals):.{decimals}f}" if decimals else str(units)
        if extra:
            t += ("" if "." in t else ".") + "0" * extra
        return "0" * lead + t

    return st.builds(
        lambda k, m, e1, e2, l1: [
            text(k * inst.tick_units, inst.price_decimals, e1, l1),
            text(m * inst.lot_units, inst.size_decimals, e2, 0),
        ],
        st.one_of(st.integers(1, 1000), st.integers(1, 10**20)),
        st.one_of(st.integers(0, 1000), st.integers(0, 10**20)),
        st.integers(0, 2),
        st.integers(0, 2),
        st.integers(0, 2),
    )


def any_level(grid: tuple[str, str]) -> st.SearchStrategy[object]:
    pair = st.lists(level_text, min_size=2, max_size=2)
    return st.one_of(
        on_grid(grid),
        on_grid(grid).map(tuple),
        pair,
        pair.map(tuple),
        st.lists(level_text, max_size=3),  # wrong lengths (and some right ones)
        st.sampled_from(JUNK_TEXTS),  # not a level at all ("12" unpacks to "1", "2")
        st.lists(st.lists(level_text, max_size=2), min_size=2, max_size=2),  # nested junk
    )


@st.composite
def level_lists(draw: st.DrawFn) -> tuple[tuple[str, str], list[Any]]:
    grid = draw(st.sampled_from(GRIDS))
    mostly_good = draw(st.booleans())
    level: st.SearchStrategy[Any] = on_grid(grid) if mostly_good else any_level(grid)
    levels: list[Any] = draw(st.lists(level, max_size=6))
    one_bad = draw(st.booleans())
    if mostly_good and levels and one_bad:  # one bad level among good ones
        levels.insert(draw(st.integers(0, len(levels))), draw(any_level(grid)))
    return grid, levels


@SETTINGS
@given(level_lists(), st.sampled_from(["bids", "asks"]))
def test_parse_levels_same_result_or_error_on_both_paths(
    case: tuple[tuple[str, str], list[Any]], side: str
) -> None:
    grid, levels = case
    ch = "orderbook:X-Y"
    inst_c, inst_p = instrument(grid), instrument(grid)
    compiled = outcome(lambda: frames.parse_levels(levels, inst_c, ch, side))
    pure = pure_call(lambda: frames.parse_levels(levels, inst_p, ch, side))
    assert compiled == pure
    # a tuple of levels (not a list) is the reference's: the same answer
    as_tuple: Any = tuple(levels)
    assert outcome(partial(frames.parse_levels, as_tuple, inst_c, ch, side)) == pure
    # _hot.parse_side itself: when it answers, it is the reference's answer
    assert hot is not None
    direct = hot.parse_side(
        levels, inst_c.price_decimals, inst_c.size_decimals, inst_c.tick_units, inst_c.lot_units
    )
    if direct is not None:
        assert pure == ("ok", direct)


@SETTINGS
@given(st.data())
def test_parse_levels_calls_in_a_row_agree(data: st.DataObject) -> None:
    """Several calls on one instrument per path: the pure path fills the instrument's level
    caches, the compiled path does not; the answers must not depend on that."""
    grid = data.draw(st.sampled_from(GRIDS))
    level = st.one_of(on_grid(grid), on_grid(grid), any_level(grid))
    inst_c, inst_p = instrument(grid), instrument(grid)
    calls: list[Any] = data.draw(st.lists(st.lists(level, max_size=4), max_size=5))
    for levels in calls:
        compiled = outcome(partial(frames.parse_levels, levels, inst_c, "ch", "bids"))
        pure = pure_call(partial(frames.parse_levels, levels, inst_p, "ch", "bids"))
        assert compiled == pure


def test_a_str_subclass_after_its_plain_text_is_answered_alike() -> None:
    """Found by this file: the reference's level caches took a str subclass equal to a cached
    text that parse_units refused, so its answer depended on what it had parsed before. A str
    subclass is now read as its text on every route (the compiled parser declines it)."""
    calls: list[Any] = [[["1.50", "1"]], [[Text("1.50"), "1"]], [[Text("2.50"), Text("3")]]]
    inst_c, inst_p = instrument(GRIDS[0]), instrument(GRIDS[0])
    compiled = [outcome(partial(frames.parse_levels, c, inst_c, "ch", "bids")) for c in calls]
    with hotpath.pure():
        pure = [outcome(partial(frames.parse_levels, c, inst_p, "ch", "bids")) for c in calls]
    assert compiled == pure


def test_parse_side_declines_what_is_not_its_own() -> None:
    """Spot checks of the decline rule (the differential tests hold the rest)."""
    assert hot is not None
    ok = [["1.50", "2"], ("3", "0")]
    assert hot.parse_side(ok, 2, 0, 50, 1) == [(150, 2), (300, 0)]
    assert hot.parse_side(("x",), 2, 0, 50, 1) is None  # not a list
    for bad in ([["0", "1"]], [["1.25", "1"]], [[Text("1"), "1"]], [["1", "1", "1"]],
                [["9" * 19, "1"]], [["1", "1.5"]], [["١", "1"]]):  # fmt: skip
        assert hot.parse_side(bad, 2, 0, 50, 1) is None, bad
    assert hot.parse_side(ok, 19, 0, 1, 1) is None  # more decimals than int64 digits
    assert hot.parse_side(ok, 2, 0, 2**63, 1) is None


# -- books ----------------------------------------------------------------------------------

BOOK_GRIDS = [
    ("0.50", "1"),
    ("0.01", "0.001"),
    ("1", "0.00000001"),
    ("0.000000000000000001", "0.00000000000000000001"),  # 18 and 20 decimals: the C's
    ("0.0000000000000000000001", "0.1"),  # 22 price decimals: declined by top_text
]


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices``, each drawn in proportion to its weight: ``one_of`` over that many
    copies (distinct objects: it draws the same object listed twice no more often than once;
    ``sampled_from(...).flatmap`` weights too but makes shrinking slow)."""
    return st.one_of(*[s.map(same) for weight, s in choices for _ in range(weight)])


def same(x: Any) -> Any:
    return x


near = st.integers(1, 14)  # a side hovers around 10 levels: the top-10 boundary
huge = st.one_of(
    st.integers(2**63 - 3, 2**63 + 3),  # int64's edge: the C formats below, declines above
    st.integers(10**18 - 2, 10**18 + 2),
    st.integers(10**19, 10**30),
)
# two kinds of runs: units that always fit in 64 bits (the C answers every checksum), and units
# beyond them now and then, bool and negative units, junk updates (the C declines while such a
# level is in the top; the reference answers)
plain_price = weighted((8, near), (6, st.integers(1, 40)), (3, st.integers(15, 400)))
plain_size = weighted((8, st.integers(0, 3)), (3, st.just(0)), (3, st.integers(4, 10**6)))
price = weighted((18, plain_price), (1, huge))
size = weighted((18, plain_size), (1, huge))
weird = st.one_of(
    st.tuples(price, st.booleans()),  # bool sizes: the reference writes "True"
    st.tuples(st.integers(-5, -1), st.integers(1, 3)),  # negative units: declined
    st.tuples(price, st.integers(-3, -1)),
)
# Updates of the wrong shape: both paths raise the interpreter's unpacking error at the same
# update, the ones before it applied. (Not prices of other types, None or str: outside the
# book's contract the reference raises where it formats a level, inside apply() once a
# checksum was asked, the compiled path inside checksum(); both refuse, at different calls.)
junk_update = st.sampled_from(
    [(1, 2, 3), (1,), 5, None, "a", [7, 1], [8], [], b"ab", {100: 1, 200: 2}, (1.5, 1)]
)


def book_ops(price: st.SearchStrategy[int], size: st.SearchStrategy[int], odd: int) -> Any:
    levels = st.lists(st.tuples(price, size), max_size=5)
    op = weighted(
        (12, st.tuples(st.just("apply"), levels, levels)),
        (
            4,
            st.tuples(
                st.just("load"), st.lists(st.tuples(price, size), min_size=6, max_size=24), levels
            ),
        ),
        (4, st.tuples(st.just("set"), st.booleans(), price, size)),
        (1, st.tuples(st.just("clear"))),
        (1, st.tuples(st.just("truncate"), st.integers(0, 15))),
        (1, st.tuples(st.just("kraken_truncate"), st.integers(0, 15))),
        (1, st.tuples(st.just("generator"), levels, st.booleans())),
        (odd, st.tuples(st.just("weird"), st.lists(weird, min_size=1, max_size=3), st.booleans())),
        (odd, st.tuples(st.just("junk"), levels, junk_update, st.booleans())),
    )
    return st.lists(op, min_size=8, max_size=30)


book_runs = st.one_of(book_ops(plain_price, plain_size, 0), book_ops(price, size, 2))


def failing_updates(updates: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """An iterable that fails half way: the updates before the failure stay applied."""
    yield from updates
    raise RuntimeError("the feed broke")


def run_op(book: OrderBook, o: tuple[Any, ...]) -> object:
    kind = o[0]
    if kind == "apply":
        book.apply(o[1], o[2])
    elif kind == "load":
        book.load(o[1], o[2])
    elif kind == "set":
        (book.bids if o[1] else book.asks).set(o[2], o[3])
    elif kind == "clear":
        book.clear()
    elif kind == "truncate":
        book.truncate(o[1])
    elif kind == "kraken_truncate":
        return kraken.truncate(book, o[1])
    elif kind == "weird":
        book.apply(o[1], []) if o[2] else book.apply([], o[1])
    elif kind == "junk":
        ups = [*o[1], o[2], *o[1]]
        book.apply(ups, []) if o[3] else book.apply([], ups)
    elif kind == "generator":
        book.apply(failing_updates(o[1]), []) if o[2] else book.apply([], failing_updates(o[1]))
    return None


def observe(book: OrderBook) -> dict[str, object]:
    """Everything a reader sees of a book, each through the current path."""
    inst = book.instrument
    pd, sd = inst.price_decimals, inst.size_decimals
    seen: dict[str, object] = {
        "bids": (dict(book.bids.levels), list(book.bids.prices)),
        "asks": (dict(book.asks.levels), list(book.asks.prices)),
        "checksum": outcome(book.checksum),
        "checksum_string": outcome(book.checksum_string),
        "okx": outcome(lambda: okx.checksum(book)),
        "okx_string": outcome(lambda: okx.checksum_string(book)),
        "kraken": outcome(lambda: kraken.checksum(book)),
        "kraken_string": outcome(lambda: kraken.checksum_string(book)),
    }
    for pp, qp in ((pd, sd), (pd + 1, sd), (max(pd - 1, 0), sd + 2)):
        seen[f"kraken_{pp}_{qp}"] = outcome(partial(kraken.checksum, book, pp, qp))
    return seen


def vts_text(book: OrderBook, depth: int) -> bytes:
    return book.checksum_string(depth).encode()


def check_top_text(book: OrderBook) -> None:
    """``_hot.top_text``/``top_crc`` against the pure texts, for the three styles."""
    assert hot is not None
    b, a = book.bids, book.asks
    pd, sd = book.instrument.price_decimals, book.instrument.size_decimals

    def text(depth: int, style: int) -> bytes | None:
        t: bytes | None = hot.top_text(b.levels, b.prices, a.levels, a.prices, pd, sd, depth, style)
        return t

    def crc(depth: int, style: int) -> int | None:
        c: int | None = hot.top_crc(b.levels, b.prices, a.levels, a.prices, pd, sd, depth, style)
        return c

    with hotpath.pure():
        ref = {
            ("vts", d): outcome(partial(vts_text, book, d)) for d in (0, 1, 9, 10, 11, 25, 64, 65)
        }
        ref["okx", 25] = outcome(lambda: okx.checksum_string(book).encode())
        ref["kraken", 10] = outcome(lambda: kraken.checksum_string(book).encode())
    styles = {"vts": hot.STYLE_VTS, "okx": hot.STYLE_OKX, "kraken": hot.STYLE_KRAKEN}
    for (name, depth), want in ref.items():
        got = text(depth, styles[name])
        c = crc(depth, styles[name])
        if got is None:
            assert c is None
            continue  # declined: the reference answers (observe() checks those answers)
        assert ("ok", got) == want, (name, depth)
        assert c == zlib.crc32(got), (name, depth)
    assert text(-1, 0) is None and text(10, 3) is None  # declined, never guessed


@SETTINGS
@given(st.sampled_from(BOOK_GRIDS), book_runs, st.sampled_from([1, 1, 3]))
def test_books_agree_after_every_op(
    grid: tuple[str, str], ops: list[tuple[Any, ...]], every: int
) -> None:
    """``every``: the books are read after every op, or after every third only (then a
    checksum covers the changes of several ops: the compiled path's "top changed" flag and
    the pure path's top-10 texts are kept across them)."""
    inst = instrument(grid)
    compiled = OrderBook(inst)
    with hotpath.pure():
        pure = OrderBook(inst)
    for i, o in enumerate(ops):
        got = outcome(partial(run_op, compiled, o))
        want = pure_call(partial(run_op, pure, o))
        assert got == want, (i, o)
        if i % every != every - 1 and i != len(ops) - 1:
            continue
        seen = observe(compiled)
        with hotpath.pure():
            seen_pure = observe(pure)
        assert seen == seen_pure, (i, o)
        check_top_text(compiled)
    # the checksums asked op by op above and the ones asked only now agree too
    fresh = OrderBook(inst)
    fresh.load(compiled.bids.levels.items(), compiled.asks.levels.items())
    assert fresh.checksum() == compiled.checksum()


# -- BookSync -------------------------------------------------------------------------------

SYNC_GRIDS = [("0.50", "1"), ("0.01", "0.001"), ("1", "0.00000001")]
SYNC_CFG = SyncConfig(max_buffered_deltas=6, healthy_after_deltas=3)

# ops of the network and the shell, shared by the VTS/1 and the venue sequence tests: a kind
# drawn from a weighted list (so that books go LIVE and apply runs of updates between the
# faults; hypothesis' one_of does not weight its branches), then its arguments
OP_ARGS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "flow": st.just(()),  # the gateway's next update, then delivery of the oldest on the wire
    "produce": st.tuples(st.integers(1, 3)),
    "deliver": st.just(()),
    "drop": st.just(()),
    "duplicate": st.tuples(st.integers(0, 7)),
    "reorder": st.just(()),
    "bad_checksum": st.tuples(st.integers(1, 2**32 - 1)),
    "bad_content": st.tuples(st.integers(1, 24), st.integers(0, 4), st.booleans()),
    "snapshot": st.tuples(st.sampled_from([0, 0, 0, 1, 2, 5, 8])),
    "late_snapshot": st.tuples(st.integers(0, 4)),
    "overflow": st.just(()),
    "stream_lost": st.just(()),
    "restart": st.just(()),
    # the VTS/1 shell's
    "bad_text": st.tuples(st.sampled_from(JUNK_TEXTS), st.booleans()),
    "snapshot_failed": st.tuples(st.sampled_from([None, 0.5, 30.0])),
    # the venue shell's
    "bad_snapshot": st.tuples(st.integers(0, 3)),
    "connection_gap": st.just(()),
    "source_gap": st.just(()),
    "source_unsynced": st.just(()),
}
COMMON_KINDS = ["snapshot"] * 6 + ["flow"] * 24 + ["restart"] * 2 + [
    "produce", "deliver", "drop", "duplicate", "reorder", "bad_checksum", "bad_content",
    "late_snapshot", "overflow", "stream_lost",
]  # fmt: skip
VTS_KINDS = [*COMMON_KINDS, "bad_text", "snapshot_failed"]
VENUE_KINDS = [*COMMON_KINDS, "bad_snapshot", "connection_gap", "source_gap", "source_unsynced"]


def sync_ops(kinds: list[str]) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    op = st.one_of(*[OP_ARGS[k].map(partial(with_kind, k)) for k in kinds])  # see weighted()
    return st.lists(op, min_size=10, max_size=80)


def with_kind(kind: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (kind, *args)


def fixed(units: int, decimals: int) -> str:
    return f"{Decimal(units).scaleb(-decimals):.{decimals}f}" if decimals else str(units)


class Wire:
    """The gateway and the network of one run: a true market (``protocol_model.TrueStream``,
    up to 12 levels a side) whose updates queue up for delivery, each with the checksum of
    the true book after it (computed by the pure reference); the ops choose what goes wrong."""

    def __init__(
        self,
        seed: int,
        grid: tuple[str, str],
        checksum: Callable[[OrderBook], int],
        width: int = 24,
    ) -> None:
        self.inst = instrument(grid)
        self.stream = TrueStream(self.inst, random.Random(seed), width=width)
        self.checksum_of = checksum
        self.queue: list[tuple[int, list[Level], list[Level], int]] = []
        self.sent: list[tuple[int, list[Level], list[Level], int]] = []

    def true_checksum(self, seq: int) -> int:
        bids, asks = self.stream.book_at(seq)
        with hotpath.pure():  # the reference decides what the venue would send
            book = OrderBook(self.inst)
            book.load(bids.items(), asks.items())
            return self.checksum_of(book)

    def produce(self) -> None:
        d = self.stream.advance()
        self.queue.append((d.seq, d.bids, d.asks, self.true_checksum(d.seq)))

    def delivered(self) -> None:
        self.sent.append(self.queue.pop(0))
        del self.sent[:-8]

    def snapshot_seq(self, back: int) -> int:
        return max(self.stream.start_seq, self.stream.seq - back)

    def pick(self, o: tuple[Any, ...]) -> tuple[int, list[Level], list[Level], int] | None:
        """The update an op delivers (None: the op has nothing to deliver)."""
        kind = o[0]
        if kind == "duplicate":
            return self.sent[-1 - o[1] % len(self.sent)] if self.sent else None
        if not self.queue or kind not in (
            "flow",
            "deliver",
            "bad_checksum",
            "bad_content",
            "bad_text",
        ):
            return None
        seq, bids, asks, checksum = self.queue[0]
        if kind == "bad_checksum":
            return seq, bids, asks, checksum ^ o[1]
        if kind == "bad_content":
            lv = (o[1] * self.inst.tick_units, o[2] * self.inst.lot_units)
            return (
                (seq, [*bids, lv], asks, checksum) if o[3] else (seq, bids, [*asks, lv], checksum)
            )
        return seq, bids, asks, checksum

    def advance(self, o: tuple[Any, ...]) -> bool:
        """The ops that change only the network; True when ``o`` was one. (A "flow" is the
        gateway's next update, then the delivery of the oldest one on the wire.)"""
        kind = o[0]
        if kind == "flow":
            self.produce()
            return False
        if kind == "produce":
            for _ in range(o[1]):
                self.produce()
        elif kind == "drop" and self.queue:
            self.queue.pop(0)
        elif kind == "reorder" and len(self.queue) >= 2:
            self.queue[0], self.queue[1] = self.queue[1], self.queue[0]
        else:
            return kind in ("produce", "drop", "reorder")
        return True


def wire_value(value: object, decimals: int) -> object:
    """Units as their text; anything else (a junk value) as it is, or as text for bytes."""
    if type(value) is int:
        return fixed(value, decimals)
    return value.decode() if isinstance(value, bytes) else value


def frame(inst: Instrument, seq: int, bids: list[Any], asks: list[Any], checksum: int) -> bytes:
    """A VTS/1 delta frame (a level may carry a text of its own: a bad one)."""
    pd, sd = inst.price_decimals, inst.size_decimals
    obj = {
        "type": "delta",
        "channel": "orderbook:X-Y",
        "seq": seq,
        "ts": 1,
        "bids": [[wire_value(p, pd), wire_value(s, sd)] for p, s in bids],
        "asks": [[wire_value(p, pd), wire_value(s, sd)] for p, s in asks],
        "checksum": checksum,
    }
    return json.dumps(obj).encode()


def deliver_frame(sync: BookSync, raw: bytes) -> object:
    """What a shell does with one frame (as ``benchmarks/fuzz_core.py``'s): decode, parse the
    levels (on the path under test), feed the sync."""
    try:
        f = frames.decode_server_frame(raw)
        assert isinstance(f, frames.Delta)
        inst = sync.book.instrument
        bids = frames.parse_levels(f.bids, inst, f.channel, "bids")
        asks = frames.parse_levels(f.asks, inst, f.channel, "asks")
    except FrameError as exc:
        sync.on_bad_frame()
        return ("bad_frame", str(exc), exc.field)
    return sync.on_delta(f.seq, bids, asks, f.checksum)


def sync_view(sync: BookSync) -> dict[str, object]:
    """Everything the shell and a reader see of a sync (its events taken)."""
    book = sync.book
    return {
        "state": sync.state,
        "seq": sync.seq,
        "epoch": sync.epoch,
        "buffered": sync.buffered,
        "events": sync.take_events(),
        "stats": {k: getattr(sync.stats, k) for k in type(sync.stats).__slots__},
        "bids": (dict(book.bids.levels), list(book.bids.prices)),
        "asks": (dict(book.asks.levels), list(book.asks.prices)),
        "checksum": book.checksum(),
        "okx": okx.checksum(book),
        "kraken": kraken.checksum(book),
    }


def shell_step(wire: Wire, sync: BookSync, o: tuple[Any, ...]) -> object:
    """One op of the shell against one sync (the VTS/1 path: frames, REST snapshots)."""
    kind = o[0]
    seeding = sync.state in (SyncState.SYNCING, SyncState.RESYNCING)
    fed = wire.pick(o)
    if fed is not None and sync.state is not SyncState.IDLE and sync.state is not SyncState.STALE:
        seq, bids, asks, checksum = fed
        if kind == "bad_text":  # a level whose text does not parse: a bad frame
            bad: list[Any] = [*bids, (o[1], 1)] if o[2] else bids
            return deliver_frame(sync, frame(wire.inst, seq, bad, asks, checksum))
        return deliver_frame(sync, frame(wire.inst, seq, bids, asks, checksum))
    if kind in ("snapshot", "late_snapshot") and (seeding or kind == "late_snapshot"):
        s, bids, asks = wire.stream.snapshot(wire.snapshot_seq(o[1]))
        epoch = sync.epoch if kind == "snapshot" else sync.epoch - 1 - o[1]
        return sync.on_snapshot(epoch, s, bids, asks)
    if kind == "snapshot_failed" and seeding:
        return sync.on_snapshot_failed(sync.epoch, o[1])
    return common_step(sync, o)


def common_step(sync: BookSync, o: tuple[Any, ...]) -> object:
    kind = o[0]
    feeding = sync.state is not SyncState.IDLE and sync.state is not SyncState.STALE
    if kind == "overflow" and feeding:
        sync.on_overflow()
    elif kind == "connection_gap":
        sync.on_connection_gap()
    elif kind == "source_gap":
        sync.on_source_gap(sync.seq, None)
    elif kind == "source_unsynced":
        sync.on_source_unsynced("reset")
    elif kind == "stream_lost":
        sync.on_stream_lost("closed")
    elif kind == "restart":
        if feeding:
            sync.stop()
        return sync.start()
    return None


def run_in_lockstep(
    wire: Wire,
    make: Callable[[], BookSync],
    ops: list[tuple[Any, ...]],
    step: Callable[[Wire, BookSync, tuple[Any, ...]], object],
    in_band: bool = False,
) -> BookSync:
    """The same ops on a compiled and a pure sync, compared after every op; returns the
    compiled one. ``in_band``: snapshots come on the stream, the updates older than one are
    not sent after it."""
    compiled = make()
    with hotpath.pure():
        pure = make()
    compiled.start()
    with hotpath.pure():
        pure.start()
    assert sync_view(compiled) == pure_view(pure)
    for _ in range(3):
        wire.produce()
    for i, o in enumerate(ops):
        if wire.advance(o):
            continue
        got = outcome(partial(step, wire, compiled, o))
        with hotpath.pure():
            want = outcome(partial(step, wire, pure, o))
        assert got == want, (i, o)
        assert sync_view(compiled) == pure_view(pure), (i, o)
        if o[0] in ("flow", "deliver") and wire.queue:
            wire.delivered()
        if o[0] == "snapshot" and in_band:  # what the venue sends next follows its snapshot
            s = wire.snapshot_seq(o[1])
            wire.queue = [d for d in wire.queue if d[0] > s]
    return compiled


def pure_view(sync: BookSync) -> dict[str, object]:
    with hotpath.pure():
        return sync_view(sync)


@SETTINGS
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(SYNC_GRIDS),
    sync_ops(VTS_KINDS),
)
def test_booksyncs_agree_frame_by_frame(
    seed: int, grid: tuple[str, str], ops: list[tuple[Any, ...]]
) -> None:
    """VTS/1: frames decoded and parsed on each path, REST snapshots, VTS/1 checksums."""
    wire = Wire(seed, grid, OrderBook.checksum)
    run_in_lockstep(
        wire, lambda: BookSync("orderbook:X-Y", wire.inst, lambda: 0.5, SYNC_CFG), ops, shell_step
    )


VENUE_RULES: dict[str, tuple[SyncRules, Callable[[OrderBook], int]]] = {
    # OKX: prevSeqId links updates, the book comes in band, the signed CRC of the top 25
    "okx": (
        SyncRules(continuity=Continuity.LINK, seeding=Seeding.IN_BAND, checksum=okx.checksum),
        okx.checksum,
    ),
    # Kraken: no ids, in band, a book of fixed depth (truncated locally), the CRC of the top 10
    "kraken10": (
        SyncRules(
            continuity=Continuity.NONE,
            seeding=Seeding.IN_BAND,
            checksum=kraken.checksum,
            depth=10,
        ),
        kraken.checksum,
    ),
    "kraken25": (
        SyncRules(
            continuity=Continuity.NONE,
            seeding=Seeding.IN_BAND,
            checksum=kraken.checksum,
            depth=25,
        ),
        kraken.checksum,
    ),
}


def venue_step(wire: Wire, sync: BookSync, o: tuple[Any, ...]) -> object:
    """One op of a venue shell against one sync (updates with ids, in-band snapshots)."""
    kind = o[0]
    fed = wire.pick(o)
    if fed is not None and sync.state is not SyncState.IDLE and sync.state is not SyncState.STALE:
        seq, bids, asks, checksum = fed
        return sync.on_update(bids, asks, seq, seq, seq - 1, checksum)
    if kind in ("snapshot", "bad_snapshot", "late_snapshot"):
        s, bids, asks = wire.stream.snapshot(wire.snapshot_seq(o[1]))
        checksum = wire.true_checksum(s) ^ (kind == "bad_snapshot")
        return sync.on_stream_snapshot(s, bids, asks, checksum)
    return common_step(sync, o)


@SETTINGS
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(SYNC_GRIDS),
    st.sampled_from(sorted(VENUE_RULES)),
    sync_ops(VENUE_KINDS),
)
def test_venue_booksyncs_agree_update_by_update(
    seed: int, grid: tuple[str, str], venue: str, ops: list[tuple[Any, ...]]
) -> None:
    """OKX's and Kraken's rules: their checksums (compiled twins) decide every update."""
    rules, checksum = VENUE_RULES[venue]
    wire = Wire(seed, grid, checksum)
    run_in_lockstep(
        wire,
        lambda: BookSync("orderbook:X-Y", wire.inst, lambda: 0.5, SYNC_CFG, rules),
        ops,
        venue_step,
        in_band=True,
    )


DRIVERS: list[tuple[str, Callable[[Wire, BookSync, tuple[Any, ...]], object], Any]] = [
    ("vts", shell_step, (SyncRules(), OrderBook.checksum)),
    *((name, venue_step, VENUE_RULES[name]) for name in sorted(VENUE_RULES)),
]


@pytest.mark.parametrize(("name", "step", "rules"), DRIVERS, ids=[d[0] for d in DRIVERS])
def test_the_sequence_tests_go_live_apply_and_break(
    name: str, step: Callable[[Wire, BookSync, tuple[Any, ...]], object], rules: Any
) -> None:
    """The sequence tests above are worth something only if their syncs go LIVE, apply
    updates and break on a bad checksum: a plain run of each driver shows they do."""
    # at most 10 levels a side: a depth of 10 then never drops a level the venue would
    # bring back into scope (this market's deltas do not)
    wire = Wire(7, SYNC_GRIDS[1], rules[1], width=20)
    sync = BookSync("orderbook:X-Y", wire.inst, lambda: 0.5, SYNC_CFG, rules[0])
    sync.start()
    wire.produce()
    wire.queue.clear()
    step(wire, sync, ("snapshot", 0))
    assert sync.synced, name
    for _ in range(20):
        wire.produce()
        step(wire, sync, ("deliver",))
        wire.delivered()
    assert sync.synced and sync.stats.applied >= 20, name
    wire.produce()
    step(wire, sync, ("bad_checksum", 1))
    assert not sync.synced and sync.stats.gaps["checksum"] == 1, name


# -- CRC-32 ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_crc32_is_zlibs(data: bytes) -> None:
    assert hot is not None
    assert hot.crc32(data) == zlib.crc32(data)
    assert hot.crc32(bytearray(data)) == zlib.crc32(data)
    assert hot.crc32(memoryview(data)[1:]) == zlib.crc32(data[1:])


def test_crc32_refuses_what_zlib_refuses() -> None:
    assert hot is not None
    bads: list[Any] = ["text", 5, None, memoryview(b"abcd")[::2]]
    for bad in bads:
        assert outcome(partial(hot.crc32, bad)) == outcome(partial(zlib.crc32, bad))
