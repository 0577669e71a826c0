"""The dashboard and rule files sent over cos-agent, checked against what Falco 0.44 exports."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import lzma
import shutil
from pathlib import Path
from typing import Any

import cos_content
import falco_metrics
import log_pipeline
import promql
import pytest
import self_test
import yaml
from cosl import DashboardPath40UID
from falco_metrics import KMOD_ONLY
from layout import Layout
from self_test_rig import alert_for
from topology import RULE_LABELS, TOPOLOGY

# Every metric Falco 0.44 exports with the charm's metrics settings, from WORKLOADS.md
# section 3 (identity and wrapper metrics, rule counters, resource use, kernel counters,
# state counters). A dashboard or rule that queries anything else shows nothing.
FALCO_METRICS = {
    "falcosecurity_falco_version_info",
    "falcosecurity_falco_sha256_rules_files_info",
    "falcosecurity_falco_sha256_config_files_info",
    "falcosecurity_scap_engine_name_info",
    "falcosecurity_falco_kernel_release_info",
    "falcosecurity_evt_hostname_info",
    "falcosecurity_falco_outputs_queue_num_drops_total",
    "falcosecurity_falco_reload_timestamp_nanoseconds",
    "falcosecurity_falco_start_timestamp_nanoseconds",
    "falcosecurity_falco_duration_seconds_total",
    "falcosecurity_falco_host_boot_timestamp_nanoseconds",
    "falcosecurity_falco_host_num_cpus_total",
    "falcosecurity_falco_rules_matches_total",
    "falcosecurity_falco_cpu_usage_ratio",
    "falcosecurity_falco_memory_rss_bytes",
    "falcosecurity_falco_memory_vsz_bytes",
    "falcosecurity_falco_memory_pss_bytes",
    "falcosecurity_falco_container_memory_used_bytes",
    "falcosecurity_falco_host_cpu_usage_ratio",
    "falcosecurity_falco_host_memory_used_bytes",
    "falcosecurity_falco_host_procs_running_total",
    "falcosecurity_falco_host_open_fds_total",
    "falcosecurity_scap_n_evts_total",
    "falcosecurity_scap_n_drops_total",
    "falcosecurity_scap_n_drops_buffer_total",
    "falcosecurity_scap_n_drops_scratch_map_total",
    "falcosecurity_scap_n_drops_page_faults_total",
    "falcosecurity_scap_n_drops_bug_total",
    "falcosecurity_scap_n_preemptions_total",
    "falcosecurity_scap_n_evts_cpu_total",
    "falcosecurity_scap_n_drops_cpu_total",
    "falcosecurity_scap_n_threads_total",
    "falcosecurity_scap_n_fds_total",
    "falcosecurity_scap_n_added_threads_total",
    "falcosecurity_scap_n_removed_threads_total",
    "falcosecurity_scap_n_failed_thread_lookups_total",
    "falcosecurity_scap_n_failed_fd_lookups_total",
    "falcosecurity_scap_n_store_evts_drops_total",
    "falcosecurity_scap_n_retrieve_evts_drops_total",
    "falcosecurity_scap_n_drops_full_threadtable_total",
}
# Falco's numeric priority enum, as `priority` of falcosecurity_falco_rules_matches_total.
PRIORITY_ENUM = {
    "0": "Emergency",
    "1": "Alert",
    "2": "Critical",
    "3": "Error",
    "4": "Warning",
    "5": "Notice",
    "6": "Informational",
    "7": "Debug",
}
DASHBOARD_FILE = cos_content.DASHBOARDS_DIR / "falco-host-health.json"
DASHBOARD = json.loads(DASHBOARD_FILE.read_text())
# When the dashboard changes, bump its "version" (Grafana keeps the highest one) and record
# the new digest here: this test fails until both are done.
RECORDED_VERSION = (3, "dfeff4fc9719b3fb")
RULE_FILE = cos_content.PROMETHEUS_RULES_DIR / "falco.rules"
SHARED_LOKI_RULE = (
    Path(__file__).resolve().parents[4] / "libs/loki_rules/falco_critical_alerts.rules"
)


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel.get("targets")]


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in query_panels(dashboard) for target in panel["targets"]]


def content_digest(dashboard: dict[str, Any]) -> str:
    unversioned = {key: value for key, value in dashboard.items() if key != "version"}
    return hashlib.sha256(json.dumps(unversioned, sort_keys=True).encode()).hexdigest()[:16]


def decode(item: str) -> Any:
    """Decode a dashboard the way the collector does: base64, then xz, then JSON."""
    return json.loads(lzma.decompress(base64.b64decode(item)))


@pytest.fixture(name="built", scope="module")
def built_fixture() -> dict[str, Any]:
    return cos_content.build(TOPOLOGY)


def rules_of(rule_file: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in rule_file["groups"] for rule in group["rules"]]


# --- the dashboard -------------------------------------------------------------------------


def test_dashboard_queries_only_metrics_falco_0_44_exports() -> None:
    """arrange: every panel query. act: read the metric names. assert: all known to Falco."""
    used = {name for expr in dashboard_exprs(DASHBOARD) for name in promql.metric_names(expr)}

    assert used - FALCO_METRICS == set()
    # What the issue asks the dashboard to show is actually there.
    for needed in (
        "falcosecurity_scap_n_evts_total",
        "falcosecurity_scap_n_drops_buffer_total",
        "falcosecurity_falco_outputs_queue_num_drops_total",
        "falcosecurity_falco_cpu_usage_ratio",
        "falcosecurity_falco_memory_rss_bytes",
        "falcosecurity_falco_rules_matches_total",
        "falcosecurity_falco_version_info",
        "falcosecurity_scap_engine_name_info",
    ):
        assert needed in used


def test_metric_name_check_would_catch_an_unknown_metric() -> None:
    """arrange: a query of a made-up metric. act: read names. assert: it is not in the list."""
    names = promql.metric_names("sum by (juju_unit) (rate(falcosecurity_falco_made_up[5m]))")

    assert names - FALCO_METRICS == {"falcosecurity_falco_made_up"}


def test_panels_of_kmod_only_metrics_say_kmod() -> None:
    """arrange: the dashboard. act: find panels of kmod-only metrics. assert: they say so."""
    kmod = [
        panel for panel in DASHBOARD["panels"] if falco_metrics.panel_metrics(panel) & KMOD_ONLY
    ]

    assert [panel["title"] for panel in kmod] == ["Kernel drops in the driver (kmod only)"]
    assert falco_metrics.kmod_panels_not_saying_so(DASHBOARD) == []


def test_kmod_check_would_catch_a_panel_that_does_not_say_so() -> None:
    """arrange: a kmod-only metric moved to a general panel. act: check. assert: caught."""
    dashboard = copy.deepcopy(DASHBOARD)
    general = next(p for p in dashboard["panels"] if p["title"] == "Kernel drops by cause")
    general["targets"].append(
        {"refId": "Z", "expr": "rate(falcosecurity_scap_n_drops_bug_total[5m])"}
    )
    general["description"] = general["description"].replace("(kmod only)", "")

    assert falco_metrics.kmod_panels_not_saying_so(dashboard) == ["Kernel drops by cause"]


def test_dashboard_is_well_formed_grafana_json() -> None:
    """arrange: the dashboard. act: inspect. assert: stable uid, datasources, panel layout."""
    rel_path = "src/grafana_dashboards/falco-host-health.json"

    assert DASHBOARD["uid"] == DashboardPath40UID.generate("falco", rel_path)
    assert isinstance(DASHBOARD["version"], int)
    assert DASHBOARD["title"] == "Falco host health"
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert (variables["prometheusds"]["type"], variables["prometheusds"]["query"]) == (
        "datasource",
        "prometheus",
    )
    assert variables["lokids"]["type"] == "datasource"
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        # Grafana neither templates nor scopes queries inside a collapsed row.
        assert not (panel["type"] == "row" and (panel.get("collapsed") or panel.get("panels")))
    for panel in query_panels(DASHBOARD):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${prometheusds}"}
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))


def test_dashboard_version_is_bumped_on_every_change() -> None:
    """arrange: recorded version and digest. act: digest the file. assert: unchanged."""
    assert (DASHBOARD["version"], content_digest(DASHBOARD)) == RECORDED_VERSION


def test_panels_group_by_the_topology_labels_the_collector_adds() -> None:
    """arrange: every query. act: read groupings. assert: per unit, or per model/app/unit."""
    exprs = dashboard_exprs(DASHBOARD)
    per_unit = [expr for expr in exprs if "juju_unit" in expr]

    # Every query but the fleet-wide rule charts is per unit; the tables name model and app.
    assert len(per_unit) >= len(exprs) - 2
    tables = [p for p in query_panels(DASHBOARD) if p["type"] == "table"]
    assert tables
    for table in tables:
        for target in table["targets"]:
            assert "juju_model, juju_application, juju_unit" in target["expr"]


def test_priorities_are_shown_by_name() -> None:
    """arrange: the rule-match panels. act: read their mappings. assert: Falco's enum."""
    by_priority = next(p for p in DASHBOARD["panels"] if p["title"] == "Rule matches by priority")
    names = {
        override["matcher"]["options"]: override["properties"][0]["value"]
        for override in by_priority["fieldConfig"]["overrides"]
    }
    table = next(p for p in DASHBOARD["panels"] if p["title"].startswith("Rule matches since"))
    (mapping,) = table["fieldConfig"]["overrides"][0]["properties"][0]["value"]

    assert names == PRIORITY_ENUM
    assert {key: value["text"] for key, value in mapping["options"].items()} == PRIORITY_ENUM
    assert "by (priority)" in by_priority["targets"][0]["expr"]
    assert "rule_name, priority" in table["targets"][0]["expr"]


