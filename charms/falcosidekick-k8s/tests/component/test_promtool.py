"""The Prometheus rules the charm sends, checked by the real ``promtool`` (Debian prometheus)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import alert_rules
import grafana_dashboard
import pytest
import real_tools
import sidekick_states as states
import yaml
from counter_shapes import minutely

TOPOLOGY = states.TOPOLOGY


@pytest.fixture(name="promtool")
def promtool_fixture() -> str:
    return real_tools.require("promtool", "prometheus")


def test_rendered_prometheus_rules_pass_promtool(promtool: str, tmp_path: Path) -> None:
    """arrange: the rules sent on metrics-endpoint. act: promtool check rules. assert: ok."""
    rules_file = tmp_path / "falcosidekick.rules.yaml"
    rules_file.write_text(yaml.safe_dump(alert_rules.prometheus_rules(TOPOLOGY)))

    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


def test_promtool_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    """arrange: a rule with bad PromQL. act: promtool check rules. assert: it fails."""
    rules = alert_rules.prometheus_rules(TOPOLOGY)
    rules["groups"][0]["rules"][0]["expr"] = "sum by (juju_unit (up"
    rules_file = tmp_path / "broken.rules.yaml"
    rules_file.write_text(yaml.safe_dump(rules))

    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )

    assert result.returncode != 0


# Counters born at 1 ------------------------------------------------------------------------
#
# Every series below is shaped as the real sidekick makes them (counter_shapes, proven on the
# real binary by tests/real/test_counters.py): absent until its first event, then 1. The
# alert rules and dashboard panels must see that first event.

INPUTS = "falcosecurity_falcosidekick_inputs_total"
OUTPUTS = "falcosecurity_falcosidekick_outputs_total"
EVENTS = "falcosecurity_falcosidekick_falco_events_total"
# What Prometheus adds to every series it scrapes from our unit.
SCRAPED = {
    "juju_model": TOPOLOGY["model"],
    "juju_model_uuid": TOPOLOGY["model_uuid"],
    "juju_application": TOPOLOGY["application"],
    "juju_unit": TOPOLOGY["unit"],
    "juju_charm": TOPOLOGY["charm_name"],
    "instance": "falcosidekick-k8s-0",
    "job": "falcosidekick",
}
UNIT = {key: SCRAPED[key] for key in ("juju_model", "juju_application", "juju_unit")}
# Grafana's variables, for a dashboard refreshed every minute over the last hour.
GRAFANA = {
    "$__interval_ms": "60000",
    "$__interval": "1m",
    "$__rate_interval": "4m",
    "$__range": "1h",
}
PANELS = {
    panel["title"]: target["expr"]
    for path in grafana_dashboard.dashboard_files()
    for panel in json.loads(path.read_text())["panels"]
    for target in panel.get("targets", [])
    if panel["datasource"]["type"] == "prometheus"
}


def selector(name: str, **labels: str) -> str:
    """Return the series ``name`` as scraped from our unit, with ``labels``."""
    pairs = {**SCRAPED, **labels}
    return name + "{" + ", ".join(f'{key}="{value}"' for key, value in pairs.items()) + "}"


def counter(name: str, values: str, **labels: str) -> dict[str, str]:
    """Return a promtool input series of the counter ``name`` scraped from our unit."""
    return {"series": selector(name, **labels), "values": values}


def scraped(minutes: int) -> dict[str, str]:
    """Return the ``up`` series of our unit, scraped every minute from minute 0."""
    return {"series": selector("up"), "values": " ".join(["1"] * (minutes + 1))}


def grafana(expr: str) -> str:
    """Return a panel's PromQL with Grafana's variables as Grafana fills them in."""
    for variable, value in GRAFANA.items():  # longest first: $__interval_ms before $__interval
        expr = expr.replace(variable, value)
    return expr


def outputs_failing(eval_minute: int, destinations: list[str]) -> dict[str, Any]:
    """Return a promtool check that the output-errors alert fires for ``destinations`` only."""
    return {
        "expr": f'count by (destination) (ALERTS{{alertname="{OUTPUT_ERRORS}", '
        'alertstate="firing"})',
        "eval_time": f"{eval_minute}m",
        "exp_samples": [
            {"labels": f'{{destination="{destination}"}}', "value": 1}
            for destination in destinations
        ],
    }


def alert_state(alert: str, eval_minute: int, state: str | None) -> dict[str, Any]:
    """Return a promtool check that ``alert`` is ``state`` (None: neither pending nor firing)."""
    return {
        "expr": f'count by (alertstate) (ALERTS{{alertname="{alert}"}})',
        "eval_time": f"{eval_minute}m",
        "exp_samples": [{"labels": f'{{alertstate="{state}"}}', "value": 1}] if state else [],
    }


def promtool_test(
    promtool: str, tmp_path: Path, series: list[dict[str, str]], checks: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    """Run ``promtool test rules`` on our rules with ``series`` (one sample a minute)."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(alert_rules.prometheus_rules(TOPOLOGY)))
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, width=1000))
    return subprocess.run(
        [promtool, "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


REJECTED = {"source": "requests", "status": "rejected"}
LOKI_ERROR = {"destination": "loki", "status": "error"}
SLACK_ERROR = {"destination": "slack", "status": "error"}
REJECTIONS = "FalcosidekickRejectedInputs"
OUTPUT_ERRORS = "FalcosidekickOutputErrors"
# Prometheus has scraped the unit for 10 minutes before anything happens in these cases: the
# rules count a new series only when the unit was scraped a window (10m, 5m) before.
ALERT_CASES = [
    pytest.param(
        [counter(INPUTS, minutely(30, [12]), **REJECTED), scraped(30)],
        [
            alert_state(REJECTIONS, 11, None),
            alert_state(REJECTIONS, 12, "firing"),
            alert_state(REJECTIONS, 21, "firing"),
            alert_state(REJECTIONS, 22, None),
        ],
        id="the first rejection fires for 10 minutes",
    ),
    pytest.param(
        [counter(INPUTS, minutely(30, [20], already=2), **REJECTED), scraped(30)],
        [alert_state(REJECTIONS, 19, None), alert_state(REJECTIONS, 20, "firing")],
        id="a later rejection fires",
    ),
    pytest.param(
        [
            counter(INPUTS, " ".join(["5"] * 16 + ["_"] * 4 + ["1"] * 6), **REJECTED),
            scraped(25),
        ],
        [alert_state(REJECTIONS, 19, None), alert_state(REJECTIONS, 20, "firing")],
        id="the first rejection after a restart fires",
    ),
    pytest.param(
        [counter(INPUTS, minutely(20, [], already=3), **REJECTED), scraped(20)],
        [alert_state(REJECTIONS, minute, None) for minute in (0, 1, 5, 10, 11, 20)],
        id="rejections from before Prometheus scraped the unit do not fire",
    ),
    pytest.param(
        [counter(OUTPUTS, minutely(30, [12]), **LOKI_ERROR), scraped(30)],
        [
            alert_state(OUTPUT_ERRORS, 11, None),
            *(alert_state(OUTPUT_ERRORS, minute, "firing") for minute in (12, 14, 16)),
            alert_state(OUTPUT_ERRORS, 17, None),
        ],
        id="the first failure of an output fires at once, for 5 minutes",
    ),
    pytest.param(
        [counter(OUTPUTS, minutely(30, [12, 16, 20]), **LOKI_ERROR), scraped(30)],
        [
            alert_state(OUTPUT_ERRORS, 12, "firing"),
            alert_state(OUTPUT_ERRORS, 24, "firing"),
            alert_state(OUTPUT_ERRORS, 25, None),
        ],
        id="failures keep it firing until 5 minutes after the last one",
    ),
    pytest.param(
        [
            counter(OUTPUTS, minutely(30, [12]), **LOKI_ERROR),
            counter(OUTPUTS, minutely(30, [14, 15], already=3), **SLACK_ERROR),
            counter(OUTPUTS, minutely(30, [13]), destination="webhook", status="ok"),
            scraped(30),
        ],
        [
            outputs_failing(12, ["loki"]),
            outputs_failing(14, ["loki", "slack"]),
            outputs_failing(18, ["slack"]),
            outputs_failing(20, []),
        ],
        id="each output that fails fires its own alert; deliveries fire none",
    ),
    pytest.param(
        [
            counter(OUTPUTS, " ".join(["5"] * 16 + ["_"] * 4 + ["1"] * 6), **SLACK_ERROR),
            scraped(25),
        ],
        [alert_state(OUTPUT_ERRORS, 19, None), alert_state(OUTPUT_ERRORS, 20, "firing")],
        id="the first failure after a restart fires",
    ),
    pytest.param(
        [counter(OUTPUTS, minutely(20, [], already=7), **LOKI_ERROR), scraped(20)],
        [alert_state(OUTPUT_ERRORS, minute, None) for minute in (0, 3, 5, 10)],
        id="failures from before Prometheus scraped the unit do not fire",
    ),
]


@pytest.mark.parametrize(("series", "checks"), ALERT_CASES)
def test_alert_rules_see_the_first_event_of_a_new_series(
    promtool: str, tmp_path: Path, series: list[dict[str, str]], checks: list[dict[str, Any]]
) -> None:
    """arrange: series shaped like the real sidekick's. act: promtool test rules. assert: pass."""
    result = promtool_test(promtool, tmp_path, series, checks)

    assert result.returncode == 0, result.stdout + result.stderr


def panel_shows(title: str, eval_minute: int, samples: dict[str, float]) -> dict[str, Any]:
    """Return a promtool check that panel ``title`` shows exactly ``samples`` (labels: value)."""
    return {
        "expr": grafana(PANELS[title]),
        "eval_time": f"{eval_minute}m",
        "exp_samples": [{"labels": labels, "value": value} for labels, value in samples.items()],
    }


PER_MINUTE = 1 / 60  # one event in the one-minute interval, per second
EVENT_LABELS = {
    "rule": "Read sensitive file untrusted",
    "priority": "4",
    "priority_raw": "warning",
    "hostname": "h",
    "source": "syscall",
    "k8s_ns_name": "",
    "k8s_pod_name": "",
}
PANEL_CASES = [
    pytest.param(
        [
            counter(INPUTS, minutely(20, [12]), **REJECTED),
            counter(
                INPUTS, minutely(20, [11, 12], already=4), source="requests", status="accepted"
            ),
            scraped(20),
        ],
        [
            panel_shows(
                "Inputs accepted / rejected",
                12,
                {'{status="accepted"}': PER_MINUTE, '{status="rejected"}': PER_MINUTE},
            ),
            panel_shows(
                "Inputs accepted / rejected",
                13,
                {'{status="accepted"}': 0, '{status="rejected"}': 0},
            ),
        ],
        id="the first rejection shows",
    ),
    pytest.param(
        [counter(OUTPUTS, minutely(40, [12]), **LOKI_ERROR), scraped(40)],
        [
            panel_shows(
                "Outputs by destination and status",
                12,
                {'{destination="loki", status="error"}': PER_MINUTE},
            ),
            panel_shows(
                "Deliveries in range by output", 40, {'{destination="loki", status="error"}': 1}
            ),
        ],
        id="the first Loki failure shows, per second and in range",
    ),
    pytest.param(
        [counter(EVENTS, minutely(20, [15]), **EVENT_LABELS), scraped(20)],
        [
            panel_shows("Events by priority", 14, {}),
            panel_shows("Events by priority", 15, {'{priority_raw="warning"}': PER_MINUTE}),
        ],
        id="the first alert of a rule shows under its priority",
    ),
    pytest.param(
        [counter(EVENTS, minutely(20, [], already=9), **EVENT_LABELS), scraped(20)],
        [
            panel_shows("Events by priority", 0, {}),
            panel_shows("Events by priority", 1, {'{priority_raw="warning"}': 0}),
        ],
        id="events from before Prometheus scraped the unit do not show as new",
    ),
]


@pytest.mark.parametrize(("series", "checks"), PANEL_CASES)
def test_dashboard_panels_show_the_first_event_of_a_new_series(
    promtool: str, tmp_path: Path, series: list[dict[str, str]], checks: list[dict[str, Any]]
) -> None:
    """arrange: series shaped like the real sidekick's. act: promtool on the panels. assert."""
    result = promtool_test(promtool, tmp_path, series, checks)

    assert result.returncode == 0, result.stdout + result.stderr
