"""Copies what the dashboard shows out of a live :class:`tickpipe.Client` into plain values.

Runs on the event loop a few times a second (never per frame): a handful of attribute reads per
book and one ``client.stats()``. Everything returned is immutable text and numbers, so rich's
refresh thread can render it while the client keeps reading the socket.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tickpipe.cli.dashboard_model import BookRow, ConnectionRow, QuoteRow
from tickpipe.client import BookView, ClientStats
from tickpipe.protocol.instruments import Instrument

LEVELS = 5


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """A field of an object or a dict (events and kill-switch reports come as either)."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def fmt_decimal(d: Decimal, places: int | None) -> str:
    """Fixed-point text: ``places`` decimals when known, else as the Decimal writes itself."""
    if places is None:
        return format(d, "f")
    return format(d.quantize(Decimal(1).scaleb(-places)), "f") if places > 0 else f"{d:.0f}"


def book_row(symbol: str, view: BookView, instrument: Instrument | None) -> BookRow:
    """One BookRow from a ``client.book(symbol)`` view (levels formatted with the
    instrument's decimals when it is known)."""
    pd = instrument.price_decimals if instrument else None
    sd = instrument.size_decimals if instrument else None
    bids = view.bids(LEVELS)
    asks = view.asks(LEVELS)
    spread = fmt_decimal(asks[0][0] - bids[0][0], pd) if bids and asks else None
    return BookRow(
        symbol=symbol,
        asset_class=instrument.asset_class if instrument else "",
        state=view.state,
        reason=view.reason,
        seq=view.seq,
        age_s=view.age_s,
        bids=tuple((fmt_decimal(p, pd), fmt_decimal(q, sd)) for p, q in bids),
        asks=tuple((fmt_decimal(p, pd), fmt_decimal(q, sd)) for p, q in asks),
        spread=spread,
        usable=view.usable(),
    )


def connection_row(stats: ClientStats) -> ConnectionRow:
    """A ConnectionRow from ``client.stats()``."""
    return ConnectionRow(
        state=stats.connection,
        heartbeat_age_s=stats.heartbeat_age_s,
        frames_per_s=stats.frames_per_s,
        latency_p50_ms=stats.latency_p50_ms,
        latency_p99_ms=stats.latency_p99_ms,
        gaps=sum(stats.gaps.values()),
        resyncs=stats.resyncs,
        reconnects=stats.reconnects,
        backoff_delay_s=stats.backoff_delay_s or None,
        snapshot_requests=stats.snapshot_requests,
        rate_limited=stats.snapshot_429,
        kill_switch=kill_switch_text(stats.last_kill_switch),
    )


def kill_switch_text(result: Any) -> str:
    """'cancelled 4, failed 0 (own) at 12:00:03' from the last kill-switch result, or '-'."""
    if result is None:
        return "-"
    if isinstance(result, str):
        return result
    cancelled = _get(result, "cancelled", []) or []
    failed = _get(result, "failed", []) or []
    scope = _get(result, "scope", "")
    t = _get(result, "t")
    when = f" at {time.strftime('%H:%M:%S', time.localtime(t))}" if t else ""
    n_c = len(cancelled) if not isinstance(cancelled, int) else cancelled
    n_f = len(failed) if not isinstance(failed, int) else failed
    scope_text = f" ({scope})" if scope else ""
    return f"cancelled {n_c}, failed {n_f}{scope_text}{when}"


def quote_text(kind: str, last: Any, instrument: Instrument | None) -> str:
    """A short line for the latest ticker or trade value."""
    if last is None:
        return "-"
    if kind == "ticker":
        price = _get(last, "last", "?")  # None: the venue's ticker has none (Binance bookTicker)
        tail = "" if price is None else f"  last {price}"
        return f"{_get(last, 'bid', '?')} / {_get(last, 'ask', '?')}{tail}"
    return f"{_get(last, 'side', '?')} {_get(last, 'size', '?')} @ {_get(last, 'price', '?')}"


def quote_row(channel: str, last: Any, instrument: Instrument | None, now_ns: int) -> QuoteRow:
    kind = channel.partition(":")[0]
    ts = _get(last, "ts") if last is not None else None
    age = (now_ns - ts) / 1e9 if isinstance(ts, int) else None
    return QuoteRow(
        channel=channel,
        asset_class=instrument.asset_class if instrument else "",
        text=quote_text(kind, last, instrument),
        seq=_get(last, "seq") if last is not None else None,
        age_s=age,
    )


# The fields that say what happened, per event: shown first (after the name), so a narrow
# events pane cuts the detail, never these. Then the channel, then every other field.
ESSENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "gap": ("reason",),
    "stale": ("reason",),
    "disconnected": ("reason", "code"),
    "reconnecting": ("attempt", "delay_s"),
    "connect_retry": ("attempt", "error"),
    "subscribe_error": ("code",),
    "snapshot_error": ("status",),
    "bad_frame": ("error",),
    "trades_missed": ("missed",),
    "overflow": ("queue", "dropped"),
    "orders_cancelled": ("cancelled", "failed"),
    "auth_failed": ("message",),
}
_REST_STATUS = re.compile(r"-> (\d{3}) ")


def _event_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, list):
        return ",".join(map(str, v[:4])) + ("..." if len(v) > 4 else "")
    return str(v)


def format_event(ev: Any) -> str:
    """One line for the events pane: ``HH:MM:SS name ESSENTIAL channel k=v ...``.

    The essential fields of each event kind (:data:`ESSENTIAL_FIELDS`: a gap's reason, a
    snapshot error's HTTP status, ...) come first, so the pane's end-of-line cut only ever hides
    detail. A ``snapshot_error``'s status is read out of its error text (``... -> 503 ...``).
    """
    d: dict[str, Any] = dict(ev.to_dict()) if hasattr(ev, "to_dict") else dict(ev)
    name = d.pop("event", getattr(ev, "name", "?"))
    t = d.pop("t", None)
    when = time.strftime("%H:%M:%S", time.localtime(t if isinstance(t, int | float) else None))
    if name == "snapshot_error" and isinstance(d.get("error"), str):
        m = _REST_STATUS.search(d["error"])
        if m:
            d["status"] = int(m.group(1))
            d["error"] = d["error"][m.end() :]  # "snapshot_unavailable: ..." after the status
    if name == "orders_cancelled":
        ids = [*(d.get("cancelled") or []), *(d.get("failed") or [])]
        d["cancelled"] = len(d.get("cancelled") or [])
        d["failed"] = len(d.get("failed") or [])
        d["ids"] = ids
        if not d.get("background"):
            d.pop("background", None)
    if name == "subscribed" and isinstance(d.get("channels"), list):
        d["n"] = len(d["channels"])
        d = {"n": d.pop("n"), **d}
    first = [k for k in ESSENTIAL_FIELDS.get(name, ()) if k in d]
    order = [*first, "channel", *(k for k in d if k not in first and k != "channel")]
    parts = []
    for k in order:
        v = d.get(k)
        if v is None or v == [] or v == "":
            continue
        parts.append(str(v) if k == "channel" else f"{k}={_event_value(v)}")
    return f"{when} {name} " + " ".join(parts)
