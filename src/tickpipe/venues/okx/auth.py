"""OKX v5 REST request signing, as documented. Pure: no I/O, no clock reads.

OKX API v5 reference (https://www.okx.com/docs-v5/en/), "Overview › REST Authentication ›
Making Requests / Signature":

- every private request carries ``OK-ACCESS-KEY`` (the API key), ``OK-ACCESS-SIGN``,
  ``OK-ACCESS-TIMESTAMP`` (UTC, ISO 8601 with milliseconds: ``2020-12-08T09:08:57.715Z``) and
  ``OK-ACCESS-PASSPHRASE`` (the passphrase chosen when the key was made, sent as is);
- ``OK-ACCESS-SIGN`` = Base64(HMAC-SHA256(SecretKey, timestamp + method + requestPath + body)):
  ``method`` in upper case, ``requestPath`` the path *with* its query for a GET ("GET request
  parameters are counted as requestpath, not body"), ``body`` the exact request body text
  (empty when there is none);
- "The request will expire 30 seconds after the timestamp" (:data:`REQUEST_EXPIRY_MS`):
  OKX answers ``50102`` "Timestamp request expired";
- Demo Trading: the same REST host with the header ``x-simulated-trading: 1``.

One set of functions for both sides: the client's codec signs with :func:`signed_headers`, the
reference gateway's ``--dialect okx`` checks with :func:`parse_timestamp` and :func:`verify`.
No secret or passphrase ever goes into a message from here.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import re

from tickpipe.errors import ConfigError
from tickpipe.venues.trading import Credentials

KEY_HEADER = "OK-ACCESS-KEY"
SIGN_HEADER = "OK-ACCESS-SIGN"
TIMESTAMP_HEADER = "OK-ACCESS-TIMESTAMP"
PASSPHRASE_HEADER = "OK-ACCESS-PASSPHRASE"
SIMULATED_HEADER = "x-simulated-trading"
"""Demo Trading: ``x-simulated-trading: 1`` on every request to the same REST host."""
REQUEST_EXPIRY_MS = 30_000
"""A request is refused (50102) once its timestamp is this far from OKX's clock."""

_TS_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z$")


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of ``days`` since 1970-01-01, proleptic Gregorian (H. Hinnant's
    algorithm): pure arithmetic, no clock and no datetime."""
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def iso_timestamp(ts_ms: int) -> str:
    """``OK-ACCESS-TIMESTAMP`` for ``ts_ms`` (Unix ms): ``2020-12-08T09:08:57.715Z``."""
    if ts_ms < 0:
        raise ConfigError(f"OKX timestamp must be >= 0 ms, got {ts_ms}")
    secs, ms = divmod(ts_ms, 1000)
    days, rem = divmod(secs, 86400)
    y, mo, d = _civil_from_days(days)
    h, rem = divmod(rem, 3600)
    mi, sec = divmod(rem, 60)
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{sec:02d}.{ms:03d}Z"


def parse_timestamp(text: str) -> int | None:
    """Unix ms of an ``OK-ACCESS-TIMESTAMP`` written exactly as OKX documents it
    (``YYYY-MM-DDTHH:MM:SS.mmmZ``); None for anything else (an impossible date included)."""
    m = _TS_RE.match(text) if len(text) == 24 and text.isascii() else None
    if m is None:
        return None
    y, mo, d, h, mi, s, ms = (int(g) for g in m.groups())
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1]):
        return None
    if h > 23 or mi > 59 or s > 59:
        return None
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1000 + ms


def prehash(timestamp: str, method: str, request_path: str, body: bytes | str = b"") -> bytes:
    """``timestamp + METHOD + requestPath + body``, the bytes OKX signs."""
    raw = body.encode() if isinstance(body, str) else body
    return (timestamp + method.upper() + request_path).encode() + raw


def sign(
    secret: str, timestamp: str, method: str, request_path: str, body: bytes | str = b""
) -> str:
    """``OK-ACCESS-SIGN``: Base64(HMAC-SHA256(secret, prehash))."""
    mac = hmac.new(secret.encode(), prehash(timestamp, method, request_path, body), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def verify(
    secret: str,
    timestamp: str,
    method: str,
    request_path: str,
    body: bytes | str,
    signature: str,
) -> bool:
    """True when ``signature`` is :func:`sign` of the request (constant-time compare)."""
    expected = sign(secret, timestamp, method, request_path, body)
    return hmac.compare_digest(expected.encode(), signature.encode(errors="replace"))


def signed_headers(
    creds: Credentials,
    ts_ms: int,
    method: str,
    request_path: str,
    body: bytes = b"",
    *,
    simulated: bool = False,
) -> dict[str, str]:
    """The four ``OK-ACCESS-*`` headers (and ``Content-Type: application/json``; with
    ``simulated``, ``x-simulated-trading: 1``) of a request signed at ``ts_ms`` (OKX's clock).
    ConfigError when the key has no passphrase (OKX needs one)."""
    if not creds.passphrase:
        raise ConfigError(
            "okx credentials: OKX needs the key's passphrase as well (TICKPIPE_OKX_PASSPHRASE, "
            'passphrase=, or "passphrase" in the credentials file)'
        )
    ts = iso_timestamp(ts_ms)
    headers = {
        KEY_HEADER: creds.key,
        SIGN_HEADER: sign(creds.secret, ts, method, request_path, body),
        TIMESTAMP_HEADER: ts,
        PASSPHRASE_HEADER: creds.passphrase,
        "Content-Type": "application/json",
    }
    if simulated:
        headers[SIMULATED_HEADER] = "1"
    return headers
