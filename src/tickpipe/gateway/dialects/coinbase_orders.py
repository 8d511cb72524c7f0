"""The ``coinbase`` dialect's order endpoints (issue 17): Coinbase Advanced Trade's private REST
API over the gateway's :class:`~tickpipe.gateway.orders.OrderDesk`, each request's JWT verified
with :func:`tickpipe.venues.coinbase.auth.verify` (the function the client signs with).

Keys: each gateway key (``--key NAME:PEM``, ``--key-file``, ``GatewayConfig.keys``) whose secret
is the PEM of an EC P-256 key verifies the JWTs whose ``kid`` is NAME. The PEM may be the
private key, as Coinbase hands it to the user (``\\n`` escaped on one line: a key file line is
``organizations/o/apiKeys/k:-----BEGIN EC PRIVATE KEY-----\\nMHc...\\n-----END EC PRIVATE
KEY-----\\n``; the gateway keeps only its public half), or just the public key (``-----BEGIN
PUBLIC KEY-----``: the gateway then holds no secret at all). Any other key (the demo pair) signs
nothing here: its requests are refused like an unknown key's.

Served (paths as Coinbase's; ``uri`` claims name ``api.coinbase.com`` since the gateway plays
that host): ``GET /api/v3/brokerage/time`` (public), ``POST /api/v3/brokerage/orders``
(``limit_limit_gtc`` only; ``client_order_id`` required and idempotent: a repeat returns the
first order), ``GET /api/v3/brokerage/orders/historical/batch`` (``order_status``,
``product_ids`` repeated; one page: ``has_next`` false), ``GET
/api/v3/brokerage/orders/historical/{order_id}``, ``POST /api/v3/brokerage/orders/batch_cancel``
(1-100 ``order_ids``). Answers follow the documented shapes (see ``venues/coinbase/orders.py``).

Checks, in order, on every private request: the JWT (401 ``Unauthorized`` for a missing or bad
token, an unknown ``kid``, a bad signature, ``iss`` not ``cdp``, ``sub`` not the ``kid``,
``uri`` not this method and path, ``nbf``/``exp`` outside the gateway clock +-
``jwt_leeway_s``; the same answer whatever failed, the reason goes to the gateway log only),
then the key's rate (``private_requests_per_s``, 30: Coinbase's documented per-user limit;
more: 429 ``RATE_LIMIT_EXCEEDED``), then the one-shot order faults (``gw.order_faults``):
``order_5xx`` (503; on a place the order IS placed first and only its answer is lost, so a
retry must carry the same ``client_order_id``), ``order_timeout`` (the answer held back
``duration_ms``, then the request carried out), ``order_rate_limit`` (429), and
``cancel_fails_once`` (the next cancel answers 503, nothing cancelled). A JWT used twice is not
refused (Coinbase documents no such refusal; a JWT is bound to one method and path for 2
minutes). Coinbase has no dead man's switch: ``gw.dead_man`` is never armed by this dialect.
Neither secrets nor tokens are ever logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from tickpipe.errors import ConfigError, FrameError
from tickpipe.gateway.dialects.base import SlidingCount
from tickpipe.gateway.guard import clip
from tickpipe.gateway.logs import log_event
from tickpipe.gateway.orders import Order as DeskOrder
from tickpipe.venues.coinbase import auth
from tickpipe.venues.coinbase.orders import (
    CANCEL_PATH,
    LIST_PATH,
    MAX_CANCEL_IDS,
    ORDER_PATH,
    PLACE_PATH,
    TIME_PATH,
)
from tickpipe.venues.kraken.rfc3339 import format_ns

if TYPE_CHECKING:
    from tickpipe.gateway.dialects.coinbase import CoinbaseDialect

MAX_CLIENT_ORDER_ID_CHARS = 128
MAX_DECIMAL_CHARS = 40
LIST_STATUSES = {
    "OPEN": "open",
    "FILLED": "filled",
    "CANCELLED": "cancelled",
    "PENDING": None,
    "QUEUED": None,
    "CANCEL_QUEUED": None,
    "EDIT_QUEUED": None,
    "EXPIRED": None,
    "FAILED": None,
    "UNKNOWN_ORDER_STATUS": None,
}
"""``order_status`` values Coinbase accepts -> the desk status they select (None: the desk has
no such orders)."""
_VENUE_STATUS = {"open": "OPEN", "filled": "FILLED", "cancelled": "CANCELLED"}

_json = msgspec.json.Encoder()


def error_response(status: int, error: str, message: str) -> web.Response:
    """Coinbase's error body ``{"error", "error_details", "message"}``."""
    body = _json.encode({"error": error, "error_details": message, "message": message})
    return web.Response(body=body, status=status, content_type="application/json")


