"""Watchdogs: heartbeat expiry and per-channel silence as pure decisions over clock readings."""

from __future__ import annotations

import pytest

from tickpipe.errors import ConfigError
from tickpipe.protocol.watchdog import HeartbeatWatchdog, SilenceDetector


def test_heartbeat_expires_after_the_timeout_without_a_ping() -> None:
    w = HeartbeatWatchdog.for_heartbeat(5000, now=100.0)
    assert w.timeout_s == 12.5
    assert not w.expired(112.5) and w.time_left(110.0) == 2.5
    assert w.expired(112.6) and w.time_left(113.0) < 0
    w.on_ping(112.0)
    assert not w.expired(124.0) and w.age(124.0) == 12.0 and w.pings == 1
    assert w.expired(124.6)


def test_heartbeat_factor_and_bad_timeout() -> None:
    assert HeartbeatWatchdog.for_heartbeat(1000, 0.0, factor=3).timeout_s == 3.0
    for bad in (0, -1.0):
        with pytest.raises(ConfigError, match="timeout_s"):
            HeartbeatWatchdog(bad, 0.0)


def test_silence_is_reported_once_and_recovery_is_seen() -> None:
    s = SilenceDetector(threshold_s=2.0)
    s.watch("orderbook:AAPL", 0.0)
    s.watch("ticker:AAPL", 0.0)
    assert s.check(1.0) == []
    s.on_frame("ticker:AAPL", 1.5)
    assert s.check(2.5) == ["orderbook:AAPL"]
    assert s.is_silent("orderbook:AAPL") and not s.is_silent("ticker:AAPL")
    assert s.check(3.0) == []  # reported once until it speaks again
    assert s.age("orderbook:AAPL", 3.0) == 3.0
    assert s.on_frame("orderbook:AAPL", 3.1) is True  # recovered
    assert s.on_frame("orderbook:AAPL", 3.2) is False
    assert not s.is_silent("orderbook:AAPL")
    assert s.check(3.6) == ["ticker:AAPL"]


def test_forget_and_rewatch() -> None:
    s = SilenceDetector(threshold_s=1.0)
    s.watch("a", 0.0)
    assert s.check(5.0) == ["a"]
    s.watch("a", 5.0)  # resubscribed: fresh start
    assert not s.is_silent("a") and s.check(5.5) == []
    s.forget("a")
    assert s.check(100.0) == [] and s.age("a", 100.0) is None


def test_silence_detection_off() -> None:
    s = SilenceDetector(threshold_s=None)
    s.watch("a", 0.0)
    assert s.check(1e9) == []
    with pytest.raises(ConfigError, match="threshold_s"):
        SilenceDetector(threshold_s=0)
