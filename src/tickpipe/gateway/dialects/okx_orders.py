"""The ``okx`` dialect's order endpoints (issue 17): OKX v5 spot limit orders on the gateway's
:class:`~tickpipe.gateway.orders.OrderDesk`, as OKX answers them. The dialect
(``dialects/okx.py``) serves these routes next to its market data.

Endpoints (the client's codec is ``tickpipe.venues.okx.orders``; signatures are checked with
the same ``tickpipe.venues.okx.auth`` it signs with):

- ``GET /api/v5/public/time``: ``{"code":"0","msg":"","data":[{"ts":"<ms>"}]}``, unsigned
  (``time_rate_per_2s`` per IP);
- ``POST /api/v5/trade/order``: one ``limit`` order, ``tdMode`` ``cash``, optional ``clOrdId``
  (1-32 letters or digits);
- ``GET /api/v5/trade/order?instId=&ordId=|clOrdId=``, ``GET /api/v5/trade/orders-pending``
  (``instType`` SPOT, ``instId``, ``state``, ``limit`` <= 100; the newest first);
- ``POST /api/v5/trade/cancel-order`` ``{"instId","ordId"|"clOrdId"}``;
- ``POST /api/v5/trade/cancel-all-after`` ``{"timeOut"}``: 0 disarms, else
  ``dead_man_min_s``..``dead_man_max_s`` (OKX: 10..120) seconds on ``gw.dead_man`` (the
  key's whole timer; a ``tag`` is refused).

Checks, in OKX's codes (HTTP 401 unless said): a missing ``OK-ACCESS-*`` header 50103/50104/
50106/50107; a timestamp not written ``YYYY-MM-DDTHH:MM:SS.mmmZ`` 50112; one more than
``request_expiry_s`` (30) off the gateway's clock 50102; an unknown key 50111; a wrong
passphrase (the ``passphrase`` dialect option, one for every key) 50105; a wrong signature
50113. OKX refuses no replay within the window, and neither does the dialect (a replayed place
meets 51016 "Duplicated clOrdId" when it names one). Rate limits (HTTP 429, code 50011): place,
cancel and get each ``order_rate_per_2s`` (60) per key and instId; orders-pending
``pending_rate_per_2s`` (60) per key; cancel-all-after ``dead_man_per_s`` (1) per key.

A refused order or cancel is HTTP 200 ``{"code":"1","msg":"All operations failed","data":
[{..."sCode","sMsg"}]}``: 51001 unknown instId, 51000 a bad parameter (``tdMode`` not cash,
``ordType`` not limit, ``px`` off the tick grid), 51121 ``sz`` off the lot grid, 51016 a
``clOrdId`` the key used for an order the desk still keeps (OKX documents the code, not the
window: the dialect's choice), 51025 too many open orders, 51400/51401/51402 a cancel of an
unknown, cancelled or filled order. An unknown order on GET is ``{"code":"51603"}``. Order ids
are the desk's numbers (``O17`` -> ``ordId`` ``17``).

Order faults (``gw.order_faults``, after the signature and rate checks): ``order_5xx`` on a
place places the order and then answers 503 ``50001`` (the answer is lost: a retry with the
same ``clOrdId`` meets 51016), on any other call answers 503 with no effect; ``cancel_fails_once``
answers the next cancel 503 ``50001``, not cancelled; ``order_rate_limit`` answers 429
``50011``; ``order_timeout`` holds the request ``duration_ms`` before serving it.

Never logged: secrets, passphrases, signatures.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from tickpipe.errors import FrameError
from tickpipe.gateway.dialects.base import SlidingCount
from tickpipe.gateway.guard import clip
from tickpipe.gateway.logs import log_event
from tickpipe.gateway.orders import Order as DeskOrder
from tickpipe.gateway.orders import OrderSide
from tickpipe.venues.okx import auth
from tickpipe.venues.okx import orders as okx

if TYPE_CHECKING:
    from tickpipe.gateway.server import Gateway

DEFAULT_PASSPHRASE = "demo-passphrase"
"""The ``passphrase`` dialect option's default: every key's expected OK-ACCESS-PASSPHRASE."""
RATE_LIMITED = ("50011", "Too Many Requests")
UNAVAILABLE = ("50001", "Service temporarily unavailable. Please try again later.")
_AUTH_MESSAGES = {"50102": "Timestamp request expired", "50112": "Invalid OK-ACCESS-TIMESTAMP"}
_DIGITS = re.compile(r"^[0-9]{1,19}$")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class OrderSettings:
    """The dialect options the order endpoints read (defaults: OKX's documented figures)."""

    passphrase: str = DEFAULT_PASSPHRASE
    request_expiry_s: float = auth.REQUEST_EXPIRY_MS / 1000
    order_rate_per_2s: int = okx.ORDERS_PER_2S
    pending_rate_per_2s: int = okx.ORDERS_PER_2S
    dead_man_per_s: int = okx.DEAD_MAN_PER_S
    time_rate_per_2s: int = okx.TIME_PER_2S
    dead_man_min_s: int = okx.DEAD_MAN_RANGE_S[0]
    dead_man_max_s: int = okx.DEAD_MAN_RANGE_S[1]


def _ms() -> int:
    return time.time_ns() // 1_000_000


def _answer(status: int, code: str, msg: str, data: list[dict[str, str]]) -> web.Response:
    us = str(time.time_ns() // 1000)
    body = {"code": code, "msg": msg, "data": data, "inTime": us, "outTime": us}
    return web.Response(body=_encode(body), status=status, content_type="application/json")


def _error(status: int, code: str, msg: str) -> web.Response:
    return web.Response(
        body=_encode({"code": code, "msg": msg, "data": []}),
        status=status,
        content_type="application/json",
    )


def _refused_item(code: str, msg: str, cl_ord_id: str = "", ord_id: str = "") -> web.Response:
    item = {
        "clOrdId": cl_ord_id,
        "ordId": ord_id,
        "tag": "",
        "ts": str(_ms()),
        "sCode": code,
        "sMsg": msg,
        "subCode": "",
    }
    return _answer(200, "1", "All operations failed", [item])


def okx_order(o: DeskOrder) -> dict[str, str]:
    """A desk order as OKX's ``orders-pending`` / ``trade/order`` item."""
    inst = o.instrument
    if o.status == "open":
        state = "live" if o.filled == 0 else "partially_filled"
    else:
        state = "filled" if o.status == "filled" else "canceled"
    cl = "" if o.client_order_id.startswith("auto-") else o.client_order_id  # none was given
    return {
        "instType": "SPOT",
        "instId": inst.symbol,
        "ordId": o.order_id[1:],
        "clOrdId": cl,
        "tag": "",
        "px": inst.format_price(o.price),
        "sz": inst.format_size(o.size),
        "ordType": "limit",
        "side": o.side,
        "tdMode": "cash",
        "accFillSz": inst.format_size(o.filled),
        "state": state,
        "cancelSource": "",
        "cancelSourceReason": "cancel all after" if o.cancel_reason == "dead_man" else "",
        "cTime": str(o.created_ns // 1_000_000),
        "uTime": str(o.updated_ns // 1_000_000),
    }


class OkxOrderRoutes:
    """The order endpoints of one gateway's okx dialect (see the module docstring)."""

    def __init__(self, gw: Gateway, settings: OrderSettings) -> None:
        self.gw = gw
        self.s = settings
        self.place_rate = SlidingCount(2.0)
        self.cancel_rate = SlidingCount(2.0)
        self.get_rate = SlidingCount(2.0)
        self.pending_rate = SlidingCount(2.0)
        self.dead_man_rate = SlidingCount(1.0)
        self.time_rate = SlidingCount(2.0)
        self.requests: dict[str, int] = {}
        self.refused: dict[str, int] = {"auth": 0, "rate": 0}
        self.auth_codes: dict[str, int] = {}
        self.faults: dict[str, int] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(okx.TIME_PATH, self.time),
            web.post(okx.PLACE_PATH, self.place),
            web.get(okx.ORDER_PATH, self.get_order),
            web.get(okx.PENDING_PATH, self.pending),
            web.post(okx.CANCEL_PATH, self.cancel),
            web.post(okx.CANCEL_ALL_AFTER_PATH, self.cancel_all_after),
        ]

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "refused": dict(self.refused),
            "auth_codes": dict(self.auth_codes),
            "faults": dict(self.faults),
        }

    # -- checks -------------------------------------------------------------------------------
    def _count(self, endpoint: str) -> None:
        self.requests[endpoint] = self.requests.get(endpoint, 0) + 1

    def _auth_refused(self, request: web.Request, code: str, key: str = "") -> web.Response:
        self.refused["auth"] += 1
        self.auth_codes[code] = self.auth_codes.get(code, 0) + 1
        log_event(
            "auth_refused",
            level=logging.WARNING,
            dialect="okx",
            code=code,
            key=clip(key, 40),
            ip=request.remote or "?",
            path=clip(request.path),
        )
        return _error(401, code, _AUTH_MESSAGES.get(code) or okx.AUTH_CODES[code])

    async def _auth(self, request: web.Request) -> tuple[str, bytes] | web.Response:
        """(key, body) of a request signed as OKX documents, else OKX's 401 answer."""
        body = await request.read()
        h = request.headers
        for header, code in (
            (auth.KEY_HEADER, "50103"),
            (auth.PASSPHRASE_HEADER, "50104"),
            (auth.SIGN_HEADER, "50106"),
            (auth.TIMESTAMP_HEADER, "50107"),
        ):
            if not h.get(header):
                return self._auth_refused(request, code, h.get(auth.KEY_HEADER, ""))
        key, ts_text = h[auth.KEY_HEADER], h[auth.TIMESTAMP_HEADER]
        ts = auth.parse_timestamp(ts_text)
        if ts is None:
            return self._auth_refused(request, "50112", key)
        if abs(_ms() - ts) > self.s.request_expiry_s * 1000:
            return self._auth_refused(request, "50102", key)
        secret = self.gw.keys.get(key)
        if secret is None:
            return self._auth_refused(request, "50111", key)
        given = h[auth.PASSPHRASE_HEADER].encode(errors="replace")
        if not hmac.compare_digest(given, self.s.passphrase.encode()):
            return self._auth_refused(request, "50105", key)
        path = request.raw_path
        if not auth.verify(secret, ts_text, request.method, path, body, h[auth.SIGN_HEADER]):
            return self._auth_refused(request, "50113", key)
        return key, body

    def _rate(self, counter: SlidingCount, key: str, limit: int) -> web.Response | None:
        if counter.admit(key, limit):
            return None
        self.refused["rate"] += 1
        log_event("rate_limited", level=logging.WARNING, dialect="okx", key=clip(key, 60))
        return _error(429, *RATE_LIMITED)

    async def _fault(self, call: str) -> str | None:
        """The order fault this call takes, if any (``order_timeout`` waits here)."""
        taken = self.gw.order_faults.take(call)
        if taken is None:
            return None
        fault, ms = taken
        self.faults[fault] = self.faults.get(fault, 0) + 1
        log_event("order_fault", level=logging.WARNING, dialect="okx", fault=fault, call=call)
        if fault == "order_timeout":
            await asyncio.sleep(ms / 1000)
        return fault

    @staticmethod
    def _json_object(body: bytes) -> dict[str, Any] | web.Response:
        try:
            obj = _decode.decode(body)
        except (msgspec.DecodeError, RecursionError):
            return _error(400, "50002", "Json data format error")
        if not isinstance(obj, dict):
            return _error(400, "50002", "Json data format error: an object is expected")
        return obj

    @staticmethod
    def _text(obj: Any, name: str) -> str | web.Response | None:
        """A string parameter (None when absent or empty), or OKX's 51000 for another type."""
        v = obj.get(name)
        if v is None or v == "":
            return None
        if not isinstance(v, str):
            return _error(400, "51000", f"Parameter {name} error")
        return v

    def _find(self, key: str, inst_id: str, ord_id: str | None, cl: str | None) -> DeskOrder | None:
        if ord_id is not None:
            o = self.gw.desk.get(key, "O" + ord_id) if _DIGITS.match(ord_id) else None
        else:
            o = self.gw.desk.by_client_id(key, cl) if cl is not None else None
        return o if o is not None and o.instrument.symbol == inst_id else None

    # -- endpoints ----------------------------------------------------------------------------
    async def time(self, request: web.Request) -> web.Response:
        self._count("time")
        refused = self._rate(self.time_rate, f"time {request.remote}", self.s.time_rate_per_2s)
        if refused is not None:
            return refused
        return _answer(200, "0", "", [{"ts": str(_ms())}])

    async def place(self, request: web.Request) -> web.Response:
        self._count("place")
        got = await self._auth(request)
        if isinstance(got, web.Response):
            return got
        key, body = got
        obj = self._json_object(body)
        if isinstance(obj, web.Response):
            return obj
        fields: dict[str, str | None] = {}
        for name in ("instId", "tdMode", "side", "ordType", "sz", "px", "clOrdId"):
            v = self._text(obj, name)
            if isinstance(v, web.Response):
                return v
            fields[name] = v
        for name in ("instId", "tdMode", "side", "ordType", "sz"):
            if fields[name] is None:
                return _error(400, "50014", f"Parameter {name} can not be empty.")
        inst_id = fields["instId"] or ""
        refused = self._rate(self.place_rate, f"{key} {inst_id}", self.s.order_rate_per_2s)
        if refused is not None:
            return refused
        fault = await self._fault("place")
        if fault == "order_rate_limit":
            return _error(429, *RATE_LIMITED)
        if fault == "order_5xx":  # placed, then the answer is lost
            self._place(key, inst_id, fields)
            return _error(503, *UNAVAILABLE)
        return self._place(key, inst_id, fields)

    def _place(self, key: str, inst_id: str, f: dict[str, str | None]) -> web.Response:
        cl = f["clOrdId"]
        cl_text = cl or ""
        market = self.gw.hub.markets.get(inst_id)
        if market is None:
            return _refused_item("51001", "Instrument ID does not exist.", cl_text)
        if f["tdMode"] != "cash":
            return _refused_item("51000", "Parameter tdMode error (spot: cash)", cl_text)
        side: OrderSide
        if f["side"] == "buy":
            side = "buy"
        elif f["side"] == "sell":
            side = "sell"
        else:
            return _refused_item("51000", "Parameter side error", cl_text)
        if f["ordType"] != "limit":
            return _refused_item(
                "51000", "Parameter ordType error (the reference gateway serves limit)", cl_text
            )
        if f["px"] is None:
            return _error(400, "50014", "Parameter px can not be empty.")
        if cl is not None and not okx.is_client_order_id(cl):
            return _refused_item("51000", "Parameter clOrdId error", clip(cl, 40))
        desk = self.gw.desk
        if cl is not None and desk.by_client_id(key, cl) is not None:
            return _refused_item("51016", "Duplicated clOrdId", cl_text)
        inst = market.instrument
        try:
            price = inst.price_units(f["px"])
        except FrameError:
            price = 0
        if price <= 0:
            return _refused_item("51000", f"Parameter px error (tickSz {inst.tick_size})", cl_text)
        try:
            size = inst.size_units(f["sz"] or "")
        except FrameError:
            msg = f"Order quantity must be a multiple of the lot size {inst.lot_size}."
            return _refused_item("51121", msg, cl_text)
        if size <= 0:
            return _refused_item("51000", "Parameter sz error", cl_text)
        if desk.open_count(key) >= desk.max_open_per_key:
            return _refused_item("51025", "Order count exceeds the limit", cl_text)
        o = desk.place(key, inst, side, price, size, cl, market.sim.book)
        item = {
            "clOrdId": cl_text,
            "ordId": o.order_id[1:],
            "tag": "",
            "ts": str(_ms()),
            "sCode": "0",
            "sMsg": "Order placed",
            "subCode": "",
        }
        return _answer(200, "0", "", [item])

    async def get_order(self, request: web.Request) -> web.Response:
        self._count("get")
        got = await self._auth(request)
        if isinstance(got, web.Response):
            return got
        key, _ = got
        q = request.query
        inst_id, ord_id, cl = q.get("instId") or "", q.get("ordId") or None, q.get("clOrdId")
        if not inst_id:
            return _error(400, "50014", "Parameter instId can not be empty.")
        if ord_id is None and not cl:
            return _error(400, "50015", "Either parameter ordId or clOrdId is required.")
        refused = self._rate(self.get_rate, f"{key} {inst_id}", self.s.order_rate_per_2s)
        if refused is not None:
            return refused
        fault = await self._fault("list")
        if fault in ("order_5xx", "order_rate_limit"):
            return _error(503, *UNAVAILABLE) if fault == "order_5xx" else _error(429, *RATE_LIMITED)
        o = self._find(key, inst_id, ord_id, cl or None)
        if o is None:
            return _error(200, "51603", "Order does not exist")
        return _answer(200, "0", "", [okx_order(o)])

    async def pending(self, request: web.Request) -> web.Response:
        self._count("pending")
        got = await self._auth(request)
        if isinstance(got, web.Response):
            return got
        key, _ = got
        q = request.query
        inst_type, inst_id, state = q.get("instType"), q.get("instId") or None, q.get("state")
        if inst_type not in (None, "", "SPOT"):
            return _error(400, "51000", "Parameter instType error (served: SPOT)")
        if state not in (None, "", "live", "partially_filled"):
            return _error(400, "51000", "Parameter state error")
        raw = q.get("limit") or str(okx.PENDING_PAGE)
        if not _DIGITS.match(raw) or not 1 <= int(raw) <= okx.PENDING_PAGE:
            return _error(400, "51000", "Parameter limit error")
        refused = self._rate(self.pending_rate, key, self.s.pending_rate_per_2s)
        if refused is not None:
            return refused
        fault = await self._fault("list")
        if fault in ("order_5xx", "order_rate_limit"):
            return _error(503, *UNAVAILABLE) if fault == "order_5xx" else _error(429, *RATE_LIMITED)
        found = [okx_order(o) for o in self.gw.desk.find(key, "open", inst_id)]
        if state:
            found = [o for o in found if o["state"] == state]
        found.sort(key=lambda o: int(o["ordId"]), reverse=True)  # the newest first
        return _answer(200, "0", "", found[: int(raw)])

    async def cancel(self, request: web.Request) -> web.Response:
        self._count("cancel")
        got = await self._auth(request)
        if isinstance(got, web.Response):
            return got
        key, body = got
        obj = self._json_object(body)
        if isinstance(obj, web.Response):
            return obj
        fields: dict[str, str | None] = {}
        for name in ("instId", "ordId", "clOrdId"):
            v = self._text(obj, name)
            if isinstance(v, web.Response):
                return v
            fields[name] = v
        inst_id, ord_id, cl = fields["instId"], fields["ordId"], fields["clOrdId"]
        if inst_id is None:
            return _error(400, "50014", "Parameter instId can not be empty.")
        if ord_id is None and cl is None:
            return _error(400, "50015", "Either parameter ordId or clOrdId is required.")
        refused = self._rate(self.cancel_rate, f"{key} {inst_id}", self.s.order_rate_per_2s)
        if refused is not None:
            return refused
        fault = await self._fault("cancel")
        if fault in ("order_5xx", "cancel_fails_once"):
            return _error(503, *UNAVAILABLE)
        if fault == "order_rate_limit":
            return _error(429, *RATE_LIMITED)
        o = self._find(key, inst_id, ord_id, cl)
        shown_cl, shown_id = clip(cl or "", 40), clip(ord_id or "", 40)
        if o is None:
            return _refused_item(
                "51400",
                "Order cancellation failed as the order has been filled, canceled or does "
                "not exist.",
                shown_cl,
                shown_id,
            )
        if o.status == "cancelled":
            return _refused_item("51401", "Order has been canceled", shown_cl, shown_id)
        if o.status == "filled":
            return _refused_item("51402", "Order has been completed", shown_cl, shown_id)
        self.gw.desk.cancel(o)
        item = okx_order(o)
        ack = {
            "clOrdId": item["clOrdId"],
            "ordId": item["ordId"],
            "ts": str(_ms()),
            "sCode": "0",
            "sMsg": "",
            "subCode": "",
        }
        return _answer(200, "0", "", [ack])

    async def cancel_all_after(self, request: web.Request) -> web.Response:
        self._count("cancel_all_after")
        got = await self._auth(request)
        if isinstance(got, web.Response):
            return got
        key, body = got
        obj = self._json_object(body)
        if isinstance(obj, web.Response):
            return obj
        raw, tag = self._text(obj, "timeOut"), self._text(obj, "tag")
        if isinstance(raw, web.Response):
            return raw
        if raw is None:
            return _error(400, "50014", "Parameter timeOut can not be empty.")
        if tag is not None:
            return _error(
                400, "51000", "Parameter tag error (the reference gateway arms the key's timer)"
            )
        lo, hi = self.s.dead_man_min_s, self.s.dead_man_max_s
        timeout = int(raw) if _DIGITS.match(raw) else -1
        if timeout != 0 and not lo <= timeout <= hi:
            return _error(400, "51000", f"Parameter timeOut error: 0 or {lo}..{hi} seconds")
        refused = self._rate(self.dead_man_rate, key, self.s.dead_man_per_s)
        if refused is not None:
            return refused
        fault = await self._fault("other")
        if fault in ("order_5xx", "order_rate_limit"):
            return _error(503, *UNAVAILABLE) if fault == "order_5xx" else _error(429, *RATE_LIMITED)
        self.gw.dead_man.arm(key, None, float(timeout))
        now = _ms()
        trigger = str(now + timeout * 1000) if timeout else "0"
        return _answer(200, "0", "", [{"triggerTime": trigger, "tag": "", "ts": str(now)}])
