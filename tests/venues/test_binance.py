"""Binance spot and USD-M codec: documented examples, recorded sessions, planted faults, round
trips, garbled input. Documented frames are quoted from binance-spot-api-docs
``web-socket-streams.md`` / ``rest-api.md`` (commit a5e0bc3) and the USD-M pages on
developers.binance.com (see ``tickpipe/venues/binance/endpoints.py``)."""

from __future__ import annotations

import gzip
import itertools
import json
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tickpipe.errors import ConfigError, FrameError
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.continuity import Step, bridges, follows
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import (
    BookDelta,
    BookSnapshot,
    Continuity,
    Seeding,
    TickerEvent,
    TradeEvent,
)
from tickpipe.venues.binance.codec import (
    Codec,
    Command,
    CommandAck,
    ServerShutdown,
    VenueError,
)
from tickpipe.venues.binance.endpoints import SPOT, USDM, HeartbeatStyle, parse_channel
from tickpipe.venues.binance.limits import SPOT_LIMITS, USDM_LIMITS, retry_after_s

FIXTURES = Path(__file__).parent.parent / "fixtures" / "venues" / "binance"
spot = Codec(SPOT)
usdm = Codec(USDM)


def compact(doc: str) -> bytes:
    """A documented example (comments stripped) as the venue sends it: compact JSON, same key
    order."""
    lines = [line.split("//")[0] for line in doc.splitlines()]
    return json.dumps(json.loads("\n".join(lines)), separators=(",", ":")).encode()


# -- documented examples: spot --------------------------------------------------------------

SPOT_DEPTH_DOC = """{
  "e": "depthUpdate",     // Event type
  "E": 1672515782136,     // Event time
  "s": "BNBBTC",          // Symbol
  "U": 157,               // First update ID in event
  "u": 160,               // Final update ID in event
  "b": [["0.0024", "10"]],
  "a": [["0.0026", "100"]]
}"""

SPOT_TRADE_DOC = """{
    "e": "trade",           // Event type
    "E": 1672515782136,     // Event time
    "s": "BNBBTC",          // Symbol
    "t": 12345,             // Trade ID
    "p": "0.001",           // Price
    "q": "100",             // Quantity
    "T": 1672515782136,     // Trade time
    "m": true,              // Is the buyer the market maker?
    "M": true               // Ignore
}"""

SPOT_BOOK_TICKER_DOC = """{
    "u": 400900217,         // order book updateId
    "s": "BNBUSDT",         // symbol
    "b": "25.35190000",     // best bid price
    "B": "31.21000000",     // best bid qty
    "a": "25.36520000",     // best ask price
    "A": "40.66000000"      // best ask qty
}"""

SPOT_DEPTH_SNAPSHOT_DOC = """{
    "lastUpdateId": 1027024,
    "bids": [["4.00000000", "431.00000000"]],
    "asks": [["4.00000200", "12.00000000"]]
}"""


def test_spot_depth_update_documented_example() -> None:
    frame = compact(SPOT_DEPTH_DOC)
    assert spot.decode_frame(frame) == BookDelta(
        "BNBBTC",
        [("0.0024", "10")],
        [("0.0026", "100")],
        last_id=160,
        first_id=157,
        prev_id=None,
        ts_ns=1672515782136 * 1_000_000,
    )
    wrapped = b'{"stream":"bnbbtc@depth@100ms","data":' + frame + b"}"
    assert spot.decode_frame(wrapped) == spot.decode_frame(frame)
    assert spot.decode_frame(frame.decode()) == spot.decode_frame(frame)  # str frames too


def test_spot_trade_and_book_ticker_documented_examples() -> None:
    assert spot.decode_frame(compact(SPOT_TRADE_DOC)) == TradeEvent(
        "BNBBTC", "12345", "0.001", "100", "sell", 1672515782136 * 1_000_000
    )
    assert spot.decode_frame(compact(SPOT_BOOK_TICKER_DOC)) == TickerEvent(
        "BNBUSDT", "25.35190000", "31.21000000", "25.36520000", "40.66000000"
    )
    buyer_taker = compact(SPOT_TRADE_DOC).replace(b'"m":true', b'"m":false')
    trade = spot.decode_frame(buyer_taker)
    assert isinstance(trade, TradeEvent) and trade.side == "buy"


