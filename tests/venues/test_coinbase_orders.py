"""Coinbase Advanced Trade orders, pure: the JWT (``venues/coinbase/auth.py``) and the order
codec (``venues/coinbase/orders.py``) on the shapes Coinbase documents.

ES256 signatures are randomised (ECDSA), so Coinbase's docs give no fixed signature to compare
with; as Coinbase's own SDK tests do (coinbase-advanced-py ``tests/test_jwt_generator.py``:
decode the JWT with the key, check ``sub``, ``iss`` ``cdp``, ``uri``, the header's ``kid``), a
fresh EC P-256 key pair is made here and the token is decoded independently with PyJWT.
Request and answer bodies are the examples of the Advanced Trade REST reference
(docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api: Create Order, List Orders,
Get Order, Cancel Orders, Get Server Time)."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tickpipe.errors import (
    ConfigError,
    CredentialsRejected,
    RateLimitedError,
    RestError,
    UnknownOrderError,
)
from tickpipe.venues.coinbase import auth
from tickpipe.venues.coinbase.adapter import CoinbaseVenue
from tickpipe.venues.coinbase.orders import STATUS, CoinbaseOrders
from tickpipe.venues.trading import Credentials, NewOrder

KEY_NAME = "organizations/00000000-0000-0000-0000-000000000000/apiKeys/11111111-2222-3333"
NOW_S = 1_700_000_000
TS_MS = NOW_S * 1000 + 789


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # "EC PRIVATE KEY", as Coinbase's
        serialization.NoEncryption(),
    ).decode()


PRIVATE = ec.generate_private_key(ec.SECP256R1())
SECRET = _pem(PRIVATE)
CREDS = Credentials(KEY_NAME, SECRET)
PUBLIC = PRIVATE.public_key()


def _segment(token: str, i: int) -> dict[str, Any]:
    part = token.split(".")[i]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


# -- the JWT ----------------------------------------------------------------------------------


def test_jwt_has_the_documented_header_and_claims() -> None:
    token = auth.sign(
        KEY_NAME, PRIVATE, "GET", "/api/v3/brokerage/accounts", now_s=NOW_S, nonce="abc123"
    )
    header = _segment(token, 0)
    assert header == {"alg": "ES256", "typ": "JWT", "kid": KEY_NAME, "nonce": "abc123"}
    # decoded independently (PyJWT, the public key): the signature is ES256 by this key
    claims = jwt.decode(
        token, PUBLIC, algorithms=["ES256"], options={"verify_exp": False, "verify_nbf": False}
    )
    assert claims == {
        "iss": "cdp",
        "sub": KEY_NAME,
        "nbf": NOW_S,
        "exp": NOW_S + 120,  # "your JWT expires after 2 minutes"
        "uri": "GET api.coinbase.com/api/v3/brokerage/accounts",  # the SDK's format_jwt_uri
    }


def test_the_uri_claim_drops_the_query_and_names_the_host() -> None:
    assert (
        auth.jwt_uri("get", "/api/v3/brokerage/orders/historical/batch?order_status=OPEN")
        == "GET api.coinbase.com/api/v3/brokerage/orders/historical/batch"
    )
    assert auth.jwt_uri("POST", "/x", "api-sandbox.example") == "POST api-sandbox.example/x"


def test_verify_accepts_a_good_jwt_and_names_the_key() -> None:
    token = auth.sign(KEY_NAME, PRIVATE, "POST", "/api/v3/brokerage/orders", now_s=NOW_S, nonce="n")
    keys = {KEY_NAME: PUBLIC}
    assert auth.verify(token, keys, "POST", "/api/v3/brokerage/orders", now_s=NOW_S + 0.5) == (
        KEY_NAME
    )
    # within its 2 minutes, at both ends
    assert auth.verify(token, keys, "POST", "/api/v3/brokerage/orders", now_s=NOW_S + 119.9)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"method": "GET"}, "uri claim"),
        ({"path": "/api/v3/brokerage/orders/batch_cancel"}, "uri claim"),
        ({"now_s": NOW_S + 120}, "expired"),
        ({"now_s": NOW_S - 5}, "not valid yet"),
        ({"keys": {}}, "unknown key"),
        ({"keys": {KEY_NAME: ec.generate_private_key(ec.SECP256R1()).public_key()}}, "signature"),
    ],
)
def test_verify_refuses_and_says_why(change: dict[str, Any], reason: str) -> None:
    token = auth.sign(KEY_NAME, PRIVATE, "POST", "/api/v3/brokerage/orders", now_s=NOW_S, nonce="n")
    args: dict[str, Any] = {
        "keys": {KEY_NAME: PUBLIC},
        "method": "POST",
        "path": "/api/v3/brokerage/orders",
        "now_s": NOW_S + 1,
    }
    args.update(change)
    with pytest.raises(auth.JwtRejected, match=reason) as info:
        auth.verify(token, args["keys"], args["method"], args["path"], now_s=args["now_s"])
    assert token not in str(info.value)


def test_verify_leeway_covers_a_small_clock_difference() -> None:
    token = auth.sign(KEY_NAME, PRIVATE, "GET", "/p", now_s=NOW_S, nonce="n")
    with pytest.raises(auth.JwtRejected):
        auth.verify(token, {KEY_NAME: PUBLIC}, "GET", "/p", now_s=NOW_S - 0.5)
    assert auth.verify(token, {KEY_NAME: PUBLIC}, "GET", "/p", now_s=NOW_S - 0.5, leeway_s=1.0)


def _forged(header: dict[str, Any], claims: dict[str, Any], key: Any, alg: str) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers=header)


@pytest.mark.parametrize(
    ("header", "claims", "reason"),
    [
        ({"kid": KEY_NAME, "nonce": "n"}, {"iss": "coinbase-cloud"}, "iss"),
        ({"kid": KEY_NAME, "nonce": "n"}, {"sub": "someone-else"}, "sub"),
        ({"kid": KEY_NAME}, {}, "nonce"),
        ({"kid": KEY_NAME, "nonce": "n"}, {"nbf": "soon"}, "integer"),
    ],
)
def test_verify_checks_every_claim(
    header: dict[str, Any], claims: dict[str, Any], reason: str
) -> None:
    base = {
        "iss": "cdp",
        "sub": KEY_NAME,
        "nbf": NOW_S,
        "exp": NOW_S + 120,
        "uri": "GET api.coinbase.com/p",
    }
    token = _forged(header, {**base, **claims}, PRIVATE, "ES256")
    with pytest.raises(auth.JwtRejected, match=reason):
        auth.verify(token, {KEY_NAME: PUBLIC}, "GET", "/p", now_s=NOW_S + 1)


def test_verify_refuses_another_algorithm_and_garbage() -> None:
    hs = jwt.encode({"sub": KEY_NAME}, "x" * 32, algorithm="HS256", headers={"kid": KEY_NAME})
    with pytest.raises(auth.JwtRejected, match="alg"):
        auth.verify(hs, {KEY_NAME: PUBLIC}, "GET", "/p", now_s=NOW_S)
    with pytest.raises(auth.JwtRejected, match="not a JWT"):
        auth.verify("not.a.jwt", {KEY_NAME: PUBLIC}, "GET", "/p", now_s=NOW_S)
    for header in (None, "", "Basic abc", "Bearer ", "Bearer " + "a" * 5000):
        with pytest.raises(auth.JwtRejected):
            auth.bearer_token(header)
    assert auth.bearer_token("Bearer tok") == "tok"


def test_keys_load_as_coinbase_hands_them_and_bad_ones_are_named_not_echoed() -> None:
    escaped = SECRET.replace("\n", "\\n")  # one line with \n escapes (env var, JSON file)
    assert auth.load_private_key(escaped).private_numbers() == PRIVATE.private_numbers()
    pkcs8 = PRIVATE.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    assert auth.load_private_key(pkcs8).private_numbers() == PRIVATE.private_numbers()
    public_pem = PUBLIC.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    assert auth.load_public_key(public_pem).public_numbers() == PUBLIC.public_numbers()
    assert auth.load_public_key(escaped).public_numbers() == PUBLIC.public_numbers()
    secret_text = "hunter2-not-a-pem-at-all"
    with pytest.raises(ConfigError, match="not a PEM private key") as info:
        auth.load_private_key(secret_text)
    assert secret_text not in str(info.value)
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigError, match="Ed25519"):
        auth.load_private_key(ed.decode())
    p384 = _pem(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ConfigError, match="P-256"):
        auth.load_private_key(p384)


# -- the codec: requests ----------------------------------------------------------------------


def codec() -> CoinbaseOrders:
    return CoinbaseOrders(nonce=lambda ts_ms: "fixed-nonce")


def _check_signed(call: Any, method: str, path: str) -> None:
    scheme, _, token = call.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    assert _segment(token, 0)["nonce"] == "fixed-nonce"
    # the gateway's check, at the venue clock the codec was given
    assert auth.verify(token, {KEY_NAME: PUBLIC}, method, path, now_s=NOW_S + 1) == KEY_NAME
    assert SECRET not in repr(call)


def test_the_adapter_has_a_codec_with_no_dead_mans_switch() -> None:
    c = CoinbaseVenue().order_codec()
    assert isinstance(c, CoinbaseOrders)
    assert c.venue == "coinbase" and not c.needs_passphrase
    assert c.dead_man_refresh_s is None and not c.dead_man_per_symbol
    assert c.arm_dead_man(CREDS, TS_MS, 60.0, None) is None
    assert c.arm_dead_man(CREDS, TS_MS, 60.0, "BTC-USD") is None
    assert c.cancel_all(CREDS, TS_MS, None) is None  # no cancel-all: the shell cancels each
    assert not c.cancel_needs_symbol
    # 30 private requests a second per user: the bucket never sends more in one second
    assert c.orders_per_s + c.orders_burst <= 30


def test_place_is_the_documented_limit_gtc_body_with_the_client_order_id() -> None:
    order = NewOrder("BTC-USD", "buy", "50000.00", "0.001", "0000-00000-000000")
    call = codec().place(CREDS, TS_MS, order)
    assert (call.method, call.path, call.query) == ("POST", "/api/v3/brokerage/orders", "")
    assert call.headers["Content-Type"] == "application/json"
    # Create Order, request body (limit_limit_gtc)
    assert json.loads(call.body) == {
        "client_order_id": "0000-00000-000000",
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {
            "limit_limit_gtc": {"base_size": "0.001", "limit_price": "50000.00", "post_only": False}
        },
    }
    _check_signed(call, "POST", "/api/v3/brokerage/orders")


def test_list_get_cancel_and_time_calls() -> None:
    c = codec()
    listed = c.open_orders(CREDS, TS_MS, "BTC-USD")
    assert (listed.method, listed.path) == ("GET", "/api/v3/brokerage/orders/historical/batch")
    assert listed.query == "order_status=OPEN&product_ids=BTC-USD" and not listed.body
    _check_signed(listed, "GET", "/api/v3/brokerage/orders/historical/batch")
    assert c.open_orders(CREDS, TS_MS, None).query == "order_status=OPEN"
    got = c.get_order(CREDS, TS_MS, None, "11111-00000-000000")
    assert got.target == "/api/v3/brokerage/orders/historical/11111-00000-000000"
    _check_signed(got, "GET", got.path)
    cancel = c.cancel(CREDS, TS_MS, None, "11111-00000-000000")
    assert (cancel.method, cancel.path) == ("POST", "/api/v3/brokerage/orders/batch_cancel")
    assert json.loads(cancel.body) == {"order_ids": ["11111-00000-000000"]}
    _check_signed(cancel, "POST", cancel.path)
    t = c.time_call()
    assert t is not None and (t.method, t.target, t.headers) == (
        "GET",
        "/api/v3/brokerage/time",
        {},
    )  # public: no JWT


def test_a_secret_that_is_no_key_is_a_config_error_without_the_secret() -> None:
    bad = Credentials(KEY_NAME, "s3cret-but-not-a-pem")
    with pytest.raises(ConfigError) as info:
        codec().place(bad, TS_MS, NewOrder("BTC-USD", "buy", "1", "1", "c1"))
    assert "s3cret" not in str(info.value)


# -- the codec: answers -----------------------------------------------------------------------

DOC_ORDER: dict[str, Any] = {  # Get Order, response (the documented order object)
    "order_id": "11111-00000-000000",
    "product_id": "BTC-USD",
    "user_id": "1234567",
    "order_configuration": {
        "limit_limit_gtc": {"base_size": "0.001", "limit_price": "50000.00", "post_only": False}
    },
    "side": "BUY",
    "client_order_id": "0000-00000-000000",
    "status": "OPEN",
    "time_in_force": "GOOD_UNTIL_CANCELLED",
    "created_time": "2021-05-31T09:59:59.000Z",
    "completion_percentage": "50",
    "filled_size": "0.0005",
    "average_filled_price": "50100.00",
    "fee": "0.25",
    "number_of_fills": "2",
    "filled_value": "25.05",
    "pending_cancel": False,
    "size_in_quote": False,
    "total_fees": "0.50",
    "size_inclusive_of_fees": False,
    "total_value_after_fees": "25.30",
    "trigger_status": "INVALID_ORDER_TYPE",
    "order_type": "LIMIT",
    "reject_reason": "REJECT_REASON_UNSPECIFIED",
    "settled": False,
    "product_type": "SPOT",
    "reject_message": "",
    "cancel_message": "",
    "order_placement_source": "RETAIL_ADVANCED",
}


def _b(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_decode_time_reads_epoch_millis() -> None:
    body = {
        "iso": "2023-05-31T16:35:27.366Z",
        "epochSeconds": "1685550927",
        "epochMillis": "1685550927366",
    }
    assert codec().decode_time(200, _b(body)) == 1685550927366
    assert codec().decode_time(200, _b({"epochSeconds": "1685550927"})) == 1685550927000
    with pytest.raises(RestError, match="epochMillis"):
        codec().decode_time(200, _b({"iso": "x"}))


def test_decode_a_successful_place() -> None:
    # Create Order, response (success); the legacy top-level fields as Coinbase still sends them
    body = {
        "success": True,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": "11111-00000-000000",
        "success_response": {
            "order_id": "11111-00000-000000",
            "product_id": "BTC-USD",
            "side": "BUY",
            "client_order_id": "0000-00000-000000",
        },
        "order_configuration": {
            "limit_limit_gtc": {"base_size": "0.001", "limit_price": "50000.00", "post_only": False}
        },
    }
    sent = NewOrder("BTC-USD", "buy", "50000.00", "0.001", "0000-00000-000000")
    o = codec().decode_order(200, _b(body), sent)
    assert (o.order_id, o.client_order_id, o.symbol, o.side) == (
        "11111-00000-000000",
        "0000-00000-000000",
        "BTC-USD",
        "buy",
    )
    assert (o.price, o.size, o.status, o.filled_size, o.is_open) == (
        "50000.00",
        "0.001",
        "open",
        "0",
        True,
    )


def test_a_refused_place_is_rejected_and_names_the_reason() -> None:
    # Create Order, response (HTTP 200, success false)
    body = {
        "success": False,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": "",
        "error_response": {
            "error": "INSUFFICIENT_FUND",
            "message": "Insufficient balance in source account",
            "error_details": "",
            "preview_failure_reason": "PREVIEW_INSUFFICIENT_FUND",
            "new_order_failure_reason": "INSUFFICIENT_FUND",
        },
        "order_configuration": {},
    }
    with pytest.raises(RestError) as info:
        codec().decode_order(200, _b(body), None)
    exc = info.value
    assert exc.code == "rejected" and not isinstance(exc, UnknownOrderError)
    assert "INSUFFICIENT_FUND" in str(exc) and "Insufficient balance" in str(exc)


def test_decode_get_order_and_the_open_orders_list() -> None:
    o = codec().decode_order(200, _b({"order": DOC_ORDER}), None)
    assert (o.order_id, o.symbol, o.side, o.price, o.size) == (
        "11111-00000-000000",
        "BTC-USD",
        "buy",
        "50000.00",
        "0.001",
    )
    assert (o.status, o.filled_size, o.raw["fee"]) == ("open", "0.0005", "0.25")
    listed = {
        "orders": [DOC_ORDER, {**DOC_ORDER, "order_id": "2", "status": "FILLED"}],
        "sequence": "0",
        "has_next": False,
        "cursor": "",
    }
    got = codec().decode_orders(200, _b(listed))
    assert [(x.order_id, x.status) for x in got] == [
        ("11111-00000-000000", "open"),
        ("2", "filled"),
    ]
    assert codec().decode_orders(200, _b({"orders": []})) == []


@pytest.mark.parametrize(
    ("venue", "ours"),
    [
        ("OPEN", "open"),
        ("PENDING", "open"),
        ("QUEUED", "open"),
        ("CANCEL_QUEUED", "open"),  # not cancelled yet: still ours to cancel
        ("EDIT_QUEUED", "open"),
        ("UNKNOWN_ORDER_STATUS", "open"),
        ("FILLED", "filled"),
        ("CANCELLED", "cancelled"),
        ("EXPIRED", "expired"),
        ("FAILED", "rejected"),
        ("SOMETHING_NEW", "open"),
    ],
)
def test_status_is_normalised(venue: str, ours: str) -> None:
    o = codec().decode_order(200, _b({"order": {**DOC_ORDER, "status": venue}}), None)
    assert o.status == ours
    assert set(STATUS.values()) <= {"open", "filled", "cancelled", "expired", "rejected"}


def test_cancel_results() -> None:
    # Cancel Orders, response: one result per order id
    def result(ok: bool, reason: str) -> bytes:
        return _b({"results": [{"success": ok, "failure_reason": reason, "order_id": "X1"}]})

    c = codec()
    done = c.decode_order(200, result(True, "UNKNOWN_CANCEL_FAILURE_REASON"), None)
    assert (done.order_id, done.status) == ("X1", "cancelled")
    assert c.decode_order(200, result(False, "ORDER_IS_FULLY_FILLED"), None).status == "filled"
    assert c.decode_order(200, result(False, "DUPLICATE_CANCEL_REQUEST"), None).status == (
        "cancelled"
    )
    with pytest.raises(UnknownOrderError):
        c.decode_order(200, result(False, "UNKNOWN_CANCEL_ORDER"), None)
    with pytest.raises(RestError, match="COMMANDER_REJECTED_CANCEL_ORDER") as info:
        c.decode_order(200, result(False, "COMMANDER_REJECTED_CANCEL_ORDER"), None)
    assert info.value.code == "rejected"
    two = _b(
        {
            "results": [
                {"success": True, "failure_reason": "", "order_id": "A"},
                {"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": "B"},
            ]
        }
    )
    assert c.decode_cancel_all(200, two) == ["A"]


def test_http_errors_are_typed() -> None:
    c = codec()
    with pytest.raises(CredentialsRejected) as auth_info:
        c.decode_order(401, b"Unauthorized\n", None)
    exc = auth_info.value
    assert exc.code == "auth_failed" and "401 Unauthorized" in str(exc)
    assert SECRET not in str(exc) and "PRIVATE KEY" not in str(exc)
    denied = {"error": "PERMISSION_DENIED", "message": "Missing required scopes"}
    with pytest.raises(CredentialsRejected, match="Missing required scopes"):
        c.decode_orders(403, _b(denied))
    nf = {
        "error": "NOT_FOUND",
        "error_details": "order with this orderID was not found",
        "message": "order with this orderID was not found",
    }
    with pytest.raises(UnknownOrderError, match="not found") as nf_info:
        c.decode_order(404, _b(nf), None)
    assert (nf_info.value.status, nf_info.value.code) == (404, "unknown_order")
    with pytest.raises(RateLimitedError):
        c.decode_order(429, _b({"error": "RATE_LIMIT_EXCEEDED", "message": "Too many"}), None)
    with pytest.raises(RestError) as five:
        c.decode_orders(503, b"upstream down")
    assert (five.value.status, five.value.code) == (503, "venue_error")
    with pytest.raises(RestError) as bad:
        c.decode_orders(400, _b({"error": "INVALID_ARGUMENT", "message": "bad order_status"}))
    assert bad.value.code == "rejected" and "bad order_status" in str(bad.value)
    with pytest.raises(RestError) as junk:
        c.decode_order(200, b"<html>", None)
    assert junk.value.code == "venue_error"
    with pytest.raises(RestError, match="not an order"):
        c.decode_orders(200, _b({"orders": [{"no": "id"}]}))
    c.decode_ack(200, b"{}")
    with pytest.raises(CredentialsRejected):
        c.decode_ack(401, b"Unauthorized")


def test_nonces_are_32_hex_digits_and_never_repeat() -> None:
    n = auth.NonceCounter()
    got = [n(1_700_000_000_000) for _ in range(1000)] + [n(1_700_000_000_001)]
    assert len(set(got)) == len(got)
    assert all(len(x) == 32 and int(x, 16) >= 0 for x in got)
