"""Bybit v5 orders, sans I/O: the :class:`~tickpipe.venues.trading.OrderCodec` of ``bybit``
(category ``spot``) and ``bybit-linear`` (category ``linear``), and the frames of the private
stream that Bybit's dead man's switch hangs on (issue 17). Pure: ``ts_ms`` is given, nothing is
sent or read here.

Endpoints (https://bybit-exchange.github.io/docs/v5/, "Trade"), every one signed with
:mod:`.auth`:

- ``POST /v5/order/create`` ``{"category", "symbol", "side": "Buy"|"Sell", "orderType": "Limit",
  "qty", "price", "timeInForce": "GTC", "orderLinkId"}``: the client order id is Bybit's
  ``orderLinkId`` (at most 36 of ``A-Z a-z 0-9 - _``, "always unique"). The answer holds only
  ``orderId`` and ``orderLinkId``; the order is reported ``open`` (a later get says more).
  Bybit refuses a repeated ``orderLinkId`` (retCode 110072, spot 170141) instead of returning
  the first order: met on a retry, it means the first attempt went through, so the answer is
  the order known by its link id, ``order_id`` = ``link:<orderLinkId>`` (get and cancel send it
  as ``orderLinkId``, which Bybit takes in place of ``orderId``).
- ``GET /v5/order/realtime?category=..&symbol=..&limit=50`` (open orders; one page of at most
  50; ``linear`` with no symbol lists ``settleCoin=USDT``, since Bybit needs one of symbol,
  baseCoin or settleCoin there) and ``?category=..&orderId=..`` (one order, closed ones too).
- ``POST /v5/order/cancel`` ``{"category", "symbol", "orderId"}``: Bybit needs the symbol
  (``cancel_needs_symbol``); the answer (ids only) is reported ``cancelled``.
- ``POST /v5/order/cancel-all`` ``{"category"[, "symbol"]}`` (``linear`` with no symbol:
  ``settleCoin=USDT``); the ids cancelled are read from ``result.list``.
- ``GET /v5/market/time`` (unsigned): Bybit's clock, ``result.timeNano``.
- ``POST /v5/order/disconnected-cancel-all`` ``{"product": "SPOT"|"DERIVATIVES", "timeWindow"}``:
  :meth:`BybitOrders.arm_dead_man`. See "dead man's switch" below.

Answers are ``{"retCode", "retMsg", "result"}`` (HTTP 200 for most refusals). Mapped:
0 ok; 10003 / 10004 / 10005 / 10007 / 10010 / 33004 / -2015 and HTTP 401 ->
:class:`CredentialsRejected` (fatal; 10005 on the DCP endpoint alone is a
:class:`RestError` ``rejected``: DCP not enabled for the account is no reason to stop
trading); 10006 and spot 170222 -> :class:`RateLimitedError` (Bybit's window is one rolling
second: wait 1 s); 110001 / 170213 -> :class:`UnknownOrderError`, and so are 110008 / 110010 /
170139 / 170142 / 170190 (the order is already filled or cancelled: nothing to cancel); 10000 /
10016 / 170146 / 170147 / retCode 429, HTTP 5xx and an unreadable 200 -> :class:`RestError`
``venue_error`` (retried with the same ``orderLinkId``); another 4xx with no retCode (404: a wrong
path, or a category the account does not serve) -> ``rejected``; 10002 (timestamp outside
``recv_window``) -> ``clock_skew`` (the shell re-reads Bybit's clock before the next call); every
other code -> :class:`RestError` ``rejected`` naming the code and Bybit's message.

Order-rate limit ("Rate Limit Rules", per UID, a rolling second, unified account defaults):
create / cancel / cancel-all 10/s on ``linear``, 20/s on ``spot``; realtime 50/s; DCP 5/s. The
shell's one bucket spends a token on every call, so it runs at 80 % of the create limit with a
burst of 20 % (``orders_per_s`` + ``orders_burst`` <= the limit in any one-second window).

Dead man's switch: Bybit's is DCP, "Disconnection Protect", and it is NOT a timer that a REST
call refreshes. ``POST /v5/order/disconnected-cancel-all`` only sets ``timeWindow`` (3-300 s,
default 10) for a product; what arms it is the private WebSocket (``/v5/private``): "for those
private connections subscribing "dcp" topic are all dead, then DCP will be triggered" once
``timeWindow`` has passed without a reconnection, and DCP must first be enabled for the
account by Bybit ("contact your client manager"). So :meth:`BybitOrders.arm_dead_man` sets the
window (the dead man's ``timeout_s``, clamped to 3-300 s) for the category's product, and the
frames to keep a ``dcp.spot`` / ``dcp.future`` subscription alive are here
(:func:`private_auth_frame`, :func:`private_subscribe_frame`, :func:`private_ping_frame`,
:func:`decode_private_answer`); holding that private connection is I/O the client shell does
not do yet (docs/orders.md, Bybit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import msgspec

from tickpipe.errors import (
    ConfigError,
    CredentialsRejected,
    FrameError,
    RateLimitedError,
    RestError,
    UnknownOrderError,
)
from tickpipe.protocol.decode_errors import DECODE_ERRORS
from tickpipe.venues.bybit import auth
from tickpipe.venues.bybit.endpoints import VenueSpec
from tickpipe.venues.trading import Credentials, GuardStream, HttpCall, NewOrder, Order

CREATE_PATH = "/v5/order/create"
REALTIME_PATH = "/v5/order/realtime"
CANCEL_PATH = "/v5/order/cancel"
CANCEL_ALL_PATH = "/v5/order/cancel-all"
DCP_PATH = "/v5/order/disconnected-cancel-all"
TIME_PATH = "/v5/market/time"
PRIVATE_STREAM_PATH = "/v5/private"

ENDPOINT_RATE_PER_S: dict[str, dict[str, int]] = {
    CREATE_PATH: {"spot": 20, "linear": 10},
    CANCEL_PATH: {"spot": 20, "linear": 10},
    CANCEL_ALL_PATH: {"spot": 20, "linear": 10},
    REALTIME_PATH: {"spot": 50, "linear": 50},
    DCP_PATH: {"spot": 5, "linear": 5},
}
"""Bybit's per-UID limits per endpoint and category, requests in any rolling second (unified
account defaults, "Rate Limit Rules › API Rate Limit Table")."""

PRODUCT = {"spot": "SPOT", "linear": "DERIVATIVES"}
"""The DCP ``product`` of a category."""
DCP_TOPIC = {"spot": "dcp.spot", "linear": "dcp.future"}
PRIVATE_PING_S = 20.0  # Bybit: "send the ping heartbeat packet every 20 seconds"
PRIVATE_AUTH_VALID_MS = 10_000  # the auth frame's expires: 10 s ahead of the venue's clock
"""The private-stream topic whose connections DCP watches, per category."""
DCP_WINDOW_MIN_S = 3
DCP_WINDOW_MAX_S = 300
DCP_WINDOW_DEFAULT_S = 10
DCP_REFRESH_S = 60.0
"""How often the shell re-sends the window while the stream is healthy (the setting persists
at Bybit; re-sending confirms it and reports a DCP that is not enabled)."""
OPEN_ORDERS_PAGE = 50
"""``limit`` of the open-orders query: Bybit's largest page."""
LINEAR_SETTLE_COIN = "USDT"
LINK_PREFIX = "link:"
"""``order_id`` of an order known only by its ``orderLinkId`` (a retried place that Bybit
answered with "duplicate"): get and cancel send ``orderLinkId`` for it."""

