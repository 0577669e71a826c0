"""State-transition tests of the driver option: kernel checks, kmod via DKMS, auto."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml
from charm import FalcoCharm
from machine import DRIVER_VERSION, FakeMachine, changed_files
from ops import testing


def engine(machine: FakeMachine) -> str:
    config: dict[str, Any] = yaml.safe_load(
        (machine.root / "etc/juju-falco/falco.yaml").read_text()
    )
    return str(config["engine"]["kind"])


def unit_text(machine: FakeMachine) -> str:
    return (machine.root / "etc/systemd/system/juju-falco.service").read_text()


@pytest.mark.parametrize(
    ("release", "btf", "reason"),
    [
        (
            "5.4.0-150-generic",
            True,
            "driver modern_ebpf: kernel 5.4.0-150-generic is older than 5.8 and has no BPF "
            "ring buffer; try driver=kmod",
        ),
        (
            "6.8.0-45-generic",
            False,
            "driver modern_ebpf: kernel 6.8.0-45-generic exposes no BTF at "
            "/sys/kernel/btf/vmlinux; try driver=kmod",
        ),
    ],
)
def test_modern_ebpf_on_an_unfit_kernel_blocks_instead_of_crash_looping(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    release: str,
    btf: bool,
    reason: str,
) -> None:
    """arrange: a kernel without ring buffers or BTF. act: install. assert: Blocked, no start."""
    machine.set_kernel(release, btf=btf)

    out = ctx.run(ctx.on.install(), state)

    assert out.unit_status == testing.BlockedStatus(reason)
    assert machine.restarts() == 0
    assert not (machine.root / "etc/systemd/system/juju-falco.service").exists()


def test_container_machine_blocks(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: an LXD container. act: install with auto. assert: Blocked with both reasons."""
    machine.make_container("lxc")

    out = ctx.run(ctx.on.install(), dataclasses.replace(state, config={"driver": "auto"}))

    assert out.unit_status == testing.BlockedStatus(
        "no driver can run: modern_ebpf: this machine is a lxc container and cannot load BPF "
        "programs; kmod: this machine is a lxc container and cannot load kernel modules"
    )


def test_kmod_builds_with_dkms_and_loads_before_falco(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: driver=kmod. act: install. assert: packages, DKMS build, modprobe in the unit."""
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, config={"driver": "kmod"}))

    assert out.unit_status.name == "active"
    assert set(machine.tool_state("apt")["installed"]) == {
        "dkms",
        "linux-headers-6.8.0-45-generic",
    }
    assert machine.tool_state("dkms")["installed"] == [f"falco/{DRIVER_VERSION}/6.8.0-45-generic"]
    assert engine(machine) == "kmod"
    text = unit_text(machine)
    assert f"ExecStartPre=+{machine.root}/usr/sbin/modprobe falco" in text
    assert "CapabilityBoundingSet" not in text
    assert "PrivateDevices=no" in text


def test_switching_driver_restarts_once_and_rebuilds_nothing_afterwards(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco on modern_ebpf. act: driver=kmod, then a no-op hook. assert."""
    out = ctx.run(ctx.on.install(), state)
    machine.clear_calls()

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"driver": "kmod"}))
    assert machine.restarts() == 1
    assert machine.systemctl_verbs().count("daemon-reload") == 1
    assert machine.tool_state("systemd").get("stale_starts") is None
    machine.clear_calls()
    before = machine.files()

    ctx.run(ctx.on.update_status(), out)

    assert changed_files(before, machine.files()) == 0
    assert machine.restarts() == 0
    assert [argv[0] for argv in machine.calls("dkms")] == ["status"]


