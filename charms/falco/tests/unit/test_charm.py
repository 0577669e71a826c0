"""State-transition tests of the falco charm: install, no-op hooks, config, status, removal."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from charm import FalcoCharm
from machine import FakeMachine, changed_files
from ops import testing

CONFIG = Path("etc/juju-falco/falco.yaml")
UNIT = Path("etc/systemd/system/juju-falco.service")
LOCAL_ONLY = testing.ActiveStatus("alerts stay on this host: integrate http-endpoint")


def rendered(machine: FakeMachine) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((machine.root / CONFIG).read_text())
    return data


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def installed(ctx: testing.Context[FalcoCharm], state: testing.State) -> testing.State:
    return ctx.run(ctx.on.install(), state)


def test_install_runs_falco_hardened_with_local_alerts(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: a fresh machine. act: install. assert: Falco enabled and started once."""
    out = installed(ctx, state)

    assert out.unit_status == LOCAL_ONLY
    assert out.workload_version == "0.44.1"
    assert machine.unit() | {"loaded": None} == {
        "active": True,
        "enabled": True,
        "failed": False,
        "loaded": None,
    }
    assert machine.restarts() == 1
    assert machine.tool_state("systemd").get("stale_starts") is None
    unit = (machine.root / UNIT).read_text()
    assert "CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYS_RESOURCE CAP_SYS_PTRACE" in unit
    assert f"-c {machine.root / CONFIG}" in unit
    config = rendered(machine)
    assert config["engine"]["kind"] == "modern_ebpf"
    assert config["http_output"] == {"enabled": False}
    # The local copy of every alert is the alert log, so not stdout as well.
    assert config["file_output"] == {
        "enabled": True,
        "keep_alive": True,
        "filename": str(machine.root / "var/log/falco/falco-alerts.log"),
    }
    assert config["stdout_output"] == {"enabled": False}
    # The config was checked with the payload's binary before going live.
    assert any("--dry-run" in argv for argv in machine.calls("falco"))