STATUS = {
    "New": "open",
    "PartiallyFilled": "open",
    "Untriggered": "open",
    "Triggered": "open",
    "Active": "open",
    "Filled": "filled",
    "Cancelled": "cancelled",
    "PartiallyFilledCanceled": "cancelled",
    "Deactivated": "cancelled",
    "Rejected": "rejected",
}
"""Bybit ``orderStatus`` -> tickpipe's. An unknown status counts as ``open`` (the client then
keeps cancelling it rather than forget a live order)."""

AUTH_CODES = frozenset({10003, 10004, 10005, 10007, 10010, 33004, -2015})
RATE_CODES = frozenset({10006, 170222})
UNKNOWN_ORDER_CODES = frozenset({110001, 170213})
FINAL_ORDER_CODES = frozenset({110008, 110010, 170139, 170142, 170190})
TRANSIENT_CODES = frozenset({10000, 10016, 170146, 170147, 429})
DUPLICATE_LINK_CODES = frozenset({110072, 170141})
TIMESTAMP_CODE = 10002
PERMISSION_CODE = 10005
RATE_WAIT_S = 1.0

_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SYMBOL = re.compile(r"^[A-Z0-9]{1,40}$")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def _clip(text: object, n: int = 200) -> str:
    s = str(text)
    return s if len(s) <= n else s[:n] + "…"