def test_dashboards_round_trip_through_lzma_and_base64(built: dict[str, Any]) -> None:
    """arrange: the built content. act: decode each dashboard. assert: the file, tagged."""
    (encoded,) = built["dashboards"]

    assert encoded.startswith("/Td6WFo")  # the xz magic, base64-encoded
    assert decode(encoded) == DASHBOARD | {"tags": [*DASHBOARD["tags"], "charm: falco"]}


def test_dashboard_without_uid_gets_the_path40_uid_and_a_tagged_one_keeps_its_tag() -> None:
    """arrange: a dashboard without uid; one with a 40-hex uid and a tag. act: prepare."""
    fresh = cos_content.prepare_dashboard({"title": "t"}, "falco", "x.json")
    kept = cos_content.prepare_dashboard(
        {"uid": "a" * 40, "tags": ["charm: other"]}, "falco", "x.json"
    )

    assert fresh["uid"] == DashboardPath40UID.generate("falco", "src/grafana_dashboards/x.json")
    assert fresh["tags"] == ["charm: falco"]
    assert kept == {"uid": "a" * 40, "tags": ["charm: other"]}


# --- the Prometheus rules ------------------------------------------------------------------


def test_metrics_rules_carry_our_topology_and_no_generic_host_health(
    built: dict[str, Any],
) -> None:
    """arrange: the built rules. act: inspect groups and rules. assert: labels, names."""
    rule_file = built["metrics_alert_rules"]

    assert [group["name"] for group in rule_file["groups"]] == ["prod_00000000_falco_falco_rules"]
    rules = rules_of(rule_file)
    assert [rule["alert"] for rule in rules] == [
        "FalcoDown",
        "FalcoTargetMissing",
        "FalcoKernelEventDrops",
        "FalcoOutputsQueueDrops",
        "FalcoCriticalAlert",
    ]
    for rule in rules:
        assert rule["labels"].items() >= RULE_LABELS.items()
        assert rule["labels"]["severity"] in ("warning", "critical")


