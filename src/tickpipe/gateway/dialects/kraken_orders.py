"""The kraken dialect's private REST endpoints (issue 17): Kraken spot orders over the gateway's
:class:`~tickpipe.gateway.orders.OrderDesk`, as Kraken answers them.

Served (``POST``, form body, signed): ``/0/private/AddOrder`` (limit orders; ``cl_ord_id`` or
``userref``; ``validate``), ``/0/private/OpenOrders`` (``cl_ord_id``, ``userref`` filters),
``/0/private/QueryOrders`` (``txid``: up to 50, comma separated), ``/0/private/CancelOrder``
(``txid`` a txid or a userref, or ``cl_ord_id``), ``/0/private/CancelAll``,
``/0/private/CancelAllOrdersAfter`` (``timeout`` whole seconds, 0 disarms: ``gw.dead_man``,
one timer per key; when it fires every open order of the key is cancelled and the timer stays
off until armed again, as Kraken documents); ``GET /0/public/Time``.

Every call is checked as Kraken does, in this order, each refusal answered HTTP 200
``{"error": [TEXT]}``: the ``API-Key`` must be a configured key (``EAPI:Invalid key``); the
``API-Sign`` must be ``venues.kraken.auth``'s signature of the path, nonce and body with that
key's secret (``EAPI:Invalid signature``: a secret that is not base64, such as the demo pair's,
signs nothing); the ``nonce`` must be above the last one accepted for the key (``EAPI:Invalid
nonce``: a replayed request is refused so); then Kraken's rate counters (below). Secrets and
signatures are never logged.

Orders live in ``gw.desk`` under the API key; ids are shown as Kraken txids (``O00000-00000-
0000Q``: the desk's number in base 36); pairs are the AssetPairs ``altname`` (``XBTUSD``).
A ``cl_ord_id`` already used by an open order of the key is refused (``EOrder:Duplicate
order``): Kraken enforces its uniqueness among open orders (the exact text is not documented).

Rate limits (dialect options, Kraken's Starter tier by default; docs .../spot-ratelimits and
.../spot-rest-ratelimits): a trading counter per key and pair, +1 per AddOrder and, per order
cancelled, +8/+6/+5/+4/+2/+1 for an order younger than 5/10/15/45/90/300 s, decaying
``trading_decay_per_s`` (1.0) a second, refused past ``trading_counter_max`` (60) with
``EOrder:Rate limit exceeded``; a REST counter per key, +1 per OpenOrders, QueryOrders,
CancelAll, CancelAllOrdersAfter, decaying ``api_decay_per_s`` (0.33), refused past
``api_counter_max`` (15) with ``EAPI:Rate limit exceeded``; at most ``max_open_per_pair`` (60)
open orders a key and pair (``EOrder:Orders limit exceeded``).

Order faults (``gw.order_faults``, taken after the checks): ``order_5xx`` and
``cancel_fails_once`` answer HTTP 503 ``EService:Unavailable`` without acting;
``order_rate_limit`` answers the call's rate-limit error; ``order_timeout`` acts, then holds the
answer for ``duration_ms`` (an answer lost on the way: a retried AddOrder then meets the
duplicate ``cl_ord_id``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from tickpipe.errors import FrameError
from tickpipe.gateway.guard import clip
from tickpipe.gateway.logs import log_event
from tickpipe.gateway.orders import Order, OrderSide
from tickpipe.venues.kraken import auth
from tickpipe.venues.kraken import orders as kraken_orders

if TYPE_CHECKING:
    from tickpipe.gateway.server import Gateway
    from tickpipe.protocol.instruments import Instrument

ERR_KEY = "EAPI:Invalid key"
ERR_SIGN = "EAPI:Invalid signature"
ERR_NONCE = "EAPI:Invalid nonce"
ERR_API_RATE = "EAPI:Rate limit exceeded"
ERR_ORDER_RATE = "EOrder:Rate limit exceeded"
ERR_UNKNOWN = "EOrder:Unknown order"
ERR_DUPLICATE = "EOrder:Duplicate order"
ERR_ARGS = "EGeneral:Invalid arguments"
ERR_PAIR = "EQuery:Unknown asset pair"
ERR_UNAVAILABLE = "EService:Unavailable"
ERR_ORDERS_LIMIT = "EOrder:Orders limit exceeded"
MAX_BODY = 16 * 1024  # a Kraken form body is a few hundred bytes
MAX_TXIDS = 50
MAX_TIMEOUT_S = 86_400
B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# cancel penalty on the trading counter by the order's age (docs .../spot-ratelimits)
CANCEL_PENALTY = ((5.0, 8), (10.0, 6), (15.0, 5), (45.0, 4), (90.0, 2), (300.0, 1))
_TXID_RE = kraken_orders.TXID_RE
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class PrivateLimits:
    """The rate-limit knobs (the dialect options of the same names)."""

    trading_counter_max: float
    trading_decay_per_s: float
    api_counter_max: float
    api_decay_per_s: float
    max_open_per_pair: int


def txid(order_id: str) -> str:
    """The desk's ``O123`` as a Kraken txid (``O00000-00000-0003F``)."""
    n = int(order_id[1:])
    digits = ""
    while n:
        n, r = divmod(n, 36)
        digits = B36[r] + digits
    s = digits.rjust(16, "0")
    return f"O{s[:5]}-{s[5:10]}-{s[10:]}"


