"""Bybit v5 signed orders with no socket (``venues/bybit/auth.py``, ``venues/bybit/orders.py``):
the signature rule, the requests the codec builds, Bybit's documented answers decoded, and its
retCodes mapped to tickpipe's typed errors.

Documented examples used (https://bybit-exchange.github.io/docs/v5/): "Get Open & Closed
Orders" (request ``GET /v5/order/realtime?symbol=ETHUSDT&category=linear&openOnly=0&limit=1`` at
X-BAPI-TIMESTAMP 1672219525810 with X-BAPI-RECV-WINDOW 5000, and its response), "Place Order"
(the pybit request for ``spot-test-postonly`` and the response ``1321003749386327552``),
"Cancel Order", "Cancel All Orders", "Get Order History" (a Cancelled order), "Get Bybit Server
Time", "Set Disconnect Cancel All", "WebSocket › Connect › Authentication" (``expires``
1662350400000). Bybit's docs print ``XXXXX`` for keys and signatures and give no signature
value, so the expected signatures below were computed independently of this code with
``openssl dgst -sha256 -hmac <secret>`` over the documented string
``timestamp + api_key + recv_window + payload`` (and ``GET/realtime + expires``).
"""

from __future__ import annotations

import json

import pytest

from tickpipe.client.rest import is_retryable
from tickpipe.errors import (
    ConfigError,
    CredentialsRejected,
    RateLimitedError,
    RestError,
    UnknownOrderError,
)
from tickpipe.venues.bybit import auth
from tickpipe.venues.bybit.adapter import BybitLinearVenue, BybitVenue
from tickpipe.venues.bybit.endpoints import BYBIT, BYBIT_LINEAR
from tickpipe.venues.bybit.orders import (
    BybitOrders,
    dcp_window_s,
    decode_private_answer,
    private_auth_frame,
    private_subscribe_frame,
)
from tickpipe.venues.trading import FINAL_STATUSES, Credentials, NewOrder

KEY = "XXXXXXXXXX"
SECRET = "YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY"
CREDS = Credentials(KEY, SECRET)
TS = 1672219525810

# openssl dgst -sha256 -hmac $SECRET over the documented strings (see the module docstring)
SIG_OPEN_ORDERS = "b2ae3795ebf577883f4bf95701e23bf3b333d3fba358e1fe270e15991fe3520e"
SIG_PLACE = "a7d8878e5bfb4e519f6b2591c64db57fdb62273278e4e661a7f7a3d143fdb9c0"
SIG_WS_AUTH = "9f96338b434359fa6300c2d0040ffe25962cbc700dac649bfc7c59ef64431f89"

# documented responses ("Response Example" of each endpoint), verbatim
CREATE_ANSWER = (
    b'{"retCode": 0, "retMsg": "OK", "result": {"orderId": "1321003749386327552", '
    b'"orderLinkId": "spot-test-postonly"}, "retExtInfo": {}, "time": 1672211918471}'
)
REALTIME_ANSWER = json.dumps(
    {
        "retCode": 0,
        "retMsg": "OK",
        "result": {
            "list": [
                {
                    "orderId": "fd4300ae-7847-404e-b947-b46980a4d140",
                    "orderLinkId": "test-000005",
                    "symbol": "ETHUSDT",
                    "price": "1600.00",
                    "qty": "0.10",
                    "side": "Buy",
                    "isLeverage": "",
                    "positionIdx": 1,
                    "orderStatus": "New",
                    "cancelType": "UNKNOWN",
                    "avgPrice": "0",
                    "leavesQty": "0.10",
                    "cumExecQty": "0.00",
                    "timeInForce": "GTC",
                    "orderType": "Limit",
                    "createdTime": "1684738540559",
                    "updatedTime": "1684738540561",
                }
            ],
            "nextPageCursor": "page_args%3Dfd4300ae-7847-404e-b947-b46980a4d140%26symbol%3D6%26",
            "category": "linear",
        },
        "retExtInfo": {},
        "time": 1684765770483,
    }
).encode()
HISTORY_CANCELLED = json.dumps(
    {
        "retCode": 0,
        "retMsg": "OK",
        "result": {
            "list": [
                {
                    "orderId": "14bad3a1-6454-43d8-bcf2-5345896cf74d",
                    "orderLinkId": "YLxaWKMiHU",
                    "symbol": "BTCUSDT",
                    "price": "26864.40",
                    "qty": "0.003",
                    "side": "Buy",
                    "orderStatus": "Cancelled",
                    "cumExecQty": "0.000",
                }
            ],
            "nextPageCursor": "page_token%3D39380%26",
            "category": "linear",
        },
        "retExtInfo": {},
        "time": 1684766282976,
    }
).encode()
CANCEL_ANSWER = (
    b'{"retCode": 0, "retMsg": "OK", "result": {"orderId": "c6f055d9-7f21-4079-913d-e6523a9cfffa",'
    b' "orderLinkId": "linear-004"}, "retExtInfo": {}, "time": 1672217377164}'
)
CANCEL_ALL_ANSWER = (
    b'{"retCode": 0, "retMsg": "OK", "result": {"list": [{"orderId": "1616024329462743808", '
    b'"orderLinkId": "1616024329462743809"}, {"orderId": "1616024287544869632", "orderLinkId": '
    b'"1616024287544869633"}], "success": "1"}, "retExtInfo": {}, "time": 1707381118116}'
)
TIME_ANSWER = (
    b'{"retCode": 0, "retMsg": "OK", "result": {"timeSecond": "1688639403", "timeNano": '
    b'"1688639403423213947"}, "retExtInfo": {}, "time": 1688639403423}'
)
DCP_ANSWER = b'{"retCode": 0, "retMsg": "success"}'


