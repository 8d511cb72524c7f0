"""Binance spot and USD-M futures signed orders: the :class:`~tickpipe.venues.trading.OrderCodec`
(issue 17). Pure: it builds signed :class:`~tickpipe.venues.trading.HttpCall` values and
decodes the answers; the client shell (``client/signed_orders.py``) sends them. The reference
gateway's dialects encode their answers with :func:`encode_order` and take the limits here, so
both sides share one definition of each shape.

Sources (read 2026-07): [spot-rest] github.com/binance/binance-spot-api-docs ``rest-api.md``
(commit a5e0bc3): "New order (TRADE)", "Cancel order (TRADE)", "Cancel All Open Orders on a
Symbol (TRADE)", "Query order (USER_DATA)", "Current open orders (USER_DATA)", "Check server
time", "Query Unfilled Order Count"; ``errors.md``; ``enums.md`` "Order status";
``fix-api.md`` (client order id regex). [usdm] developers.binance.com/docs/derivatives/
usds-margined-futures: trade/rest-api New-Order, Cancel-Order, Cancel-All-Open-Orders,
Auto-Cancel-All-Open-Orders, Query-Order, Current-All-Open-Orders; market-data/rest-api
Check-Server-Time; error-code.

============================  ==================================  ===============================
call                          spot (``binance``)                  USD-M (``binance-usdm``)
============================  ==================================  ===============================
server time                   GET /api/v3/time                    GET /fapi/v1/time
place (LIMIT GTC)             POST /api/v3/order                  POST /fapi/v1/order
open orders                   GET /api/v3/openOrders [symbol]     GET /fapi/v1/openOrders [symbol]
get                           GET /api/v3/order                   GET /fapi/v1/order
cancel                        DELETE /api/v3/order                DELETE /fapi/v1/order
cancel all (per symbol)       DELETE /api/v3/openOrders           DELETE /fapi/v1/allOpenOrders
dead man's switch             none                                POST /fapi/v1/countdownCancelAll
============================  ==================================  ===============================

- Every call is signed (``auth.sign_params``): its parameters in the query string, then
  ``recvWindow`` (5000 ms), ``timestamp`` (the venue's clock, given) and ``signature``; the key
  in the ``X-MBX-APIKEY`` header. No body.
- Idempotency: ``newClientOrderId`` is the client order id (spot ``^[a-zA-Z0-9-_]{1,36}$``,
  USD-M ``^[\\.A-Z\\:/a-z0-9_-]{1,36}$``; another is a ConfigError before sending). Binance
  keeps it unique among *open* orders: a second place with the id of an open order is refused
  (spot ``-2010 Duplicate order sent.``, USD-M ``-4116 ClientOrderId is duplicated.``) ->
  :class:`~tickpipe.errors.DuplicateOrderError`, and the shell then reads that order by id
  (:meth:`BinanceOrderCodec.get_order_by_client_id`): a retry after a lost answer yields the
  one order. Once the first is filled or cancelled the id is free again, so a retry that comes
  after the order already finished places a second one: Binance promises no more.
- Cancel, get and cancel-all name the symbol (``cancel_needs_symbol``); Binance has no
  cancel-all across symbols (:meth:`~BinanceOrderCodec.cancel_all` without a symbol is None).
- Dead man's switch: USD-M only, per symbol: ``countdownCancelAll`` with ``countdownTime`` ms
  cancels the symbol's open orders when not refreshed in time (Binance's example: refresh every
  30 s with 120 s, ``dead_man_refresh_s`` 30). **Binance spot has none**:
  :meth:`~BinanceOrderCodec.arm_dead_man` returns None and ``dead_man_refresh_s`` is None, so
  on spot only the client's own cancels protect orders when it goes blind.
- Order rate (``orders_per_s`` / ``orders_burst``, a token bucket the shell spends on every
  signed call): spot's documented unfilled-order limit is 50 orders per 10 s ([spot-rest]
  "Query Unfilled Order Count"): 4 a second with a burst of 10 never passes 50 in any 10 s;
  USD-M's 1200 a minute and 300 per 10 s: 19 a second with a burst of 60 passes neither.
- Answers: status ``NEW``/``PARTIALLY_FILLED``/``PENDING_NEW``/``PENDING_CANCEL`` -> open,
  ``FILLED`` -> filled, ``CANCELED`` -> cancelled, ``REJECTED`` -> rejected, ``EXPIRED``/
  ``EXPIRED_IN_MATCH`` -> expired. Errors: 401, ``-2015``/``-2014``/``-1022``/``-1002`` ->
  :class:`~tickpipe.errors.CredentialsRejected`; ``-2013`` and ``-2011 Unknown order sent.`` ->
  :class:`~tickpipe.errors.UnknownOrderError`; ``-1021`` (timestamp outside recvWindow) ->
  RestError ``clock_skew``; 5xx, 408 and ``-1000``/``-1001``/``-1006``/``-1007``/``-1008``
  (execution status unknown) -> RestError ``venue_error`` with status 503 (retryable, with the
  same client order id); ``-1015`` (too many orders) -> RateLimitedError; any other -> RestError
  ``rejected`` naming Binance's code and message. 429/418 never reach the codec: the REST
  client raises RateLimitedError with ``Retry-After`` itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from tickpipe.errors import (
    ConfigError,
    CredentialsRejected,
    DuplicateOrderError,
    RateLimitedError,
    RestError,
    UnknownOrderError,
)
from tickpipe.venues.binance.auth import API_KEY_HEADER, DEFAULT_RECV_WINDOW_MS, sign_params
from tickpipe.venues.trading import Credentials, HttpCall, NewOrder, Order

# -- error codes (errors.md; usdm error-code) ---------------------------------------------
UNAUTHORIZED = -1002
TIMESTAMP_OUTSIDE_RECV_WINDOW = -1021
INVALID_SIGNATURE = -1022
TOO_MANY_ORDERS = -1015
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015
DUPLICATED_CLIENT_ORDER_ID = -4116  # USD-M
AUTH_CODES = frozenset({UNAUTHORIZED, INVALID_SIGNATURE, BAD_API_KEY_FMT, REJECTED_MBX_KEY})
# "execution status unknown" or "try again": worth a retry with the same client order id
UNKNOWN_STATUS_CODES = frozenset({-1000, -1001, -1006, -1007, -1008})
UNKNOWN_ORDER_MSG = "Unknown order sent."
DUPLICATE_ORDER_MSG = "Duplicate order sent."  # spot, with -2010
DUPLICATE_CLIENT_ID_MSG = "ClientOrderId is duplicated."  # USD-M, with -4116

STATUSES = {
    "NEW": "open",
    "PENDING_NEW": "open",
    "PARTIALLY_FILLED": "open",
    "PENDING_CANCEL": "open",  # documented as "currently unused"
    "FILLED": "filled",
    "CANCELED": "cancelled",
    "REJECTED": "rejected",
    "EXPIRED": "expired",
    "EXPIRED_IN_MATCH": "expired",
}
SIDES = {"BUY": "buy", "SELL": "sell"}
# [spot-rest] DECIMAL parameters: "^([0-9]{1,20})(\.[0-9]{1,20})?$" (the -1100 message)
DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """One Binance market's order endpoints and limits, as data (both sides read it)."""

    name: str
    time_path: str
    order_path: str
    open_orders_path: str
    cancel_all_path: str  # DELETE, one symbol
    dead_man_path: str | None  # None: the market has no dead man's switch
    client_id_pattern: str
    duplicate_code: int
    duplicate_msg: str
    orders_per_10s: int  # the documented order-rate limit the dialect enforces
    orders_per_s: float  # the client's bucket (see the module docstring)
    orders_burst: int
    dead_man_refresh_s: float | None
    weights: dict[str, int] = field(default_factory=dict)  # call -> IP request weight
    api_prefix: str = ""

    @property
    def client_id_re(self) -> re.Pattern[str]:
        return re.compile(self.client_id_pattern)


