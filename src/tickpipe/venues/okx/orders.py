"""OKX v5 spot limit orders: the :class:`~tickpipe.venues.trading.OrderCodec` of venue ``okx``.
Pure: it builds signed :class:`~tickpipe.venues.trading.HttpCall` values and reads OKX's
answers; the client shell (``client/signed_orders.py``) sends, times and rate-limits them.

Endpoints (OKX API v5 reference, https://www.okx.com/docs-v5/en/, "Trade" and "Public Data"),
all signed with :mod:`.auth` but the clock, with OKX's rate limits:

- place: ``POST /api/v5/trade/order`` ``{"instId","tdMode":"cash","clOrdId","side",
  "ordType":"limit","px","sz"}`` (60 per 2 s, per user and instId);
- open orders: ``GET /api/v5/trade/orders-pending?instType=SPOT[&instId=]`` (60 per 2 s per
  user; one page: the newest 100);
- get: ``GET /api/v5/trade/order?ordId=&instId=``; find by client order id:
  ``GET /api/v5/trade/order?clOrdId=&instId=`` (60 per 2 s, per user and instId);
- cancel: ``POST /api/v5/trade/cancel-order`` ``{"instId","ordId"}`` (60 per 2 s, per user and
  instId);
- dead man's switch: ``POST /api/v5/trade/cancel-all-after`` ``{"timeOut":"60"}`` (0, or
  10..120 s; 1 per s per user);
- clock: ``GET /api/v5/public/time`` (unsigned; 10 per 2 s per IP).

- **Idempotency**: the client order id is OKX's ``clOrdId`` (1-32 ASCII letters or digits).
  OKX refuses a ``clOrdId`` it already has (``sCode`` 51016 "Duplicated clOrdId") rather than
  answering with the first order: that becomes
  :class:`~tickpipe.errors.DuplicateOrderError`, and the shell then finds the order with
  :meth:`OkxOrderCodec.find_by_client_id`, so a retry after a lost answer yields one order.
- **Cancel all**: OKX has no one-call cancel-all for spot (``mass-cancel`` is for options only,
  ``cancel-batch-orders`` needs the ids): :meth:`OkxOrderCodec.cancel_all` is None and the
  client cancels each own order.
- **Dead man's switch**: ``cancel-all-after`` cancels every pending order of the key
  ``timeOut`` s after the last call; ``timeOut`` is the client's ``dead_man_timeout_s`` rounded
  up to whole seconds and held to OKX's range (10..120; 0 disarms).
- **Answers**: ``{"code":"0","msg":"","data":[...]}``; a refused order or cancel is
  ``code`` "1" with the reason in ``data[i].sCode``/``sMsg``. Status: ``live`` and
  ``partially_filled`` -> open, ``filled``, ``canceled``/``mmp_canceled`` -> cancelled.
  A place or cancel answer holds only the ids: the order is the one sent (open), or cancelled.
- **Errors** (OKX's code -> tickpipe): 50100, 50101, 50103-50107, 50110, 50111, 50113, 50114
  (key, passphrase, signature, IP: :data:`AUTH_CODES`) -> CredentialsRejected (fatal);
  50102 / 50112 (timestamp expired / malformed) -> RestError ``clock_skew`` (the shell re-reads
  OKX's clock before the next call);
  50011, 50061 -> RateLimitedError; 51603, 51400-51402 (no such order, or already
  cancelled or filled) -> UnknownOrderError; 51016 -> DuplicateOrderError; 50001, 50004,
  50013, 50026 and any 5xx -> RestError ``venue_error`` (status >= 500: retried with the same
  ``clOrdId``); any other code -> RestError ``rejected`` naming OKX's code and message.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlencode

import msgspec

from tickpipe.errors import (
    ConfigError,
    CredentialsRejected,
    DuplicateOrderError,
    RateLimitedError,
    RestError,
    UnknownOrderError,
)
from tickpipe.venues.okx import auth
from tickpipe.venues.trading import Credentials, HttpCall, NewOrder, Order

PLACE_PATH = "/api/v5/trade/order"
ORDER_PATH = "/api/v5/trade/order"
PENDING_PATH = "/api/v5/trade/orders-pending"
CANCEL_PATH = "/api/v5/trade/cancel-order"
CANCEL_ALL_AFTER_PATH = "/api/v5/trade/cancel-all-after"
TIME_PATH = "/api/v5/public/time"

ORDERS_PER_2S = 60
"""Place, cancel and get: 60 requests per 2 s per user and instId (each its own count);
orders-pending: 60 per 2 s per user."""
DEAD_MAN_PER_S = 1
"""``cancel-all-after``: 1 request per second per user."""
TIME_PER_2S = 10
"""``GET /api/v5/public/time``: 10 requests per 2 s per IP."""
DEAD_MAN_RANGE_S = (10, 120)
"""``timeOut`` of ``cancel-all-after``: 0 (disarm) or 10..120 s."""
PENDING_PAGE = 100
"""``orders-pending`` answers at most 100 orders a page (the newest first)."""
CL_ORD_ID_MAX = 32

AUTH_CODES: dict[str, str] = {
    "50100": "API frozen",
    "50101": "APIKey does not match current environment",
    "50103": 'Request header "OK-ACCESS-KEY" cannot be empty',
    "50104": 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty',
    "50105": 'Request header "OK-ACCESS-PASSPHRASE" incorrect',
    "50106": 'Request header "OK-ACCESS-SIGN" cannot be empty',
    "50107": 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty',
    "50110": "Your IP is not in the whitelist",
    "50111": "Invalid OK-ACCESS-KEY",
    "50113": "Invalid Sign",
    "50114": "Invalid authorization",
}
"""OKX codes that refuse the key itself (all HTTP 401): fatal, never retried."""
TIMESTAMP_CODES = frozenset({"50102", "50112"})
RATE_CODES = frozenset({"50011", "50061"})
BUSY_CODES = frozenset({"50001", "50004", "50013", "50026"})
UNKNOWN_ORDER_CODES = frozenset({"51603", "51400", "51401", "51402"})
DUPLICATE_CODE = "51016"
RATE_WAIT_S = 2.0
"""Wait after an OKX rate-limit answer (OKX sends no Retry-After; its windows are 2 s)."""

STATES: dict[str, str] = {
    "live": "open",
    "partially_filled": "open",
    "filled": "filled",
    "canceled": "cancelled",
    "mmp_canceled": "cancelled",
}

_CL_ORD_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
_INST_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")
_json = msgspec.json.Decoder()
_encode = msgspec.json.Encoder().encode


def is_client_order_id(text: str) -> bool:
    """OKX's ``clOrdId``: 1-32 ASCII letters or digits."""
    return bool(_CL_ORD_ID_RE.match(text)) and text.isascii()


