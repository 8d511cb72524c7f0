"""Bybit v5 request signing, exactly as Bybit documents it (issue 17). Pure.

One function signs for the client's codec (``venues.bybit.orders``) and verifies for the
reference gateway's ``bybit`` dialect, so both sides read the rule from one place.

REST ("Integration Guidance › Authentication", https://bybit-exchange.github.io/docs/v5/guide):

- headers ``X-BAPI-API-KEY`` (the key), ``X-BAPI-TIMESTAMP`` (UTC ms), ``X-BAPI-RECV-WINDOW``
  (ms, optional, default 5,000: "how long an HTTP request is valid. It is also used to prevent
  replay attacks") and ``X-BAPI-SIGN``;
- ``X-BAPI-SIGN`` = hex (lower case) HMAC-SHA256 with the secret over
  ``timestamp + api_key + recv_window + (queryString | jsonBodyString)``: a GET signs its query
  string exactly as sent ("no need to sort"), a POST its JSON body exactly as sent;
- the timestamp must satisfy ``server_time - recv_window <= timestamp < server_time + 1000``,
  else retCode 10002 ("The request time exceeds the time window range").

Private WebSocket (``/v5/private``, "WebSocket › Connect › Authentication"): ``{"op": "auth",
"args": [api_key, expires, signature]}`` with ``expires`` a ms timestamp in the future and
``signature`` = hex HMAC-SHA256(secret, ``"GET/realtime" + expires``).

The secret goes into the HMAC and nowhere else: no function here returns, formats or logs it.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from tickpipe.venues.trading import Credentials

HEADER_KEY = "X-BAPI-API-KEY"
HEADER_TIMESTAMP = "X-BAPI-TIMESTAMP"
HEADER_RECV_WINDOW = "X-BAPI-RECV-WINDOW"
HEADER_SIGN = "X-BAPI-SIGN"

RECV_WINDOW_MS = 5_000
"""Bybit's default ``X-BAPI-RECV-WINDOW``; tickpipe sends it explicitly."""
FUTURE_SLACK_MS = 1_000
"""A timestamp may run at most this far ahead of Bybit's clock (``< server_time + 1000``)."""

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(
    secret: str, timestamp_ms: int | str, api_key: str, recv_window_ms: int | str, payload: bytes
) -> str:
    """``X-BAPI-SIGN``: hex HMAC-SHA256(secret, timestamp + api_key + recv_window + payload),
    ``payload`` the query string of a GET or the JSON body of a POST, as sent. The timestamp and
    window are taken as written (the verifier passes the header text)."""
    head = f"{timestamp_ms}{api_key}{recv_window_ms}".encode()
    return _hmac_hex(secret, head + payload)


def signed_headers(
    creds: Credentials, timestamp_ms: int, payload: bytes, recv_window_ms: int = RECV_WINDOW_MS
) -> dict[str, str]:
    """The four ``X-BAPI-*`` headers of a signed request over ``payload``."""
    return {
        HEADER_KEY: creds.key,
        HEADER_TIMESTAMP: str(timestamp_ms),
        HEADER_RECV_WINDOW: str(recv_window_ms),
        HEADER_SIGN: sign(creds.secret, timestamp_ms, creds.key, recv_window_ms, payload),
    }


def verify(
    secret: str, timestamp: str, api_key: str, recv_window: str, payload: bytes, given: str
) -> bool:
    """True when ``given`` is the signature of the request (constant-time; any case of hex)."""
    if not _HEX64.match(given):
        return False
    expected = sign(secret, timestamp, api_key, recv_window, payload)
    return hmac.compare_digest(expected, given.lower())


def timestamp_fresh(timestamp_ms: int, recv_window_ms: int, server_ms: int) -> bool:
    """Bybit's rule: ``server_time - recv_window <= timestamp < server_time + 1000``."""
    return server_ms - recv_window_ms <= timestamp_ms < server_ms + FUTURE_SLACK_MS


def ws_auth_signature(secret: str, expires_ms: int | str) -> str:
    """The private stream's ``auth`` signature: hex HMAC-SHA256(secret, "GET/realtime" +
    expires)."""
    return _hmac_hex(secret, f"GET/realtime{expires_ms}".encode())


def ws_verify(secret: str, expires_ms: int | str, given: str) -> bool:
    if not _HEX64.match(given):
        return False
    return hmac.compare_digest(ws_auth_signature(secret, expires_ms), given.lower())
