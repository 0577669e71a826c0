"""Two falco units on one machine (two principals related to falco): one runs Falco.

Both units run the real charm against the same machine root and the same fake systemd, each
with its own Juju state, the way Juju runs them: one hook at a time.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from charm import FalcoCharm
from charmlibs import systemd
from machine import FakeMachine, changed_files
from ops import testing

CONFIG = "etc/juju-falco/falco.yaml"
RUN_BY = "Falco on this machine is run by {}"
LOCAL_ONLY = testing.ActiveStatus("alerts stay on this host: integrate http-endpoint")


class KilledError(Exception):
    """The hook's process died here (the machine rebooted, the agent was killed)."""


@dataclasses.dataclass
class Unit:
    """One falco unit: its Juju context and the state its last hook left."""

    name: str
    ctx: testing.Context[FalcoCharm]
    state: testing.State

    def run(self, event: Callable[[testing.Context[FalcoCharm]], Any]) -> testing.State:
        self.state = self.ctx.run(event(self.ctx), self.state)
        return self.state

    @property
    def status(self) -> testing.UnitStatus:
        return self.state.unit_status


@dataclasses.dataclass
class Hook:
    """What one hook did on the machine."""

    changed: int
    restarts: int
    reloads: int


@pytest.fixture(name="units")
def units_fixture(
    machine: FakeMachine, charm_root: Path, state: testing.State
) -> tuple[Unit, Unit]:
    machine.deploy_unit("falco/1")
    return tuple(  # type: ignore[return-value]
        Unit(f"falco/{n}", testing.Context(FalcoCharm, charm_root=charm_root, unit_id=n), state)
        for n in (0, 1)
    )


def hook(machine: FakeMachine, unit: Unit, event: Callable[[Any], Any]) -> Hook:
    """Run ``event`` on ``unit``; return what it changed on the machine."""
    machine.clear_calls()
    before = machine.files()
    config_inode = _inode(machine)
    unit.run(event)
    restarts = machine.restarts()
    reloaded = _inode(machine) != config_inode and restarts == 0 and machine.unit()["active"]
    return Hook(changed_files(before, machine.files()), restarts, int(reloaded))


def _inode(machine: FakeMachine) -> int:
    path = machine.root / CONFIG
    return path.stat().st_ino if path.exists() else 0


def alert_unit(machine: FakeMachine) -> str:
    """The unit name Falco's alerts carry (the first extra field)."""
    config = yaml.safe_load((machine.root / CONFIG).read_text())
    return str(config["append_output"][1]["extra_fields"][0]["juju_unit"])


def remove(unit: Unit) -> None:
    """Run the two hooks Juju runs when it removes a unit."""
    unit.run(lambda ctx: ctx.on.stop())
    unit.run(lambda ctx: ctx.on.remove())


def install_both(machine: FakeMachine, units: tuple[Unit, Unit]) -> tuple[Hook, Hook]:
    first, second = units
    return hook(machine, first, lambda c: c.on.install()), hook(
        machine, second, lambda c: c.on.install()
    )


def test_the_second_unit_leaves_falco_to_the_first(
    machine: FakeMachine, units: tuple[Unit, Unit]
) -> None:
    """arrange: two units on one machine. act: install both. assert: one Falco, falco/0's."""
    first, second = units

    one, two = install_both(machine, units)

    assert (one.restarts, two.restarts, two.reloads) == (1, 0, 0)
    # Only its own registration: nothing of Falco.
    assert two.changed == 1
    assert alert_unit(machine) == "falco/0"
    assert first.status == LOCAL_ONLY
    assert second.status == testing.ActiveStatus(RUN_BY.format("falco/0"))


def test_update_status_storm_on_two_units_does_nothing(
    machine: FakeMachine, units: tuple[Unit, Unit]
) -> None:
    """arrange: both installed. act: 20 update-status alternating. assert: nothing at all."""
    install_both(machine, units)

    hooks = [hook(machine, units[n % 2], lambda c: c.on.update_status()) for n in range(20)]

    assert [(h.changed, h.restarts, h.reloads) for h in hooks] == [(0, 0, 0)] * 20
    assert alert_unit(machine) == "falco/0"


