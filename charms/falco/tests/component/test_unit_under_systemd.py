"""The charm's hardened unit run by a real systemd, with the real Falco in it.

``systemd-analyze`` checks the unit offline; this runs it. The unit (modern_ebpf hardening,
the one that matters), falco.yaml and the logrotate policy are rendered by the charm's own
functions for a machine rooted at ``/`` and written at their real paths in a Debian 12
container booted with systemd (``real_systemd``), with the real Falco unpacked where the
charm unpacks it. Live modern_ebpf needs CAP_SYS_RESOURCE, which this machine lacks, so the
running Falco uses the ``nodriver`` engine: the only difference from the charm's falco.yaml.
That config with the modern_ebpf engine is the failure case: Falco accepts it at --dry-run
and fails at start.

Falco is installed and started once for the module; each test leaves it running as found.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import alert_log
import falco_config
import journal
import pytest
import real_tools
import systemd_facts
import systemd_unit
import workloads
from layout import SERVICE_NAME, Layout
from local_net import free_port, wait_for
from payload import Payload
from real_falco import HttpsSink, keep_sample
from real_systemd import Container
from tls_material import issue, make_ca

UNIT = f"{SERVICE_NAME}.service"
LAYOUT = Layout(Path("/"))
TOPOLOGY = falco_config.Topology(
    model="lab",
    model_uuid="00000000-0000-4000-8000-000000000000",
    application="falco",
    unit="falco/0",
    charm_name="falco",
)
VALID_RULES = "- macro: juju_systemd_test\n  condition: evt.type = open\n"
INVALID_RULES = "- rule: Broken on purpose\n  desc: a rule without a condition\n"
RELOAD_METRIC = "falcosecurity_falco_reload_timestamp_nanoseconds"
HOT_RESTART_FAILURE = "Falco internal: hot restart failure"
# What the unit gets to keep (systemd_unit: the modern eBPF probe's four capabilities).
UNIT_CAPABILITIES = {
    "cap_bpf": 39,
    "cap_perfmon": 38,
    "cap_sys_resource": 24,
    "cap_sys_ptrace": 19,
}


@dataclass
class Deployed:
    """The charm's files in the container, and how to look at the Falco they run."""

    container: Container
    payload: Payload
    port: int
    rules: Path

    def config(
        self,
        engine_kind: str = "nodriver",
        minimum_priority: str = "debug",
        http: falco_config.HttpDestination | None = None,
    ) -> str:
        """Return the charm's falco.yaml for this machine, with ``engine_kind`` swapped in."""
        data = falco_config.build(
            falco_config.ConfigInputs(
                payload=self.payload,
                engine_kind="modern_ebpf",
                buffer_size_preset=4,
                outputs_queue_capacity=1000,
                topology=TOPOLOGY,
                rules=falco_config.RuleInputs(
                    extra_rules=(self.rules,), minimum_priority=minimum_priority
                ),
                metrics_port=self.port,
                alert_log=LAYOUT.alert_log_file,
                http=http,
            )
        )
        data["engine"]["kind"] = engine_kind
        return falco_config.render(data)

    def unit(self, hidden_trust_store: Path | None = None) -> str:
        """Return the charm's unit for this machine (modern_ebpf hardening)."""
        return systemd_unit.render(
            systemd_unit.UnitInputs(
                falco_binary=self.payload.falco_binary,
                config_file=LAYOUT.config_file,
                kill_binary=LAYOUT.kill_binary,
                engine_kind="modern_ebpf",
                modprobe_binary=LAYOUT.modprobe_binary,
                hidden_trust_store=hidden_trust_store,
            )
        )

    def run_with(self, unit: str, config: str) -> None:
        """Put ``unit`` and ``config`` in place, restart Falco and wait until it serves."""
        self.container.write(LAYOUT.unit_file, unit)
        self.container.write(LAYOUT.config_file, config)
        assert self.container.systemctl("daemon-reload").returncode == 0
        restarted = self.container.systemctl("restart", SERVICE_NAME)
        assert restarted.returncode == 0, restarted.stderr
        self.wait_until_serving()

    def replace_config(self, text: str) -> None:
        """Put ``text`` live the way service.py does: a staged file renamed over the live one."""
        staged = self.container.host_path(LAYOUT.staged_config_file)
        staged.write_text(text)
        os.replace(staged, self.container.host_path(LAYOUT.config_file))

    def props(self, *names: str) -> dict[str, str]:
        return self.container.properties(UNIT, *names)

    def main_pid(self) -> str:
        return self.props("MainPID")["MainPID"]

    def get(self, path: str) -> str | None:
        """GET ``path`` from Falco's webserver; None while nothing answers."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}{path}", timeout=5
            ) as response:
                body: str = response.read().decode()
                return body
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def reload_timestamp(self) -> str | None:
        metrics = self.get("/metrics") or ""
        match = re.search(rf"^{RELOAD_METRIC} (\d+)$", metrics, re.MULTILINE)
        return match.group(1) if match else None

    def wait_for_reload(self, before: str) -> str:
        """Wait until Falco reports a hot restart after the one at ``before``."""

        def newer() -> str | None:
            now = self.reload_timestamp()
            return now if now is not None and now != before else None

        return wait_for("Falco to report a hot restart", newer)

    def wait_until_serving(self) -> str:
        try:
            return wait_for("Falco's metrics", self.reload_timestamp)
        except AssertionError as exc:
            journal = self.container.journal(UNIT)[-3000:]
            raise AssertionError(f"{exc}; the unit's journal ends with:\n{journal}") from exc

    def alert_file(self, name: str = "falco-alerts.log") -> Path:
        return self.container.host_path(LAYOUT.alert_log_dir / name)

    def alerts(self, name: str = "falco-alerts.log") -> list[dict[str, str]]:
        path = self.alert_file(name)
        text = path.read_text() if path.exists() else ""
        return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(name="deployed", scope="module")
def deployed_fixture(
    container: Container, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    tarball = workloads.require(workloads.FALCO_TARBALL)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    unpacked = workloads.unpack_falco(tmp_path_factory.mktemp("falco"))
    payload_dir = container.host_path(LAYOUT.payload_dir(digest))
    payload_dir.parent.mkdir(parents=True, exist_ok=True)
    unpacked.rename(payload_dir)
    payload = Payload(
        sha256=digest,
        directory=LAYOUT.payload_dir(digest),
        falco_version=workloads.FALCO_VERSION,
        driver_version="10.2.0+driver",
    )
    deployed = Deployed(container, payload, free_port(), LAYOUT.rules_root / "test/rules.yaml")
    container.write(deployed.rules, VALID_RULES)
    container.write(LAYOUT.config_file, deployed.config())
    container.write(LAYOUT.logrotate_file, alert_log.policy(LAYOUT))
    container.write(LAYOUT.unit_file, deployed.unit())
    assert container.systemctl("daemon-reload").returncode == 0
    enabled = container.systemctl("enable", "--now", SERVICE_NAME)
    assert enabled.returncode == 0, enabled.stderr
    deployed.wait_until_serving()
    yield deployed
    container.systemctl("disable", "--now", SERVICE_NAME)
    container.systemctl("reset-failed", SERVICE_NAME)


@pytest.fixture(name="falco")
def falco_fixture(deployed: Deployed) -> Iterator[Deployed]:
    """Falco running with the charm's config, before and after the test."""
    yield deployed
    deployed.container.write(deployed.rules, VALID_RULES)
    if deployed.container.host_path(LAYOUT.config_file).read_text() != deployed.config():
        deployed.replace_config(deployed.config())
    if deployed.props("ActiveState")["ActiveState"] != "active":
        deployed.container.systemctl("reset-failed", SERVICE_NAME)
        deployed.container.systemctl("restart", SERVICE_NAME)
    deployed.wait_until_serving()


