"""Binance request signing (spot and USD-M futures): HMAC-SHA256 keys. Pure.

One module for both sides: the client's order codec signs with :func:`sign_params`, the
reference gateway's dialects verify with :func:`verify_signature` and
:func:`check_timestamp`. Sources (read 2026-07):

- [spot-sec] github.com/binance/binance-spot-api-docs ``rest-api.md`` (commit a5e0bc3),
  "Request Security", "SIGNED Endpoint security", "Timing security", "SIGNED Endpoint Examples
  for POST /api/v3/order" (HMAC Keys).
- [usdm-sec] developers.binance.com/docs/derivatives/usds-margined-futures/general-info,
  "SIGNED (TRADE and USER_DATA) Endpoint Security", "Timing Security", "SIGNED Endpoint
  Examples for POST /fapi/v1/order - HMAC Keys".

What they say, and what is done here:

- The API key travels in the ``X-MBX-APIKEY`` header ([spot-sec], [usdm-sec]).
- The signature payload ("totalParams") is the query string concatenated, without a
  separator, with the request body; non-ASCII characters are percent-encoded before signing.
  The signature is the HMAC-SHA256 of that payload keyed with the secret, as hex, sent as the
  ``signature`` parameter, last ([usdm-sec]: "make sure the signature is the end part"). The
  secret and payload are case-sensitive; the hex signature is not.
- ``timestamp`` (ms) is mandatory; ``recvWindow`` is optional, defaults to 5000 ms and may not
  exceed 60000. A request is processed only when ``timestamp < serverTime + 1000`` and
  ``serverTime - timestamp <= recvWindow``; otherwise it is refused with ``-1021``. Binance
  refuses nothing else as a replay: a request copied within its window is processed again
  (an order's ``newClientOrderId`` is what refuses a second copy of an open order).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import quote

API_KEY_HEADER = "X-MBX-APIKEY"
SIGNATURE_PARAM = "signature"
DEFAULT_RECV_WINDOW_MS = 5000  # [spot-sec] "If recvWindow is not sent, it defaults to 5000"
MAX_RECV_WINDOW_MS = 60_000  # [spot-sec] "Maximum recvWindow is 60000 milliseconds."
AHEAD_TOLERANCE_MS = 1000  # [spot-sec] timestamp < serverTime + 1 second

# Characters left as they are by the percent-encoding (RFC 3986 unreserved); everything else,
# non-ASCII included, is %XX of its UTF-8 bytes, as [spot-sec]'s non-ASCII example does.
_SAFE = "-_.~"


def encode_params(params: Sequence[tuple[str, str]]) -> str:
    """``name=value`` pairs in the given order, joined by ``&``, percent-encoded:
    ``[("symbol", "LTCBTC"), ("side", "BUY")]`` -> ``symbol=LTCBTC&side=BUY``."""
    return "&".join(f"{quote(k, safe=_SAFE)}={quote(v, safe=_SAFE)}" for k, v in params)


def signature(secret: str, payload: str) -> str:
    """HMAC-SHA256 of ``payload`` (the query string followed by the body) keyed with
    ``secret``, as lower-case hex."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def sign_params(secret: str, params: Sequence[tuple[str, str]]) -> str:
    """The signed query string: ``params`` encoded, then ``&signature=<hex>`` last."""
    query = encode_params(params)
    return f"{query}&{SIGNATURE_PARAM}={signature(secret, query)}"


def split_signature(query: str, body: str = "") -> tuple[str, str | None]:
    """``(payload, signature)`` of a received request: the ``signature`` parameter taken out of
    the raw query string (else out of the body), the payload the rest of the query string
    followed by the body, as the client signed it. ``signature`` None when none was sent."""
    for where in ("query", "body"):
        text = query if where == "query" else body
        if not text:
            continue
        pairs = text.split("&")
        kept = [p for p in pairs if p.partition("=")[0] != SIGNATURE_PARAM]
        if len(kept) == len(pairs):
            continue
        sig = next(p for p in pairs if p.partition("=")[0] == SIGNATURE_PARAM).partition("=")[2]
        rest = "&".join(kept)
        return (rest + body, sig) if where == "query" else (query + rest, sig)
    return query + body, None


def verify_signature(secret: str, query: str, body: str = "") -> bool:
    """True when the request's ``signature`` is the HMAC of its payload under ``secret``
    (compared in constant time, case-insensitively: the hex is not case-sensitive)."""
    payload, sig = split_signature(query, body)
    if sig is None:
        return False
    return hmac.compare_digest(signature(secret, payload), sig.lower())


def check_timestamp(timestamp_ms: int, server_ms: int, recv_window_ms: float) -> str | None:
    """None when Binance processes a request stamped ``timestamp_ms`` arriving at
    ``server_ms`` with ``recv_window_ms``, else the -1021 message it answers."""
    if timestamp_ms >= server_ms + AHEAD_TOLERANCE_MS:
        return "Timestamp for this request was 1000ms ahead of the server's time."
    if server_ms - timestamp_ms > recv_window_ms:
        return "Timestamp for this request is outside of the recvWindow."
    return None
