"""REST calls of VTS/1 (sections 5 and 7) over one aiohttp session, with typed errors.

- Market data (instruments, snapshots) is public but carries ``X-VT-KEY`` anyway, so the
  gateway applies this key's rate limits rather than those of the address.
- ``/v1/orders`` calls are signed: ``X-VT-SIGN`` = HMAC-SHA256(secret, ts + METHOD +
  path-with-query + body). The query is built here and sent pre-encoded so that what is signed
  is byte for byte what the gateway sees.
- Errors: ``{"error": {"code", "message"}}`` becomes :class:`~tickpipe.errors.RestError`;
  429 becomes :class:`~tickpipe.errors.RateLimitedError` with ``retry_after_s`` from
  ``Retry-After``; 404 ``unknown_order`` becomes :class:`~tickpipe.errors.UnknownOrderError`.
  A request that never got an answer (refused, reset, timeout) is a ``RestError`` with status 0
  and code ``unreachable``: retryable, like a 5xx.
- ``https://`` peers are verified (certificate and host name) against the system's CA store or
  the client's ``ca_file``; a certificate that fails is a ``RestError`` with status 0, code
  ``tls_certificate`` and OpenSSL's reason as its message (the client raises it at start-up as
  :class:`~tickpipe.errors.CertificateRejected`; a snapshot refused so is retried with backoff).

Venue budgets: when ``used_weight_header`` is set (Binance ``X-MBX-USED-WEIGHT-1M``), its value
on every answer (errors included) is passed to ``on_used_weight`` (the snapshot scheduler's
count of the weight window). A rate-limit status other than 429 (Binance's ``418``: the IP is
banned) stops every call of this client for its ``Retry-After``: until then a call raises
:class:`~tickpipe.errors.RateLimitedError` at once, without sending anything.

Against a hostile or broken gateway (docs/security.md, "Client against a hostile gateway"):

- every answer body is read incrementally and refused past ``max_body_bytes`` (a
  ``Content-Length`` over it is refused before reading): ``RestError`` code ``body_too_large``,
  retryable like a 5xx (a snapshot's book backs off and asks again); an error answer (4xx/5xx)
  is read only up to :data:`ERROR_BODY_BYTES`, the rest is dropped with the connection;
- ``Retry-After`` is clamped to ``max_retry_after_s``; a value that is not a finite number
  >= 0 (``inf``, ``nan``, ``-1``, a date, garbage) gives :data:`DEFAULT_RETRY_AFTER_S`. Either
  is said in the error's message, counted (``retry_after_fixed``) and logged once per client;
- a snapshot with more than ``max_snapshot_levels`` levels on a side is refused
  (``FrameError`` naming the side): a body with more ``[`` than that many levels a side can
  need is refused before decoding, so a huge list is never built.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import msgspec
from yarl import URL

from tickpipe.client.config import tls_context
from tickpipe.client.recorder import Recorder
from tickpipe.errors import FrameError, RateLimitedError, RestError, UnknownOrderError
from tickpipe.protocol import frames
from tickpipe.protocol.instruments import Instrument
from tickpipe.venues.base import Venue
from tickpipe.venues.trading import HttpCall

log = logging.getLogger("tickpipe.client.rest")

UNREACHABLE = 0
CERTIFICATE = "tls_certificate"  # RestError code: the https:// peer's certificate failed
BODY_TOO_LARGE = "body_too_large"
ERROR_BODY_BYTES = 64 * 1024  # an error answer is only read for its code and message
DEFAULT_RETRY_AFTER_S = 1.0  # a 429 without a usable Retry-After
DEFAULT_MAX_BODY_BYTES = 16 << 20
DEFAULT_MAX_RETRY_AFTER_S = 60.0
DEFAULT_MAX_SNAPSHOT_LEVELS = 10_000
_READ_CHUNK = 64 * 1024


def is_retryable(exc: RestError) -> bool:
    """5xx, 429, no answer at all and a body over the cap (a peer fault, like a 5xx) are worth
    retrying; any other 4xx is not."""
    return (
        exc.status == UNREACHABLE
        or exc.status == 429
        or exc.status >= 500
        or exc.code == BODY_TOO_LARGE
    )


def parse_retry_after(value: str | None, max_s: float) -> tuple[float, str | None]:
    """Seconds to wait from a ``Retry-After`` header, and a note when it was not usable as is.

    A missing header gives :data:`DEFAULT_RETRY_AFTER_S` silently; a value that is not a finite
    number >= 0 gives the same with a note; a larger value than ``max_s`` is clamped to it with
    a note. (The HTTP-date form is not used by VTS/1 and counts as unusable.)"""
    if value is None:
        return DEFAULT_RETRY_AFTER_S, None
    shown = value[:40]  # an attacker's header must not bloat messages and logs
    try:
        v = float(value)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and v >= 0):
        return DEFAULT_RETRY_AFTER_S, (
            f"Retry-After {shown!r} is not a finite number of seconds >= 0: "
            f"waiting {DEFAULT_RETRY_AFTER_S:g}s"
        )
    if v > max_s:
        return max_s, f"Retry-After {shown!r} clamped to max_retry_after_s {max_s:g}s"
    return v, None


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> tuple[bytes, bool]:
    """The body, read chunk by chunk up to ``cap`` bytes, and whether it went past ``cap``: then
    only its first ``min(cap, ERROR_BODY_BYTES)`` bytes are returned (an error answer's code
    and message; a 2xx answer over the cap is refused whole) and the rest is never read."""
    length = resp.content_length
    if length is not None and length > cap:
        return b"", True
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(_READ_CHUNK):
        buf += chunk
        if len(buf) > cap:
            return bytes(buf[: min(cap, ERROR_BODY_BYTES)]), True
    return bytes(buf), False


class RestClient:
    """Signed REST calls on one session. ``close()`` releases the session and its sockets."""

    def __init__(
        self,
        base_url: str,
        key: str,
        secret: str,
        timeout_s: float,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
        max_snapshot_levels: int = DEFAULT_MAX_SNAPSHOT_LEVELS,
        sends_key: bool = True,
        rate_limit_statuses: tuple[int, ...] = (429,),
        ca_file: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.sends_key = sends_key  # False: a public venue, no key leaves this client
        self.rate_limit_statuses = rate_limit_statuses  # Retry-After pauses (429; Binance 418)
        self.key = key
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.max_body_bytes = max_body_bytes
        self.max_retry_after_s = max_retry_after_s
        self.max_snapshot_levels = max_snapshot_levels
        self.requests = 0
        self._last_ts_ms = 0  # last X-VT-TS signed: each signed call gets a later one
        self.bodies_refused = 0  # answers over max_body_bytes
        self.retry_after_fixed = 0  # Retry-After values clamped or replaced
        self._logged: set[str] = set()
        self.used_weight_header: str | None = None  # set by the client for a weight budget
        self.on_used_weight: Callable[[int], None] | None = None
        self.banned_until = 0.0  # monotonic: no call is sent before this (after a 418)
        self.recorder: Recorder | None = None  # tickpipe record: every answer as received
        self._ca_file = ca_file  # None: the system's CA store (see ClientConfig.ca_file)
        self._tls: ssl.SSLContext | None = None  # built at the first https:// session

    def _log_once(self, kind: str, message: str) -> None:
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("%s (%s; logged once per client)", message, self.base_url)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if self._tls is None and self.base_url.startswith("https:"):
                self._tls = tls_context(self._ca_file)  # verifying: never ssl=False
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(
                    limit=32, enable_cleanup_closed=True, ssl=self._tls or True
                ),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        signed: bool = False,
    ) -> Any:
        """One call; returns the decoded JSON body or raises a RestError subclass."""
        raw = await self.request_bytes(method, path, params=params, body=body, signed=signed)
        try:
            return msgspec.json.decode(raw) if raw else None
        except (msgspec.DecodeError, RecursionError) as exc:
            raise RestError(
                200, "bad_body", f"answer is not JSON: {exc}", method=method, path=path
            ) from None

    async def request_bytes(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        signed: bool = False,
    ) -> bytes:
        """One call; returns the raw body of a 2xx answer or raises a RestError subclass."""
        path_q = path + ("?" + urlencode(params) if params else "")
        body_text = frames.encode(body).decode() if body is not None else ""
        headers = {"X-VT-KEY": self.key} if self.sends_key else {}
        if signed:
            # strictly increasing: two identical calls in one ms must not share a signature
            # (the gateway refuses a reused one as a replay)
            ts_ms = self._last_ts_ms = max(int(time.time() * 1000), self._last_ts_ms + 1)
            headers = frames.rest_headers(self.key, self._secret, ts_ms, method, path_q, body_text)
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = URL(self.base_url + path_q, encoded=True)
        banned_s = self.banned_until - time.monotonic()
        if banned_s > 0:
            raise RateLimitedError(
                f"not sent: the venue banned this client, {banned_s:.1f}s left",
                banned_s,
                method=method,
                path=path_q,
            )
        self.requests += 1
        try:
            async with self._get_session().request(
                method, url, data=body_text.encode() if body is not None else None, headers=headers
            ) as resp:
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
                if self.used_weight_header is not None and self.on_used_weight is not None:
                    used = resp.headers.get(self.used_weight_header)
                    if used is not None and used.isascii() and used.isdigit() and len(used) < 16:
                        self.on_used_weight(int(used))
                cap = self.max_body_bytes
                if status >= 400:
                    cap = min(cap, ERROR_BODY_BYTES)
                raw, over = await _read_capped(resp, cap)
                if over:
                    resp.close()  # drop the connection: the rest of the body is never read
        except aiohttp.ClientConnectorCertificateError as exc:
            cert_err = exc.certificate_error
            reason = getattr(cert_err, "verify_message", None) or str(cert_err)
            raise RestError(
                UNREACHABLE,
                CERTIFICATE,
                reason,  # OpenSSL's: "unable to get local issuer certificate", ...
                method=method,
                path=path_q,
            ) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            if self.recorder is not None:
                self.recorder.rest(method, path_q, UNREACHABLE, b"", None)
            raise RestError(
                UNREACHABLE,
                "unreachable",
                f"{type(exc).__name__}: {exc}",
                method=method,
                path=path_q,
            ) from exc
        if self.recorder is not None:
            self.recorder.rest(method, path_q, status, raw, retry_after)
        if over and status < 400:
            self.bodies_refused += 1
            self._log_once(BODY_TOO_LARGE, f"answer body over {self.max_body_bytes} bytes refused")
            raise RestError(
                status,
                BODY_TOO_LARGE,
                f"answer body over max_rest_body_bytes ({self.max_body_bytes} bytes): refused",
                method=method,
                path=path_q,
            )
        if status >= 400:
            code, message = "http_error", raw[:200].decode(errors="replace")
            try:
                err = msgspec.json.decode(raw)
                if isinstance(err, dict) and isinstance(err.get("error"), dict):
                    code = str(err["error"].get("code", code))[:100]
                    message = str(err["error"].get("message", ""))[:500]
                elif isinstance(err, dict) and "code" in err and "msg" in err:  # Binance's shape
                    code = str(err["code"])[:100]
                    message = str(err["msg"])[:500]
            except (msgspec.DecodeError, RecursionError):
                pass
            if status in self.rate_limit_statuses:
                delay, note = parse_retry_after(retry_after, self.max_retry_after_s)
                if note is not None:
                    self.retry_after_fixed += 1
                    self._log_once("retry_after", note)
                    message = f"{message} ({note})" if message else note
                if status != 429:  # a ban (Binance 418): every call stops for its length
                    self.banned_until = max(self.banned_until, time.monotonic() + delay)
                    log.warning("%s answered %d: no call for %.1fs", self.base_url, status, delay)
                raise RateLimitedError(message, delay, method=method, path=path_q)
            if status == 404 and code == "unknown_order":
                raise UnknownOrderError(status, code, message, method=method, path=path_q)
            raise RestError(status, code, message, method=method, path=path_q)
        return raw

    # -- a venue's own calls (signed orders) ------------------------------------------------
    async def send_call(self, call: HttpCall) -> tuple[int, bytes]:
        """Send ``call`` exactly as built (its bytes were signed) and return the status and
        body (capped like every answer) for the venue's codec to read. Raises only what no
        codec can: unreachable, a certificate refused, a body over the cap, the venue's rate
        limit (its ``rate_limit_statuses``: RateLimitedError with Retry-After). Never
        recorded: signed calls carry the key."""
        banned_s = self.banned_until - time.monotonic()
        if banned_s > 0:
            raise RateLimitedError(
                f"not sent: the venue banned this client, {banned_s:.1f}s left",
                banned_s,
                method=call.method,
                path=call.path,
            )
        self.requests += 1
        url = URL(self.base_url + call.target, encoded=True)
        try:
            async with self._get_session().request(
                call.method, url, data=call.body or None, headers=call.headers
            ) as resp:
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
                raw, over = await _read_capped(resp, self.max_body_bytes)
                if over:
                    resp.close()
        except aiohttp.ClientConnectorCertificateError as exc:
            reason = getattr(exc.certificate_error, "verify_message", None) or str(exc)
            raise RestError(
                UNREACHABLE, CERTIFICATE, reason, method=call.method, path=call.path
            ) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RestError(
                UNREACHABLE,
                "unreachable",
                f"{type(exc).__name__}: {exc}",
                method=call.method,
                path=call.path,
            ) from exc
        if over:
            self.bodies_refused += 1
            raise RestError(
                status,
                BODY_TOO_LARGE,
                f"answer body over max_rest_body_bytes ({self.max_body_bytes} bytes): refused",
                method=call.method,
                path=call.path,
            )
        if status in self.rate_limit_statuses:
            delay, _note = parse_retry_after(retry_after, self.max_retry_after_s)
            if status != 429:
                self.banned_until = max(self.banned_until, time.monotonic() + delay)
            raise RateLimitedError(
                raw[:200].decode(errors="replace"), delay, method=call.method, path=call.path
            )
        return status, raw

    # -- market data ---------------------------------------------------------------------
    async def instruments(self) -> list[Instrument]:
        return frames.decode_instruments(await self.request_bytes("GET", "/v1/instruments"))

    async def snapshot(self, symbol: str, depth: int | None = None) -> frames.Snapshot:
        """``GET /v1/orderbook/{symbol}``; FrameError when the body is not a VTS/1 snapshot or
        has more than ``max_snapshot_levels`` levels on a side."""
        params = {"depth": str(depth)} if depth is not None else None
        raw = await self.request_bytes(
            "GET", f"/v1/orderbook/{quote(symbol, safe='')}", params=params
        )
        return self._capped_snapshot(raw, symbol, frames.decode_snapshot)

    async def venue_instruments(self, venue: Venue) -> list[Instrument]:
        """The venue's instruments endpoint, decoded by its adapter."""
        return venue.decode_instruments(await self.request_bytes("GET", venue.instruments_target()))

    async def venue_snapshot(self, venue: Venue, symbol: str, depth: int | None) -> frames.Snapshot:
        """The venue's depth snapshot of ``symbol``, decoded by its adapter, with the same
        ``max_snapshot_levels`` checks as :meth:`snapshot`."""
        raw = await self.request_bytes("GET", venue.snapshot_target(symbol, depth))
        return self._capped_snapshot(raw, symbol, lambda b: venue.decode_snapshot(b, symbol))

    def _capped_snapshot(
        self, raw: bytes, symbol: str, decode: Callable[[bytes], frames.Snapshot]
    ) -> frames.Snapshot:
        cap = self.max_snapshot_levels
        channel = f"orderbook:{symbol}"
        # Each level is one JSON array, so a VTS/1 snapshot with at most `cap` levels a side
        # holds at most 2 * cap + 2 '[' (~1 ms for 16 MiB): past that, refuse before msgspec
        # builds a list of millions of levels.
        brackets = raw.count(b"[")
        if brackets > 2 * cap + 2:
            raise FrameError(
                f"snapshot body has {brackets} '[', more than {cap} levels a side can need "
                "(max_snapshot_levels): refused",
                channel=channel,
            )
        snap = decode(raw)
        for side, levels in (("bids", snap.bids), ("asks", snap.asks)):
            if len(levels) > cap:
                raise FrameError(
                    f"snapshot has {len(levels)} levels, over max_snapshot_levels ({cap})",
                    channel=channel,
                    field=side,
                )
        return snap

    # -- orders --------------------------------------------------------------------------
    async def place_order(self, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = await self.request("POST", "/v1/orders", body=body, signed=True)
        return out

    async def list_orders(self, status: str | None = "open", symbol: str | None = None) -> Any:
        params: dict[str, str] = {}
        if status is not None:
            params["status"] = status
        if symbol is not None:
            params["symbol"] = symbol
        return await self.request("GET", "/v1/orders", params=params or None, signed=True)

    async def get_order(self, order_id: str) -> Any:
        return await self.request("GET", f"/v1/orders/{quote(order_id, safe='')}", signed=True)

    async def cancel_order(self, order_id: str) -> Any:
        return await self.request("DELETE", f"/v1/orders/{quote(order_id, safe='')}", signed=True)

    async def cancel_all(self, symbol: str | None = None) -> Any:
        params = {"symbol": symbol} if symbol else None
        return await self.request("DELETE", "/v1/orders", params=params, signed=True)