def test_no_two_metrics_rules_share_an_expression(built: dict[str, Any]) -> None:
    """arrange: the built rules. act: collect expressions. assert: no outage pages twice."""
    exprs = [" ".join(rule["expr"].split()) for rule in rules_of(built["metrics_alert_rules"])]

    assert len(exprs) == len(set(exprs))


def test_rules_query_only_up_and_metrics_falco_exports() -> None:
    """arrange: the rule file. act: read metric names. assert: known names only."""
    rules = rules_of(yaml.safe_load(RULE_FILE.read_text()))
    used = {name for rule in rules for name in promql.metric_names(rule["expr"])}

    assert used - FALCO_METRICS == {"up"}


def test_every_rule_says_which_unit_or_application_and_why() -> None:
    """arrange: the rule file. act: read annotations. assert: unit named in both."""
    for rule in rules_of(yaml.safe_load(RULE_FILE.read_text())):
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description"}
        # absent() has no series, hence no unit: that one names the application.
        who = "juju_application" if rule["expr"].startswith("absent(") else "juju_unit"
        assert f"$labels.{who}" in annotations["summary"], rule["alert"]
        assert f"$labels.{who}" in annotations["description"], rule["alert"]
        assert "$labels.juju_model" in annotations["description"], rule["alert"]


def test_critical_rule_reads_falcos_numeric_priorities() -> None:
    """arrange: FalcoCriticalAlert. act: read it. assert: 0-2 selected and named."""
    rules = {r["alert"]: r for r in rules_of(yaml.safe_load(RULE_FILE.read_text()))}
    expr = rules["FalcoCriticalAlert"]["expr"]

    assert 'priority=~"[012]"' in expr
    for number in ("0", "1", "2"):
        assert f'"priority", "{PRIORITY_ENUM[number]}", "priority", "{number}"' in expr


