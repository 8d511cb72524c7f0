"""Kraken spot REST request signing (issue 17): one function signs (the client's order codec,
``venues/kraken/orders.py``) and verifies (the gateway's ``kraken`` dialect). Pure.

As Kraken documents it (docs.kraken.com/api/docs/guides/spot-rest-auth, "Spot REST
Authentication"), a private call is ``POST /0/private/<Method>`` with a form-encoded body
(``Content-Type: application/x-www-form-urlencoded``) that carries ``nonce`` and the call's
parameters, and two headers:

- ``API-Key``: the public key;
- ``API-Sign``: ``base64(HMAC-SHA512(key=base64decode(secret),
  msg=uri_path + SHA256(nonce + post_data)))``, where ``uri_path`` is the path from
  ``/0/private`` on (no host, no query), ``nonce`` the nonce as written in the body, and
  ``post_data`` the whole body exactly as sent (``nonce=...&...``); SHA256 is the raw 32-byte
  digest, not hex.

The nonce is "an always increasing, unsigned 64-bit integer" per API key: Kraken refuses one
that is not above the last it accepted for the key (``EAPI:Invalid nonce``). tickpipe's nonce
is the venue-clock milliseconds the client shell passes (``ts_ms``); the shell makes them
strictly increasing for a key and sends Kraken calls one at a time (see
``client/signed_orders.py``), since two calls in one millisecond, or two in flight at once,
would break the rule.

The secret is never put in a message: a secret that is not base64 is a ConfigError that says
so without quoting it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from tickpipe.errors import ConfigError

KEY_HEADER = "API-Key"
SIGN_HEADER = "API-Sign"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
PRIVATE_PREFIX = "/0/private/"


def decode_secret(secret: str) -> bytes:
    """The HMAC key: the API secret base64-decoded (Kraken's secrets are base64 text, 88
    characters for 64 bytes). ConfigError, never quoting the secret, when it is not base64."""
    try:
        raw = base64.b64decode(secret.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            "kraken API secret is not base64 (Kraken's private keys are base64 text, as shown "
            "when the key was created): check TICKPIPE_KRAKEN_SECRET / secret="
        ) from None
    if not raw:
        raise ConfigError("kraken API secret is empty")
    return raw


def sign(secret: str | bytes, uri_path: str, nonce: str | int, post_data: str | bytes) -> str:
    """Kraken's ``API-Sign`` for one request. ``secret``: the base64 text, or its decoded bytes;
    ``uri_path``: ``/0/private/AddOrder``; ``nonce``: as written in ``post_data``;
    ``post_data``: the form body exactly as sent."""
    key = decode_secret(secret) if isinstance(secret, str) else secret
    body = post_data.encode() if isinstance(post_data, str) else post_data
    digest = hashlib.sha256(str(nonce).encode() + body).digest()
    mac = hmac.new(key, uri_path.encode() + digest, hashlib.sha512).digest()
    return base64.b64encode(mac).decode()


def verify(
    secret: str | bytes, uri_path: str, nonce: str | int, post_data: str | bytes, signature: str
) -> bool:
    """True when ``signature`` (the ``API-Sign`` header) is Kraken's signature of the request
    (constant-time compare). A secret that is not base64 verifies nothing (False)."""
    try:
        expected = sign(secret, uri_path, nonce, post_data)
    except ConfigError:
        return False
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def headers(
    key: str, secret: str | bytes, uri_path: str, nonce: int, body: bytes
) -> dict[str, str]:
    """The headers of a signed private call whose form ``body`` carries ``nonce``."""
    return {
        KEY_HEADER: key,
        SIGN_HEADER: sign(secret, uri_path, nonce, body),
        "Content-Type": FORM_CONTENT_TYPE,
    }