def desk_id(tx: str) -> str | None:
    """A txid back to the desk's id (None for anything :func:`txid` does not write)."""
    if not _TXID_RE.match(tx) or tx[0] != "O":
        return None
    return f"O{int(tx[1:].replace('-', ''), 36)}"


class _Counter:
    """A Kraken rate counter: rises by each call's cost, decays linearly."""

    __slots__ = ("at", "value")

    def __init__(self, now: float) -> None:
        self.value = 0.0
        self.at = now

    def admit(self, cost: float, ceiling: float, decay: float, now: float) -> bool:
        self.value = max(0.0, self.value - decay * (now - self.at))
        self.at = now
        if self.value + cost > ceiling:
            return False
        self.value += cost
        return True


def _answer(result: Any = None, error: str | None = None, status: int = 200) -> web.Response:
    body: dict[str, Any] = {"error": [error] if error else []}
    if error is None:
        body["result"] = result
    return web.Response(body=_encoder.encode(body), status=status, content_type="application/json")


class KrakenPrivate:
    """The private endpoints of one gateway's kraken dialect (see the module docstring)."""

    def __init__(self, gw: Gateway, limits: PrivateLimits, altname: dict[str, str]) -> None:
        self.gw = gw
        self.limits = limits
        self.pairs = altname  # altname -> the market's symbol
        self.altname = {sym: alt for alt, sym in altname.items()}
        self.last_nonce: dict[str, int] = {}
        self._trading: dict[tuple[str, str], _Counter] = {}
        self._api: dict[str, _Counter] = {}
        self.userref: dict[str, int] = {}  # desk order id -> userref
        self.calls: dict[str, int] = {}
        self.refused: dict[str, int] = {"auth": 0, "nonce": 0, "rate": 0, "args": 0}
        self.faults: dict[str, int] = {}
        self.arms: deque[tuple[float, int]] = deque(maxlen=1000)  # (monotonic, timeout)

    def routes(self) -> list[web.RouteDef]:
        calls = {
            kraken_orders.ADD_ORDER_PATH: self._add_order,
            kraken_orders.OPEN_ORDERS_PATH: self._open_orders,
            kraken_orders.QUERY_ORDERS_PATH: self._query_orders,
            kraken_orders.CANCEL_ORDER_PATH: self._cancel_order,
            kraken_orders.CANCEL_ALL_PATH: self._cancel_all,
            kraken_orders.CANCEL_AFTER_PATH: self._cancel_after,
        }
        out = [web.get(kraken_orders.TIME_PATH, self._time)]
        for path, fn in calls.items():
            out.append(web.post(path, self._private(path, fn)))
        return out

    def stats(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "refused": dict(self.refused),
            "faults": dict(self.faults),
            "dead_man_arms": len(self.arms),
        }

    # -- the checks every private call passes ----------------------------------------------
    def _private(self, path: str, fn: Any) -> Any:
        method = path.rsplit("/", 1)[1]

        async def handler(request: web.Request) -> web.StreamResponse:
            self.calls[method] = self.calls.get(method, 0) + 1
            checked = await self._check(request, path)
            if isinstance(checked, web.Response):
                return checked
            key, form = checked
            answer: web.Response = await fn(key, form)
            return answer

        return handler

    async def _check(
        self, request: web.Request, path: str
    ) -> web.Response | tuple[str, dict[str, str]]:
        body = await request.read()
        key = request.headers.get(auth.KEY_HEADER, "")
        secret = self.gw.keys.get(key)
        if secret is None:
            return self._refuse("auth", ERR_KEY, key, path)
        form = _form(body)
        nonce_text = form.get("nonce", "") if form is not None else ""
        sig = request.headers.get(auth.SIGN_HEADER, "")
        if not sig or not auth.verify(secret, path, nonce_text, body, sig):
            return self._refuse("auth", ERR_SIGN, key, path)
        if form is None:
            return self._refuse("args", ERR_ARGS, key, path)
        if not nonce_text.isdigit() or len(nonce_text) > 20:
            return self._refuse("nonce", ERR_NONCE, key, path)
        nonce = int(nonce_text)
        if nonce <= self.last_nonce.get(key, 0):
            return self._refuse("nonce", ERR_NONCE, key, path)
        self.last_nonce[key] = nonce
        return key, form

    def _refuse(self, why: str, error: str, key: str, path: str) -> web.Response:
        self.refused[why] += 1
        log_event(
            "kraken_refused",
            level=logging.WARNING,
            dialect="kraken",
            path=path,
            key=clip(key, 40),
            error=error,
        )
        return _answer(error=error)

    def _api_admit(self, key: str) -> bool:
        lim = self.limits
        now = time.monotonic()
        c = self._api.setdefault(key, _Counter(now))
        if c.admit(1.0, lim.api_counter_max, lim.api_decay_per_s, now):
            return True
        self.refused["rate"] += 1
        return False

    def _trading_admit(self, key: str, symbol: str, cost: float) -> bool:
        lim = self.limits
        now = time.monotonic()
        c = self._trading.setdefault((key, symbol), _Counter(now))
        if c.admit(cost, lim.trading_counter_max, lim.trading_decay_per_s, now):
            return True
        self.refused["rate"] += 1
        return False

    async def _fault(self, call: str, rate_error: str) -> web.Response | int | None:
        """The order fault this call takes: a response to send instead of acting, the ms to
        hold the answer after acting (``order_timeout``), or None."""
        taken = self.gw.order_faults.take(call)
        if taken is None:
            return None
        fault, ms = taken
        self.faults[fault] = self.faults.get(fault, 0) + 1
        log_event("order_fault", level=logging.WARNING, dialect="kraken", fault=fault, call=call)
        if fault in ("order_5xx", "cancel_fails_once"):
            return _answer(error=ERR_UNAVAILABLE, status=503)
        if fault == "order_rate_limit":
            return _answer(error=rate_error)
        return ms  # order_timeout

    @staticmethod
    async def _held(answer: web.Response, hold_ms: int | None) -> web.Response:
        if hold_ms:
            await asyncio.sleep(hold_ms / 1000)
        return answer

    # -- endpoints -------------------------------------------------------------------------
    async def _time(self, request: web.Request) -> web.Response:
        now = time.time()
        rfc1123 = time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime(now))
        return _answer({"unixtime": int(now), "rfc1123": rfc1123})

    async def _add_order(self, key: str, form: dict[str, str]) -> web.Response:
        bad = _missing(form, ("pair", "type", "ordertype", "volume"))
        if bad:
            return self._args(bad)
        alt = form["pair"]
        symbol = self.pairs.get(alt.replace("/", "").upper()) or self.pairs.get(alt)
        market = self.gw.hub.markets.get(symbol) if symbol else None
        if market is None:
            return _answer(error=ERR_PAIR)
        inst = market.instrument
        if form["ordertype"] != "limit":
            return self._args("ordertype (the reference gateway serves limit orders)")
        side: OrderSide = "buy" if form["type"] == "buy" else "sell"
        if form["type"] != side:
            return self._args("type")
        if "price" not in form:
            return self._args("price")
        parsed = _price_size(inst, form["price"], form["volume"])
        if isinstance(parsed, str):
            return _answer(error=parsed)
        price, size = parsed
        cl = form.get("cl_ord_id")
        userref = form.get("userref")
        if cl is not None and userref is not None:
            return self._args("cl_ord_id and userref are mutually exclusive")
        if cl is not None and not kraken_orders.valid_cl_ord_id(cl):
            return self._args("cl_ord_id")
        if userref is not None and not re.fullmatch(r"-?\d{1,10}", userref):
            return self._args("userref")
        if not self._trading_admit(key, inst.symbol, 1.0):
            return _answer(error=ERR_ORDER_RATE)
        fault = await self._fault("place", ERR_ORDER_RATE)
        if isinstance(fault, web.Response):
            return fault
        desk = self.gw.desk
        if cl is not None:
            existing = desk.by_client_id(key, cl)
            if existing is not None and existing.status == "open":
                return await self._held(_answer(error=ERR_DUPLICATE), fault)
        open_here = len(desk.find(key, "open", inst.symbol))
        if (
            open_here >= self.limits.max_open_per_pair
            or desk.open_count(key) >= desk.max_open_per_key
        ):
            return await self._held(_answer(error=ERR_ORDERS_LIMIT), fault)
        descr = {
            "order": f"{side} {inst.format_size(size)} {alt} @ limit {inst.format_price(price)}"
        }
        if form.get("validate") in ("true", "1"):
            return await self._held(_answer({"descr": descr}), fault)
        order = desk.place(key, inst, side, price, size, cl, market.sim.book)
        if userref is not None:
            self.userref[order.order_id] = int(userref)
        result: dict[str, Any] = {"descr": descr, "txid": [txid(order.order_id)]}
        if cl is not None:
            result["cl_ord_id"] = cl
        return await self._held(_answer(result), fault)

    def _args(self, what: str) -> web.Response:
        self.refused["args"] += 1
        return _answer(error=f"{ERR_ARGS}:{what}")

    async def _open_orders(self, key: str, form: dict[str, str]) -> web.Response:
        if not self._api_admit(key):
            return _answer(error=ERR_API_RATE)
        fault = await self._fault("list", ERR_API_RATE)
        if isinstance(fault, web.Response):
            return fault
        cl, userref = form.get("cl_ord_id"), form.get("userref")
        found = [
            o
            for o in self.gw.desk.find(key, "open", None)
            if (cl is None or o.client_order_id == cl)
            and (userref is None or str(self.userref.get(o.order_id)) == userref)
        ]
        found.sort(key=lambda o: o.created_ns)
        return await self._held(
            _answer({"open": {txid(o.order_id): self._info(o) for o in found}}), fault
        )

    async def _query_orders(self, key: str, form: dict[str, str]) -> web.Response:
        if "txid" not in form:
            return self._args("txid")
        if not self._api_admit(key):
            return _answer(error=ERR_API_RATE)
        fault = await self._fault("list", ERR_API_RATE)
        if isinstance(fault, web.Response):
            return fault
        txids = [t.strip() for t in form["txid"].split(",") if t.strip()]
        if not txids or len(txids) > MAX_TXIDS:
            return self._args("txid")
        result: dict[str, Any] = {}
        for t in txids:
            oid = desk_id(t)
            order = self.gw.desk.get(key, oid) if oid is not None else None
            if order is None:
                return await self._held(_answer(error=ERR_UNKNOWN), fault)
            result[t] = self._info(order)
        return await self._held(_answer(result), fault)

    async def _cancel_order(self, key: str, form: dict[str, str]) -> web.Response:
        desk = self.gw.desk
        victims: list[Order]
        if "cl_ord_id" in form:
            o = desk.by_client_id(key, form["cl_ord_id"])
            victims = [o] if o is not None else []
        elif "txid" in form:
            ref = form["txid"].strip()
            if re.fullmatch(r"-?\d{1,10}", ref):  # a userref: all its open orders
                victims = [
                    o
                    for o in desk.find(key, "open", None)
                    if self.userref.get(o.order_id) == int(ref)
                ]
            else:
                oid = desk_id(ref)
                o = desk.get(key, oid) if oid is not None else None
                victims = [o] if o is not None else []
        else:
            return self._args("txid")
        victims = [o for o in victims if o.status == "open"]
        if not victims:
            return _answer(error=ERR_UNKNOWN)
        now_ns = time.time_ns()
        for o in victims:
            if not self._trading_admit(key, o.instrument.symbol, _penalty(now_ns - o.created_ns)):
                return _answer(error=ERR_ORDER_RATE)
        fault = await self._fault("cancel", ERR_ORDER_RATE)
        if isinstance(fault, web.Response):
            return fault
        for o in victims:
            desk.cancel(o)
        return await self._held(_answer({"count": len(victims), "pending": False}), fault)

    async def _cancel_all(self, key: str, form: dict[str, str]) -> web.Response:
        if not self._api_admit(key):
            return _answer(error=ERR_API_RATE)
        fault = await self._fault("cancel", ERR_API_RATE)
        if isinstance(fault, web.Response):
            return fault
        ids = self.gw.desk.cancel_all(key)
        return await self._held(_answer({"count": len(ids)}), fault)

    async def _cancel_after(self, key: str, form: dict[str, str]) -> web.Response:
        raw = form.get("timeout", "")
        if not raw.isdigit() or int(raw) > MAX_TIMEOUT_S:
            return self._args("timeout")
        timeout = int(raw)
        if not self._api_admit(key):
            return _answer(error=ERR_API_RATE)
        fault = await self._fault("other", ERR_API_RATE)
        if isinstance(fault, web.Response):
            return fault
        self.gw.dead_man.arm(key, None, timeout)
        self.arms.append((time.monotonic(), timeout))
        now = time.time()
        result = {
            "currentTime": _iso(now),
            "triggerTime": _iso(now + timeout) if timeout else "0",
        }
        return await self._held(_answer(result), fault)

    # -- Kraken's order description ----------------------------------------------------------
    def _info(self, o: Order) -> dict[str, Any]:
        inst = o.instrument
        alt = self.altname.get(inst.symbol, inst.symbol)
        status = {"open": "open", "filled": "closed", "cancelled": "canceled"}[o.status]
        price = inst.format_price(o.price)
        cost = inst.price_decimal(o.price) * inst.size_decimal(o.filled)
        info: dict[str, Any] = {
            "refid": None,
            "userref": self.userref.get(o.order_id, 0),
            "status": status,
            "opentm": round(o.created_ns / 1e9, 4),
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": alt,
                "type": o.side,
                "ordertype": "limit",
                "price": price,
                "price2": "0",
                "leverage": "none",
                "order": f"{o.side} {inst.format_size(o.size)} {alt} @ limit {price}",
                "close": "",
            },
            "vol": inst.format_size(o.size),
            "vol_exec": inst.format_size(o.filled),
            "cost": format(cost.normalize() if cost else Decimal(0), "f"),
            "fee": "0.00000",
            "price": price if o.filled else "0",
            "stopprice": "0",
            "limitprice": "0",
            "misc": "",
            "oflags": "fciq",
        }
        if o.client_order_id and o.client_order_id != f"auto-{o.order_id[1:]}":
            info["cl_ord_id"] = o.client_order_id
        if status != "open":
            info["closetm"] = round(o.updated_ns / 1e9, 4)
            info["reason"] = (
                "User requested"
                if o.cancel_reason == "user"
                else o.cancel_reason
                if o.cancel_reason
                else None
            )
        return info


