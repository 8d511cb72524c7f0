"""The scrape-time collectors on real components: a Client against the in-process gateway,
the latency histogram's bucketing, the JSON log formatter and its secret filter."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import make_client
from tickpipe.cli.logfmt import JsonFormatter, SecretFilter, log_event
from tickpipe.client.prometheus import (
    LATENCY_BUCKETS_S,
    ClientCollector,
    LatencyHistogram,
    MetricsServer,
    client_registry,
)
from tickpipe.errors import ConfigError
from tickpipe.gateway import Gateway
from tickpipe.gateway.metrics import gateway_registry

BOOKS = ["orderbook:AAPL", "orderbook:MSFT"]


def _samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


async def test_collector_reads_the_clients_own_counters(gw: Gateway) -> None:
    client = make_client(gw)
    await client.start()
    try:
        await client.subscribe([*BOOKS, "ticker:AAPL"])
        for ch in BOOKS:
            await client.wait_synced(ch, timeout=10)
        reg = client_registry(client, venue="testvenue")
        gw.trigger("drop_delta", channel="orderbook:AAPL")
        deadline = time.monotonic() + 10
        while client.books()["orderbook:AAPL"]._bc.sync.stats.gaps["seq_gap"] == 0:
            assert time.monotonic() < deadline, "no gap"
            await _sleep(0.05)
        await client.wait_synced("AAPL", timeout=10)
        s = _samples(generate_latest(reg))

        def v(name: str, **labels: str) -> float | None:
            return s.get((name, frozenset({"venue": "testvenue", **labels}.items())))

        for ch in BOOKS:
            st = client.books()[ch]._bc.sync.stats
            frames = v("tickpipe_frames_received_total", channel=ch)
            assert frames is not None and frames <= st.applied + st.duplicates + st.trimmed
            assert frames >= st.applied  # read a moment before: never behind what was applied
        assert v("tickpipe_gaps_total", channel="orderbook:AAPL", reason="seq_gap") == 1
        assert v("tickpipe_gaps_total", channel="orderbook:MSFT", reason="seq_gap") == 0
        assert v("tickpipe_book_state", channel="orderbook:AAPL", state="live") == 1
        sch = client._scheduler
        assert sch is not None
        ok = v("tickpipe_snapshot_requests_total", status="ok")
        assert ok == client.metrics.snapshot_ok >= 3  # 2 seeds + the re-seed
        assert ok == sch.requests - sch.errors - sch.rate_limited - sch.in_flight
        assert v("tickpipe_connected") == 1
        ring = client.metrics.latency
        assert v("tickpipe_apply_latency_seconds_count") == min(ring.count, ring.size)
        assert v("tickpipe_frames_received_total", channel="ticker:AAPL") is not None
        # a second scrape buckets only what came since the first: count never goes back
        await _sleep(0.2)
        s2 = _samples(generate_latest(reg))
        key = ("tickpipe_apply_latency_seconds_count", frozenset({("venue", "testvenue")}))
        assert s2[key] >= s[key]
    finally:
        await client.close()


async def test_metrics_server_binds_loopback_any_port_and_the_gateway_collector(
    gw: Gateway,
) -> None:
    import aiohttp

    gw.trigger("disconnect")  # no session: counted all the same
    async with MetricsServer(gateway_registry(gw), 0) as srv:
        assert srv.port > 0 and srv.url == f"http://127.0.0.1:{srv.port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(srv.url) as r:
            assert r.status == 200
            s = _samples(await r.read())
    assert s[("tickpipe_gateway_connections", frozenset())] == 0
    assert ("tickpipe_gateway_frames_sent_total", frozenset({("channel", "orderbook:AAPL")})) in s
    with pytest.raises(ConfigError, match="--metrics-port"):
        MetricsServer(gateway_registry(gw), 70000)


def test_latency_histogram_buckets_samples_since_the_last_scrape() -> None:
    h = LatencyHistogram()
    ring = [0.05, 0.3, 2.0, 9000.0]  # ms
    h.update(4, ring)
    b = dict(h.buckets())
    assert b["0.0001"] == 1 and b["0.0005"] == 2 and b["0.0025"] == 3 and b["+Inf"] == 4
    assert h.count == 4 and h.sum_s == pytest.approx(sum(ring) / 1000)
    h.update(4, ring)  # nothing new: nothing added
    assert h.count == 4
    h.update(6, [*ring[2:], 0.2, 0.2])  # 2 new ones, at the end of the ring
    assert dict(h.buckets())["0.00025"] == 3 and h.count == 6
    # more new samples than the ring holds: only the ring's are bucketed, cumulative stays sane
    h.update(106, [1.0] * 8)
    b = dict(h.buckets())
    assert h.count == 14 and b["+Inf"] == 14 and b["0.001"] == 12  # le is inclusive
    counts = [c for _, c in h.buckets()]
    assert counts == sorted(counts) and len(counts) == len(LATENCY_BUCKETS_S) + 1


def test_venue_defaults_to_vts() -> None:
    class Fake:
        pass

    assert ClientCollector(Fake()).venue == "vts"  # type: ignore[arg-type]


def _record(msg: str, *args: Any, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("tickpipe.x", logging.WARNING, __file__, 1, msg, args, None)
    for k, val in extra.items():
        setattr(rec, k, val)
    return rec


def test_json_formatter_event_fields_gateway_lines_and_secret_filter() -> None:
    fmt = JsonFormatter()
    logger = logging.getLogger("tickpipe.test.logfmt")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    h = Keep()
    h.addFilter(SecretFilter(["s3cr3t-XYZ", None]))
    logger.addHandler(h)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        log_event(logger, "gap", "gap", logging.WARNING, channel="orderbook:AAPL", got=3)
        logger.warning("snapshot %s failed: key s3cr3t-XYZ", "AAPL")
        log_event(logger, "error", "bad s3cr3t-XYZ", logging.ERROR, detail="x s3cr3t-XYZ")
        logger.info('{"ts": 1.5, "event": "connect", "session": "ab"}')
    finally:
        logger.removeHandler(h)
    lines = [json.loads(fmt.format(r)) for r in records]
    assert lines[0]["event"] == "gap" and lines[0]["channel"] == "orderbook:AAPL"
    assert lines[0]["level"] == "warning" and lines[0]["logger"] == "tickpipe.test.logfmt"
    assert "message" not in lines[0]
    assert lines[1]["message"] == "snapshot AAPL failed: key ***"
    assert lines[2]["message"] == "bad ***" and lines[2]["detail"] == "x ***"
    assert lines[3]["event"] == "connect" and lines[3]["session"] == "ab" and "ts" not in lines[3]
    assert all(isinstance(x["t"], float) for x in lines)
    assert "s3cr3t-XYZ" not in json.dumps(lines)


async def _sleep(s: float) -> None:
    import asyncio

    await asyncio.sleep(s)