SPOT_ORDERS = OrderSpec(
    name="binance",
    time_path="/api/v3/time",
    order_path="/api/v3/order",
    open_orders_path="/api/v3/openOrders",
    cancel_all_path="/api/v3/openOrders",
    dead_man_path=None,
    client_id_pattern=r"^[a-zA-Z0-9\-_]{1,36}$",
    duplicate_code=NEW_ORDER_REJECTED,
    duplicate_msg=DUPLICATE_ORDER_MSG,
    orders_per_10s=50,
    orders_per_s=4.0,
    orders_burst=10,
    dead_man_refresh_s=None,
    # [spot-rest] weights: order 1, query 4, cancel 1, cancel all 1, open orders 6 (80 for
    # every symbol)
    weights={"place": 1, "get": 4, "cancel": 1, "cancel_all": 1, "open": 6, "open_all": 80},
    api_prefix="/api/v3",
)

USDM_ORDERS = OrderSpec(
    name="binance-usdm",
    time_path="/fapi/v1/time",
    order_path="/fapi/v1/order",
    open_orders_path="/fapi/v1/openOrders",
    cancel_all_path="/fapi/v1/allOpenOrders",
    dead_man_path="/fapi/v1/countdownCancelAll",
    client_id_pattern=r"^[\.A-Z\:/a-z0-9_-]{1,36}$",
    duplicate_code=DUPLICATED_CLIENT_ORDER_ID,
    duplicate_msg=DUPLICATE_CLIENT_ID_MSG,
    orders_per_10s=300,
    orders_per_s=19.0,
    orders_burst=60,
    dead_man_refresh_s=30.0,
    # [usdm] weights: order 0 on the IP limit (1 on the order limits), query 1, cancel 1,
    # cancel all 1, open orders 1 (40 for every symbol), countdownCancelAll 10
    weights={
        "place": 0,
        "get": 1,
        "cancel": 1,
        "cancel_all": 1,
        "open": 1,
        "open_all": 40,
        "dead_man": 10,
    },
    api_prefix="/fapi/v1",
)

