"""Falco on a real machine: hardened unit runs, an alert carries the Juju topology.

Alerts are read from the alert log (/var/log/falco/falco-alerts.log), the local copy the
charm keeps by default; metrics from the loopback webserver, and through a real
opentelemetry-collector related on cos-agent.

Runs on a Juju host with an LXD cloud (`make integration`); the principal is a VM because
Falco needs the host kernel (BPF programs cannot be loaded from an LXD container). The custom
rules tests prove on real Falco what the unit tests prove on a fake one: a rule goes live by
hot reload (same PID) and fires; a rule Falco refuses leaves the last good set running.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import jubilant

PRINCIPAL = "ubuntu"
UNIT = "falco/0"
ALERT_LOG = "/var/log/falco/falco-alerts.log"
COLLECTOR = "opentelemetry-collector"


def run(juju: jubilant.Juju, command: str) -> str:
    return juju.ssh(f"{PRINCIPAL}/0", command)


def test_deploy_runs_falco_with_the_hardened_unit(juju: jubilant.Juju, charm: Path) -> None:
    """arrange: an Ubuntu VM. act: deploy falco on it. assert: active, exposure <= 5.0."""
    juju.deploy(PRINCIPAL, base="ubuntu@24.04", constraints={"virt-type": "virtual-machine"})
    juju.deploy(charm, "falco")
    juju.integrate("falco:general-info", PRINCIPAL)

    juju.wait(lambda status: jubilant.all_active(status, "falco"), error=jubilant.any_error)

    assert run(juju, "systemctl is-active juju-falco").strip() == "active"
    report = run(juju, "sudo systemd-analyze security juju-falco --no-pager")
    score = re.search(r"Overall exposure level for juju-falco.service: (\d+\.\d+)", report)
    assert score and float(score.group(1)) <= 5.0


def test_alert_carries_the_juju_topology(juju: jubilant.Juju) -> None:
    """arrange: Falco running. act: read /etc/shadow. assert: JSON alert with topology."""
    run(juju, "sudo cat /etc/shadow > /dev/null")

    alert = alert_for(juju, "Read sensitive file untrusted")

    assert alert is not None
    fields = alert["output_fields"]
    assert fields["juju_unit"] == UNIT
    assert fields["juju_application"] == "falco"
    assert fields["juju_charm"] == "falco"
    assert fields["juju_model"] == juju.model
    # The alert log is the local copy: not the journal as well.
    journal = run(juju, "sudo journalctl -u juju-falco -o cat --no-pager")
    assert "Read sensitive file untrusted" not in journal
    mode = run(juju, f"sudo stat -c %a {ALERT_LOG} /var/log/falco").split()
    assert mode == ["600", "750"]
    assert "juju-falco.service" in run(juju, "cat /etc/logrotate.d/juju-falco")


def test_metrics_and_healthz_answer_on_loopback_only(juju: jubilant.Juju) -> None:
    """arrange: Falco running. act: curl /metrics and /healthz, list listeners. assert."""
    metrics = run(juju, "curl -sf http://127.0.0.1:8765/metrics")
    healthz = run(juju, "curl -sf http://127.0.0.1:8765/healthz")
    listeners = run(juju, "sudo ss -ltnH 'sport = :8765'")

    assert "falcosecurity_falco_version_info" in metrics
    assert "falcosecurity_scap_n_evts_total" in metrics
    assert json.loads(healthz) == {"status": "ok"}
    assert [line.split()[3] for line in listeners.splitlines()] == ["127.0.0.1:8765"]


def test_cos_agent_gives_the_collector_a_localhost_scrape_job(juju: jubilant.Juju) -> None:
    """arrange: a collector on the same principal. act: relate cos-agent. assert: config."""
    juju.deploy(COLLECTOR)
    juju.integrate(f"{COLLECTOR}:juju-info", PRINCIPAL)
    juju.integrate("falco:cos-agent", f"{COLLECTOR}:cos-agent")
    juju.wait(lambda status: jubilant.all_active(status, "falco"), error=jubilant.any_error)
    juju.wait(lambda status: jubilant.all_agents_idle(status, "falco", COLLECTOR))

    shown = json.loads(juju.cli("show-unit", UNIT, "--format", "json"))
    (relation,) = (r for r in shown[UNIT]["relation-info"] if r["endpoint"] == "cos-agent")
    config = json.loads(relation["local-unit"]["data"]["config"])
    assert config["metrics_scrape_jobs"][0]["static_configs"] == [{"targets": ["localhost:8765"]}]
    assert config["dashboards"] and config["metrics_alert_rules"]["groups"]
    juju.remove_relation("falco:cos-agent", f"{COLLECTOR}:cos-agent")
    juju.remove_application(COLLECTOR)
    juju.wait(lambda status: COLLECTOR not in status.apps)


CANARY_RULE = """\
- rule: Integration canary read
  desc: the integration test reads its canary file
  condition: open_read and fd.name = /etc/falco-integration-canary
  output: canary read (command=%proc.cmdline)
  priority: WARNING
  tags: [integration]