def test_spot_control_frames_documented() -> None:
    assert spot.decode_frame(b'{"result":null,"id":1}') == CommandAck(1, None)
    assert spot.decode_frame(b'{"result":null,"id":312}') == CommandAck(312, None)
    assert spot.decode_frame(b'{"result":["btcusdt@aggTrade"],"id":3}') == CommandAck(
        3, ["btcusdt@aggTrade"]
    )
    assert spot.decode_frame(b'{"result":true,"id":2}') == CommandAck(2, True)
    assert spot.decode_frame(b'{"code": 0, "msg": "Unknown property","id": 7}') == VenueError(
        0, "Unknown property", 7
    )
    doc = b'{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1"}'
    assert spot.decode_frame(doc) == VenueError(
        3, "Invalid JSON: expected value at line 1 column 1"
    )
    shutdown = b'{"e": "serverShutdown", "E": 1770123456789}'
    assert spot.decode_frame(shutdown) == ServerShutdown(1770123456789 * 1_000_000)
    combined = b'{"stream": "!serverShutdown", "data": ' + shutdown + b"}"
    assert spot.decode_frame(combined) == ServerShutdown(1770123456789 * 1_000_000)


def test_spot_rest_bodies_documented() -> None:
    snap = spot.decode_depth_snapshot(compact(SPOT_DEPTH_SNAPSHOT_DOC), "bnbbtc")
    assert snap == BookSnapshot(
        "BNBBTC", 1027024, [("4.00000000", "431.00000000")], [("4.00000200", "12.00000000")]
    )
    assert spot.decode_rest_error(b'{"code": -1121, "msg": "Invalid symbol."}') == VenueError(
        -1121, "Invalid symbol."
    )


def test_spot_subscribe_messages_documented() -> None:
    assert SPOT.subscribe_message(["trades:BTCUSDT", "orderbook:BTCUSDT"], 1) == (
        b'{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@depth@100ms"],"id":1}'
    )
    assert SPOT.unsubscribe_message(["orderbook:BTCUSDT"], 312) == (
        b'{"method":"UNSUBSCRIBE","params":["btcusdt@depth@100ms"],"id":312}'
    )
    assert SPOT.list_subscriptions_message(3) == b'{"method":"LIST_SUBSCRIPTIONS","id":3}'
    cmd = spot.decode_command(SPOT.subscribe_message(["ticker:BNBUSDT"], 9))
    assert cmd == Command("SUBSCRIBE", ["bnbusdt@bookTicker"], 9)
    assert spot.encode_ack(9) == b'{"result":null,"id":9}'
    assert spot.encode_error(2, "Invalid request: too many parameters", 9) == (
        b'{"code":2,"msg":"Invalid request: too many parameters","id":9}'
    )
    assert spot.encode_error(3, "Invalid JSON") == b'{"code":3,"msg":"Invalid JSON"}'
    with pytest.raises(ConfigError, match="64-bit"):
        SPOT.subscribe_message(["ticker:BNBUSDT"], 2**63)
    with pytest.raises(FrameError):
        spot.decode_command(b'{"params":[],"id":1}')


# -- documented examples: USD-M ---------------------------------------------------------------

USDM_DEPTH_DOC = """{
  "e": "depthUpdate",   // Event type
  "E": 123456789,       // Event time
  "T": 123456788,       // Transaction time
  "s": "BTCUSDT",       // Symbol
  "U": 157,             // First update ID in event
  "u": 160,             // Final update ID in event
  "pu": 149,            // Final update Id in last stream(ie `u` in last stream)
  "b": [["0.0024", "10"]],
  "a": [["0.0026", "100"]]
}"""

USDM_AGG_TRADE_DOC = """{
  "e": "aggTrade",  // Event type
  "E": 123456789,   // Event time
  "s": "BTCUSDT",   // Symbol
  "a": 5933014,     // Aggregate trade ID
  "p": "0.001",     // Price
  "q": "100",       // Quantity
  "f": 100,         // First trade ID
  "l": 105,         // Last trade ID
  "T": 123456785,   // Trade time
  "m": true         // Is the buyer the market maker?
}"""

USDM_BOOK_TICKER_DOC = """{
  "e":"bookTicker",         // event type
  "u":400900217,            // order book updateId
  "E": 1568014460893,       // event time
  "T": 1568014460891,       // transaction time
  "s":"BNBUSDT",            // symbol
  "b":"25.35190000",        // best bid price
  "B":"31.21000000",        // best bid qty
  "a":"25.36520000",        // best ask price
  "A":"40.66000000"         // best ask qty
}"""

USDM_DEPTH_SNAPSHOT_DOC = """{
  "lastUpdateId": 1027024,
  "E": 1589436922972,   // Message output time
  "T": 1589436922959,   // Transaction time
  "bids": [["4.00000000", "431.00000000"]],
  "asks": [["4.00000200", "12.00000000"]]
}"""


