"""Prometheus metrics of the reference gateway (``tickpipe gateway --metrics-port P``).

A custom collector over counters the gateway keeps anyway (built at scrape time: nothing per
frame). Names are prefixed ``tickpipe_gateway_``:

- ``tickpipe_gateway_connections``: authenticated stream sessions now.
- ``tickpipe_gateway_frames_sent_total{channel}``: frames sent per channel (all sessions).
- ``tickpipe_gateway_frames_generated_total{kind}``: market frames generated per kind.
- ``tickpipe_gateway_faults_total{fault}``: faults fired, by name (``drop_delta``,
  ``disconnect``, ``snapshot_rate_limit`` ...).
- ``tickpipe_gateway_snapshots_refused_total{status}``: snapshots refused by fault,
  ``rate_limited`` (429) or ``error`` (503).
- ``tickpipe_gateway_disconnects_total{reason}``: sessions ended, by reason.
- ``tickpipe_gateway_refused_total{what}``: ``replay`` (reused auth), ``connection`` (per
  address cap), ``header_timeout``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from tickpipe.gateway.server import Gateway


class GatewayCollector(Collector):
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    def describe(self) -> Iterable[Metric]:
        return self._families(fill=False)

    def collect(self) -> Iterable[Metric]:
        return self._families(fill=True)

    def _families(self, fill: bool) -> list[Metric]:
        conns = GaugeMetricFamily(
            "tickpipe_gateway_connections", "Authenticated stream sessions now"
        )
        sent = CounterMetricFamily(
            "tickpipe_gateway_frames_sent_total", "Frames sent per channel", labels=["channel"]
        )
        gen = CounterMetricFamily(
            "tickpipe_gateway_frames_generated_total", "Market frames generated", labels=["kind"]
        )
        faults = CounterMetricFamily(
            "tickpipe_gateway_faults_total", "Faults fired, by name", labels=["fault"]
        )
        snaps = CounterMetricFamily(
            "tickpipe_gateway_snapshots_refused_total",
            "Snapshots refused by fault (rate_limited: 429, error: 503)",
            labels=["status"],
        )
        disc = CounterMetricFamily(
            "tickpipe_gateway_disconnects_total", "Sessions ended, by reason", labels=["reason"]
        )
        refused = CounterMetricFamily(
            "tickpipe_gateway_refused_total",
            "Refused: replay (reused auth), connection (per-address cap), header_timeout",
            labels=["what"],
        )
        fams: list[Metric] = [conns, sent, gen, faults, snaps, disc, refused]
        if not fill:
            return fams
        gw = self.gw
        conns.add_metric([], float(len(gw.sessions)))
        for name, ch in list(gw.hub.channels.items()):
            sent.add_metric([name], float(ch.sent))
        for kind, n in list(gw.hub.generated.items()):
            gen.add_metric([kind], float(n))
        counts = dict(gw.faults.counts)
        for fault, n in sorted(counts.items()):
            faults.add_metric([fault], float(n))
        snaps.add_metric(["rate_limited"], float(counts.get("snapshot_rate_limit", 0)))
        snaps.add_metric(["error"], float(counts.get("snapshot_error", 0)))
        for reason, n in sorted(gw.disconnects.items()):
            disc.add_metric([reason], float(n))
        refused.add_metric(["replay"], float(gw.replays_refused))
        refused.add_metric(["connection"], float(gw.conn_guard.refused))
        refused.add_metric(["header_timeout"], float(gw.conn_guard.timed_out))
        return fams


def gateway_registry(gateway: Gateway) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(GatewayCollector(gateway))
    return reg
