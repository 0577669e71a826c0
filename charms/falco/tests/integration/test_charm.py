"""Falco on a real machine: hardened unit runs, an alert carries the Juju topology.

Runs on a Juju host with an LXD cloud (`make integration`); the principal is a VM because
Falco needs the host kernel (BPF programs cannot be loaded from an LXD container).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import jubilant

PRINCIPAL = "ubuntu"
UNIT = "falco/0"


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

    alert = None
    for _ in range(30):
        journal = run(juju, "sudo journalctl -u juju-falco -o cat --no-pager")
        lines = [line for line in journal.splitlines() if "Read sensitive file" in line]
        if lines:
            alert = json.loads(lines[-1])
            break
        time.sleep(2)

    assert alert is not None
    fields = alert["output_fields"]
    assert fields["juju_unit"] == UNIT
    assert fields["juju_application"] == "falco"
    assert fields["juju_charm"] == "falco"
    assert fields["juju_model"] == juju.model


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