def test_usdm_documented_examples() -> None:
    assert usdm.decode_frame(compact(USDM_DEPTH_DOC)) == BookDelta(
        "BTCUSDT",
        [("0.0024", "10")],
        [("0.0026", "100")],
        last_id=160,
        first_id=157,
        prev_id=149,
        ts_ns=123456789 * 1_000_000,
    )
    assert usdm.decode_frame(compact(USDM_AGG_TRADE_DOC)) == TradeEvent(
        "BTCUSDT", "5933014", "0.001", "100", "sell", 123456785 * 1_000_000
    )
    assert usdm.decode_frame(compact(USDM_BOOK_TICKER_DOC)) == TickerEvent(
        "BNBUSDT",
        "25.35190000",
        "31.21000000",
        "25.36520000",
        "40.66000000",
        ts_ns=1568014460893 * 1_000_000,
    )
    assert usdm.decode_depth_snapshot(compact(USDM_DEPTH_SNAPSHOT_DOC), "BTCUSDT") == (
        BookSnapshot(
            "BTCUSDT",
            1027024,
            [("4.00000000", "431.00000000")],
            [("4.00000200", "12.00000000")],
            ts_ns=1589436922972 * 1_000_000,
        )
    )
    wrapped = b'{"stream":"btcusdt@aggTrade","data":' + compact(USDM_AGG_TRADE_DOC) + b"}"
    assert usdm.decode_frame(wrapped) == usdm.decode_frame(compact(USDM_AGG_TRADE_DOC))


def test_usdm_depth_without_pu_names_the_field() -> None:
    frame = compact(USDM_DEPTH_DOC).replace(b'"pu":149,', b"")
    with pytest.raises(FrameError) as info:
        usdm.decode_frame(frame)
    assert (info.value.channel, info.value.field) == ("orderbook:BTCUSDT", "pu")
    # the spot codec reads the spot shape: T and pu are not part of it (ignored)
    assert spot.decode_frame(compact(USDM_DEPTH_DOC)) == BookDelta(
        "BTCUSDT",
        [("0.0024", "10")],
        [("0.0026", "100")],
        last_id=160,
        first_id=157,
        ts_ns=123456789 * 1_000_000,
    )


# -- the sync rules: USD-M bridge against the documented rule -------------------------------


def documented_usdm_first(snapshot_id: int, first: int, last: int) -> Step:
    """The USD-M page, steps 4-5: "Drop any event where u is < lastUpdateId"; "The first
    processed event should have U <= lastUpdateId AND u >= lastUpdateId"; else re-seed."""
    if last < snapshot_id:
        return Step.COVERED
    return Step.NEXT if first <= snapshot_id <= last else Step.GAP


def test_usdm_bridge_matches_the_documented_rule_but_two_harmless_cases() -> None:
    """``continuity.bridges(LINK)`` (which reads ``pu`` and ``u``, not ``U``) against the
    documented U/u rule, over every small case: they agree except
    (a) ``u == lastUpdateId``: documented "process it", bridges "covered, drop it"; the event is
        already in the snapshot and the next one (``pu == lastUpdateId``) bridges: same book;
    (b) ``pu <= lastUpdateId < U``: documented "re-seed", bridges "apply". ``pu`` proves no
        update of this book lies between ``pu`` and ``U``, so the snapshot equals the book at
        ``pu`` and applying the event is exact: bridges saves a pointless re-fetch."""
    disagreements: set[str] = set()
    cases = 0
    for snapshot_id in range(0, 12):
        for prev in range(0, 10):
            for first in range(prev + 1, 11):
                for last in range(first, 12):
                    cases += 1
                    delta = BookDelta("X", [], [], last_id=last, first_id=first, prev_id=prev)
                    got = bridges(Continuity.LINK, snapshot_id, delta)
                    want = documented_usdm_first(snapshot_id, first, last)
                    if got is want:
                        continue
                    if last == snapshot_id and want is Step.NEXT and got is Step.COVERED:
                        disagreements.add("a")
                    elif prev <= snapshot_id < first and want is Step.GAP and got is Step.NEXT:
                        disagreements.add("b")
                    else:
                        pytest.fail(f"S={snapshot_id} pu={prev} U={first} u={last}: {got} {want}")
    assert cases > 1000 and disagreements == {"a", "b"}


def test_spot_bridge_matches_the_documented_procedure() -> None:
    """Spot page: discard u <= lastUpdateId; the first then has U <= lastUpdateId + 1 (the
    update procedure: "If U > local id + 1, you have missed some events")."""
    for snapshot_id in range(0, 12):
        for first in range(0, 12):
            for last in range(first, 14):
                delta = BookDelta("X", [], [], last_id=last, first_id=first)
                if last <= snapshot_id:
                    want = Step.COVERED
                else:
                    want = Step.NEXT if first <= snapshot_id + 1 else Step.GAP
                assert bridges(Continuity.RANGE, snapshot_id, delta) is want


