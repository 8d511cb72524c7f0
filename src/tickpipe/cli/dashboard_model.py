"""The dashboard's data: plain, immutable values copied from the client a few times a second.

The event loop builds one :class:`DashboardSnapshot` per tick (cheap: a few dozen attribute reads
and the top levels of each book); the renderer (:mod:`tickpipe.cli.dashboard`) turns it into rich
renderables on rich's own refresh thread. Nothing here refers to a live object, so rendering never
races the client's read path and can be tested from hand-made values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Sync states as the client names them (BookView.state), plus "idle" before the first subscribe.
BOOK_STATES = ("idle", "syncing", "live", "resyncing", "stale")


@dataclass(frozen=True, slots=True)
class BookRow:
    """One order book as shown: prices and sizes already formatted as text."""

    symbol: str
    asset_class: str
    state: str
    reason: str = ""
    seq: int | None = None
    age_s: float | None = None
    bids: tuple[tuple[str, str], ...] = ()  # (price, size), best first
    asks: tuple[tuple[str, str], ...] = ()
    spread: str | None = None
    usable: bool = False


@dataclass(frozen=True, slots=True)
class QuoteRow:
    """A ticker or trades channel: last values seen (text), and its seq."""

    channel: str
    asset_class: str
    text: str
    seq: int | None = None
    age_s: float | None = None


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    """The one connection's health. ``None`` means "not known yet" (rendered as a dash)."""

    state: str = "connecting"
    heartbeat_age_s: float | None = None
    frames_per_s: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    gaps: int = 0
    resyncs: int = 0
    reconnects: int = 0
    backoff_delay_s: float | None = None
    snapshot_requests: int = 0
    rate_limited: int = 0
    kill_switch: str = "-"


@dataclass(frozen=True, slots=True)
class StrategyRow:
    """What the built-in demo strategy is doing."""

    enabled: bool = False
    status: str = "off"
    open_orders: int = 0
    placed: int = 0
    cancelled: int = 0
    errors: int = 0
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class KeyHelp:
    key: str
    label: str
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class DashboardSnapshot:
    """Everything one frame of the dashboard shows."""

    title: str = "tickpipe demo"
    target: str = ""  # where the stream comes from, e.g. "embedded gateway pid 123 ws://..."
    uptime_s: float = 0.0
    books: tuple[BookRow, ...] = ()
    quotes: tuple[QuoteRow, ...] = ()
    connection: ConnectionRow = field(default_factory=ConnectionRow)
    strategy: StrategyRow = field(default_factory=StrategyRow)
    events: tuple[str, ...] = ()  # newest last
    keys: tuple[KeyHelp, ...] = ()
    notice: str = ""  # one line under the header: last key result, "no admin endpoint", ...
    ends_in_s: float | None = None  # --duration countdown
