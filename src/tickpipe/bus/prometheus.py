"""Prometheus metrics of a bus :class:`~tickpipe.bus.collector.Collector`, read at scrape time
(``tickpipe publish --metrics-port``): nothing runs per message, the collector's own counters
are turned into metric families when Prometheus scrapes.

Names and labels are a contract (issue 16); ``venue`` is the collector's subject venue:

- ``tickpipe_bus_published_total{venue,kind}``: messages acked by JetStream (``snap``,
  ``delta``, ``state``, ``trade``, ``ticker``, ``instruments``) and heartbeats sent
  (``heartbeat``, core NATS: sent, not acked).
- ``tickpipe_bus_dropped_total{venue}``: messages never published (queue full, a dirty book's,
  failed after every retry, discarded when the lease was lost or at close).
- ``tickpipe_bus_queue_depth{venue}``: messages waiting to be published.
- ``tickpipe_bus_active{venue,group}``: 1 while publishing (the active of its group, or
  without ``--group`` always), else 0; ``group`` is "" without one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PromCollector

if TYPE_CHECKING:
    from tickpipe.bus.collector import Collector


class BusMetrics(PromCollector):
    """The ``tickpipe_bus_*`` metrics of one collector; register it next to the client's
    (``client_registry(client).register(BusMetrics(collector))``)."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        c = self.collector
        venue = c.venue
        published, dropped, depth, active = self._typed()
        for kind, n in c.published.items():
            published.add_metric([venue, kind], float(n))
        dropped.add_metric([venue], float(c.dropped))
        depth.add_metric([venue], float(c.queue_depth))
        active.add_metric([venue, c.group or ""], 1.0 if c.active else 0.0)
        return [published, dropped, depth, active]

    def _families(self) -> list[Metric]:
        return list(self._typed())

    @staticmethod
    def _typed() -> tuple[
        CounterMetricFamily, CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily
    ]:
        return (
            CounterMetricFamily(
                "tickpipe_bus_published_total",
                "Messages published to the bus (acked by JetStream; heartbeats: sent)",
                labels=["venue", "kind"],
            ),
            CounterMetricFamily(
                "tickpipe_bus_dropped_total",
                "Messages never published (queue full, failed, lease lost)",
                labels=["venue"],
            ),
            GaugeMetricFamily(
                "tickpipe_bus_queue_depth", "Messages waiting to be published", labels=["venue"]
            ),
            GaugeMetricFamily(
                "tickpipe_bus_active",
                "1 while this collector publishes (the active of its group)",
                labels=["venue", "group"],
            ),
        )