# -- recorded sessions -------------------------------------------------------------------------


class _Line(msgspec.Struct):
    kind: str
    msg: msgspec.Raw
    stream: str | None = None


def recorded(symbol: str) -> tuple[bytes, list[bytes]]:
    """The recorded snapshot body and the update frames, wrapped as the combined stream."""
    snapshot = b""
    updates: list[bytes] = []
    with gzip.open(FIXTURES / f"{symbol}.jsonl.gz", "rb") as f:
        for raw in f:
            line = msgspec.json.decode(raw, type=_Line)
            if line.kind == "snapshot":
                snapshot = bytes(line.msg)
            else:
                assert line.stream is not None
                updates.append(msgspec.json.encode({"stream": line.stream, "data": line.msg}))
    return snapshot, updates


def exchange_info_body() -> bytes:
    with gzip.open(FIXTURES / "exchangeInfo.json.gz", "rb") as f:
        return msgspec.json.encode(json.load(f)["body"])


def instruments() -> dict[str, Instrument]:
    return spot.decode_exchange_info(exchange_info_body())


def load(book: OrderBook, snap: BookSnapshot) -> None:
    inst = book.instrument
    book.load(
        [(inst.price_units(p), inst.size_units(s)) for p, s in snap.bids],
        [(inst.price_units(p), inst.size_units(s)) for p, s in snap.asks],
    )


def apply(book: OrderBook, delta: BookDelta) -> None:
    inst = book.instrument
    ch = f"orderbook:{delta.symbol}"
    book.bids.apply([(inst.price_units(p, channel=ch), inst.size_units(s)) for p, s in delta.bids])
    book.asks.apply([(inst.price_units(p, channel=ch), inst.size_units(s)) for p, s in delta.asks])


def replay(symbol: str, updates: list[bytes] | None = None) -> dict[str, Any]:
    """Seed from the recorded snapshot, bridge, apply every update with the spot rule; count
    what happened. Stops at the first GAP."""
    body, frames = recorded(symbol)
    frames = frames if updates is None else updates
    snap = spot.decode_depth_snapshot(body, symbol)
    assert snap.last_id is not None
    book = OrderBook(instruments()[symbol])
    load(book, snap)
    last_id: int | None = None
    out: dict[str, Any] = {"covered": 0, "applied": 0, "gap": None, "book": book}
    for i, frame in enumerate(frames):
        delta = spot.decode_frame(frame)
        assert isinstance(delta, BookDelta)
        if last_id is None:
            step = bridges(SPOT.continuity, snap.last_id, delta)
        else:
            step = follows(SPOT.continuity, last_id, delta)
        if step is Step.GAP:
            out["gap"] = i
            return out
        if step is Step.COVERED:
            out["covered"] += 1
            continue
        apply(book, delta)
        assert delta.last_id is not None
        last_id = delta.last_id
        out["applied"] += 1
        bid, ask = book.bids.best(), book.asks.best()
        assert bid is not None and ask is not None and bid[0] < ask[0], f"crossed at {i}"
    out["last_id"] = last_id
    return out


@pytest.mark.parametrize(("symbol", "updates", "covered"), [("NKNUSDT", 150, 1), ("LRCBTC", 15, 2)])
def test_recorded_sessions_bridge_and_replay_uncrossed(
    symbol: str, updates: int, covered: int
) -> None:
    """Every recorded update bridges from its snapshot (covered ones are older) and follows
    the previous one with no gap; the book stays uncrossed after every update."""
    result = replay(symbol)
    assert result["gap"] is None
    assert result["covered"] == covered
    assert result["applied"] + result["covered"] == updates


def test_recorded_dropped_update_is_a_gap_and_duplicate_is_covered() -> None:
    _, frames = recorded("NKNUSDT")
    dropped = frames[:40] + frames[41:]
    assert replay("NKNUSDT", dropped)["gap"] == 40
    duplicated = [*frames[:40], frames[39], *frames[40:]]
    result = replay("NKNUSDT", duplicated)
    assert result["gap"] is None and result["covered"] == 2
    # a snapshot older than the first buffered update cannot bridge: GAP on the first one
    assert replay("NKNUSDT", frames[5:])["gap"] == 0


