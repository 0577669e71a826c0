"""The rule files and dashboards the charm ships, checked against what the alerts carry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import alert_rules
import grafana_dashboard
import log_pipeline
import logql
import pytest
import sidekick_states as states
from cosl import DashboardPath40UID
from sidekick import TOPOLOGY_LABELS

TOPOLOGY = states.TOPOLOGY
DASHBOARDS = {p.stem: json.loads(p.read_text()) for p in grafana_dashboard.dashboard_files()}
# When a dashboard changes, bump its "version" (Grafana keeps the highest one) and record the
# new digest here: this test fails until both are done.
RECORDED = {
    "falco-pipeline-health": (3, "939be340ac5d9194"),
    "falco-security-alerts": (2, "91ba14c5f3b4e36a"),
}
DATASOURCE_TYPES = {"${prometheusds}": "prometheus", "${lokids}": "loki"}
SIDEKICK_METRICS = {
    "falcosecurity_falcosidekick_inputs_total",
    "falcosecurity_falcosidekick_outputs_total",
    "falcosecurity_falcosidekick_falco_events_total",
    "up",
}


def content_digest(dashboard: dict[str, Any]) -> str:
    unversioned = {key: value for key, value in dashboard.items() if key != "version"}
    return hashlib.sha256(json.dumps(unversioned, sort_keys=True).encode()).hexdigest()[:16]


def panels_with_queries(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel.get("targets")]


def test_the_two_dashboards_are_shipped() -> None:
    """arrange: src/grafana_dashboards. act: list. assert: alerts and pipeline health."""
    assert sorted(DASHBOARDS) == sorted(RECORDED)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_dashboard_version_is_bumped_on_every_change(name: str) -> None:
    """arrange: recorded version and digest. act: digest the file. assert: unchanged or bumped."""
    version, digest = RECORDED[name]

    assert (DASHBOARDS[name]["version"], content_digest(DASHBOARDS[name])) == (version, digest)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_dashboard_is_well_formed_grafana_json(name: str) -> None:
    """arrange: a dashboard. act: inspect. assert: stable uid, datasource variables, panels."""
    dashboard = DASHBOARDS[name]
    rel_path = f"src/grafana_dashboards/{name}.json"

    assert dashboard["uid"] == DashboardPath40UID.generate("falcosidekick-k8s", rel_path)
    assert isinstance(dashboard["version"], int)
    assert dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["prometheusds"]["type"] == variables["lokids"]["type"] == "datasource"
    assert (variables["prometheusds"]["query"], variables["lokids"]["query"]) == (
        "prometheus",
        "loki",
    )
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert not (panel["type"] == "row" and panel.get("collapsed") and panel.get("panels"))
    for panel in panels_with_queries(dashboard):
        source = panel["datasource"]
        assert source["uid"] in DATASOURCE_TYPES, panel["title"]
        assert source["type"] == DATASOURCE_TYPES[source["uid"]], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))


def test_alerts_dashboard_selects_falco_streams_by_the_labels_the_loki_output_writes() -> None:
    """arrange: the alerts dashboard. act: parse every LogQL query. assert: known labels only."""
    dashboard = DASHBOARDS["falco-security-alerts"]
    queries = [logql.parse(expr) for expr in logql.dashboard_queries(dashboard)]

    assert len(queries) == len(panels_with_queries(dashboard)) + 2  # panels + model, unit
    for query in queries:
        assert logql.unknown_labels(query, set(TOPOLOGY_LABELS)) == set()
        assert all(selector.get("juju_charm") == "falco" for selector in query.selectors)
    panel_queries = list(logql.dashboard_queries(dashboard))[: len(panels_with_queries(dashboard))]
    groupings = [logql.parse(expr).grouping for expr in panel_queries]
    assert {"priority"} in groupings and {"rule"} in groupings
    assert {"juju_model", "juju_application", "juju_unit"} in groupings
    excluded = [expr for expr in panel_queries if "Falco internal: metrics snapshot" in expr]
    critical_only = [expr for expr in panel_queries if "Critical|Alert|Emergency" in expr]
    assert len(excluded) + len(critical_only) == len(panel_queries)


SELF_TEST_RULE = "Juju Falco self-test"
NONCE = "5e1f7e57c0ffee00"
# Grafana's "All" for the dashboard's variables, and an empty search box.
ALL = {"$model": ".+", "$unit": ".+", "$priority": ".+", "$search": ""}


def falco_alert(rule: str, priority: str, output: str = "") -> log_pipeline.Entry:
    """A Falco alert as the Loki output stores it: JSON line, juju_* labels."""
    labels = {"juju_charm": "falco", "juju_model": "prod", "juju_unit": "falco/0"}
    line = {"rule": rule, "priority": priority, "output": output, "output_fields": labels}
    return log_pipeline.Entry(labels, json.dumps(line))


def with_variables(expr: str, **chosen: str) -> str:
    for name, value in (ALL | {f"${k}": v for k, v in chosen.items()}).items():
        expr = expr.replace(name, value)
    return expr


def test_alerts_dashboard_counts_no_self_test_but_lists_it() -> None:
    """arrange: a Critical self-test alert and an intrusion. act: each panel. assert: kept."""
    dashboard = DASHBOARDS["falco-security-alerts"]
    self_test = falco_alert(SELF_TEST_RULE, "Critical", f"marker read (nonce={NONCE} ...)")
    intrusion = falco_alert("Drop and execute new binary in container", "Critical")
    entries = [self_test, intrusion]

    for panel in panels_with_queries(dashboard):
        (target,) = panel["targets"]
        expr = with_variables(target["expr"])
        query = expr if expr.startswith("{") else log_pipeline.log_query(expr)
        kept = log_pipeline.select(query, entries)
        if panel["title"] == "All alerts":
            assert kept == entries
            searched = log_pipeline.select(with_variables(target["expr"], search=NONCE), entries)
            assert searched == [self_test]
        else:
            assert kept == [intrusion], panel["title"]


def test_alerts_dashboard_has_the_filters_people_use() -> None:
    """arrange: the alerts dashboard. act: read variables. assert: model, unit, priority, text."""
    variables = {v["name"]: v for v in DASHBOARDS["falco-security-alerts"]["templating"]["list"]}

    assert variables["model"]["type"] == variables["unit"]["type"] == "query"
    assert variables["priority"]["type"] == "custom"
    assert variables["search"]["type"] == "textbox"
    panel_queries = list(logql.dashboard_queries(DASHBOARDS["falco-security-alerts"]))
    for variable in ("$model", "$unit", "$search"):
        assert all(variable in expr for expr in panel_queries[:-2])


def test_pipeline_dashboard_queries_the_sidekick_metrics() -> None:
    """arrange: pipeline dashboard. act: read PromQL. assert: sidekick metric names only."""
    dashboard = DASHBOARDS["falco-pipeline-health"]
    exprs = [t["expr"] for p in panels_with_queries(dashboard) for t in p["targets"]]

    used = {name for expr in exprs for name in SIDEKICK_METRICS if f"{name}{{" in expr}
    assert used == SIDEKICK_METRICS
    # Delivered and failed per output: per second, and in the range.
    assert sum("by (destination, status)" in expr for expr in exprs) == 2
    assert any("priority_raw" in expr for expr in exprs)


def test_dashboard_without_uid_gets_the_path40_uid_and_a_charm_tag(tmp_path: Path) -> None:
    """arrange: a dashboard file without uid, one with a tag. act: template. assert: uid, tag."""
    (tmp_path / "mine.json").write_text(json.dumps({"title": "t", "tags": ["x"]}))
    (tmp_path / "tagged.json").write_text(json.dumps({"uid": "a" * 40, "tags": ["charm: other"]}))
    (tmp_path / "notes.txt").write_text("not a dashboard")

    found = grafana_dashboard.templates("mycharm", TOPOLOGY, directory=tmp_path)

    from cosl import LZMABase64

    mine = json.loads(LZMABase64.decompress(found["file:mine"]["content"]))
    tagged = json.loads(LZMABase64.decompress(found["file:tagged"]["content"]))
    assert sorted(found) == ["file:mine", "file:tagged"]
    assert mine["uid"] == DashboardPath40UID.generate("mycharm", str(tmp_path / "mine.json"))
    assert mine["tags"] == ["x", "charm: mycharm"]
    assert tagged == {"uid": "a" * 40, "tags": ["charm: other"]}


def test_prometheus_rules_are_scoped_to_this_application() -> None:
    """arrange: our topology. act: build the PromQL rules. assert: groups, labels, our rules."""
    rules = alert_rules.prometheus_rules(TOPOLOGY)

    names = [group["name"] for group in rules["groups"]]
    assert names == ["fmodel_00000000_falcosidekick_k8s_falcosidekick_rules"]
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert {
        "FalcosidekickTargetDown",
        "FalcosidekickTargetAbsent",
        "FalcosidekickOutputErrors",
        "FalcosidekickRejectedInputs",
    } == set(alerts)
    for rule in alerts.values():
        assert rule["labels"]["juju_application"] == "falcosidekick-k8s"
        assert rule["labels"]["juju_model_uuid"] == TOPOLOGY["model_uuid"]
        assert rule["annotations"]["summary"]
    assert 'outputs_total{status="error"}' in alerts["FalcosidekickOutputErrors"]["expr"]
    assert "destination)" in alerts["FalcosidekickOutputErrors"]["expr"]  # one per output
    assert 'status="rejected"' in alerts["FalcosidekickRejectedInputs"]["expr"]


@pytest.mark.parametrize(
    "rules",
    [alert_rules.prometheus_rules(TOPOLOGY), alert_rules.falco_loki_rules(TOPOLOGY)],
    ids=["promql", "logql"],
)
def test_no_two_rules_fire_on_the_same_expression(rules: dict[str, Any]) -> None:
    """arrange: a rule file as sent. act: normalise every expression. assert: all distinct.

    Two rules on one expression page twice for one outage (the generic HostHealth group's
    HostDown and HostMetricsMissing did, next to our target down/absent rules).
    """
    exprs = [
        " ".join(rule["expr"].split()) for group in rules["groups"] for rule in group["rules"]
    ]

    assert len(exprs) == len(set(exprs)), exprs


def test_loki_rules_carry_no_topology_and_select_by_the_loki_output_labels() -> None:
    """arrange: our topology. act: build the LogQL rules. assert: no juju labels, known labels.

    A receiver injects matchers for a rule's juju_model/juju_model_uuid/juju_application
    labels into its expression; with ours, no Falco stream would ever match.
    """
    rules = alert_rules.falco_loki_rules(TOPOLOGY)

    assert [group["name"] for group in rules["groups"]] == [
        "fmodel_00000000_falcosidekick_k8s_falco_security_alerts_rules"
    ]
    ((name, expr),) = logql.rule_expressions(rules)
    (rule,) = rules["groups"][0]["rules"]
    assert name == "FalcoCriticalAlert"
    assert not any(label.startswith("juju_") for label in rule["labels"])
    query = logql.parse(expr)
    assert logql.unknown_labels(query, set(TOPOLOGY_LABELS)) == set()
    assert query.selectors == [{"juju_charm": "falco"}]
    assert {"juju_unit", "rule"} <= query.grouping
    assert "Critical|Alert|Emergency" in expr
    assert "{{ $labels.rule }}" in rule["annotations"]["summary"]
    assert "{{ $labels.juju_unit }}" in rule["annotations"]["summary"]


def test_label_check_catches_a_selector_on_a_label_that_is_not_written() -> None:
    """arrange: queries on a renamed label. act: check. assert: the name is reported."""
    renamed = logql.parse('sum by (juju_host) (count_over_time({charm="falco"} | json [5m]))')
    grouped = logql.parse('sum by (host) (count_over_time({juju_charm="falco"} [5m]))')
    parsed = logql.parse('count_over_time({juju_unit="u"} | json rule="rule" | rule="x" [5m])')

    assert logql.unknown_labels(renamed, set(TOPOLOGY_LABELS)) == {"charm"}
    assert logql.unknown_labels(grouped, set(TOPOLOGY_LABELS)) == {"host"}
    assert logql.unknown_labels(parsed, set(TOPOLOGY_LABELS)) == set()
