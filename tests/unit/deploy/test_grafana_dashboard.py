"""deploy/grafana/tenderwatch.json: a Grafana dashboard whose queries use only the metrics the services export."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import promql_parser
import yaml

from services.runtime.metrics import REGISTRY

from .code_contract import DEPLOY

_DASHBOARD = DEPLOY / "grafana" / "tenderwatch.json"
# The contract between the services, this dashboard and the autoscalers (every metric also has a `service` label).
METRICS = {
    "tenderwatch_messages_consumed_total": {"service", "topic"},
    "tenderwatch_messages_processed_total": {"service", "topic"},
    "tenderwatch_messages_failed_total": {"service", "topic"},
    "tenderwatch_messages_dead_lettered_total": {"service", "topic", "reason"},
    "tenderwatch_processing_seconds": {"service", "topic"},
    "tenderwatch_consumer_lag": {"service", "topic", "partition"},
    "tenderwatch_deliveries_total": {"service", "channel", "outcome"},
    "tenderwatch_delivery_seconds": {"service", "channel"},
    "tenderwatch_matcher_subscriptions": {"service"},
    "tenderwatch_matches_total": {"service"},
    "tenderwatch_notices_ingested_total": {"service", "source_format"},
}
_HISTOGRAMS = {"tenderwatch_processing_seconds", "tenderwatch_delivery_seconds"}
# Grafana's own variables, given the value they take in a query.
_GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(_DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def _panels() -> list[dict[str, Any]]:
    return [panel for panel in _dashboard()["panels"] if panel["type"] != "row"]


def _queries() -> list[str]:
    """Every PromQL expression of the dashboard: the panels' targets and the variables' label_values()."""
    found = [target["expr"] for panel in _panels() for target in panel["targets"]]
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            values_of = re.fullmatch(r"label_values\((.+), *\w+\)", variable["query"]["query"])
            assert values_of, variable["query"]["query"]
            found.append(values_of[1])
    return found


def _selectors(expression: str) -> list[promql_parser.VectorSelector]:
    for variable, value in _GRAFANA_INTERVALS.items():
        expression = expression.replace(variable, value)
    selectors: list[promql_parser.VectorSelector] = []

    def collect(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(node)

    promql_parser.walk(promql_parser.parse(expression), pre_visit=collect)
    return selectors


def _family(name: str) -> str:
    """The metric a series belongs to: a histogram's _bucket, _sum and _count series are the histogram's."""
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return base if base in _HISTOGRAMS else name


def test_the_dashboard_is_a_grafana_dashboard_with_a_prometheus_data_source_variable() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "tenderwatch" and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        assert all(target["datasource"]["uid"] == "${datasource}" for target in panel["targets"]), panel["title"]
    for name in ("service", "topic"):
        assert variables[name]["datasource"]["uid"] == "${datasource}"
    # Rows and panels do not overlap: each grid cell is taken once.
    cells = Counter(
        (x, y)
        for panel in dashboard["panels"]
        for x in range(panel["gridPos"]["x"], panel["gridPos"]["x"] + panel["gridPos"]["w"])
        for y in range(panel["gridPos"]["y"], panel["gridPos"]["y"] + panel["gridPos"]["h"])
    )
    assert max(cells.values()) == 1


def _problems(expression: str) -> list[str]:
    """What a query uses outside the contract: metrics, and labels it filters or groups by."""
    selectors = _selectors(expression)
    if not selectors:
        return ["no metric"]
    problems = []
    labels: set[str] = {"le", "instance"}  # the histograms' buckets; the scraped instance
    for selector in selectors:
        family = _family(selector.name or "")
        if family not in METRICS:
            problems.append(f"unknown metric {selector.name}")
            continue
        labels |= METRICS[family]
        filtered = {matcher.name for matcher in selector.matchers.matchers} - {"__name__"}
        problems += [f"unknown label {label} of {family}" for label in sorted(filtered - METRICS[family])]
    for grouping in re.findall(r"by \(([^)]*)\)", expression):
        problems += [f"grouped by unknown label {g.strip()}" for g in grouping.split(",") if g.strip() not in labels]
    return problems


def test_every_query_uses_only_the_exported_metrics_and_their_labels() -> None:
    for expression in _queries():
        assert _problems(expression) == [], expression
    used = {_family(selector.name or "") for expression in _queries() for selector in _selectors(expression)}
    # Throughput, failures, dead letters, latency, lag, deliveries, matcher index: every metric is on a panel.
    assert used == set(METRICS)


def test_a_query_outside_the_contract_is_caught() -> None:
    query = 'sum by (queue) (rate(tenderwatch_messages_consumed{service="api"}[$__rate_interval]))'
    assert _problems(query) == ["unknown metric tenderwatch_messages_consumed", "grouped by unknown label queue"]
    query = 'max by (group) (tenderwatch_consumer_lag{consumer_group="tenderwatch-api"})'
    assert _problems(query) == [
        "unknown label consumer_group of tenderwatch_consumer_lag",
        "grouped by unknown label group",
    ]


def test_latency_panels_show_the_median_and_the_99th_percentile_of_each_histogram() -> None:
    quantiles = {
        (selector_name, quantile)
        for expression in _queries()
        for quantile in re.findall(r"histogram_quantile\((0\.\d+),", expression)
        for selector_name in {_family(s.name or "") for s in _selectors(expression)}
    }
    assert quantiles == {(histogram, q) for histogram in _HISTOGRAMS for q in ("0.5", "0.99")}


def test_the_services_export_the_metrics_of_the_contract() -> None:
    exported = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in REGISTRY.collect()
        if family.name.startswith("tenderwatch_")
    }
    assert exported == set(METRICS)


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "tenderwatch.yaml").read_text())["providers"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/tenderwatch.json"] == f"{provider['options']['path']}/tenderwatch.json"
