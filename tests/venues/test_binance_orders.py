"""Binance spot and USD-M signed orders, pure: the signing on Binance's own published examples,
the order codec's calls and its decoding of the documented answers and errors.

Sources: [spot-rest] binance-spot-api-docs ``rest-api.md`` (commit a5e0bc3), "SIGNED Endpoint
Examples for POST /api/v3/order" (HMAC Keys) and the endpoint sections quoted below; [usdm]
developers.binance.com/docs/derivatives/usds-margined-futures/general-info "SIGNED Endpoint
Examples for POST /fapi/v1/order - HMAC Keys" and the trade/rest-api pages (New-Order,
Cancel-All-Open-Orders, Auto-Cancel-All-Open-Orders)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tickpipe.errors import (
    ConfigError,
    CredentialsRejected,
    DuplicateOrderError,
    RateLimitedError,
    RestError,
    UnknownOrderError,
)
from tickpipe.venues.binance.adapter import BinanceSpotVenue, BinanceUsdmVenue
from tickpipe.venues.binance.auth import (
    API_KEY_HEADER,
    check_timestamp,
    sign_params,
    signature,
    split_signature,
    verify_signature,
)
from tickpipe.venues.binance.orders import (
    SPOT_ORDERS,
    USDM_ORDERS,
    BinanceOrderCodec,
    WireOrder,
    encode_order,
)
from tickpipe.venues.trading import Credentials, NewOrder

# [spot-rest] "Example API key and secret key" (documentation values, not credentials)
SPOT_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SPOT_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SPOT_PARAMS = [
    ("symbol", "LTCBTC"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", "1"),
    ("price", "0.1"),
    ("recvWindow", "5000"),
    ("timestamp", "1499827319559"),
]
# [usdm] the HMAC example's key and secret
USDM_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
USDM_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"

SPOT = BinanceOrderCodec(SPOT_ORDERS)
USDM = BinanceOrderCodec(USDM_ORDERS)
CREDS = Credentials("my-key", "my-very-secret-secret")


def j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# -- signing: Binance's published examples ------------------------------------------------------
def test_spot_documented_hmac_example_ascii() -> None:
    # [spot-rest]: echo -n "symbol=LTCBTC&...&timestamp=1499827319559" | openssl dgst -sha256
    # -hmac "NhqP..." -> c8db5682...
    signed = sign_params(SPOT_SECRET, SPOT_PARAMS)
    assert signed == (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
        "&timestamp=1499827319559"
        "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )
    assert verify_signature(SPOT_SECRET, signed)


def test_spot_documented_hmac_example_non_ascii_is_percent_encoded_before_signing() -> None:
    # [spot-rest]: symbol １２３４５６ -> %EF%BC%91...%EF%BC%96, signature e1353ec6...
    params = [("symbol", "１２３４５６"), *SPOT_PARAMS[1:]]
    signed = sign_params(SPOT_SECRET, params)
    assert signed.startswith("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&")
    assert signed.endswith(
        "&signature=e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
    )


def test_usdm_documented_hmac_example_query_string_and_body() -> None:
    # [usdm] Example 1 (query string) and Example 2 (request body): 3c661234...
    payload = (
        "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
        "&recvWindow=5000&timestamp=1591702613943"
    )
    sig = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
    assert signature(USDM_SECRET, payload) == sig
    assert verify_signature(USDM_SECRET, f"{payload}&signature={sig}")
    assert verify_signature(USDM_SECRET, "", f"{payload}&signature={sig}")


def test_usdm_documented_mixed_example_query_then_body_without_separator() -> None:
    # [usdm] Example 3: totalParams = query string + body, no "&" between "GTC" and
    # "quantity=1". The docs' echo line (what f9d0ae5e... covers) writes "timestamp= 159..."
    # with a space; the body here is that text.
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=9000&recvWindow=5000&timestamp= 1591702613943"
    sig = "f9d0ae5e813ef6ccf15c2b5a434047a0181cb5a342b903b367ca6d27a66e36f2"
    assert signature(USDM_SECRET, query + body) == sig
    assert split_signature(query, f"{body}&signature={sig}") == (query + body, sig)
    assert verify_signature(USDM_SECRET, query, f"{body}&signature={sig}")


def test_signature_is_not_case_sensitive_but_the_payload_and_secret_are() -> None:
    signed = sign_params(SPOT_SECRET, SPOT_PARAMS)
    head, _, sig = signed.rpartition("=")
    assert verify_signature(SPOT_SECRET, head + "=" + sig.upper())
    assert not verify_signature(SPOT_SECRET.lower(), signed)
    assert not verify_signature(SPOT_SECRET, signed.replace("price=0.1", "price=0.2"))
    assert not verify_signature(SPOT_SECRET, signed.replace("LTCBTC", "ltcbtc"))
    assert not verify_signature(SPOT_SECRET, head.rpartition("&")[0])  # no signature at all
    assert split_signature("a=1&b=2") == ("a=1&b=2", None)


def test_timing_security_rule() -> None:
    # [spot-rest] "Timing security": timestamp < serverTime + 1 s and serverTime - timestamp
    # <= recvWindow
    server = 1_700_000_000_000
    assert check_timestamp(server, server, 5000) is None
    assert check_timestamp(server + 999, server, 5000) is None
    assert check_timestamp(server + 1000, server, 5000) == (
        "Timestamp for this request was 1000ms ahead of the server's time."
    )
    assert check_timestamp(server - 5000, server, 5000) is None
    assert check_timestamp(server - 5001, server, 5000) == (
        "Timestamp for this request is outside of the recvWindow."
    )
    assert check_timestamp(server - 5001, server, 60_000) is None


# -- the calls the codec builds --------------------------------------------------------------------
def params_of(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=True))


def test_spot_place_is_a_signed_limit_gtc_with_the_client_order_id() -> None:
    call = SPOT.place(
        CREDS, 1_700_000_000_123, NewOrder("BTCUSDT", "buy", "65000.10", "0.0100", "abc-1_2")
    )
    assert (call.method, call.path, call.body) == ("POST", "/api/v3/order", b"")
    assert call.headers == {API_KEY_HEADER: "my-key"}
    assert list(params_of(call.query)) == [
        "symbol",
        "side",
        "type",
        "timeInForce",
        "quantity",
        "price",
        "newClientOrderId",
        "newOrderRespType",
        "recvWindow",
        "timestamp",
        "signature",
    ]
    p = params_of(call.query)
    assert p["side"] == "BUY" and p["type"] == "LIMIT" and p["timeInForce"] == "GTC"
    assert (p["price"], p["quantity"], p["newClientOrderId"]) == ("65000.10", "0.0100", "abc-1_2")
    assert (p["recvWindow"], p["timestamp"]) == ("5000", "1700000000123")
    assert verify_signature(CREDS.secret, call.query)
    assert CREDS.secret not in call.query and CREDS.secret not in repr(call)


def test_usdm_paths_and_its_wider_client_order_id_alphabet() -> None:
    call = USDM.place(CREDS, 1, NewOrder("BTCUSDT", "sell", "1", "2", "a.b:c/d"))
    assert (call.method, call.path) == ("POST", "/fapi/v1/order")
    assert params_of(call.query)["newClientOrderId"] == "a.b:c/d"
    with pytest.raises(ConfigError, match=re.escape("client_order_id 'a.b:c/d'")):
        SPOT.place(CREDS, 1, NewOrder("BTCUSDT", "sell", "1", "2", "a.b:c/d"))
    with pytest.raises(ConfigError, match="client_order_id"):
        USDM.place(CREDS, 1, NewOrder("BTCUSDT", "sell", "1", "2", "x" * 37))


def test_decimals_are_sent_as_binance_takes_them() -> None:
    call = SPOT.place(CREDS, 1, NewOrder("BTCUSDT", "buy", "1e3", "0.5", "c1"))
    assert params_of(call.query)["price"] == "1000"
    with pytest.raises(ConfigError, match="price 'abc' is not a decimal"):
        SPOT.place(CREDS, 1, NewOrder("BTCUSDT", "buy", "abc", "0.5", "c1"))
    with pytest.raises(ConfigError, match="side"):
        SPOT.place(CREDS, 1, NewOrder("BTCUSDT", "BUY", "1", "0.5", "c1"))


def test_get_cancel_name_the_symbol_and_cancel_all_is_per_symbol() -> None:
    get = SPOT.get_order(CREDS, 5, "ETHUSDT", "42")
    assert (get.method, get.path) == ("GET", "/api/v3/order")
    assert params_of(get.query)["orderId"] == "42" and params_of(get.query)["symbol"] == "ETHUSDT"
    cancel = USDM.cancel(CREDS, 5, "ETHUSDT", "42")
    assert (cancel.method, cancel.path) == ("DELETE", "/fapi/v1/order")
    with pytest.raises(ConfigError, match="needs the order's symbol"):
        SPOT.cancel(CREDS, 5, None, "42")
    with pytest.raises(ConfigError, match="orderId is an integer"):
        SPOT.cancel(CREDS, 5, "ETHUSDT", "O42")
    assert SPOT.cancel_all(CREDS, 5, None) is None and USDM.cancel_all(CREDS, 5, None) is None
    ca = SPOT.cancel_all(CREDS, 5, "ETHUSDT")
    assert ca is not None and (ca.method, ca.path) == ("DELETE", "/api/v3/openOrders")
    ca = USDM.cancel_all(CREDS, 5, "ETHUSDT")
    assert ca is not None and (ca.method, ca.path) == ("DELETE", "/fapi/v1/allOpenOrders")
    oo = SPOT.open_orders(CREDS, 5, None)
    assert (oo.path, list(params_of(oo.query))) == (
        "/api/v3/openOrders",
        ["recvWindow", "timestamp", "signature"],
    )
    by_cid = USDM.get_order_by_client_id(CREDS, 5, "BTCUSDT", "cid-1")
    assert params_of(by_cid.query)["origClientOrderId"] == "cid-1"


def test_dead_man_switch_usdm_per_symbol_spot_none() -> None:
    # Binance spot has no dead man's switch: nothing to arm, nothing to refresh
    assert SPOT.arm_dead_man(CREDS, 5, 60.0, "BTCUSDT") is None
    assert SPOT.dead_man_refresh_s is None and SPOT.dead_man_per_symbol is False
    call = USDM.arm_dead_man(CREDS, 5, 120.0, "BTCUSDT")
    assert call is not None and (call.method, call.path) == ("POST", "/fapi/v1/countdownCancelAll")
    p = params_of(call.query)
    assert (p["symbol"], p["countdownTime"]) == ("BTCUSDT", "120000")
    assert USDM.dead_man_per_symbol is True and USDM.dead_man_refresh_s == 30.0
    # [usdm] Auto-Cancel-All-Open-Orders response example
    USDM.decode_ack(200, j({"symbol": "BTCUSDT", "countdownTime": "100000"}))
    with pytest.raises(ConfigError, match="countdownCancelAll"):
        USDM.arm_dead_man(CREDS, 5, 60.0, None)


def test_adapters_give_their_codec() -> None:
    spot, usdm = BinanceSpotVenue().order_codec(), BinanceUsdmVenue().order_codec()
    assert (spot.venue, usdm.venue) == ("binance", "binance-usdm")
    assert spot.cancel_needs_symbol and not spot.needs_passphrase
    assert spot.dead_man_refresh_s is None and usdm.dead_man_refresh_s == 30.0
    # the order-rate buckets never pass the documented limits: burst + rate x window
    assert spot.orders_burst + spot.orders_per_s * 10 <= 50
    assert usdm.orders_burst + usdm.orders_per_s * 10 <= 300
    assert usdm.orders_burst + usdm.orders_per_s * 60 <= 1200


def test_server_time() -> None:
    call = SPOT.time_call()
    assert (call.method, call.path, call.query) == ("GET", "/api/v3/time", "")
    assert USDM.time_call().path == "/fapi/v1/time"
    # [spot-rest] "Check server time" response
    assert SPOT.decode_time(200, j({"serverTime": 1499827319559})) == 1499827319559
    with pytest.raises(RestError, match="serverTime"):
        SPOT.decode_time(200, j({"serverTime": "soon"}))


# -- decoding the documented answers -------------------------------------------------------------
SPOT_RESULT = {  # [spot-rest] New order "Response - RESULT"
    "symbol": "BTCUSDT",
    "orderId": 28,
    "orderListId": -1,
    "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
    "transactTime": 1507725176595,
    "price": "0.00000000",
    "origQty": "10.00000000",
    "executedQty": "10.00000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "10.00000000",
    "status": "FILLED",
    "timeInForce": "GTC",
    "type": "MARKET",
    "side": "SELL",
    "workingTime": 1507725176595,
    "selfTradePreventionMode": "NONE",
}
SPOT_CANCEL = {  # [spot-rest] Cancel order response
    "symbol": "LTCBTC",
    "origClientOrderId": "myOrder1",
    "orderId": 4,
    "orderListId": -1,
    "clientOrderId": "cancelMyOrder1",
    "transactTime": 1684804350068,
    "price": "2.00000000",
    "origQty": "1.00000000",
    "executedQty": "0.00000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "0.00000000",
    "status": "CANCELED",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "selfTradePreventionMode": "NONE",
}
SPOT_OPEN = [  # [spot-rest] Current open orders response
    {
        "symbol": "LTCBTC",
        "orderId": 1,
        "orderListId": -1,
        "clientOrderId": "myOrder1",
        "price": "0.1",
        "origQty": "1.0",
        "executedQty": "0.0",
        "cummulativeQuoteQty": "0.0",
        "status": "NEW",
        "timeInForce": "GTC",
        "type": "LIMIT",
        "side": "BUY",
        "stopPrice": "0.0",
        "icebergQty": "0.0",
        "time": 1499827319559,
        "updateTime": 1499827319559,
        "isWorking": True,
        "origQuoteOrderQty": "0.000000",
        "workingTime": 1499827319559,
        "selfTradePreventionMode": "NONE",
    }
]
USDM_NEW = {  # [usdm] New-Order response example
    "clientOrderId": "testOrder",
    "cumQty": "0",
    "cumQuote": "0",
    "executedQty": "0",
    "orderId": 22542179,
    "avgPrice": "0.00000",
    "origQty": "10",
    "price": "0",
    "reduceOnly": False,
    "side": "BUY",
    "positionSide": "SHORT",
    "status": "NEW",
    "stopPrice": "9300",
    "closePosition": False,
    "symbol": "BTCUSDT",
    "timeInForce": "GTD",
    "type": "TRAILING_STOP_MARKET",
    "origType": "TRAILING_STOP_MARKET",
    "activatePrice": "9020",
    "priceRate": "0.3",
    "updateTime": 1566818724722,
    "workingType": "CONTRACT_PRICE",
    "priceProtect": False,
    "priceMatch": "NONE",
    "selfTradePreventionMode": "NONE",
    "goodTillDate": 1693207680000,
}


def test_documented_order_answers_decode() -> None:
    o = SPOT.decode_order(200, j(SPOT_RESULT), None)
    assert (o.order_id, o.client_order_id, o.symbol, o.side) == (
        "28",
        "6gCrw2kRUAF9CvJDGP16IP",
        "BTCUSDT",
        "sell",
    )
    assert (o.status, o.size, o.filled_size, o.is_open) == (
        "filled",
        "10.00000000",
        "10.00000000",
        False,
    )
    assert o.raw["type"] == "MARKET"
    # a cancel answers the order's own id as origClientOrderId (clientOrderId is the cancel's)
    c = SPOT.decode_order(200, j(SPOT_CANCEL), None)
    assert (c.order_id, c.client_order_id, c.status, c.price) == (
        "4",
        "myOrder1",
        "cancelled",
        "2.00000000",
    )
    [open_] = SPOT.decode_orders(200, j(SPOT_OPEN))
    assert (open_.order_id, open_.status, open_.is_open) == ("1", "open", True)
    u = USDM.decode_order(200, j(USDM_NEW), None)
    assert (u.order_id, u.client_order_id, u.status, u.side) == (
        "22542179",
        "testOrder",
        "open",
        "buy",
    )


@pytest.mark.parametrize(
    ("venue", "norm"),
    [
        ("NEW", "open"),
        ("PARTIALLY_FILLED", "open"),
        ("PENDING_NEW", "open"),
        ("FILLED", "filled"),
        ("CANCELED", "cancelled"),
        ("REJECTED", "rejected"),
        ("EXPIRED", "expired"),
        ("EXPIRED_IN_MATCH", "expired"),
    ],
)
def test_every_documented_status_is_normalised(venue: str, norm: str) -> None:
    # [spot] enums.md "Order status (status)"
    assert SPOT.decode_order(200, j({**SPOT_OPEN[0], "status": venue}), None).status == norm


def test_cancel_all_answers() -> None:
    # [spot-rest] Cancel All Open Orders on a Symbol: two orders and an OCO list (its reports)
    body = [
        {**SPOT_CANCEL, "orderId": 11},
        {**SPOT_CANCEL, "orderId": 13},
        {
            "orderListId": 1929,
            "contingencyType": "OCO",
            "listStatusType": "ALL_DONE",
            "listOrderStatus": "ALL_DONE",
            "listClientOrderId": "2inzWQdDvZLHbbAmAozX2N",
            "transactionTime": 1585230948299,
            "symbol": "BTCUSDT",
            "orders": [
                {"symbol": "BTCUSDT", "orderId": 20, "clientOrderId": "CwOOIPHSmYywx6jZX77TdL"}
            ],
            "orderReports": [{**SPOT_CANCEL, "orderId": 20}, {**SPOT_CANCEL, "orderId": 21}],
        },
    ]
    assert SPOT.decode_cancel_all(200, j(body)) == ["11", "13", "20", "21"]
    # [usdm] Cancel-All-Open-Orders: no ids
    done = {"code": 200, "msg": "The operation of cancel all open order is done."}
    assert USDM.decode_cancel_all(200, j(done)) == []
    # nothing open on the symbol
    nothing = {"code": -2011, "msg": "Unknown order sent."}
    assert SPOT.decode_cancel_all(400, j(nothing)) == []


# -- errors ----------------------------------------------------------------------------------
def err(code: int, msg: str) -> bytes:
    return j({"code": code, "msg": msg})


@pytest.mark.parametrize(
    ("status", "code", "msg"),
    [
        (401, -2015, "Invalid API-key, IP, or permissions for action."),
        (401, -2014, "API-key format invalid."),
        (400, -1022, "Signature for this request is not valid."),
        (401, -1002, "You are not authorized to execute this request."),
    ],
)
def test_refused_key_or_signature_is_credentials_rejected(status: int, code: int, msg: str) -> None:
    with pytest.raises(CredentialsRejected) as info:
        SPOT.decode_order(status, err(code, msg), None)
    e = info.value
    assert e.code == "auth_failed" and str(code) in str(e) and msg in str(e)
    assert "binance" in str(e)
    assert CREDS.secret not in str(e)


def test_order_errors_are_typed() -> None:
    with pytest.raises(UnknownOrderError):
        SPOT.decode_order(400, err(-2013, "Order does not exist."), None)
    with pytest.raises(UnknownOrderError):
        USDM.decode_order(400, err(-2011, "Unknown order sent."), None)
    with pytest.raises(RestError) as info:
        SPOT.decode_order(
            400, err(-2011, "Order was not canceled due to cancel restrictions."), None
        )
    assert type(info.value) is RestError and info.value.code == "rejected"
    with pytest.raises(DuplicateOrderError):
        SPOT.decode_order(400, err(-2010, "Duplicate order sent."), None)
    with pytest.raises(DuplicateOrderError):
        USDM.decode_order(400, err(-4116, "ClientOrderId is duplicated."), None)
    with pytest.raises(RestError) as info:
        SPOT.decode_order(
            400, err(-2010, "Account has insufficient balance for requested action."), None
        )
    assert type(info.value) is RestError and info.value.code == "rejected"
    assert "-2010" in str(info.value) and "insufficient balance" in str(info.value)
    with pytest.raises(RestError) as info:
        SPOT.decode_order(
            400, err(-1021, "Timestamp for this request is outside of the recvWindow."), None
        )
    assert info.value.code == "clock_skew" and "recvWindow 5000 ms" in str(info.value)
    with pytest.raises(RateLimitedError):
        SPOT.decode_order(400, err(-1015, "Too many new orders."), None)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, err(-1007, "Timeout waiting for response from backend server.")),
        (502, b"<html>bad gateway</html>"),
        (408, err(-1007, "Timeout")),
        (400, err(-1006, "An unexpected response was received from the message bus.")),
    ],
)
def test_execution_status_unknown_is_a_retryable_venue_error(status: int, body: bytes) -> None:
    with pytest.raises(RestError) as info:
        SPOT.decode_order(status, body, None)
    assert info.value.code == "venue_error" and info.value.status == 503
    assert f"HTTP {status}" in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        j({**SPOT_OPEN[0], "status": "SOMETHING_NEW"}),
        j({**SPOT_OPEN[0], "orderId": "1"}),
        j({**SPOT_OPEN[0], "side": "UP"}),
        j({k: v for k, v in SPOT_OPEN[0].items() if k != "price"}),
    ],
)
def test_unreadable_answers_name_what_was_wrong(body: bytes) -> None:
    with pytest.raises(RestError) as info:
        SPOT.decode_order(200, body, None)
    assert info.value.code == "venue_error" and "binance" in str(info.value)


# -- the dialect's shapes decode with the client's codec -------------------------------------
@pytest.mark.parametrize("kind", ["place", "get", "cancel"])
@pytest.mark.parametrize("codec", [SPOT, USDM], ids=["spot", "usdm"])
def test_gateway_shapes_round_trip(codec: BinanceOrderCodec, kind: str) -> None:
    w = WireOrder(
        7, "cid", "BTCUSDT", "BUY", "100.00", "0.5000", "0.2000", "20", "PARTIALLY_FILLED", 1, 2
    )
    obj = encode_order(codec.spec, w, kind, cancel_client_id="cancel-1")
    o = codec.decode_order(200, j(obj), None)
    assert (o.order_id, o.client_order_id, o.side, o.price, o.size, o.filled_size) == (
        "7",
        "cid",
        "buy",
        "100.00",
        "0.5000",
        "0.2000",
    )
    assert o.status == "open"