def check_link_id(value: str) -> str:
    """``value`` if Bybit takes it as an ``orderLinkId``, else ConfigError naming the rule."""
    if not _LINK_ID.match(value):
        raise ConfigError(
            f"client_order_id {_clip(value, 60)!r}: Bybit's orderLinkId is 1-36 characters of "
            "letters, digits, '-' and '_'"
        )
    return value


def _check_symbol(symbol: str) -> str:
    if not _SYMBOL.match(symbol):
        raise ConfigError(
            f"symbol {_clip(symbol, 60)!r}: a Bybit symbol is upper-case letters and digits "
            "(BTCUSDT)"
        )
    return symbol


def _id_param(order_id: str) -> tuple[str, str]:
    """``("orderId", id)``, or ``("orderLinkId", link)`` for a ``link:`` id."""
    if order_id.startswith(LINK_PREFIX):
        return "orderLinkId", check_link_id(order_id[len(LINK_PREFIX) :])
    if not _ORDER_ID.match(order_id):
        raise ConfigError(f"order id {_clip(order_id, 60)!r} is not a Bybit order id")
    return "orderId", order_id


def dcp_window_s(timeout_s: float) -> int:
    """The dead man's ``timeout_s`` as Bybit's ``timeWindow``: whole seconds within 3-300."""
    return max(DCP_WINDOW_MIN_S, min(DCP_WINDOW_MAX_S, round(timeout_s)))


# -- answers ------------------------------------------------------------------------------------


def _parse(status: int, body: bytes) -> tuple[int, str, dict[str, Any]]:
    """(retCode, retMsg, result) of an answer; raises for what no retCode explains (HTTP 401,
    5xx, an unreadable body)."""
    if status == 401:
        raise CredentialsRejected(
            401,
            "auth_failed",
            f"bybit refused the API key (HTTP 401): {_clip(body.decode(errors='replace'))}",
        )
    if status >= 500:
        raise RestError(
            status,
            "venue_error",
            f"bybit answered HTTP {status}: {_clip(body.decode(errors='replace'))}",
        )
    try:
        obj = _decoder.decode(body)
    except DECODE_ERRORS:
        obj = None
    if not isinstance(obj, dict) or not isinstance(obj.get("retCode"), int):
        if 400 <= status < 500:  # 400 bad method, 404 wrong path or category for the account
            raise RestError(
                status,
                "rejected",
                f"bybit answered HTTP {status} (404: a wrong path, or a category the account "
                f"mode does not serve): {_clip(body.decode(errors='replace'))}",
            )
        raise RestError(
            502,
            "venue_error",
            f"bybit answered HTTP {status} with no retCode: {_clip(body.decode(errors='replace'))}",
        )
    result = obj.get("result")
    return obj["retCode"], str(obj.get("retMsg", "")), result if isinstance(result, dict) else {}


def _error(code: int, msg: str, status: int, *, what: str) -> RestError:
    """The typed error of a non-zero retCode."""
    said = f"bybit {what}: retCode {code} {_clip(msg)}"
    if code in AUTH_CODES:
        return CredentialsRejected(
            401, "auth_failed", f"bybit refused the API key or its signature ({said})"
        )
    if code in RATE_CODES:
        return RateLimitedError(f"{said} (Bybit counts per UID in a rolling second)", RATE_WAIT_S)
    if code in UNKNOWN_ORDER_CODES:
        return UnknownOrderError(404, "unknown_order", said)
    if code in FINAL_ORDER_CODES:
        return UnknownOrderError(404, "unknown_order", f"{said} (already filled or cancelled)")
    if code in TRANSIENT_CODES:
        return RestError(503, "venue_error", f"{said} (HTTP {status}; transient: retried)")
    if code == TIMESTAMP_CODE:
        return RestError(
            status,
            "clock_skew",
            f"{said}: the request's X-BAPI-TIMESTAMP was outside Bybit's window "
            f"(server_time - recv_window <= timestamp < server_time + 1000): the host clock "
            "jumped; the next call reads Bybit's clock again",
        )
    return RestError(status, "rejected", said)


def _result(status: int, body: bytes, what: str) -> dict[str, Any]:
    code, msg, result = _parse(status, body)
    if code != 0:
        raise _error(code, msg, status, what=what)
    return result


