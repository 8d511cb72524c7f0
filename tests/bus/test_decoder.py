"""The bus consumer's decoder (pure): the collector's per-book seq rules, link messages, and
bad input. A hypothesis test drives it against a trivially correct model of the rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickpipe.bus import schema
from tickpipe.bus.decoder import (
    BusDecoder,
    LinkAck,
    LinkOpened,
    LinkStart,
    LinkUnknown,
    encode_link,
)
from tickpipe.errors import FrameError
from tickpipe.protocol import frames
from tickpipe.protocol.normalised import (
    BookDelta,
    BookGap,
    BookSnapshot,
    BookUnsynced,
    TickerEvent,
    TradeEvent,
)
from tickpipe.venues.base import Ack, Opened

CH = "orderbook:BTC/USD"


def snap(seq: int, reset: bool = True, vid: int | None = 100) -> bytes:
    return schema.encode(
        schema.Snap(CH, "c1", 1, seq, reset, [("10.0", "1")], [("10.5", "2")], venue_id=vid)
    )


def delta(seq: int, vid: int | None = None) -> bytes:
    return schema.encode(schema.Delta(CH, 1, seq, [("10.0", "3")], [], venue_id=vid, ts_ns=7))


def state(seq: int, reason: str = "heartbeat") -> bytes:
    return schema.encode(schema.State(CH, "c1", 1, seq, "stale", reason))


def start() -> bytes:
    return encode_link(LinkStart(CH))


def test_nothing_applies_before_a_snap_then_deltas_follow_in_order() -> None:
    d = BusDecoder()
    d.decode(start())
    assert d.decode(delta(5)) == []  # before any snap: dropped
    assert d.dropped_before_snap == 1
    s = d.decode(snap(5, reset=False, vid=42))
    assert isinstance(s, BookSnapshot)
    assert (s.symbol, s.last_id, s.bids, s.asks) == (
        "BTC/USD",
        42,
        [("10.0", "1")],
        [("10.5", "2")],
    )
    got = d.decode(delta(6, vid=43))
    assert got == BookDelta("BTC/USD", [("10.0", "3")], [], last_id=43, ts_ns=7)
    assert d.decode(delta(6)) == []  # a duplicate
    assert d.duplicates == 1
    assert d.decode(snap(6, reset=False)) == []  # a periodic copy at the current seq


def test_a_hole_is_a_gap_and_nothing_applies_until_a_snap_seeds_again() -> None:
    d = BusDecoder()
    d.decode(start())
    d.decode(snap(1))
    assert d.decode(delta(3)) == BookGap("BTC/USD", 2, 3)
    assert d.decode(delta(4)) == []
    assert isinstance(d.decode(snap(4, reset=False)), BookSnapshot)
    assert isinstance(d.decode(delta(5)), BookDelta)


def test_a_periodic_snap_ahead_of_the_book_is_a_gap() -> None:
    d = BusDecoder()
    d.decode(start())
    d.decode(snap(1))
    assert d.decode(snap(3, reset=False)) == BookGap("BTC/USD", 2, 3)


def test_a_reset_snap_replaces_the_book_whatever_its_seq() -> None:
    d = BusDecoder()
    d.decode(start())
    d.decode(snap(10))
    assert isinstance(d.decode(snap(1, reset=True)), BookSnapshot)  # a new collector
    assert isinstance(d.decode(delta(2)), BookDelta)


def test_state_unsyncs_until_the_next_snap() -> None:
    d = BusDecoder()
    d.decode(start())
    d.decode(snap(1))
    assert d.decode(state(1, "disconnected")) == BookUnsynced("BTC/USD", "disconnected")
    assert d.decode(delta(2)) == []
    assert isinstance(d.decode(snap(2)), BookSnapshot)


def test_link_start_forgets_the_book() -> None:
    d = BusDecoder()
    d.decode(start())
    d.decode(snap(1))
    d.decode(start())
    assert d.decode(delta(2)) == []


def test_trades_tickers_and_link_answers() -> None:
    d = BusDecoder()
    t = d.decode(schema.encode(schema.Trade("trades:X", "17", "1.5", "2", "buy", ts_ns=3)))
    assert t == TradeEvent("X", "17", "1.5", "2", "buy", 3)
    k = d.decode(schema.encode(schema.Ticker("ticker:X", "1", "2", "3", "4", last="5")))
    assert k == TickerEvent("X", "1", "2", "3", "4", "5", None, None)
    assert d.decode(encode_link(LinkAck(3, "ticker:X"))) == Ack(3, "ticker:X")
    unknown = d.decode(encode_link(LinkUnknown(3, "ticker:Y", "nobody publishes it")))
    assert unknown == frames.ErrorFrame("unknown_channel", "nobody publishes it", "ticker:Y", 3)
    opened = d.decode_open(encode_link(LinkOpened("c1", 1000)))
    assert opened == Opened("c1", 1000)
    assert d.decode_open(encode_link(LinkAck(1, "x"))) is None
    hb = schema.Heartbeat("vts", "c1", 1000, [CH])
    assert d.decode(schema.encode(hb)) == []


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b'{"t":"nope"}',
        b'{"t":"delta","channel":"orderbook:X"}',  # fields missing
        b'{"t":"delta","channel":"orderbook:X","epoch":1,"seq":"2","bids":[],"asks":[]}',
        b'{"t":"snap","channel":1}',
    ],
)
def test_bad_input_is_a_frame_error_naming_the_bus(data: bytes) -> None:
    with pytest.raises(FrameError, match="bus"):
        BusDecoder().decode(data)
    with pytest.raises(FrameError):
        BusDecoder().decode_open(data)


# -- against a model ------------------------------------------------------------------------

Msg = tuple[str, int]  # ("start"|"snap"|"psnap"|"delta"|"state", seq)
msgs = st.lists(
    st.tuples(st.sampled_from(["start", "snap", "psnap", "delta", "delta", "delta", "state"]),
              st.integers(1, 12)),
    max_size=60,
)  # fmt: skip


def model(ms: list[Msg]) -> list[str]:
    """The rules of bus/decoder.py's docstring, written plainly."""
    out: list[str] = []
    last: int | None = None
    seeded = False
    for kind, seq in ms:
        if kind == "start":
            last, seeded = None, False
            out.append("-")
        elif kind == "snap" or (kind == "psnap" and not seeded):
            last, seeded = seq, True
            out.append("seed")
        elif kind == "psnap":
            assert last is not None
            if seq == last or seq < last:
                out.append("-")
            else:
                seeded = False
                out.append("gap")
        elif kind == "state":
            last, seeded = seq, False
            out.append("unsynced")
        elif not seeded:
            out.append("-")
        else:
            assert last is not None
            if seq == last + 1:
                last = seq
                out.append("apply")
            elif seq <= last:
                out.append("-")
            else:
                seeded = False
                out.append("gap")
    return out


def _name(v: object) -> str:
    return {
        BookSnapshot: "seed",
        BookDelta: "apply",
        BookGap: "gap",
        BookUnsynced: "unsynced",
        list: "-",
    }[type(v)]


@settings(max_examples=300, deadline=None)
@given(msgs)
def test_decoder_matches_the_model(ms: list[Msg]) -> None:
    d = BusDecoder()
    enc = {
        "start": lambda s: start(),
        "snap": lambda s: snap(s, reset=True),
        "psnap": lambda s: snap(s, reset=False),
        "delta": delta,
        "state": state,
    }
    got = [_name(d.decode(enc[k](s))) for k, s in ms]
    assert got == model(ms)
