"""Each exposure mode, driven by the charm's own hooks, checked against the real Falcosidekick.

Real Pebble runs the layer the charm added, the real sidekick runs the files it pushed; Falco
is played by posting real Falco alerts to the URL the charm publishes, with its CA (or, behind
an ingress, the ingress's CA, as a host's trust store would have it); the ingress is a proxy
that routes as the real provider does (ingress_proxy); Loki is a fake push API on the
loopback that parses what it is sent.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable

import alert_rules
import grafana_dashboard
import pytest
import sidekick_states as states
from deployment import MODES, Deployed
from ops import testing
from real_pebble import listening
from real_unit import FALCO_TOPOLOGY, POD_ADDRESS, falco_alert, get, post
from sidekick import CHECK, READY_CHECK
from sidekick_client import output_counts

EVERYWHERE = "every address"
_SELECTOR = re.compile(r"\b(falcosecurity_falcosidekick_\w+)(?:\{([^}]*)\})?")
_GROUPING = re.compile(r"\bby \(([^)]*)\)")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"")


@pytest.fixture(name="deployed", params=MODES, scope="module")
def deployed_fixture(
    request: pytest.FixtureRequest, deployments: Callable[[str], Deployed]
) -> Deployed:
    return deployments(request.param)


def bound(pid: int) -> set[tuple[str, int]]:
    """Return where ``pid`` listens, the wildcard addresses shown as EVERYWHERE.

    Go binds an empty listenaddress to ``::`` (every IPv4 and IPv6 address), or to
    ``0.0.0.0`` on a host without IPv6.
    """
    return {
        (EVERYWHERE if address in ("::", "0.0.0.0") else address, port)  # noqa: S104
        for address, port in listening(pid)
    }


def shipped_promql() -> list[str]:
    """Return every PromQL expression the charm ships: alert rules and dashboard panels."""
    rules = alert_rules.prometheus_rules(states.TOPOLOGY)
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    for path in grafana_dashboard.dashboard_files():
        for panel in json.loads(path.read_text())["panels"]:
            if panel.get("datasource", {}).get("type") == "prometheus":
                exprs += [target["expr"] for target in panel.get("targets", [])]
    return exprs


def labels_used(exprs: list[str]) -> dict[str, set[str]]:
    """Return each sidekick metric the expressions use, with the labels they read on it.

    Labels in its selector's matchers and in the ``by`` clauses of the expressions using it;
    the ``juju_*`` ones are left out: Prometheus adds them to every series it scrapes.
    """
    used: dict[str, set[str]] = {}
    for expr in exprs:
        grouping = {
            label.strip() for clause in _GROUPING.findall(expr) for label in clause.split(",")
        }
        for name, matchers in _SELECTOR.findall(expr):
            labels = used.setdefault(name, set())
            labels |= set(_MATCHER.findall(matchers)) | grouping
    return {
        name: {label for label in labels if label and not label.startswith("juju_")}
        for name, labels in used.items()
    }


def series_labels(metrics: str, name: str) -> set[str]:
    """Return the label names the series of ``name`` carry in a text exposition."""
    found: set[str] = set()
    for line in metrics.splitlines():
        if line.startswith(name + "{"):
            found |= set(re.findall(r'(\w+)="', line.partition("}")[0]))
    return found


def test_listens_where_the_charm_intends(deployed: Deployed) -> None:
    """arrange: a mode. act: read the real process's listening sockets. assert: as documented.

    Alerts on the configured port on every address; with TLS also the plain port of
    /healthz and /metrics (README, "What listens where"). Falco is given an https URL in
    every mode, and reaches the sidekick through it.
    """
    unit = deployed.unit
    expected = {(EVERYWHERE, unit.port)}
    if deployed.tls:
        expected.add((EVERYWHERE, unit.no_tls_port))

    assert bound(deployed.pebble.sidekick_pid()) == expected
    alert_url, ca = deployed.alert_url_and_ca()
    assert alert_url.startswith("https://")
    assert get(f"{alert_url.rstrip('/')}/ping", ca) == (200, "pong\n")


def test_pebble_health_and_ready_checks_pass(deployed: Deployed) -> None:
    """arrange: a mode. act: the real `pebble check --refresh` of the charm's checks.

    assert: both up, and Pebble's health at level ready (Juju's readiness probe) is healthy.
    """
    pebble = deployed.pebble
    alive = json.loads(pebble.cli("check", "--refresh", CHECK, "--format", "json"))
    ready = json.loads(pebble.cli("check", "--refresh", READY_CHECK, "--format", "json"))
    table = pebble.cli("checks")

    assert (alive["status"], alive["failures"]) == ("up", 0)
    assert (ready["status"], ready["failures"]) == ("up", 0)
    assert alive["successes"] >= 1
    assert re.search(rf"^{CHECK}\s+alive\s+enabled\s+up\s", table, re.MULTILINE), table
    assert re.search(rf"^{READY_CHECK}\s+ready\s+enabled\s+up\s", table, re.MULTILINE), table
    assert pebble.health("ready")
    plan = pebble.client().get_plan()
    health_port = deployed.unit.no_tls_port if deployed.tls else deployed.unit.port
    assert plan.checks[CHECK].http == {"url": f"http://127.0.0.1:{health_port}/healthz"}
    assert plan.checks[READY_CHECK].tcp == {"host": POD_ADDRESS, "port": deployed.unit.port}


def test_alerts_reach_loki_labelled_with_their_falco_unit_above_the_minimum_priority(
    deployed: Deployed,
) -> None:
    """arrange: minimum-priority warning. act: post a Notice, then a Warning alert.

    assert: Loki got the Warning, with the juju_* fields as stream labels, and not the
    Notice (posted first, so had it been forwarded its push would have come first).
    """
    url, ca = deployed.alert_url_and_ca()
    rule = f"Read sensitive file untrusted ({deployed.mode})"
    notice = falco_alert(f"{rule} notice", "Notice")
    warning = falco_alert(rule, "Warning")

    assert post(url, json.dumps(notice).encode(), ca) == (200, "")
    assert post(url, json.dumps(warning).encode(), ca) == (200, "")

    deployed.loki.wait_for(lambda _: bool(deployed.loki.lines_of_rule(rule)))
    (entry,) = deployed.loki.lines_of_rule(rule)
    if deployed.ingress is not None:
        # What reached the pod: plain HTTP from the gateway, HTTPS from traefik when asked.
        scheme = "https" if deployed.mode == "traefik-https" else "http"
        assert deployed.ingress.forwarded[-2:] == [(scheme, "/", 200), (scheme, "/", 200)]
    assert FALCO_TOPOLOGY.items() <= entry.labels.items()
    assert {"rule": rule, "priority": "Warning", "source": "syscall"}.items() <= (
        entry.labels.items()
    )
    assert entry.json()["output_fields"]["fd.name"] == "/etc/shadow"
    assert entry.timestamp_ns == 1796467573814597851  # the alert's own time
    assert deployed.loki.lines_of_rule(f"{rule} notice") == []
    assert deployed.loki.refused == []


def test_metrics_have_every_name_the_dashboards_and_rules_use(deployed: Deployed) -> None:
    """arrange: one alert delivered, one rejected post. act: scrape the published job.

    assert: every sidekick metric and label the shipped PromQL uses is there.
    """
    url, ca = deployed.alert_url_and_ca()
    rule = f"Metrics probe ({deployed.mode})"
    before = output_counts(deployed.unit.metrics(), "loki").ok
    assert post(url, json.dumps(falco_alert(rule)).encode(), ca) == (200, "")
    assert post(url, b"{}", ca)[0] == 400
    deployed.loki.wait_for(lambda _: bool(deployed.loki.lines_of_rule(rule)))

    metrics = deployed.unit.metrics()

    wanted = labels_used(shipped_promql())
    assert set(wanted) == {
        "falcosecurity_falcosidekick_inputs_total",
        "falcosecurity_falcosidekick_outputs_total",
        "falcosecurity_falcosidekick_falco_events_total",
    }
    for name, labels in wanted.items():
        assert labels <= series_labels(metrics, name), f"{name}: {series_labels(metrics, name)}"
    assert output_counts(metrics, "loki").ok >= before + 1


def test_test_alert_action_reports_that_loki_accepted_the_event(deployed: Deployed) -> None:
    """arrange: a mode, Loki answering 204. act: the test-alert action. assert: accepted.

    The counters reported are the real sidekick's, and Loki got the sidekick's test event.
    """
    unit = deployed.unit
    before = output_counts(unit.metrics(), "loki")

    unit.run(unit.ctx.on.action("test-alert", params={"timeout": 30}))

    assert unit.ctx.action_results == {
        "result": "every output accepted the test alert (loki)",
        "loki": {
            "ok": f"{before.ok:g} -> {before.ok + 1:g}",
            "error": f"{before.error:g} -> {before.error:g}",
            "outcome": "accepted",
        },
    }
    test_events = deployed.loki.lines_of_rule("Test rule")
    assert test_events
    assert test_events[-1].labels["priority"] == "Debug"  # below the minimum: /test bypasses it


@pytest.mark.parametrize(
    ("loki_answer", "message"),
    [
        (500, "loki did not accept the test alert: see falcosidekick's logs"),
        ("silence", "falcosidekick recorded no delivery to loki within 1 s"),
    ],
)
def test_test_alert_action_fails_when_loki_does_not_take_the_event(
    deployed: Deployed, loki_answer: int | str, message: str
) -> None:
    """arrange: Loki refusing pushes, or never answering. act: test-alert. assert: fails, why."""
    unit = deployed.unit
    loki = deployed.loki
    if loki_answer == "silence":
        loki.hold = threading.Event()
    else:
        loki.status = int(loki_answer)
    try:
        with pytest.raises(testing.ActionFailed) as failure:
            unit.run(unit.ctx.on.action("test-alert", params={"timeout": 1}))
    finally:
        if loki.hold is not None:
            loki.hold.set()
        loki.hold, loki.status = None, 204

    assert failure.value.message == message


def test_without_certificates_or_ingress_listens_on_the_loopback_only(
    deployments: Callable[[str], Deployed],
) -> None:
    """arrange: neither certificates nor ingress. act: read the real process and Pebble.

    assert: plain HTTP on 127.0.0.1 only, health check up but not ready (out of the
    Service), no URL for Falco, no scrape job, and the status asks for TLS.
    """
    deployed = deployments("none")
    unit = deployed.unit

    assert bound(deployed.pebble.sidekick_pid()) == {("127.0.0.1", unit.port)}
    checked = json.loads(deployed.pebble.cli("check", "--refresh", CHECK, "--format", "json"))
    assert (checked["status"], checked["failures"]) == ("up", 0)
    deployed.pebble.cli("check", "--refresh", READY_CHECK)
    assert not deployed.pebble.health("ready")
    assert "url" not in unit.relation("http-endpoint").local_app_data
    assert json.loads(unit.relation("metrics-endpoint").local_app_data["scrape_jobs"]) == []
    assert unit.state.unit_status == testing.BlockedStatus(
        "no TLS: integrate with 'certificates' or 'ingress'"
    )
