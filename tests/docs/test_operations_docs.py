"""docs/operations.md and docs/grafana-dashboard.json name exactly the metrics tickpipe serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tickpipe.bus.prometheus import BusMetrics
from tickpipe.client.prometheus import ClientCollector
from tickpipe.gateway.metrics import GatewayCollector

DOCS = Path(__file__).resolve().parents[2] / "docs"
CONTRACT = {
    "tickpipe_frames_received_total",
    "tickpipe_book_state",
    "tickpipe_book_age_seconds",
    "tickpipe_gaps_total",
    "tickpipe_reconnects_total",
    "tickpipe_heartbeat_age_seconds",
    "tickpipe_snapshot_requests_total",
    "tickpipe_apply_latency_seconds",
}


def _served() -> set[str]:
    class Nothing:
        pass

    names = set()
    for fam in [
        *ClientCollector(Nothing()).describe(),  # type: ignore[arg-type]
        *GatewayCollector(Nothing()).describe(),  # type: ignore[arg-type]
        *BusMetrics(Nothing()).describe(),  # type: ignore[arg-type]
    ]:
        names.add(fam.name + ("_total" if fam.type == "counter" else ""))
    return names


def _base(name: str) -> str:
    return re.sub(r"_(bucket|count|sum)$", "", name)


def test_the_collectors_serve_the_contract_names() -> None:
    assert _served() >= CONTRACT


def test_operations_md_names_every_served_metric_and_no_other() -> None:
    text = (DOCS / "operations.md").read_text()
    named = {_base(n) for n in re.findall(r"\btickpipe_[a-z_]+", text)}
    served = _served()
    assert served <= named, f"not documented: {served - named}"
    assert named <= served, f"documented but not served: {named - served}"


def test_dashboard_queries_only_served_metrics_and_shows_the_contract() -> None:
    dash = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    used = {_base(n) for e in exprs for n in re.findall(r"\btickpipe_[a-z_]+", e)}
    assert used <= _served(), used - _served()
    assert used >= CONTRACT, CONTRACT - used
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
