"""The signed order endpoints of the ``binance`` and ``binance-usdm`` dialects (issue 17).

Binance spot's and USD-M futures' own order API over the gateway's :class:`OrderDesk`
(``gw.desk``: orders kept per API key, resting and filling against the simulated market), with
the request checks Binance documents, in its order, answered with its codes and statuses:

1. Request weight per IP (``venues.binance.orders`` ``OrderSpec.weights``, charged as the
   market-data endpoints are: 429/418 + ``Retry-After`` over the budget).
2. ``X-MBX-APIKEY``: missing -> 401 ``-2014 API-key format invalid.``; not a key of the gateway
   (``gw.keys``) -> 401 ``-2015 Invalid API-key, IP, or permissions for action.``
3. ``signature``, ``timestamp`` missing -> 400 ``-1102``; ``recvWindow`` over 60000 or not a
   number -> 400 ``-1130``.
4. The signature, verified with the function the client signs with
   (``venues.binance.auth.verify_signature``: HMAC-SHA256 of the raw query string followed by
   the body, keyed with the key's secret) -> 400 ``-1022 Signature for this request is not
   valid.``
5. The timestamp (ms; spot also takes µs, 16 digits) within the window
   (``auth.check_timestamp``: not 1000 ms ahead of the gateway's clock, not older than
   ``recvWindow``) -> 400 ``-1021``. A request repeated within
   its window is processed again, as on Binance (no replay cache): a repeated place of an open
   order is refused by its client order id instead.

Then the one-shot order faults (``gw.order_faults``, ``Gateway.trigger``):

- ``order_5xx``: a place is *executed* and its answer lost: 503 with Binance's "execution status
  unknown" (spot ``-1007``, USD-M ``-1000 Unknown error, please check your request or try again
  later.``), so a retry with the same ``newClientOrderId`` meets the open order (spot ``-2010
  Duplicate order sent.``, USD-M ``-4116 ClientOrderId is duplicated.``); any other call
  answers 503 ``-1001`` without acting.
- ``order_timeout``: the same, after ``duration_ms`` without an answer.
- ``order_rate_limit``: 429 ``-1015 Too many new orders`` (``-1003`` for a call other than a
  place) with ``Retry-After``.
- ``cancel_fails_once``: the next cancel (one order or all of a symbol) answers 503 ``-1001``
  and cancels nothing.

Orders: LIMIT GTC only (the desk's kind; another ``type`` is ``-1116``, another
``timeInForce`` ``-1115``); prices and quantities on the instrument's grid (else ``-1013
Filter failure: PRICE_FILTER`` / ``LOT_SIZE``); ``newClientOrderId`` by the market's regex (else
``-1100``), unique among the key's open orders. ``orderId`` is the desk's order number. At most
``orders_per_10s`` (dialect option; spot 50, USD-M 300) new orders per key in any 10 s, then
429 ``-1015`` with ``Retry-After``. USD-M's ``countdownCancelAll`` arms ``gw.dead_man`` for
the key and symbol (``countdownTime`` 0 disarms). Spot has no such endpoint (404, as Binance).

Logged: each refused signed request (reason, path, key), never a secret, a signature or a
query string.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from tickpipe.errors import FrameError
from tickpipe.gateway.guard import clip
from tickpipe.gateway.logs import log_event
from tickpipe.gateway.orders import Order as DeskOrder
from tickpipe.venues.binance.auth import (
    API_KEY_HEADER,
    DEFAULT_RECV_WINDOW_MS,
    MAX_RECV_WINDOW_MS,
    check_timestamp,
    verify_signature,
)
from tickpipe.venues.binance.limits import RETRY_AFTER_HEADER, USED_WEIGHT_HEADER
from tickpipe.venues.binance.orders import (
    BAD_API_KEY_FMT,
    CANCEL_REJECTED,
    INVALID_SIGNATURE,
    NO_SUCH_ORDER,
    REJECTED_MBX_KEY,
    TIMESTAMP_OUTSIDE_RECV_WINDOW,
    TOO_MANY_ORDERS,
    UNKNOWN_ORDER_MSG,
    OrderSpec,
    WireOrder,
    encode_order,
)

if TYPE_CHECKING:
    from tickpipe.gateway.dialects.binance import BinanceDialect
    from tickpipe.gateway.hub import Market

MAX_BODY_BYTES = 65_536
ORDERS_WINDOW_S = 10.0
DESK_STATUS = {"filled": "FILLED", "cancelled": "CANCELED"}
_encode = msgspec.json.encode


class _Refused(Exception):
    """A request answered with a Binance error (status, code, message, extra headers)."""

    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None):
        super().__init__(msg)
        self.status, self.code, self.msg, self.headers = status, code, msg, headers or {}


class _AlreadyAnswered(Exception):
    """The weight check answered already (429/418 with its headers)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__("answered")
        self.response = response


