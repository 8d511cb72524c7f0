"""Coinbase Advanced Trade orders, pure: the :class:`~tickpipe.venues.trading.OrderCodec` of
``venue="coinbase"`` (issue 17). Signing is :mod:`.auth` (a JWT per request).

Endpoints (docs.cdp.coinbase.com, "Advanced Trade API" REST reference; base
``https://api.coinbase.com``):

- place: ``POST /api/v3/brokerage/orders`` ``{"client_order_id", "product_id", "side":
  "BUY"|"SELL", "order_configuration": {"limit_limit_gtc": {"base_size", "limit_price",
  "post_only": false}}}``. ``client_order_id`` is the idempotency key: "if the ID provided is not
  unique, the order will not be created and the order corresponding with that ID will be
  returned instead", so a retry sends the same one. The answer is HTTP 200 either way:
  ``{"success": true, "success_response": {"order_id", "product_id", "side",
  "client_order_id"}, ...}`` (only ids: price and size come from the order sent, status
  ``open``) or ``{"success": false, "error_response": {"error", "message", "error_details",
  "new_order_failure_reason", ...}}`` (RestError ``rejected``).
- open orders: ``GET /api/v3/brokerage/orders/historical/batch?order_status=OPEN``
  (``&product_ids=SYMBOL``) -> ``{"orders": [order...], "has_next", "cursor"}``. No ``limit``
  is sent (Coinbase pages only when asked) and ``cursor`` is not followed.
- one order: ``GET /api/v3/brokerage/orders/historical/{order_id}`` -> ``{"order": {...}}``;
  404 ``NOT_FOUND`` for an id the key does not have (UnknownOrderError).
- cancel: ``POST /api/v3/brokerage/orders/batch_cancel`` ``{"order_ids": [id]}`` ->
  ``{"results": [{"success", "failure_reason", "order_id"}]}``: ``success`` true is a cancel
  (status ``cancelled``); ``UNKNOWN_CANCEL_ORDER`` -> UnknownOrderError;
  ``ORDER_IS_FULLY_FILLED`` -> status ``filled``; ``DUPLICATE_CANCEL_REQUEST`` (a cancel is
  already under way) -> status ``cancelled``; any other reason -> RestError ``rejected``.
- cancel all: Coinbase has no such endpoint: :meth:`CoinbaseOrders.cancel_all` is None and
  the shell lists the open orders and cancels each.
- dead man's switch: **none**. Coinbase Advanced Trade has no cancel-after / countdown /
  cancel-on-disconnect for spot orders: :meth:`CoinbaseOrders.arm_dead_man` is None and
  ``dead_man_refresh_s`` None. While our network is cut, orders stay at Coinbase until the
  client's own cancels (retried in the background) get through.
- server time: ``GET /api/v3/brokerage/time`` (public) -> ``{"iso", "epochSeconds",
  "epochMillis"}``: the clock the JWT's ``nbf``/``exp`` are read against.

Status (``order.status``): ``OPEN``, ``PENDING``, ``QUEUED``, ``CANCEL_QUEUED``,
``EDIT_QUEUED``, ``UNKNOWN_ORDER_STATUS`` -> ``open`` (may still rest: kept and cancelled on
going blind); ``FILLED`` -> ``filled``; ``CANCELLED`` -> ``cancelled``; ``EXPIRED`` ->
``expired``; ``FAILED`` -> ``rejected``.

HTTP errors: 401 (``Unauthorized``: a bad JWT, an unknown key) and 403 (``PERMISSION_DENIED``:
the key lacks the trade permission) -> CredentialsRejected; 404 -> UnknownOrderError; 429 ->
RateLimitedError; 5xx or an unreadable answer -> RestError ``venue_error``; any other 4xx ->
RestError ``rejected``. Messages quote the venue's ``error``/``message`` (clipped), never a
secret or a token.

Rate: private endpoints allow 30 requests a second per user ("REST API rate limits"); the
shell's bucket (``orders_per_s`` 15, ``orders_burst`` 15) sends at most 30 in any second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import msgspec
from cryptography.hazmat.primitives.asymmetric import ec

from tickpipe.errors import CredentialsRejected, RateLimitedError, RestError, UnknownOrderError
from tickpipe.venues.coinbase import auth
from tickpipe.venues.trading import Credentials, HttpCall, NewOrder, Order

PREFIX = "/api/v3/brokerage"
PLACE_PATH = f"{PREFIX}/orders"
LIST_PATH = f"{PREFIX}/orders/historical/batch"
ORDER_PATH = f"{PREFIX}/orders/historical/"  # + order id
CANCEL_PATH = f"{PREFIX}/orders/batch_cancel"
TIME_PATH = f"{PREFIX}/time"
MAX_CANCEL_IDS = 100
"""``order_ids`` per ``batch_cancel`` (Coinbase: at most 100)."""
PRIVATE_REQUESTS_PER_S = 30
"""Coinbase's documented limit on private REST endpoints, per user."""