def test_recorded_frames_reencode_byte_for_byte() -> None:
    """decode then encode gives back exactly the bytes Binance sent (compact JSON, the
    documented key order), for every recorded update, wrapped and raw."""
    count = 0
    for symbol in ("NKNUSDT", "LRCBTC"):
        body, frames = recorded(symbol)
        for frame in frames:
            wrapped = msgspec.json.decode(frame)
            raw = json.dumps(wrapped["data"], separators=(",", ":")).encode()
            delta = spot.decode_frame(frame)
            assert isinstance(delta, BookDelta)
            assert spot.encode_delta(delta) == raw
            channel = SPOT.channel_of_stream(wrapped["stream"])
            assert (
                spot.encode_combined(channel, raw)
                == json.dumps(wrapped, separators=(",", ":")).encode()
            )
            count += 1
        snap = spot.decode_depth_snapshot(body, symbol)
        assert spot.decode_depth_snapshot(spot.encode_depth_snapshot(snap), symbol) == snap
        assert (
            spot.encode_depth_snapshot(snap)
            == json.dumps(json.loads(body), separators=(",", ":")).encode()
        )
    assert count == 165


def test_recorded_exchange_info_instruments() -> None:
    """The order grid (filters) and the book grid (the decimals levels are written in)."""
    filters = spot.decode_exchange_info(exchange_info_body(), grid="filters")
    assert len(filters) == 1695
    nkn = filters["NKNUSDT"]
    assert (nkn.tick_size, nkn.lot_size) == ("0.00010000", "1.00000000")
    assert (nkn.price_decimals, nkn.tick_units, nkn.lot_units) == (8, 10_000, 100_000_000)
    assert nkn.price_units("0.35210000") == 35_210_000
    with pytest.raises(FrameError, match="tick_size"):
        nkn.price_units("0.35215000")
    lrc = filters["LRCBTC"]
    assert (lrc.tick_size, lrc.lot_size) == ("0.00000001", "1.00000000")
    book = instruments()
    assert len(book) == 1695
    assert (book["NKNUSDT"].tick_size, book["NKNUSDT"].lot_size) == ("0.00000001",) * 2
    assert book["SHIBUSDT"].lot_size == "0.01"  # baseAssetPrecision 2
    # round trip through the dialect's encoder, both grids
    for codec in (spot, usdm):
        body = codec.encode_exchange_info(list(filters.values()), weight_per_minute=6000)
        assert codec.decode_exchange_info(body, grid="filters") == filters
        assert codec.decode_exchange_info(body) == book


def test_recorded_book_is_off_the_current_filters() -> None:
    """Why books use the written decimals: the real NKNUSDT snapshot holds levels resting from
    older grids (0.25974 with tick 0.0001; 11979.3 with step 1): checked against the filters,
    the exact snapshot would be refused."""
    body, _ = recorded("NKNUSDT")
    snap = spot.decode_depth_snapshot(body, "NKNUSDT")
    nkn = spot.decode_exchange_info(exchange_info_body(), grid="filters")["NKNUSDT"]
    off_tick = off_step = 0
    for price, size in [*snap.bids, *snap.asks]:
        try:
            nkn.price_units(price)
        except FrameError:
            off_tick += 1
        try:
            nkn.size_units(size)
        except FrameError:
            off_step += 1
    assert (off_tick, off_step) == (34, 49)


def test_exchange_info_zero_tick_and_missing_filters() -> None:
    body = {
        "symbols": [
            {
                "symbol": "AAABBB",
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": "0.00000000"},
                    {"filterType": "LOT_SIZE", "stepSize": "0.00100000"},
                ],
            }
        ]
    }
    inst = spot.decode_exchange_info(json.dumps(body))["AAABBB"]
    assert (inst.tick_size, inst.lot_size) == ("0.00000001", "0.00100000")
    body["symbols"][0]["filters"].pop()
    with pytest.raises(FrameError, match="LOT_SIZE") as info:
        spot.decode_exchange_info(json.dumps(body))
    assert info.value.field == "symbols[0].filters"
    bad = json.dumps(body).replace('"0.00000000"', '"-1"')
    with pytest.raises(FrameError):
        spot.decode_exchange_info(bad)


# -- round trips and exact encoded shapes -----------------------------------------------------