@dataclass(slots=True)
class _Call:
    """A signed request that passed the checks: its key, parameters and the IP's used weight."""

    key: str
    params: dict[str, str]
    used: int


def _mandatory(name: str) -> _Refused:
    return _Refused(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


class BinanceOrderEndpoints:
    """The order routes of one Binance dialect (``dialect.order_spec`` names the market)."""

    def __init__(self, d: BinanceDialect) -> None:
        self.d = d
        self.gw = d.gw
        self.spec: OrderSpec = d.order_spec
        self.usdm = self.spec.dead_man_path is not None
        self.orders_per_10s: int = d.opts.orders_per_10s
        self._recent: dict[str, deque[float]] = {}  # key -> new-order times in the window
        self.signed_requests = 0  # requests that reached a signed endpoint
        self.refused: dict[str, int] = {}  # reason -> count
        self.faults_served: dict[str, int] = {}
        self.duplicates_refused = 0  # places refused: their client order id is an open order's

    def routes(self) -> list[web.RouteDef]:
        s = self.spec
        out = [
            web.post(s.order_path, self.place),
            web.get(s.order_path, self.query),
            web.delete(s.order_path, self.cancel),
            web.get(s.open_orders_path, self.open_orders),
            web.delete(s.cancel_all_path, self.cancel_all),
        ]
        if s.dead_man_path is not None:
            out.append(web.post(s.dead_man_path, self.countdown_cancel_all))
        return out

    def stats(self) -> dict[str, Any]:
        return {
            "signed_requests": self.signed_requests,
            "refused": dict(self.refused),
            "faults_served": dict(self.faults_served),
            "duplicates_refused": self.duplicates_refused,
            "orders_per_10s": self.orders_per_10s,
        }

    # -- the checks every signed request passes ----------------------------------------------
    async def _signed(self, request: web.Request, weight: int, call: _Call) -> None:
        """Fill ``call`` from a request that passes steps 1-5 (module docstring); else raise
        :class:`_Refused` (or :class:`_AlreadyAnswered`: over the weight budget)."""
        self.signed_requests += 1
        refused, used = self.d._charge(request, weight)
        if refused is not None:
            raise _AlreadyAnswered(refused)
        call.used = used
        raw_query = request.rel_url.raw_query_string
        body = ""
        if request.can_read_body:
            data = await request.content.read(MAX_BODY_BYTES + 1)
            if len(data) > MAX_BODY_BYTES:
                raise self._refuse(request, "body_too_large", 400, -1101, "Too many parameters.")
            body = data.decode("utf-8", "replace")
        params: dict[str, str] = {}
        for text in (raw_query, body):  # a parameter in both: the query string's is used
            for k, v in parse_qsl(text, keep_blank_values=True):
                params.setdefault(k, v)
        key = request.headers.get(API_KEY_HEADER, "")
        if not key:
            raise self._refuse(request, "no_key", 401, BAD_API_KEY_FMT, "API-key format invalid.")
        secret = self.gw.keys.get(key)
        if secret is None:
            raise self._refuse(
                request,
                "unknown_key",
                401,
                REJECTED_MBX_KEY,
                "Invalid API-key, IP, or permissions for action.",
                key=key,
            )
        for name in ("signature", "timestamp"):
            if not params.get(name):
                self._count(request, f"no_{name}", key)
                raise _mandatory(name)
        ts_text = params["timestamp"]
        if not ts_text.isascii() or not ts_text.isdigit() or len(ts_text) > 19:
            self._count(request, "bad_timestamp", key)
            raise _mandatory("timestamp")
        window = params.get("recvWindow", str(DEFAULT_RECV_WINDOW_MS))
        try:
            recv_window = float(window)
        except ValueError:
            recv_window = math.nan
        if not 0 < recv_window <= MAX_RECV_WINDOW_MS:  # nan fails too
            self._count(request, "bad_recv_window", key)
            raise _Refused(400, -1130, "Data sent for parameter 'recvWindow' is not valid.")
        if not verify_signature(secret, raw_query, body):
            raise self._refuse(
                request,
                "bad_signature",
                400,
                INVALID_SIGNATURE,
                "Signature for this request is not valid.",
                key=key,
            )
        ts_ms = int(ts_text)
        if not self.usdm and len(ts_text) >= 16:  # spot also takes microseconds
            ts_ms //= 1000
        why = check_timestamp(ts_ms, time.time_ns() // 1_000_000, recv_window)
        if why is not None:
            raise self._refuse(
                request, "timestamp", 400, TIMESTAMP_OUTSIDE_RECV_WINDOW, why, key=key
            )
        call.key, call.params = key, params

    def _count(self, request: web.Request, reason: str, key: str | None) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        log_event(
            "signed_request_refused",
            level=logging.WARNING,
            dialect=self.d.name,
            reason=reason,
            method=request.method,
            path=clip(request.path),
            key=clip(key) if key else None,
        )

    def _refuse(
        self,
        request: web.Request,
        reason: str,
        status: int,
        code: int,
        msg: str,
        key: str | None = None,
    ) -> _Refused:
        self._count(request, reason, key)
        return _Refused(status, code, msg)

    @staticmethod
    def _answer(
        call: _Call, status: int, body: Any, extra: dict[str, str] | None = None
    ) -> web.Response:
        headers = {USED_WEIGHT_HEADER: str(call.used), **(extra or {})}
        return web.Response(
            body=_encode(body), status=status, content_type="application/json", headers=headers
        )

    # -- faults ---------------------------------------------------------------------------------
    def _fault(self, call: str) -> tuple[str, int] | None:
        got = self.gw.order_faults.take(call)
        if got is not None:
            fault, ms = got
            self.faults_served[fault] = self.faults_served.get(fault, 0) + 1
            self.d.faults.record(fault, dialect=self.d.name, call=call, duration_ms=ms)
        return got

    def _lost_answer(self) -> _Refused:
        """A 5xx whose execution status is unknown (the call may have been done)."""
        if self.usdm:
            msg = "Unknown error, please check your request or try again later."
            return _Refused(503, -1000, msg)
        return _Refused(
            503,
            -1007,
            "Timeout waiting for response from backend server. Send status unknown; execution "
            "status unknown.",
        )

    def _too_many(self) -> str:
        return f"Too many new orders; current limit is {self.orders_per_10s} orders per 10 SECOND."

    @staticmethod
    def _failed() -> _Refused:
        return _Refused(
            503, -1001, "Internal error; unable to process your request. Please try again."
        )

    async def _before(self, call: str) -> tuple[str, int] | None:
        """Order faults that answer before anything is done; returns the fault that acts after
        a place (``order_5xx`` / ``order_timeout``), else None."""
        got = self._fault(call)
        if got is None:
            return None
        fault, ms = got
        if fault == "order_rate_limit":
            wait = str(max(1, math.ceil(ms / 1000))) if ms else "1"
            if call == "place":
                raise _Refused(429, TOO_MANY_ORDERS, self._too_many(), {RETRY_AFTER_HEADER: wait})
            raise _Refused(
                429,
                -1003,
                "Too many requests queued.",
                {RETRY_AFTER_HEADER: wait},
            )
        if call == "place" and fault in ("order_5xx", "order_timeout"):
            return got  # executed, then the answer is lost
        if fault == "order_timeout":
            await asyncio.sleep(ms / 1000)
        raise self._failed()

    # -- helpers --------------------------------------------------------------------------------
    def _market(self, params: dict[str, str]) -> Market:
        symbol = params.get("symbol")
        if not symbol:
            raise _mandatory("symbol")
        market = self.gw.hub.markets.get(symbol)
        if market is None:
            raise _Refused(400, -1121, "Invalid symbol.")
        return market

    def _find(self, key: str, params: dict[str, str], market: Market) -> DeskOrder | None:
        oid, coid = params.get("orderId"), params.get("origClientOrderId")
        if not oid and not coid:
            raise _Refused(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if oid:
            if not oid.isascii() or not oid.isdigit() or len(oid) > 19:
                raise _Refused(
                    400,
                    -1100,
                    "Illegal characters found in parameter 'orderId'; legal range is "
                    "'^[0-9]{1,19}$'.",
                )
            order = self.gw.desk.get(key, f"O{int(oid)}")
            if order is not None and coid and order.client_order_id != coid:
                order = None
        else:
            assert coid is not None
            order = self.gw.desk.by_client_id(key, coid)
        if order is None or order.instrument.symbol != market.instrument.symbol:
            return None
        return order

    def _wire(self, o: DeskOrder) -> WireOrder:
        inst = o.instrument
        if o.status == "open":
            status = "PARTIALLY_FILLED" if o.filled else "NEW"
        else:
            status = DESK_STATUS[o.status]
        price = inst.format_price(o.price)
        filled = inst.format_size(o.filled)
        # fills are at the order's price or better; the quote filled is counted at its price
        quote = Decimal(price) * Decimal(filled)
        return WireOrder(
            order_id=int(o.order_id[1:]),
            client_order_id=o.client_order_id,
            symbol=inst.symbol,
            side=o.side.upper(),
            price=price,
            orig_qty=inst.format_size(o.size),
            executed_qty=filled,
            cum_quote=format(quote.normalize() if quote else Decimal(0), "f"),
            status=status,
            time_ms=o.created_ns // 1_000_000,
            update_ms=o.updated_ns // 1_000_000,
        )

    def _new_order_admitted(self, key: str) -> float:
        """0 when the key may place one more order now (counted), else seconds to wait."""
        now = time.monotonic()
        q = self._recent.setdefault(key, deque())
        while q and now - q[0] >= ORDERS_WINDOW_S:
            q.popleft()
        if len(q) >= self.orders_per_10s:
            return ORDERS_WINDOW_S - (now - q[0])
        q.append(now)
        if len(self._recent) > 10_000:  # bound memory: forget keys with nothing recent
            self._recent = {
                k: v for k, v in self._recent.items() if v and now - v[-1] < ORDERS_WINDOW_S
            }
        return 0.0

    # -- endpoints ------------------------------------------------------------------------------
    async def place(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "place", self._place)

    async def query(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "get", self._query)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "cancel", self._cancel)

    async def open_orders(self, request: web.Request) -> web.StreamResponse:
        weight = "open" if request.query.get("symbol") else "open_all"
        return await self._serve(request, weight, self._open_orders)

    async def cancel_all(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "cancel_all", self._cancel_all)

    async def countdown_cancel_all(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "dead_man", self._countdown)

    async def _serve(
        self,
        request: web.Request,
        weight: str,
        handler: Callable[[_Call], Awaitable[web.Response]],
    ) -> web.StreamResponse:
        call = _Call("", {}, 0)
        try:
            await self._signed(request, self.spec.weights.get(weight, 1), call)
            return await handler(call)
        except _AlreadyAnswered as done:
            return done.response
        except _Refused as r:
            return self._answer(call, r.status, {"code": r.code, "msg": r.msg}, r.headers)

    async def _place(self, call: _Call) -> web.Response:
        key, params = call.key, call.params
        after = await self._before("place")
        market = self._market(params)
        inst = market.instrument
        side = params.get("side")
        if not side:
            raise _mandatory("side")
        if side not in ("BUY", "SELL"):
            raise _Refused(400, -1117, "Invalid side.")
        otype = params.get("type")
        if not otype:
            raise _mandatory("type")
        if otype != "LIMIT":
            raise _Refused(
                400, -1116, "Invalid orderType. (the reference gateway simulates LIMIT orders only)"
            )
        tif = params.get("timeInForce")
        if not tif:
            raise _mandatory("timeInForce")
        if tif != "GTC":
            raise _Refused(
                400, -1115, "Invalid timeInForce. (the reference gateway simulates GTC only)"
            )
        units: dict[str, int] = {}
        for name, filt in (("price", "PRICE_FILTER"), ("quantity", "LOT_SIZE")):
            text = params.get(name)
            if not text:
                raise _mandatory(name)
            try:
                units[name] = inst.price_units(text) if name == "price" else inst.size_units(text)
            except FrameError:
                units[name] = 0
            if units[name] <= 0:
                raise _Refused(400, -1013, f"Filter failure: {filt}")
        coid = params.get("newClientOrderId")
        if coid is not None and not self.spec.client_id_re.match(coid):
            raise _Refused(
                400,
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                f"'{self.spec.client_id_pattern}'.",
            )
        if coid is None:
            coid = secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")[:22]
        desk = self.gw.desk
        existing = desk.by_client_id(key, coid)
        if existing is not None and existing.status == "open":
            self.duplicates_refused += 1
            raise _Refused(400, self.spec.duplicate_code, self.spec.duplicate_msg)
        if desk.open_count(key) >= desk.max_open_per_key:
            raise _Refused(400, -1013, "Filter failure: MAX_NUM_ORDERS")
        wait = self._new_order_admitted(key)  # an order that would be accepted counts
        if wait > 0:
            raise _Refused(
                429,
                TOO_MANY_ORDERS,
                self._too_many(),
                {RETRY_AFTER_HEADER: str(max(1, math.ceil(wait)))},
            )
        order = desk.place(
            key,
            inst,
            "buy" if side == "BUY" else "sell",
            units["price"],
            units["quantity"],
            coid,
            market.sim.book,
        )
        if after is not None:
            fault, ms = after
            if fault == "order_timeout":
                await asyncio.sleep(ms / 1000)
            raise self._lost_answer()
        return self._answer(call, 200, encode_order(self.spec, self._wire(order), "place"))

    async def _query(self, call: _Call) -> web.Response:
        key, params = call.key, call.params
        await self._before("other")
        order = self._find(key, params, self._market(params))
        if order is None:
            raise _Refused(400, NO_SUCH_ORDER, "Order does not exist.")
        return self._answer(call, 200, encode_order(self.spec, self._wire(order), "get"))

    async def _cancel(self, call: _Call) -> web.Response:
        key, params = call.key, call.params
        await self._before("cancel")
        order = self._find(key, params, self._market(params))
        if order is None or order.status != "open":
            raise _Refused(400, CANCEL_REJECTED, UNKNOWN_ORDER_MSG)
        self.gw.desk.cancel(order)
        cancel_id = params.get("newClientOrderId") or secrets.token_hex(11)
        body = encode_order(self.spec, self._wire(order), "cancel", cancel_client_id=cancel_id)
        return self._answer(call, 200, body)

    async def _open_orders(self, call: _Call) -> web.Response:
        key, params = call.key, call.params
        await self._before("list")
        symbol = None
        if params.get("symbol") is not None:
            symbol = self._market(params).instrument.symbol
        orders = sorted(self.gw.desk.find(key, "open", symbol), key=lambda o: int(o.order_id[1:]))
        return self._answer(
            call, 200, [encode_order(self.spec, self._wire(o), "get") for o in orders]
        )

    async def _cancel_all(self, call: _Call) -> web.Response:
        key, params = call.key, call.params
        await self._before("cancel")
        symbol = self._market(params).instrument.symbol
        desk = self.gw.desk
        if self.usdm:
            desk.cancel_all(key, symbol)
            return self._answer(
                call, 200, {"code": 200, "msg": "The operation of cancel all open order is done."}
            )
        victims = sorted(desk.find(key, "open", symbol), key=lambda o: int(o.order_id[1:]))
        if not victims:
            raise _Refused(400, CANCEL_REJECTED, UNKNOWN_ORDER_MSG)
        cancel_id = secrets.token_hex(11)
        out = []
        for o in victims:
            desk.cancel(o)
            out.append(encode_order(self.spec, self._wire(o), "cancel", cancel_client_id=cancel_id))
        return self._answer(call, 200, out)

    async def _countdown(self, call: _Call) -> web.Response:
        key, params = call.key, call.params
        await self._before("other")
        symbol = self._market(params).instrument.symbol
        text = params.get("countdownTime")
        if text is None or text == "":
            raise _mandatory("countdownTime")
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            raise _Refused(
                400,
                -1100,
                "Illegal characters found in parameter 'countdownTime'; legal range is "
                "'^[0-9]{1,12}$'.",
            )
        ms = int(text)
        self.gw.dead_man.arm(key, symbol, ms / 1000)
        log_event(
            "dead_man_armed" if ms else "dead_man_disarmed",
            dialect=self.d.name,
            key=key,
            symbol=symbol,
            countdown_ms=ms,
        )
        return self._answer(call, 200, {"symbol": symbol, "countdownTime": str(ms)})