def raise_for(status: int, code: str, msg: str) -> None:
    """Raise the typed error for an OKX error ``code`` (see the module docstring)."""
    text = f"okx {code}: {msg[:200]}" if msg else f"okx {code}"
    if code in AUTH_CODES:
        raise CredentialsRejected(
            status,
            "auth_failed",
            f"OKX refused the API key ({text}): check the key, secret and passphrase "
            "(and the key's IP whitelist); not retried",
        )
    if code in TIMESTAMP_CODES:
        raise RestError(
            status,
            "clock_skew",
            f"{text} (the request's OK-ACCESS-TIMESTAMP is more than 30 s off OKX's clock: "
            "the next call reads OKX's clock again)",
        )
    if code in RATE_CODES:
        raise RateLimitedError(text, RATE_WAIT_S)
    if code in UNKNOWN_ORDER_CODES:
        raise UnknownOrderError(status, "unknown_order", text)
    if code == DUPLICATE_CODE:
        raise DuplicateOrderError(status, "duplicate_client_order_id", text)
    if code in BUSY_CODES or status >= 500:
        raise RestError(status if status >= 500 else 503, "venue_error", text)
    raise RestError(status, "rejected", text)


def _envelope(status: int, body: bytes) -> list[dict[str, Any]]:
    """``data`` of an OKX answer whose ``code`` is "0" and whose every item's ``sCode`` (when
    it has one) is "0"; else the typed error."""
    try:
        obj = _json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        obj = None
    if not isinstance(obj, dict) or not isinstance(obj.get("code"), str):
        shown = body[:120].decode(errors="replace")
        raise RestError(
            status, "venue_error", f"okx answered HTTP {status} with no OKX body: {shown!r}"
        )
    code, msg = obj["code"], obj.get("msg")
    msg = msg if isinstance(msg, str) else ""
    data = obj.get("data")
    items = [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
    for item in items:  # per-item result: "1" (all failed) or "2" (some) carry it here
        s_code = item.get("sCode")
        if isinstance(s_code, str) and s_code not in ("", "0"):
            s_msg = item.get("sMsg")
            raise_for(status, s_code, s_msg if isinstance(s_msg, str) else "")
    if code != "0":
        raise_for(status, code, msg)
    if status >= 400:
        raise_for(status, code, msg or f"HTTP {status}")
    return items


def _text(item: dict[str, Any], name: str) -> str:
    v = item.get(name)
    return v if isinstance(v, str) else ""


def order_of(item: dict[str, Any]) -> Order:
    """One order of an ``orders-pending`` or ``trade/order`` answer."""
    oid = _text(item, "ordId")
    if not oid:
        raise RestError(200, "venue_error", f"okx answer item is not an order: {item!r:.200}")
    return Order(
        order_id=oid,
        client_order_id=_text(item, "clOrdId"),
        symbol=_text(item, "instId"),
        side=_text(item, "side"),
        price=_text(item, "px"),
        size=_text(item, "sz"),
        status=STATES.get(_text(item, "state"), "open"),  # unknown: still at risk
        filled_size=_text(item, "accFillSz") or "0",
        raw=item,
    )


class OkxOrderCodec:
    """OKX's spot limit orders (see the module docstring). Knobs:

    - ``simulated`` (False): OKX Demo Trading, every request with ``x-simulated-trading: 1``
      (same REST host; a demo key).
    - ``orders_per_s`` (20.0), ``orders_burst`` (20): the client's bucket over every order call;
      burst + 2 s of refill = 60, OKX's 60 requests per 2 s (per instId for place, cancel and
      get, per user for orders-pending) is never exceeded. Lower: slower bursts of cancels.
    - ``dead_man_refresh_s`` (10.0 s): how often the client re-arms ``cancel-all-after`` while
      healthy (at most a third of ``dead_man_timeout_s``): one request each (OKX allows 1/s).
    - ``dead_man_range_s`` ((10, 120)): the ``timeOut`` OKX accepts; a timeout outside is
      held to it. Only a rehearsal against the reference gateway lowers it (with the dialect's
      ``dead_man_min_s``).
    """

    venue = "okx"
    needs_passphrase = True
    dead_man_per_symbol = False
    cancel_needs_symbol = True

    def __init__(
        self,
        *,
        simulated: bool = False,
        orders_per_s: float = 20.0,
        orders_burst: int = 20,
        dead_man_refresh_s: float = 10.0,
        dead_man_range_s: tuple[int, int] = DEAD_MAN_RANGE_S,
    ) -> None:
        lo, hi = dead_man_range_s
        if not (orders_per_s > 0 and orders_burst >= 1 and dead_man_refresh_s > 0):
            raise ConfigError(
                "okx orders: orders_per_s, orders_burst and dead_man_refresh_s must be > 0, got "
                f"{orders_per_s}, {orders_burst}, {dead_man_refresh_s}"
            )
        if not 1 <= lo <= hi:
            raise ConfigError(f"okx orders: dead_man_range_s must be 1 <= lo <= hi, got {lo, hi}")
        self.simulated = simulated
        self.orders_per_s = orders_per_s
        self.orders_burst = orders_burst
        self.dead_man_refresh_s: float | None = dead_man_refresh_s
        self.dead_man_range_s = (lo, hi)

    # -- building -----------------------------------------------------------------------------
    def _call(
        self,
        creds: Credentials,
        ts_ms: int,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: dict[str, str] | None = None,
    ) -> HttpCall:
        q = urlencode(query) if query else ""
        raw = _encode(body) if body is not None else b""
        target = path + ("?" + q if q else "")
        headers = auth.signed_headers(creds, ts_ms, method, target, raw, simulated=self.simulated)
        return HttpCall(method, path, q, headers, raw)

    @staticmethod
    def _inst(symbol: str | None, what: str, order_id: str = "") -> str:
        if symbol is None:
            raise ConfigError(
                f"okx {what}{' of order ' + order_id[:40] if order_id else ''}: OKX needs the "
                "order's instId, and this client did not place it (only its own orders' "
                "instIds are known)"
            )
        if not _INST_ID_RE.match(symbol) or not symbol.isascii():
            raise ConfigError(f"okx {what}: {symbol[:60]!r} is not an OKX instId (BTC-USDT)")
        return symbol

    def time_call(self) -> HttpCall | None:
        headers = {auth.SIMULATED_HEADER: "1"} if self.simulated else {}
        return HttpCall("GET", TIME_PATH, headers=headers)

    def place(self, creds: Credentials, ts_ms: int, order: NewOrder) -> HttpCall:
        inst = self._inst(order.symbol, "place")
        if not is_client_order_id(order.client_order_id):
            raise ConfigError(
                f"okx place: client_order_id {order.client_order_id[:60]!r} is not an OKX "
                f"clOrdId (1-{CL_ORD_ID_MAX} ASCII letters or digits)"
            )
        if order.side not in ("buy", "sell"):
            raise ConfigError(f"okx place: side must be buy or sell, got {order.side!r}")
        body = {
            "instId": inst,
            "tdMode": "cash",
            "clOrdId": order.client_order_id,
            "side": order.side,
            "ordType": "limit",
            "px": order.price,
            "sz": order.size,
        }
        return self._call(creds, ts_ms, "POST", PLACE_PATH, body=body)

    def open_orders(self, creds: Credentials, ts_ms: int, symbol: str | None) -> HttpCall:
        query = {"instType": "SPOT"}
        if symbol is not None:
            query["instId"] = self._inst(symbol, "open_orders")
        return self._call(creds, ts_ms, "GET", PENDING_PATH, query=query)

    def get_order(
        self, creds: Credentials, ts_ms: int, symbol: str | None, order_id: str
    ) -> HttpCall:
        inst = self._inst(symbol, "get_order", order_id)
        return self._call(creds, ts_ms, "GET", ORDER_PATH, {"ordId": order_id, "instId": inst})

    def find_by_client_id(
        self, creds: Credentials, ts_ms: int, symbol: str, client_order_id: str
    ) -> HttpCall:
        """The order placed under ``client_order_id`` (OKX answers the latest one with it)."""
        inst = self._inst(symbol, "find order")
        query = {"clOrdId": client_order_id, "instId": inst}
        return self._call(creds, ts_ms, "GET", ORDER_PATH, query)

    def cancel(self, creds: Credentials, ts_ms: int, symbol: str | None, order_id: str) -> HttpCall:
        inst = self._inst(symbol, "cancel_order", order_id)
        body = {"instId": inst, "ordId": order_id}
        return self._call(creds, ts_ms, "POST", CANCEL_PATH, body=body)

    def cancel_all(self, creds: Credentials, ts_ms: int, symbol: str | None) -> HttpCall | None:
        return None  # no spot cancel-all at OKX: the client cancels each own order

    def dead_man_timeout(self, timeout_s: float) -> int:
        """``timeOut`` for a timeout in seconds: whole seconds, rounded up, within
        ``dead_man_range_s``; 0 for <= 0 (disarm)."""
        if not timeout_s > 0:
            return 0
        lo, hi = self.dead_man_range_s
        return min(max(math.ceil(timeout_s), lo), hi)

    def arm_dead_man(
        self, creds: Credentials, ts_ms: int, timeout_s: float, symbol: str | None
    ) -> HttpCall | None:
        body = {"timeOut": str(self.dead_man_timeout(timeout_s))}
        return self._call(creds, ts_ms, "POST", CANCEL_ALL_AFTER_PATH, body=body)

    # -- reading ------------------------------------------------------------------------------
    def decode_time(self, status: int, body: bytes) -> int:
        items = _envelope(status, body)
        ts = _text(items[0], "ts") if items else ""
        if not (ts.isascii() and ts.isdigit()):
            raise RestError(status, "venue_error", f"okx time answer has no ts: {body[:120]!r}")
        return int(ts)

    def decode_order(self, status: int, body: bytes, sent: NewOrder | None) -> Order:
        items = _envelope(status, body)
        if not items:
            raise RestError(status, "venue_error", f"okx answer has no data: {body[:120]!r}")
        item = items[0]
        if "state" in item:  # a whole order (GET /api/v5/trade/order)
            return order_of(item)
        oid = _text(item, "ordId")
        if not oid:
            raise RestError(status, "venue_error", f"okx answer names no ordId: {item!r:.200}")
        if sent is not None:  # a place answer: ids only, the order is the one sent
            return Order(
                oid,
                _text(item, "clOrdId") or sent.client_order_id,
                sent.symbol,
                sent.side,
                sent.price,
                sent.size,
                "open",
                "0",
                raw=item,
            )
        # a cancel answer: ids only, accepted
        return Order(oid, _text(item, "clOrdId"), "", "", "", "", "cancelled", "", raw=item)

    def decode_orders(self, status: int, body: bytes) -> list[Order]:
        return [order_of(item) for item in _envelope(status, body)]

    def decode_cancel_all(self, status: int, body: bytes) -> list[str]:
        """Ids of a ``cancel-batch-orders``-shaped answer (never asked: no spot cancel-all)."""
        return [oid for item in _envelope(status, body) if (oid := _text(item, "ordId"))]

    def decode_ack(self, status: int, body: bytes) -> None:
        _envelope(status, body)
