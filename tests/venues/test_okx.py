"""OKX codec, checksum, continuity and endpoints: documented examples, the recorded BTC-USDT
session (every checksum verified on every update), planted faults, round trips, fuzzing."""

from __future__ import annotations

import gzip
import json
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
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
from tickpipe.venues.okx import checksum, codec, endpoints, limits

FIXTURES = Path(__file__).parent.parent / "fixtures" / "venues" / "okx"
CH = "orderbook:BTC-USDT"


def _rows() -> list[dict[str, Any]]:
    with gzip.open(FIXTURES / "BTC_USDT.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


ROWS = _rows()


def _instrument() -> Instrument:
    with gzip.open(FIXTURES / "instruments-SPOT.json.gz", "rt") as f:
        body = json.load(f)["body"]
    (inst,) = [i for i in codec.decode_instruments(json.dumps(body)) if i.symbol == "BTC-USDT"]
    return inst


INST = _instrument()


def _apply(book: OrderBook, ev: BookSnapshot | BookDelta) -> None:
    bids = parse_levels(ev.bids, INST, CH, "bids")
    asks = parse_levels(ev.asks, INST, CH, "asks")
    if isinstance(ev, BookSnapshot):
        book.load(bids, asks)
    else:
        book.apply(bids, asks)


def _decode_one(frame: bytes | str) -> Any:
    events = codec.decode(frame)
    assert len(events) == 1
    return events[0]


def _with_ids(rows: list[dict[str, Any]], first: int = 1000) -> list[bytes]:
    """Today's shape: the recorded frames with seqId/prevSeqId added (steps of 1..7)."""
    out, prev = [], -1
    seq = first
    for i, r in enumerate(rows):
        msg = json.loads(json.dumps(r["msg"]))
        d = msg["data"][0]
        d["prevSeqId"], d["seqId"] = prev, seq
        out.append(json.dumps(msg).encode())
        prev, seq = seq, seq + 1 + i % 7
    return out


# -- documented examples -----------------------------------------------------------------------

DOC_SNAPSHOT = (
    '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{'
    '"asks":[["8476.98","415","0","13"],["8477","7","0","2"]],'
    '"bids":[["8476.97","256","0","12"],["8475.55","101","0","1"]],'
    '"ts":"1597026383085","checksum":-855196043,"prevSeqId":-1,"seqId":123456}]}'
)
DOC_UPDATE = (
    '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{'
    '"asks":[["8476.98","415","0","13"],["8477","0","0","0"]],"bids":[],'
    '"ts":"1597026383085","checksum":0,"prevSeqId":123456,"seqId":123457}]}'
)


def test_documented_book_snapshot_and_update() -> None:
    snap = _decode_one(DOC_SNAPSHOT)
    assert snap == BookSnapshot(
        "BTC-USDT",
        123456,
        [("8476.97", "256"), ("8475.55", "101")],
        [("8476.98", "415"), ("8477", "7")],
        -855196043,
        1597026383085 * 1_000_000,
    )
    upd = _decode_one(DOC_UPDATE)
    assert upd == BookDelta(
        "BTC-USDT",
        [],
        [("8476.98", "415"), ("8477", "0")],
        last_id=123457,
        prev_id=123456,
        checksum=None,  # 0: OKX's "no check" (every frame from 23 June 2026)
        ts_ns=1597026383085 * 1_000_000,
    )
    assert codec.follows(123456, upd) is Step.NEXT


def test_documented_trades_tickers_and_events() -> None:
    trades = codec.decode(
        '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
        '"tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy",'
        '"ts":"1630048897897","count":"3","source":"0","seqId":1234}]}'
    )
    assert trades == [
        TradeEvent("BTC-USDT", "130639474", "42219.9", "0.12060306", "buy", 1630048897897000000)
    ]
    ticker = _decode_one(
        '{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT",'
        '"instId":"BTC-USDT","last":"9999.99","lastSz":"0.1","askPx":"9999.99","askSz":"11",'
        '"bidPx":"8888.88","bidSz":"5","open24h":"9000","high24h":"10000","low24h":"8888.88",'
        '"volCcy24h":"2222","vol24h":"2222","sodUtc0":"2222","sodUtc8":"2222",'
        '"ts":"1597026383085"}]}'
    )
    assert ticker == TickerEvent(
        "BTC-USDT", "8888.88", "5", "9999.99", "11", "9999.99", "2222", 1597026383085000000
    )
    assert _decode_one(
        '{"id":"1512","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},'
        '"connId":"accb8e21"}'
    ) == codec.Subscribed(CH, "books", "1512", "accb8e21")
    assert _decode_one(
        '{"event":"unsubscribe","arg":{"channel":"tickers","instId":"BTC-USDT"},"connId":"d0b44253"}'
    ) == codec.Unsubscribed("ticker:BTC-USDT", "tickers", None, "d0b44253")
    assert _decode_one(
        '{"id":"1512","event":"error","code":"60012","msg":"Invalid request: {\\"op\\": '
        '\\"subscribe\\", \\"argss\\":[]}","connId":"a4d3ae55"}'
    ) == codec.VenueError(
        "60012", 'Invalid request: {"op": "subscribe", "argss":[]}', "1512", "a4d3ae55"
    )
    notice = _decode_one(
        '{"event":"notice","code":"64008","msg":"The connection will soon be closed for a '
        'service upgrade. Please reconnect.","connId":"a4d3ae55"}'
    )
    assert isinstance(notice, codec.Notice) and notice.code == "64008"
    assert codec.decode("pong") == [codec.Pong()] == codec.decode(b"pong")
    # a channel tickpipe does not map is named in the ack, with no tickpipe channel
    assert _decode_one(
        '{"event":"subscribe","arg":{"channel":"books5","instId":"BTC-USDT"},"connId":"x"}'
    ) == codec.Subscribed(None, "books5", None, "x")


def test_ticker_with_empty_book_side_gives_none() -> None:
    t = _decode_one(
        '{"arg":{"channel":"tickers","instId":"X-USDT"},"data":[{"instId":"X-USDT",'
        '"last":"1","askPx":"","askSz":"","bidPx":"0.5","bidSz":"2","ts":"1"}]}'
    )
    assert (t.ask, t.ask_size, t.bid, t.volume) == (None, None, "0.5", None)


# -- the recorded session ------------------------------------------------------------------------


def test_recorded_instruments() -> None:
    assert (INST.tick_size, INST.lot_size) == ("0.1", "0.00000001")
    with gzip.open(FIXTURES / "instruments-SPOT.json.gz", "rt") as f:
        body = json.load(f)["body"]
    insts = codec.decode_instruments(json.dumps(body).encode())
    assert len(insts) == len(body["data"]) > 100
    by = {i.symbol: i for i in insts}
    assert (by["ETH-USDT"].tick_size, by["ETH-USDT"].lot_size) == ("0.01", "0.000001")


def test_recorded_session_every_checksum_verifies() -> None:
    """1 snapshot + 97 updates (2022 format, no seqId): the book rebuilt from integer units
    reproduces OKX's checksum on every frame, and never crosses."""
    book = OrderBook(INST)
    verified = 0
    for r in ROWS:
        ev = _decode_one(json.dumps(r["msg"]))
        assert isinstance(ev, BookSnapshot if r["kind"] == "snapshot" else BookDelta)
        assert ev.last_id is None and ev.checksum is not None
        _apply(book, ev)
        assert checksum.checksum(book) == ev.checksum, r["src"]
        assert checksum.verify(book, ev.checksum)
        assert not book.is_crossed()
        verified += 1
    assert verified == 98 and len(book.bids) > 300


def test_recorded_level_strings_are_minimal() -> None:
    """Why the checksum text can be rebuilt from units: OKX writes the shortest decimal."""
    n = 0
    for r in ROWS:
        for side in ("bids", "asks"):
            for price, size, *_ in r["msg"]["data"][0][side]:
                for text in (price, size) if size != "0" else (price,):
                    assert format(Decimal(text).normalize(), "f") == text
                    n += 1
    assert n == 8057


def test_checksum_string_matches_the_documented_rule() -> None:
    """OKX's examples: 2 + 2 levels, and fewer bids than asks (the asks' tail follows)."""
    inst = Instrument("ETH-USDT", "crypto", "0.1", "1")
    book = OrderBook(inst)
    book.load([(33661, 7), (33660, 6)], [(33668, 9), (33680, 8)])
    assert checksum.checksum_string(book) == "3366.1:7:3366.8:9:3366:6:3368:8"
    assert zlib.crc32(b"3366.1:7:3366.8:9:3366:6:3368:8") == 2413953002  # >= 2**31: negative
    assert checksum.checksum(book) == 2413953002 - (1 << 32)
    book.load([(33661, 7)], [(33668, 9), (33680, 8), (33720, 8)])
    assert checksum.checksum_string(book) == "3366.1:7:3366.8:9:3368:8:3372:8"
    assert checksum.checksum(book) == zlib.crc32(b"3366.1:7:3366.8:9:3368:8:3372:8") < 2**31


def test_checksum_uses_only_the_top_25() -> None:
    book = OrderBook(INST)
    _apply(book, _decode_one(json.dumps(ROWS[0]["msg"])))
    before = checksum.checksum(book)
    worst_bid = book.bids.top(30)[-1][0]
    book.bids.set(worst_bid, 123)  # the 30th bid: outside the checksum
    assert checksum.checksum(book) == before
    book.bids.set(book.bids.top(25)[-1][0], 1)  # the 25th: inside
    assert checksum.checksum(book) != before


def test_minimal_text() -> None:
    assert checksum.minimal_text(302440, 1) == "30244"
    assert checksum.minimal_text(8_000_000, 8) == "0.08"
    assert checksum.minimal_text(5, 0) == "5"
    assert checksum.minimal_text(0, 3) == "0"


# -- planted faults --------------------------------------------------------------------------------


def test_dropped_update_is_caught_by_the_checksum_on_the_next_frame() -> None:
    for dropped in (1, 40, 96):
        book = OrderBook(INST)
        caught_at = None
        for i, r in enumerate(ROWS):
            if i == dropped:
                continue
            ev = _decode_one(json.dumps(r["msg"]))
            _apply(book, ev)
            if not checksum.verify(book, ev.checksum):
                caught_at = i
                break
        assert caught_at == dropped + 1


def test_checksum_zero_means_no_check() -> None:
    book = OrderBook(INST)
    _apply(book, _decode_one(json.dumps(ROWS[0]["msg"])))
    msg = json.loads(json.dumps(ROWS[2]["msg"]))  # skip ROWS[1]: the book is now wrong
    msg["data"][0]["checksum"] = 0
    ev = _decode_one(json.dumps(msg))
    _apply(book, ev)
    assert ev.checksum is None and checksum.verify(book, ev.checksum)
    assert checksum.verify(book, 0)
    assert not checksum.verify(book, ROWS[2]["msg"]["data"][0]["checksum"])


def test_todays_frames_link_and_verify() -> None:
    frames = _with_ids(ROWS)
    book = OrderBook(INST)
    last = -1
    for i, f in enumerate(frames):
        ev = _decode_one(f)
        if i == 0:
            assert isinstance(ev, BookSnapshot) and ev.last_id == 1000
        else:
            assert codec.follows(last, ev) is Step.NEXT
        _apply(book, ev)
        assert checksum.verify(book, ev.checksum) and ev.checksum
        assert ev.last_id is not None
        last = ev.last_id
    assert VENUE_IS_LINK_IN_BAND()


def VENUE_IS_LINK_IN_BAND() -> bool:
    v = endpoints.VENUE
    return v.continuity is Continuity.LINK and v.seeding is Seeding.IN_BAND


def test_dropped_update_in_todays_frames_is_a_gap_on_that_frame() -> None:
    frames = _with_ids(ROWS)
    snap = _decode_one(frames[0])
    last = snap.last_id
    steps = []
    for f in frames[1:10]:
        if f is frames[4]:
            continue
        ev = _decode_one(f)
        step = codec.follows(last, ev)
        steps.append(step)
        if step is Step.NEXT:
            last = ev.last_id
        else:
            break
    assert steps == [Step.NEXT, Step.NEXT, Step.NEXT, Step.GAP]
    # a duplicate (replayed) update is covered, not a gap
    again = _decode_one(frames[2])
    assert codec.follows(_decode_one(frames[3]).last_id, again) is Step.COVERED


def _delta(prev: int, seq: int) -> BookDelta:
    return BookDelta("BTC-USDT", [], [], last_id=seq, prev_id=prev)


def test_documented_seqid_exceptions() -> None:
    """OKX's own sequence: snapshot 10; update 10->15; no change 15->15; reset 15->3; 3->5."""
    last = 10
    for prev, seq in ((10, 15), (15, 15), (15, 3), (3, 5)):
        assert codec.follows(last, _delta(prev, seq)) is Step.NEXT, (prev, seq)
        last = seq
    assert last == 5
    assert codec.follows(5, _delta(6, 8)) is Step.GAP
    assert codec.follows(5, _delta(3, 5)) is Step.COVERED
    # the core's LINK rule now lets the link decide first, as OKX documents
    assert continuity.follows(Continuity.LINK, 15, _delta(15, 3)) is Step.NEXT


def test_update_without_ids_is_an_error_for_link() -> None:
    ev = _decode_one(json.dumps(ROWS[1]["msg"]))
    with pytest.raises(FrameError, match=r"prev_id|last_id"):
        codec.follows(5, ev)


# -- round trips ----------------------------------------------------------------------------------


def test_round_trip_recorded_and_todays_frames() -> None:
    for f in [json.dumps(r["msg"]).encode() for r in ROWS] + _with_ids(ROWS):
        ev = _decode_one(f)
        out = codec.encode_book(ev)
        assert _decode_one(out) == ev
        # same levels and fields as the venue sent, but the order counts
        got, want = json.loads(out), json.loads(f)
        for side in ("bids", "asks"):
            assert [lv[:3] for lv in got["data"][0][side]] == [
                lv[:3] for lv in want["data"][0][side]
            ]
            got["data"][0][side] = want["data"][0][side] = None
        assert got == want


def test_encoded_shapes_are_exact() -> None:
    snap = _decode_one(DOC_SNAPSHOT)
    assert codec.encode_book(snap) == (
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{'
        b'"asks":[["8476.98","415","0","1"],["8477","7","0","1"]],'
        b'"bids":[["8476.97","256","0","1"],["8475.55","101","0","1"]],'
        b'"ts":"1597026383085","checksum":-855196043,"prevSeqId":-1,"seqId":123456}]}'
    )
    upd = _decode_one(DOC_UPDATE)
    assert json.loads(codec.encode_book(upd))["data"][0]["asks"][1] == ["8477", "0", "0", "0"]
    trade = TradeEvent("BTC-USDT", "1", "42219.9", "0.1", "sell", 1630048897897000000)
    assert codec.encode_trades([trade]) == (
        b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
        b'"tradeId":"1","px":"42219.9","sz":"0.1","side":"sell","ts":"1630048897897",'
        b'"count":"1"}]}'
    )
    assert codec.decode(codec.encode_trades([trade, trade])) == [trade, trade]
    tick = TickerEvent("BTC-USDT", "1.1", "2", "1.2", "3", "1.15", "99", 5_000_000)
    assert codec.decode(codec.encode_ticker(tick)) == [tick]
    for ev in (
        codec.Subscribed(CH, "books", "7", "c1"),
        codec.Unsubscribed("trades:BTC-USDT", "trades", None, "c1"),
        codec.VenueError("60018", "Wrong URL or channel:books, instId:NOPE", "8", "c1"),
        codec.Notice("64008", "reconnect", "c1"),
    ):
        assert codec.decode(codec.encode_event(ev)) == [ev]
    assert codec.encode_event(codec.Subscribed(CH, "books", "7", "c1")) == (
        b'{"id":"7","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},'
        b'"connId":"c1"}'
    )


def test_rest_round_trips_and_errors() -> None:
    insts = [INST, Instrument("ETH-USDT", "crypto", "0.01", "0.000001")]
    assert codec.decode_instruments(codec.encode_instruments(insts)) == insts
    snap = BookSnapshot("BTC-USDT", None, [("1.1", "2")], [("1.2", "3")], None, 7_000_000)
    assert codec.decode_rest_books(codec.encode_rest_books(snap), "BTC-USDT") == snap
    with pytest.raises(RestError) as err:
        codec.decode_instruments(codec.encode_rest_error("50011", "Too Many Requests"))
    assert err.value.code == "50011"
    with pytest.raises(RestError):
        codec.decode_rest_books(codec.encode_rest_error("51001", "no such inst"), "X")
    with pytest.raises(FrameError) as ferr:
        codec.decode_instruments(b'{"code":"0","data":[{"instId":"A-B","tickSz":"","lotSz":"1"}]}')
    assert ferr.value.field == "instruments.data[0].tickSz/lotSz"


# -- endpoints ----------------------------------------------------------------------------------


def test_subscribe_messages_and_client_decoding() -> None:
    msg = endpoints.subscribe_message([CH, "trades:BTC-USDT", "ticker:ETH-USDT"], "17")
    assert msg == (
        b'{"id":"17","op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},'
        b'{"channel":"trades","instId":"BTC-USDT"},{"channel":"tickers","instId":"ETH-USDT"}]}'
    )
    assert codec.decode_client(msg) == codec.ClientRequest(
        "subscribe", [CH, "trades:BTC-USDT", "ticker:ETH-USDT"], "17"
    )
    assert endpoints.unsubscribe_message([CH]) == (
        b'{"op":"unsubscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}'
    )
    assert codec.decode_client(endpoints.PING_MESSAGE) == codec.Ping()
    assert codec.decode(endpoints.PONG_MESSAGE) == [codec.Pong()]
    for bad in ("books:BTC-USDT", "orderbook:", "orderbook"):
        with pytest.raises(ConfigError, match="channel"):
            endpoints.subscribe_message([bad])
    for bad_id in ("", "x" * 33, "a-b", "é"):
        with pytest.raises(ConfigError, match="request id"):
            endpoints.subscribe_message([CH], bad_id)
    with pytest.raises(ConfigError):
        endpoints.subscribe_message([])
    with pytest.raises(FrameError) as err:
        codec.decode_client(b'{"op":"subscribe","args":[{"channel":"candle1m","instId":"X"}]}')
    assert err.value.field == "args[0]"


def test_urls_replace_only_scheme_host_port() -> None:
    assert endpoints.stream_url() == "wss://ws.okx.com:8443/ws/v5/public"
    assert endpoints.stream_url("ws://127.0.0.1:9000") == "ws://127.0.0.1:9000/ws/v5/public"
    assert endpoints.instruments_url("http://127.0.0.1:1") == (
        "http://127.0.0.1:1/api/v5/public/instruments?instType=SPOT"
    )
    assert endpoints.snapshot_url("BTC-USDT") == (
        "https://www.okx.com/api/v5/market/books?instId=BTC-USDT&sz=400"
    )
    assert endpoints.VENUE.client_ping == "ping"
    assert endpoints.VENUE.client_ping_interval_s < limits.WS_IDLE_CUT_S
    assert endpoints.VENUE.book_depth == limits.MAX_BOOK_DEPTH == 400


# -- bad input from the wire ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        (
            '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":'
            '[[1,"2","0","1"]],"bids":[],"ts":"1","checksum":1}]}',
            "data[0].asks[0][0]",
        ),
        (
            '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":'
            '[],"bids":[],"ts":"1","checksum":4294967295}]}',
            "data[0].checksum",
        ),
        (
            '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":'
            '[],"bids":[],"ts":"1.5"}]}',
            "data[0].ts",
        ),
        (
            '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":'
            '[],"bids":[],"ts":"12345678901234567890"}]}',
            "data[0].ts",
        ),
        (
            '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":'
            '[],"bids":[],"ts":"\u0661"}]}',
            "data[0].ts",
        ),
        (
            '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":'
            '[],"bids":[],"ts":"1","seqId":5}]}',
            "data[0].prevSeqId",
        ),
        (
            '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":'
            '[],"bids":[],"ts":"1","seqId":5,"prevSeqId":4}]}',
            "data[0].prevSeqId",
        ),
        (
            '{"arg":{"channel":"books","instId":"BTC-USDT"},"data":[{"asks":[],"bids":[],'
            '"ts":"1"}]}',
            "action",
        ),
        ('{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[]}', "data"),
        (
            '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":'
            '[],"bids":[],"ts":"1","seqId":-2,"prevSeqId":1}]}',
            "data[0].seqId",
        ),
        (
            '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
            '"tradeId":"1","px":"1","sz":"1","side":"up","ts":"1"}]}',
            "data[0].side",
        ),
        (
            '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"ETH-USDT",'
            '"tradeId":"1","px":"1","sz":"1","side":"buy","ts":"1"}]}',
            "data[0].instId",
        ),
        (
            '{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT"}]}',
            "data[0].ts",
        ),
    ],
)
def test_bad_frames_name_channel_and_field(frame: str, field: str) -> None:
    with pytest.raises(FrameError) as err:
        codec.decode(frame)
    assert err.value.field == field
    assert err.value.channel in (CH, "trades:BTC-USDT", "ticker:BTC-USDT")


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "ping",
        "[]",
        "null",
        '{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[]}',
        '{"arg":{"channel":"books"},"action":"update","data":[]}',
        '{"event":"login"}',
        '{"event":"subscribe"}',
        '{"arg":{"channel":"books","instId":"BTC-USDT"}}',
        b"\xff\xfe",
        "[" * 10_000,
    ],
)
def test_garbage_is_a_frame_error(frame: str | bytes) -> None:
    with pytest.raises(FrameError):
        codec.decode(frame)


