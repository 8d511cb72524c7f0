"""What the client tells its user, as values. ``tickpipe watch --jsonl`` prints exactly these.

Each event is a frozen dataclass with a class-level ``name`` (the JSONL ``"event"``) and a
``t`` (Unix seconds, float, when it happened). ``to_dict()`` gives the JSONL object:
``{"event": name, "t": t, **fields}``. Field names and meanings are a contract (issue 8):

==================  ===================================================================
connected           url, session
subscribed          channels (accepted)
subscribe_error     channel, code (``unknown_channel`` | ``too_many_channels`` | ...)
unsubscribed        channels
synced              channel, seq
gap                 channel, reason (seq_gap|checksum|bad_frame|overflow|stale_snapshot),
                    expected, got (seqs; for ``checksum`` the frame's and the local CRC)
stale               channel, reason (heartbeat|disconnected|silent)
active              channel (a ``silent`` channel spoke again)
disconnected        reason (heartbeat|closed|error|client), code (close code or null),
                    heartbeat_age_s (seconds since the last ping, when known)
connect_retry       attempt, delay_s, error (a first connect failed; before any connection,
                    so not a reconnect: ``attempt`` counts the failed tries from 1)
reconnecting        attempt, delay_s
orders_cancelled    cancelled [order_id], failed [order_id], scope (own|key|gap:SYMBOL),
                    background (a later report of background retries)
auth_failed         message
bad_frame           channel (or null), error
trades_missed       channel, expected, got, missed (a trades seq gap)
cancel_on_disconnect enabled (the gateway's acknowledgement)
overflow            queue, dropped (a bounded user queue dropped its oldest items)
snapshot_error      channel, error (a snapshot could not be fetched; retried)
==================  ===================================================================
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


def _now() -> float:
    return time.time()


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientEvent:
    """Base of every event. ``t`` is Unix seconds (float)."""

    name: ClassVar[str] = "event"
    t: float = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        t = d.pop("t")
        return {"event": self.name, "t": t, **d}


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected(ClientEvent):
    name: ClassVar[str] = "connected"
    url: str
    session: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribedEvent(ClientEvent):
    name: ClassVar[str] = "subscribed"
    channels: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeError(ClientEvent):
    name: ClassVar[str] = "subscribe_error"
    channel: str
    code: str
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribedEvent(ClientEvent):
    name: ClassVar[str] = "unsubscribed"
    channels: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncedEvent(ClientEvent):
    name: ClassVar[str] = "synced"
    channel: str
    seq: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GapEvent(ClientEvent):
    name: ClassVar[str] = "gap"
    channel: str
    reason: str
    expected: int | None
    got: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stale(ClientEvent):
    name: ClassVar[str] = "stale"
    channel: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Active(ClientEvent):
    name: ClassVar[str] = "active"
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(ClientEvent):
    name: ClassVar[str] = "disconnected"
    reason: str
    code: int | None = None
    heartbeat_age_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnecting(ClientEvent):
    name: ClassVar[str] = "reconnecting"
    attempt: int
    delay_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectRetry(ClientEvent):
    name: ClassVar[str] = "connect_retry"
    attempt: int
    delay_s: float
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrdersCancelled(ClientEvent):
    name: ClassVar[str] = "orders_cancelled"
    cancelled: list[str]
    failed: list[str]
    scope: str = "own"
    background: bool = False
    venue: str = "vts"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadManSwitch(ClientEvent):
    """A real venue's own dead man's switch (issue 17): ``armed`` (the venue will cancel the
    key's orders ``timeout_s`` after our last refresh) when first armed and again after a blind
    spell; not armed (``error`` says why) when arming failed."""

    name: ClassVar[str] = "dead_man_switch"
    venue: str
    armed: bool
    timeout_s: float | None
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthFailed(ClientEvent):
    name: ClassVar[str] = "auth_failed"
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BadFrame(ClientEvent):
    name: ClassVar[str] = "bad_frame"
    channel: str | None
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TradesMissed(ClientEvent):
    name: ClassVar[str] = "trades_missed"
    channel: str
    expected: int
    got: int
    missed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOnDisconnectArmed(ClientEvent):
    name: ClassVar[str] = "cancel_on_disconnect"
    enabled: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Overflow(ClientEvent):
    name: ClassVar[str] = "overflow"
    queue: str
    dropped: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotError(ClientEvent):
    name: ClassVar[str] = "snapshot_error"
    channel: str
    error: str


EVENT_TYPES: tuple[type[ClientEvent], ...] = (
    Connected,
    SubscribedEvent,
    SubscribeError,
    UnsubscribedEvent,
    SyncedEvent,
    GapEvent,
    Stale,
    Active,
    Disconnected,
    Reconnecting,
    ConnectRetry,
    OrdersCancelled,
    AuthFailed,
    BadFrame,
    TradesMissed,
    CancelOnDisconnectArmed,
    Overflow,
    SnapshotError,
)