def test_encoded_frames_have_the_documented_shape() -> None:
    for codec, doc in ((spot, SPOT_DEPTH_DOC), (usdm, USDM_DEPTH_DOC)):
        delta = codec.decode_frame(compact(doc))
        assert isinstance(delta, BookDelta)
        if codec is usdm:  # the encoder writes T = E (one time per event)
            assert codec.encode_delta(delta) == compact(doc).replace(
                b'"T":123456788', b'"T":123456789'
            )
        else:
            assert codec.encode_delta(delta) == compact(doc)
    trade = spot.decode_frame(compact(SPOT_TRADE_DOC))
    assert isinstance(trade, TradeEvent)
    assert spot.encode_trade(trade) == compact(SPOT_TRADE_DOC)
    ticker = spot.decode_frame(compact(SPOT_BOOK_TICKER_DOC))
    assert isinstance(ticker, TickerEvent)
    assert spot.encode_ticker(ticker, 400900217) == compact(SPOT_BOOK_TICKER_DOC)
    agg = usdm.decode_frame(compact(USDM_AGG_TRADE_DOC))
    assert isinstance(agg, TradeEvent)
    encoded = json.loads(usdm.encode_trade(agg))
    assert list(encoded) == list(json.loads(compact(USDM_AGG_TRADE_DOC)))
    uticker = usdm.decode_frame(compact(USDM_BOOK_TICKER_DOC))
    assert isinstance(uticker, TickerEvent)
    assert list(json.loads(usdm.encode_ticker(uticker, 1))) == list(
        json.loads(compact(USDM_BOOK_TICKER_DOC))
    )
    assert spot.encode_depth_snapshot(
        spot.decode_depth_snapshot(compact(SPOT_DEPTH_SNAPSHOT_DOC), "BNBBTC")
    ) == compact(SPOT_DEPTH_SNAPSHOT_DOC)
    usnap = usdm.decode_depth_snapshot(compact(USDM_DEPTH_SNAPSHOT_DOC), "BTCUSDT")
    assert list(json.loads(usdm.encode_depth_snapshot(usnap))) == [
        "lastUpdateId",
        "E",
        "T",
        "bids",
        "asks",
    ]
    assert spot.encode_server_shutdown(5 * 1_000_000) == b'{"e":"serverShutdown","E":5}'


@pytest.mark.parametrize("codec", [spot, usdm], ids=["spot", "usdm"])
def test_round_trips(codec: Codec) -> None:
    values: list[Any] = [
        BookDelta(
            "ETHUSDT",
            [("2001.50", "0.000"), ("2001.25", "3.5")],
            [],
            last_id=2**62,
            first_id=2**62 - 5,
            prev_id=2**62 - 9 if codec is usdm else None,
            ts_ns=1_700_000_000_123 * 1_000_000,
        ),
        TradeEvent("ETHUSDT", "987654321", "2001.50", "0.25", "buy", 1_700_000_000_000_000_000),
        TradeEvent("ETHUSDT", "1", "2001.50", "0.25", "sell", 0),
    ]
    for value in values:
        encode = codec.encode_delta if isinstance(value, BookDelta) else codec.encode_trade
        data = encode(value)
        assert codec.decode_frame(data) == value
        channel = ("orderbook:" if isinstance(value, BookDelta) else "trades:") + value.symbol
        assert codec.decode_frame(codec.encode_combined(channel, data)) == value
    ticker = TickerEvent("ETHUSDT", "1", "2", "3", "4", ts_ns=1_000_000 if codec is usdm else None)
    assert codec.decode_frame(codec.encode_ticker(ticker, 7)) == ticker
    snap = BookSnapshot(
        "ETHUSDT", 42, [("1.0", "2")], [("3.0", "4")], ts_ns=5_000_000 if codec is usdm else None
    )
    assert codec.decode_depth_snapshot(codec.encode_depth_snapshot(snap), "ethusdt") == snap
    assert codec.decode_frame(codec.encode_ack(4)) == CommandAck(4)
    assert codec.decode_frame(codec.encode_error(1, "x", "abc")) == VenueError(1, "x", "abc")
    assert codec.decode_frame(codec.encode_server_shutdown(9_000_000)) == ServerShutdown(9_000_000)


def test_encoders_refuse_what_binance_cannot_carry() -> None:
    with pytest.raises(ConfigError):
        spot.encode_delta(BookDelta("A", [], [], last_id=1))
    with pytest.raises(ConfigError, match="prev_id"):
        usdm.encode_delta(BookDelta("A", [], [], last_id=2, first_id=1))
    with pytest.raises(ConfigError):
        spot.encode_trade(TradeEvent("A", "x1", "1", "1", "buy"))
    with pytest.raises(ConfigError):
        spot.encode_trade(TradeEvent("A", "1", "1", "1", None))
    with pytest.raises(ConfigError):
        spot.encode_ticker(TickerEvent("A", None, None, "1", "1"), 1)
    with pytest.raises(ConfigError):
        spot.encode_depth_snapshot(BookSnapshot("A", None, [], []))
    with pytest.raises(ConfigError):
        Codec(SPOT, ts_unit_ns=1)


def test_microsecond_time_unit() -> None:
    micro = Codec(SPOT, ts_unit_ns=1_000)
    delta = micro.decode_frame(compact(SPOT_DEPTH_DOC))
    assert isinstance(delta, BookDelta) and delta.ts_ns == 1672515782136 * 1_000