def test_the_non_owner_does_not_apply_its_options_and_says_so(
    machine: FakeMachine, units: tuple[Unit, Unit]
) -> None:
    """arrange: both installed. act: other options on the non-owner. assert: said, unused."""
    second = units[1]
    install_both(machine, units)
    config = (machine.root / CONFIG).read_text()
    second.state = dataclasses.replace(second.state, config={"minimum-priority": "error"})

    change = hook(machine, second, lambda c: c.on.config_changed())

    assert (change.changed, change.restarts, change.reloads) == (0, 0, 0)
    assert (machine.root / CONFIG).read_text() == config
    assert second.status == testing.BlockedStatus(
        RUN_BY.format("falco/0") + "; this unit's options differ from its and are not "
        "applied: configure both applications alike"
    )
    with pytest.raises(testing.ActionFailed, match="this unit does not run Falco: falco/0"):
        second.run(lambda c: c.on.action("refresh-rules"))


def test_removing_the_non_owner_removes_nothing(
    machine: FakeMachine, units: tuple[Unit, Unit]
) -> None:
    """arrange: both installed. act: remove falco/1. assert: Falco untouched, still falco/0's."""
    first = units[0]
    install_both(machine, units)
    machine.clear_calls()
    files = machine.files()

    remove(units[1])
    machine.undeploy_unit("falco/1")

    assert machine.restarts() == 0
    assert machine.unit()["active"] is True
    gone = {path for path in files if path not in machine.files()}
    assert gone == {"var/lib/juju-falco/units/falco-1", "var/lib/juju/agents/unit-falco-1"} | {
        "var/lib/juju/agents/unit-falco-1/charm"
    }
    assert hook(machine, first, lambda c: c.on.update_status()).changed == 0


def test_removing_the_owner_hands_falco_over_without_a_gap(
    machine: FakeMachine, units: tuple[Unit, Unit]
) -> None:
    """arrange: both installed. act: remove falco/0, then falco/1's next hook.

    assert: Falco keeps running through the removal with every file in place; the
    survivor takes over with one hot reload (its unit name on the alerts), then idles.
    """
    first, second = units
    install_both(machine, units)
    machine.clear_calls()
    config = (machine.root / CONFIG).read_text()

    remove(first)
    machine.undeploy_unit("falco/0")

    assert machine.systemctl_verbs() == []
    assert (machine.root / CONFIG).read_text() == config
    assert machine.unit()["active"] is True
    takeover = hook(machine, second, lambda c: c.on.update_status())
    assert (takeover.restarts, takeover.reloads) == (0, 1)
    assert alert_unit(machine) == "falco/1"
    assert second.status == LOCAL_ONLY
    idle = hook(machine, second, lambda c: c.on.update_status())
    assert (idle.changed, idle.restarts, idle.reloads) == (0, 0, 0)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_removing_both_removes_everything(
    machine: FakeMachine,
    charm_root: Path,
    state: testing.State,
    order: tuple[int, int],
) -> None:
    """arrange: a machine snapshot, then both installed. act: remove both, in either order.

    assert: the last one removes everything the charm created; the first removes nothing.
    """
    pristine = machine.files()
    machine.deploy_unit("falco/1")
    units = [
        Unit(f"falco/{n}", testing.Context(FalcoCharm, charm_root=charm_root, unit_id=n), state)
        for n in (0, 1)
    ]
    install_both(machine, (units[0], units[1]))

    remove(units[order[0]])
    assert machine.unit()["active"] is True
    machine.undeploy_unit(f"falco/{order[0]}")
    remove(units[order[1]])

    assert machine.unit() | {"loaded": None} == {
        "active": False,
        "enabled": False,
        "failed": False,
        "loaded": None,
    }
    machine.undeploy_unit(f"falco/{order[1]}")
    after = machine.files()
    # Juju's agent directories come and go with the units; nothing else is left.
    assert {path for path in {*pristine, *after} if pristine.get(path) != after.get(path)} == {
        "var/lib/juju/agents/unit-falco-0",
        "var/lib/juju/agents/unit-falco-0/charm",
    }


