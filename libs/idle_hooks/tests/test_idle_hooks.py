"""Tests of idle hooks: which hooks may skip everything, and statuses set only when new."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import idle_hooks
import ops
import pytest
from ops import testing

META = {
    "name": "idle",
    "requires": {"db": {"interface": "db"}, "other": {"interface": "other"}},
}
CONFIG = {"options": {"level": {"type": "string", "default": "low"}}}


class Clock:
    """A clock the tests move."""

    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class IdleCharm(ops.CharmBase):
    """Reconciles on every event unless idle; the workload's facts come from a class field."""

    clock = Clock()
    facts: str | None = "running"
    polled: str | None = "10.0.0.1"
    status: ops.StatusBase = ops.ActiveStatus()
    converge = True
    until: float | None = None
    # Juju names no remote unit when the application's bag changed; ops.testing always does.
    application_level = False
    reconciled: list[str] = []

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        environ = dict(os.environ)
        if type(self).application_level:
            environ.pop("JUJU_REMOTE_UNIT", None)
        self.idle = idle_hooks.IdleHooks(self, ("db",), self.clock, environ)
        self.memo = idle_hooks.StatusMemo(self)
        if self.idle.holds(lambda: type(self).facts, lambda: type(self).polled):
            return
        for event in (
            self.on.update_status,
            self.on.config_changed,
            self.on["db"].relation_changed,
            self.on["db"].relation_broken,
            self.on["other"].relation_changed,
        ):
            framework.observe(event, self._reconcile)
        framework.observe(self.on.collect_unit_status, self._collect)

    def _reconcile(self, event: ops.EventBase) -> None:
        self.idle.begin()
        type(self).reconciled.append(type(event).__name__)

    def _collect(self, event: ops.CollectStatusEvent) -> None:
        self.memo.settle(event, [ops.ActiveStatus(), type(self).status])
        if type(self).converge:
            self.idle.converged(type(self).facts, type(self).polled, type(self).until)


@pytest.fixture
def ctx() -> testing.Context[IdleCharm]:
    IdleCharm.clock.now = 1_000_000.0
    IdleCharm.facts, IdleCharm.polled = "running", "10.0.0.1"
    IdleCharm.status, IdleCharm.converge = ops.ActiveStatus(), True
    IdleCharm.application_level = False
    IdleCharm.until = None
    IdleCharm.reconciled = []
    return testing.Context(IdleCharm, meta=META, config=CONFIG)


def db(**units: dict[str, str]) -> testing.Relation:
    data = {int(name.removeprefix("u")): bag for name, bag in units.items()}
    return testing.Relation("db", remote_app_name="remote", id=7, remote_units_data=data)


def converged(ctx: testing.Context[IdleCharm], **kwargs: Any) -> testing.State:
    """Return the state after one full reconcile (config-changed)."""
    out = ctx.run(ctx.on.config_changed(), testing.State(**kwargs))
    IdleCharm.reconciled = []
    return out


def test_update_status_after_a_converged_reconcile_is_idle(ctx: testing.Context[IdleCharm]):
    """arrange: converged unit. act: update-status. assert: no handler, no status set."""
    out = converged(ctx)

    again = ctx.run(
        ctx.on.update_status(), dataclasses.replace(out, unit_status=testing.UnknownStatus())
    )

    assert IdleCharm.reconciled == []
    assert again.unit_status == testing.UnknownStatus()  # nothing set


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda: setattr(IdleCharm, "facts", "stopped"), id="workload facts"),
        pytest.param(lambda: setattr(IdleCharm, "polled", "10.0.0.2"), id="polled address"),
        pytest.param(lambda: setattr(IdleCharm.clock, "now", 1_000_000.0 + 3600), id="an hour"),
        pytest.param(lambda: setattr(IdleCharm.clock, "now", 999_000.0), id="clock went back"),
    ],
)
def test_update_status_reconciles_when_something_moved(ctx: testing.Context[IdleCharm], change):
    """arrange: converged unit. act: facts, address or time move; update-status. assert: full."""
    out = converged(ctx)
    change()

    ctx.run(ctx.on.update_status(), out)

    assert IdleCharm.reconciled == ["UpdateStatusEvent"]


