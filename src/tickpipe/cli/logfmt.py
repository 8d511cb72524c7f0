"""``--log-format text|json`` for ``watch``, ``demo`` and ``gateway``: stderr logging set-up.

JSON: one object a line on stderr, ``{"t": <unix s>, "level": "warning", "logger": "tickpipe.x",
"event": NAME, ...fields}`` for a line about an event (the same names as the JSONL events:
``gap``, ``stale``, ``disconnected``, ``subscribe_error``, ``metrics``...; the gateway's own
structured lines keep their ``event`` and fields), else ``{"t", "level", "logger", "message"}``.
A traceback rides along as ``exc``. Every line goes through :class:`SecretFilter`: the CLI
registers the secrets it was given and any occurrence is replaced by ``***`` before the line is
written (defence in depth: nothing is meant to log them in the first place).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

LOG_FORMATS = ("text", "json")
EVENT_ATTR = "tickpipe_event"
FIELDS_ATTR = "tickpipe_fields"
REDACTED = "***"


def log_event(
    logger: logging.Logger, event: str, message: str, level: int = logging.INFO, **fields: Any
) -> None:
    """Log ``message`` about ``event``: in JSON the line is ``{"event": event, **fields}``."""
    logger.log(level, "%s", message, extra={EVENT_ATTR: event, FIELDS_ATTR: fields})


class JsonFormatter(logging.Formatter):
    """One JSON object a line; see the module docstring."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "t": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        event = getattr(record, EVENT_ATTR, None)
        message = record.getMessage()
        if event is not None:
            out["event"] = event
            out.update(getattr(record, FIELDS_ATTR, None) or {})
            if message and message != event:
                out["message"] = message
        else:
            merged = _gateway_line(message)
            if merged is not None:  # tickpipe.gateway.logs: already {"ts", "event", ...}
                merged.pop("ts", None)
                out.update(merged)
            else:
                out["message"] = message
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"), default=str)


def _gateway_line(message: str) -> dict[str, Any] | None:
    if not (message.startswith("{") and message.endswith("}")):
        return None
    try:
        obj = json.loads(message)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and "event" in obj else None


class SecretFilter(logging.Filter):
    """Replaces each registered secret by ``***`` in the rendered message and its fields."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        msg = record.getMessage()
        clean = self.scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        fields = getattr(record, FIELDS_ATTR, None)
        if fields:
            setattr(record, FIELDS_ATTR, {k: self._scrub_any(v) for k, v in fields.items()})
        return True

    def scrub(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, REDACTED)
        return text

    def _scrub_any(self, v: Any) -> Any:
        return self.scrub(v) if isinstance(v, str) else v


def setup_logging(
    fmt: str,
    level: int | str = logging.WARNING,
    *,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
    text_format: str = "%(message)s",
) -> logging.Handler:
    """One stderr handler on the root logger (replacing any earlier one of ours)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(text_format))
    handler.addFilter(SecretFilter(secrets))
    handler.set_name("tickpipe-cli")
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == "tickpipe-cli":
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def add_observe_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--metrics-port`` and ``--log-format`` (shared by watch, demo and gateway)."""
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics (0: any free port, "
        "the bound one is printed); default: off",
    )
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="stderr as text, or json: one JSON object a line (default: text)",
    )
