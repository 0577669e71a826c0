"""The Prometheus rules sent over cos-agent, checked and run by the real ``promtool``.

The rules are built as the charm sends them, then every selector gets this application's
topology matchers, as the receiving Prometheus adds them. ``promtool check rules`` validates
them; ``promtool test rules`` evaluates them on series shaped like the ones the collector
scrapes from a Falco unit (Falco's names, plus the topology labels the collector adds).
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import cos_content
import promql
import pytest
import real_tools
import self_test
import yaml
from topology import RULE_LABELS, TOPOLOGY

SCOPE = ("juju_model", "juju_model_uuid", "juju_application")
UNIT = RULE_LABELS | {"juju_unit": "falco/0"}
# What the collector puts on every series it scrapes from falco/0 (no juju_charm).
SCRAPED = {key: value for key, value in UNIT.items() if key != "juju_charm"} | {
    "job": "falco_falco",
    "instance": "localhost:8765",
}


@pytest.fixture(name="promtool")
def promtool_fixture() -> str:
    return real_tools.require("promtool", "prometheus")


def scoped_rules() -> dict[str, Any]:
    """Return the rule file as the receiving Prometheus loads it: topology injected."""
    rules = copy.deepcopy(cos_content.build(TOPOLOGY)["metrics_alert_rules"])
    for group in rules["groups"]:
        for rule in group["rules"]:
            matchers = {label: rule["labels"][label] for label in SCOPE}
            rule["expr"] = promql.inject(rule["expr"], matchers)
    return rules


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, check=False, timeout=120
    )


def test_scoped_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    """arrange: the rules with topology matchers. act: promtool check rules. assert: ok."""
    sent = cos_content.build(TOPOLOGY)["metrics_alert_rules"]
    rules = scoped_rules()
    rules_file = tmp_path / "falco.rules.yaml"
    rules_file.write_text(yaml.safe_dump(rules))

    result = run(promtool, "check", "rules", str(rules_file))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout
    # Every selector is scoped to this application, as in the receiving Prometheus.
    for before, after in zip(sent["groups"][0]["rules"], rules["groups"][0]["rules"], strict=True):
        scoped = after["expr"].count('juju_application="falco"')
        assert scoped == len(promql.selectors(before["expr"])) > 0


def test_promtool_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    """arrange: a rule with bad PromQL. act: promtool check rules. assert: it fails."""
    rules = scoped_rules()
    rules["groups"][0]["rules"][0]["expr"] = "sum by (juju_unit (up"
    rules_file = tmp_path / "broken.rules.yaml"
    rules_file.write_text(yaml.safe_dump(rules))

    assert run(promtool, "check", "rules", str(rules_file)).returncode != 0


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    text = ",".join(f'{key}="{value}"' for key, value in (SCRAPED | labels).items())
    return {"series": f"{name}{{{text}}}", "values": values}


def alert(name: str, at: str, *expected: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": name,
        "exp_alerts": [{"exp_labels": labels} for labels in expected],
    }


CRITICAL_RULE = "Drop and execute new binary in container"
SELF_TEST_RULE = self_test.RULE_NAME
MATCHES = "falcosecurity_falco_rules_matches_total"
CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, Any]]]] = {
    # Falco exports a rule's counter only from its first match, already at 1.
    "a Critical rule's first match alerts, named as in the alert": (
        [
            series(MATCHES, "_x5 1x15", rule_name=CRITICAL_RULE, priority="2", source="syscall"),
            series(MATCHES, "_x5 1x15", rule_name="Run shell untrusted", priority="5"),
        ],
        [
            alert(
                "FalcoCriticalAlert",
                "6m",
                UNIT | {"severity": "critical", "rule": CRITICAL_RULE, "priority": "Critical"},
            ),
            alert("FalcoCriticalAlert", "12m"),
        ],
    ),
    "a later match of an Emergency rule alerts again": (
        [series(MATCHES, "1x20 2x10", rule_name="Escape", priority="0", tag_container="true")],
        [
            alert("FalcoCriticalAlert", "15m"),
            alert(
                "FalcoCriticalAlert",
                "22m",
                UNIT | {"severity": "critical", "rule": "Escape", "priority": "Emergency"},
            ),
        ],
    ),
    # The self-test rule runs at the minimum-priority level: Critical here. Not an intrusion.
    "the self-test rule at Critical does not alert, an intrusion next to it does": (
        [
            series(MATCHES, "_x5 1x15", rule_name=SELF_TEST_RULE, priority="2", tag_juju="true"),
            series(MATCHES, "_x7 1x15", rule_name=CRITICAL_RULE, priority="2"),
        ],
        [
            alert("FalcoCriticalAlert", "6m"),
            alert(
                "FalcoCriticalAlert",
                "8m",
                UNIT | {"severity": "critical", "rule": CRITICAL_RULE, "priority": "Critical"},
            ),
        ],
    ),
    "Falco that cannot be scraped for 5 minutes is down": (
        [series("up", "1 0x10")],
        [
            alert("FalcoDown", "4m"),
            alert(
                "FalcoDown",
                "7m",
                UNIT
                | {"severity": "critical", "job": "falco_falco", "instance": "localhost:8765"},
            ),
        ],
    ),
    "no up series of this application at all is a missing target": (
        [
            {
                "series": 'up{juju_application="opentelemetry-collector",juju_model="prod"}',
                "values": "1x20",
            }
        ],
        [alert("FalcoTargetMissing", "11m", RULE_LABELS | {"severity": "critical"})],
    ),
    "any outputs-queue drop alerts": (
        [series("falcosecurity_falco_outputs_queue_num_drops_total", "0x5 3x10")],
        [
            alert("FalcoOutputsQueueDrops", "4m"),
            alert(
                "FalcoOutputsQueueDrops",
                "7m",
                UNIT
                | {"severity": "critical", "job": "falco_falco", "instance": "localhost:8765"},
            ),
        ],
    ),
    "2% of events dropped for 15 minutes alerts, 0.5% does not": (
        [
            series("falcosecurity_scap_n_evts_total", "0+1000x40"),
            series("falcosecurity_scap_n_drops_total", "0+20x40"),
            series("falcosecurity_scap_n_evts_total", "0+1000x40", juju_unit="falco/1"),
            series("falcosecurity_scap_n_drops_total", "0+5x40", juju_unit="falco/1"),
        ],
        [
            alert("FalcoKernelEventDrops", "10m"),
            alert(
                "FalcoKernelEventDrops",
                "25m",
                UNIT | {"severity": "warning", "job": "falco_falco", "instance": "localhost:8765"},
            ),
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rules_fire_on_what_falco_exports(promtool: str, tmp_path: Path, case: str) -> None:
    """arrange: scoped rules, series as scraped. act: promtool test rules. assert: passes."""
    rules = scoped_rules()
    for group in rules["groups"]:
        for rule in group["rules"]:
            # promtool compares annotations too; their templates are checked above.
            rule.pop("annotations")
    (tmp_path / "falco.rules.yaml").write_text(yaml.safe_dump(rules))
    input_series, alert_tests = CASES[case]
    tests = {
        "rule_files": ["falco.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": input_series, "alert_rule_test": alert_tests}
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(tests))

    result = run(promtool, "test", "rules", str(tmp_path / "test.yaml"))

    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_would_catch_a_wrong_expectation(promtool: str, tmp_path: Path) -> None:
    """arrange: a Warning match expected to alert. act: promtool test rules. assert: fails."""
    rules = scoped_rules()
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    (tmp_path / "falco.rules.yaml").write_text(yaml.safe_dump(rules))
    labels = UNIT | {"severity": "critical", "rule": "Run shell untrusted", "priority": "Notice"}
    tests = {
        "rule_files": ["falco.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    series(MATCHES, "_x5 1x15", rule_name="Run shell untrusted", priority="5")
                ],
                "alert_rule_test": [alert("FalcoCriticalAlert", "6m", labels)],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(tests))

    assert run(promtool, "test", "rules", str(tmp_path / "test.yaml")).returncode != 0


def test_injection_scopes_every_selector() -> None:
    """arrange: a two-selector expression. act: inject. assert: both scoped, rest intact."""
    expr = 'rate(a_total{x="1"}[5m]) / rate(b_total[5m]) unless c offset 5m'

    injected = promql.inject(expr, {"juju_application": "falco"})

    assert injected == (
        'rate(a_total{x="1",juju_application="falco"}[5m])'
        ' / rate(b_total{juju_application="falco"}[5m])'
        ' unless c{juju_application="falco"} offset 5m'
    )
    assert promql.metric_names(expr) == {"a_total", "b_total", "c"}


# ------------------------------------------------------------------------------ dashboard
DASHBOARD = json.loads((cos_content.DASHBOARDS_DIR / "falco-host-health.json").read_text())
# A real rule counter as Falco 0.44.1 exports it (priority 4 is Warning), as scraped.
WARNING_RULE = {
    "rule_name": "Read sensitive file untrusted",
    "priority": "4",
    "source": "syscall",
    "tag_T1555": "true",
    "tag_filesystem": "true",
}


def panel_expr(title: str, interval: str = "5m") -> str:
    """Return a panel's query as Grafana sends it, with ``$__rate_interval`` = ``interval``."""
    panel = next(panel for panel in DASHBOARD["panels"] if panel["title"] == title)
    (target,) = panel["targets"]
    expr: str = target["expr"]
    return expr.replace("$__rate_interval", interval)


