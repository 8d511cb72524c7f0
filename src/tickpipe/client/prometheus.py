"""Prometheus metrics for a :class:`~tickpipe.Client`, built at scrape time (``--metrics-port``).

The hot path pays nothing for them: :class:`ClientCollector` is a ``prometheus_client``
custom collector whose :meth:`~ClientCollector.collect` reads the counters the client already
keeps (``Metrics``, each book's ``BookSync.stats``, each ticker/trades ``SeqTracker``, the
snapshot scheduler, the supervisor) when Prometheus scrapes, and turns them into metric
families. No ``Counter.inc()`` runs per frame; nothing here is called between scrapes.

Metric names and labels are a contract (issue 15); ``venue`` is the client's venue adapter's
``name`` (``vts``, ``binance``; :data:`DEFAULT_VENUE` for an object without one) unless one is
passed (one place for the venues to set it):

- ``tickpipe_frames_received_total{venue,channel}``: for ``ticker:``/``trades:`` channels the
  frames their seq tracker took (in order, gapped, duplicate or off-track); for ``orderbook:``
  channels the deltas the book accounted for: applied, dropped as duplicates, or trimmed from a
  full seeding buffer. That is every delta in steady state; deltas buffered while seeding that
  the snapshot already covered (or that a second break cleared) are not in it, nor are frames
  that could not be decoded (``bad_frame`` gaps count those). Derived from counters the book
  keeps anyway: no per-frame cost.
- ``tickpipe_book_state{venue,channel,state}``: 1 for the book's current state (``idle``,
  ``syncing``, ``live``, ``resyncing``, ``stale``; a silent live book is ``stale``), 0 for the
  others.
- ``tickpipe_book_age_seconds{venue,channel}``: seconds since the book last changed (absent
  until its first snapshot).
- ``tickpipe_gaps_total{venue,channel,reason}``: every reason of ``GAP_REASONS`` per book;
  ticker/trades channels report their seq gaps as ``seq_gap``.
- ``tickpipe_reconnects_total{venue}``, ``tickpipe_heartbeat_age_seconds{venue}`` (absent
  while not connected: ``tickpipe_connected{venue}`` says which).
- ``tickpipe_snapshot_requests_total{venue,status}``: ``ok`` (answered with a snapshot),
  ``error`` (any other failure), ``rate_limited`` (429).
- ``tickpipe_apply_latency_seconds{venue}``: histogram of gateway ``ts`` to book applied. The
  client keeps the last 8,192 latencies in a ring (``LatencyWindow``); each scrape buckets the
  samples recorded since the previous scrape into cumulative buckets. Past 8,192 samples
  between two scrapes only the newest 8,192 are bucketed: ``_count`` is then the number of
  samples bucketed, not of deltas applied (the quantiles stay right, as a uniform sample).

Extra, not in the contract: ``tickpipe_connected{venue}`` (1 while the stream is up) and
``tickpipe_snapshots_in_flight{venue}``.

:class:`MetricsServer` serves ``/metrics`` on 127.0.0.1 from an aiohttp app on the caller's
event loop (the client's state is owned by that loop: a scrape reads it between two frames,
consistent and without locks; a server thread would race the loop's dicts). A scrape costs the
loop well under a millisecond for tens of books, plus the latency bucketing (one sort of at
most 8,192 floats).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tickpipe.errors import ConfigError
from tickpipe.protocol.sync import GAP_REASONS, SyncState

if TYPE_CHECKING:
    from tickpipe.client.client import Client

DEFAULT_VENUE = "vts"
"""The ``venue`` label of a VTS/1 client (venue adapters pass their own name)."""

BOOK_STATES: tuple[str, ...] = tuple(s.value for s in SyncState)

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
"""Upper bounds (seconds) of the apply-latency histogram; ``+Inf`` is added."""

METRICS_HOST = "127.0.0.1"


class LatencyHistogram:
    """Cumulative buckets fed from a latency ring at scrape time (see the module docstring)."""

    __slots__ = ("_bounds", "_counts", "_seen", "count", "sum_s")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        self._bounds = list(bounds)
        self._counts = [0] * (len(self._bounds) + 1)  # the last is +Inf only
        self._seen = 0  # the ring's ``count`` at the previous update
        self.count = 0
        self.sum_s = 0.0

    def update(self, ring_count: int, newest_ms: Sequence[float]) -> None:
        """``ring_count``: the ring's total samples ever; ``newest_ms``: its samples, oldest
        first (at most the ring's size). Buckets those added since the last update."""
        fresh = ring_count - self._seen
        self._seen = ring_count
        if fresh <= 0:
            return
        take = newest_ms[-fresh:] if fresh < len(newest_ms) else newest_ms
        bounds, counts = self._bounds, self._counts
        total = 0.0
        for ms in take:
            s = ms / 1000.0
            total += s
            counts[bisect.bisect_left(bounds, s)] += 1
        self.count += len(take)
        self.sum_s += total

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        acc = 0
        for bound, n in zip(self._bounds, self._counts, strict=False):
            acc += n
            out.append((_fmt_bound(bound), float(acc)))
        out.append(("+Inf", float(self.count)))
        return out


def _fmt_bound(b: float) -> str:
    return repr(float(b))


class ClientCollector(Collector):
    """Every ``tickpipe_*`` metric of one client, read at scrape time. Register it in a
    ``CollectorRegistry`` (:func:`client_registry` does)."""

    def __init__(self, client: Client, venue: str | None = None) -> None:
        self.client = client
        named = getattr(getattr(client, "venue", None), "name", None)  # the client's adapter
        self.venue: str = venue or (named if isinstance(named, str) else None) or DEFAULT_VENUE
        self.latency = LatencyHistogram()

    def describe(self) -> Iterable[Metric]:
        return list(self._families().values())

    def collect(self) -> Iterable[Metric]:
        fams = self._families()
        self._fill(fams)
        return list(fams.values())

    def _families(self) -> dict[str, Metric]:
        v = ["venue"]
        vc = ["venue", "channel"]
        return {
            "frames": CounterMetricFamily(
                "tickpipe_frames_received_total",
                "Frames received per channel (books: deltas applied, duplicate or trimmed)",
                labels=vc,
            ),
            "state": GaugeMetricFamily(
                "tickpipe_book_state",
                "1 for the book's current sync state, 0 for the others",
                labels=[*vc, "state"],
            ),
            "age": GaugeMetricFamily(
                "tickpipe_book_age_seconds", "Seconds since the book last changed", labels=vc
            ),
            "gaps": CounterMetricFamily(
                "tickpipe_gaps_total", "Gaps found per channel and reason", labels=[*vc, "reason"]
            ),
            "reconnects": CounterMetricFamily(
                "tickpipe_reconnects_total", "Reconnects after a lost stream", labels=v
            ),
            "heartbeat": GaugeMetricFamily(
                "tickpipe_heartbeat_age_seconds",
                "Seconds since the gateway was last heard (absent while not connected)",
                labels=v,
            ),
            "connected": GaugeMetricFamily(
                "tickpipe_connected", "1 while the stream is connected", labels=v
            ),
            "snapshots": CounterMetricFamily(
                "tickpipe_snapshot_requests_total",
                "Snapshot fetches by outcome (ok, error, rate_limited)",
                labels=["venue", "status"],
            ),
            "in_flight": GaugeMetricFamily(
                "tickpipe_snapshots_in_flight", "Snapshot fetches in flight", labels=v
            ),
            "latency": HistogramMetricFamily(
                "tickpipe_apply_latency_seconds",
                "Gateway ts to book applied (samples since the previous scrape, bucketed)",
                labels=v,
            ),
        }

    def _fill(self, fams: dict[str, Any]) -> None:
        c = self.client
        venue = self.venue
        m = c.metrics
        for ch in [shard.channels for shard in c._shards]:  # one per connection
            for name, bc in list(ch.books.items()):
                st = bc.sync.stats
                fams["frames"].add_metric(
                    [venue, name], float(st.applied + st.duplicates + st.trimmed)
                )
                view = ch.views.get(name)
                state = view.state if view is not None else bc.sync.state.value
                for s in BOOK_STATES:
                    fams["state"].add_metric([venue, name, s], 1.0 if s == state else 0.0)
                age = view.age_s if view is not None else None
                if age is not None:
                    fams["age"].add_metric([venue, name], max(0.0, age))
                for reason in GAP_REASONS:
                    fams["gaps"].add_metric([venue, name, reason], float(st.gaps.get(reason, 0)))
            for name, sc in list(ch.seqs.items()):
                tr = sc.tracker
                fams["frames"].add_metric(
                    [venue, name], float(tr.frames + tr.duplicates + tr.outliers)
                )
                fams["gaps"].add_metric([venue, name, "seq_gap"], float(tr.gaps))
        fams["reconnects"].add_metric([venue], float(m.reconnects))
        sup = c._sup
        hb = sup.heartbeat_age() if sup is not None else None
        if hb is not None:
            fams["heartbeat"].add_metric([venue], max(0.0, hb))
        fams["connected"].add_metric([venue], 1.0 if c.connected else 0.0)
        sch = c._scheduler
        fams["snapshots"].add_metric([venue, "ok"], float(m.snapshot_ok))
        fams["snapshots"].add_metric([venue, "error"], float(sch.errors if sch else 0))
        fams["snapshots"].add_metric([venue, "rate_limited"], float(sch.rate_limited if sch else 0))
        fams["in_flight"].add_metric([venue], float(sch.in_flight if sch else 0))
        ring = m.latency
        self.latency.update(ring.count, ring.values())
        fams["latency"].add_metric([venue], self.latency.buckets(), self.latency.sum_s)


def client_registry(client: Client, venue: str | None = None) -> CollectorRegistry:
    """A fresh registry holding one :class:`ClientCollector` (not the global one: two clients
    in a process each get their own endpoint)."""
    reg = CollectorRegistry()
    reg.register(ClientCollector(client, venue))
    return reg


class MetricsServer:
    """``GET /metrics`` on ``127.0.0.1:port`` (0: any free port; :attr:`port` tells which),
    served by aiohttp on the running event loop."""

    def __init__(self, registry: Collector, port: int) -> None:
        check_metrics_port(port)
        self.registry = registry
        self.requested_port = port
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{METRICS_HOST}:{self.port}/metrics"

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/metrics", make_aiohttp_handler(self.registry))
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, METRICS_HOST, self.requested_port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        server: Any = site._server
        self.port = int(server.sockets[0].getsockname()[1]) if server is not None else 0
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> MetricsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def check_metrics_port(port: int) -> int:
    """``--metrics-port``: 0..65535 (0 = any free port); ConfigError otherwise."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"--metrics-port must be a TCP port 0..65535 (0: any free), got {port!r}")
    return port
