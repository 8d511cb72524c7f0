"""Frames: every VTS/1 frame decodes; every bad frame is one FrameError naming channel and
field; encode round-trips; signatures match values computed here with hmac/hashlib."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tickpipe.errors import FrameError
from tickpipe.protocol import frames
from tickpipe.protocol.instruments import Instrument

AAPL = Instrument("AAPL", "equity", "0.01", "1")
BTC = Instrument("BTC-USD", "crypto", "0.50", "0.001")

DELTA = {
    "type": "delta",
    "channel": "orderbook:AAPL",
    "seq": 1042,
    "ts": 1_700_000_000_000_000_000,
    "bids": [["189.12", "300"]],
    "asks": [["189.15", "0"]],
    "checksum": 2394834534,
}
TICKER = {
    "type": "ticker",
    "channel": "ticker:BTC-USD",
    "seq": 88,
    "ts": 1,
    "bid": "100.0",
    "bid_size": "1.000",
    "ask": "100.5",
    "ask_size": "2.000",
    "last": "100.0",
    "volume": "1234.000",
}
TRADE = {
    "type": "trade",
    "channel": "trades:XAU-USD",
    "seq": 311,
    "ts": 2,
    "id": "T311",
    "price": "2000.50",
    "size": "0.010",
    "side": "sell",
}


def dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()


# -- decoding every frame type ---------------------------------------------------------------
def test_delta_decodes() -> None:
    f = frames.decode_server_frame(dumps(DELTA))
    assert f == frames.Delta(
        "orderbook:AAPL", 1042, 1_700_000_000_000_000_000, [("189.12", "300")],
        [("189.15", "0")], 2394834534,
    )  # fmt: skip


def test_delta_without_checksum_decodes_with_none_and_str_input_works() -> None:
    d = {k: v for k, v in DELTA.items() if k != "checksum"}
    f = frames.decode_server_frame(json.dumps(d))
    assert isinstance(f, frames.Delta) and f.checksum is None


def test_ticker_and_trade_decode() -> None:
    t = frames.decode_server_frame(dumps(TICKER))
    assert isinstance(t, frames.Ticker) and (t.seq, t.ask, t.volume) == (88, "100.5", "1234.000")
    tr = frames.decode_server_frame(dumps(TRADE))
    assert isinstance(tr, frames.Trade)
    assert (tr.id, tr.side, tr.price) == ("T311", "sell", "2000.50")


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            {"type": "authenticated", "session": "s1", "heartbeat_ms": 5000, "max_channels": 200},
            frames.Authenticated("s1", 5000, 200),
        ),
        (
            {"type": "subscribed", "channels": ["ticker:BTC-USD"], "id": 7},
            frames.Subscribed(["ticker:BTC-USD"], 7),
        ),
        ({"type": "subscribed", "channels": [], "id": 7}, frames.Subscribed([], 7)),
        ({"type": "unsubscribed", "channels": ["a:b"], "id": 8}, frames.Unsubscribed(["a:b"], 8)),
        (
            {"type": "error", "code": "unknown_channel", "channel": "orderbook:NOPE", "id": 7},
            frames.ErrorFrame("unknown_channel", "", "orderbook:NOPE", 7),
        ),
        (
            {"type": "error", "code": "auth_failed", "message": "bad sig"},
            frames.ErrorFrame("auth_failed", "bad sig"),
        ),
        (
            {"type": "cancel_on_disconnect", "enabled": True},
            frames.CancelOnDisconnectAck(True),
        ),
    ],
)
def test_control_frames_decode(obj: dict[str, object], expected: object) -> None:
    assert frames.decode_server_frame(dumps(obj)) == expected


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"action": "auth", "key": "k", "ts": 5, "sig": "ab"}, frames.Auth("k", 5, "ab")),
        (
            {"action": "subscribe", "channels": ["orderbook:AAPL"], "id": 1},
            frames.Subscribe(["orderbook:AAPL"], 1),
        ),
        ({"action": "unsubscribe", "channels": []}, frames.Unsubscribe([], None)),
        ({"action": "cancel_on_disconnect", "enabled": False}, frames.CancelOnDisconnect(False)),
    ],
)
def test_client_frames_decode(obj: dict[str, object], expected: object) -> None:
    assert frames.decode_client_frame(dumps(obj)) == expected


def test_snapshot_and_instruments_decode() -> None:
    snap = frames.decode_snapshot(
        dumps({"symbol": "AAPL", "seq": 1040, "ts": 3, "bids": [["1.00", "2"]], "asks": []})
    )
    assert (snap.symbol, snap.seq, snap.bids, snap.asks) == ("AAPL", 1040, [("1.00", "2")], [])
    body = {"instruments": [AAPL.to_wire(), BTC.to_wire()]}
    assert frames.decode_instruments(dumps(body)) == [AAPL, BTC]


# -- encoding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("obj", [DELTA, TICKER, TRADE])
def test_encode_round_trips_server_frames(obj: dict[str, object]) -> None:
    f = frames.decode_server_frame(dumps(obj))
    assert json.loads(frames.encode(f)) == obj
    assert frames.decode_server_frame(frames.encode(f)) == f


def test_encode_round_trips_client_frames_and_dicts() -> None:
    sub = frames.Subscribe(["orderbook:AAPL", "trades:AAPL"], 3)
    assert json.loads(frames.encode(sub)) == {
        "action": "subscribe",
        "channels": ["orderbook:AAPL", "trades:AAPL"],
        "id": 3,
    }
    assert frames.decode_client_frame(frames.encode(sub)) == sub
    assert frames.encode({"a": [1, "x"]}) == b'{"a":[1,"x"]}'


# -- bad frames -------------------------------------------------------------------------------
def bad(obj: object | bytes, decode: object = frames.decode_server_frame) -> FrameError:
    data = obj if isinstance(obj, bytes) else dumps(obj)
    with pytest.raises(FrameError) as ei:
        decode(data)  # type: ignore[operator]
    return ei.value


@pytest.mark.parametrize("data", [b"", b"{", b"not json", b'{"type": "delta",}', b'{"a":1}x'])
def test_not_json_is_a_frame_error_without_channel(data: bytes) -> None:
    err = bad(data)
    assert err.channel is None and "not valid JSON" in err.reason


@pytest.mark.parametrize("data", [b"[1, 2]", b'"delta"', b"42", b"null"])
def test_json_that_is_not_an_object(data: bytes) -> None:
    assert "not a JSON object" in bad(data).reason


def test_unknown_type_names_field_type() -> None:
    err = bad({**DELTA, "type": "candle"})
    assert (err.channel, err.field) == ("orderbook:AAPL", "type")


def test_missing_type_names_field_type() -> None:
    d = {k: v for k, v in DELTA.items() if k != "type"}
    assert bad(d).field == "type"


@pytest.mark.parametrize("missing", ["seq", "ts", "bids", "asks"])
def test_missing_field_is_named(missing: str) -> None:
    err = bad({k: v for k, v in DELTA.items() if k != missing})
    assert (err.channel, err.field) == ("orderbook:AAPL", missing)
    assert "missing" in err.reason


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"seq": "1042"}, "seq"),
        ({"seq": -1}, "seq"),
        ({"seq": 1.5}, "seq"),
        ({"seq": True}, "seq"),
        ({"ts": -5}, "ts"),
        ({"checksum": -1}, "checksum"),
        ({"checksum": 2**32}, "checksum"),
        ({"checksum": "123"}, "checksum"),
        ({"bids": {"189.12": "300"}}, "bids"),
        ({"bids": [["189.12"]]}, "bids[0]"),
        ({"bids": [["189.12", "300", "x"]]}, "bids[0]"),
        ({"bids": [[189.12, "300"]]}, "bids[0].price"),
        ({"asks": [["189.15", "0"], ["189.16", 5]]}, "asks[1].size"),
        ({"channel": 5}, "channel"),
    ],
)
def test_wrong_types_name_the_field(patch: dict[str, object], field: str) -> None:
    err = bad({**DELTA, **patch})
    assert err.field == field
    if "channel" not in patch:
        assert err.channel == "orderbook:AAPL"


@pytest.mark.parametrize(
    ("obj", "channel"),
    [
        ({**DELTA, "channel": "ticker:AAPL"}, "ticker:AAPL"),
        ({**DELTA, "channel": "orderbook:"}, "orderbook:"),
        ({**TICKER, "channel": "orderbook:BTC-USD"}, "orderbook:BTC-USD"),
        ({**TRADE, "channel": "ticker:XAU-USD"}, "ticker:XAU-USD"),
    ],
)
def test_data_frame_on_a_channel_of_another_kind(obj: dict[str, object], channel: str) -> None:
    err = bad(obj)
    assert (err.channel, err.field) == (channel, "channel")


def test_trade_side_must_be_buy_or_sell() -> None:
    err = bad({**TRADE, "side": "short"})
    assert (err.channel, err.field) == ("trades:XAU-USD", "side")


def test_authenticated_heartbeat_must_be_positive() -> None:
    err = bad({"type": "authenticated", "session": "s", "heartbeat_ms": 0, "max_channels": 1})
    assert err.field == "heartbeat_ms"


def test_client_frame_errors() -> None:
    assert bad({"action": "dance"}, frames.decode_client_frame).field == "action"
    assert bad({"action": "auth", "key": "k"}, frames.decode_client_frame).field == "ts"
    err = bad({"action": "subscribe", "channels": "x"}, frames.decode_client_frame)
    assert err.field == "channels"


def test_snapshot_and_instruments_errors() -> None:
    body = {"symbol": "AAPL", "seq": -3, "ts": 1, "bids": [], "asks": []}
    err = bad(body, frames.decode_snapshot)
    assert err.field == "seq"
    err = bad({"instruments": [{"symbol": "A"}]}, frames.decode_instruments)
    assert err.field is not None and err.field.startswith("instruments[0].")
    assert "not valid JSON" in bad(b"<html>", frames.decode_snapshot).reason


def test_instruments_with_a_bad_grid_are_the_peers_error() -> None:
    good = {"symbol": "AAPL", "asset_class": "equity", "tick_size": "0.01", "lot_size": "1"}
    for tick in ("0", "-0.01", "abc"):
        body = {"instruments": [good, {**good, "symbol": "MSFT", "tick_size": tick}]}
        err = bad(body, frames.decode_instruments)
        assert err.field == "instruments[1]"
        assert "MSFT" in str(err)


def test_a_hostile_channel_name_is_truncated_in_errors() -> None:
    err = bad({**DELTA, "channel": "orderbook:" + "A" * 10_000, "seq": "x"})
    assert err.channel is not None and len(err.channel) <= 200


# -- parse_levels -----------------------------------------------------------------------------
def test_parse_levels_converts_to_units() -> None:
    levels = [("189.12", "300"), ("189.1", "0"), ("189.100", "7")]
    assert frames.parse_levels(levels, AAPL, "orderbook:AAPL", "bids") == [
        (18912, 300),
        (18910, 0),
        (18910, 7),
    ]
    assert frames.parse_levels([], AAPL, "orderbook:AAPL", "asks") == []


@pytest.mark.parametrize(
    ("level", "field", "why"),
    [
        (("abc", "1"), "asks[1].price", "not a non-negative decimal"),
        (("-1.00", "1"), "asks[1].price", "not a non-negative decimal"),
        (("1e2", "1"), "asks[1].price", "not a non-negative decimal"),
        (("0", "1"), "asks[1].price", "price must be > 0"),
        (("0.00", "1"), "asks[1].price", "price must be > 0"),
        (("100.25", "1"), "asks[1].price", "tick_size 0.50"),
        (("100.123", "1"), "asks[1].price", "more than 2 decimals"),
        (("100.50", "-1"), "asks[1].size", "not a non-negative decimal"),
        (("100.50", "0.0001"), "asks[1].size", "more than 3 decimals"),
        (("100.50", " 1"), "asks[1].size", "not a non-negative decimal"),
        (("100.50", 1), "asks[1].size", "expected a decimal string"),
        (("100.50",), "asks[1]", r"must be \[price, size\]"),
    ],
)
def test_parse_levels_names_the_first_bad_field(
    level: tuple[str, ...], field: str, why: str
) -> None:
    levels = [("100.00", "1.000"), level, ("oops", "x")]
    with pytest.raises(FrameError, match=why) as ei:
        frames.parse_levels(levels, BTC, "orderbook:BTC-USD", "asks")  # type: ignore[arg-type]
    assert (ei.value.channel, ei.value.field) == ("orderbook:BTC-USD", field)


def test_split_channel() -> None:
    assert frames.split_channel("orderbook:AAPL") == ("orderbook", "AAPL")
    assert frames.split_channel("trades:XAU-USD") == ("trades", "XAU-USD")
    for bad_name in ("AAPL", "candles:AAPL", "orderbook:", ":AAPL", ""):
        with pytest.raises(ValueError, match="KIND:SYMBOL"):
            frames.split_channel(bad_name)


# -- signing: expected values computed here, independently ---------------------------------
SECRET = "s3cr3t-key"


def ref_hmac(message: str) -> str:
    return hmac.new(SECRET.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def test_stream_auth_signature() -> None:
    ts = 1_700_000_000_123
    expected = ref_hmac("1700000000123GET/v1/stream")
    assert frames.sign_stream_auth(SECRET, ts) == expected
    auth = frames.auth_frame("key-1", SECRET, ts)
    assert json.loads(frames.encode(auth)) == {
        "action": "auth",
        "key": "key-1",
        "ts": ts,
        "sig": expected,
    }


def test_rest_signature_covers_ts_method_path_query_and_body() -> None:
    body = '{"symbol":"AAPL","side":"buy","type":"limit","price":"189.12","size":"1"}'
    expected = ref_hmac(f"1700000000000POST/v1/orders{body}")
    assert frames.sign_rest(SECRET, 1_700_000_000_000, "post", "/v1/orders", body) == expected
    get = ref_hmac("5GET/v1/orders?status=open&symbol=AAPL")
    assert frames.sign_rest(SECRET, 5, "GET", "/v1/orders?status=open&symbol=AAPL") == get
    assert frames.rest_headers("k", SECRET, 5, "GET", "/v1/orders?status=open&symbol=AAPL") == {
        "X-VT-KEY": "k",
        "X-VT-TS": "5",
        "X-VT-SIGN": get,
    }
    assert frames.sign_rest(SECRET, 5, "DELETE", "/v1/orders") != frames.sign_rest(
        SECRET, 5, "DELETE", "/v1/orders?symbol=AAPL"
    )


def test_unicode_secret_and_body_are_utf8() -> None:
    secret = "clé-✓"
    expected = hmac.new(
        secret.encode("utf-8"), '9POST/v1/orders{"note":"é"}'.encode(), hashlib.sha256
    ).hexdigest()
    assert frames.sign_rest(secret, 9, "POST", "/v1/orders", '{"note":"é"}') == expected


def test_verify_signature() -> None:
    sig = ref_hmac("x")
    assert frames.verify_signature(sig, sig)
    assert frames.verify_signature(sig, sig.upper())
    assert not frames.verify_signature(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
    assert not frames.verify_signature(sig, "")


@pytest.mark.parametrize(
    "data",
    [
        b'{"type":"delta","channel":"orderbook:\xdf"}',
        b'"\xff"',
        b"\xff\xfe",
        b'{"a":"\xdf"}',
        # valid frames but for a byte msgspec 0.23 never looks at (an unknown field, a key)
        b'{"type":"ticker","channel":"ticker:X","seq":1,"ts":1,"bid":"1","bid_size":"1",'
        b'"ask":"2","ask_size":"1","last":"1","volume":"1","zz":"\xdf"}',
        b'{"symbol":"X","seq":1,"ts":1,"bids":[],"asks":[],"\xdf":1}',
        b'{"instruments":[],"note":"\xc3"}',
        b'{"action":"subscribe","channels":[],"id":1,"x":"\xed\xa0\x80"}',
    ],
)
def test_invalid_utf8_inside_a_string_is_a_frame_error(data: bytes) -> None:
    """Found by benchmarks/fuzz_core.py. msgspec's answer changed between releases (0.22:
    UnicodeDecodeError; 0.23: DecodeError, a type error first, or nothing for skipped fields),
    so tickpipe checks UTF-8 itself: the same FrameError, naming UTF-8, on every version."""
    for decode in (
        frames.decode_server_frame,
        frames.decode_client_frame,
        frames.decode_snapshot,
        frames.decode_instruments,
    ):
        with pytest.raises(FrameError, match="not valid UTF-8"):
            decode(data)
        with pytest.raises(FrameError, match="not valid UTF-8"):
            decode(memoryview(data))  # type: ignore[arg-type]  # what picows hands over
