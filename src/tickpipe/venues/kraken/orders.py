"""Kraken spot orders over REST (issue 17): the pure :class:`~tickpipe.venues.trading.OrderCodec`
of ``venue="kraken"``. It builds signed calls (:mod:`.auth`) and reads Kraken's answers; the
client shell (``client/signed_orders.py``) sends them, times them and rate-limits them.

Endpoints (docs.kraken.com/api-reference, base ``https://api.kraken.com``; private calls are
``POST`` with a form body that carries ``nonce``):

- place: ``/0/private/AddOrder`` ``ordertype=limit&type=buy|sell&pair=<altname>&price=&volume=``
  with the client order id as ``cl_ord_id`` (Kraken's own client order identifier: "Kraken
  verifies cl_ord_id uniqueness across open orders for each client", docs .../guides/
  spot-clordid; a long UUID, a 32-hex short UUID or free text of up to 18 characters; the
  client's default, ``uuid4().hex``, is a short UUID). Answer ``{"txid": [...], "descr": ...}``.
  A retry of a place whose first answer was lost is refused by Kraken as a duplicate while
  the first order is open: that refusal is decoded as that order (status ``open``, addressed
  by its ``cl_ord_id``: see :func:`is_txid`), so a retry never places a second order and the
  order is still the client's own (cancelled when it goes blind).
- open orders: ``/0/private/OpenOrders`` (Kraken has no pair filter: the shell filters by
  symbol); one order: ``/0/private/QueryOrders txid=`` (``OpenOrders cl_ord_id=`` for an order
  known only by its ``cl_ord_id``); cancel: ``/0/private/CancelOrder txid=`` (or
  ``cl_ord_id=``), answered with a count only; cancel all: ``/0/private/CancelAll`` (a count:
  no ids); dead man's switch: ``/0/private/CancelAllOrdersAfter timeout=<whole seconds>`` (0
  disarms; "call every 15 to 30 seconds, providing a timeout of 60 seconds": refreshed every
  ``dead_man_refresh_s``, 20 s); server time: ``GET /0/public/Time`` (whole seconds).
- pairs: orders name Kraken's REST ``altname`` (``XBTUSD``); tickpipe's symbols are the v2
  names (``BTC/USD``). :class:`KrakenPairs` learns both from ``/0/public/AssetPairs`` (the
  adapter feeds it the instruments body) and falls back to Kraken's naming rules
  (``BTC`` <-> ``XBT``, ``DOGE`` <-> ``XDG``; a known quote suffix) for a pair it never saw.

Nonce: the venue-clock milliseconds the shell passes (``ts_ms``), as Kraken recommends ("the
current Unix timestamp in milliseconds"). A pure codec cannot make it unique: the shell does
(:attr:`KrakenOrders.serial_nonce`: one call at a time, ``ts_ms`` strictly increasing).

Answers: every Kraken API error comes with HTTP 200 as ``{"error": ["EClass:Text"], ...}``.
They are raised as the typed errors of ``tickpipe.errors``, with the HTTP status the error
stands for (so the shell's retry rules apply): ``EAPI:Invalid key``, ``EAPI:Invalid
signature``, ``EGeneral:Temporary lockout``, ``EAuth:*`` -> :class:`CredentialsRejected` (401,
fatal); ``EOrder:Unknown order`` -> :class:`UnknownOrderError` (404); ``EAPI:Rate limit
exceeded`` -> :class:`RateLimitedError` (3 s: one unit of the Starter tier's REST counter
decays in about 3 s), ``EOrder:Rate limit exceeded`` and ``EService:Throttled`` ->
:class:`RateLimitedError` (1 s); ``EService:Unavailable``, ``EService:Busy``,
``EService:Deadline elapsed``, ``EGeneral:Internal error``, a 5xx or an unreadable body ->
:class:`RestError` ``venue_error`` (5xx: retried with the same ``cl_ord_id``); ``EAPI:Invalid
nonce`` -> ``invalid_nonce`` (409); ``EGeneral:Permission denied`` -> ``permission_denied``
(403, not fatal: a key may cancel without being allowed to query); any other (``EOrder:
Insufficient funds``, ``EGeneral:Invalid arguments``, ``EQuery:Unknown asset pair``...) ->
``rejected`` (400). Warnings (``W...``) are ignored.
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
    RateLimitedError,
    RestError,
    UnknownOrderError,
)
from tickpipe.venues.kraken import auth, limits
from tickpipe.venues.kraken.codec import V2_ASSET_NAMES, v2_symbol
from tickpipe.venues.trading import Credentials, HttpCall, NewOrder, Order

TIME_PATH = "/0/public/Time"
ADD_ORDER_PATH = "/0/private/AddOrder"
OPEN_ORDERS_PATH = "/0/private/OpenOrders"
QUERY_ORDERS_PATH = "/0/private/QueryOrders"
CANCEL_ORDER_PATH = "/0/private/CancelOrder"
CANCEL_ALL_PATH = "/0/private/CancelAll"
CANCEL_AFTER_PATH = "/0/private/CancelAllOrdersAfter"

ORDERS_PER_S = 1.0
"""The shell's token bucket over every private call: the Starter tier's trading counter decays
1 a second (docs .../guides/spot-ratelimits); AddOrder costs 1 there, a cancel up to 8."""
ORDERS_BURST = int(limits.REST_PRIVATE_COUNTER_MAX)
"""The Starter tier's REST call counter ceiling (docs .../guides/spot-rest-ratelimits: 15,
decaying 0.33/s; OpenOrders, QueryOrders, CancelAll, CancelAllOrdersAfter cost 1 each)."""
DEAD_MAN_REFRESH_S = limits.DEAD_MAN_RECOMMENDED_REFRESH_S
"""Kraken: "call every 15 to 30 seconds, providing a timeout of 60 seconds"."""
API_LIMIT_WAIT_S = 3.0
ORDER_LIMIT_WAIT_S = 1.0

TXID_RE = re.compile(r"^[A-Z0-9]{6}-[A-Z0-9]{5}-[A-Z0-9]{6}$")
_LONG_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SHORT_UUID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_FREE_TEXT_RE = re.compile(r"^[\x21-\x7e]{1,18}$")

AUTH_ERRORS = ("EAPI:Invalid key", "EAPI:Invalid signature", "EGeneral:Temporary lockout")
RETRYABLE_ERRORS = {
    "EService:Unavailable": 503,
    "EService:Busy": 503,
    "EService:Deadline elapsed": 504,
    "EGeneral:Internal error": 500,
}
STATUS = {
    "pending": "open",
    "open": "open",
    "closed": "filled",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "expired": "expired",
}
V1_ASSET_NAMES = {v: k for k, v in V2_ASSET_NAMES.items()}  # BTC -> XBT
QUOTES = ("USDT", "USDC", "PYUSD", "USD", "EUR", "GBP", "CAD", "JPY", "CHF", "AUD", "XBT", "ETH")


def is_txid(order_id: str) -> bool:
    """A Kraken order id (``OU22CG-KLAF2-FWUDD7``); any other id is a ``cl_ord_id``."""
    return bool(TXID_RE.match(order_id))


def valid_cl_ord_id(value: str) -> bool:
    """Kraken's three ``cl_ord_id`` forms: a long UUID (36 characters with dashes), a short
    UUID (32 hex digits) or free text of 1-18 printable ASCII characters."""
    return bool(
        _LONG_UUID_RE.match(value) or _SHORT_UUID_RE.match(value) or _FREE_TEXT_RE.match(value)
    )


class KrakenPairs:
    """Kraken's pair names (``XBTUSD``, ``XXBTZUSD``, ``XBT/USD``) <-> tickpipe's v2 symbols
    (``BTC/USD``). :meth:`learn` reads an AssetPairs body; unknown names follow Kraken's
    naming rules (:meth:`symbol`, :meth:`altname`)."""

    def __init__(self) -> None:
        self._symbol: dict[str, str] = {}
        self._altname: dict[str, str] = {}

    def learn(self, body: bytes | str) -> int:
        """Remember every pair of an AssetPairs body (``result.KEY.altname``/``wsname``); the
        number learned (0 for a body it cannot read: the instruments decoder reports that)."""
        try:
            obj = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):
            return 0
        result = obj.get("result") if isinstance(obj, dict) else None
        if not isinstance(result, dict):
            return 0
        n = 0
        for key, p in result.items():
            if not isinstance(p, dict):
                continue
            wsname, alt = p.get("wsname"), p.get("altname")
            if not isinstance(wsname, str) or not isinstance(alt, str):
                continue
            self.add(alt, v2_symbol(wsname), key, wsname)
            n += 1
        return n

    def add(self, altname: str, symbol: str, *aliases: str) -> None:
        """Know ``altname`` (``XBTUSD``) as ``symbol`` (``BTC/USD``), and each alias too."""
        for name in (altname, symbol, *aliases):
            self._symbol[name] = symbol
        self._altname[symbol] = altname

    def symbol(self, pair: str) -> str:
        """The v2 symbol of a pair as Kraken names it in an order (``descr.pair``)."""
        known = self._symbol.get(pair)
        if known is not None:
            return known
        if "/" in pair:
            return v2_symbol(pair)
        if len(pair) == 8 and pair[0] in "XZ" and pair[4] in "XZ":  # XXBTZUSD
            return v2_symbol(f"{pair[1:4]}/{pair[5:]}")
        for q in QUOTES:
            if pair.endswith(q) and len(pair) > len(q):
                return v2_symbol(f"{pair[: -len(q)]}/{q}")
        return pair

    def altname(self, symbol: str) -> str:
        """The pair to send for a v2 symbol (``BTC/USD`` -> ``XBTUSD``); ConfigError for a
        symbol that is not ``BASE/QUOTE``."""
        known = self._altname.get(symbol)
        if known is not None:
            return known
        base, sep, quote = symbol.partition("/")
        if not sep or not base or not quote or "/" in quote:
            raise ConfigError(f"kraken symbols are BASE/QUOTE (BTC/USD), got {symbol!r}")
        return V1_ASSET_NAMES.get(base, base) + V1_ASSET_NAMES.get(quote, quote)


class KrakenOrders:
    """Kraken spot orders (see the module docstring). Pure: no I/O, no clock.

    - ``pairs`` (empty): pair names learned from AssetPairs (the adapter shares its own).
    - ``orders_per_s`` (1.0), ``orders_burst`` (15): the shell's token bucket over every
      private call (:data:`ORDERS_PER_S`, :data:`ORDERS_BURST`); a faster tier may raise them.
    - ``dead_man_refresh_s`` (20.0): how often the shell refreshes ``CancelAllOrdersAfter``
      while the stream is healthy (at most a third of the client's ``dead_man_timeout_s``).
    """

    venue = "kraken"
    needs_passphrase = False
    dead_man_per_symbol = False
    cancel_needs_symbol = False
    serial_nonce = True
    """The shell sends Kraken calls one at a time with strictly increasing ``ts_ms`` (the
    nonce): Kraken refuses a nonce not above the key's last (``EAPI:Invalid nonce``)."""

    def __init__(
        self,
        pairs: KrakenPairs | None = None,
        *,
        orders_per_s: float = ORDERS_PER_S,
        orders_burst: int = ORDERS_BURST,
        dead_man_refresh_s: float = DEAD_MAN_REFRESH_S,
    ) -> None:
        if not orders_per_s > 0 or orders_burst < 1 or not dead_man_refresh_s > 0:
            raise ConfigError(
                "kraken orders: orders_per_s and dead_man_refresh_s must be > 0 and "
                f"orders_burst >= 1, got {orders_per_s!r}, {dead_man_refresh_s!r}, "
                f"{orders_burst!r}"
            )
        self.pairs = pairs if pairs is not None else KrakenPairs()
        self.orders_per_s = orders_per_s
        self.orders_burst = orders_burst
        self.dead_man_refresh_s: float | None = dead_man_refresh_s

    # -- requests --------------------------------------------------------------------------
    @staticmethod
    def _private(creds: Credentials, ts_ms: int, path: str, params: dict[str, str]) -> HttpCall:
        """``nonce`` first, then the parameters in name order (as Kraken's signing example)."""
        if ts_ms <= 0:
            raise ConfigError(f"kraken nonce must be a positive integer, got {ts_ms!r}")
        body = urlencode([("nonce", str(ts_ms)), *sorted(params.items())]).encode()
        return HttpCall(
            "POST",
            path,
            headers=auth.headers(creds.key, creds.secret, path, ts_ms, body),
            body=body,
        )

    def time_call(self) -> HttpCall | None:
        return HttpCall("GET", TIME_PATH)

    def place(self, creds: Credentials, ts_ms: int, order: NewOrder) -> HttpCall:
        if order.side not in ("buy", "sell"):
            raise ConfigError(f"side must be 'buy' or 'sell', got {order.side!r}")
        if not valid_cl_ord_id(order.client_order_id):
            raise ConfigError(
                f"client_order_id {order.client_order_id!r} is not a Kraken cl_ord_id: a UUID "
                "(36 characters with dashes, or 32 hex digits) or 1-18 printable ASCII "
                "characters"
            )
        params = {
            "cl_ord_id": order.client_order_id,
            "ordertype": "limit",
            "pair": self.pairs.altname(order.symbol),
            "price": order.price,
            "type": order.side,
            "volume": order.size,
        }
        return self._private(creds, ts_ms, ADD_ORDER_PATH, params)

    def open_orders(self, creds: Credentials, ts_ms: int, symbol: str | None) -> HttpCall:
        return self._private(creds, ts_ms, OPEN_ORDERS_PATH, {})

    def get_order(
        self, creds: Credentials, ts_ms: int, symbol: str | None, order_id: str
    ) -> HttpCall:
        if is_txid(order_id):
            return self._private(creds, ts_ms, QUERY_ORDERS_PATH, {"txid": order_id})
        return self._private(creds, ts_ms, OPEN_ORDERS_PATH, {"cl_ord_id": order_id})

    def cancel(self, creds: Credentials, ts_ms: int, symbol: str | None, order_id: str) -> HttpCall:
        field = "txid" if is_txid(order_id) else "cl_ord_id"
        return self._private(creds, ts_ms, CANCEL_ORDER_PATH, {field: order_id})

    def cancel_all(self, creds: Credentials, ts_ms: int, symbol: str | None) -> HttpCall | None:
        """Kraken's CancelAll has no pair filter: None for one symbol (the shell then cancels
        each own order of it)."""
        if symbol is not None:
            return None
        return self._private(creds, ts_ms, CANCEL_ALL_PATH, {})

    def arm_dead_man(
        self, creds: Credentials, ts_ms: int, timeout_s: float, symbol: str | None
    ) -> HttpCall | None:
        """``CancelAllOrdersAfter`` with ``timeout_s`` rounded up to whole seconds (Kraken's
        unit; at least 1), 0 or less disarms. One timer for the whole key."""
        timeout = 0 if timeout_s <= 0 else max(1, math.ceil(timeout_s))
        return self._private(creds, ts_ms, CANCEL_AFTER_PATH, {"timeout": str(timeout)})

    # -- answers ---------------------------------------------------------------------------
    def decode_time(self, status: int, body: bytes) -> int:
        """``result.unixtime`` (whole seconds) in ms, at the middle of its second (+500 ms: the
        offset the shell measures is then within half a second)."""
        result = _result(status, body, "Time")
        t = result.get("unixtime") if isinstance(result, dict) else None
        if not isinstance(t, int) or isinstance(t, bool) or t <= 0:
            raise RestError(
                502, "venue_error", f"kraken Time answer has no unixtime: {_clip(body)}"
            )
        return t * 1000 + 500

    def decode_order(self, status: int, body: bytes, sent: NewOrder | None) -> Order:
        """An AddOrder answer (``sent``: the order placed), a QueryOrders answer, an OpenOrders
        answer filtered by ``cl_ord_id``, or a CancelOrder answer (a count: the order's id is
        filled in by the shell)."""
        if sent is not None:
            return self._decode_placed(status, body, sent)
        result = _result(status, body, "order", unknown_is_order=True)
        if not isinstance(result, dict):
            raise RestError(502, "venue_error", f"kraken order answer: {_clip(body)}")
        if "count" in result:  # CancelOrder
            count = result.get("count")
            if not isinstance(count, int) or isinstance(count, bool):
                raise RestError(502, "venue_error", f"kraken cancel answer: {_clip(body)}")
            if count < 1:
                raise UnknownOrderError(404, "unknown_order", "kraken cancelled no order (count 0)")
            return Order("", "", "", "", "", "", "cancelled", "", result)
        orders = result.get("open") if "open" in result else result  # OpenOrders by cl_ord_id
        if not isinstance(orders, dict) or not orders:
            raise UnknownOrderError(404, "unknown_order", "kraken has no such order")
        txid, info = next(iter(orders.items()))
        return self._order(txid, info)

    def _decode_placed(self, status: int, body: bytes, sent: NewOrder) -> Order:
        try:
            result = _result(status, body, "AddOrder")
        except RestError as exc:
            if exc.code == "rejected" and "duplicate" in exc.message.lower():
                # the cl_ord_id is taken by an open order: a retry of ours whose first answer
                # was lost. That order is the one placed; it is addressed by its cl_ord_id.
                return Order(
                    sent.client_order_id,
                    sent.client_order_id,
                    sent.symbol,
                    sent.side,
                    sent.price,
                    sent.size,
                    "open",
                    "0",
                    {"duplicate": exc.message},
                )
            raise
        txids = result.get("txid") if isinstance(result, dict) else None
        if not isinstance(txids, list) or not txids or not isinstance(txids[0], str):
            raise RestError(
                502, "venue_error", f"kraken AddOrder answer has no txid: {_clip(body)}"
            )
        return Order(
            txids[0],
            sent.client_order_id,
            sent.symbol,
            sent.side,
            sent.price,
            sent.size,
            "open",
            "0",
            result,
        )

    def decode_orders(self, status: int, body: bytes) -> list[Order]:
        result = _result(status, body, "OpenOrders")
        orders = result.get("open") if isinstance(result, dict) else None
        if not isinstance(orders, dict):
            raise RestError(502, "venue_error", f"kraken OpenOrders answer: {_clip(body)}")
        return [self._order(txid, info) for txid, info in orders.items()]

    def decode_cancel_all(self, status: int, body: bytes) -> list[str]:
        """Kraken answers ``{"count": N}``: no ids (empty list)."""
        result = _result(status, body, "CancelAll")
        if not isinstance(result, dict) or not isinstance(result.get("count"), int):
            raise RestError(502, "venue_error", f"kraken CancelAll answer: {_clip(body)}")
        return []

    def decode_ack(self, status: int, body: bytes) -> None:
        """CancelAllOrdersAfter: ``{"currentTime": ..., "triggerTime": ...}``."""
        result = _result(status, body, "CancelAllOrdersAfter")
        if not isinstance(result, dict) or "currentTime" not in result:
            raise RestError(502, "venue_error", f"kraken CancelAllOrdersAfter: {_clip(body)}")

    def _order(self, txid: Any, info: Any) -> Order:
        if not isinstance(txid, str) or not isinstance(info, dict):
            raise RestError(502, "venue_error", f"kraken order {str(txid)[:40]!r} is not an object")
        descr = info.get("descr")
        if not isinstance(descr, dict):
            raise RestError(502, "venue_error", f"kraken order {txid} has no descr")
        raw_status = info.get("status")
        status = STATUS.get(raw_status) if isinstance(raw_status, str) else None
        if status is None:
            raise RestError(
                502, "venue_error", f"kraken order {txid}: unknown status {str(raw_status)[:20]!r}"
            )
        cl = info.get("cl_ord_id")
        pair = descr.get("pair")
        return Order(
            order_id=txid,
            client_order_id=cl if isinstance(cl, str) else "",
            symbol=self.pairs.symbol(pair) if isinstance(pair, str) else "",
            side=str(descr.get("type", "")),
            price=str(descr.get("price", "")),
            size=str(info.get("vol", "")),
            status=status,
            filled_size=str(info.get("vol_exec", "0")),
            raw={"txid": txid, **info},
        )


# -- Kraken's answer envelope --------------------------------------------------------------


def _clip(body: bytes, n: int = 200) -> str:
    return body[:n].decode(errors="replace")


def _result(status: int, body: bytes, what: str, *, unknown_is_order: bool = False) -> Any:
    """``result`` of an answer whose ``error`` list holds no error; else the typed error."""
    try:
        obj = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        obj = None
    if status >= 500:
        errs = _errors(obj)
        raise RestError(
            status,
            "venue_error",
            f"kraken {what}: HTTP {status}" + (f" {'; '.join(errs)}" if errs else ""),
        )
    if not isinstance(obj, dict):
        code = 502 if 200 <= status < 300 else status
        raise RestError(
            code, "venue_error", f"kraken {what}: unreadable answer (HTTP {status}): {_clip(body)}"
        )
    errs = _errors(obj)
    if errs:
        raise _typed(errs[0], what, unknown_is_order)
    if not 200 <= status < 300:
        raise RestError(status, "venue_error", f"kraken {what}: HTTP {status}: {_clip(body)}")
    return obj.get("result")


def _errors(obj: Any) -> list[str]:
    raw = obj.get("error") if isinstance(obj, dict) else None
    if not isinstance(raw, list):
        return []
    return [e[:200] for e in raw if isinstance(e, str) and e.startswith("E")]


def _typed(err: str, what: str, unknown_is_order: bool) -> RestError:
    """Kraken's error string -> the typed error (see the module docstring)."""
    said = f"kraken {what}: {err}"
    if err in AUTH_ERRORS or err.startswith("EAuth:"):
        return CredentialsRejected(
            401, "auth_failed", f"kraken refused the API key or its signature ({err}): fatal"
        )
    if err.startswith("EAPI:Invalid nonce"):
        return RestError(
            409,
            "invalid_nonce",
            f"{said} (the nonce is the venue-clock ms and must rise for the key: is another "
            "program using this key with larger nonces?)",
        )
    if err.startswith("EAPI:Rate limit exceeded"):
        return RateLimitedError(said, API_LIMIT_WAIT_S)
    if err.startswith(("EOrder:Rate limit exceeded", "EOrder:Domain rate limit exceeded")):
        return RateLimitedError(said, ORDER_LIMIT_WAIT_S)
    if err.startswith("EService:Throttled"):
        return RateLimitedError(said, ORDER_LIMIT_WAIT_S)
    for prefix, code in RETRYABLE_ERRORS.items():
        if err.startswith(prefix):
            return RestError(code, "venue_error", said)
    if err.startswith("EOrder:Unknown order") or (
        unknown_is_order and err.startswith("EOrder:Invalid order")
    ):
        return UnknownOrderError(404, "unknown_order", said)
    if err.startswith("EGeneral:Permission denied"):
        return RestError(403, "permission_denied", said)
    return RestError(400, "rejected", said)
