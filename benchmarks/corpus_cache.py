"""A generated corpus cached in ``$TMPDIR`` by its spec's key: generated once, reused by every
run (the floods of ``sat_sender.py`` and ``venue_flood_sender.py``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgspec

T = TypeVar("T")


def cache_dir(prefix: str, key: str) -> Path:
    """``$TMPDIR/<prefix>-<key>``."""
    return Path(tempfile.gettempdir()) / f"{prefix}-{key}"


def ensure(d: Path, name: str, generate: Callable[[], object]) -> Path:
    """Write ``generate()`` as msgpack to ``d/name`` unless it is already there; return ``d``.
    The file appears atomically: a concurrent reader never sees half of it."""
    if (d / name).exists():
        return d
    value = generate()
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f"{name}.{os.getpid()}.tmp"
    tmp.write_bytes(msgspec.msgpack.encode(value))
    tmp.replace(d / name)
    return d


def load(d: Path, name: str, type_: type[T]) -> T:
    return msgspec.msgpack.decode((d / name).read_bytes(), type=type_)
