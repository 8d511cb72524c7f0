"""Kraken spot orders, pure (issue 17): the request signing on Kraken's documented example, the
calls the order codec builds, and Kraken's answers (its documented shapes and error strings)
decoded into orders and typed errors."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from tickpipe.client.rest import is_retryable
from tickpipe.errors import (
    ConfigError,
    CredentialsRejected,
    RateLimitedError,
    RestError,
    UnknownOrderError,
)
from tickpipe.venues.kraken import auth
from tickpipe.venues.kraken.adapter import KrakenVenue
from tickpipe.venues.kraken.orders import KrakenOrders, KrakenPairs, is_txid, valid_cl_ord_id
from tickpipe.venues.trading import Credentials, NewOrder

# docs.kraken.com/api/docs/guides/spot-rest-auth, "Examples": "a specific example of a signature
# generated with a particular private key, nonce, and payload corresponding to a new limit
# order (buy 1.25 XBTUSD at $37,500)". Kraken's published sample key, not a credential.
DOC_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
DOC_NONCE = 1616492376594
DOC_BODY = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
DOC_PATH = "/0/private/AddOrder"
DOC_SIGN = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)

CREDS = Credentials("my-api-key", DOC_SECRET)
CL = "6d1b345e2821440e2ad834ecb18a0687"  # a short UUID (32 hex digits)

# an AssetPairs body (docs.kraken.com/api-reference/market-data/get-tradable-asset-pairs: the
# key, altname and wsname of XBT/USD and ETH/USD)
ASSET_PAIRS = json.dumps(
    {
        "error": [],
        "result": {
            "XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD", "pair_decimals": 1},
            "XETHZUSD": {"altname": "ETHUSD", "wsname": "ETH/USD", "pair_decimals": 2},
        },
    }
).encode()


def codec() -> KrakenOrders:
    pairs = KrakenPairs()
    assert pairs.learn(ASSET_PAIRS) == 2
    return KrakenOrders(pairs)


def form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))


def answer(obj: object) -> bytes:
    return json.dumps(obj).encode()


# -- signing ---------------------------------------------------------------------------------


def test_the_signature_is_krakens_documented_example() -> None:
    assert auth.sign(DOC_SECRET, DOC_PATH, DOC_NONCE, DOC_BODY) == DOC_SIGN
    assert auth.sign(DOC_SECRET, DOC_PATH, str(DOC_NONCE), DOC_BODY.encode()) == DOC_SIGN
    assert auth.verify(DOC_SECRET, DOC_PATH, DOC_NONCE, DOC_BODY, DOC_SIGN)


def test_verify_refuses_any_change_of_path_nonce_body_or_key() -> None:
    assert not auth.verify(DOC_SECRET, "/0/private/CancelOrder", DOC_NONCE, DOC_BODY, DOC_SIGN)
    assert not auth.verify(DOC_SECRET, DOC_PATH, DOC_NONCE + 1, DOC_BODY, DOC_SIGN)
    assert not auth.verify(DOC_SECRET, DOC_PATH, DOC_NONCE, DOC_BODY + "&x=1", DOC_SIGN)
    other = "A" * 86 + "=="
    assert not auth.verify(other, DOC_PATH, DOC_NONCE, DOC_BODY, DOC_SIGN)
    assert not auth.verify("demo-secret", DOC_PATH, DOC_NONCE, DOC_BODY, DOC_SIGN)  # not base64


def test_a_secret_that_is_not_base64_is_a_config_error_that_never_quotes_it() -> None:
    with pytest.raises(ConfigError, match="not base64") as err:
        auth.decode_secret("not-base64-secret!!")
    assert "not-base64-secret" not in str(err.value)
    c = KrakenOrders()
    with pytest.raises(ConfigError, match="not base64") as err:
        c.open_orders(Credentials("k", "s3cr3t-text"), DOC_NONCE, None)
    assert "s3cr3t" not in str(err.value)


def test_credentials_never_show_the_secret() -> None:
    assert DOC_SECRET not in repr(CREDS)


# -- the calls -------------------------------------------------------------------------------


def test_place_is_the_documented_form_with_the_client_order_id_signed_as_kraken_does() -> None:
    call = codec().place(CREDS, DOC_NONCE, NewOrder("BTC/USD", "buy", "37500", "1.25", CL))
    assert (call.method, call.path, call.query) == ("POST", DOC_PATH, "")
    # nonce first, then the parameters in name order (as in Kraken's example), plus cl_ord_id
    assert call.body.decode() == (
        f"nonce={DOC_NONCE}&cl_ord_id={CL}&ordertype=limit&pair=XBTUSD&price=37500"
        "&type=buy&volume=1.25"
    )
    assert call.headers["API-Key"] == "my-api-key"
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert auth.verify(DOC_SECRET, DOC_PATH, DOC_NONCE, call.body, call.headers["API-Sign"])
    assert DOC_SECRET not in json.dumps(call.headers) + call.body.decode()


def test_place_refuses_what_kraken_would_refuse_before_sending() -> None:
    c = codec()
    with pytest.raises(ConfigError, match="cl_ord_id"):
        c.place(CREDS, DOC_NONCE, NewOrder("BTC/USD", "buy", "1", "1", "x" * 19))
    with pytest.raises(ConfigError, match="BASE/QUOTE"):
        c.place(CREDS, DOC_NONCE, NewOrder("BTCUSD", "buy", "1", "1", CL))
    with pytest.raises(ConfigError, match="side"):
        c.place(CREDS, DOC_NONCE, NewOrder("BTC/USD", "hold", "1", "1", CL))
    with pytest.raises(ConfigError, match="nonce"):
        c.place(CREDS, 0, NewOrder("BTC/USD", "buy", "1", "1", CL))


def test_client_order_ids_and_txids() -> None:
    # docs.kraken.com/api/docs/guides/spot-clordid: long UUID, short UUID, free text (<= 18)
    assert valid_cl_ord_id("d15708c1-dbb6-465d-b77d-47258319cc90")
    assert valid_cl_ord_id("da8e4ad59b78481c93e589746b0cf91f")
    assert valid_cl_ord_id("arb-20240509-00010")
    assert not valid_cl_ord_id("arb-20240509-000100")  # 19 characters
    assert not valid_cl_ord_id("has space")
    assert not valid_cl_ord_id("")
    assert is_txid("OU22CG-KLAF2-FWUDD7")
    assert not is_txid(CL) and not is_txid("arb-20240509-00010")


def test_every_other_call() -> None:
    c = codec()
    f = form(c.open_orders(CREDS, 5, "BTC/USD").body)
    assert f == {"nonce": "5"}  # Kraken's OpenOrders has no pair filter: the shell filters
    call = c.get_order(CREDS, 6, None, "OU22CG-KLAF2-FWUDD7")
    assert call.path == "/0/private/QueryOrders"
    assert form(call.body) == {"nonce": "6", "txid": "OU22CG-KLAF2-FWUDD7"}
    call = c.get_order(CREDS, 7, None, CL)  # known by its cl_ord_id only
    assert call.path == "/0/private/OpenOrders" and form(call.body)["cl_ord_id"] == CL
    call = c.cancel(CREDS, 8, "BTC/USD", "OU22CG-KLAF2-FWUDD7")
    assert (
        call.path == "/0/private/CancelOrder" and form(call.body)["txid"] == "OU22CG-KLAF2-FWUDD7"
    )
    assert form(c.cancel(CREDS, 9, None, CL).body) == {"nonce": "9", "cl_ord_id": CL}
    call = c.cancel_all(CREDS, 10, None)
    assert call is not None and call.path == "/0/private/CancelAll"
    assert c.cancel_all(CREDS, 11, "BTC/USD") is None  # no pair filter: the shell cancels each
    arm = c.arm_dead_man(CREDS, 12, 60.0, None)
    assert arm is not None and arm.path == "/0/private/CancelAllOrdersAfter"
    assert form(arm.body)["timeout"] == "60"
    for asked, sent in ((1.2, "2"), (0.1, "1"), (0, "0"), (-1, "0")):
        call = c.arm_dead_man(CREDS, 13, asked, None)
        assert call is not None and form(call.body)["timeout"] == sent
    for call in (c.open_orders(CREDS, 14, None), c.cancel(CREDS, 15, None, CL)):
        nonce = form(call.body)["nonce"]
        assert auth.verify(DOC_SECRET, call.path, nonce, call.body, call.headers["API-Sign"])
    t = c.time_call()
    assert t is not None and (t.method, t.path, t.body) == ("GET", "/0/public/Time", b"")
    assert (c.dead_man_refresh_s, c.dead_man_per_symbol, c.needs_passphrase) == (20.0, False, False)
    assert (c.orders_per_s, c.orders_burst, c.serial_nonce) == (1.0, 15, True)


def test_knobs_are_checked() -> None:
    with pytest.raises(ConfigError, match="orders_per_s"):
        KrakenOrders(orders_per_s=0)


# -- the answers -----------------------------------------------------------------------------


def test_an_addorder_answer_is_the_order_placed() -> None:
    # docs.kraken.com/api-reference/trading/add-order, the example answer
    body = answer(
        {
            "error": [],
            "result": {
                "descr": {"order": "buy 1.25000000 XBTUSD @ limit 27500.0"},
                "txid": ["OU22CG-KLAF2-FWUDD7"],
            },
        }
    )
    sent = NewOrder("BTC/USD", "buy", "27500.0", "1.25", CL)
    o = codec().decode_order(200, body, sent)
    assert (o.order_id, o.client_order_id, o.symbol, o.side) == (
        "OU22CG-KLAF2-FWUDD7",
        CL,
        "BTC/USD",
        "buy",
    )
    assert (o.price, o.size, o.status, o.filled_size, o.is_open) == (
        "27500.0",
        "1.25",
        "open",
        "0",
        True,
    )


def test_a_duplicate_refusal_of_a_retried_place_is_the_first_order() -> None:
    sent = NewOrder("BTC/USD", "buy", "27500.0", "1.25", CL)
    o = codec().decode_order(200, answer({"error": ["EOrder:Duplicate order"]}), sent)
    assert (o.order_id, o.client_order_id, o.status) == (CL, CL, "open")  # addressed by cl_ord_id


def test_a_queryorders_answer() -> None:
    # a QueryOrders answer as Kraken returned it (recorded in python-kraken-sdk's
    # User.get_orders_info docstring): a cancelled order of MATICUSD
    body = answer(
        {
            "error": [],
            "result": {
                "OAUHYR-YCVK6-P22G6P": {
                    "refid": None,
                    "userref": 0,
                    "status": "canceled",
                    "opentm": 1680618716.4409518,
                    "starttm": 0,
                    "expiretm": 0,
                    "descr": {
                        "pair": "MATICUSD",
                        "type": "buy",
                        "ordertype": "limit",
                        "price": "1.0501",
                        "price2": "0",
                        "leverage": "none",
                        "order": "buy 47.61450000 MATICUSD @ limit 1.0501",
                        "close": "",
                    },
                    "vol": "47.61450000",
                    "vol_exec": "0.00000000",
                    "cost": "0.000000",
                    "fee": "0.000000",
                    "price": "0.000000",
                    "stopprice": "0.000000",
                    "limitprice": "0.000000",
                    "misc": "",
                    "oflags": "fciq",
                    "reason": "User requested",
                    "closetm": 1680756419.5768735,
                }
            },
        }
    )
    o = codec().decode_order(200, body, None)
    assert (o.order_id, o.symbol, o.side, o.price, o.size) == (
        "OAUHYR-YCVK6-P22G6P",
        "MATIC/USD",
        "buy",
        "1.0501",
        "47.61450000",
    )
    assert (o.status, o.filled_size, o.client_order_id, o.is_open) == (
        "cancelled",
        "0.00000000",
        "",
        False,
    )
    assert o.raw["reason"] == "User requested"


def _info(status: str, pair: str = "XBTUSD", cl: str | None = None) -> dict[str, object]:
    info: dict[str, object] = {
        "refid": None,
        "userref": 0,
        "status": status,
        "opentm": 1688666559.8974,
        "descr": {"pair": pair, "type": "sell", "ordertype": "limit", "price": "30010.0"},
        "vol": "1.25000000",
        "vol_exec": "0.37500000",
    }
    if cl is not None:
        info["cl_ord_id"] = cl
    return info


def test_openorders_statuses_and_pairs() -> None:
    body = answer(
        {
            "error": [],
            "result": {
                "open": {
                    "OQCLML-BW3P3-BUCMWZ": _info("open", cl=CL),
                    "OB5VMB-B4U2U-DK2WRW": _info("pending", "XETHZUSD"),
                }
            },
        }
    )
    orders = codec().decode_orders(200, body)
    assert [(o.order_id, o.symbol, o.status, o.client_order_id) for o in orders] == [
        ("OQCLML-BW3P3-BUCMWZ", "BTC/USD", "open", CL),
        ("OB5VMB-B4U2U-DK2WRW", "ETH/USD", "open", ""),
    ]
    assert orders[0].filled_size == "0.37500000"
    c = codec()
    for raw, norm in (("closed", "filled"), ("canceled", "cancelled"), ("expired", "expired")):
        one = answer({"error": [], "result": {"OQCLML-BW3P3-BUCMWZ": _info(raw)}})
        assert c.decode_order(200, one, None).status == norm
    with pytest.raises(RestError, match="unknown status") as err:
        c.decode_order(200, answer({"error": [], "result": {"OX": _info("weird")}}), None)
    assert err.value.code == "venue_error"
    # an order known by its cl_ord_id: OpenOrders cl_ord_id=..., nothing open -> unknown
    one = answer({"error": [], "result": {"open": {"OQCLML-BW3P3-BUCMWZ": _info("open", cl=CL)}}})
    assert c.decode_order(200, one, None).client_order_id == CL
    with pytest.raises(UnknownOrderError):
        c.decode_order(200, answer({"error": [], "result": {"open": {}}}), None)


def test_cancel_answers_are_a_count() -> None:
    c = codec()
    o = c.decode_order(200, answer({"error": [], "result": {"count": 1, "pending": False}}), None)
    assert (o.status, o.order_id) == ("cancelled", "")  # the shell fills in the id it asked for
    with pytest.raises(UnknownOrderError):
        c.decode_order(200, answer({"error": [], "result": {"count": 0}}), None)
    assert c.decode_cancel_all(200, answer({"error": [], "result": {"count": 4}})) == []
    # docs.kraken.com/api-reference/trading/cancel-all-orders-after-x, the example answer
    c.decode_ack(
        200,
        answer(
            {
                "error": [],
                "result": {
                    "currentTime": "2023-03-24T17:41:56Z",
                    "triggerTime": "2023-03-24T17:42:56Z",
                },
            }
        ),
    )


def test_the_server_time() -> None:
    # docs.kraken.com/api-reference/market-data/get-server-time, the example answer
    body = answer(
        {
            "error": [],
            "result": {"unixtime": 1688669448, "rfc1123": "Thu, 06 Jul 23 18:50:48 +0000"},
        }
    )
    assert codec().decode_time(200, body) == 1688669448_500  # the middle of its second
    with pytest.raises(RestError, match="unixtime"):
        codec().decode_time(200, answer({"error": [], "result": {}}))


@pytest.mark.parametrize(
    ("error", "kind", "status", "code", "retryable"),
    [
        ("EAPI:Invalid key", CredentialsRejected, 401, "auth_failed", False),
        ("EAPI:Invalid signature", CredentialsRejected, 401, "auth_failed", False),
        ("EGeneral:Temporary lockout", CredentialsRejected, 401, "auth_failed", False),
        ("EAPI:Invalid nonce", RestError, 409, "invalid_nonce", False),
        ("EAPI:Rate limit exceeded", RateLimitedError, 429, "rate_limited", True),
        ("EOrder:Rate limit exceeded", RateLimitedError, 429, "rate_limited", True),
        ("EService:Throttled: 1690000000", RateLimitedError, 429, "rate_limited", True),
        ("EService:Unavailable", RestError, 503, "venue_error", True),
        ("EService:Busy", RestError, 503, "venue_error", True),
        ("EGeneral:Internal error", RestError, 500, "venue_error", True),
        ("EOrder:Unknown order", UnknownOrderError, 404, "unknown_order", False),
        ("EGeneral:Permission denied", RestError, 403, "permission_denied", False),
        ("EOrder:Insufficient funds", RestError, 400, "rejected", False),
        ("EGeneral:Invalid arguments:volume", RestError, 400, "rejected", False),
        ("EQuery:Unknown asset pair", RestError, 400, "rejected", False),
    ],
)
def test_krakens_errors_are_typed(
    error: str, kind: type[RestError], status: int, code: str, retryable: bool
) -> None:
    body = answer({"error": [error]})  # Kraken answers its errors with HTTP 200
    with pytest.raises(kind) as err:
        codec().decode_orders(200, body)
    assert type(err.value) is kind
    assert (err.value.status, err.value.code, is_retryable(err.value)) == (status, code, retryable)
    assert error in str(err.value)
    if isinstance(err.value, RateLimitedError):
        assert err.value.retry_after_s in (1.0, 3.0)


def test_a_5xx_or_an_unreadable_answer_is_a_venue_error() -> None:
    c = codec()
    with pytest.raises(RestError) as err:
        c.decode_order(503, b"<html>cloudflare</html>", NewOrder("BTC/USD", "buy", "1", "1", CL))
    assert (err.value.status, err.value.code, is_retryable(err.value)) == (503, "venue_error", True)
    with pytest.raises(RestError) as err:
        c.decode_orders(200, b"not json")
    assert (err.value.code, is_retryable(err.value)) == ("venue_error", True)
    with pytest.raises(RestError) as err:
        c.decode_orders(404, b"Not Found")
    assert (err.value.status, is_retryable(err.value)) == (404, False)
    # warnings do not fail a call
    ok = answer({"error": ["WGeneral:Deprecated"], "result": {"open": {}}})
    assert c.decode_orders(200, ok) == []


def test_pair_names() -> None:
    p = KrakenPairs()
    assert p.learn(ASSET_PAIRS) == 2 and p.learn(b"not json") == 0
    assert p.symbol("XBTUSD") == p.symbol("XXBTZUSD") == p.symbol("XBT/USD") == "BTC/USD"
    assert p.altname("BTC/USD") == "XBTUSD"
    # pairs never seen: Kraken's naming rules
    fresh = KrakenPairs()
    assert fresh.symbol("XDGUSD") == "DOGE/USD"
    assert fresh.symbol("XLTCZEUR") == "LTC/EUR"
    assert fresh.symbol("ETHUSDT") == "ETH/USDT"
    assert fresh.symbol("SOL/XBT") == "SOL/BTC"
    assert fresh.altname("DOGE/USD") == "XDGUSD"
    assert fresh.altname("AAPL/USD") == "AAPLUSD"


def test_the_adapter_gives_the_codec_the_pairs_of_its_instruments() -> None:
    venue = KrakenVenue()
    c = venue.order_codec()
    assert isinstance(c, KrakenOrders) and c.venue == "kraken"
    body = json.dumps(
        {
            "error": [],
            "result": {
                "XXBTZUSD": {
                    "altname": "XBTUSD",
                    "wsname": "XBT/USD",
                    "pair_decimals": 1,
                    "lot_decimals": 8,
                }
            },
        }
    ).encode()
    assert [i.symbol for i in venue.decode_instruments(body)] == ["BTC/USD"]
    assert c.pairs.altname("BTC/USD") == "XBTUSD"
    assert (
        form(c.place(CREDS, 1, NewOrder("BTC/USD", "sell", "2", "1", CL)).body)["pair"] == "XBTUSD"
    )