def error(code: int, msg: str) -> bytes:
    return json.dumps({"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}}).encode()


def spot() -> BybitOrders:
    return BybitOrders(BYBIT)


def linear() -> BybitOrders:
    return BybitOrders(BYBIT_LINEAR)


NEW = NewOrder("BTCUSDT", "buy", "15600", "0.1", "spot-test-postonly")


# -- signing ----------------------------------------------------------------------------------


def test_signature_of_the_documented_get_and_post_requests() -> None:
    query = b"symbol=ETHUSDT&category=linear&openOnly=0&limit=1"  # as sent, not sorted
    assert auth.sign(SECRET, TS, KEY, 5000, query) == SIG_OPEN_ORDERS
    body = (
        b'{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.1",'
        b'"price":"15600","timeInForce":"PostOnly","orderLinkId":"spot-test-postonly"}'
    )
    assert auth.sign(SECRET, 1672211928338, KEY, 5000, body) == SIG_PLACE
    headers = auth.signed_headers(CREDS, TS, query)
    assert headers == {
        "X-BAPI-API-KEY": KEY,
        "X-BAPI-TIMESTAMP": str(TS),
        "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": SIG_OPEN_ORDERS,
    }
    # the verifier (the gateway dialect) takes the header texts, any case of hex
    assert auth.verify(SECRET, str(TS), KEY, "5000", query, SIG_OPEN_ORDERS.upper())
    assert not auth.verify(SECRET, str(TS), KEY, "5000", query + b"&x=1", SIG_OPEN_ORDERS)
    assert not auth.verify(SECRET, str(TS + 1), KEY, "5000", query, SIG_OPEN_ORDERS)
    assert not auth.verify("other", str(TS), KEY, "5000", query, SIG_OPEN_ORDERS)
    assert not auth.verify(SECRET, str(TS), KEY, "5000", query, "zz" * 32)


def test_private_stream_auth_signature_and_frame() -> None:
    assert auth.ws_auth_signature(SECRET, 1662350400000) == SIG_WS_AUTH
    frame = json.loads(private_auth_frame(CREDS, 1662350400000))
    assert frame == {"op": "auth", "args": [KEY, 1662350400000, SIG_WS_AUTH]}
    assert auth.ws_verify(SECRET, 1662350400000, SIG_WS_AUTH)
    assert not auth.ws_verify(SECRET, 1662350400001, SIG_WS_AUTH)
    assert json.loads(private_subscribe_frame(["dcp.spot"])) == {
        "op": "subscribe",
        "args": ["dcp.spot"],
    }
    ok = decode_private_answer(
        b'{"success": true, "ret_msg": "", "op": "auth", "conn_id": "cejreaspqfh3sjdnldmg-p"}'
    )
    assert ok.op == "auth" and ok.success
    pong = decode_private_answer(
        b'{"req_id": "test", "op": "pong", "args": ["1675418560633"], "conn_id": "c-1b"}'
    )
    assert pong.op == "pong" and pong.success and pong.request_id == "test"


def test_timestamp_window_is_bybits_rule() -> None:
    server = 1_700_000_000_000
    assert auth.timestamp_fresh(server - 5000, 5000, server)  # server - recv_window <= ts
    assert not auth.timestamp_fresh(server - 5001, 5000, server)
    assert auth.timestamp_fresh(server + 999, 5000, server)  # ts < server + 1000
    assert not auth.timestamp_fresh(server + 1000, 5000, server)


# -- requests ---------------------------------------------------------------------------------


def test_place_is_a_signed_gtc_limit_with_the_client_order_id_as_order_link_id() -> None:
    call = spot().place(CREDS, 1672211928338, NEW)
    assert (call.method, call.path, call.query) == ("POST", "/v5/order/create", "")
    assert json.loads(call.body) == {
        "category": "spot",
        "symbol": "BTCUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.1",
        "price": "15600",
        "timeInForce": "GTC",
        "orderLinkId": "spot-test-postonly",
    }
    h = call.headers
    assert h["Content-Type"] == "application/json" and h["X-BAPI-RECV-WINDOW"] == "5000"
    assert h["X-BAPI-SIGN"] == auth.sign(SECRET, 1672211928338, KEY, 5000, call.body)
    assert SECRET not in json.dumps(h) and SECRET.encode() not in call.body
    sell = linear().place(CREDS, 1, NewOrder("ETHUSDT", "sell", "1600", "0.1", "a_b-1"))
    assert json.loads(sell.body)["category"] == "linear"
    assert json.loads(sell.body)["side"] == "Sell"


def test_queries_are_signed_as_sent() -> None:
    call = linear().open_orders(CREDS, TS, "ETHUSDT")
    assert (call.method, call.path) == ("GET", "/v5/order/realtime")
    assert call.query == "category=linear&symbol=ETHUSDT&limit=50"
    assert call.target == "/v5/order/realtime?category=linear&symbol=ETHUSDT&limit=50"
    assert call.headers["X-BAPI-SIGN"] == auth.sign(SECRET, TS, KEY, 5000, call.query.encode())
    # linear needs one of symbol / baseCoin / settleCoin; spot lists everything
    assert linear().open_orders(CREDS, TS, None).query == "category=linear&settleCoin=USDT&limit=50"
    assert spot().open_orders(CREDS, TS, None).query == "category=spot&limit=50"
    get = spot().get_order(CREDS, TS, "BTCUSDT", "1321003749386327552")
    assert get.query == "category=spot&symbol=BTCUSDT&orderId=1321003749386327552"
    assert spot().get_order(CREDS, TS, None, "7").query == "category=spot&orderId=7"


def test_cancel_cancel_all_and_the_dead_man_window() -> None:
    call = linear().cancel(CREDS, TS, "BTCPERP", "c6f055d9-7f21-4079-913d-e6523a9cfffa")
    assert call.path == "/v5/order/cancel"
    assert json.loads(call.body) == {
        "category": "linear",
        "symbol": "BTCPERP",
        "orderId": "c6f055d9-7f21-4079-913d-e6523a9cfffa",
    }
    every = linear().cancel_all(CREDS, TS, None)
    assert every is not None and every.path == "/v5/order/cancel-all"
    assert json.loads(every.body) == {"category": "linear", "settleCoin": "USDT"}
    one = spot().cancel_all(CREDS, TS, "BTCUSDT")
    assert one is not None and json.loads(one.body) == {"category": "spot", "symbol": "BTCUSDT"}
    dcp = spot().arm_dead_man(CREDS, TS, 40.0, None)
    assert dcp is not None and dcp.path == "/v5/order/disconnected-cancel-all"
    assert json.loads(dcp.body) == {"product": "SPOT", "timeWindow": 40}
    dcp = linear().arm_dead_man(CREDS, TS, 60.0, None)
    assert dcp is not None and json.loads(dcp.body) == {"product": "DERIVATIVES", "timeWindow": 60}
    assert (dcp_window_s(0.5), dcp_window_s(40.4), dcp_window_s(9999)) == (3, 40, 300)
    t = spot().time_call()
    assert t is not None and (t.method, t.target, t.headers) == ("GET", "/v5/market/time", {})


def test_bad_input_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="names the symbol"):
        spot().cancel(CREDS, TS, None, "1")
    with pytest.raises(ConfigError, match="orderLinkId is 1-36"):
        spot().place(CREDS, TS, NewOrder("BTCUSDT", "buy", "1", "1", "x" * 37))
    with pytest.raises(ConfigError, match="orderLinkId is 1-36"):
        spot().place(CREDS, TS, NewOrder("BTCUSDT", "buy", "1", "1", "has space"))
    with pytest.raises(ConfigError, match="upper-case letters and digits"):
        spot().place(CREDS, TS, NewOrder("btc-usdt", "buy", "1", "1", "ok"))
    with pytest.raises(ConfigError, match="not a Bybit order id"):
        spot().get_order(CREDS, TS, "BTCUSDT", "a/b")


def test_codec_knobs_and_the_adapters() -> None:
    s, lin = BybitVenue().order_codec(), BybitLinearVenue().order_codec()
    assert isinstance(s, BybitOrders) and isinstance(lin, BybitOrders)
    assert (s.venue, s.category, s.product) == ("bybit", "spot", "SPOT")
    assert (lin.venue, lin.category, lin.product) == ("bybit-linear", "linear", "DERIVATIVES")
    # within Bybit's per-second limit (20 spot, 10 linear) in any one-second window
    assert s.orders_per_s + s.orders_burst <= 20 and lin.orders_per_s + lin.orders_burst <= 10
    assert s.cancel_needs_symbol and not s.dead_man_per_symbol and not s.needs_passphrase
    assert s.dead_man_refresh_s is not None


# -- answers ----------------------------------------------------------------------------------


def test_documented_answers_decode() -> None:
    placed = spot().decode_order(200, CREATE_ANSWER, NEW)
    assert (placed.order_id, placed.client_order_id) == ("1321003749386327552", NEW.client_order_id)
    assert (placed.symbol, placed.side, placed.price, placed.size) == (
        "BTCUSDT",
        "buy",
        "15600",
        "0.1",
    )
    assert placed.status == "open" and placed.is_open
    [o] = linear().decode_orders(200, REALTIME_ANSWER)
    assert (o.order_id, o.client_order_id, o.symbol) == (
        "fd4300ae-7847-404e-b947-b46980a4d140",
        "test-000005",
        "ETHUSDT",
    )
    assert (o.side, o.price, o.size, o.filled_size, o.status) == (
        "buy",
        "1600.00",
        "0.10",
        "0.00",
        "open",
    )
    got = linear().decode_order(200, HISTORY_CANCELLED, None)  # one order, by id
    assert got.status == "cancelled" and not got.is_open
    cancelled = linear().decode_order(200, CANCEL_ANSWER, None)
    assert cancelled.order_id == "c6f055d9-7f21-4079-913d-e6523a9cfffa"
    assert cancelled.status == "cancelled"
    assert linear().decode_cancel_all(200, CANCEL_ALL_ANSWER) == [
        "1616024329462743808",
        "1616024287544869632",
    ]
    assert spot().decode_time(200, TIME_ANSWER) == 1688639403423
    spot().decode_ack(200, DCP_ANSWER)  # no error


@pytest.mark.parametrize(
    ("bybit", "ours"),
    [
        ("New", "open"),
        ("PartiallyFilled", "open"),
        ("Untriggered", "open"),
        ("Filled", "filled"),
        ("Cancelled", "cancelled"),
        ("PartiallyFilledCanceled", "cancelled"),
        ("Deactivated", "cancelled"),
        ("Rejected", "rejected"),
        ("SomethingNew", "open"),  # unknown: kept as open, so the client still cancels it
    ],
)
def test_order_status_is_normalised(bybit: str, ours: str) -> None:
    body = json.dumps(
        {"retCode": 0, "result": {"list": [{"orderId": "1", "orderStatus": bybit}]}}
    ).encode()
    assert spot().decode_orders(200, body)[0].status == ours
    assert (ours in FINAL_STATUSES) == (ours != "open")


def test_empty_get_is_unknown_order() -> None:
    empty = b'{"retCode":0,"retMsg":"OK","result":{"list":[],"nextPageCursor":""}}'
    with pytest.raises(UnknownOrderError):
        spot().decode_order(200, empty, None)


@pytest.mark.parametrize("code", [10003, 10004, 10005, 10007, 10010, 33004, -2015])
def test_a_refused_key_is_credentials_rejected_without_the_secret(code: int) -> None:
    with pytest.raises(CredentialsRejected) as info:
        spot().decode_order(200, error(code, "API key is invalid."), NEW)
    assert info.value.code == "auth_failed" and "bybit" in str(info.value)
    assert f"retCode {code}" in str(info.value) and SECRET not in str(info.value)
    with pytest.raises(CredentialsRejected):
        spot().decode_orders(401, b"")


def test_rate_limit_unknown_order_and_transient_codes() -> None:
    for code in (10006, 170222):
        with pytest.raises(RateLimitedError) as rl:
            spot().decode_orders(200, error(code, "Too many visits!"))
        assert rl.value.retry_after_s == 1.0 and is_retryable(rl.value)
    for code in (110001, 170213, 110008, 170142):
        with pytest.raises(UnknownOrderError):
            spot().decode_order(200, error(code, "Order does not exist"), None)
    for code in (10000, 10016, 170146):
        with pytest.raises(RestError) as tr:
            spot().decode_order(200, error(code, "Server error."), NEW)
        assert tr.value.code == "venue_error" and is_retryable(tr.value)
    with pytest.raises(RestError) as missing:
        spot().decode_orders(404, b"<html>404 Not Found</html>")
    assert missing.value.code == "rejected" and not is_retryable(missing.value)
    for status, body in ((502, b"<html>bad gateway</html>"), (200, b"not json"), (200, b"[]")):
        with pytest.raises(RestError) as bad:
            spot().decode_orders(status, body)
        assert bad.value.code == "venue_error" and is_retryable(bad.value)


def test_refusals_name_the_code_and_are_not_retried() -> None:
    with pytest.raises(RestError) as ts:
        spot().decode_order(
            200, error(10002, "invalid request, please check your server timestamp"), NEW
        )
    assert ts.value.code == "clock_skew"  # the shell reads Bybit's clock again, next call
    assert "10002" in str(ts.value) and "recv_window" in str(ts.value)
    assert not is_retryable(ts.value)
    with pytest.raises(RestError) as funds:
        spot().decode_order(200, error(170131, "Balance insufficient"), NEW)
    assert funds.value.code == "rejected" and "170131 Balance insufficient" in str(funds.value)
    assert not isinstance(funds.value, CredentialsRejected)


def test_dcp_not_enabled_is_not_a_refused_key() -> None:
    with pytest.raises(RestError) as info:
        spot().decode_ack(200, error(10005, "Permission denied"))
    assert not isinstance(info.value, CredentialsRejected)
    assert info.value.code == "rejected" and "account manager" in str(info.value)
    with pytest.raises(CredentialsRejected):  # a bad key stays fatal there too
        spot().decode_ack(200, error(10004, "error sign!"))


def test_a_retried_place_that_bybit_calls_duplicate_is_the_first_order_by_its_link_id() -> None:
    for codec, code in ((linear(), 110072), (spot(), 170141)):
        order = codec.decode_order(200, error(code, "OrderLinkedID is duplicate"), NEW)
        assert order.order_id == "link:spot-test-postonly" and order.is_open
        assert (order.client_order_id, order.symbol) == (NEW.client_order_id, "BTCUSDT")
        cancel = codec.cancel(CREDS, TS, order.symbol, order.order_id)
        assert json.loads(cancel.body)["orderLinkId"] == "spot-test-postonly"
        assert "orderId" not in json.loads(cancel.body)
        get = codec.get_order(CREDS, TS, None, order.order_id)
        assert get.query.endswith("orderLinkId=spot-test-postonly")
    with pytest.raises(RestError):  # not a place: a duplicate means nothing else
        spot().decode_order(200, error(110072, "OrderLinkedID is duplicate"), None)