def _str(obj: dict[str, Any], name: str, default: str | None = None) -> str:
    v = obj.get(name, default)
    if v is None or isinstance(v, bool) or not isinstance(v, str | int | float):
        raise RestError(502, "venue_error", f"bybit order lacks {name!r}: {_clip(obj)}")
    return str(v)


def order_from(item: Any) -> Order:
    """One order of ``result.list`` (open orders, one order) as an :class:`Order`."""
    if not isinstance(item, dict):
        raise RestError(502, "venue_error", f"bybit order is not an object: {_clip(item)}")
    side = _str(item, "side", "")
    return Order(
        order_id=_str(item, "orderId"),
        client_order_id=_str(item, "orderLinkId", ""),
        symbol=_str(item, "symbol", ""),
        side={"Buy": "buy", "Sell": "sell"}.get(side, side.lower()),
        price=_str(item, "price", ""),
        size=_str(item, "qty", ""),
        status=STATUS.get(_str(item, "orderStatus", ""), "open"),
        filled_size=_str(item, "cumExecQty", "0") or "0",
        raw=item,
    )


def _list(result: dict[str, Any]) -> list[Any]:
    items = result.get("list")
    if not isinstance(items, list):
        raise RestError(502, "venue_error", f"bybit result has no list: {_clip(result)}")
    return items


# -- the codec ----------------------------------------------------------------------------------