def unauthorized() -> web.Response:
    """Coinbase's answer to a request without a good JWT: 401 ``Unauthorized``."""
    return web.Response(status=401, text="Unauthorized\n")


def _ok(obj: object) -> web.Response:
    return web.Response(body=_json.encode(obj), content_type="application/json")


def _rfc3339(ns: int) -> str:
    return format_ns(ns, 6)


def _config(o: DeskOrder) -> dict[str, Any]:
    inst = o.instrument
    return {
        "limit_limit_gtc": {
            "base_size": inst.format_size(o.size),
            "limit_price": inst.format_price(o.price),
            "post_only": False,
        }
    }


def order_json(o: DeskOrder) -> dict[str, Any]:
    """A desk order as Coinbase's order object (the fields the desk knows)."""
    inst = o.instrument
    pct = "0" if not o.size else format(o.filled * 100 / o.size, ".2f").rstrip("0").rstrip(".")
    return {
        "order_id": o.order_id,
        "product_id": inst.symbol,
        "user_id": o.key,
        "order_configuration": _config(o),
        "side": o.side.upper(),
        "client_order_id": o.client_order_id,
        "status": _VENUE_STATUS[o.status],
        "time_in_force": "GOOD_UNTIL_CANCELLED",
        "created_time": _rfc3339(o.created_ns),
        "last_update_time": _rfc3339(o.updated_ns),
        "completion_percentage": pct,
        "filled_size": inst.format_size(o.filled),
        "pending_cancel": False,
        "size_in_quote": False,
        "order_type": "LIMIT",
        "reject_reason": "",
        "settled": o.status != "open",
        "product_type": "SPOT",
        "reject_message": "",
        "cancel_message": "" if o.cancel_reason is None else o.cancel_reason,
        "order_placement_source": "RETAIL_ADVANCED",
    }


def _placed(o: DeskOrder) -> dict[str, Any]:
    return {
        "success": True,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": o.order_id,
        "success_response": {
            "order_id": o.order_id,
            "product_id": o.instrument.symbol,
            "side": o.side.upper(),
            "client_order_id": o.client_order_id,
        },
        "order_configuration": _config(o),
    }


def _refused(error: str, message: str, config: object) -> web.Response:
    """A place Coinbase refuses: HTTP 200 with ``success`` false."""
    return _ok(
        {
            "success": False,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": "",
            "error_response": {
                "error": error,
                "message": message,
                "error_details": message,
                "preview_failure_reason": f"PREVIEW_{error}",
                "new_order_failure_reason": error,
            },
            "order_configuration": config if isinstance(config, dict) else {},
        }
    )


def public_keys(keys: dict[str, str]) -> tuple[dict[str, ec.EllipticCurvePublicKey], list[str]]:
    """(key name -> public key) for each gateway key whose secret is an EC P-256 PEM, and the
    names of the others (which sign nothing here)."""
    out: dict[str, ec.EllipticCurvePublicKey] = {}
    other: list[str] = []
    for name, secret in keys.items():
        try:
            out[name] = auth.load_public_key(secret)
        except ConfigError:
            other.append(name)
    return out, other