def _form(body: bytes) -> dict[str, str] | None:
    """A form body as a dict (None: not UTF-8 form data, too large, or a name given twice)."""
    if len(body) > MAX_BODY:
        return None
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        return None
    form = dict(pairs)
    return form if len(form) == len(pairs) else None


def _missing(form: dict[str, str], names: tuple[str, ...]) -> str | None:
    for n in names:
        if not form.get(n):
            return n
    return None


def _price_size(inst: Instrument, price_text: str, volume_text: str) -> tuple[int, int] | str:
    """The order's price and size in units, or Kraken's error text."""
    if len(price_text) > 40 or len(volume_text) > 40:
        return f"{ERR_ARGS}:price/volume"
    try:
        price = inst.price_units(price_text)
    except FrameError as exc:
        if "multiple" in exc.reason:
            return "EOrder:Tick size check failed"
        return f"{ERR_ARGS}:price"
    try:
        size = inst.size_units(volume_text)
    except FrameError:
        return f"{ERR_ARGS}:volume"
    if price <= 0:
        return "EOrder:Invalid price"
    if size <= 0:
        return "EOrder:Order minimum not met"
    return price, size


def _penalty(age_ns: int) -> float:
    age = age_ns / 1e9
    for below, cost in CANCEL_PENALTY:
        if age < below:
            return float(cost)
    return 0.0


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
