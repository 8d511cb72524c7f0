"""Liveness as pure decisions over clock readings (seconds, any monotonic origin).

- :class:`HeartbeatWatchdog`: the gateway pings every ``heartbeat_ms``; no ping within
  ``timeout_s`` (default 2.5 x heartbeat) means the link is dead even if TCP says it is open.
- :class:`SilenceDetector`: per channel, flags a channel quiet past ``threshold_s`` while the
  socket is healthy (``silent``), and tells when it speaks again.
"""

from __future__ import annotations

from tickpipe.errors import ConfigError


class HeartbeatWatchdog:
    __slots__ = ("last_ping", "pings", "timeout_s")

    def __init__(self, timeout_s: float, now: float) -> None:
        if not timeout_s > 0:
            raise ConfigError(f"heartbeat timeout_s must be > 0, got {timeout_s!r}")
        self.timeout_s = timeout_s
        self.last_ping = now  # the connection's start counts as a ping
        self.pings = 0

    @classmethod
    def for_heartbeat(cls, heartbeat_ms: int, now: float, factor: float = 2.5) -> HeartbeatWatchdog:
        return cls(heartbeat_ms / 1000.0 * factor, now)

    def on_ping(self, now: float) -> None:
        self.last_ping = now
        self.pings += 1

    def age(self, now: float) -> float:
        return now - self.last_ping

    def expired(self, now: float) -> bool:
        return now - self.last_ping > self.timeout_s

    def time_left(self, now: float) -> float:
        """Seconds until expiry (<= 0 when expired): when to check again."""
        return self.timeout_s - (now - self.last_ping)


class SilenceDetector:
    __slots__ = ("_last", "_silent", "threshold_s")

    def __init__(self, threshold_s: float | None) -> None:
        if threshold_s is not None and not threshold_s > 0:
            raise ConfigError(f"silence threshold_s must be > 0 or None, got {threshold_s!r}")
        self.threshold_s = threshold_s
        self._last: dict[str, float] = {}
        self._silent: set[str] = set()

    def watch(self, channel: str, now: float) -> None:
        """Start (or restart) watching ``channel`` from ``now``."""
        self._last[channel] = now
        self._silent.discard(channel)

    def forget(self, channel: str) -> None:
        self._last.pop(channel, None)
        self._silent.discard(channel)

    def on_frame(self, channel: str, now: float) -> bool:
        """Record a frame; True when the channel had been flagged silent (it has recovered)."""
        self._last[channel] = now
        if channel in self._silent:
            self._silent.discard(channel)
            return True
        return False

    def check(self, now: float) -> list[str]:
        """Channels that have just gone silent (each reported once until it speaks again)."""
        t = self.threshold_s
        if t is None:
            return []
        newly = [ch for ch, last in self._last.items() if now - last > t and ch not in self._silent]
        self._silent.update(newly)
        return newly

    def is_silent(self, channel: str) -> bool:
        return channel in self._silent

    def age(self, channel: str, now: float) -> float | None:
        last = self._last.get(channel)
        return None if last is None else now - last
