"""Backoff: section 8 delays with injected random, jitter bounds, cap, attempt 0 waits, reset."""

from __future__ import annotations

import random

import pytest

from tickpipe.errors import ConfigError
from tickpipe.protocol.backoff import Backoff, BackoffPolicy


def test_equal_jitter_bounds_with_injected_extremes() -> None:
    p = BackoffPolicy(base_s=0.5, cap_s=30)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (5, 16.0), (6, 30.0), (100, 30.0)]:
        assert p.ceiling(attempt) == ceiling
        assert p.delay(attempt, 0.0) == pytest.approx(0.5 * ceiling)
        assert p.delay(attempt, 0.999999) == pytest.approx(1.5 * ceiling, rel=1e-5)


def test_full_jitter_bounds() -> None:
    p = BackoffPolicy(base_s=0.5, cap_s=30, jitter="full")
    assert p.delay(3, 0.0) == 0.0
    assert p.delay(3, 0.5) == 2.0
    assert p.delay(10, 0.999999) < 30.0


def test_draws_stay_within_bounds() -> None:
    rng = random.Random(1)
    for jitter, lo, hi in (("equal", 0.5, 1.5), ("full", 0.0, 1.0)):
        b = Backoff(BackoffPolicy(base_s=0.5, cap_s=8, jitter=jitter), rng.random)  # type: ignore[arg-type]
        for attempt in range(12):
            c = b.policy.ceiling(attempt)
            assert lo * c <= b.next_delay() < hi * c + 1e-12


def test_attempt_zero_already_waits_and_the_counter_advances() -> None:
    b = Backoff(BackoffPolicy(), lambda: 0.5)
    assert [b.next_delay() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert b.attempt == 8


def test_no_jitter_policy() -> None:
    assert BackoffPolicy(base_s=1, cap_s=3, jitter="none").delay(5, 0.9) == 3


def test_counter_resets_only_after_a_healthy_spell() -> None:
    b = Backoff(BackoffPolicy(healthy_after_s=10), lambda: 0.5)
    b.next_delay()
    b.next_delay()
    b.connected(now=100.0)
    b.lost(now=105.0)  # up 5 s: not healthy
    assert b.attempt == 2
    assert b.next_delay() == 2.0
    b.connected(now=200.0)
    b.lost(now=210.0)  # up 10 s: healthy
    assert b.attempt == 0
    assert b.next_delay() == 0.5
    b.lost(now=300.0)  # lost without a connection: nothing to judge
    assert b.attempt == 1
    b.reset()
    assert b.attempt == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_s": 0},
        {"base_s": -1},
        {"base_s": 2, "cap_s": 1},
        {"jitter": "sometimes"},
        {"healthy_after_s": -1},
        {"base_s": float("nan")},
    ],
)
def test_bad_policy_is_a_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="backoff"):
        BackoffPolicy(**kwargs)  # type: ignore[arg-type]