STATUS = {
    "OPEN": "open",
    "PENDING": "open",
    "QUEUED": "open",
    "CANCEL_QUEUED": "open",
    "EDIT_QUEUED": "open",
    "UNKNOWN_ORDER_STATUS": "open",
    "FILLED": "filled",
    "CANCELLED": "cancelled",
    "EXPIRED": "expired",
    "FAILED": "rejected",
}
"""Coinbase ``status`` -> tickpipe's normalised status (anything else: ``open``, the safe
side: an order that may rest is kept and cancelled on going blind)."""

_json = msgspec.json.Encoder()
_MAX_TEXT = 200


def _clip(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."


def _body(status: int, body: bytes) -> Any:
    """The answer as JSON, after the HTTP status was checked (RestError otherwise)."""
    _check_status(status, body)
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise RestError(
            status,
            "venue_error",
            f"coinbase answered {status} with unreadable JSON: "
            f"{_clip(body[:200].decode(errors='replace'))}",
        ) from None


def _error_text(body: bytes) -> str:
    """What an error answer says: ``error: message`` of the JSON, else the text."""
    try:
        obj = msgspec.json.decode(body)
    except msgspec.DecodeError:
        obj = None
    if isinstance(obj, dict):
        parts = [str(obj[k]) for k in ("error", "message") if obj.get(k)]
        details = obj.get("error_details")
        if details and details != obj.get("message"):
            parts.append(str(details))
        if parts:
            return _clip(": ".join(parts))
    text = body[:200].decode(errors="replace").strip()
    return _clip(text) if text else "(empty body)"


def _check_status(status: int, body: bytes) -> None:
    if 200 <= status < 300:
        return
    said = _error_text(body)
    if status in (401, 403):
        raise CredentialsRejected(
            status,
            "auth_failed",
            f"coinbase refused the API key ({status} {said}): check the key name "
            "(organizations/{org_id}/apiKeys/{key_id}), that the secret is that key's EC "
            "private key (ES256), that the key may trade, and the clock",
        )
    if status == 404:
        raise UnknownOrderError(404, "unknown_order", f"coinbase: {said}")
    if status == 429:
        raise RateLimitedError(f"coinbase rate limit: {said}", 1.0)
    if status >= 500:
        raise RestError(status, "venue_error", f"coinbase answered {status}: {said}")
    raise RestError(status, "rejected", f"coinbase refused the request ({status}): {said}")


def _limit_config(obj: dict[str, Any]) -> dict[str, Any]:
    """The one ``order_configuration`` variant of an order (``limit_limit_gtc`` for ours)."""
    config = obj.get("order_configuration")
    if isinstance(config, dict):
        for value in config.values():
            if isinstance(value, dict):
                return value
    return {}


def _text(obj: dict[str, Any], name: str, default: str = "") -> str:
    value = obj.get(name, default)
    return value if isinstance(value, str) else default


def order_of(obj: Any) -> Order:
    """An order object (``{"order_id", "product_id", "side", "status", "order_configuration",
    "filled_size", ...}``) as an :class:`Order`; RestError ``venue_error`` when it is not one."""
    if not isinstance(obj, dict) or not isinstance(obj.get("order_id"), str):
        raise RestError(200, "venue_error", f"coinbase: not an order: {_clip(repr(obj))}")
    config = _limit_config(obj)
    venue_status = _text(obj, "status", "UNKNOWN_ORDER_STATUS")
    return Order(
        order_id=obj["order_id"],
        client_order_id=_text(obj, "client_order_id"),
        symbol=_text(obj, "product_id"),
        side=_text(obj, "side").lower(),
        price=_text(config, "limit_price"),
        size=_text(config, "base_size"),
        status=STATUS.get(venue_status, "open"),
        filled_size=_text(obj, "filled_size", "0") or "0",
        raw=obj,
    )


def _placed(status: int, obj: dict[str, Any], sent: NewOrder | None) -> Order:
    if obj.get("success") is not True:
        err = obj.get("error_response")
        err = err if isinstance(err, dict) else {}
        reason = (
            _text(err, "new_order_failure_reason")
            or _text(err, "preview_failure_reason")
            or _text(obj, "failure_reason")
        )
        what = ": ".join(
            p
            for p in (_text(err, "error"), _text(err, "message"), _text(err, "error_details"))
            if p
        )
        raise RestError(
            status,
            "rejected",
            _clip(f"coinbase refused the order ({reason or 'no reason given'}): {what or '-'}"),
        )
    ok = obj.get("success_response")
    ok = ok if isinstance(ok, dict) else {}
    oid = _text(ok, "order_id") or _text(obj, "order_id")
    if not oid:
        raise RestError(status, "venue_error", "coinbase: a successful place without order_id")
    return Order(
        order_id=oid,
        client_order_id=_text(ok, "client_order_id") or (sent.client_order_id if sent else ""),
        symbol=_text(ok, "product_id") or (sent.symbol if sent else ""),
        side=(_text(ok, "side").lower() or (sent.side if sent else "")),
        price=sent.price if sent else "",
        size=sent.size if sent else "",
        status="open",
        filled_size="0",
        raw=obj,
    )


def _cancelled(status: int, result: Any) -> Order:
    if not isinstance(result, dict) or not isinstance(result.get("order_id"), str):
        raise RestError(status, "venue_error", f"coinbase: not a cancel result: {_clip(result)}")
    oid = result["order_id"]
    reason = _text(result, "failure_reason")
    if result.get("success") is True:
        final = "cancelled"
    elif reason == "UNKNOWN_CANCEL_ORDER":
        raise UnknownOrderError(404, "unknown_order", f"coinbase: no order {_clip(oid)} to cancel")
    elif reason == "ORDER_IS_FULLY_FILLED":
        final = "filled"
    elif reason == "DUPLICATE_CANCEL_REQUEST":
        final = "cancelled"  # a cancel of it is already under way
    else:
        raise RestError(
            status,
            "rejected",
            f"coinbase refused to cancel {_clip(oid)}: {reason or 'no reason given'}",
        )
    return Order(oid, "", "", "", "", "", final, "", raw=result)


class CoinbaseOrders:
    """The codec (see the module docstring). ``jwt_host`` (``api.coinbase.com``): the host the
    JWT's ``uri`` claim names; ``nonce``: the JWT header nonce (random hex; tests fix it)."""

    venue = "coinbase"
    needs_passphrase = False
    orders_per_s = PRIVATE_REQUESTS_PER_S / 2
    orders_burst = PRIVATE_REQUESTS_PER_S // 2
    dead_man_refresh_s: float | None = None  # Coinbase has no dead man's switch
    dead_man_per_symbol = False
    cancel_needs_symbol = False

    def __init__(
        self, jwt_host: str = auth.REST_HOST, nonce: Callable[[int], str] | None = None
    ) -> None:
        self.jwt_host = jwt_host
        self._nonce = nonce if nonce is not None else auth.NonceCounter()
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}  # the last secret's loaded key

    # -- signing ----------------------------------------------------------------------------
    def _private_key(self, secret: str) -> ec.EllipticCurvePrivateKey:
        key = self._keys.get(secret)
        if key is None:
            key = auth.load_private_key(secret)  # ConfigError naming the problem, not the text
            self._keys = {secret: key}
        return key

    def _call(
        self,
        creds: Credentials,
        ts_ms: int,
        method: str,
        path: str,
        query: str = "",
        body: object = None,
    ) -> HttpCall:
        token = auth.sign(
            creds.key,
            self._private_key(creds.secret),
            method,
            path,
            now_s=ts_ms // 1000,
            nonce=self._nonce(ts_ms),
            host=self.jwt_host,
        )
        headers = {"Authorization": f"Bearer {token}"}
        data = b""
        if body is not None:
            data = _json.encode(body)
            headers["Content-Type"] = "application/json"
        return HttpCall(method, path, query, headers, data)

    # -- calls ------------------------------------------------------------------------------
    def time_call(self) -> HttpCall | None:
        return HttpCall("GET", TIME_PATH)

    def place(self, creds: Credentials, ts_ms: int, order: NewOrder) -> HttpCall:
        body = {
            "client_order_id": order.client_order_id,
            "product_id": order.symbol,
            "side": order.side.upper(),
            "order_configuration": {
                "limit_limit_gtc": {
                    "base_size": order.size,
                    "limit_price": order.price,
                    "post_only": False,
                }
            },
        }
        return self._call(creds, ts_ms, "POST", PLACE_PATH, body=body)

    def open_orders(self, creds: Credentials, ts_ms: int, symbol: str | None) -> HttpCall:
        query = "order_status=OPEN"
        if symbol is not None:
            query += "&product_ids=" + quote(symbol, safe="")
        return self._call(creds, ts_ms, "GET", LIST_PATH, query)

    def get_order(
        self, creds: Credentials, ts_ms: int, symbol: str | None, order_id: str
    ) -> HttpCall:
        return self._call(creds, ts_ms, "GET", ORDER_PATH + quote(order_id, safe=""))

    def cancel(self, creds: Credentials, ts_ms: int, symbol: str | None, order_id: str) -> HttpCall:
        return self._call(creds, ts_ms, "POST", CANCEL_PATH, body={"order_ids": [order_id]})

    def cancel_all(self, creds: Credentials, ts_ms: int, symbol: str | None) -> HttpCall | None:
        return None  # no cancel-all endpoint: the shell cancels each open order

    def arm_dead_man(
        self, creds: Credentials, ts_ms: int, timeout_s: float, symbol: str | None
    ) -> HttpCall | None:
        return None  # Coinbase has no dead man's switch

    # -- answers ----------------------------------------------------------------------------
    def decode_time(self, status: int, body: bytes) -> int:
        obj = _body(status, body)
        if isinstance(obj, dict):
            for name, scale in (("epochMillis", 1), ("epochSeconds", 1000)):
                value = obj.get(name)
                if isinstance(value, str | int) and str(value).isdigit():
                    return int(value) * scale
        raise RestError(status, "venue_error", f"coinbase time: no epochMillis in {_clip(obj)}")

    def decode_order(self, status: int, body: bytes, sent: NewOrder | None) -> Order:
        obj = _body(status, body)
        if isinstance(obj, dict):
            if "success" in obj:  # a place
                return _placed(status, obj, sent)
            if "order" in obj:  # one order
                return order_of(obj["order"])
            results = obj.get("results")
            if isinstance(results, list) and results:  # a cancel
                return _cancelled(status, results[0])
        raise RestError(status, "venue_error", f"coinbase: unexpected answer {_clip(obj)}")

    def decode_orders(self, status: int, body: bytes) -> list[Order]:
        obj = _body(status, body)
        orders = obj.get("orders") if isinstance(obj, dict) else None
        if not isinstance(orders, list):
            raise RestError(status, "venue_error", f"coinbase: no orders list in {_clip(obj)}")
        return [order_of(o) for o in orders]

    def decode_cancel_all(self, status: int, body: bytes) -> list[str]:
        obj = _body(status, body)
        results = obj.get("results") if isinstance(obj, dict) else None
        if not isinstance(results, list):
            raise RestError(status, "venue_error", f"coinbase: no results list in {_clip(obj)}")
        ok = [r for r in results if isinstance(r, dict) and r.get("success") is True]
        return [r["order_id"] for r in ok if isinstance(r.get("order_id"), str)]

    def decode_ack(self, status: int, body: bytes) -> None:
        _check_status(status, body)