def test_every_alert_carries_the_juju_topology(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: a unit in a named model. act: install. assert: the five topology fields."""
    model = testing.Model(name="prod", uuid="00000000-0000-4000-8000-000000000001")

    installed(ctx, dataclasses.replace(state, model=model))

    extra = rendered(machine)["append_output"][1]["extra_fields"]
    assert extra == [
        {"juju_unit": "falco/0"},
        {"juju_application": "falco"},
        {"juju_model": "prod"},
        {"juju_model_uuid": "00000000-0000-4000-8000-000000000001"},
        {"juju_charm": "falco"},
    ]
    config = rendered(machine)
    assert config["json_output"] is True
    assert config["json_include_output_fields_property"] is True


@pytest.mark.parametrize(
    "event",
    ["update_status", "config_changed", "start", "upgrade_charm"],
)
def test_hook_without_changes_writes_and_restarts_nothing(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, event: str
) -> None:
    """arrange: Falco installed. act: a hook whose inputs did not change. assert: no work."""
    out = installed(ctx, state)
    machine.clear_calls()
    before = machine.files()

    out = ctx.run(getattr(ctx.on, event)(), out)

    assert changed_files(before, machine.files()) == 0
    # One read of the unit's state, shared by the reconcile and the status.
    assert machine.systemctl_verbs() == ["show"]
    assert machine.calls("falco") == []
    assert out.unit_status == LOCAL_ONLY


def test_outputs_queue_change_is_a_hot_reload(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco running. act: change outputs-queue-capacity. assert: file swap only."""
    out = installed(ctx, state)
    machine.clear_calls()
    inode = (machine.root / CONFIG).stat().st_ino

    out = ctx.run(
        ctx.on.config_changed(),
        dataclasses.replace(out, config={"outputs-queue-capacity": 5000}),
    )

    assert rendered(machine)["outputs_queue"] == {"capacity": 5000}
    # Replaced atomically (new inode) so Falco's watcher reloads; no SIGHUP, no restart.
    assert (machine.root / CONFIG).stat().st_ino != inode
    assert machine.systemctl_verbs() == ["show"]
    assert machine.unit()["active"] is True
    assert out.unit_status == LOCAL_ONLY


def test_buffer_size_change_restarts_once(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco running. act: change buffer-size-preset. assert: stop, write, start."""
    out = installed(ctx, state)
    machine.clear_calls()

    ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"buffer-size-preset": 6}))

    assert rendered(machine)["engine"]["modern_ebpf"]["buf_size_preset"] == 6
    assert machine.systemctl_verbs().count("stop") == 1
    assert machine.restarts() == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"driver": "ebpf"}, "invalid config 'driver'"),
        ({"buffer-size-preset": 11}, "invalid config 'buffer-size-preset'"),
        ({"buffer-size-preset": 0}, "invalid config 'buffer-size-preset'"),
        ({"outputs-queue-capacity": 0}, "invalid config 'outputs-queue-capacity'"),
    ],
)
def test_invalid_config_blocks_and_keeps_falco_running(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    config: dict[str, Any],
    message: str,
) -> None:
    """arrange: Falco running. act: set an invalid value. assert: Blocked, nothing changed."""
    out = installed(ctx, state)
    machine.clear_calls()
    before = machine.files()

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config=config))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(message)
    assert changed_files(before, machine.files()) == 0
    assert machine.restarts() == 0
    assert machine.unit()["active"] is True


def test_falco_that_systemd_restarts_by_itself_is_left_to_systemd(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco exits at start. act: install, then idle hooks.

    assert: `systemctl start` succeeds (Type=simple) and the status says what systemd says:
    not running while it waits to restart Falco; idle hooks start nothing on top of
    systemd's own restarts.
    """
    machine.set_knob("systemd", "fail_start", True)

    out = installed(ctx, state)
    assert machine.show("ActiveState", "SubState", "Result") == {
        "ActiveState": "activating",
        "SubState": "auto-restart",
        "Result": "exit-code",
    }
    assert out.unit_status == testing.BlockedStatus(
        "Falco is not running (systemd restarts it, 0 restarts so far): "
        "see `journalctl -u juju-falco`"
    )
    machine.clear_calls()
    for _ in range(3):
        out = ctx.run(ctx.on.update_status(), out)
    assert machine.restarts() == 0
    assert machine.systemctl_verbs() == ["show"] * 3


def test_failed_falco_is_started_by_the_next_hook_then_runs(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco failed (systemd gave up after its start limit), then the cause went.

    act: update-status twice. assert: the first clears systemd's failed state and starts
    Falco once, read once before and once after; the second does nothing.
    """
    out = installed(ctx, state)
    machine.crash()
    machine.clear_calls()

    out = ctx.run(ctx.on.update_status(), out)

    assert machine.systemctl_verbs() == ["show", "reset-failed", "restart", "show"]
    assert machine.unit()["active"] is True
    assert out.unit_status == LOCAL_ONLY
    machine.clear_calls()
    before = machine.files()
    out = ctx.run(ctx.on.update_status(), out)
    assert machine.systemctl_verbs() == ["show"]
    # The count of starts is forgotten once Falco runs: one record removed.
    assert changed_files(before, machine.files()) == 1
    assert out.unit_status == LOCAL_ONLY


def test_a_fix_while_systemd_waits_to_restart_falco_applies_at_once(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco exited at start; systemd waits RestartSec. act: a fix. assert: no wait.

    `systemctl start` on a unit waiting to restart blocks until the restart timer fires (up
    to RestartSec=15s of the hook); `systemctl restart` starts it at once.
    """
    machine.set_knob("systemd", "fail_start", True)
    out = installed(ctx, state)
    machine.set_knob("systemd", "fail_start", False)

    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(out, config={"buffer-size-preset": 5})
    )

    assert machine.tool_state("systemd").get("waited_starts") is None
    assert machine.restarts() == 2
    assert machine.show("ActiveState", "NRestarts") == {"ActiveState": "active", "NRestarts": "0"}
    assert out.unit_status == LOCAL_ONLY


def test_stopped_service_is_started_by_the_next_hook(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco installed, then stopped by hand. act: update-status. assert: started."""
    out = installed(ctx, state)
    machine.stop_by_hand()
    machine.clear_calls()

    out = ctx.run(ctx.on.update_status(), out)

    assert machine.systemctl_verbs() == ["show", "restart", "show"]
    assert machine.unit()["active"] is True
    assert out.unit_status == LOCAL_ONLY


def test_remove_stops_disables_and_deletes_everything_it_created(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: snapshot of a fresh machine, then install. act: stop, remove. assert."""
    machine.set_kernel("6.8.0-45-generic")
    pristine = machine.files()
    out = installed(ctx, state)
    assert changed_files(pristine, machine.files()) > 0

    out = ctx.run(ctx.on.stop(), out)
    ctx.run(ctx.on.remove(), out)

    assert machine.unit()["active"] is False
    assert machine.unit()["enabled"] is False
    assert changed_files(pristine, machine.files()) == 0


def test_remove_undoes_the_kmod_build(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco on kmod. act: remove. assert: module unloaded, DKMS build undone."""
    pristine = machine.files()
    out = installed(ctx, dataclasses.replace(state, config={"driver": "kmod"}))
    assert (machine.root / "usr/src/falco-10.2.0+driver/dkms.conf").is_file()

    ctx.run(ctx.on.remove(), out)

    assert ["-r", "falco"] in machine.calls("modprobe")
    assert machine.tool_state("dkms")["installed"] == []
    assert changed_files(pristine, machine.files()) == 0


def test_no_payload_at_all_blocks(
    machine: FakeMachine, tmp_path: Path, state: testing.State
) -> None:
    """arrange: a charm without bundled tarball, no resource. act: install. assert: Blocked."""
    (tmp_path / "empty-charm").mkdir()
    ctx = testing.Context(FalcoCharm, charm_root=tmp_path / "empty-charm")

    out = ctx.run(ctx.on.install(), state)

    assert out.unit_status == testing.BlockedStatus(
        "no usable Falco payload: attach the 'falco' resource"
    )
    assert machine.restarts() == 0


def test_a_reload_falco_missed_is_sent_sighup(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """arrange: Falco running, its file watches lost (an earlier reload failed).

    act: a change applied as a hot reload. assert: Falco's /metrics still show the old
    falco.yaml, so the charm sends SIGHUP once, and Falco then runs the new one; no restart.
    """
    out = installed(ctx, state)
    machine.set_knob("systemd", "falco_watch_lost", True)
    machine.clear_calls()

    ctx.run(
        ctx.on.config_changed(), dataclasses.replace(out, config={"minimum-priority": "notice"})
    )

    assert machine.systemctl_verbs() == ["show", "reload"]
    assert machine.restarts() == 0
    port = rendered(machine)["webserver"]["listen_port"]
    running = machine.falco_metrics(port)
    assert running is not None
    assert running.config == (("falco.yaml", sha256(machine.root / CONFIG)),)
    assert "sending it SIGHUP" in caplog.text


def test_a_reload_falco_misses_even_after_sighup_ends_in_a_restart(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco's watches lost, and SIGHUP does not make it reload either.

    act: a change applied as a hot reload. assert: SIGHUP, then one restart.
    """
    out = installed(ctx, state)
    machine.set_knob("systemd", "falco_watch_lost", True)
    machine.set_knob("systemd", "falco_ignores_sighup", True)
    machine.clear_calls()

    ctx.run(
        ctx.on.config_changed(), dataclasses.replace(out, config={"minimum-priority": "notice"})
    )

    assert machine.systemctl_verbs() == ["show", "reload", "restart", "show"]
    assert machine.unit()["active"] is True