def test_an_owner_gone_without_its_hooks_is_taken_over(
    machine: FakeMachine, units: tuple[Unit, Unit]
) -> None:
    """arrange: both installed. act: falco/0 vanishes (remove-unit --force); falco/1 hooks.

    assert: nothing is deleted or restarted; falco/1 takes over with one reload.
    """
    _, second = units
    install_both(machine, units)

    machine.undeploy_unit("falco/0")
    takeover = hook(machine, second, lambda c: c.on.update_status())

    assert (takeover.restarts, takeover.reloads) == (0, 1)
    assert alert_unit(machine) == "falco/1"
    assert json.loads((machine.root / "var/lib/juju-falco/owner.json").read_text())["unit"] == (
        "falco/1"
    )


def test_a_hook_killed_between_stop_and_start_is_mended_by_the_owners_next_hook(
    machine: FakeMachine, units: tuple[Unit, Unit], monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: both installed. act: the owner's restart is killed after the stop; hooks.

    assert: the non-owner's hooks leave Falco alone; the owner's next hook starts it once.
    """
    first, second = units
    install_both(machine, units)

    def killed(*_: str) -> bool:
        raise KilledError

    with monkeypatch.context() as patch:
        patch.setattr(systemd, "service_restart", killed)
        first.state = dataclasses.replace(first.state, config={"buffer-size-preset": 5})
        with pytest.raises(testing.errors.UncaughtCharmError):
            first.run(lambda c: c.on.config_changed())
    assert machine.unit()["active"] is False

    other = hook(machine, second, lambda c: c.on.update_status())
    assert (other.changed, other.restarts) == (0, 0)
    mended = hook(machine, first, lambda c: c.on.update_status())
    assert mended.restarts == 1
    assert machine.unit()["active"] is True
    assert first.status == LOCAL_ONLY


def test_a_remove_hook_killed_after_the_handover_is_safe_to_run_again(
    machine: FakeMachine, units: tuple[Unit, Unit], monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: both installed. act: the owner's remove dies after releasing; Juju retries.

    assert: the retry removes nothing; the survivor takes over at its next hook.
    """
    first, second = units
    install_both(machine, units)
    first.run(lambda c: c.on.stop())
    import ownership

    real_leave = ownership.leave

    def leave_then_die(*args: Any) -> bool:
        real_leave(*args)
        raise KilledError

    with monkeypatch.context() as patch:
        patch.setattr(ownership, "leave", leave_then_die)
        with pytest.raises(testing.errors.UncaughtCharmError):
            first.run(lambda c: c.on.remove())
    first.run(lambda c: c.on.remove())
    machine.undeploy_unit("falco/0")

    assert machine.unit()["active"] is True
    takeover = hook(machine, second, lambda c: c.on.update_status())
    assert (takeover.restarts, takeover.reloads) == (0, 1)
    assert alert_unit(machine) == "falco/1"


def test_only_the_owner_tells_the_collector_to_scrape_falco(
    machine: FakeMachine, units: tuple[Unit, Unit]
) -> None:
    """arrange: both installed, both related to a collector. act: cos-agent joined on each.

    assert: the owner publishes the scrape job, rules and dashboards; the other unit an empty
    config (every field present), so the one Falco is not scraped twice under two units.
    """
    install_both(machine, units)
    published = []
    for unit in units:
        collector = testing.Relation(
            "cos-agent", remote_app_name="opentelemetry-collector", remote_units_data={0: {}}
        )
        unit.state = dataclasses.replace(unit.state, relations={collector})
        unit.run(lambda c, r=collector: c.on.relation_joined(r, remote_unit=0))
        (relation,) = unit.state.relations
        published.append(json.loads(relation.local_unit_data["config"]))

    owner, other = published
    assert owner["metrics_scrape_jobs"][0]["static_configs"] == [{"targets": ["localhost:8765"]}]
    assert owner["dashboards"]
    assert other == {
        "metrics_alert_rules": {},
        "log_alert_rules": {},
        "dashboards": [],
        "metrics_scrape_jobs": [],
        "log_slots": [],
        "subordinate": None,
        "tracing_protocols": None,
    }
