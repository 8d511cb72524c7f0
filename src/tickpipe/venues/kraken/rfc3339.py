"""RFC 3339 UTC timestamps <-> integer nanoseconds since the epoch, pure (no ``datetime``: the
venue layer reads no clock, and the purity test forbids the module).

Kraken v2 writes ``2023-09-25T07:49:37.708706Z``; Coinbase Advanced Trade writes up to nine
fraction digits (``2023-02-09T20:32:50.714964855Z``). Parsing accepts ``Z`` or a numeric offset
``+HH:MM``/``-HH:MM`` and up to 12 fraction digits (digits past the 9th are dropped:
nanoseconds are the unit). Used by the Kraken and Coinbase codecs (a candidate for the core:
``protocol/`` has no time text helper yet).
"""

from __future__ import annotations

import re

_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,12}))?(Z|z|[+-]\d{2}:\d{2})\Z"
)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


_HEADS: dict[str, int] = {}
"""``YYYY-MM-DDTHH:MM:SS`` heads of timestamps that :func:`parse_reference` accepted -> their
seconds since the epoch (before any offset). A stream's timestamps share a head for a whole
second, so the regex, the six ``int`` calls and the calendar run once a second, not once a
message. Bounded: cleared at :data:`_HEADS_MAX` entries."""
_HEADS_MAX = 256


def parse_ns(text: str) -> int:
    """``"2023-09-25T07:49:37.708706Z"`` -> ns since the epoch. ValueError when malformed.

    The usual shape (a head seen before, ``Z``, ASCII fraction digits) costs a dict lookup
    (~0.6 µs); anything else is :func:`parse_reference` (~2.3 µs), which decides every error
    and fills the cache. Same answer either way (a differential test checks it)."""
    secs = _HEADS.get(text[:19])
    if secs is not None:
        tail = text[19:]
        if tail == "Z" or tail == "z":
            return secs * 1_000_000_000
        frac = tail[1:-1]
        if (
            tail[:1] == "."
            and (tail[-1:] == "Z" or tail[-1:] == "z")
            and 0 < len(frac) <= 12
            and frac.isascii()
            and frac.isdigit()
        ):
            return secs * 1_000_000_000 + int((frac + "000000000")[:9])
    return parse_reference(text)


def parse_reference(text: str) -> int:
    """:func:`parse_ns` by the regex, every time (the reference; fills the head cache)."""
    m = _RE.match(text)
    if m is None:
        raise ValueError(f"{text[:64]!r} is not an RFC 3339 timestamp")
    y, mo, d, hh, mi, ss = (int(g) for g in m.groups()[:6])
    if not (1 <= mo <= 12 and 1 <= d <= _MONTH_DAYS[mo - 1] and hh < 24 and mi < 60 and ss < 61):
        raise ValueError(f"{text[:64]!r} is not a valid date and time")
    frac = m.group(7) or ""
    ns = int((frac + "000000000")[:9])
    tz = m.group(8)
    offset_s = 0
    if tz not in ("Z", "z"):
        sign = -1 if tz[0] == "-" else 1
        offset_s = sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    head_secs = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss
    if len(_HEADS) >= _HEADS_MAX:
        _HEADS.clear()
    _HEADS[text[:19]] = head_secs
    return (head_secs - offset_s) * 1_000_000_000 + ns


def format_ns(ns: int, digits: int = 6) -> str:
    """ns since the epoch -> ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` with ``digits`` fraction digits
    (0..9; the fraction is truncated, as the venues write it)."""
    secs, rem = divmod(ns, 1_000_000_000)
    days, sod = divmod(secs, 86400)
    y, mo, d = _civil_from_days(days)
    hh, r = divmod(sod, 3600)
    mi, ss = divmod(r, 60)
    base = f"{y:04d}-{mo:02d}-{d:02d}T{hh:02d}:{mi:02d}:{ss:02d}"
    if digits <= 0:
        return base + "Z"
    return f"{base}.{str(rem).rjust(9, '0')[:digits]}Z"
