"""Coinbase Advanced Trade request authentication: one JWT (ES256) per request, signed with the
API key's EC private key through PyJWT and ``cryptography``. Used by the client's order codec
to sign (:func:`sign`) and by the gateway's ``coinbase`` dialect to verify (:func:`verify`).

As Coinbase documents it (docs.cdp.coinbase.com, "Coinbase App API Key Authentication" and
"JWT authentication"; its SDK ``coinbase-advanced-py``, ``coinbase/jwt_generator.py``):

- a key has a **name** (``organizations/{org_id}/apiKeys/{key_id}``: tickpipe's ``key``) and a
  **secret**, the PEM of an EC P-256 private key (``-----BEGIN EC PRIVATE KEY-----\\n...``:
  tickpipe's ``secret``). Coinbase hands it with ``\\n`` escaped on one line; both that and a
  real multi-line PEM are read. Ed25519 keys are not accepted for Advanced Trade ("you must use
  ES256 key format").
- every REST request carries ``Authorization: Bearer <JWT>``. The JWT's header is ``{"alg":
  "ES256", "typ": "JWT", "kid": <key name>, "nonce": <random hex>}``, its claims ``{"iss":
  "cdp", "sub": <key name>, "nbf": <now, s>, "exp": <now + 120>, "uri": "<METHOD> <host><path>"}``
  with ``host`` ``api.coinbase.com`` and the path without its query string
  (``"GET api.coinbase.com/api/v3/brokerage/orders/historical/batch"``).
- "Your JWT expires after 2 minutes, after which all requests are unauthenticated": the JWT is
  good for one method and path, for 120 s from ``nbf``. Coinbase documents no refusal of a
  JWT used twice within that time, and the gateway refuses none (the nonce only makes every
  token different).

Pure: the time (``now_s``) and the nonce are given. Errors never contain the secret or a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tickpipe.errors import ConfigError, TickpipeError

ALGORITHM = "ES256"
ISSUER = "cdp"
JWT_TTL_S = 120
"""Seconds from ``nbf`` to ``exp``: "your JWT expires after 2 minutes"."""
REST_HOST = "api.coinbase.com"
"""The host in the ``uri`` claim: Coinbase's REST host, whatever URL the request goes to (the
reference gateway plays ``api.coinbase.com`` on loopback and checks this host)."""
MAX_TOKEN_CHARS = 4096
"""A longer ``Authorization`` token is refused unread (a real one is ~500 characters)."""


class JwtRejected(TickpipeError):
    """A request's JWT was refused (the gateway's side): ``reason`` says why, for its logs. It
    never holds the token or a key's secret."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _pem(text: str) -> bytes:
    """A PEM as Coinbase hands it: ``\\n`` escaped on one line, or real lines."""
    return text.strip().replace("\\n", "\n").encode()