def test_auto_falls_back_to_kmod_without_btf(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: no BTF. act: install with driver=auto. assert: kmod runs."""
    machine.set_kernel("6.8.0-45-generic", btf=False)

    ctx.run(ctx.on.install(), dataclasses.replace(state, config={"driver": "auto"}))

    assert engine(machine) == "kmod"


def test_auto_prefers_modern_ebpf(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: a modern kernel. act: install with driver=auto. assert: modern_ebpf, no DKMS."""
    ctx.run(ctx.on.install(), dataclasses.replace(state, config={"driver": "auto"}))

    assert engine(machine) == "modern_ebpf"
    assert machine.calls("dkms") == []


def test_kmod_under_lockdown_blocks(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Secure Boot lockdown. act: install with kmod. assert: Blocked, nothing built."""
    machine.set_kernel("6.8.0-45-generic", lockdown="none [integrity] confidentiality")

    out = ctx.run(ctx.on.install(), dataclasses.replace(state, config={"driver": "kmod"}))

    assert out.unit_status == testing.BlockedStatus(
        "driver kmod: kernel lockdown (integrity) refuses unsigned modules; try driver=modern_ebpf"
    )
    assert machine.calls("dkms") == []


def test_failed_dkms_build_blocks_and_is_retried_only_on_operator_action(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: DKMS fails. act: install, update-status, config-changed. assert: retries."""
    machine.set_knob("dkms", "fail_build", True)
    kmod = dataclasses.replace(state, config={"driver": "kmod"})

    out = ctx.run(ctx.on.install(), kmod)
    assert out.unit_status == testing.BlockedStatus(
        f"DKMS could not build falco {DRIVER_VERSION} for kernel 6.8.0-45-generic: "
        "Error! Bad return status for module build on kernel"
    )
    assert machine.restarts() == 0
    machine.clear_calls()
    before = machine.files()

    out = ctx.run(ctx.on.update_status(), out)
    assert [argv[0] for argv in machine.calls("dkms")] == ["status"]
    assert changed_files(before, machine.files()) == 0

    machine.set_knob("dkms", "fail_build", False)
    out = ctx.run(ctx.on.config_changed(), out)
    assert out.unit_status.name == "active"
    assert machine.restarts() == 1


def test_missing_kernel_headers_block_with_the_package_name(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: apt cannot find the headers. act: install with kmod. assert: Blocked."""
    machine.set_knob("apt", "missing", ["linux-headers-6.8.0-45-generic"])

    out = ctx.run(ctx.on.install(), dataclasses.replace(state, config={"driver": "kmod"}))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(
        "cannot install dkms and linux-headers-6.8.0-45-generic"
    )
    assert machine.restarts() == 0


def test_kmod_needs_driver_sources_in_the_payload(
    machine: FakeMachine, tmp_path: Any, state: testing.State
) -> None:
    """arrange: a payload without usr/src/falco-*. act: install with kmod. assert: Blocked."""
    from machine import build_payload

    build_payload(tmp_path / "charm" / "payload", driver_sources=False)
    ctx = testing.Context(FalcoCharm, charm_root=tmp_path / "charm")

    out = ctx.run(ctx.on.install(), dataclasses.replace(state, config={"driver": "kmod"}))

    assert out.unit_status == testing.BlockedStatus(
        "driver kmod: the Falco payload has no kmod driver sources (usr/src/falco-*); "
        "try driver=modern_ebpf"
    )


# What the real Falco 0.44.1 printed when its modern probe could not be opened (test_journal).
MODERN_EBPF_FAILURE = [
    "2026-12-05T11:47:45+0000: [libs]: libpman: unable to bump RLIMIT_MEMLOCK to RLIM_INFINITY "
    "(errno: 1 | message: Operation not permitted)",
    "2026-12-05T11:47:45+0000: An error occurred in an event source, forcing termination...",
    "Error: unable to configure the libpman state.",
]
KMOD_FAILURE = [
    "Error: error opening device /dev/falco0. Make sure you have root credentials and that the "
    "falco module is loaded: No such file or directory",
]
MEMLOCK = (
    "the modern_ebpf probe cannot raise its locked-memory limit (RLIMIT_MEMLOCK): libpman: "
    "unable to bump RLIMIT_MEMLOCK to RLIM_INFINITY (errno: 1 | message: Operation not permitted)"
)


def test_status_names_why_falco_failed_from_its_journal(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: modern_ebpf, which --dry-run accepts, fails when Falco opens it. act: install.

    assert: the status names the cause from Falco's own lines in the unit's journal.
    """
    machine.set_knob("systemd", "fail_start", True)
    machine.set_knob("systemd", "fail_output", MODERN_EBPF_FAILURE)

    out = ctx.run(ctx.on.install(), state)

    assert out.unit_status == testing.BlockedStatus(
        f"Falco is not running (systemd restarts it, 0 restarts so far): {MEMLOCK} "
        "(`journalctl -u juju-falco`)"
    )
    assert machine.calls("journalctl") == [
        ["-u", "juju-falco", "-n", "50", "-o", "cat", "--no-pager"]
    ]


def test_auto_falls_back_to_kmod_once_when_modern_ebpf_fails_at_start(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: driver=auto; the modern probe fails when Falco opens it. act: install, hooks.

    assert: the next hook reads the cause, builds the module and restarts Falco on kmod
    once, and says so; later hooks change nothing.
    """
    machine.set_knob("systemd", "fail_start", True)
    machine.set_knob("systemd", "fail_output", MODERN_EBPF_FAILURE)
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, config={"driver": "auto"}))
    assert engine(machine) == "modern_ebpf"
    machine.set_knob("systemd", "fail_start", False)
    machine.clear_calls()

    out = ctx.run(ctx.on.update_status(), out)

    assert engine(machine) == "kmod"
    assert "ExecStartPre=+" in unit_text(machine)
    assert machine.restarts() == 1
    assert machine.unit()["active"] is True
    assert out.unit_status == testing.ActiveStatus(
        f"driver auto runs kmod: modern_ebpf failed at start ({MEMLOCK})"
    )
    machine.clear_calls()
    before = machine.files()
    out = ctx.run(ctx.on.update_status(), out)
    assert (machine.restarts(), changed_files(before, machine.files())) == (0, 0)
    assert machine.calls("journalctl") == []


def test_auto_does_not_alternate_when_kmod_fails_too(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: driver=auto; modern_ebpf fails at start, then kmod fails too. act: hooks.

    assert: one switch to kmod, never back; the status names kmod's failure; setting
    driver=auto again after another value tries modern_ebpf again.
    """
    machine.set_knob("systemd", "fail_start", True)
    machine.set_knob("systemd", "fail_output", MODERN_EBPF_FAILURE)
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, config={"driver": "auto"}))
    out = ctx.run(ctx.on.update_status(), out)
    assert engine(machine) == "kmod"
    machine.set_knob("systemd", "fail_output", KMOD_FAILURE)
    machine.crash()

    for _ in range(3):
        out = ctx.run(ctx.on.update_status(), out)
        assert engine(machine) == "kmod"
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "the Falco kernel module is not loaded" in out.unit_status.message

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"driver": "kmod"}))
    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"driver": "auto"}))
    assert engine(machine) == "modern_ebpf"


def test_long_steps_are_said_in_the_status_while_they_run(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: a fresh machine, driver=kmod. act: install, then update-status.

    assert: each long step showed as a maintenance status before it ran, in order; a hook
    that runs none shows none.
    """
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, config={"driver": "kmod"}))

    steps = [s.message for s in ctx.unit_status_history if s.name == "maintenance"]
    assert len(steps) == 4
    assert steps[0].startswith("unpacking the Falco payload (") and steps[0].endswith(
        " MB, bundled)"
    )
    assert steps[1:] == [
        "installing dkms and linux-headers-6.8.0-45-generic with apt",
        "building the Falco kernel module for 6.8.0-45-generic (dkms)",
        "validating falco.yaml with Falco",
    ]
    ctx.unit_status_history.clear()
    ctx.run(ctx.on.update_status(), out)
    assert [s for s in ctx.unit_status_history if s.name == "maintenance"] == []
