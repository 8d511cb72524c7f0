"""Faults on purpose: what the gateway breaks, when, and the log of what it broke.

Two kinds of setting (names are a contract; ``docs/protocol.md`` lists them with shapes):

- Continuous settings (:class:`FaultSettings`), set at start (flags / ``--faults PROFILE``) and
  merged at run time (``POST /admin/faults``):

  - chances per frame, each ``{"rate": 0..1, "scope": [channel or symbol, ...]}`` (a bare number
    means every channel): ``drop_delta``, ``duplicate_delta``, ``reorder_delta``,
    ``bad_checksum`` (orderbook deltas), ``malformed_frame`` (any data frame);
  - chances per snapshot request (scope by symbol): ``snapshot_error`` (503),
    ``stale_snapshot`` (a book ``stale_by`` seqs old, too old to bridge);
  - ``disconnect``: chance per connection per second of an abrupt close (``close_frame``
    decides whether a close frame is sent);
  - ``snapshot_delay_ms`` (int, 0 = off), ``snapshot_rate_limit`` (snapshots a second per key,
    0 = off; over it: 429 + Retry-After), ``stop_pings`` (bool), ``silence_channel`` (channels
    that publish nothing; an orderbook channel merges its changes and resumes gap-free).

- One-shot triggers (``POST /admin/trigger``), queued here per channel or symbol and consumed by
  the next frame or snapshot they match.

Every fault that fires is counted and logged (``event: "fault"``, ``fault``, ``channel``,
``seq``) by :meth:`Faults.record`.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter, deque
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from tickpipe.errors import ConfigError
from tickpipe.gateway.logs import log_event

DELTA_FAULTS = ("drop_delta", "duplicate_delta", "reorder_delta", "bad_checksum")
FRAME_FAULTS = (*DELTA_FAULTS, "malformed_frame")
SNAPSHOT_FAULTS = ("snapshot_error", "stale_snapshot")
CONNECTION_FAULTS = ("disconnect", "stall", "stop_pings")
FAULT_NAMES = (
    *FRAME_FAULTS,
    *SNAPSHOT_FAULTS,
    *CONNECTION_FAULTS,
    "snapshot_delay_ms",
    "snapshot_rate_limit",
    "silence_channel",
)


@dataclass(frozen=True, slots=True)
class Chance:
    """Probability ``rate`` (0..1) of a fault per occasion, limited to ``scope`` (channel names
    such as ``orderbook:AAPL`` or bare symbols such as ``AAPL``; empty = everything)."""

    rate: float = 0.0
    scope: tuple[str, ...] = ()

    def applies(self, channel: str, symbol: str) -> bool:
        return not self.scope or channel in self.scope or symbol in self.scope

    def to_json(self) -> dict[str, Any]:
        return {"rate": self.rate, "scope": list(self.scope)}

    @classmethod
    def from_json(cls, name: str, value: object) -> Chance:
        if isinstance(value, bool):
            raise ConfigError(f"fault {name!r}: expected a rate 0..1 or an object, got {value!r}")
        if isinstance(value, int | float):
            rate, scope = float(value), ()
        elif isinstance(value, dict):
            extra = set(value) - {"rate", "scope"}
            if extra:
                raise ConfigError(f"fault {name!r}: unknown field(s) {sorted(extra)}")
            raw_rate = value.get("rate", 0.0)
            if isinstance(raw_rate, bool) or not isinstance(raw_rate, int | float):
                raise ConfigError(f"fault {name!r}: rate must be a number, got {raw_rate!r}")
            rate = float(raw_rate)
            raw_scope = value.get("scope", [])
            if not isinstance(raw_scope, list) or not all(isinstance(s, str) for s in raw_scope):
                raise ConfigError(f"fault {name!r}: scope must be a list of strings")
            scope = tuple(raw_scope)
        else:
            raise ConfigError(f"fault {name!r}: expected a rate 0..1 or an object, got {value!r}")
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"fault {name!r}: rate must be within 0..1, got {rate!r}")
        return cls(rate, scope)


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """Continuous fault settings; all off by default. See the module docstring."""

    drop_delta: Chance = Chance()
    duplicate_delta: Chance = Chance()
    reorder_delta: Chance = Chance()
    bad_checksum: Chance = Chance()
    malformed_frame: Chance = Chance()
    snapshot_error: Chance = Chance()
    stale_snapshot: Chance = Chance()
    disconnect: Chance = Chance()
    close_frame: bool = True
    stale_by: int = 50
    snapshot_delay_ms: int = 0
    snapshot_rate_limit: int = 0
    stop_pings: bool = False
    silence_channel: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Chance):
                out[f.name] = v.to_json()
            elif isinstance(v, tuple):
                out[f.name] = list(v)
            else:
                out[f.name] = v
        return out

    def merged(self, patch: dict[str, Any]) -> FaultSettings:
        """A copy with ``patch`` applied; ConfigError names the first bad field."""
        if not isinstance(patch, dict):
            raise ConfigError("fault settings must be a JSON object")
        changes: dict[str, Any] = {}
        known = {f.name: f for f in fields(self)}
        for name, value in patch.items():
            if name not in known:
                raise ConfigError(
                    f"unknown fault setting {name!r}; known: {', '.join(sorted(known))}"
                )
            current = getattr(self, name)
            if isinstance(current, Chance):
                changes[name] = Chance.from_json(name, value)
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"fault {name!r} must be true or false, got {value!r}")
                changes[name] = value
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ConfigError(f"fault {name!r} must be an integer >= 0, got {value!r}")
                changes[name] = value
            else:
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"fault {name!r} must be a list of channel names")
                changes[name] = tuple(value)
        return replace(self, **changes)


def load_profile(name_or_path: str) -> FaultSettings:
    """A fault profile: a JSON file path, or the name of a bundled profile (``calm``, ``flaky``,
    ``chaos``). The file holds a settings object (the body of ``POST /admin/faults``); a
    ``"description"`` key is allowed and ignored."""
    path = Path(name_or_path)
    try:
        if path.suffix == ".json" or path.exists():
            text = path.read_text()
        else:
            text = (
                resources.files("tickpipe.gateway") / "profiles" / f"{name_or_path}.json"
            ).read_text()
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(
            f"--faults: no profile file {name_or_path!r} and no bundled profile of that name "
            f"(bundled: {', '.join(bundled_profiles())})"
        ) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--faults {name_or_path!r}: not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"--faults {name_or_path!r}: a profile is a JSON object")
    obj.pop("description", None)
    return FaultSettings().merged(obj)


def bundled_profiles() -> list[str]:
    folder = resources.files("tickpipe.gateway") / "profiles"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


@dataclass(slots=True)
class _Pending:
    """One-shot faults waiting for the frame or snapshot they hit."""

    frames: dict[str, deque[str]] = field(default_factory=dict)  # channel -> fault names
    snapshots: list[tuple[str, str | None, int]] = field(default_factory=list)


class Faults:
    """Current settings, queued one-shots, the fault RNG and the fault log (counts)."""

    def __init__(self, settings: FaultSettings, seed: int) -> None:
        self.settings = settings
        self.rng = random.Random(f"{seed}:faults")
        self.counts: Counter[str] = Counter()
        self._pending = _Pending()

    # -- one-shots --------------------------------------------------------------------------
    def queue_frame_fault(self, fault: str, channel: str, count: int = 1) -> None:
        q = self._pending.frames.setdefault(channel, deque())
        q.extend([fault] * count)

    def queue_snapshot_fault(self, fault: str, symbol: str | None, count: int = 1) -> None:
        self._pending.snapshots.append((fault, symbol, count))

    def pending_json(self) -> dict[str, Any]:
        return {
            "frames": {ch: list(q) for ch, q in self._pending.frames.items() if q},
            "snapshots": [
                {"fault": f, "symbol": s, "count": n} for f, s, n in self._pending.snapshots
            ],
        }

    def clear_pending(self) -> None:
        self._pending = _Pending()

    # -- decisions --------------------------------------------------------------------------
    def frame_fault(self, kind: str, channel: str, symbol: str) -> str | None:
        """The fault to apply to the next data frame of ``channel``, if any."""
        q = self._pending.frames.get(channel)
        if q:
            return q.popleft()
        s = self.settings
        names = FRAME_FAULTS if kind == "orderbook" else ("malformed_frame",)
        for name in names:
            chance: Chance = getattr(s, name)
            if chance.rate and chance.applies(channel, symbol) and self.rng.random() < chance.rate:
                return name
        return None

    def snapshot_fault(self, symbol: str) -> str | None:
        """``snapshot_error`` or ``stale_snapshot`` for this snapshot request, or None."""
        pend = self._pending.snapshots
        for i, (fault, sym, n) in enumerate(pend):
            if sym is None or sym == symbol:
                if n <= 1:
                    del pend[i]
                else:
                    pend[i] = (fault, sym, n - 1)
                return fault
        for name in SNAPSHOT_FAULTS:
            chance: Chance = getattr(self.settings, name)
            channel = f"orderbook:{symbol}"
            if chance.rate and chance.applies(channel, symbol) and self.rng.random() < chance.rate:
                return name
        return None

    def record(self, fault: str, **where: object) -> None:
        """Count one injected fault and log it with where it hit (channel, seq, session...)."""
        self.counts[fault] += 1
        log_event("fault", level=logging.WARNING, fault=fault, **where)