def test_polled_facts_are_looked_at_on_config_changed_not_on_relation_changed(
    ctx: testing.Context[IdleCharm],
):
    """arrange: converged, db data acted on; address moves. act: db changed, config. assert."""
    relation = db(u0={"k": "1"})
    out = converged(ctx, relations={relation})
    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), out)
    IdleCharm.reconciled = []
    IdleCharm.polled = "10.0.0.2"

    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), out)
    ctx.run(ctx.on.config_changed(), out)

    assert IdleCharm.reconciled == ["ConfigChangedEvent"]


def test_nothing_is_idle_once_a_schedule_falls_due(ctx: testing.Context[IdleCharm]):
    """arrange: converged, something due in 10 minutes. act: update-status at 5, 10. assert."""
    IdleCharm.until = IdleCharm.clock.now + 600
    out = converged(ctx)

    IdleCharm.clock.now += 300
    out = ctx.run(ctx.on.update_status(), out)
    IdleCharm.clock.now += 300
    ctx.run(ctx.on.update_status(), out)

    assert IdleCharm.reconciled == ["UpdateStatusEvent"]


def test_a_status_shown_during_a_step_is_replaced_by_the_same_collected_one(
    ctx: testing.Context[IdleCharm],
):
    """arrange: converged active. act: a hook shows maintenance, collects active. assert."""
    out = converged(ctx)
    IdleCharm.clock.now += 3600

    def step(charm: IdleCharm) -> None:
        charm.memo.show(ops.MaintenanceStatus("syncing"))

    with ctx(ctx.on.update_status(), out) as manager:
        step(manager.charm)
        after = manager.run()

    assert after.unit_status == testing.ActiveStatus()


def test_leadership_change_reconciles(ctx: testing.Context[IdleCharm]):
    """arrange: converged follower. act: update-status as leader. assert: full reconcile."""
    out = converged(ctx, leader=False)

    ctx.run(ctx.on.update_status(), dataclasses.replace(out, leader=True))

    assert IdleCharm.reconciled == ["UpdateStatusEvent"]


def test_config_changed_is_idle_only_with_the_same_options(ctx: testing.Context[IdleCharm]):
    """arrange: converged unit. act: config-changed same, then other. assert: one reconcile."""
    out = converged(ctx)

    out = ctx.run(ctx.on.config_changed(), out)
    ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"level": "high"}))

    assert IdleCharm.reconciled == ["ConfigChangedEvent"]


def test_relation_changed_is_idle_only_with_the_bag_it_acted_on(ctx: testing.Context[IdleCharm]):
    """arrange: converged. act: db changed from u0 thrice (new, same, other). assert: 2 full."""
    relation = db(u0={"k": "1"})
    out = converged(ctx, relations={relation})

    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), out)
    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), out)
    moved = dataclasses.replace(relation, remote_units_data={0: {"k": "2"}})
    ctx.run(
        ctx.on.relation_changed(moved, remote_unit=0), dataclasses.replace(out, relations={moved})
    )

    assert IdleCharm.reconciled == ["RelationChangedEvent", "RelationChangedEvent"]


def test_relation_changed_of_the_application_reads_its_bag(ctx: testing.Context[IdleCharm]):
    """arrange: converged. act: app-level db changed twice, then new app data. assert: 2 full."""
    IdleCharm.application_level = True
    relation = dataclasses.replace(db(u0={"k": "1"}), remote_app_data={"a": "1"})
    out = converged(ctx, relations={relation})

    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), out)
    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), out)
    moved = dataclasses.replace(relation, remote_app_data={"a": "2"})
    state = dataclasses.replace(out, relations={moved})
    ctx.run(ctx.on.relation_changed(moved, remote_unit=0), state)

    assert IdleCharm.reconciled == ["RelationChangedEvent", "RelationChangedEvent"]


