"""Another program on Falco's metrics port, another Falco on the machine.

The machine's /proc is the fake machine's, laid out as Linux lays it out (machine.py
``add_process``); tests/component/test_coexistence.py reads the real one.
"""

from __future__ import annotations

import dataclasses

from charm import FalcoCharm
from machine import FakeMachine
from ops import testing

PACKAGE_FALCO = (777, "falco", "/usr/bin/falco")
TAKEN = (
    "metrics-port 8765 is also served by falco (pid 777, /usr/bin/falco): set metrics-port "
    "to a free port"
)
ANOTHER_FALCO = (
    "another Falco runs on this machine: falco (pid 777, /usr/bin/falco); the charm runs its "
    "own (juju-falco.service) and leaves that one alone"
)


def test_a_packaged_falco_on_the_port_blocks_the_start_until_the_port_moves(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: a packaged Falco serves 8765. act: install; then metrics-port=9100.

    assert: not started, Blocked naming metrics-port and the other process (both Falcos
    would share the port and scrapes would alternate); with a free port, started once, and
    the other Falco is still mentioned.
    """
    machine.add_process(*PACKAGE_FALCO, listen_port=8765)

    out = ctx.run(ctx.on.install(), state)

    assert machine.restarts() == 0
    assert out.unit_status == testing.BlockedStatus(TAKEN)
    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"metrics-port": 9100}))
    assert machine.restarts() == 1
    assert out.unit_status == testing.ActiveStatus(ANOTHER_FALCO)


def test_falcos_own_listener_is_not_a_conflict(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco installed, listening on its port. act: update-status. assert: Active."""
    out = ctx.run(ctx.on.install(), state)
    pid = int(machine.show("MainPID")["MainPID"])
    payload = next((machine.root / "opt/juju-falco").iterdir())
    machine.add_process(pid, "falco", str(payload / "usr/bin/falco"), listen_port=8765)

    out = ctx.run(ctx.on.update_status(), out)

    assert out.unit_status == testing.ActiveStatus(
        "alerts stay on this host: integrate http-endpoint"
    )


def test_a_program_joining_the_port_later_is_named_and_a_restart_waits(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco running; then a program listens on 8765 over IPv6. act: hooks.

    assert: Blocked naming it; a change that needs a restart is not applied (Falco is not
    stopped); moving metrics-port applies at once.
    """
    out = ctx.run(ctx.on.install(), state)
    machine.add_process(4242, "node_exporter", "/usr/bin/node_exporter", 8765, ipv6=True)
    machine.clear_calls()

    out = ctx.run(ctx.on.update_status(), out)
    taken = (
        "metrics-port 8765 is also served by node_exporter (pid 4242, /usr/bin/node_exporter): "
        "set metrics-port to a free port"
    )
    assert out.unit_status == testing.BlockedStatus(taken)
    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(out, config={"buffer-size-preset": 5})
    )
    assert "stop" not in machine.systemctl_verbs()
    assert machine.unit()["active"] is True
    assert out.unit_status == testing.BlockedStatus(taken)

    out = ctx.run(
        ctx.on.config_changed(),
        dataclasses.replace(out, config={"buffer-size-preset": 5, "metrics-port": 9100}),
    )
    assert machine.restarts() == 1
    assert out.unit_status.name == "active"


def test_a_stopped_falco_is_not_started_onto_a_taken_port(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco stopped, another Falco on its port. act: update-status. assert: waits."""
    out = ctx.run(ctx.on.install(), state)
    machine.stop_by_hand()
    machine.add_process(*PACKAGE_FALCO, listen_port=8765)
    machine.clear_calls()

    out = ctx.run(ctx.on.update_status(), out)

    assert machine.restarts() == 0
    assert out.unit_status == testing.BlockedStatus(TAKEN)