ORDER_SPECS: dict[str, OrderSpec] = {SPOT_ORDERS.name: SPOT_ORDERS, USDM_ORDERS.name: USDM_ORDERS}


class _ErrorBody(msgspec.Struct):
    code: int
    msg: str = ""


_error = msgspec.json.Decoder(_ErrorBody)
_any = msgspec.json.Decoder()


def venue_decimal(name: str, text: str) -> str:
    """``text`` as Binance's DECIMAL parameters take it (plain digits, no exponent): ``1e3``
    -> ``1000``; ConfigError when it is not a positive decimal."""
    if DECIMAL_RE.match(text):
        return text
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"{name} {text!r} is not a decimal number") from None
    out = format(d, "f")
    if not d.is_finite() or d <= 0 or not DECIMAL_RE.match(out):
        raise ConfigError(f"{name} {text!r}: Binance takes up to 20 digits each side of the point")
    return out


class BinanceOrderCodec:
    """A Binance market's orders (``spec``: :data:`SPOT_ORDERS` or :data:`USDM_ORDERS`).

    ``recv_window_ms`` (5000, Binance's default; at most 60000): how long after its
    ``timestamp`` a request stays valid at the venue. Shorter: a request delayed on the way is
    refused rather than acted on late; longer: more tolerance of a slow network or clock.
    """

    needs_passphrase = False
    cancel_needs_symbol = True

    def __init__(self, spec: OrderSpec, recv_window_ms: int = DEFAULT_RECV_WINDOW_MS) -> None:
        if not 1 <= recv_window_ms <= 60_000:
            raise ConfigError(f"recv_window_ms must be 1..60000, got {recv_window_ms!r}")
        self.spec = spec
        self.venue = spec.name
        self.recv_window_ms = recv_window_ms
        self.orders_per_s = spec.orders_per_s
        self.orders_burst = spec.orders_burst
        self.dead_man_refresh_s = spec.dead_man_refresh_s
        self.dead_man_per_symbol = spec.dead_man_path is not None
        self._client_id = spec.client_id_re

    # -- building calls ------------------------------------------------------------------------
    def _signed(
        self,
        method: str,
        path: str,
        creds: Credentials,
        ts_ms: int,
        params: Sequence[tuple[str, str]],
    ) -> HttpCall:
        full = [*params, ("recvWindow", str(self.recv_window_ms)), ("timestamp", str(ts_ms))]
        return HttpCall(
            method, path, sign_params(creds.secret, full), headers={API_KEY_HEADER: creds.key}
        )

    def _symbol(self, symbol: str | None, what: str) -> str:
        if not symbol:
            raise ConfigError(
                f"{self.venue}: {what} needs the order's symbol (Binance names it on every "
                "order call); the client knows it only for orders it placed itself"
            )
        return symbol

    @staticmethod
    def _order_id(order_id: str) -> str:
        if not order_id.isascii() or not order_id.isdigit():
            raise ConfigError(f"a Binance orderId is an integer, got {order_id!r}")
        return order_id

    def time_call(self) -> HttpCall:
        return HttpCall("GET", self.spec.time_path)

    def decode_time(self, status: int, body: bytes) -> int:
        obj = self._ok_object(status, body, "server time")
        t = obj.get("serverTime")
        if type(t) is not int:
            raise RestError(
                status, "venue_error", f"{self.venue} time: no serverTime in {body!r:.120}"
            )
        return t

    def place(self, creds: Credentials, ts_ms: int, order: NewOrder) -> HttpCall:
        if order.side not in ("buy", "sell"):
            raise ConfigError(f"side must be 'buy' or 'sell', got {order.side!r}")
        if not self._client_id.match(order.client_order_id):
            raise ConfigError(
                f"client_order_id {order.client_order_id!r}: {self.venue} takes "
                f"{self.spec.client_id_pattern}"
            )
        params = [
            ("symbol", order.symbol),
            ("side", order.side.upper()),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", venue_decimal("size", order.size)),
            ("price", venue_decimal("price", order.price)),
            ("newClientOrderId", order.client_order_id),
            ("newOrderRespType", "RESULT"),
        ]
        return self._signed("POST", self.spec.order_path, creds, ts_ms, params)

    def open_orders(self, creds: Credentials, ts_ms: int, symbol: str | None) -> HttpCall:
        params = [("symbol", symbol)] if symbol else []
        return self._signed("GET", self.spec.open_orders_path, creds, ts_ms, params)

    def get_order(
        self, creds: Credentials, ts_ms: int, symbol: str | None, order_id: str
    ) -> HttpCall:
        params = [
            ("symbol", self._symbol(symbol, f"get_order({order_id!r})")),
            ("orderId", self._order_id(order_id)),
        ]
        return self._signed("GET", self.spec.order_path, creds, ts_ms, params)

    def get_order_by_client_id(
        self, creds: Credentials, ts_ms: int, symbol: str, client_order_id: str
    ) -> HttpCall:
        """The order placed under ``client_order_id`` (``origClientOrderId``): how the shell
        finds the order of a place refused as a duplicate."""
        params = [
            ("symbol", self._symbol(symbol, "a lookup by client order id")),
            ("origClientOrderId", client_order_id),
        ]
        return self._signed("GET", self.spec.order_path, creds, ts_ms, params)

    def cancel(self, creds: Credentials, ts_ms: int, symbol: str | None, order_id: str) -> HttpCall:
        params = [
            ("symbol", self._symbol(symbol, f"cancel_order({order_id!r})")),
            ("orderId", self._order_id(order_id)),
        ]
        return self._signed("DELETE", self.spec.order_path, creds, ts_ms, params)

    def cancel_all(self, creds: Credentials, ts_ms: int, symbol: str | None) -> HttpCall | None:
        if not symbol:
            return None  # Binance cancels all only per symbol
        return self._signed("DELETE", self.spec.cancel_all_path, creds, ts_ms, [("symbol", symbol)])

    def arm_dead_man(
        self, creds: Credentials, ts_ms: int, timeout_s: float, symbol: str | None
    ) -> HttpCall | None:
        path = self.spec.dead_man_path
        if path is None:
            return None  # Binance spot has no dead man's switch
        params = [
            ("symbol", self._symbol(symbol, "countdownCancelAll")),
            ("countdownTime", str(max(0, round(timeout_s * 1000)))),
        ]
        return self._signed("POST", path, creds, ts_ms, params)

    # -- decoding answers ----------------------------------------------------------------------
    def _bad(self, status: int, what: str) -> RestError:
        """An answer that cannot be read (retryable, as a 5xx)."""
        return RestError(status, "venue_error", f"{self.venue} {what}")

    def _error(self, status: int, body: bytes, what: str) -> RestError:
        """The typed error for a refused call (see the module docstring)."""
        try:
            err = _error.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            err = None
        code = err.code if err is not None else None
        msg = err.msg if err is not None else body[:200].decode("utf-8", "replace")
        said = f"{self.venue} {what}: HTTP {status}" + (
            f", Binance error {code}: {msg}" if code is not None else f": {msg!r}"
        )
        if status == 401 or code in AUTH_CODES:
            hint = (
                "the signature does not match: is the secret the key's?"
                if code == INVALID_SIGNATURE
                else "check the API key, its IP whitelist and that it may trade"
            )
            return CredentialsRejected(status, "auth_failed", f"{said} ({hint})")
        if code == NO_SUCH_ORDER or (code == CANCEL_REJECTED and msg == UNKNOWN_ORDER_MSG):
            return UnknownOrderError(status, "unknown_order", said)
        if code == self.spec.duplicate_code and msg in (
            DUPLICATE_ORDER_MSG,
            DUPLICATE_CLIENT_ID_MSG,
        ):
            return DuplicateOrderError(status, "duplicate_order", said)
        if code == TIMESTAMP_OUTSIDE_RECV_WINDOW:
            return RestError(
                status,
                "clock_skew",
                f"{said} (recvWindow {self.recv_window_ms} ms; the venue's clock is read again "
                "before the next call)",
            )
        if code == TOO_MANY_ORDERS:
            return RateLimitedError(said, 1.0)
        if status >= 500 or status == 408 or code in UNKNOWN_STATUS_CODES:
            return RestError(503, "venue_error", f"{said} (execution status unknown)")
        return RestError(status, "rejected", said)

    def _ok_json(self, status: int, body: bytes, what: str) -> Any:
        if not 200 <= status < 300:
            raise self._error(status, body, what)
        try:
            return _any.decode(body)
        except msgspec.DecodeError as exc:
            raise self._bad(status, f"{what}: unreadable answer: {exc}") from None

    def _ok_object(self, status: int, body: bytes, what: str) -> dict[str, Any]:
        obj = self._ok_json(status, body, what)
        if not isinstance(obj, dict):
            raise RestError(
                status, "venue_error", f"{self.venue} {what}: not an object: {body!r:.120}"
            )
        return obj

    def _order(self, obj: Any, status: int) -> Order:
        def text(name: str) -> str:
            v = obj.get(name)
            if not isinstance(v, str):
                raise self._bad(status, f"order: field {name!r} missing or not text")
            return v

        if not isinstance(obj, dict):
            raise RestError(
                status, "venue_error", f"{self.venue} order: not an object: {obj!r:.120}"
            )
        oid = obj.get("orderId")
        if type(oid) is not int:
            raise RestError(
                status, "venue_error", f"{self.venue} order: orderId {oid!r} is not an integer"
            )
        raw_status = text("status")
        norm = STATUSES.get(raw_status)
        if norm is None:
            raise RestError(
                status, "venue_error", f"{self.venue} order {oid}: unknown status {raw_status!r}"
            )
        side = SIDES.get(text("side"))
        if side is None:
            raise RestError(
                status, "venue_error", f"{self.venue} order {oid}: unknown side {obj['side']!r}"
            )
        # a cancel's answer names the order's own id origClientOrderId (spot's clientOrderId is
        # then the cancel's)
        coid = obj.get("origClientOrderId") or obj.get("clientOrderId") or ""
        return Order(
            order_id=str(oid),
            client_order_id=str(coid),
            symbol=text("symbol"),
            side=side,
            price=text("price"),
            size=text("origQty"),
            status=norm,
            filled_size=text("executedQty"),
            raw=obj,
        )

    def decode_order(self, status: int, body: bytes, sent: NewOrder | None) -> Order:
        return self._order(self._ok_object(status, body, "order"), status)

    def decode_orders(self, status: int, body: bytes) -> list[Order]:
        arr = self._ok_json(status, body, "open orders")
        if not isinstance(arr, list):
            raise RestError(
                status, "venue_error", f"{self.venue} open orders: not a list: {body!r:.120}"
            )
        return [self._order(o, status) for o in arr]

    def decode_cancel_all(self, status: int, body: bytes) -> list[str]:
        """Spot answers the cancelled orders (ids, order lists' reports too); USD-M only
        ``{"code": 200, "msg": ...}`` (no ids: empty). Nothing open to cancel (``-2011
        Unknown order sent.``) is an empty list, not an error."""
        try:
            got = self._ok_json(status, body, "cancel all")
        except UnknownOrderError:
            return []
        if isinstance(got, dict):
            return []
        if not isinstance(got, list):
            raise self._bad(status, f"cancel all: {body!r:.120}")
        ids: list[str] = []
        for entry in got:
            if not isinstance(entry, dict):
                continue
            if type(entry.get("orderId")) is int:
                ids.append(str(entry["orderId"]))
            for rep in entry.get("orderReports") or ():
                if isinstance(rep, dict) and type(rep.get("orderId")) is int:
                    ids.append(str(rep["orderId"]))
        return ids

    def decode_ack(self, status: int, body: bytes) -> None:
        self._ok_json(status, body, "countdownCancelAll")


