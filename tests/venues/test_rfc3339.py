"""``parse_ns``'s cached fast path against ``parse_reference`` (the regex, every time): the same
nanoseconds or the same ValueError for any text, whether its head is cached or not."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tickpipe.venues.kraken import rfc3339
from tickpipe.venues.kraken.rfc3339 import format_ns, parse_ns, parse_reference


def _outcome(fn: object, text: str) -> tuple[str, object]:
    assert callable(fn)
    try:
        return ("ok", fn(text))
    except ValueError as exc:
        return ("error", str(exc))


_DIGITS = "0123456789"
_ODD = "0123456789\u0663\uff11\u00b2a. "  # Arabic-Indic, fullwidth (\d takes them), superscript 2


def _field(width: int) -> st.SearchStrategy[str]:
    valid = st.integers(0, 10**width - 1).map(lambda n: str(n).rjust(width, "0"))
    odd = st.text(alphabet=_ODD, min_size=width - 1, max_size=width + 1)
    return st.one_of(valid, valid, valid, odd)


_heads = st.builds(
    lambda y, mo, d, sep, h, mi, s: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}",
    _field(4),
    st.one_of(st.integers(1, 12).map(lambda n: f"{n:02d}"), _field(2)),
    st.one_of(st.integers(1, 28).map(lambda n: f"{n:02d}"), _field(2)),
    st.sampled_from(["T", "t", " ", "x"]),
    st.one_of(st.integers(0, 23).map(lambda n: f"{n:02d}"), _field(2)),
    st.one_of(st.integers(0, 59).map(lambda n: f"{n:02d}"), _field(2)),
    st.one_of(st.integers(0, 60).map(lambda n: f"{n:02d}"), _field(2)),
)
_tails = st.builds(
    lambda frac, tz: frac + tz,
    st.one_of(
        st.just(""),
        st.text(alphabet=_DIGITS, min_size=1, max_size=14).map(lambda f: "." + f),
        st.text(alphabet=_ODD, max_size=14).map(lambda f: "." + f),
    ),
    st.sampled_from(["Z", "z", "+01:00", "-05:30", "", "ZZ", "+1:00", "Z\n", "\u0663"]),
)


@settings(max_examples=600, deadline=None)
@given(head=_heads, seen_tail=_tails, tail=_tails)
@example(head="2023-11-14T22:13:20", seen_tail="Z", tail=".5\u00b2Z")  # isdigit, not \d
@example(head="2023-11-14T22:13:20", seen_tail="Z", tail=".\u0663Z")  # \d, not ASCII
@example(head="2023-11-14T22:13:20", seen_tail="Z", tail=".1234567890123Z")  # 13 digits
def test_the_fast_path_answers_as_the_reference_does(head: str, seen_tail: str, tail: str) -> None:
    """``head + seen_tail`` parsed first (caching its head when valid), then ``head + tail``:
    the fast path must answer exactly as the reference for the second text."""
    _outcome(parse_reference, head + seen_tail)
    text = head + tail
    assert _outcome(parse_ns, text) == _outcome(parse_reference, text)
    assert _outcome(parse_ns, text) == _outcome(parse_reference, text)  # cached by now


def test_the_head_cache_is_bounded_and_serves_a_whole_second() -> None:
    base = 1_700_000_000 * 10**9
    for i in range(rfc3339._HEADS_MAX * 3):
        ns = base + i * 10**9 + 123_456_000
        assert parse_ns(format_ns(ns, 6)) == ns
        assert len(rfc3339._HEADS) <= rfc3339._HEADS_MAX
    text = format_ns(base, 6)[:19]
    assert parse_ns(text + ".5Z") == base + 500_000_000
    assert text in rfc3339._HEADS
    assert parse_ns(text + ".999999999999Z") == base + 999_999_999  # past 9 digits: dropped
    assert parse_ns(text + "+01:00") == base - 3600 * 10**9  # an offset: the reference
