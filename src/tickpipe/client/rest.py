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
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import msgspec
from yarl import URL

from tickpipe.errors import RateLimitedError, RestError, UnknownOrderError
from tickpipe.protocol import frames
from tickpipe.protocol.instruments import Instrument

UNREACHABLE = 0


def is_retryable(exc: RestError) -> bool:
    """5xx, 429 and no answer at all are worth retrying; any other 4xx is not."""
    return exc.status == UNREACHABLE or exc.status == 429 or exc.status >= 500


def _retry_after(value: str | None) -> float:
    if value is None:
        return 1.0
    try:
        v = float(value)
    except ValueError:
        return 1.0
    return v if v >= 0 else 1.0


class RestClient:
    """Signed REST calls on one session. ``close()`` releases the session and its sockets."""

    def __init__(self, base_url: str, key: str, secret: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        self._last_ts_ms = 0  # last X-VT-TS signed: each signed call gets a later one

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=32, enable_cleanup_closed=True),
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
        except msgspec.DecodeError as exc:
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
        headers = {"X-VT-KEY": self.key}
        if signed:
            # strictly increasing: two identical calls in one ms must not share a signature
            # (the gateway refuses a reused one as a replay)
            ts_ms = self._last_ts_ms = max(int(time.time() * 1000), self._last_ts_ms + 1)
            headers = frames.rest_headers(self.key, self._secret, ts_ms, method, path_q, body_text)
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = URL(self.base_url + path_q, encoded=True)
        self.requests += 1
        try:
            async with self._get_session().request(
                method, url, data=body_text.encode() if body is not None else None, headers=headers
            ) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RestError(
                UNREACHABLE,
                "unreachable",
                f"{type(exc).__name__}: {exc}",
                method=method,
                path=path_q,
            ) from exc
        if status >= 400:
            code, message = "http_error", raw[:200].decode(errors="replace")
            try:
                err = msgspec.json.decode(raw)
                if isinstance(err, dict) and isinstance(err.get("error"), dict):
                    code = str(err["error"].get("code", code))
                    message = str(err["error"].get("message", ""))
            except msgspec.DecodeError:
                pass
            if status == 429:
                raise RateLimitedError(
                    message, _retry_after(retry_after), method=method, path=path_q
                )
            if status == 404 and code == "unknown_order":
                raise UnknownOrderError(status, code, message, method=method, path=path_q)
            raise RestError(status, code, message, method=method, path=path_q)
        return raw

    # -- market data ---------------------------------------------------------------------
    async def instruments(self) -> list[Instrument]:
        return frames.decode_instruments(await self.request_bytes("GET", "/v1/instruments"))

    async def snapshot(self, symbol: str, depth: int | None = None) -> frames.Snapshot:
        params = {"depth": str(depth)} if depth is not None else None
        return frames.decode_snapshot(
            await self.request_bytes(
                "GET", f"/v1/orderbook/{quote(symbol, safe='')}", params=params
            )
        )

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