class BybitOrders:
    """The :class:`~tickpipe.venues.trading.OrderCodec` of one Bybit category (see the module
    docstring). ``recv_window_ms`` (5,000, Bybit's default) is sent as ``X-BAPI-RECV-WINDOW``:
    longer tolerates a slower path, and keeps a captured request valid longer."""

    needs_passphrase = False
    dead_man_per_symbol = False
    cancel_needs_symbol = True

    def __init__(self, spec: VenueSpec, recv_window_ms: int = auth.RECV_WINDOW_MS) -> None:
        self.venue = spec.name
        self.category: str = spec.category
        self.product = PRODUCT[spec.category]
        self.recv_window_ms = recv_window_ms
        per_s = ENDPOINT_RATE_PER_S[CREATE_PATH][spec.category]
        self.orders_per_s: float = per_s * 0.8
        self.orders_burst: int = max(1, round(per_s * 0.2))
        self.dead_man_refresh_s: float | None = DCP_REFRESH_S
        topic = DCP_TOPIC[spec.category]
        # what arms DCP at Bybit: a private connection subscribed to the product's dcp topic,
        # held by the client while its market stream is healthy (venues/trading.GuardStream)
        self.guard_stream = GuardStream(
            PRIVATE_STREAM_PATH,
            PRIVATE_PING_S,
            lambda creds, ts_ms: [
                private_auth_frame(creds, ts_ms + PRIVATE_AUTH_VALID_MS),
                private_subscribe_frame([topic]),
            ],
            private_ping_frame,
            _check_private_answer,
        )

    # -- building -------------------------------------------------------------------------------
    def _get(
        self, creds: Credentials, ts_ms: int, path: str, params: list[tuple[str, str]]
    ) -> HttpCall:
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params)
        headers = auth.signed_headers(creds, ts_ms, query.encode(), self.recv_window_ms)
        return HttpCall("GET", path, query=query, headers=headers)

    def _post(self, creds: Credentials, ts_ms: int, path: str, obj: dict[str, Any]) -> HttpCall:
        body = _encoder.encode(obj)
        headers = auth.signed_headers(creds, ts_ms, body, self.recv_window_ms)
        headers["Content-Type"] = "application/json"
        return HttpCall("POST", path, headers=headers, body=body)

    def _scope(self, symbol: str | None) -> dict[str, str]:
        if symbol is not None:
            return {"symbol": _check_symbol(symbol)}
        return {"settleCoin": LINEAR_SETTLE_COIN} if self.category == "linear" else {}

    def time_call(self) -> HttpCall | None:
        return HttpCall("GET", TIME_PATH)

    def decode_time(self, status: int, body: bytes) -> int:
        code, msg, result = _parse(status, body)
        if code != 0:
            raise _error(code, msg, status, what="server time")
        nano = result.get("timeNano")
        if isinstance(nano, str) and nano.isdigit():
            return int(nano) // 1_000_000
        sec = result.get("timeSecond")
        if isinstance(sec, str) and sec.isdigit():
            return int(sec) * 1000
        raise RestError(502, "venue_error", f"bybit server time unreadable: {_clip(result)}")

    def place(self, creds: Credentials, ts_ms: int, order: NewOrder) -> HttpCall:
        if order.side not in ("buy", "sell"):
            raise ConfigError(f"side must be 'buy' or 'sell', got {order.side!r}")
        return self._post(
            creds,
            ts_ms,
            CREATE_PATH,
            {
                "category": self.category,
                "symbol": _check_symbol(order.symbol),
                "side": "Buy" if order.side == "buy" else "Sell",
                "orderType": "Limit",
                "qty": order.size,
                "price": order.price,
                "timeInForce": "GTC",
                "orderLinkId": check_link_id(order.client_order_id),
            },
        )

    def open_orders(self, creds: Credentials, ts_ms: int, symbol: str | None) -> HttpCall:
        params = [("category", self.category), *self._scope(symbol).items()]
        params.append(("limit", str(OPEN_ORDERS_PAGE)))
        return self._get(creds, ts_ms, REALTIME_PATH, params)

    def get_order(
        self, creds: Credentials, ts_ms: int, symbol: str | None, order_id: str
    ) -> HttpCall:
        params = [("category", self.category)]
        if symbol is not None:
            params.append(("symbol", _check_symbol(symbol)))
        params.append(_id_param(order_id))
        return self._get(creds, ts_ms, REALTIME_PATH, params)

    def cancel(self, creds: Credentials, ts_ms: int, symbol: str | None, order_id: str) -> HttpCall:
        if symbol is None:
            raise ConfigError(
                f"{self.venue}: a cancel names the symbol (Bybit's /v5/order/cancel requires "
                f"it) and order {_clip(order_id, 60)!r} is not one this client placed: cancel "
                "it with cancel_all_orders(symbol)"
            )
        name, value = _id_param(order_id)
        body = {"category": self.category, "symbol": _check_symbol(symbol), name: value}
        return self._post(creds, ts_ms, CANCEL_PATH, body)

    def cancel_all(self, creds: Credentials, ts_ms: int, symbol: str | None) -> HttpCall | None:
        body: dict[str, Any] = {"category": self.category, **self._scope(symbol)}
        return self._post(creds, ts_ms, CANCEL_ALL_PATH, body)

    def arm_dead_man(
        self, creds: Credentials, ts_ms: int, timeout_s: float, symbol: str | None
    ) -> HttpCall | None:
        """Set DCP's ``timeWindow`` for the category's product to ``timeout_s`` (3-300 s).
        This does not start a timer at Bybit: DCP fires when every private connection
        subscribed to the product's ``dcp`` topic is gone for that long (module docstring)."""
        body = {"product": self.product, "timeWindow": dcp_window_s(timeout_s)}
        return self._post(creds, ts_ms, DCP_PATH, body)

    # -- reading --------------------------------------------------------------------------------
    def decode_order(self, status: int, body: bytes, sent: NewOrder | None) -> Order:
        code, msg, result = _parse(status, body)
        if code in DUPLICATE_LINK_CODES and sent is not None:
            # a retried place: the first attempt went through; known by its orderLinkId
            return Order(
                order_id=LINK_PREFIX + sent.client_order_id,
                client_order_id=sent.client_order_id,
                symbol=sent.symbol,
                side=sent.side,
                price=sent.price,
                size=sent.size,
                status="open",
                filled_size="0",
                raw={"retCode": code, "retMsg": msg},
            )
        if code != 0:
            raise _error(code, msg, status, what="place" if sent is not None else "order")
        if "list" in result:  # one order (get)
            items = _list(result)
            if not items:
                raise UnknownOrderError(404, "unknown_order", "bybit lists no such order")
            return order_from(items[0])
        if sent is not None:  # the create ack: ids only
            return Order(
                order_id=_str(result, "orderId"),
                client_order_id=_str(result, "orderLinkId", sent.client_order_id)
                or sent.client_order_id,
                symbol=sent.symbol,
                side=sent.side,
                price=sent.price,
                size=sent.size,
                status="open",
                filled_size="0",
                raw=result,
            )
        return Order(  # the cancel ack: ids only, accepted
            order_id=_str(result, "orderId"),
            client_order_id=_str(result, "orderLinkId", ""),
            symbol="",
            side="",
            price="",
            size="",
            status="cancelled",
            filled_size="",
            raw=result,
        )

    def decode_orders(self, status: int, body: bytes) -> list[Order]:
        return [order_from(item) for item in _list(_result(status, body, "open orders"))]

    def decode_cancel_all(self, status: int, body: bytes) -> list[str]:
        result = _result(status, body, "cancel-all")
        if result.get("success") == "0":
            raise RestError(status, "rejected", f"bybit cancel-all failed: {_clip(result)}")
        out = []
        for item in _list(result):
            if isinstance(item, dict) and isinstance(item.get("orderId"), str):
                out.append(item["orderId"])
        return out

    def decode_ack(self, status: int, body: bytes) -> None:
        code, msg, _ = _parse(status, body)
        if code == PERMISSION_CODE:  # DCP not enabled for this account: not a bad key
            raise RestError(
                status,
                "rejected",
                f"bybit disconnected-cancel-all: retCode {code} {_clip(msg)} (DCP is enabled "
                "per account by Bybit: ask your account manager)",
            )
        if code != 0:
            raise _error(code, msg, status, what="disconnected-cancel-all")


