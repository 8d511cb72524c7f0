import pytest

from tickpipe.client.metrics import LatencyWindow, RateMeter


def test_percentiles_exact_on_known_data() -> None:
    w = LatencyWindow(size=1000)
    assert w.percentiles(50, 99) == (None, None)
    for i in range(1, 101):
        w.record(float(i))
    p50, p99, p100 = w.percentiles(50, 99, 100)
    assert p50 == 50.0
    assert p99 == 99.0
    assert p100 == 100.0


def test_window_keeps_only_recent_samples() -> None:
    w = LatencyWindow(size=10)
    for _ in range(100):
        w.record(1000.0)
    for _ in range(10):
        w.record(1.0)
    assert w.percentiles(99) == (1.0,)
    assert w.count == 110


def test_rate_meter() -> None:
    r = RateMeter(window_s=5.0)
    assert r.rate(0.0, 0) == 0.0
    assert r.rate(1.0, 100) == pytest.approx(100.0)
    assert r.rate(2.0, 300) == pytest.approx(150.0)
    for t in range(3, 20):
        r.rate(float(t), 300 + (t - 2) * 10)
    assert r.rate(20.0, 300 + 18 * 10) == pytest.approx(10.0)


def test_latency_values_are_the_window_oldest_first() -> None:
    w = LatencyWindow(size=4)
    assert w.values() == []
    for ms in (1.0, 2.0, 3.0):
        w.record(ms)
    assert w.values() == [1.0, 2.0, 3.0]
    for ms in (4.0, 5.0, 6.0):  # wraps: 1 and 2 are overwritten
        w.record(ms)
    assert w.values() == [3.0, 4.0, 5.0, 6.0]
    w.record(7.0)
    assert w.values() == [4.0, 5.0, 6.0, 7.0]
    assert sorted(w.values()) == sorted(w._buf.tolist())


def test_rate_meter_current_rate_from_periodic_samples() -> None:
    r = RateMeter(window_s=5.0)
    for t in range(0, 11):  # a periodic task samples 100 frames/s, once a second
        r.sample(float(t), t * 100)
    # one read between samples, no sample of its own: a real rate, not 0
    assert r.current(10.5, 1050) == pytest.approx(100.0)
    assert r.current(10.5, 1050) == pytest.approx(100.0)  # reading changes nothing
    # the window slides: only the last ~5 s count
    for t in range(11, 16):
        r.sample(float(t), 1000 + (t - 10) * 10)
    assert r.current(15.0, 1050) == pytest.approx(10.0)


def test_rate_meter_with_one_sample_uses_it() -> None:
    r = RateMeter(window_s=5.0)
    assert r.current(1.0, 0) == 0.0
    r.sample(0.0, 0)
    assert r.current(2.0, 50) == pytest.approx(25.0)
