"""JSON error bodies for every HTTP answer the gateway gives (VTS/1 section 7):
``{"error": {"code": "...", "message": "..."}}`` with a fitting status."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tickpipe.gateway.guard import clip
from tickpipe.gateway.logs import log_event
from tickpipe.protocol import frames

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=frames.encode(body), status=status, content_type="application/json", headers=headers
    )


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's own errors (404 route, 405 method, 413) and crashes into JSON bodies."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "http_error")
        msg = f"{clip(request.method, 16)} {clip(request.path)}: {exc.reason}"
        return error_response(exc.status, code, msg)
    except Exception as exc:
        log_event(
            "internal_error",
            level=logging.ERROR,
            path=clip(request.path),
            error=clip(repr(exc), 200),
        )
        return error_response(500, "internal", f"internal error: {type(exc).__name__}")