# -- bad input from the wire -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "channel", "field"),
    [
        (compact(SPOT_DEPTH_DOC).replace(b'"U":157', b'"U":"157"'), "orderbook:BNBBTC", "U"),
        (compact(SPOT_DEPTH_DOC).replace(b'"U":157', b'"U":161'), "orderbook:BNBBTC", "U"),
        (compact(SPOT_DEPTH_DOC).replace(b'"U":157', b'"U":-1'), "orderbook:BNBBTC", "U"),
        (compact(SPOT_DEPTH_DOC).replace(b'"10"]', b"10]"), "orderbook:BNBBTC", "b[0][1]"),
        (compact(SPOT_DEPTH_DOC).replace(b',"u":160', b""), "orderbook:BNBBTC", "u"),
        (compact(SPOT_DEPTH_DOC).replace(b'"0.0024",', b""), "orderbook:BNBBTC", "b[0]"),
        (compact(SPOT_TRADE_DOC).replace(b'"m":true', b'"m":1'), "trades:BNBBTC", "m"),
        (compact(SPOT_BOOK_TICKER_DOC).replace(b'"A":', b'"X":'), "ticker:BNBUSDT", "A"),
        (compact(SPOT_DEPTH_DOC).replace(b"depthUpdate", b"depthUpdat"), None, "e"),
        (b'{"stream":"bnbbtc@depth@100ms","data":{"e":"trade"}}', "orderbook:BNBBTC", "e"),
        (b'{"stream":"ethbtc@depth@100ms","data":' + compact(SPOT_DEPTH_DOC) + b"}", None, "s"),
        (b'{"stream":"bnbbtc@kline_1m","data":{}}', None, "stream"),
        (b'{"stream":"bnbbtc@depth@100ms"}', None, "data"),
        (b'{"result":null}', None, "id"),
        (b'{"code":"x","msg":"m"}', None, "code"),
        (b"[1,2]", None, None),
        (b"{}", None, None),
    ],
)
def test_bad_frames_name_channel_and_field(
    frame: bytes, channel: str | None, field: str | None
) -> None:
    with pytest.raises(FrameError) as info:
        spot.decode_frame(frame)
    if channel is not None:
        assert info.value.channel == channel
    assert info.value.field == field


def test_bad_snapshot_names_the_book() -> None:
    with pytest.raises(FrameError) as info:
        spot.decode_depth_snapshot(b'{"lastUpdateId":"1","bids":[],"asks":[]}', "btcusdt")
    assert (info.value.channel, info.value.field) == ("orderbook:BTCUSDT", "lastUpdateId")
    with pytest.raises(FrameError) as info:
        usdm.decode_depth_snapshot(compact(SPOT_DEPTH_SNAPSHOT_DOC), "BTCUSDT")
    assert info.value.field == "E"
    with pytest.raises(FrameError):
        spot.decode_rest_error(b"<html>502</html>")


def test_truncated_and_garbled_frames_raise_only_frame_error() -> None:
    """Every prefix of several real frames, and 3,000 seeded random byte mutations: each either
    decodes or raises FrameError, never anything else."""
    _, frames = recorded("LRCBTC")
    samples = [
        frames[0],
        compact(SPOT_DEPTH_DOC),
        compact(SPOT_TRADE_DOC),
        compact(SPOT_BOOK_TICKER_DOC),
        compact(USDM_DEPTH_DOC),
        b'{"result":null,"id":1}',
    ]
    rng = random.Random(14)
    decoded = failed = 0
    for codec in (spot, usdm):
        for sample in samples:
            cases = [sample[:n] for n in range(len(sample))]
            for _ in range(250):
                b = bytearray(sample)
                for _ in range(rng.randint(1, 4)):
                    b[rng.randrange(len(b))] = rng.randrange(256)
                cases.append(bytes(b))
            for case in cases:
                try:
                    codec.decode_frame(case)
                    decoded += 1
                except FrameError:
                    failed += 1
    assert failed > 1000 and decoded > 0


# -- endpoints and limits ----------------------------------------------------------------------


