"""Bybit v5 codec (spot and linear), continuity on ``u`` and endpoints: the documented example
frames, synthesised sessions with planted faults, round trips and bad input. (No recording
exists: every session here is synthesised and says so.)"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from tickpipe.errors import ConfigError, FrameError, RestError
from tickpipe.protocol import continuity
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.continuity import Step
from tickpipe.protocol.frames import parse_levels
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import (
    BookDelta,
    BookSnapshot,
    Continuity,
    Seeding,
    TickerEvent,
    TradeEvent,
)
from tickpipe.venues.bybit import codec, endpoints, limits

CH = "orderbook:BTCUSDT"

# Documented examples (https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook,
# .../trade, .../ticker, .../ws/connect), levels shortened where the docs elide them.
DOC_SNAPSHOT = (
    '{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1672304484978,"data":{"s":"BTCUSDT",'
    '"b":[["16493.50","0.006"],["16493.00","0.100"]],"a":[["16611.00","0.029"],'
    '["16612.00","0.213"]],"u":18521288,"seq":7961638724},"cts":1672304484976}'
)
DOC_DELTA = (
    '{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1671179923046,"data":{"s":"BTCUSDT",'
    '"b":[],"a":[["17440.50","78.857"],["17442.00","1.510"]],"u":18521289,"seq":22520573251}}'
)
DOC_TRADE = (
    '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{'
    '"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",'
    '"i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}'
)
DOC_LINEAR_TICKER = (
    '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT",'
    '"tickDirection":"PlusTick","price24hPcnt":"0.017103","lastPrice":"17216.00",'
    '"prevPrice24h":"16926.50","highPrice24h":"17281.50","lowPrice24h":"16915.00",'
    '"markPrice":"17217.33","indexPrice":"17227.36","openInterest":"68744.761",'
    '"turnover24h":"1570383121.943499","volume24h":"91705.276","fundingRate":"-0.000212",'
    '"bid1Price":"17215.50","bid1Size":"84.489","ask1Price":"17216.00","ask1Size":"83.020"},'
    '"cs":24987956059,"ts":1673272861686}'
)
DOC_SPOT_TICKER = (
    '{"topic":"tickers.BTCUSDT","ts":1673853746003,"type":"snapshot","cs":2588407389,"data":{'
    '"symbol":"BTCUSDT","lastPrice":"21109.77","highPrice24h":"21426.99","lowPrice24h":"20575",'
    '"prevPrice24h":"20704.93","volume24h":"6780.866843","turnover24h":"141946527.22907118",'
    '"price24hPcnt":"0.0196","usdIndexPrice":"21120.2400136"}}'
)


def _one(frame: bytes | str) -> Any:
    events = codec.decode(frame)
    assert len(events) == 1
    return events[0]


def test_documented_book_frames() -> None:
    snap = _one(DOC_SNAPSHOT)
    assert snap == BookSnapshot(
        "BTCUSDT",
        18521288,
        [("16493.50", "0.006"), ("16493.00", "0.100")],
        [("16611.00", "0.029"), ("16612.00", "0.213")],
        None,
        1672304484978 * 1_000_000,
    )
    delta = _one(DOC_DELTA)
    assert delta == BookDelta(
        "BTCUSDT",
        [],
        [("17440.50", "78.857"), ("17442.00", "1.510")],
        last_id=18521289,
        ts_ns=1671179923046 * 1_000_000,
    )
    assert continuity.follows(Continuity.SEQ, snap.last_id, delta) is Step.NEXT


def test_documented_trade_tickers_and_controls() -> None:
    assert codec.decode(DOC_TRADE) == [
        TradeEvent(
            "BTCUSDT",
            "20f43950-d8dd-5b31-9112-a178eb6023af",
            "16578.50",
            "0.001",
            "buy",
            1672304486865 * 1_000_000,
        )
    ]
    assert _one(DOC_LINEAR_TICKER) == TickerEvent(
        "BTCUSDT",
        "17215.50",
        "84.489",
        "17216.00",
        "83.020",
        "17216.00",
        "91705.276",
        1673272861686 * 1_000_000,
    )
    spot = _one(DOC_SPOT_TICKER)  # spot tickers carry no best bid/ask
    assert (spot.bid, spot.ask, spot.last, spot.volume) == (None, None, "21109.77", "6780.866843")
    assert _one(
        '{"success":true,"ret_msg":"","conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b",'
        '"req_id":"10001","op":"subscribe"}'
    ) == codec.Subscribed("subscribe", "10001", "2324d924-aa4d-45b0-a858-7b8be29ab52b")
    assert _one(
        '{"success":false,"ret_msg":"error:handler not found,topic:orderbook.40.BTCUSDT",'
        '"conn_id":"c","req_id":"","op":"subscribe"}'
    ) == codec.VenueError(
        "subscribe", "error:handler not found,topic:orderbook.40.BTCUSDT", None, "c"
    )
    pongs = [
        '{"success":true,"ret_msg":"pong","conn_id":"0970e817","op":"ping"}',
        '{"success":true,"ret_msg":"pong","conn_id":"465772b1","req_id":"","op":"ping"}',
        '{"req_id":"test","op":"pong","args":["1675418560633"],"conn_id":"cfcb4ocsvfriu23r3er0"}',
    ]
    assert [type(_one(p)) for p in pongs] == [codec.Pong] * 3
    assert _one(pongs[2]).request_id == "test"


def test_linear_ticker_deltas_merge() -> None:
    snap = _one(DOC_LINEAR_TICKER)
    delta = _one(
        '{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT",'
        '"bid1Price":"17215.00","bid1Size":"1.000"},"cs":24987956060,"ts":1673272861700}'
    )
    assert delta.ask is None and delta.last is None
    merged = codec.merge_ticker(snap, delta)
    assert (merged.bid, merged.bid_size, merged.ask, merged.last, merged.ts_ns) == (
        "17215.00",
        "1.000",
        "17216.00",
        "17216.00",
        1673272861700 * 1_000_000,
    )
    assert codec.merge_ticker(None, delta) is delta


# -- synthesised sessions (no recording of Bybit exists) ------------------------------------------

INST = Instrument("BTCUSDT", "crypto", "0.01", "0.000001")


def _session(n: int, first_u: int = 500) -> list[bytes]:
    """A snapshot then ``n`` deltas, ``u`` + 1 each, as the gateway dialect will send them."""
    frames = [
        codec.encode_book(
            BookSnapshot(
                "BTCUSDT",
                first_u,
                [(f"{100 - i}.00", "1.000000") for i in range(1, 6)],
                [(f"{100 + i}.00", "1.000000") for i in range(1, 6)],
                None,
                1_000_000_000_000,
            )
        )
    ]
    for k in range(1, n + 1):
        bid = (f"{99 - k % 4}.00", f"{k % 3}.5")
        ask = (f"{101 + k % 4}.00", "0" if k % 5 == 0 else f"{k}.25")
        frames.append(
            codec.encode_book(
                BookDelta("BTCUSDT", [bid], [ask], last_id=first_u + k, ts_ns=(10**12 + k) * 10**6)
            )
        )
    return frames


def _replay(frames: list[bytes]) -> tuple[OrderBook, list[Step]]:
    book = OrderBook(INST)
    last: int | None = None
    steps: list[Step] = []
    for f in frames:
        ev = _one(f)
        bids = parse_levels(ev.bids, INST, CH, "bids")
        asks = parse_levels(ev.asks, INST, CH, "asks")
        if isinstance(ev, BookSnapshot):
            book.load(bids, asks)
            last = ev.last_id
            continue
        assert last is not None
        step = continuity.follows(endpoints.BYBIT.continuity, last, ev)
        steps.append(step)
        if step is Step.NEXT:
            book.apply(bids, asks)
            last = ev.last_id
        assert not book.is_crossed()
    return book, steps


def test_synthesised_session_applies_in_order() -> None:
    book, steps = _replay(_session(40))
    assert steps == [Step.NEXT] * 40
    assert book.best_bid() == (9900, 1_500_000) or book.best_bid() is not None


def test_dropped_delta_is_a_gap_on_that_frame_and_duplicate_is_covered() -> None:
    frames = _session(10)
    _, steps = _replay(frames[:4] + frames[5:])
    assert steps[:4] == [Step.NEXT, Step.NEXT, Step.NEXT, Step.GAP]
    _, steps = _replay(frames[:4] + frames[3:4] + frames[4:])
    assert steps[:5] == [Step.NEXT, Step.NEXT, Step.NEXT, Step.COVERED, Step.NEXT]


def test_new_snapshot_and_u_1_reset_the_book() -> None:
    frames = _session(5)
    reset = json.loads(frames[3])
    reset["data"]["u"] = 1  # the service restarted: a delta-typed u=1 is a snapshot too
    ev = _one(json.dumps(reset))
    assert isinstance(ev, BookSnapshot) and ev.last_id == 1
    after = json.loads(frames[4])
    after["data"]["u"] = 2
    _, steps = _replay([*frames[:3], json.dumps(reset).encode(), json.dumps(after).encode()])
    assert steps == [Step.NEXT, Step.NEXT, Step.NEXT]
    resnap = json.loads(frames[0])
    resnap["data"]["u"] = 900
    assert isinstance(_one(json.dumps(resnap)), BookSnapshot)


def test_venue_specs() -> None:
    for v in (endpoints.BYBIT, endpoints.BYBIT_LINEAR):
        assert v.continuity is Continuity.SEQ and v.seeding is Seeding.IN_BAND
        assert v.checksum is None and v.book_depth == limits.BOOK_DEPTH == 200
    assert endpoints.stream_url(endpoints.BYBIT) == "wss://stream.bybit.com/v5/public/spot"
    assert endpoints.stream_url(endpoints.BYBIT_LINEAR, "ws://127.0.0.1:9") == (
        "ws://127.0.0.1:9/v5/public/linear"
    )
    assert endpoints.instruments_url(endpoints.BYBIT_LINEAR) == (
        "https://api.bybit.com/v5/market/instruments-info?category=linear"
    )
    assert endpoints.snapshot_url(endpoints.BYBIT, "BTCUSDT") == (
        "https://api.bybit.com/v5/market/orderbook?category=spot&symbol=BTCUSDT&limit=200"
    )
    assert set(endpoints.VENUES) == {"bybit", "bybit-linear"}


# -- round trips and exact shapes -----------------------------------------------------------------


def test_round_trips() -> None:
    for f in _session(6):
        ev = _one(f)
        assert _one(codec.encode_book(ev)) == ev
    assert codec.encode_book(_one(DOC_DELTA), seq=22520573251) == (
        b'{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1671179923046,"data":{'
        b'"s":"BTCUSDT","b":[],"a":[["17440.50","78.857"],["17442.00","1.510"]],'
        b'"u":18521289,"seq":22520573251},"cts":1671179923046}'
    )
    trades = codec.decode(DOC_TRADE)
    assert codec.decode(codec.encode_trades(trades)) == trades
    for t in (_one(DOC_LINEAR_TICKER), _one(DOC_SPOT_TICKER)):
        assert _one(codec.encode_ticker(t)) == t
    for c in (
        codec.Subscribed("subscribe", "7", "c"),
        codec.Subscribed("unsubscribe", None, "c"),
        codec.VenueError("subscribe", "error:handler not found", "8", "c"),
        codec.Pong("9", "c"),
    ):
        assert _one(codec.encode_control(c)) == c
    assert codec.encode_control(codec.Pong(None, "c")) == (
        b'{"success":true,"ret_msg":"pong","conn_id":"c","req_id":"","op":"ping"}'
    )


def test_subscribe_messages() -> None:
    msg = endpoints.subscribe_message([CH, "trades:BTCUSDT", "ticker:ETHUSDT"], "42")
    assert msg == (
        b'{"op":"subscribe","args":["orderbook.200.BTCUSDT","publicTrade.BTCUSDT",'
        b'"tickers.ETHUSDT"],"req_id":"42"}'
    )
    assert codec.decode_client(msg) == codec.ClientRequest(
        "subscribe", [CH, "trades:BTCUSDT", "ticker:ETHUSDT"], "42"
    )
    assert endpoints.ping_message("100001") == b'{"req_id":"100001","op":"ping"}'
    assert codec.decode_client(endpoints.ping_message()) == codec.ClientRequest("ping", [], None)
    eleven = [f"trades:S{i}USDT" for i in range(11)]
    with pytest.raises(ConfigError, match="at most 10"):
        endpoints.subscribe_message(eleven)
    endpoints.subscribe_message(eleven, venue=endpoints.BYBIT_LINEAR)  # no cap on linear
    for bad in ("orderbook", "book:BTCUSDT", "orderbook:", "orderbook:A.B"):
        with pytest.raises(ConfigError, match="channel"):
            endpoints.unsubscribe_message([bad])
    with pytest.raises(FrameError):
        codec.decode_client(b'{"op":"subscribe","args":["kline.1.BTCUSDT"]}')


# -- REST ---------------------------------------------------------------------------------------

SPOT_INSTRUMENTS = (
    '{"retCode":0,"retMsg":"OK","result":{"category":"spot","list":[{"symbol":"BTCUSDT",'
    '"baseCoin":"BTC","quoteCoin":"USDT","innovation":"0","status":"Trading",'
    '"marginTrading":"both","lotSizeFilter":{"basePrecision":"0.000001",'
    '"quotePrecision":"0.00000001","minOrderQty":"0.000048","maxOrderQty":"71.73956243",'
    '"minOrderAmt":"1","maxOrderAmt":"2000000"},"priceFilter":{"tickSize":"0.01"}}]},'
    '"retExtInfo":{},"time":1672712468011}'
)
LINEAR_INSTRUMENTS = (
    '{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[{"symbol":"BTCUSDT",'
    '"contractType":"LinearPerpetual","status":"Trading","baseCoin":"BTC","quoteCoin":"USDT",'
    '"priceScale":"2","priceFilter":{"minPrice":"0.10","maxPrice":"199999.80",'
    '"tickSize":"0.10"},"lotSizeFilter":{"maxOrderQty":"100.000","minOrderQty":"0.001",'
    '"qtyStep":"0.001","postOnlyMaxOrderQty":"1000.000"}}],"nextPageCursor":"abc"},'
    '"retExtInfo":{},"time":1672712495660}'
)


def test_instruments_and_rest_book() -> None:
    (spot,), cursor = codec.decode_instruments(SPOT_INSTRUMENTS, "spot")
    assert (spot.tick_size, spot.lot_size, cursor) == ("0.01", "0.000001", "")
    (lin,), cursor = codec.decode_instruments(LINEAR_INSTRUMENTS, "linear")
    assert (lin.tick_size, lin.lot_size, cursor) == ("0.10", "0.001", "abc")
    lin.price_units("16493.50")  # documented linear prices sit on the "0.10" grid
    for cat in ("spot", "linear"):
        back, _ = codec.decode_instruments(codec.encode_instruments([spot, lin], cat), cat)
        assert back == [spot, lin]
    with pytest.raises(FrameError, match="qtyStep"):
        codec.decode_instruments(SPOT_INSTRUMENTS, "linear")
    with pytest.raises(RestError) as err:
        codec.decode_instruments(codec.encode_rest_error(10006, "Too many visits!"), "spot")
    assert err.value.code == "10006"
    snap = BookSnapshot(
        "BTCUSDT",
        230704,
        [("65485.47", "47.081829")],
        [("65557.7", "16.6")],
        None,
        1716863719031 * 1_000_000,
    )
    assert codec.decode_rest_orderbook(codec.encode_rest_orderbook(snap)) == snap
    with pytest.raises(RestError):
        codec.decode_rest_orderbook(codec.encode_rest_error(10001, "params error"))


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "channel", "field"),
    [
        (
            '{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT",'
            '"b":[[1,"2"]],"a":[],"u":5}}',
            CH,
            "data.b[0][0]",
        ),
        (
            '{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT",'
            '"b":[],"a":[],"u":0}}',
            CH,
            "data.u",
        ),
        (
            '{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1.5,"data":{"s":"BTCUSDT",'
            '"b":[],"a":[],"u":5}}',
            CH,
            "ts",
        ),
        (
            '{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1,"data":{"s":"ETHUSDT",'
            '"b":[],"a":[],"u":5}}',
            CH,
            "data.s",
        ),
        (
            '{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT",'
            '"b":[],"a":[]}}',
            CH,
            "data.u",
        ),
        ('{"topic":"orderbook.200.BTCUSDT","ts":1,"data":{}}', CH, "type"),
        (
            '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT",'
            '"S":"buy","v":"1","p":"1","i":"x"}]}',
            "trades:BTCUSDT",
            "data[0].S",
        ),
        (
            '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[]}',
            "trades:BTCUSDT",
            "data",
        ),
        (
            '{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1,"data":{"symbol":"BTCUSDT",'
            '"bid1Price":17215.5}}',
            "ticker:BTCUSDT",
            "data.bid1Price",
        ),
    ],
)
def test_bad_frames_name_channel_and_field(frame: str, channel: str, field: str) -> None:
    with pytest.raises(FrameError) as err:
        codec.decode(frame)
    assert (err.value.channel, err.value.field) == (channel, field)


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "pong",
        "[]",
        "null",
        '{"topic":"kline.1.BTCUSDT","type":"snapshot","ts":1,"data":[]}',
        '{"op":"auth","success":true}',
        '{"success":true}',
        '{"op":"ping"}',
        b"\xff",
        "[" * 10_000,
    ],
)
def test_garbage_is_a_frame_error(frame: str | bytes) -> None:
    with pytest.raises(FrameError):
        codec.decode(frame)


def test_truncated_and_garbled_frames_only_raise_frame_error() -> None:
    frames = [_session(1)[1], DOC_TRADE.encode(), DOC_LINEAR_TICKER.encode()]
    for f in frames:
        for cut in range(0, len(f), 5):
            with pytest.raises(FrameError) as err:
                codec.decode(f[:cut])
            if cut > 45:  # the topic was read before the cut: the error names the channel
                assert err.value.channel is not None, (f[:cut], cut)
        for i in range(0, len(f), 3):
            g = bytearray(f)
            g[i] = (g[i] + 7) % 256
            with contextlib.suppress(FrameError):
                codec.decode(bytes(g))


def test_big_ids_stay_exact() -> None:
    big = 2**62 + 3
    f = (
        '{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT",'
        f'"b":[],"a":[],"u":{big},"seq":{big}}}}}'
    )
    assert _one(f).last_id == big
