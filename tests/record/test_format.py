"""The recording format (pure): records round-trip, and a part cut anywhere decodes up to its
last whole record."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickpipe.record import format as fmt

ints = st.integers(min_value=0, max_value=2**62)
records = st.one_of(
    st.builds(fmt.Frame, ints, ints, st.binary(max_size=300)),
    st.builds(fmt.OpenFrame, ints, ints, st.binary(max_size=50)),
    st.builds(
        fmt.Rest,
        ints,
        ints,
        st.sampled_from(["GET", "POST"]),
        st.text(max_size=40),
        st.integers(0, 599),
        st.binary(max_size=300),
        st.none() | st.text(max_size=10),
    ),
    st.builds(
        fmt.SnapshotDelivered,
        ints,
        ints,
        st.text(max_size=20),
        st.integers(0, 1000),
        st.booleans(),
        st.none() | st.text(max_size=30),
        st.none() | st.floats(0, 100),
    ),
    st.builds(
        fmt.Connection,
        ints,
        ints,
        st.sampled_from(["connected", "disconnected"]),
        st.dictionaries(
            st.text(max_size=8), st.integers(-(2**60), 2**60) | st.text(max_size=8), max_size=3
        ),
    ),
    st.builds(
        fmt.Sent,
        ints,
        ints,
        st.integers(0, 10**6),
        st.text(max_size=10),
        st.lists(st.text(max_size=12), max_size=3),
    ),
    st.builds(fmt.Overflow, ints, ints, st.integers(0, 10**6)),
    st.builds(fmt.End, ints, ints, st.text(max_size=10)),
)


def header() -> fmt.Header:
    return fmt.Header(
        fmt.MAGIC,
        fmt.FORMAT_VERSION,
        "0.1.0",
        "vts",
        ["orderbook:AAPL"],
        1,
        5,
        "ws://x/v1/stream",
        "http://x",
        None,
        10_000,
        "/v1/instruments",
        b"[]",
    )


def part(chunks: list[list[fmt.Record]]) -> bytes:
    out = fmt.compress_chunk(fmt.encode_record(header()))
    for chunk in chunks:
        out += fmt.compress_chunk(fmt.encode_records(chunk))
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(records, min_size=1, max_size=8), max_size=6))
def test_round_trip(chunks: list[list[fmt.Record]]) -> None:
    got = fmt.decode_part(part(chunks))
    assert got.header == header()
    assert got.records == [r for c in chunks for r in c]
    assert not got.truncated


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(records, min_size=1, max_size=8), min_size=1, max_size=6), st.data())
def test_cut_anywhere_keeps_every_whole_chunk_before_the_cut(
    chunks: list[list[fmt.Record]], data: st.DataObject
) -> None:
    whole = part(chunks)
    head_len = len(fmt.compress_chunk(fmt.encode_record(header())))
    cut = data.draw(st.integers(head_len, len(whole) - 1))
    got = fmt.decode_part(whole[:cut])
    flat = [r for c in chunks for r in c]
    # a prefix of what was written, at least every chunk wholly before the cut
    assert got.records == flat[: len(got.records)]
    size, kept, boundaries = head_len, 0, {head_len}
    for c in chunks:
        size += len(fmt.compress_chunk(fmt.encode_records(c)))
        boundaries.add(size)
        if size <= cut:
            kept += len(c)
    assert len(got.records) >= kept
    assert got.truncated == (cut not in boundaries)


def test_not_a_recording() -> None:
    with pytest.raises(fmt.FormatError, match="not a tickpipe recording"):
        fmt.decode_part(fmt.compress_chunk(b"hello world"))
    with pytest.raises(fmt.FormatError):
        fmt.decode_part(b"")


def test_split_records_stops_at_a_cut_record() -> None:
    raw = fmt.encode_records([fmt.Frame(1, 2, b"abc"), fmt.Frame(3, 4, b"defgh")])
    recs, used = fmt.split_records(raw[:-2])
    assert recs == [fmt.Frame(1, 2, b"abc")] and used < len(raw)