# -- the gateway's side: answers in Binance's shapes -----------------------------------------
@dataclass(frozen=True, slots=True)
class WireOrder:
    """An order as the dialect describes it (Binance's field values, already text)."""

    order_id: int
    client_order_id: str
    symbol: str
    side: str  # BUY / SELL
    price: str
    orig_qty: str
    executed_qty: str
    cum_quote: str
    status: str  # NEW, PARTIALLY_FILLED, FILLED, CANCELED
    time_ms: int
    update_ms: int


def encode_order(
    spec: OrderSpec, o: WireOrder, kind: str, cancel_client_id: str | None = None
) -> dict[str, Any]:
    """``o`` as Binance answers a ``kind`` call (``place``, ``get`` or ``cancel``): spot's
    ``RESULT`` / query / cancel shapes ([spot-rest]) or USD-M's order shape ([usdm])."""
    if spec.dead_man_path is None:  # spot
        out: dict[str, Any] = {"symbol": o.symbol}
        if kind == "cancel":
            out["origClientOrderId"] = o.client_order_id
        out.update(
            orderId=o.order_id,
            orderListId=-1,
            clientOrderId=cancel_client_id if kind == "cancel" else o.client_order_id,
        )
        if kind != "get":
            out["transactTime"] = o.update_ms
        out.update(
            price=o.price,
            origQty=o.orig_qty,
            executedQty=o.executed_qty,
            cummulativeQuoteQty=o.cum_quote,
            status=o.status,
            timeInForce="GTC",
            type="LIMIT",
            side=o.side,
        )
        if kind == "get":
            out.update(
                stopPrice="0.00000000",
                icebergQty="0.00000000",
                time=o.time_ms,
                updateTime=o.update_ms,
                isWorking=True,
            )
        out.update(workingTime=o.time_ms, origQuoteOrderQty="0.00000000")
        out["selfTradePreventionMode"] = "NONE"
        return out
    filled = Decimal(o.executed_qty)
    avg = Decimal(o.cum_quote) / filled if filled else Decimal(0)
    out = {
        "clientOrderId": o.client_order_id,
        "cumQty": o.executed_qty,
        "cumQuote": o.cum_quote,
        "executedQty": o.executed_qty,
        "orderId": o.order_id,
        "avgPrice": format(avg, "f"),
        "origQty": o.orig_qty,
        "price": o.price,
        "reduceOnly": False,
        "side": o.side,
        "positionSide": "BOTH",
        "status": o.status,
        "stopPrice": "0",
        "closePosition": False,
        "symbol": o.symbol,
        "timeInForce": "GTC",
        "type": "LIMIT",
        "origType": "LIMIT",
        "updateTime": o.update_ms,
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
    }
    if kind == "get":
        out["time"] = o.time_ms
    return out