def test_endpoints() -> None:
    assert SPOT.stream_name("orderbook:BTCUSDT") == "btcusdt@depth@100ms"
    assert SPOT.stream_name("trades:btcusdt") == "btcusdt@trade"
    assert USDM.stream_name("trades:BTCUSDT") == "btcusdt@aggTrade"
    assert USDM.stream_name("ticker:BTCUSDT") == "btcusdt@bookTicker"
    assert SPOT.channel_of_stream("nknusdt@depth@100ms") == "orderbook:NKNUSDT"
    with pytest.raises(FrameError):
        SPOT.channel_of_stream("btcusdt@aggTrade")  # spot trades are @trade here
    assert SPOT.combined_stream_url(["orderbook:BTCUSDT", "ticker:ETHBTC"]) == (
        "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/ethbtc@bookTicker"
    )
    assert USDM.combined_stream_url(["trades:BTCUSDT"], "ws://127.0.0.1:9000") == (
        "ws://127.0.0.1:9000/stream?streams=btcusdt@aggTrade"
    )
    assert SPOT.snapshot_target("btcusdt") == "/api/v3/depth?symbol=BTCUSDT&limit=1000"
    assert USDM.snapshot_target("BTCUSDT", 500) == "/fapi/v1/depth?symbol=BTCUSDT&limit=500"
    assert SPOT.snapshot_target("BTCUSDT", 5000).endswith("limit=5000")
    with pytest.raises(ConfigError, match="5, 10, 20"):
        USDM.snapshot_target("BTCUSDT", 5000)
    with pytest.raises(ConfigError):
        SPOT.snapshot_target("BTCUSDT", 0)
    for bad in ("book:BTCUSDT", "orderbook", "orderbook:BTC-USDT", "ticker:"):
        with pytest.raises(ConfigError):
            parse_channel(bad)
    assert (SPOT.continuity, SPOT.seeding) == (Continuity.RANGE, Seeding.REST)
    assert (USDM.continuity, USDM.seeding) == (Continuity.LINK, Seeding.REST)
    assert SPOT.heartbeat.style is HeartbeatStyle.SERVER_PING
    assert (SPOT.heartbeat.server_ping_interval_s, SPOT.heartbeat.pong_timeout_s) == (20, 60)
    assert (USDM.heartbeat.server_ping_interval_s, USDM.heartbeat.pong_timeout_s) == (180, 600)
    assert SPOT.checksum is None and USDM.checksum is None


def test_limits() -> None:
    assert SPOT_LIMITS.request_weight_per_minute == 6000
    assert [SPOT_LIMITS.snapshot_weight(n) for n in (1, 100, 101, 500, 1000, 5000)] == [
        5,
        5,
        25,
        25,
        50,
        250,
    ]
    assert SPOT_LIMITS.snapshots_per_minute(1000) == 120  # issue 14: 200 books in ~65 s
    assert SPOT_LIMITS.snapshots_per_minute(100) == 1200
    assert [USDM_LIMITS.snapshot_weight(n) for n in (5, 50, 100, 500, 1000)] == [2, 2, 5, 10, 20]
    assert USDM_LIMITS.request_weight_per_minute == 2400
    with pytest.raises(ConfigError):
        SPOT_LIMITS.snapshot_weight(5001)
    with pytest.raises(ConfigError):
        USDM_LIMITS.snapshot_weight(0)
    assert (SPOT_LIMITS.ws_incoming_messages_per_s, USDM_LIMITS.ws_incoming_messages_per_s) == (
        5,
        10,
    )
    assert SPOT_LIMITS.ws_streams_per_connection == USDM_LIMITS.ws_streams_per_connection == 1024
    assert SPOT_LIMITS.ws_connections_per_5min_per_ip == 300
    assert SPOT_LIMITS.ws_connection_lifetime_s == 86_400
    assert retry_after_s("30") == 30.0
    assert retry_after_s(None) == 60.0
    assert retry_after_s("soon", default_s=5) == 5
    assert retry_after_s("-3") == 60.0


def test_usdm_chain_through_the_codec_catches_a_dropped_update() -> None:
    """USD-M ids skip (U != pu + 1): a chain linked by pu, encoded by the dialect's encoder
    and decoded, bridges from a snapshot inside it and follows; dropping one is a GAP."""
    chain: list[bytes] = []
    prev = 100
    for k in range(10):
        first = prev + 3 + k  # other books' ids in between, as on the venue
        last = first + k % 3
        delta = BookDelta("BTCUSDT", [("1.0", "1")], [], last, first, prev, ts_ns=k * 10**6)
        chain.append(usdm.encode_combined("orderbook:BTCUSDT", usdm.encode_delta(delta)))
        prev = last
    decoded = [usdm.decode_frame(f) for f in chain]
    assert all(isinstance(d, BookDelta) for d in decoded)
    deltas = [d for d in decoded if isinstance(d, BookDelta)]
    snapshot_id = deltas[3].last_id
    assert snapshot_id is not None
    steps = [bridges(USDM.continuity, snapshot_id, d) for d in deltas[:5]]
    assert steps == [Step.COVERED] * 4 + [Step.NEXT]
    for before, after in itertools.pairwise(deltas[4:]):
        assert before.last_id is not None
        assert follows(USDM.continuity, before.last_id, after) is Step.NEXT
    assert deltas[5].last_id is not None
    assert follows(USDM.continuity, deltas[5].last_id, deltas[7]) is Step.GAP