# --- the Loki rule -------------------------------------------------------------------------


def test_published_loki_rule_keeps_its_expression_and_gets_our_topology(
    built: dict[str, Any],
) -> None:
    """arrange: the shared rule file. act: build. assert: same expression, our labels."""
    shared = yaml.safe_load(SHARED_LOKI_RULE.read_text())
    (want,) = rules_of(shared)

    (group,) = built["log_alert_rules"]["groups"]
    (rule,) = group["rules"]

    assert group["name"] == "prod_00000000_falco_falco_security_alerts_rules"
    assert rule["expr"] == want["expr"]
    assert rule["annotations"] == want["annotations"]
    assert rule["labels"] == {**want["labels"], **RULE_LABELS}


def test_the_loki_rule_is_the_shared_one() -> None:
    """arrange: our copy and libs/. act: compare without the header. assert: identical."""
    copy = (cos_content.LOKI_RULES_DIR / "falco_critical_alerts.rules").read_text()

    assert copy.split("\n", 2)[2] == SHARED_LOKI_RULE.read_text()


def loki_entry(alert: dict[str, Any]) -> log_pipeline.Entry:
    """An alert as Loki stores it: the JSON line, labelled with its juju_* fields."""
    fields = alert["output_fields"]
    labels = {key: str(value) for key, value in fields.items() if key.startswith("juju_")}
    return log_pipeline.Entry(labels, json.dumps(alert))


def test_the_loki_rule_counts_critical_alerts_but_not_the_self_test() -> None:
    """arrange: Critical self-test and intrusion alerts. act: the rule's query. assert: one."""
    (rule,) = rules_of(yaml.safe_load(SHARED_LOKI_RULE.read_text()))
    query = log_pipeline.log_query(rule["expr"])
    marker = Layout(Path("/")).self_test_dir / "5e1f7e57c0ffee00"
    self_test_alert = alert_for(marker, "Critical")
    intrusion = {
        **alert_for(marker, "Critical"),
        "rule": "Drop and execute new binary in container",
    }
    warning = {**intrusion, "priority": "Warning"}
    entries = [loki_entry(alert) for alert in (self_test_alert, intrusion, warning)]

    kept = log_pipeline.select(query, entries)

    assert [json.loads(entry.line)["rule"] for entry in kept] == [intrusion["rule"]]
    # Without its exclusion the rule would count the self-test as an intrusion.
    unguarded = query.replace(f'| rule!="{self_test.RULE_NAME}"', "")
    assert unguarded != query
    assert len(log_pipeline.select(unguarded, entries)) == 2


# --- the cache -----------------------------------------------------------------------------


def test_inputs_digest_follows_the_files_and_the_topology(tmp_path: Path) -> None:
    """arrange: copies of the source dirs. act: digest, change unit, change a file. assert."""
    dirs = []
    for directory in cos_content.SOURCE_DIRS:
        dirs.append(Path(shutil.copytree(directory, tmp_path / directory.name)))
    sources = tuple(dirs)
    first = cos_content.inputs_digest(TOPOLOGY, sources)

    same = cos_content.inputs_digest(dict(reversed(TOPOLOGY.items())), sources)
    other_unit = cos_content.inputs_digest(TOPOLOGY | {"unit": "falco/1"}, sources)
    (dirs[0] / "falco.rules").write_text("groups: []\n")
    other_file = cos_content.inputs_digest(TOPOLOGY, sources)

    assert first == same
    assert len({first, other_unit, other_file}) == 3


def test_content_is_built_once_then_read_from_the_record(tmp_path: Path) -> None:
    """arrange: an empty state dir. act: content twice, then forced. assert: one build each."""
    layout = Layout(tmp_path)
    builds = []
    original = cos_content.build

    def counting(topology: dict[str, str]) -> dict[str, Any]:
        builds.append(topology)
        return original(topology)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cos_content, "build", counting)
        first = cos_content.content(layout, TOPOLOGY)
        stat = layout.cos_agent_record.stat()
        again = cos_content.content(layout, TOPOLOGY)
        forced = cos_content.content(layout, TOPOLOGY, rebuild=True)

    assert len(builds) == 2
    assert first == again == forced
    # The forced build gave the same result, so the record was not rewritten.
    assert layout.cos_agent_record.stat().st_mtime_ns == stat.st_mtime_ns
    assert layout.cos_agent_record.stat().st_mode & 0o777 == 0o600