class CoinbaseOrderDesk:
    """The order endpoints of one ``coinbase`` dialect (see the module docstring)."""

    def __init__(self, d: CoinbaseDialect) -> None:
        self.d = d
        self.gw = d.gw
        self.keys, self.unusable_keys = public_keys(self.gw.keys)
        self.private_calls = SlidingCount(1.0)
        self.requests = 0  # private requests that reached a handler (signed or not)
        self.accepted = 0  # ... whose JWT was good
        self.refused: dict[str, int] = {"auth": 0, "rate": 0, "fault": 0}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(TIME_PATH, self.server_time),
            web.post(PLACE_PATH, self.place),
            web.get(LIST_PATH, self.list_orders),  # before {order_id}: "batch" is no id
            web.get(ORDER_PATH + "{order_id}", self.get_order),
            web.post(CANCEL_PATH, self.cancel),
        ]

    def stats(self) -> dict[str, Any]:
        return {
            "keys": len(self.keys),
            "requests": self.requests,
            "accepted": self.accepted,
            "refused": dict(self.refused),
        }

    # -- the checks every private request passes --------------------------------------------
    async def _authed(
        self, request: web.Request, call: str
    ) -> tuple[str, str | None] | web.Response:
        """(key name, the order fault to apply in the handler: ``order_5xx`` on a place) for a
        request with a good JWT within the key's rate, else the answer to send."""
        self.requests += 1
        opts = self.d.opts
        try:
            token = auth.bearer_token(request.headers.get("Authorization"))
            key = auth.verify(
                token,
                self.keys,
                request.method,
                request.rel_url.raw_path,  # as sent (and signed), without the query
                now_s=time.time(),
                leeway_s=opts.jwt_leeway_s,
            )
        except auth.JwtRejected as exc:
            self.refused["auth"] += 1
            log_event(
                "auth_failed",
                level=logging.WARNING,
                dialect="coinbase",
                path=request.path,
                ip=request.remote,
                reason=exc.reason,
            )
            return unauthorized()
        if not self.private_calls.admit(key, opts.private_requests_per_s):
            self.refused["rate"] += 1
            log_event("rate_limited", level=logging.WARNING, dialect="coinbase", key=key)
            return error_response(
                429,
                "RATE_LIMIT_EXCEEDED",
                f"Too many requests: more than {opts.private_requests_per_s} a second",
            )
        self.accepted += 1
        taken = self.gw.order_faults.take(call)
        if taken is None:
            return key, None
        fault, ms = taken
        self.refused["fault"] += 1
        log_event("order_fault", level=logging.WARNING, dialect="coinbase", fault=fault, call=call)
        if fault == "order_timeout":
            await asyncio.sleep(ms / 1000)
            return key, None
        if fault == "order_rate_limit":
            return error_response(429, "RATE_LIMIT_EXCEEDED", "Too many requests (fault)")
        if fault == "order_5xx" and call == "place":
            return key, fault  # placed, then the answer is lost
        return error_response(503, "UNAVAILABLE", "service unavailable (fault)")

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
        try:
            obj = msgspec.json.decode(await request.read())
        except msgspec.DecodeError as exc:
            return error_response(400, "INVALID_ARGUMENT", f"body is not JSON: {clip(exc, 120)}")
        if not isinstance(obj, dict):
            return error_response(400, "INVALID_ARGUMENT", "body must be a JSON object")
        return obj

    # -- endpoints ----------------------------------------------------------------------------
    async def server_time(self, request: web.Request) -> web.Response:
        d = self.d
        ip = request.remote or "?"
        if not d.rest_calls.admit(ip, d.opts.rest_requests_per_s):
            d.refused["rest"] += 1
            return error_response(429, "RATE_LIMIT_EXCEEDED", "Too many requests")
        ns = time.time_ns()
        ms = ns // 1_000_000
        return _ok(
            {
                "iso": format_ns(ns, 3),
                "epochSeconds": str(ms // 1000),
                "epochMillis": str(ms),
            }
        )

    async def place(self, request: web.Request) -> web.Response:
        got = await self._authed(request, "place")
        if isinstance(got, web.Response):
            return got
        key, fault = got
        obj = await self._json_body(request)
        if isinstance(obj, web.Response):
            return obj
        coid = obj.get("client_order_id")
        if not isinstance(coid, str) or not 0 < len(coid) <= MAX_CLIENT_ORDER_ID_CHARS:
            return error_response(
                400,
                "INVALID_ARGUMENT",
                f"client_order_id must be a string of 1-{MAX_CLIENT_ORDER_ID_CHARS} characters",
            )
        desk = self.gw.desk
        existing = desk.by_client_id(key, coid)
        if existing is not None:  # "the order corresponding with that ID will be returned"
            return self._answer(existing, fault)
        side = obj.get("side")
        if side not in ("BUY", "SELL"):
            return error_response(
                400, "INVALID_ARGUMENT", f"side must be BUY or SELL, got {clip(side, 20)!r}"
            )
        config = obj.get("order_configuration")
        pid = obj.get("product_id")
        market = self.gw.hub.markets.get(pid) if isinstance(pid, str) else None
        if market is None:
            return _refused("INVALID_PRODUCT_ID", f"unknown product_id {clip(pid, 40)!r}", config)
        limit = config.get("limit_limit_gtc") if isinstance(config, dict) else None
        if not isinstance(config, dict) or len(config) != 1 or not isinstance(limit, dict):
            return _refused(
                "UNSUPPORTED_ORDER_CONFIGURATION",
                "this gateway takes limit_limit_gtc orders only",
                config,
            )
        inst = market.instrument
        price_text, size_text = limit.get("limit_price"), limit.get("base_size")
        try:
            if not isinstance(price_text, str) or len(price_text) > MAX_DECIMAL_CHARS:
                raise FrameError("limit_price must be a decimal string")
            price = inst.price_units(price_text)
        except FrameError as exc:
            return _refused(
                "INVALID_PRICE_PRECISION",
                f"limit_price: {exc.reason} (price_increment {inst.tick_size})",
                config,
            )
        try:
            if not isinstance(size_text, str) or len(size_text) > MAX_DECIMAL_CHARS:
                raise FrameError("base_size must be a decimal string")
            size = inst.size_units(size_text)
        except FrameError as exc:
            return _refused(
                "INVALID_SIZE_PRECISION",
                f"base_size: {exc.reason} (base_increment {inst.lot_size})",
                config,
            )
        if price <= 0:
            return _refused("INVALID_LIMIT_PRICE", "limit_price must be > 0", config)
        if size <= 0:
            return _refused("INVALID_SIZE_PRECISION", "base_size must be > 0", config)
        book = market.sim.book
        if limit.get("post_only") is True:
            best = book.best_ask() if side == "BUY" else book.best_bid()
            crosses = best is not None and (price >= best[0] if side == "BUY" else price <= best[0])
            if crosses:
                return _refused(
                    "INVALID_LIMIT_PRICE_POST_ONLY", "a post-only order would take", config
                )
        if desk.open_count(key) >= desk.max_open_per_key:
            return _refused(
                "UNKNOWN_FAILURE_REASON",
                f"at most {desk.max_open_per_key} open orders a key",
                config,
            )
        order = desk.place(key, inst, "buy" if side == "BUY" else "sell", price, size, coid, book)
        return self._answer(order, fault)

    @staticmethod
    def _answer(order: DeskOrder, fault: str | None) -> web.Response:
        if fault == "order_5xx":
            return error_response(503, "UNAVAILABLE", "service unavailable (fault)")
        return _ok(_placed(order))

    async def list_orders(self, request: web.Request) -> web.Response:
        got = await self._authed(request, "list")
        if isinstance(got, web.Response):
            return got
        key = got[0]
        wanted: set[str | None] = set()
        for value in request.query.getall("order_status", []):
            for name in value.split(","):
                if name not in LIST_STATUSES:
                    return error_response(
                        400, "INVALID_ARGUMENT", f"unknown order_status {clip(name, 30)!r}"
                    )
                wanted.add(LIST_STATUSES[name])
        products = set(request.query.getall("product_ids", []))
        products.update(request.query.getall("product_id", []))
        orders = [
            o
            for o in self.gw.desk.find(key, None, None)
            if (not wanted or o.status in wanted)
            and (not products or o.instrument.symbol in products)
        ]
        return _ok(
            {
                "orders": [order_json(o) for o in orders],
                "sequence": "0",
                "has_next": False,
                "cursor": "",
            }
        )

    async def get_order(self, request: web.Request) -> web.Response:
        got = await self._authed(request, "other")
        if isinstance(got, web.Response):
            return got
        oid = request.match_info["order_id"]
        order = self.gw.desk.get(got[0], oid)
        if order is None:
            return error_response(404, "NOT_FOUND", "order with this orderID was not found")
        return _ok({"order": order_json(order)})

    async def cancel(self, request: web.Request) -> web.Response:
        got = await self._authed(request, "cancel")
        if isinstance(got, web.Response):
            return got
        key = got[0]
        obj = await self._json_body(request)
        if isinstance(obj, web.Response):
            return obj
        ids = obj.get("order_ids")
        if (
            not isinstance(ids, list)
            or not 0 < len(ids) <= MAX_CANCEL_IDS
            or not all(isinstance(i, str) for i in ids)
        ):
            return error_response(
                400,
                "INVALID_ARGUMENT",
                f"order_ids must be a list of 1-{MAX_CANCEL_IDS} order id strings",
            )
        desk = self.gw.desk
        results = []
        for oid in ids:
            order = desk.get(key, oid)
            if order is None:
                ok, reason = False, "UNKNOWN_CANCEL_ORDER"
            elif order.status == "filled":
                ok, reason = False, "ORDER_IS_FULLY_FILLED"
            elif order.status == "cancelled":
                ok, reason = False, "DUPLICATE_CANCEL_REQUEST"
            else:
                desk.cancel(order)
                ok, reason = True, "UNKNOWN_CANCEL_FAILURE_REASON"
            results.append({"success": ok, "failure_reason": reason, "order_id": oid})
        return _ok({"results": results})
