"""REST on the stream port (VTS/1 sections 5 and 7): health, instruments, snapshots, orders.

Market data is public; a known ``X-VT-KEY`` there only selects whose rate limit applies (else
the client's address). Every ``/v1/orders`` call is signed; errors name what was wrong, with
any text the caller sent clipped (:func:`~tickpipe.gateway.guard.clip`). An unknown key and a
bad signature get the same answer (no key-name oracle); a signature already used within the
skew window is refused (``401 replayed_request``); a key over ``max_order_requests_per_s``
gets ``429``.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from tickpipe.errors import FrameError
from tickpipe.gateway.guard import RateWindow, clipr
from tickpipe.gateway.httputil import error_response, json_response
from tickpipe.protocol import frames
from tickpipe.protocol.book import OrderBook

if TYPE_CHECKING:
    from tickpipe.gateway.orders import Order
    from tickpipe.gateway.server import Gateway

_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
_TS_RE = re.compile(r"^[0-9]{1,15}$")  # integer ms; 15 digits reach the year 33658
_SIG_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_DEPTH_RE = re.compile(r"^[0-9]{1,9}$")
MAX_DECIMAL_CHARS = 32  # a price or size string longer than this is refused before parsing
_json = msgspec.json.Decoder()
_DUMMY_SECRET = "tickpipe-no-such-key"  # HMAC work for an unknown key too (same timing)
_BAD_AUTH = (
    "unknown key or bad signature: X-VT-SIGN must be hex "
    "HMAC-SHA256(secret, ts + METHOD + path-with-query + body) with a known X-VT-KEY"
)


def decode_json(text: str) -> Any:
    """JSON, with too-deep nesting reported as a DecodeError (not a RecursionError)."""
    try:
        return _json.decode(text)
    except RecursionError:
        raise msgspec.DecodeError("JSON nested too deeply") from None


class SnapshotLimiter:
    """``snapshot_rate_limit`` per identity (key or address): at most N in any 1 s window."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}

    def retry_after(self, identity: str, limit: int, now: float) -> float:
        """0 when admitted (and counted), else seconds until a request would be admitted."""
        if limit <= 0:
            return 0.0
        q = self._seen.setdefault(identity, deque())
        while q and now - q[0] >= 1.0:
            q.popleft()
        if len(q) >= limit:
            return 1.0 - (now - q[0])
        q.append(now)
        if len(self._seen) > 10_000:  # bound memory: forget idle identities
            self._seen = {k: v for k, v in self._seen.items() if v}
        return 0.0


def book_body(symbol: str, seq: int, book: OrderBook, depth: int | None) -> dict[str, Any]:
    inst = book.instrument
    fp, fs = inst.format_price, inst.format_size
    bids, asks = book.to_lists(depth)
    return {
        "symbol": symbol,
        "seq": seq,
        "ts": time.time_ns(),
        "bids": [[fp(p), fs(s)] for p, s in bids],
        "asks": [[fp(p), fs(s)] for p, s in asks],
    }


def parse_depth(request: web.Request) -> int | web.Response | None:
    raw = request.query.get("depth")
    if raw is None or raw == "":
        return None
    if not _DEPTH_RE.match(raw) or int(raw) < 1:
        return error_response(
            400, "bad_depth", f"depth must be a positive integer, got {clipr(raw)}"
        )
    return int(raw)


