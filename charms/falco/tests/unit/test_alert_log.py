"""State-transition tests of the local alert log: the file output, its rotation, its removal."""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml
from charm import FalcoCharm
from machine import FakeMachine, changed_files
from ops import testing

POLICY = "etc/logrotate.d/juju-falco"
ALERT_LOG = "var/log/falco/falco-alerts.log"
Ctx = testing.Context[FalcoCharm]


def falco_wrote(machine: FakeMachine, alert: str) -> None:
    """Append an alert to the alert log, as Falco does (systemd makes the directory)."""
    (machine.root / ALERT_LOG).parent.mkdir(parents=True, exist_ok=True)
    with (machine.root / ALERT_LOG).open("a") as log:
        log.write(alert + "\n")


def outputs(machine: FakeMachine) -> dict[str, Any]:
    config = yaml.safe_load((machine.root / "etc/juju-falco/falco.yaml").read_text())
    return {key: config[key] for key in ("stdout_output", "file_output", "syslog_output")}


def test_install_keeps_alerts_in_a_rotated_file(
    ctx: Ctx, state: testing.State, machine: FakeMachine
) -> None:
    """arrange: a fresh machine. act: install. assert: file output and logrotate policy."""
    ctx.run(ctx.on.install(), state)

    assert outputs(machine) == {
        "stdout_output": {"enabled": False},
        "file_output": {
            "enabled": True,
            "keep_alive": True,
            "filename": str(machine.root / ALERT_LOG),
        },
        "syslog_output": {"enabled": False},
    }
    policy = (machine.root / POLICY).read_text()
    assert policy.startswith("# Rendered by the falco Juju charm")
    assert f"{machine.root / ALERT_LOG} {{" in policy
    assert "copytruncate" not in policy
    assert (
        f"{machine.root}/usr/bin/systemctl kill --signal=SIGUSR1 --kill-whom=main "
        "juju-falco.service"
    ) in policy
    assert (machine.root / POLICY).stat().st_mode & 0o777 == 0o644


def test_turning_the_alert_log_off_and_on_is_one_restart_each(
    ctx: Ctx, state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco with the alert log. act: alert-log off, then on. assert: outputs."""
    out = ctx.run(ctx.on.install(), state)
    falco_wrote(machine, '{"rule": "Earlier alert"}')
    machine.clear_calls()

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"alert-log": False}))

    assert machine.restarts() == 1
    assert outputs(machine)["stdout_output"] == {"enabled": True}
    assert outputs(machine)["file_output"] == {"enabled": False}
    assert not (machine.root / POLICY).exists()
    # Alerts already written are never deleted by the charm.
    assert (machine.root / ALERT_LOG).read_text() == '{"rule": "Earlier alert"}\n'

    machine.clear_calls()
    ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"alert-log": True}))

    assert machine.restarts() == 1
    assert outputs(machine)["stdout_output"] == {"enabled": False}
    assert (machine.root / POLICY).exists()


def test_alert_log_off_and_idle_hooks_write_nothing(
    ctx: Ctx, state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco without the alert log. act: update-status. assert: no file touched."""
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, config={"alert-log": False}))
    before = machine.files()

    ctx.run(ctx.on.update_status(), out)

    assert changed_files(before, machine.files()) == 0
    assert not (machine.root / POLICY).exists()


def test_remove_keeps_the_alerts_and_drops_the_rotation_policy(
    ctx: Ctx, state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco has written alerts. act: stop, remove. assert: alerts kept, rest gone."""
    out = ctx.run(ctx.on.install(), state)
    falco_wrote(machine, '{"rule": "Forensic evidence"}')

    out = ctx.run(ctx.on.stop(), out)
    ctx.run(ctx.on.remove(), out)

    assert (machine.root / ALERT_LOG).read_text() == '{"rule": "Forensic evidence"}\n'
    assert not (machine.root / POLICY).exists()
    assert not (machine.root / "etc/juju-falco").exists()