"""


def falco_pid(juju: jubilant.Juju) -> str:
    return run(juju, "systemctl show -p MainPID --value juju-falco").strip()


def alerts_so_far(juju: jubilant.Juju) -> int:
    return int(run(juju, f"sudo cat {ALERT_LOG} 2>/dev/null | wc -l").strip())


def alert_for(juju: jubilant.Juju, rule: str, after: int = 0) -> dict[str, Any] | None:
    """Return the last alert of ``rule`` among the alert log's lines after the first ``after``."""
    for _ in range(30):
        lines = run(juju, f"sudo tail -n +{after + 1} {ALERT_LOG} 2>/dev/null || true")
        alerts = [json.loads(line) for line in lines.splitlines() if line.startswith("{")]
        found = [alert for alert in alerts if alert.get("rule") == rule]
        if found:
            return dict(found[-1])
        time.sleep(2)
    return None


def test_custom_rule_goes_live_by_hot_reload_and_fires(juju: jubilant.Juju) -> None:
    """arrange: Falco running. act: set custom-rules, read the canary. assert: same PID."""
    pid = falco_pid(juju)
    run(juju, "echo canary | sudo tee /etc/falco-integration-canary > /dev/null")

    juju.config("falco", {"custom-rules": CANARY_RULE})
    juju.wait(lambda status: jubilant.all_active(status, "falco"), error=jubilant.any_error)
    time.sleep(5)  # Falco's own reload after the watched falco.yaml was replaced
    run(juju, "sudo cat /etc/falco-integration-canary > /dev/null")

    assert alert_for(juju, "Integration canary read") is not None
    assert falco_pid(juju) == pid
    task = juju.run(UNIT, "refresh-rules")
    assert task.results == {
        "commit": "none",
        "files": "custom-rules option",
        "validation": "ok",
    }


def test_refused_rules_keep_the_last_good_set(juju: jubilant.Juju) -> None:
    """arrange: the canary rule live. act: set a rule without output. assert: still fires."""
    broken = CANARY_RULE + "- rule: Broken\n  desc: d\n  condition: evt.type = open\n"

    juju.config("falco", {"custom-rules": broken})
    juju.wait(lambda status: jubilant.all_blocked(status, "falco"))

    message = juju.status().get_units("falco")[UNIT].workload_status.message
    assert message.startswith("custom rules refused, the last good set runs: custom-rules")
    seen = alerts_so_far(juju)
    run(juju, "sudo cat /etc/falco-integration-canary > /dev/null")
    assert alert_for(juju, "Integration canary read", seen) is not None
    juju.config("falco", reset="custom-rules")
    juju.wait(lambda status: jubilant.all_active(status, "falco"), error=jubilant.any_error)


def test_remove_leaves_nothing_behind(juju: jubilant.Juju) -> None:
    """arrange: Falco running. act: remove the application. assert: unit and files gone."""
    juju.remove_application("falco")
    juju.wait(lambda status: "falco" not in status.apps)

    leftovers = run(
        juju,
        "ls -d /opt/juju-falco /etc/juju-falco /var/lib/juju-falco "
        "/etc/systemd/system/juju-falco.service 2>/dev/null || true",
    )
    assert leftovers.strip() == ""
    assert run(juju, "systemctl is-enabled juju-falco 2>&1 || true").strip() != "enabled"
    # The alerts are evidence: kept for the operator, unlike everything else.
    assert run(juju, f"sudo test -s {ALERT_LOG} && echo kept").strip() == "kept"
    assert run(juju, "ls /etc/logrotate.d/juju-falco 2>/dev/null || true").strip() == ""