class Rest:
    """The ``/v1`` routes, bound to one gateway."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.limiter = SnapshotLimiter()
        self.order_limiter = RateWindow()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/health", self.health),
            web.get("/v1/instruments", self.instruments),
            web.get("/v1/orderbook/{symbol}", self.orderbook),
            web.post("/v1/orders", self.place_order),
            web.get("/v1/orders", self.list_orders),
            web.delete("/v1/orders", self.cancel_all),
            web.get("/v1/orders/{order_id}", self.get_order),
            web.delete("/v1/orders/{order_id}", self.cancel_order),
        ]

    # -- public -----------------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "status": "ok",
                "ts": time.time_ns(),
                "uptime_s": round(time.monotonic() - self.gw.started_at, 3),
                "connections": len(self.gw.sessions),
            }
        )

    async def instruments(self, request: web.Request) -> web.Response:
        return json_response(
            {"instruments": [m.instrument.to_wire() for m in self.gw.hub.markets.values()]}
        )

    async def orderbook(self, request: web.Request) -> web.Response:
        gw = self.gw
        symbol = request.match_info["symbol"]
        market = gw.hub.markets.get(symbol)
        if market is None:
            return error_response(404, "unknown_symbol", f"no instrument {clipr(symbol)}")
        depth = parse_depth(request)
        if isinstance(depth, web.Response):
            return depth
        settings = gw.faults.settings
        key = request.headers.get("X-VT-KEY")
        identity = f"key:{key}" if key in gw.keys else f"addr:{request.remote}"
        wait = self.limiter.retry_after(identity, settings.snapshot_rate_limit, time.monotonic())
        if wait > 0:
            gw.faults.record("snapshot_rate_limit", symbol=symbol, who=identity)
            retry = max(1, math.ceil(wait))
            return error_response(
                429,
                "rate_limited",
                f"more than {settings.snapshot_rate_limit} snapshots a second",
                headers={"Retry-After": str(retry)},
            )
        fault = gw.faults.snapshot_fault(symbol)
        if fault == "snapshot_error":
            gw.faults.record("snapshot_error", symbol=symbol, seq=market.history.seq)
            return error_response(
                503, "snapshot_unavailable", "snapshot service unavailable (fault)"
            )
        history = market.history
        seq = history.seq
        if fault == "stale_snapshot":
            seq = max(history.oldest_seq, seq - settings.stale_by)
            gw.faults.record("stale_snapshot", symbol=symbol, seq=seq, latest=history.seq)
        body = book_body(symbol, seq, history.book_at(seq), depth)
        if settings.snapshot_delay_ms:
            gw.faults.record(
                "snapshot_delay_ms", symbol=symbol, seq=seq, ms=settings.snapshot_delay_ms
            )
            await asyncio.sleep(settings.snapshot_delay_ms / 1000)
        return json_response(body)

    # -- signed -----------------------------------------------------------------------------
    async def _auth(
        self, request: web.Request, *, limited: bool = True
    ) -> tuple[str, str] | web.Response:
        """(key, body text) of a correctly signed, fresh, first-use request within the key's
        rate (when ``limited``: cancels are not, so a mass cancel is never throttled), else
        the 401/429 answer. Unknown key and bad signature answer alike."""
        body = await request.text()
        hdr = request.headers
        missing = [h for h in ("X-VT-KEY", "X-VT-TS", "X-VT-SIGN") if not hdr.get(h)]
        if missing:
            return error_response(401, "missing_auth", f"missing header(s): {', '.join(missing)}")
        gw = self.gw
        key, ts_text, sig = hdr["X-VT-KEY"], hdr["X-VT-TS"], hdr["X-VT-SIGN"]
        if not _TS_RE.match(ts_text):
            return error_response(
                401, "bad_timestamp", f"X-VT-TS must be integer ms, got {clipr(ts_text)}"
            )
        secret = gw.keys.get(key)
        expected = frames.sign_rest(
            secret or _DUMMY_SECRET, int(ts_text), request.method, request.raw_path, body
        )
        good = bool(_SIG_RE.match(sig)) and frames.verify_signature(expected, sig)
        if secret is None or not good:
            return error_response(401, "bad_signature", _BAD_AUTH)
        skew = abs(int(ts_text) - time.time_ns() // 1_000_000)
        if skew > gw.config.max_skew_ms:
            return error_response(
                401,
                "stale_timestamp",
                f"X-VT-TS is {skew} ms off the gateway clock (limit {gw.config.max_skew_ms} ms)",
            )
        seen = gw.replay.check_and_add(f"rest:{key}:{sig.lower()}")
        if seen == "replayed":
            gw.note_replay("rest", key, request)
            return error_response(
                401,
                "replayed_request",
                "this X-VT-SIGN was already used: every signed request needs a fresh "
                "signature (a new X-VT-TS); at most one identical request per millisecond",
            )
        if seen == "full":
            return error_response(
                429,
                "rate_limited",
                "too many signed requests in the skew window; retry shortly",
                headers={"Retry-After": "1"},
            )
        limit = gw.config.max_order_requests_per_s if limited else 0
        wait = self.order_limiter.retry_after(key, limit)
        if wait > 0:
            return error_response(
                429,
                "rate_limited",
                f"more than {limit} signed order requests a second for this key",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return key, body

    async def place_order(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        if isinstance(auth, web.Response):
            return auth
        key, text = auth
        try:
            obj = decode_json(text)
        except msgspec.DecodeError as exc:
            return error_response(400, "bad_json", f"body is not valid JSON: {exc}")
        if not isinstance(obj, dict):
            return error_response(400, "bad_request", "body must be a JSON object")
        coid = obj.get("client_order_id")
        if coid is not None and (not isinstance(coid, str) or not _CLIENT_ID_RE.match(coid)):
            return error_response(
                400,
                "invalid_client_order_id",
                "client_order_id must be 1-64 characters of A-Z a-z 0-9 . _ : -",
            )
        if coid is not None:
            existing = self.gw.desk.by_client_id(key, coid)
            if existing is not None:
                return json_response(existing.to_json(), 200)
        for name in ("symbol", "side", "price", "size"):
            if name not in obj:
                return error_response(400, "missing_field", f"order lacks field {name!r}")
        symbol = obj["symbol"]
        market = self.gw.hub.markets.get(symbol) if isinstance(symbol, str) else None
        if market is None:
            return error_response(400, "unknown_symbol", f"no instrument {clipr(symbol)}")
        side = obj["side"]
        if side not in ("buy", "sell"):
            return error_response(
                400, "invalid_side", f"side must be 'buy' or 'sell', got {clipr(side)}"
            )
        otype = obj.get("type", "limit")
        if otype != "limit":
            return error_response(400, "invalid_type", f"type must be 'limit', got {clipr(otype)}")
        inst = market.instrument
        for name in ("price", "size"):
            if not isinstance(obj[name], str):
                return error_response(
                    400,
                    f"invalid_{name}",
                    f"{name} must be a decimal string, got {clipr(obj[name])}",
                )
            if len(obj[name]) > MAX_DECIMAL_CHARS:
                return error_response(
                    400,
                    f"invalid_{name}",
                    f"{name} {clipr(obj[name])} is longer than {MAX_DECIMAL_CHARS} characters",
                )
        try:
            price = inst.price_units(obj["price"])
        except FrameError as exc:
            return error_response(
                400,
                "invalid_price",
                f"price {clipr(obj['price'])}: {exc.reason} ({symbol} tick_size {inst.tick_size})",
            )
        try:
            size = inst.size_units(obj["size"])
        except FrameError as exc:
            return error_response(
                400,
                "invalid_size",
                f"size {clipr(obj['size'])}: {exc.reason} ({symbol} lot_size {inst.lot_size})",
            )
        if price <= 0:
            return error_response(400, "invalid_price", "price must be > 0")
        if size <= 0:
            return error_response(400, "invalid_size", "size must be > 0")
        desk = self.gw.desk
        if desk.open_count(key) >= desk.max_open_per_key:
            return error_response(
                400, "too_many_open_orders", f"at most {desk.max_open_per_key} open orders a key"
            )
        order = desk.place(key, inst, side, price, size, coid, market.sim.book)
        return json_response(order.to_json(), 201)

    async def list_orders(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        if isinstance(auth, web.Response):
            return auth
        status = request.query.get("status")
        if status not in (None, "open", "filled", "cancelled"):
            return error_response(
                400,
                "bad_status",
                f"status must be open, filled or cancelled, got {clipr(status)}",
            )
        symbol = request.query.get("symbol")
        orders = self.gw.desk.find(auth[0], status, symbol)
        return json_response({"orders": [o.to_json() for o in orders]})

    async def _own_order(
        self, request: web.Request, *, limited: bool = True
    ) -> Order | web.Response:
        """The signed caller's order named in the path, or the error response to send."""
        auth = await self._auth(request, limited=limited)
        if isinstance(auth, web.Response):
            return auth
        oid = request.match_info["order_id"]
        order = self.gw.desk.get(auth[0], oid)
        if order is None:
            return error_response(404, "unknown_order", f"no order {clipr(oid)} for this key")
        return order

    async def get_order(self, request: web.Request) -> web.Response:
        order = await self._own_order(request)
        if isinstance(order, web.Response):
            return order
        return json_response(order.to_json())

    async def cancel_order(self, request: web.Request) -> web.Response:
        order = await self._own_order(request, limited=False)
        if isinstance(order, web.Response):
            return order
        return json_response(self.gw.desk.cancel(order).to_json())

    async def cancel_all(self, request: web.Request) -> web.Response:
        auth = await self._auth(request, limited=False)
        if isinstance(auth, web.Response):
            return auth
        symbol = request.query.get("symbol")
        return json_response({"cancelled": self.gw.desk.cancel_all(auth[0], symbol)})
