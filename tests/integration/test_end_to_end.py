"""The seed architecture on a real Juju: an alert travels from a Falco host to Loki.

Order matters: the tests share one deployment (see conftest.py) and build on each other.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import jubilant

if TYPE_CHECKING:
    from conftest import Deployment

T = TypeVar("T")
SENSITIVE_RULE = "Read sensitive file untrusted"
MARKER_RULE = "Falco charm integration test marker"
MARKER_FILE = "/tmp/falco-charm-it-marker"  # on the test VM


def eventually(
    what: str, check: Callable[[], T | None], timeout: float = 300, every: float = 5
) -> T:
    """Return the first truthy result of ``check``; fail saying ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(every)


def loki_query(deployment: Deployment, logql: str, since_s: int = 900) -> list[dict[str, Any]]:
    """Return the streams Loki has for ``logql`` over the last ``since_s`` seconds."""
    address = deployment.sidekick.status().apps["loki"].units["loki/0"].address
    now = time.time_ns()
    query = urllib.parse.urlencode(
        {"query": logql, "start": now - since_s * 10**9, "end": now, "limit": 100}
    )
    url = f"http://{address}:3100/loki/api/v1/query_range?{query}"
    with urllib.request.urlopen(url, timeout=30) as response:
        body = json.load(response)
    streams: list[dict[str, Any]] = body["data"]["result"]
    return streams


def alerts_in_loki(
    deployment: Deployment, rule: str
) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Return (stream labels, alert) of every alert of ``rule`` Loki holds."""
    found = []
    for stream in loki_query(deployment, f'{{juju_charm="falco"}} |= "{rule}"'):
        for _, line in stream["values"]:
            alert = json.loads(line)
            if alert.get("rule") == rule:
                found.append((stream["stream"], alert))
    return found


def on_host(deployment: Deployment, command: str) -> str:
    return deployment.hosts.ssh("ubuntu/0", command)


def test_everything_is_active(deployment: Deployment) -> None:
    """arrange: the seed architecture. act: read status. assert: every unit active."""
    for juju in (deployment.hosts, deployment.sidekick):
        status = juju.status()
        assert jubilant.all_active(status), status


def test_alert_from_a_host_reaches_loki_with_its_unit(deployment: Deployment) -> None:
    """arrange: Falco watching ubuntu/0. act: read /etc/shadow. assert: in Loki, labelled."""
    on_host(deployment, "sudo cat /etc/shadow > /dev/null")

    def arrived() -> list[tuple[dict[str, str], dict[str, Any]]]:
        return alerts_in_loki(deployment, SENSITIVE_RULE)

    labels, alert = eventually("the alert for /etc/shadow reaching Loki", arrived)[-1]
    assert labels["juju_unit"] == deployment.falco_unit
    assert labels["juju_application"] == "falco"
    assert labels["juju_model"] == deployment.hosts.model.rpartition(":")[2]
    assert alert["output_fields"]["fd.name"] == "/etc/shadow"


def test_test_alert_action_proves_the_path_to_loki(deployment: Deployment) -> None:
    """arrange: sidekick related to Loki. act: run test-alert. assert: Loki accepted it."""
    task = deployment.sidekick.run("falcosidekick-k8s/0", "test-alert")

    assert task.status == "completed", task.results


def test_rules_from_a_git_repository_over_ssh(deployment: Deployment, tmp_path: Path) -> None:
    """arrange: a rules repo on the VM over ssh, host key pinned. act: configure. assert: fires."""
    key = tmp_path / "deploy_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    rule = [{
        "rule": MARKER_RULE,
        "desc": "The marker file of the integration tests was read.",
        "condition": f'open_read and fd.name = "{MARKER_FILE}"',
        "output": "integration test marker read (file=%fd.name process=%proc.name)",
        "priority": "WARNING",
        "tags": ["integration_test"],
    }]  # fmt: skip
    script = f"""