def test_relation_changed_on_other_endpoints_is_never_idle(ctx: testing.Context[IdleCharm]):
    """arrange: converged, related on 'other'. act: same change twice. assert: both full."""
    relation = testing.Relation("other", remote_units_data={0: {"k": "1"}})
    out = converged(ctx, relations={relation})

    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), out)
    ctx.run(ctx.on.relation_changed(relation, remote_unit=0), out)

    assert IdleCharm.reconciled == ["RelationChangedEvent", "RelationChangedEvent"]


def test_broken_relation_forgets_its_bags(ctx: testing.Context[IdleCharm]):
    """arrange: db data acted on. act: db broken. assert: its bags leave the record."""
    relation = db(u0={"k": "1"})
    out = converged(ctx, relations={relation})
    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), out)

    out = ctx.run(ctx.on.relation_broken(relation), out)

    (stored,) = (s for s in out.stored_states if s.owner_path == "IdleCharm/IdleHooks[idle-hooks]")
    assert dict(stored.content["bags"]) == {}


def test_reconcile_that_did_not_converge_leaves_no_record(ctx: testing.Context[IdleCharm]):
    """arrange: converged. act: a reconcile that does not converge, then update-status. assert."""
    out = converged(ctx)
    IdleCharm.converge = False

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"level": "x"}))
    ctx.run(ctx.on.update_status(), out)

    assert IdleCharm.reconciled == ["ConfigChangedEvent", "UpdateStatusEvent"]


def test_status_is_set_only_when_it_changes(ctx: testing.Context[IdleCharm]):
    """arrange: active unit. act: same status, then blocked, then forgotten. assert: set twice."""
    out = converged(ctx)
    IdleCharm.clock.now += 3600  # every hook below reconciles

    unset = dataclasses.replace(out, unit_status=testing.UnknownStatus())
    same = ctx.run(ctx.on.update_status(), unset)
    IdleCharm.status = ops.BlockedStatus("fix 'level'")
    blocked = ctx.run(ctx.on.update_status(), unset)

    assert same.unit_status == testing.UnknownStatus()
    assert blocked.unit_status == testing.BlockedStatus("fix 'level'")


def test_highest_status_is_the_first_of_the_highest_priority():
    """arrange: statuses of several levels. act: highest. assert: ops' order, first of equals."""
    statuses = [
        ops.ActiveStatus(),
        ops.WaitingStatus("w1"),
        ops.BlockedStatus("b1"),
        ops.BlockedStatus("b2"),
        ops.MaintenanceStatus("m"),
    ]

    assert idle_hooks.highest(statuses) == ops.BlockedStatus("b1")
    assert idle_hooks.highest([]) is None


def test_main_keeps_framework_debug_lines_off_juju_log(monkeypatch: pytest.MonkeyPatch):
    """arrange: ops.main replaced. act: main without and with JUJU_DEBUG. assert: filters."""
    ran: list[type[ops.CharmBase]] = []
    monkeypatch.setattr(ops, "main", ran.append)
    root, framework = logging.getLogger(), logging.getLogger("ops")
    monkeypatch.setattr(root, "filters", [])
    monkeypatch.setattr(framework, "level", logging.NOTSET)
    ops_line = logging.LogRecord("root", logging.DEBUG, ops.__file__, 1, "up", None, None)
    charm_line = logging.LogRecord("charm", logging.DEBUG, __file__, 1, "mine", None, None)

    idle_hooks.main(IdleCharm, environ={"JUJU_DEBUG": "1"})
    assert root.filter(ops_line)
    idle_hooks.main(IdleCharm, environ={})

    assert ran == [IdleCharm, IdleCharm]
    assert not root.filter(ops_line)
    assert root.filter(charm_line)
    assert framework.level == logging.INFO
