"""OKX v5 signing and the order codec (``venues/okx/auth.py``, ``venues/okx/orders.py``) on the
examples of OKX's API v5 reference (https://www.okx.com/docs-v5/en/): "Overview › REST
Authentication › Signature", "Trade › POST / Place order", "GET / Order details",
"GET / Order List", "POST / Cancel order", "POST / Cancel All After", "Public Data › GET /
System time", and OKX's documented error codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickpipe.client.rest import is_retryable
from tickpipe.errors import (
    ConfigError,
    CredentialsRejected,
    DuplicateOrderError,
    RateLimitedError,
    RestError,
    UnknownOrderError,
)
from tickpipe.venues.okx import auth
from tickpipe.venues.okx.adapter import OkxVenue
from tickpipe.venues.okx.orders import OkxOrderCodec
from tickpipe.venues.trading import Credentials, NewOrder

# "Signature": the documented example SecretKey, timestamp and request paths / body
DOC_SECRET = "22582BD0CFF14C41EDBF1AB98506286D"
DOC_TS = "2020-12-08T09:08:57.715Z"
DOC_TS_MS = 1_607_418_537_715
DOC_GET_PATH = "/api/v5/account/balance?ccy=BTC"
DOC_BODY = '{"instId":"BTC-USDT","lever":"5","mgnMode":"isolated"}'
# OKX gives the recipe but no resulting signature; these were computed independently with
#   printf '%s' "<prehash>" | openssl dgst -sha256 -hmac "<SecretKey>" -binary | base64
DOC_GET_SIGN = "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY="
DOC_POST_SIGN = "eCnnCgWLjlQ9XnpUkrcny3qNq3WW/81KNrDr/XR6Xv8="

CREDS = Credentials("37c541a1-key", "s3cr3t-value", "p4ss-phrase")
TS = 1_695_190_491_421
SENT = NewOrder("BTC-USDT", "buy", "2.15", "2", "b15")


def _body(obj: object) -> bytes:
    return json.dumps(obj).encode()


# -- signing --------------------------------------------------------------------------------
def test_the_documented_get_example_signs_path_and_query() -> None:
    assert auth.prehash(DOC_TS, "GET", DOC_GET_PATH) == (DOC_TS + "GET" + DOC_GET_PATH).encode()
    assert auth.sign(DOC_SECRET, DOC_TS, "GET", DOC_GET_PATH) == DOC_GET_SIGN
    assert auth.verify(DOC_SECRET, DOC_TS, "GET", DOC_GET_PATH, b"", DOC_GET_SIGN)


def test_the_documented_post_example_signs_the_body_text() -> None:
    path = "/api/v5/account/set-leverage"
    assert auth.sign(DOC_SECRET, DOC_TS, "post", path, DOC_BODY) == DOC_POST_SIGN  # METHOD upper
    assert auth.verify(DOC_SECRET, DOC_TS, "POST", path, DOC_BODY.encode(), DOC_POST_SIGN)
    # one byte of body, path, timestamp or secret changed: refused
    assert not auth.verify(DOC_SECRET, DOC_TS, "POST", path, DOC_BODY + " ", DOC_POST_SIGN)
    assert not auth.verify(DOC_SECRET, DOC_TS, "POST", path + "x", DOC_BODY, DOC_POST_SIGN)
    ts2 = DOC_TS.replace("715", "716")
    assert not auth.verify(DOC_SECRET, ts2, "POST", path, DOC_BODY, DOC_POST_SIGN)
    assert not auth.verify(DOC_SECRET[:-1], DOC_TS, "POST", path, DOC_BODY, DOC_POST_SIGN)
    assert not auth.verify(DOC_SECRET, DOC_TS, "POST", path, DOC_BODY, "not base64 é")


def test_the_timestamp_is_iso_8601_utc_with_milliseconds() -> None:
    assert auth.iso_timestamp(DOC_TS_MS) == DOC_TS
    assert auth.iso_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert auth.parse_timestamp(DOC_TS) == DOC_TS_MS
    for bad in (
        "2020-12-08T09:08:57Z",
        "2020-12-08T09:08:57.715+00:00",
        "2020-12-08 09:08:57.715Z",
        "2020-13-08T09:08:57.715Z",
        "1607418537715",
        "２020-12-08T09:08:57.715Z",
        "",
    ):
        assert auth.parse_timestamp(bad) is None, bad
    with pytest.raises(ConfigError):
        auth.iso_timestamp(-1)


def test_signed_headers_carry_key_passphrase_and_a_verifiable_sign() -> None:
    h = auth.signed_headers(CREDS, DOC_TS_MS, "GET", DOC_GET_PATH)
    assert h[auth.KEY_HEADER] == CREDS.key
    assert h[auth.PASSPHRASE_HEADER] == CREDS.passphrase
    assert h[auth.TIMESTAMP_HEADER] == DOC_TS
    assert auth.verify(CREDS.secret, DOC_TS, "GET", DOC_GET_PATH, b"", h[auth.SIGN_HEADER])
    assert auth.SIMULATED_HEADER not in h
    demo = auth.signed_headers(CREDS, DOC_TS_MS, "GET", DOC_GET_PATH, simulated=True)
    assert demo[auth.SIMULATED_HEADER] == "1"
    with pytest.raises(ConfigError, match="passphrase") as ei:
        auth.signed_headers(Credentials("k", "the-secret"), DOC_TS_MS, "GET", "/x")
    assert "the-secret" not in str(ei.value)


# -- building calls -------------------------------------------------------------------------
def _signed_ok(call_headers: dict[str, str], method: str, target: str, body: bytes) -> bool:
    ts = call_headers[auth.TIMESTAMP_HEADER]
    return auth.verify(CREDS.secret, ts, method, target, body, call_headers[auth.SIGN_HEADER])


def test_place_is_the_documented_spot_limit_order_with_clordid() -> None:
    call = OkxOrderCodec().place(CREDS, TS, SENT)
    assert (call.method, call.path, call.query) == ("POST", "/api/v5/trade/order", "")
    assert call.body == (
        b'{"instId":"BTC-USDT","tdMode":"cash","clOrdId":"b15","side":"buy",'
        b'"ordType":"limit","px":"2.15","sz":"2"}'
    )
    assert call.headers["Content-Type"] == "application/json"
    assert _signed_ok(call.headers, "POST", call.target, call.body)


def test_get_open_cancel_and_find_calls() -> None:
    codec = OkxOrderCodec()
    get = codec.get_order(CREDS, TS, "BTC-USDT", "1753197687182819328")
    assert get.target == "/api/v5/trade/order?ordId=1753197687182819328&instId=BTC-USDT"
    assert get.body == b"" and _signed_ok(get.headers, "GET", get.target, b"")
    find = codec.find_by_client_id(CREDS, TS, "BTC-USDT", "b15")
    assert find.target == "/api/v5/trade/order?clOrdId=b15&instId=BTC-USDT"
    assert codec.open_orders(CREDS, TS, None).target == "/api/v5/trade/orders-pending?instType=SPOT"
    listed = codec.open_orders(CREDS, TS, "ETH-USDT")
    assert listed.target == "/api/v5/trade/orders-pending?instType=SPOT&instId=ETH-USDT"
    assert _signed_ok(listed.headers, "GET", listed.target, b"")
    cancel = codec.cancel(CREDS, TS, "BTC-USDT", "2510789768709120")
    assert cancel.target == "/api/v5/trade/cancel-order"
    assert cancel.body == b'{"instId":"BTC-USDT","ordId":"2510789768709120"}'
    assert _signed_ok(cancel.headers, "POST", cancel.target, cancel.body)
    assert codec.cancel_all(CREDS, TS, None) is None  # no spot cancel-all at OKX
    assert codec.cancel_all(CREDS, TS, "BTC-USDT") is None
    time_call = codec.time_call()
    assert time_call is not None and time_call.target == "/api/v5/public/time"
    assert auth.KEY_HEADER not in time_call.headers  # the clock is public


@pytest.mark.parametrize(
    ("timeout_s", "sent"), [(60.0, "60"), (5.0, "10"), (500.0, "120"), (30.2, "31"), (0.0, "0")]
)
def test_cancel_all_after_timeout_is_whole_seconds_in_okx_range(
    timeout_s: float, sent: str
) -> None:
    call = OkxOrderCodec().arm_dead_man(CREDS, TS, timeout_s, None)
    assert call is not None and call.target == "/api/v5/trade/cancel-all-after"
    assert json.loads(call.body) == {"timeOut": sent}
    assert _signed_ok(call.headers, "POST", call.target, call.body)


def test_a_rehearsal_range_allows_a_short_timer() -> None:
    codec = OkxOrderCodec(dead_man_range_s=(1, 120))
    assert codec.dead_man_timeout(2.5) == 3
    with pytest.raises(ConfigError):
        OkxOrderCodec(dead_man_range_s=(0, 10))


def test_bad_input_is_refused_before_any_request_naming_what_is_wrong() -> None:
    codec = OkxOrderCodec()
    for coid in ("has-dash", "x" * 33, "", "ünï"):
        with pytest.raises(ConfigError, match="clOrdId"):
            codec.place(CREDS, TS, NewOrder("BTC-USDT", "buy", "1", "1", coid))
    with pytest.raises(ConfigError, match="instId"):
        codec.place(CREDS, TS, NewOrder("BTC USDT", "buy", "1", "1", "ok1"))
    with pytest.raises(ConfigError, match="instId") as ei:
        codec.cancel(CREDS, TS, None, "123")
    assert "123" in str(ei.value) and "did not place" in str(ei.value)
    with pytest.raises(ConfigError, match="instId"):
        codec.get_order(CREDS, TS, None, "123")


def test_the_adapter_gives_the_codec_and_demo_trading_adds_the_header() -> None:
    venue = OkxVenue()
    codec = venue.order_codec()
    assert codec.venue == "okx" and codec.needs_passphrase and codec.cancel_needs_symbol
    assert not codec.dead_man_per_symbol and codec.dead_man_refresh_s == 10.0
    assert codec.orders_burst + 2 * codec.orders_per_s <= 60  # OKX: 60 per 2 s
    demo = OkxVenue(demo_trading=True).order_codec()
    assert demo.place(CREDS, TS, SENT).headers[auth.SIMULATED_HEADER] == "1"
    time_call = demo.time_call()
    assert time_call is not None and time_call.headers[auth.SIMULATED_HEADER] == "1"


# -- reading answers ------------------------------------------------------------------------
PLACE_ANSWER = {  # "POST / Place order", response example
    "code": "0",
    "msg": "",
    "data": [
        {
            "clOrdId": "oktswap6",
            "ordId": "312269865356374016",
            "tag": "",
            "ts": "1695190491421",
            "sCode": "0",
            "sMsg": "",
            "subCode": "",
        }
    ],
    "inTime": "1695190491421339",
    "outTime": "1695190491423240",
}
DETAILS_ANSWER = {  # "GET / Order details", response example (the fields tickpipe reads)
    "code": "0",
    "data": [
        {
            "accFillSz": "0.00192834",
            "avgPx": "51858",
            "cTime": "1708587373361",
            "clOrdId": "",
            "instId": "BTC-USDT",
            "instType": "SPOT",
            "ordId": "680800019749904384",
            "ordType": "market",
            "px": "",
            "side": "buy",
            "state": "filled",
            "sz": "100",
            "tdMode": "cash",
            "tgtCcy": "quote_ccy",
            "uTime": "1708587373362",
        }
    ],
    "msg": "",
}
PENDING_ANSWER: dict[str, Any] = {  # "GET / Order List", response example (abridged)
    "code": "0",
    "data": [
        {
            "accFillSz": "0",
            "clOrdId": "",
            "instId": "BTC-USDT",
            "instType": "SPOT",
            "ordId": "1752588852617379840",
            "ordType": "post_only",
            "px": "13013.5",
            "side": "buy",
            "state": "live",
            "sz": "0.001",
        }
    ],
    "msg": "",
}
CANCEL_ANSWER = {  # "POST / Cancel order", response example
    "code": "0",
    "msg": "",
    "data": [
        {
            "clOrdId": "oktswap6",
            "ordId": "2510789768709120",
            "ts": "1695190491421",
            "sCode": "0",
            "sMsg": "",
        }
    ],
    "inTime": "1695190491421339",
    "outTime": "1695190491423240",
}


def test_a_place_answer_is_ids_only_the_order_is_the_one_sent() -> None:
    o = OkxOrderCodec().decode_order(200, _body(PLACE_ANSWER), SENT)
    assert (o.order_id, o.client_order_id) == ("312269865356374016", "oktswap6")
    assert (o.symbol, o.side, o.price, o.size, o.status, o.filled_size) == (
        "BTC-USDT",
        "buy",
        "2.15",
        "2",
        "open",
        "0",
    )
    assert o.raw["ts"] == "1695190491421"


def test_order_details_and_order_list_decode_with_normalised_status() -> None:
    codec = OkxOrderCodec()
    o = codec.decode_order(200, _body(DETAILS_ANSWER), None)
    assert (o.order_id, o.symbol, o.side, o.status, o.filled_size) == (
        "680800019749904384",
        "BTC-USDT",
        "buy",
        "filled",
        "0.00192834",
    )
    assert not o.is_open
    [p] = codec.decode_orders(200, _body(PENDING_ANSWER))
    assert (p.order_id, p.price, p.size, p.status, p.is_open) == (
        "1752588852617379840",
        "13013.5",
        "0.001",
        "open",
        True,
    )


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("live", "open"),
        ("partially_filled", "open"),
        ("filled", "filled"),
        ("canceled", "cancelled"),
        ("mmp_canceled", "cancelled"),
        ("some_new_state", "open"),  # unknown: treated as still at risk
    ],
)
def test_okx_states_map_to_tickpipe_statuses(state: str, status: str) -> None:
    item = dict(PENDING_ANSWER["data"][0], state=state)
    [o] = OkxOrderCodec().decode_orders(200, _body({"code": "0", "msg": "", "data": [item]}))
    assert o.status == status


def test_cancel_time_and_cancel_all_after_answers() -> None:
    codec = OkxOrderCodec()
    c = codec.decode_order(200, _body(CANCEL_ANSWER), None)
    assert (c.order_id, c.client_order_id, c.status) == (
        "2510789768709120",
        "oktswap6",
        "cancelled",
    )
    # "POST / Cancel All After", response example
    caa = {
        "code": "0",
        "msg": "",
        "data": [{"triggerTime": "1587971460", "tag": "", "ts": "1587971400"}],
    }
    codec.decode_ack(200, _body(caa))  # no error
    # "GET / System time", response example
    t = {"code": "0", "msg": "", "data": [{"ts": "1597026383085"}]}
    assert codec.decode_time(200, _body(t)) == 1_597_026_383_085
    assert codec.decode_cancel_all(200, _body(CANCEL_ANSWER)) == ["2510789768709120"]


@pytest.mark.parametrize(
    ("code", "msg"),
    [
        ("50111", "Invalid OK-ACCESS-KEY"),
        ("50113", "Invalid Sign"),
        ("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect'),
        ("50103", 'Request header "OK-ACCESS-KEY" cannot be empty'),
        ("50110", "Your IP is not in the whitelist"),
    ],
)
def test_a_refused_key_is_credentials_rejected_and_fatal(code: str, msg: str) -> None:
    with pytest.raises(CredentialsRejected) as ei:
        OkxOrderCodec().decode_order(401, _body({"code": code, "msg": msg, "data": []}), SENT)
    e = ei.value
    assert (e.status, e.code) == (401, "auth_failed")
    assert code in str(e) and "OKX refused the API key" in str(e)
    assert not is_retryable(e)


def _raises(status: int, answer: object) -> RestError:
    body = answer if isinstance(answer, bytes) else _body(answer)
    with pytest.raises(RestError) as ei:
        OkxOrderCodec().decode_order(status, body, SENT)
    return ei.value


def _item_error(code: str, msg: str) -> dict[str, object]:
    item = {"clOrdId": "b15", "ordId": "", "sCode": code, "sMsg": msg, "tag": "", "ts": "1"}
    return {"code": "1", "msg": "All operations failed", "data": [item]}


def test_okx_error_codes_map_to_typed_errors() -> None:
    e = _raises(401, {"code": "50102", "msg": "Timestamp request expired", "data": []})
    assert e.code == "clock_skew" and not isinstance(e, CredentialsRejected)
    e = _raises(200, {"code": "51603", "msg": "Order does not exist", "data": []})
    assert isinstance(e, UnknownOrderError)
    e = _raises(200, _item_error("51400", "Cancellation failed as the order does not exist"))
    assert isinstance(e, UnknownOrderError)
    e = _raises(200, _item_error("51016", "Duplicated clOrdId"))
    assert isinstance(e, DuplicateOrderError) and e.code == "duplicate_client_order_id"
    e = _raises(200, _item_error("50011", "Too Many Requests"))
    assert isinstance(e, RateLimitedError) and e.retry_after_s > 0 and is_retryable(e)
    e = _raises(200, _item_error("51008", "Order failed. Insufficient USDT balance"))
    assert e.code == "rejected" and "51008" in str(e) and not is_retryable(e)
    e = _raises(503, {"code": "50001", "msg": "Service temporarily unavailable", "data": []})
    assert e.code == "venue_error" and e.status == 503 and is_retryable(e)
    e = _raises(200, {"code": "50026", "msg": "System error", "data": []})
    assert e.code == "venue_error" and is_retryable(e)
    e = _raises(502, b"<html>bad gateway</html>")
    assert e.code == "venue_error" and e.status == 502 and is_retryable(e)


def test_an_unreadable_answer_names_what_came() -> None:
    codec = OkxOrderCodec()
    with pytest.raises(RestError, match="no OKX body"):
        codec.decode_orders(200, b"[1, 2]")
    with pytest.raises(RestError, match="no data"):
        codec.decode_order(200, _body({"code": "0", "msg": "", "data": []}), None)
    with pytest.raises(RestError, match="not an order"):
        codec.decode_orders(200, _body({"code": "0", "msg": "", "data": [{"state": "live"}]}))
    with pytest.raises(RestError, match="no ts"):
        codec.decode_time(200, _body({"code": "0", "msg": "", "data": [{"ts": "soon"}]}))


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 4_102_444_800_000))
def test_the_timestamp_text_is_datetimes_and_reads_back(ms: int) -> None:
    import datetime as dt

    want = dt.datetime.fromtimestamp(ms // 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    text = auth.iso_timestamp(ms)
    assert text == f"{want}.{ms % 1000:03d}Z"
    assert auth.parse_timestamp(text) == ms


@pytest.mark.parametrize(
    "text", ["2021-02-30T00:00:00.000Z", "2021-13-01T00:00:00.000Z", "2021-01-01T24:00:00.000Z"]
)
def test_an_impossible_timestamp_is_refused(text: str) -> None:
    assert auth.parse_timestamp(text) is None
