"""Structured logging: one JSON object a line on the ``tickpipe.gateway`` logger (stderr in CLI).

Every line has ``event``; fault lines have ``fault``, ``channel`` and ``seq`` (or ``session`` /
``symbol`` for faults that hit a connection or a snapshot).
"""

from __future__ import annotations

import logging
import time

import msgspec

logger = logging.getLogger("tickpipe.gateway")
_encoder = msgspec.json.Encoder(enc_hook=repr)  # never fail to log an odd value


def log_event(event: str, *, level: int = logging.INFO, **fields: object) -> None:
    """Log ``{"ts": <unix s>, "event": event, **fields}`` as one JSON line."""
    if not logger.isEnabledFor(level):
        return
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    logger.log(level, _encoder.encode(record).decode())