def sample(labels: str, value: float) -> dict[str, Any]:
    return {"labels": labels, "value": value}


PANEL_CASES: dict[str, tuple[str, str, list[tuple[str, list[dict[str, Any]]]]]] = {
    # Falco exports a rule's counter only from its first match, already at 1.
    "a rule's first match shows by priority": (
        "Rule matches by priority",
        "_x5 1x15",
        [
            ("4m", []),
            ("6m", [sample('{priority="4"}', 1)]),
            ("12m", [sample('{priority="4"}', 0)]),
        ],
    ),
    "a rule's first match shows by rule": (
        "Rule matches by rule",
        "_x5 1x15",
        [("6m", [sample('{rule_name="Read sensitive file untrusted"}', 1)])],
    ),
    "three matches before the first scrape count as three": (
        "Rule matches by priority",
        "_x5 3x15",
        [("8m", [sample('{priority="4"}', 3)])],
    ),
    "a later match counts as the increase": (
        "Rule matches by priority",
        "_x5 1x10 2x10",
        [("17m", [sample('{priority="4"}', 1)]), ("25m", [sample('{priority="4"}', 0)])],
    ),
}


@pytest.mark.parametrize("case", sorted(PANEL_CASES))
def test_rule_match_panels_count_a_rules_first_match(
    promtool: str, tmp_path: Path, case: str
) -> None:
    """arrange: a rule counter born at 1. act: promtool evaluates the panel. assert: seen."""
    title, values, expected = PANEL_CASES[case]
    (tmp_path / "empty.rules.yaml").write_text(yaml.safe_dump({"groups": []}))
    expr = panel_expr(title)
    tests = {
        "rule_files": ["empty.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [series(MATCHES, values, **WARNING_RULE)],
                "promql_expr_test": [
                    {"expr": expr, "eval_time": at, "exp_samples": samples}
                    for at, samples in expected
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(tests))

    result = run(promtool, "test", "rules", str(tmp_path / "test.yaml"))

    assert result.returncode == 0, result.stdout + result.stderr


SELF_TEST_SERIES = {
    "rule_name": SELF_TEST_RULE,
    "priority": "7",
    "source": "syscall",
    "tag_juju": "true",
    "tag_self_test": "true",
}


@pytest.mark.parametrize(
    "title",
    [
        "Rule matches by priority",
        "Rule matches by rule",
        "Rule matches since Falco (re)started, by unit, rule and priority",
    ],
)
def test_detection_panels_leave_the_self_test_out(
    promtool: str, tmp_path: Path, title: str
) -> None:
    """arrange: self-test matches and a real one. act: evaluate the panel. assert: real only."""
    (tmp_path / "empty.rules.yaml").write_text(yaml.safe_dump({"groups": []}))
    expr = panel_expr(title)
    samples = {
        "Rule matches by priority": [sample('{priority="4"}', 1)],
        "Rule matches by rule": [sample('{rule_name="Read sensitive file untrusted"}', 1)],
    }.get(title)
    if samples is None:
        labels = {key: UNIT[key] for key in ("juju_model", "juju_application", "juju_unit")}
        text = ",".join(f'{key}="{value}"' for key, value in labels.items())
        rule = WARNING_RULE["rule_name"]
        samples = [sample(f'{{{text},priority="4",rule_name="{rule}"}}', 1)]
    tests = {
        "rule_files": ["empty.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    series(MATCHES, "_x5 1x15", **WARNING_RULE),
                    series(MATCHES, "_x5 2x15", **SELF_TEST_SERIES),
                ],
                "promql_expr_test": [{"expr": expr, "eval_time": "6m", "exp_samples": samples}],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(tests))

    result = run(promtool, "test", "rules", str(tmp_path / "test.yaml"))

    assert result.returncode == 0, result.stdout + result.stderr
