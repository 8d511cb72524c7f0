"""Which hot path runs: the compiled ``tickpipe._hot`` or the pure-Python reference.

The per-frame work of the core (parsing levels to integer units, applying them to a book side,
the top-of-book checksum texts and their CRC-32) has two implementations with one behaviour:
the pure-Python modules (``protocol/book.py``, ``protocol/frames.py``, the venues' checksum
modules) are the reference, and ``tickpipe/_hot.c`` is a compiled twin that either gives
exactly the reference's result or declines, and the reference then runs. ``setup.sh`` builds it
with the machine's C compiler.

- ``TICKPIPE_PURE=1`` in the environment (read once, at import) forces the pure path.
- Without it, a missing or stale build is not silent: importing tickpipe warns
  (``RuntimeWarning``, once) and the pure path runs. ``tickpipe --version`` names the path.

``hot`` is the compiled module, or None when the pure path runs.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

EXPECTED_ABI = 3  # HOT_ABI in _hot.c: a build of another version is refused

PURE_ENV = "TICKPIPE_PURE"


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return None, f"pure Python ({PURE_ENV}={os.environ[PURE_ENV]})"
    try:
        import tickpipe._hot as _hot
    except ImportError as exc:
        reason = f"the compiled hot path tickpipe._hot is not built ({exc})"
    else:
        abi = getattr(_hot, "ABI", None)
        if abi == EXPECTED_ABI:
            return _hot, "compiled (tickpipe._hot)"
        reason = f"tickpipe._hot is a stale build (ABI {abi}, this tickpipe needs {EXPECTED_ABI})"
    warnings.warn(
        f"{reason}: running the pure-Python path, ~2x more CPU a frame. Run `bash setup.sh` "
        f"(needs gcc and the Python headers) to build it, or set {PURE_ENV}=1 to choose the "
        "pure path and silence this warning.",
        RuntimeWarning,
        stacklevel=2,
    )
    return None, f"pure Python ({reason})"


hot, DESCRIPTION = _load()


def describe() -> str:
    """``"compiled (tickpipe._hot)"`` or ``"pure Python (why)"``."""
    return DESCRIPTION


# Every module that holds the compiled module as its ``_hot`` global (tests/test_hotpath.py
# checks this list against the sources).
USERS = (
    "tickpipe.protocol.book",
    "tickpipe.protocol.frames",
    "tickpipe.venues.okx.checksum",
    "tickpipe.venues.kraken.checksum",
)


@contextmanager
def pure() -> Iterator[None]:
    """Run the pure-Python reference inside the block, in this process (the differential tests
    and ``benchmarks.breakdown --pure``); the compiled path again after it. Not thread-safe."""
    modules = [importlib.import_module(name) for name in USERS]
    saved = [getattr(m, "_hot") for m in modules]  # noqa: B009
    for m in modules:
        setattr(m, "_hot", None)  # noqa: B010
    try:
        yield
    finally:
        for m, h in zip(modules, saved, strict=True):
            setattr(m, "_hot", h)  # noqa: B010
