"""The admin API: loopback only, ``X-Admin-Token`` on every call. Shapes in docs/protocol.md.

GET    /admin/faults                 settings, pending one-shots, counts of faults fired
POST   /admin/faults                 merge a settings patch (body: a settings object)
DELETE /admin/faults                 all faults off, pending one-shots dropped
POST   /admin/trigger                one-shot fault: {"fault": NAME, ...params}
GET    /admin/book/{symbol}?seq=N    the true book at seq N (default: latest), full depth
GET    /admin/stats                  connections, frames, orders, faults
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from tickpipe.errors import ConfigError
from tickpipe.gateway.faults import CONNECTION_FAULTS, FAULT_NAMES, FRAME_FAULTS, SNAPSHOT_FAULTS
from tickpipe.gateway.guard import clipr
from tickpipe.gateway.history import SeqUnknown
from tickpipe.gateway.httputil import Handler, error_response, json_response
from tickpipe.gateway.rest import book_body, parse_depth

if TYPE_CHECKING:
    from tickpipe.gateway.server import Gateway

_json = msgspec.json.Decoder()

TRIGGER_FAULTS = (*CONNECTION_FAULTS, *FRAME_FAULTS, *SNAPSHOT_FAULTS, "silence_channel")
"""Fault names ``POST /admin/trigger`` fires (the others in FAULT_NAMES are settings only)."""


class Admin:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    @web.middleware
    async def require_token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("X-Admin-Token", "")
        if not hmac.compare_digest(given.encode(), self.gw.admin_token.encode()):
            return error_response(
                401, "bad_admin_token", "missing or wrong X-Admin-Token (printed at gateway start)"
            )
        return await handler(request)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/admin/faults", self.get_faults),
            web.post("/admin/faults", self.set_faults),
            web.delete("/admin/faults", self.reset_faults),
            web.post("/admin/trigger", self.trigger),
            web.get("/admin/book/{symbol}", self.book),
            web.get("/admin/stats", self.stats),
        ]

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            obj = _json.decode(await request.read())
        except msgspec.DecodeError as exc:
            return error_response(400, "bad_json", f"body is not valid JSON: {exc}")
        if not isinstance(obj, dict):
            return error_response(400, "bad_request", "body must be a JSON object")
        return obj

    async def get_faults(self, request: web.Request) -> web.Response:
        return json_response(self.gw.faults_json())

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        try:
            self.gw.set_faults(body)
        except ConfigError as exc:
            return error_response(400, "invalid_fault", str(exc))
        return json_response(self.gw.faults_json())

    async def reset_faults(self, request: web.Request) -> web.Response:
        self.gw.reset_faults()
        return json_response(self.gw.faults_json())

    async def trigger(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        fault = body.pop("fault", None)
        # a dialect may add faults of its venue's own (bybit: venue_restart, resend_snapshot)
        extra: tuple[str, ...] = getattr(self.gw.dialect, "EXTRA_TRIGGER_FAULTS", ())
        names = ", ".join((*TRIGGER_FAULTS, *extra))
        if not isinstance(fault, str):
            return error_response(
                400, "invalid_fault", f'body needs "fault": one of {names}, got {fault!r}'
            )
        if fault not in TRIGGER_FAULTS and fault not in extra:
            hint = (
                " (a continuous setting: set it with POST /admin/faults)"
                if fault in FAULT_NAMES
                else ""
            )
            return error_response(
                400,
                "invalid_fault",
                f"cannot trigger {fault!r}{hint}; faults that can be triggered: {names}",
            )
        try:
            result = self.gw.trigger(fault, **body)
        except ConfigError as exc:
            return error_response(400, "invalid_fault", str(exc))
        return json_response(result)

    async def book(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        market = self.gw.hub.markets.get(symbol)
        if market is None:
            return error_response(404, "unknown_symbol", f"no instrument {clipr(symbol)}")
        depth = parse_depth(request)
        if isinstance(depth, web.Response):
            return depth
        raw = request.query.get("seq", "")
        if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            return error_response(
                400, "bad_seq", f"seq must be a non-negative integer, got {clipr(raw)}"
            )
        seq = int(raw) if raw else market.history.seq
        try:
            book = market.history.book_at(seq)
        except SeqUnknown as exc:
            status, code = (410, "seq_too_old") if exc.too_old else (404, "unknown_seq")
            return error_response(status, code, f"{symbol}: {exc}")
        body = book_body(symbol, seq, book, depth)
        body["checksum"] = book.checksum()
        return json_response(body)

    async def stats(self, request: web.Request) -> web.Response:
        return json_response(self.gw.stats())