def test_hardened_unit_runs_falco_inside_its_sandbox(
    falco: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: the unit enabled and started. act: look at it. assert: up, sandboxed, clean."""
    assert falco.props("ActiveState", "SubState", "UnitFileState") == {
        "ActiveState": "active",
        "SubState": "running",
        "UnitFileState": "enabled",
    }
    assert json.loads(falco.get("/healthz") or "{}") == {"status": "ok"}
    # verify exits 0 on unknown keys and only warns: any output at all is a finding.
    verify = falco.container.run("systemd-analyze", "verify", str(LAYOUT.unit_file))
    assert (verify.returncode, verify.stdout, verify.stderr) == (0, "", "")
    status = falco.container.run("cat", f"/proc/{falco.main_pid()}/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert (fields["NoNewPrivs"], fields["Seccomp"]) == ("1", "2")
    allowed = sum(1 << bit for bit in UNIT_CAPABILITIES.values())
    assert int(fields["CapBnd"], 16) & ~allowed == 0
    # ProtectSystem=strict: Falco's view of /etc is read-only.
    write = falco.container.run(
        "nsenter", "-t", falco.main_pid(), "-m", "touch", "/etc/juju-falco/probe"
    )
    assert "Read-only file system" in write.stderr
    # The charm's own reading of the unit, through the real systemctl.
    monkeypatch.setenv("PATH", f"{falco.container.systemctl_on_path(tmp_path)}:/usr/bin:/bin")
    facts = systemd_facts.read()
    assert (facts.running, facts.failed, facts.stopped) == (True, False, False)
    assert (facts.main_pid, facts.result) == (int(falco.main_pid()), "success")


def test_systemctl_reload_hot_restarts_falco_in_the_same_process(falco: Deployed) -> None:
    """arrange: Falco running. act: systemctl reload (SIGHUP). assert: same PID, reloaded."""
    pid, before = falco.main_pid(), falco.wait_until_serving()
    hups = falco.container.journal(UNIT).count("SIGHUP received, restarting")

    result = falco.container.systemctl("reload", SERVICE_NAME)

    assert result.returncode == 0, result.stderr
    falco.wait_for_reload(before)
    assert falco.main_pid() == pid
    assert falco.container.journal(UNIT).count("SIGHUP received, restarting") == hups + 1


def test_config_replaced_as_the_charm_does_is_reloaded_in_the_same_process(
    falco: Deployed,
) -> None:
    """arrange: Falco running. act: rename a new falco.yaml over it. assert: same PID, reloaded."""
    pid, before = falco.main_pid(), falco.wait_until_serving()
    changed = falco.config(minimum_priority="notice")
    # The charm reloads (does not restart) for such a change: the watcher must see it.
    assert not falco_config.needs_restart(
        falco_config.parse(falco.config()), falco_config.parse(changed) or {}
    )

    falco.replace_config(changed)

    falco.wait_for_reload(before)
    assert falco.main_pid() == pid
    assert falco.props("ActiveState")["ActiveState"] == "active"


def test_logrotate_policy_makes_falco_write_to_the_new_file(falco: Deployed) -> None:
    """arrange: an alert in the log. act: logrotate -f, then another alert. assert: new file.

    With nodriver the alert is Falco's own: a rules file that fails a reload makes it emit
    a Critical "hot restart failure" through its outputs, keeping the running rules.
    """
    pid, earlier = falco.main_pid(), len(falco.alerts())
    falco.container.write(falco.rules, INVALID_RULES)  # in place: the watcher reloads
    wait_for("the first alert", lambda: len(falco.alerts()) > earlier or None)

    rotate = falco.container.run("logrotate", "--force", str(LAYOUT.logrotate_file))
    assert rotate.returncode == 0, rotate.stderr
    assert falco.alert_file().read_text() == ""
    assert falco.alert_file().stat().st_mode & 0o777 == 0o600
    falco.container.systemctl("reload", SERVICE_NAME)
    second = wait_for("the second alert", lambda: falco.alerts() or None)

    rotated = falco.alerts("falco-alerts.log.1")
    assert len(rotated) == earlier + 1
    assert rotated[-1]["rule"] == HOT_RESTART_FAILURE
    assert [alert["rule"] for alert in second] == [HOT_RESTART_FAILURE]
    assert second[0]["priority"] == "Critical"
    assert falco.main_pid() == pid


def test_stop_ends_falco_cleanly(falco: Deployed) -> None:
    """arrange: Falco running. act: systemctl stop. assert: inactive, Falco exited 0 itself."""
    result = falco.container.systemctl("stop", SERVICE_NAME)

    assert result.returncode == 0, result.stderr
    # Killed after TimeoutStopSec would be Result=timeout and ExecMainCode=2 (killed).
    assert falco.props("ActiveState", "Result", "ExecMainCode", "ExecMainStatus") == {
        "ActiveState": "inactive",
        "Result": "success",
        "ExecMainCode": "1",
        "ExecMainStatus": "0",
    }


def test_falco_failing_after_start_is_what_systemd_reports(
    falco: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: the charm's config with modern_ebpf, which --dry-run accepts. act: start.

    assert: start succeeds (Type=simple); then Falco exits 1, systemd waits to restart it,
    restarts it, and the journal has Falco's error.
    """
    falco.container.systemctl("stop", SERVICE_NAME)
    falco.container.write(LAYOUT.config_file, falco.config(engine_kind="modern_ebpf"))
    binary = str(falco.payload.falco_binary)
    dry_run = falco.container.run(binary, "-c", str(LAYOUT.config_file), "--dry-run")
    assert dry_run.returncode == 0, dry_run.stderr

    started = falco.container.systemctl("start", SERVICE_NAME)

    assert started.returncode == 0, started.stderr
    wanted = ("ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts")
    waiting = wait_for("Falco to exit", lambda: _once(falco.props(*wanted), "auto-restart"))
    assert waiting == {
        "ActiveState": "activating",
        "SubState": "auto-restart",
        "Result": "exit-code",
        "ExecMainStatus": "1",
        "NRestarts": "0",
    }
    assert "Error: Initialization issues during scap_init" in falco.container.journal(UNIT)
    monkeypatch.setenv("PATH", f"{falco.container.systemctl_on_path(tmp_path)}:/usr/bin:/bin")
    # What the charm then reads: not running, and left to systemd (not failed, not stopped).
    facts = systemd_facts.read()
    assert (facts.running, facts.waiting_to_restart, facts.failed, facts.stopped) == (
        False,
        True,
        False,
        False,
    )
    assert (facts.result, facts.exec_main_status, facts.main_pid) == ("exit-code", 1, 0)
    # What the charm's status names as the cause, from the real journal.
    lines = journal.read_lines()
    keep_sample("journal-modern-ebpf-failure.txt", "\n".join(lines) + "\n")
    why = journal.diagnose(lines)
    assert why is not None
    assert why.engine in ("modern_ebpf", journal.ANY_ENGINE)
    assert why.summary.startswith(
        ("Falco's driver failed to open (scap_init)", "the modern_ebpf probe ")
    ), why.summary
    # RestartSec=15s later systemd tries again, and Falco fails again.
    again = wait_for(
        "systemd to restart Falco",
        lambda: _once(falco.props(*wanted), "auto-restart", restarts="1"),
        timeout=60,
    )
    assert again["Result"] == "exit-code"


def _trust_store(falco: Deployed, ca_pem: str) -> None:
    """Lay out the container's /etc/ssl/certs as Debian does, trusting the CA ``ca_pem``."""
    openssl = real_tools.require("openssl", "openssl")
    store = falco.container.host_path(LAYOUT.system_ca_dir)
    store.mkdir(parents=True, exist_ok=True)
    (store / "test-ca.pem").write_text(ca_pem)
    (store / "ca-certificates.crt").write_text(ca_pem)
    hashed = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(store / "test-ca.pem")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (store / f"{hashed}.0").unlink(missing_ok=True)
    (store / f"{hashed}.0").symlink_to("test-ca.pem")


def _post_an_alert(falco: Deployed) -> None:
    """Make Falco send an alert: SIGHUP with a refused rules file in place (nodriver)."""
    before = len(falco.alerts())
    falco.container.write(falco.rules, INVALID_RULES)
    assert falco.container.systemctl("reload", SERVICE_NAME).returncode == 0
    wait_for("Falco's alert", lambda: len(falco.alerts()) > before or None)
    falco.container.write(falco.rules, VALID_RULES)


def test_a_related_ca_is_the_only_one_falco_trusts(falco: Deployed, tmp_path: Path) -> None:
    """arrange: a sink certified by a CA of the machine's store; another CA related.

    act: an alert, with the unit as rendered for a related CA, then without its directive.
    assert: with it, libcurl refuses the sink (the store is hidden from Falco); without it,
    the sink gets the alert: libcurl reads the machine's store next to http_output.ca_cert.
    """
    sidekick_ca, store_ca = make_ca("Sidekick CA"), make_ca("A CA of the machine's store")
    _trust_store(falco, store_ca.cert_pem)
    falco.container.write(LAYOUT.http_ca_file, sidekick_ca.cert_pem)
    refused = "libcurl failed to perform call: SSL peer certificate or SSH remote key was not OK"
    try:
        with HttpsSink(tmp_path / "sink", store_ca) as sink:
            http = falco_config.HttpDestination(sink.url, LAYOUT.http_ca_file)
            falco.run_with(
                falco.unit(hidden_trust_store=LAYOUT.system_ca_dir), falco.config(http=http)
            )
            refusals = falco.container.journal(UNIT).count(refused)
            _post_an_alert(falco)
            wait_for(
                "libcurl's refusal",
                lambda: falco.container.journal(UNIT).count(refused) > refusals or None,
            )
            assert sink.alerts() == []

            falco.run_with(falco.unit(), falco.config(http=http))
            _post_an_alert(falco)
            delivered = wait_for("the alert at the sink", lambda: sink.alerts() or None)
            assert delivered[0]["rule"] == HOT_RESTART_FAILURE
    finally:
        falco.run_with(falco.unit(), falco.config())


def test_the_sandboxed_falco_presents_the_units_client_certificate(
    falco: Deployed, tmp_path: Path
) -> None:
    """arrange: a sink requiring client certificates; the unit's one and 0600 key in place.

    act: an alert, with mtls, then without.
    assert: the hardened unit's Falco reads the key and the sink gets the alert; without the
    certificate the sink refuses the connection and gets nothing.
    """
    sidekick_ca, client_ca = make_ca("Sidekick CA"), make_ca("Client CA")
    client = issue(client_ca, "falco-0.lab", dns_names=("falco-0.lab",))
    falco.container.write(LAYOUT.http_ca_file, sidekick_ca.cert_pem)
    falco.container.write(LAYOUT.client_cert_file, client.cert_pem)
    falco.container.write(LAYOUT.client_key_file, client.key_pem, mode=0o600)
    try:
        with HttpsSink(tmp_path / "sink", sidekick_ca, client_ca=client_ca) as sink:
            mutual = falco_config.HttpDestination(
                sink.url,
                LAYOUT.http_ca_file,
                client_cert=LAYOUT.client_cert_file,
                client_key=LAYOUT.client_key_file,
            )
            hidden = falco.unit(hidden_trust_store=LAYOUT.system_ca_dir)
            falco.run_with(hidden, falco.config(http=mutual))
            _post_an_alert(falco)
            delivered = wait_for("the alert at the sink", lambda: sink.alerts() or None)
            assert delivered[0]["rule"] == HOT_RESTART_FAILURE

            anonymous = falco_config.HttpDestination(sink.url, LAYOUT.http_ca_file)
            falco.run_with(hidden, falco.config(http=anonymous))
            failures = falco.container.journal(UNIT).count("libcurl failed to perform call")
            _post_an_alert(falco)
            wait_for(
                "libcurl's failure",
                lambda: (
                    falco.container.journal(UNIT).count("libcurl failed to perform call")
                    > failures
                    or None
                ),
            )
            assert len(sink.alerts()) == len(delivered)
    finally:
        for path in (LAYOUT.client_cert_file, LAYOUT.client_key_file, LAYOUT.http_ca_file):
            falco.container.host_path(path).unlink(missing_ok=True)
        falco.run_with(falco.unit(), falco.config())


def _once(props: dict[str, str], sub_state: str, restarts: str = "0") -> dict[str, str] | None:
    return props if (props["SubState"], props["NRestarts"]) == (sub_state, restarts) else None
