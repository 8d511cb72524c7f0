"""Turning a decoder's complaint into a :class:`~tickpipe.errors.FrameError` that names the field:
one implementation for every codec (VTS/1's ``frames`` and each venue's). Pure.

msgspec raises three kinds of error on bad input: ``MsgspecError`` (with a message ending
``- at `$.path```), ``UnicodeDecodeError`` (invalid UTF-8 inside a string it decodes, on some
versions) and ``RecursionError`` (nesting deeper than the C stack allows). A codec catches
:data:`DECODE_ERRORS` and raises :func:`decode_error` of it; it calls :func:`check_utf8` after
a successful decode, because msgspec does not look inside the strings it skips.
"""

from __future__ import annotations

import codecs
import re

import msgspec

from tickpipe.errors import FrameError

DECODE_ERRORS = (msgspec.MsgspecError, UnicodeDecodeError, RecursionError)

_PATH_RE = re.compile(r"\s*-?\s*at `\$\.?([^`]*)`")
_MISSING_RE = re.compile(r"missing required field `([^`]*)`")
_utf8_decode = codecs.utf_8_decode


def field_path(msg: str, prefix: str = "") -> str | None:
    """The offending field of a msgspec message, under ``prefix``: ``data[0].bids[3]``."""
    m = _PATH_RE.search(msg)
    path = m.group(1) if m else ""
    field = prefix + (path if path.startswith("[") or not path or not prefix else "." + path)
    missing = _MISSING_RE.search(msg)
    if missing:
        field = f"{field}.{missing.group(1)}" if field else missing.group(1)
    return field or None


def decode_error(
    exc: Exception, what: str, channel: str | None = None, prefix: str = ""
) -> FrameError:
    """A FrameError for ``exc`` raised while decoding ``what`` (``"frame"``, ``"snapshot
    body"``): nesting and UTF-8 named as such, else msgspec's reason and the field."""
    if isinstance(exc, RecursionError):
        return FrameError(f"{what} is nested too deeply to decode", channel=channel)
    if isinstance(exc, UnicodeDecodeError):
        return FrameError(f"{what} is not valid UTF-8 at byte {exc.start}", channel=channel)
    msg = str(exc)
    reason = _PATH_RE.sub("", msg).strip().rstrip("-").strip() or msg
    return FrameError(reason, channel=channel, field=field_path(msg, prefix))


def utf8_error(
    data: bytes | str | memoryview, what: str, channel: str | None = None
) -> FrameError | None:
    """A FrameError when ``data`` is not valid UTF-8 (~0.1 µs for a 150-byte frame), else None."""
    if isinstance(data, str):
        return None
    try:
        _utf8_decode(data, "strict", True)
    except UnicodeDecodeError as exc:
        return FrameError(
            f"{what} is not valid UTF-8: {exc.reason} at byte {exc.start}", channel=channel
        )
    return None


def check_utf8(data: bytes | str | memoryview, what: str, channel: str | None = None) -> None:
    """Raise :func:`utf8_error`'s error, if any."""
    err = utf8_error(data, what, channel)
    if err is not None:
        raise err