def load_private_key(secret: str) -> ec.EllipticCurvePrivateKey:
    """The EC P-256 private key in ``secret`` (SEC1 ``EC PRIVATE KEY`` or PKCS#8 ``PRIVATE
    KEY`` PEM). ConfigError, naming what is wrong but never echoing the text, otherwise."""
    try:
        key = serialization.load_pem_private_key(_pem(secret), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            "coinbase secret: not a PEM private key (expected the API key's EC private key, "
            "-----BEGIN EC PRIVATE KEY----- ... as Coinbase gave it, with \\n escapes or real "
            "newlines)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(
            "coinbase secret: the PEM is not an EC P-256 key (Advanced Trade signs ES256: "
            "create the key with the ECDSA signature algorithm, not Ed25519)"
        )
    return key


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The EC P-256 public key of a PEM holding a private key (its public half) or a public key
    (``-----BEGIN PUBLIC KEY-----``). ConfigError otherwise (the text is never echoed)."""
    data = _pem(text)
    if b"PRIVATE KEY" in data:
        return load_private_key(text).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError("coinbase key: not a PEM EC private or public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError("coinbase key: the PEM is not an EC P-256 key (ES256)")
    return key


def jwt_uri(method: str, path: str, host: str = REST_HOST) -> str:
    """The ``uri`` claim: ``"POST api.coinbase.com/api/v3/brokerage/orders"`` (no query)."""
    return f"{method.upper()} {host}{path.partition('?')[0]}"


class NonceCounter:
    """Header nonces, 32 hex digits as the SDK's ``secrets.token_hex(16)`` but drawn from no
    randomness (this module stays pure): the venue's ms and a count, unique in this process.
    Coinbase only needs one there (it refuses no JWT for its nonce: the tokens differ anyway
    by ``nbf`` and the ES256 signature)."""

    def __init__(self) -> None:
        self._n = 0

    def __call__(self, ts_ms: int) -> str:
        self._n += 1
        return f"{ts_ms & 0xFFFFFFFFFFFF:012x}{self._n & ((1 << 80) - 1):020x}"


def sign(
    key_name: str,
    private_key: ec.EllipticCurvePrivateKey,
    method: str,
    path: str,
    *,
    now_s: int,
    nonce: str,
    host: str = REST_HOST,
) -> str:
    """The JWT for one request (``Authorization: Bearer <it>``), valid from ``now_s`` (the
    venue's clock, whole seconds) for :data:`JWT_TTL_S`."""
    claims = {
        "iss": ISSUER,
        "sub": key_name,
        "nbf": now_s,
        "exp": now_s + JWT_TTL_S,
        "uri": jwt_uri(method, path, host),
    }
    return jwt.encode(
        claims, private_key, algorithm=ALGORITHM, headers={"kid": key_name, "nonce": nonce}
    )


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; JwtRejected otherwise."""
    if not authorization:
        raise JwtRejected("no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise JwtRejected("Authorization is not 'Bearer <JWT>'")
    if len(token) > MAX_TOKEN_CHARS:
        raise JwtRejected(f"token longer than {MAX_TOKEN_CHARS} characters")
    return token


def verify(
    token: str,
    public_keys: Mapping[str, ec.EllipticCurvePublicKey],
    method: str,
    path: str,
    *,
    now_s: float,
    leeway_s: float = 0.0,
    host: str = REST_HOST,
) -> str:
    """The key name a request's JWT was signed by, when it is good for ``method`` ``path`` at
    ``now_s``: a known ``kid`` (= ``sub``), an ES256 signature by that key's public key, ``iss``
    ``cdp``, ``uri`` = :func:`jwt_uri`, ``nbf - leeway_s <= now_s < exp + leeway_s``.
    JwtRejected (naming the first check that failed) otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise JwtRejected("not a JWT") from None
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM:
        raise JwtRejected(f"alg must be {ALGORITHM}")
    if not isinstance(kid, str) or not kid:
        raise JwtRejected("no kid in the JWT header")
    key = public_keys.get(kid)
    if key is None:
        raise JwtRejected("unknown key (kid)")
    if not isinstance(header.get("nonce"), str) or not header["nonce"]:
        raise JwtRejected("no nonce in the JWT header")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={
                "verify_exp": False,  # checked below against the given clock
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise JwtRejected("bad signature") from None
    except jwt.InvalidTokenError as exc:
        raise JwtRejected(f"unreadable JWT ({type(exc).__name__})") from None
    if claims.get("iss") != ISSUER:
        raise JwtRejected(f"iss must be {ISSUER!r}")
    if claims.get("sub") != kid:
        raise JwtRejected("sub is not the kid")
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if type(nbf) is not int or type(exp) is not int:
        raise JwtRejected("nbf and exp must be integer seconds")
    if now_s + leeway_s < nbf:
        raise JwtRejected(f"not valid yet (nbf is {nbf - now_s:.1f}s ahead of the venue clock)")
    if now_s - leeway_s >= exp:
        raise JwtRejected(f"expired {now_s - exp:.1f}s ago")
    want = jwt_uri(method, path, host)
    if claims.get("uri") != want:
        raise JwtRejected(f"uri claim is not {want!r}")
    return kid
