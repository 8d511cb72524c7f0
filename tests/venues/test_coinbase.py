"""Coinbase Advanced Trade codec, legacy level2 decoder and endpoints: documented examples and
the recorded 2021 Exchange ``level2`` sessions (tests/fixtures/venues/coinbase, see
PROVENANCE.md) replayed through an OrderBook, in the legacy shape and rewritten as Advanced
Trade ``l2_data`` messages with a connection ``sequence_num``."""

from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from tickpipe.errors import FrameError
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.frames import parse_levels
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import (
    BookDelta,
    BookSnapshot,
    Continuity,
    TickerEvent,
    TradeEvent,
)
from tickpipe.venues.coinbase import codec, endpoints, legacy, limits
from tickpipe.venues.coinbase.codec import ConnectionSequence, Step
from tickpipe.venues.kraken.rfc3339 import parse_ns

FIXTURES = Path(__file__).parent.parent / "fixtures" / "venues" / "coinbase"
PRODUCTS = {"BAND-BTC": 1005, "CRV-EUR": 670, "NMR-EUR": 665, "SKL-USD": 2592, "YFI-BTC": 487}


def _records(pid: str) -> list[dict[str, Any]]:
    with gzip.open(FIXTURES / f"{pid.replace('-', '_')}.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


def _instruments() -> dict[str, Instrument]:
    with gzip.open(FIXTURES / "products.json.gz", "rb") as f:
        body = json.loads(f.read())["body"]
    return {i.symbol: i for i in codec.decode_products(json.dumps(body).encode())}


def _to_advanced_trade(msg: dict[str, Any], seq: int) -> bytes:
    """A legacy frame rewritten as an Advanced Trade ``l2_data`` message."""
    if msg["type"] == "snapshot":
        updates = [
            {
                "side": side,
                "event_time": "1970-01-01T00:00:00Z",
                "price_level": p,
                "new_quantity": q,
            }
            for side, key in (("bid", "bids"), ("offer", "asks"))
            for p, q in msg[key]
        ]
        ts, kind = "2021-04-17T16:43:37.000000Z", "snapshot"
    else:
        updates = [
            {
                "side": "bid" if s == "buy" else "offer",
                "event_time": msg["time"],
                "price_level": p,
                "new_quantity": q,
            }
            for s, p, q in msg["changes"]
        ]
        ts, kind = msg["time"], "update"
    return json.dumps(
        {
            "channel": "l2_data",
            "client_id": "",
            "timestamp": ts,
            "sequence_num": seq,
            "events": [{"type": kind, "product_id": msg["product_id"], "updates": updates}],
        }
    ).encode()


def _book(inst: Instrument, snap: BookSnapshot) -> OrderBook:
    book = OrderBook(inst)
    ch = f"orderbook:{snap.symbol}"
    book.load(parse_levels(snap.bids, inst, ch, "bids"), parse_levels(snap.asks, inst, ch, "asks"))
    return book


def _apply(book: OrderBook, d: BookDelta) -> None:
    ch = f"orderbook:{d.symbol}"
    inst = book.instrument
    book.apply(parse_levels(d.bids, inst, ch, "bids"), parse_levels(d.asks, inst, ch, "asks"))


@pytest.mark.parametrize("pid", sorted(PRODUCTS))
def test_recorded_sessions_replay_on_the_products_grid(pid: str) -> None:
    """Legacy and Advanced Trade shapes give the same exact book after every message; every
    level is on the recorded product's grid, the book never crosses, sizes stay exact."""
    recs = _records(pid)
    inst = _instruments()[pid]
    snap = legacy.decode_level2(json.dumps(recs[0]["msg"]))
    assert isinstance(snap, BookSnapshot)
    msg0 = codec.decode(_to_advanced_trade(recs[0]["msg"], 0))
    [snap2] = msg0.events
    assert isinstance(snap2, BookSnapshot) and snap2.last_id == 0
    assert (snap2.bids, snap2.asks) == (snap.bids, snap.asks)
    b1, b2 = _book(inst, snap), _book(inst, snap2)
    seq = ConnectionSequence()
    assert seq.check(0) is Step.NEXT
    applied = 0
    for n, rec in enumerate(recs[1:], start=1):
        d1 = legacy.decode_level2(json.dumps(rec["msg"]))
        m = codec.decode(_to_advanced_trade(rec["msg"], n))
        assert seq.check(m.sequence_num or 0) is Step.NEXT
        [d2] = m.events
        assert isinstance(d1, BookDelta) and isinstance(d2, BookDelta)
        assert (d2.bids, d2.asks, d2.last_id, d2.ts_ns) == (d1.bids, d1.asks, n, d1.ts_ns)
        _apply(b1, d1)
        _apply(b2, d2)
        assert not b2.is_crossed(), rec["src"]
        applied += 1
    assert applied == PRODUCTS[pid]
    assert b1 == b2
    # sizes exact: the final book's texts are the last texts the feed wrote for each level
    last: dict[tuple[str, int], str] = {}
    for rec in recs[1:]:
        for s, p, q in rec["msg"]["changes"]:
            last[("bid" if s == "buy" else "ask", inst.price_units(p))] = q
    for (side, price), q in last.items():
        book_side = b2.bids if side == "bid" else b2.asks
        assert book_side.size_at(price) == inst.size_units(q)


def test_recorded_dropped_message_is_a_gap() -> None:
    recs = _records("YFI-BTC")
    seq = ConnectionSequence()
    steps = []
    for n, rec in enumerate(recs):
        if n == 50:
            continue  # planted fault: message 50 lost on the connection
        m = codec.decode(_to_advanced_trade(rec["msg"], n))
        steps.append(seq.check(m.sequence_num or 0))
    assert steps.count(Step.GAP) == 1 and steps[50] is Step.GAP
    assert seq.check(10) is Step.DUPLICATE
    seq.reset()
    assert seq.check(0) is Step.NEXT


def test_products_body_both_shapes() -> None:
    insts = _instruments()
    assert set(PRODUCTS) <= set(insts)
    assert (insts["BAND-BTC"].tick_size, insts["BAND-BTC"].lot_size) == ("0.00000001", "0.01")
    at = (
        b'{"products":[{"product_id":"BTC-USD","price":"140.21","base_increment":"0.00000001",'
        b'"quote_increment":"0.01","price_increment":"0.01","status":"online"}],'
        b'"num_products":1}'
    )
    [btc] = codec.decode_products(at)
    assert (btc.symbol, btc.tick_size, btc.lot_size) == ("BTC-USD", "0.01", "0.00000001")
    with pytest.raises(FrameError, match="products\\[0\\]"):
        codec.decode_products(b'{"products":[{"product_id":"X-Y","base_increment":"1"}]}')
    with pytest.raises(FrameError):
        codec.decode_products(
            b'{"products":[{"product_id":"X-Y","price_increment":"0","base_increment":"1"}]}'
        )


# -- documented examples -------------------------------------------------------------------------

L2_SNAPSHOT = (
    b'{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z",'
    b'"sequence_num":0,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":['
    b'{"side":"bid","event_time":"1970-01-01T00:00:00Z","price_level":"21921.73",'
    b'"new_quantity":"0.06317902"},{"side":"bid","event_time":"1970-01-01T00:00:00Z",'
    b'"price_level":"21921.3","new_quantity":"0.02"}]}]}'
)
MARKET_TRADES = (
    b'{"channel":"market_trades","client_id":"","timestamp":"2023-02-09T20:19:35.39625135Z",'
    b'"sequence_num":0,"events":[{"type":"snapshot","trades":[{"trade_id":"000000000",'
    b'"product_id":"ETH-USD","price":"1260.01","size":"0.3","side":"BUY",'
    b'"time":"2019-08-14T20:42:27.265Z"}]}]}'
)
TICKER = (
    b'{"channel":"ticker","client_id":"","timestamp":"2023-02-09T20:30:37.167359596Z",'
    b'"sequence_num":0,"events":[{"type":"snapshot","tickers":[{"type":"ticker",'
    b'"product_id":"BTC-USD","price":"21932.98","volume_24_h":"16038.28770938",'
    b'"low_24_h":"21835.29","high_24_h":"23011.18","low_52_w":"15460","high_52_w":"48240",'
    b'"price_percent_chg_24_h":"-4.15775596190603","best_bid":"21931.98",'
    b'"best_bid_quantity":"8000.21","best_ask":"21933.98",'
    b'"best_ask_quantity":"8038.07770938"}]}]}'
)
HEARTBEATS = (
    b'{"channel":"heartbeats","client_id":"","timestamp":"2023-06-23T20:31:26.122969572Z",'
    b'"sequence_num":0,"events":[{"current_time":"2023-06-23 20:31:56.121961769 +0000 UTC '
    b'm=+91717.525857105","heartbeat_counter":"3049"}]}'
)
SUBSCRIPTIONS = (
    b'{"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z",'
    b'"sequence_num":2,"events":[{"subscriptions":{"level2":["BTC-USD"]}}]}'
)


def test_documented_frames() -> None:
    m = codec.decode(L2_SNAPSHOT)
    ts = parse_ns("2023-02-09T20:32:50.714964855Z")
    assert m == codec.Message(
        0,
        "l2_data",
        [
            BookSnapshot(
                "BTC-USD", 0, [("21921.73", "0.06317902"), ("21921.3", "0.02")], [], None, ts
            )
        ],
    )
    assert codec.decode(MARKET_TRADES).events == [
        TradeEvent(
            "ETH-USD", "000000000", "1260.01", "0.3", "buy", parse_ns("2019-08-14T20:42:27.265Z")
        )
    ]
    assert codec.decode(TICKER).events == [
        TickerEvent(
            "BTC-USD",
            "21931.98",
            "8000.21",
            "21933.98",
            "8038.07770938",
            "21932.98",
            "16038.28770938",
            parse_ns("2023-02-09T20:30:37.167359596Z"),
        )
    ]
    hb = codec.decode(HEARTBEATS)
    assert hb.sequence_num == 0 and hb.events == [
        codec.Heartbeat(3049, "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105")
    ]
    assert codec.decode(SUBSCRIPTIONS) == codec.Message(
        2, "subscriptions", [codec.Subscriptions({"level2": ["BTC-USD"]})]
    )
    err = codec.decode(b'{"type":"error","message":"failure to subscribe"}')
    assert err == codec.Message(None, "error", [codec.VenueError("failure to subscribe")])


@pytest.mark.parametrize(
    ("frame", "channel", "field"),
    [
        (
            L2_SNAPSHOT.replace(b'"bid"', b'"buy"', 1),
            "orderbook:BTC-USD",
            "events[0].updates[0].side",
        ),
        (
            L2_SNAPSHOT.replace(b'"21921.73"', b'"-1"'),
            "orderbook:BTC-USD",
            "events[0].updates[0].price_level",
        ),
        (
            L2_SNAPSHOT.replace(b'"0.02"', b"0.02"),
            "orderbook:BTC-USD",
            "events[0].updates[1].new_quantity",
        ),
        (
            L2_SNAPSHOT.replace(b'"sequence_num":0', b'"sequence_num":-1'),
            "orderbook:BTC-USD",
            "sequence_num",
        ),
        (MARKET_TRADES.replace(b'"BUY"', b'"buy"'), "trades:ETH-USD", "events[0].trades[0].side"),
        (
            TICKER.replace(b'"8000.21"', b'"8k"'),
            "ticker:BTC-USD",
            "events[0].tickers[0].best_bid_quantity",
        ),
        (b'{"channel":"candles","sequence_num":1}', "candles", "channel"),
    ],
)
def test_bad_frames_name_channel_and_field(frame: bytes, channel: str, field: str) -> None:
    with pytest.raises(FrameError) as err:
        codec.decode(frame)
    assert err.value.channel == channel
    assert err.value.field == field


def test_truncated_and_garbled_frames_are_frame_errors() -> None:
    for s in (L2_SNAPSHOT, MARKET_TRADES, TICKER, HEARTBEATS, SUBSCRIPTIONS):
        for n in range(0, len(s), 5):
            with contextlib.suppress(FrameError):
                codec.decode(s[:n])
            with contextlib.suppress(FrameError):
                codec.decode(s[:n] + b"\xfe" + s[n + 1 :])
    with pytest.raises(FrameError):
        codec.decode(b"[" * 5000)
    with pytest.raises(FrameError, match="UTF-8"):
        codec.decode(SUBSCRIPTIONS.replace(b'"client_id":""', b'"client_id":"\xff"'))


def test_legacy_bad_frames() -> None:
    for bad in (
        b'{"type":"l2update","product_id":"X-Y","changes":[["hold","1","1"]]}',
        b'{"type":"l2update","product_id":"X-Y","changes":[["buy","1e3","1"]]}',
        b'{"type":"snapshot","product_id":"X-Y","bids":[["1"]],"asks":[]}',
        b'{"type":"l2update","product_id":"X-Y","changes":[],"time":"yesterday"}',
        b'{"type":"match"}',
        b"{",
    ):
        with pytest.raises(FrameError):
            legacy.decode_level2(bad)


# -- encode (the dialect) and round trips -------------------------------------------------------


def test_encode_round_trips_and_shapes() -> None:
    m = codec.decode(L2_SNAPSHOT)
    [snap] = m.events
    assert isinstance(snap, BookSnapshot)
    assert codec.encode_book(snap, 0) == L2_SNAPSHOT
    delta = BookDelta(
        "BTC-USD", [("21921.73", "0")], [("21922.5", "1.5")], last_id=7, ts_ns=snap.ts_ns
    )
    back = codec.decode(codec.encode_book(delta, 7, event_time_ns=snap.ts_ns))
    assert back == codec.Message(7, "l2_data", [delta])
    [t] = codec.decode(MARKET_TRADES).events
    assert isinstance(t, TradeEvent)
    enc = codec.encode_trades(
        [t], 0, snapshot=True, ts_ns=parse_ns("2023-02-09T20:19:35.39625135Z")
    )
    assert json.loads(enc) == json.loads(
        MARKET_TRADES.replace(b"265Z", b"265000000Z").replace(b"39625135Z", b"396251350Z")
    )
    assert codec.decode(enc).events == [t]
    [k] = codec.decode(TICKER).events
    assert isinstance(k, TickerEvent)
    assert codec.decode(codec.encode_ticker(k, 5)).events == [k]
    hb = codec.encode_heartbeat(9, 3049, parse_ns("2023-06-23T20:31:26.122969572Z"))
    assert codec.decode(hb).events[0] == codec.Heartbeat(3049, "2023-06-23T20:31:26.122969572Z")
    subs = codec.encode_subscriptions(3, {"level2": ["BTC-USD"], "heartbeats": []})
    assert codec.decode(subs).events == [
        codec.Subscriptions({"level2": ["BTC-USD"], "heartbeats": []})
    ]
    assert codec.decode(codec.encode_error("failure to subscribe")).events == [
        codec.VenueError("failure to subscribe")
    ]
    with pytest.raises(FrameError):
        codec.encode_book(BookDelta("X-Y", [("1", "x")], []), 1)


def test_subscribe_builders_and_requests() -> None:
    msgs = endpoints.subscribe_messages(
        ["orderbook:BTC-USD", "orderbook:ETH-USD", "trades:BTC-USD"]
    )
    assert [json.loads(m) for m in msgs] == [
        {"type": "subscribe", "channel": "heartbeats"},
        {"type": "subscribe", "channel": "level2", "product_ids": ["BTC-USD", "ETH-USD"]},
        {"type": "subscribe", "channel": "market_trades", "product_ids": ["BTC-USD"]},
    ]
    req = codec.decode_request(msgs[1])
    assert isinstance(req, codec.SubscribeRequest) and req.product_ids == ["BTC-USD", "ETH-USD"]
    [un] = endpoints.unsubscribe_messages(["ticker:BTC-USD"], jwt="j")
    assert json.loads(un) == {
        "type": "unsubscribe",
        "channel": "ticker",
        "product_ids": ["BTC-USD"],
        "jwt": "j",
    }
    with pytest.raises(ValueError):
        endpoints.topic("orderbook")
    with pytest.raises(FrameError):
        codec.decode_request(b'{"type":"subscribe"}')


def test_venue_spec_and_limits() -> None:
    v = endpoints.VENUE
    assert v.stream_base == "wss://advanced-trade-ws.coinbase.com"
    assert v.continuity is Continuity.CONNECTION and v.snapshot_path is None
    assert limits.UNAUTHENTICATED_MESSAGES_PER_S_PER_IP == 8