# -- the private stream (DCP) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrivateAnswer:
    """A private-stream answer: ``op`` (auth, subscribe, pong), ``success``, ``message``."""

    op: str
    success: bool
    message: str = ""
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class PrivateRequest:
    """A client's private-stream frame (the gateway dialect's side)."""

    op: str
    args: list[str | int]
    request_id: str | None = None


class _PrivateRequest(msgspec.Struct, frozen=True):
    op: str
    args: list[str | int] = []
    req_id: str | None = None


class _PrivateAnswer(msgspec.Struct, frozen=True):
    op: str = ""
    success: bool | None = None
    ret_msg: str = ""
    req_id: str | None = None


_private_request = msgspec.json.Decoder(_PrivateRequest)
_private_answer = msgspec.json.Decoder(_PrivateAnswer)


def private_auth_frame(creds: Credentials, expires_ms: int) -> bytes:
    """``{"op": "auth", "args": [key, expires, signature]}`` (``expires``: a future ms time)."""
    sig = auth.ws_auth_signature(creds.secret, expires_ms)
    return _encoder.encode({"op": "auth", "args": [creds.key, expires_ms, sig]})


def private_subscribe_frame(topics: list[str], request_id: str | None = None) -> bytes:
    body: dict[str, Any] = {"op": "subscribe", "args": topics}
    if request_id is not None:
        body["req_id"] = request_id
    return _encoder.encode(body)


def private_ping_frame(request_id: str | None = None) -> bytes:
    body: dict[str, Any] = {"op": "ping"}
    if request_id is not None:
        body["req_id"] = request_id
    return _encoder.encode(body)


def decode_private_answer(data: bytes | str) -> PrivateAnswer:
    """An answer of the private stream (auth, subscribe, pong); FrameError if unreadable."""
    try:
        a = _private_answer.decode(data)
    except DECODE_ERRORS as exc:
        raise FrameError(f"unreadable private-stream frame: {exc}") from None
    success = a.success if a.success is not None else a.op == "pong"
    return PrivateAnswer(a.op, success, a.ret_msg, a.req_id)


def _check_private_answer(data: bytes | str) -> str | None:
    """None for a good answer of the private stream, else what Bybit said (``auth`` first
    when the key was refused)."""
    try:
        a = decode_private_answer(data)
    except FrameError as exc:
        return str(exc)
    if a.success:
        return None
    return f"{a.op}: {a.message or 'refused'}"


def decode_private_request(data: bytes | str) -> PrivateRequest:
    """A client's private-stream frame; FrameError names what was wrong."""
    try:
        r = _private_request.decode(data)
    except DECODE_ERRORS as exc:
        raise FrameError(f"unreadable request: {exc}") from None
    return PrivateRequest(r.op, list(r.args), r.req_id)


def encode_private_answer(
    op: str, success: bool, message: str, conn_id: str, request_id: str | None
) -> bytes:
    """``{"success", "ret_msg", "op", "conn_id"[, "req_id"]}`` (Bybit's private shape)."""
    body: dict[str, Any] = {"success": success, "ret_msg": message, "op": op, "conn_id": conn_id}
    if request_id is not None:
        body["req_id"] = request_id
    return _encoder.encode(body)


def encode_private_pong(conn_id: str, request_id: str | None, now_ms: int) -> bytes:
    """``{"req_id", "op": "pong", "args": ["<ms>"], "conn_id"}`` (the private pong)."""
    return _encoder.encode(
        {"req_id": request_id or "", "op": "pong", "args": [str(now_ms)], "conn_id": conn_id}
    )