def test_truncated_frames_only_raise_frame_error_and_name_the_book() -> None:
    """Every prefix of real frames: either decodes or raises FrameError; a truncated books frame
    still names its channel (found before the cut), so that one book can re-seed at once."""
    frames = [json.dumps(ROWS[1]["msg"]).encode(), _with_ids(ROWS[:2])[1]]
    frames.append(codec.encode_trades([TradeEvent("BTC-USDT", "1", "1", "1", "buy", 0)]))
    for f in frames:
        for cut in range(0, len(f), 7):
            with pytest.raises(FrameError) as err:
                codec.decode(f[:cut])
            if cut > 60:
                assert err.value.channel is not None, cut


def test_garbled_bytes_only_raise_frame_error() -> None:
    f = bytearray(_with_ids(ROWS[:2])[1])
    decoded = 0
    for i in range(0, len(f), 3):
        g = bytearray(f)
        g[i] = (g[i] + 1 + i % 50) % 256
        try:
            codec.decode(bytes(g))
            decoded += 1
        except FrameError:
            pass
    assert decoded > 0  # some garbles land inside strings and still decode


def test_msgspec_keeps_integers_exact() -> None:
    big = 2**62 + 1
    f = msgspec.json.encode(
        {
            "arg": {"channel": "books", "instId": "BTC-USDT"},
            "action": "update",
            "data": [{"asks": [], "bids": [], "ts": "1", "prevSeqId": big - 1, "seqId": big}],
        }
    )
    ev = _decode_one(f)
    assert (ev.prev_id, ev.last_id) == (big - 1, big)
