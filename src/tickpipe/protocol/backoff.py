"""Reconnect delay policy of VTS/1 section 8, with the random source injected.

``delay = min(cap, base * 2**attempt) * U(0.5, 1.5)`` ("equal" jitter, the default) or
``U(0, min(cap, base * 2**attempt))`` ("full" jitter). ``attempt`` is 0 for the first retry
after a loss, so even the first one waits. The counter resets once a connection has stayed up
for ``healthy_after_s``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tickpipe.errors import ConfigError

Jitter = Literal["equal", "full", "none"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Knobs: ``base_s`` (0.5 s) first delay scale, ``cap_s`` (30 s) ceiling before jitter,
    ``jitter`` ("equal"), ``healthy_after_s`` (10 s) uptime that resets the attempt counter."""

    base_s: float = 0.5
    cap_s: float = 30.0
    jitter: Jitter = "equal"
    healthy_after_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.base_s > 0:
            raise ConfigError(f"backoff base_s must be > 0, got {self.base_s!r}")
        if not self.cap_s >= self.base_s:
            raise ConfigError(f"backoff cap_s must be >= base_s, got {self.cap_s!r}")
        if self.jitter not in ("equal", "full", "none"):
            raise ConfigError(
                f"backoff jitter must be 'equal', 'full' or 'none', got {self.jitter!r}"
            )
        if self.healthy_after_s < 0:
            raise ConfigError(f"backoff healthy_after_s must be >= 0, got {self.healthy_after_s!r}")

    def ceiling(self, attempt: int) -> float:
        """Delay before jitter for ``attempt`` (0-based)."""
        # 2**attempt overflows float for huge attempts; the cap is reached long before.
        if attempt >= 64:
            return self.cap_s
        return min(self.cap_s, self.base_s * float(1 << attempt))

    def delay(self, attempt: int, uniform01: float) -> float:
        """The delay for ``attempt`` given one draw of U(0, 1)."""
        c = self.ceiling(attempt)
        if self.jitter == "equal":
            return c * (0.5 + uniform01)
        if self.jitter == "full":
            return c * uniform01
        return c


class Backoff:
    """Attempt counter over a :class:`BackoffPolicy`. ``random`` returns floats in [0, 1)."""

    __slots__ = ("_connected_at", "attempt", "policy", "random")

    def __init__(self, policy: BackoffPolicy, random: Callable[[], float]) -> None:
        self.policy = policy
        self.random = random
        self.attempt = 0
        self._connected_at: float | None = None

    def next_delay(self) -> float:
        """Delay before the next try; advances the attempt counter."""
        d = self.policy.delay(self.attempt, self.random())
        self.attempt += 1
        return d

    def connected(self, now: float) -> None:
        """A connection (or fetch) succeeded at ``now``."""
        self._connected_at = now

    def lost(self, now: float) -> None:
        """The connection ended at ``now``: reset the counter if it had been healthy long enough."""
        if (
            self._connected_at is not None
            and now - self._connected_at >= self.policy.healthy_after_s
        ):
            self.attempt = 0
        self._connected_at = None

    def reset(self) -> None:
        self.attempt = 0
        self._connected_at = None