set -e
sudo useradd --create-home --shell /usr/bin/git-shell rules 2>/dev/null || true
sudo -u rules mkdir -p -m 700 /home/rules/.ssh
echo '{key.with_suffix(".pub").read_text().strip()}' \\
  | sudo -u rules tee /home/rules/.ssh/authorized_keys
sudo -u rules git init -q --bare -b main /home/rules/rules.git
work=$(mktemp -d) && cd "$work" && git init -q -b main && mkdir rules.d
echo '{json.dumps(rule)}' > rules.d/marker.yaml
git -c user.name=it -c user.email=it@example.com add . && \
  git -c user.name=it -c user.email=it@example.com commit -q -m rules
sudo chown -R rules "$work" && sudo -u rules git push -q /home/rules/rules.git main
"""
    on_host(deployment, script)
    address = deployment.hosts.status().apps["ubuntu"].units["ubuntu/0"].public_address
    host_key = on_host(deployment, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
    secret = deployment.hosts.add_secret("falco-rules-key", {"value": key.read_text()})
    deployment.hosts.grant_secret(secret, "falco")

    deployment.hosts.config("falco", {
        "custom-config-repository": f"git+ssh://rules@{address}/home/rules/rules.git@main",
        "custom-config-repo-ssh-key": str(secret),
        "custom-config-repo-known-hosts": f"{address} {' '.join(host_key)}",
    })  # fmt: skip
    deployment.hosts.wait(jubilant.all_active, error=jubilant.any_error)
    task = deployment.hosts.run(deployment.falco_unit, "refresh-rules")
    assert task.status == "completed", task.results
    on_host(deployment, f"touch {MARKER_FILE} && cat {MARKER_FILE}")

    def fired() -> list[tuple[dict[str, str], dict[str, Any]]]:
        return alerts_in_loki(deployment, MARKER_RULE)

    eventually("the repository rule firing into Loki", fired)


def test_certificate_rotation_keeps_alerts_flowing(deployment: Deployment) -> None:
    """arrange: alerts flowing. act: new CA. assert: Falco trusts the new CA, alerts arrive."""
    ca_before = on_host(deployment, "sudo cat /etc/juju-falco/http-endpoint-ca.pem")
    deployment.sidekick.config("self-signed-certificates", {"ca-common-name": "falco-it-rotated"})

    def rotated() -> bool:
        return on_host(deployment, "sudo cat /etc/juju-falco/http-endpoint-ca.pem") != ca_before

    eventually("Falco receiving the new CA", rotated, timeout=600)
    deployment.sidekick.wait(jubilant.all_active, error=jubilant.any_error)
    deployment.hosts.wait(jubilant.all_active, error=jubilant.any_error)
    before = len(alerts_in_loki(deployment, SENSITIVE_RULE))
    on_host(deployment, "sudo cat /etc/shadow > /dev/null")

    def arrived() -> bool:
        return len(alerts_in_loki(deployment, SENSITIVE_RULE)) > before

    eventually("a new alert reaching Loki", arrived)


def test_http_endpoint_removed_and_restored(deployment: Deployment) -> None:
    """arrange: Falco sending. act: remove, then restore the relation. assert: truthful, flows."""
    hosts = deployment.hosts
    hosts.remove_relation("falco:http-endpoint", "falcosidekick")

    def local_only() -> bool:
        _, unit = deployment.falco_unit_status()
        return "alerts stay on this host" in unit.workload_status.message

    eventually("falco saying alerts stay on the host", local_only)
    hosts.integrate("falco:http-endpoint", "falcosidekick")
    hosts.wait(jubilant.all_active, error=jubilant.any_error)
    before = len(alerts_in_loki(deployment, SENSITIVE_RULE))
    on_host(deployment, "sudo cat /etc/shadow > /dev/null")

    def arrived() -> bool:
        return len(alerts_in_loki(deployment, SENSITIVE_RULE)) > before

    eventually("a new alert reaching Loki", arrived)
