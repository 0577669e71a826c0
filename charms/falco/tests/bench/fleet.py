"""A fleet of Falco units, one machine each, hearing that the sidekick's URL changed.

Then every unit is related to a CA (``certificates``): it asks for its client certificate,
gets it (one restart each, to present it), and hears the same certificate again (nothing).

One sidekick config change (its port) changes the URL it publishes on http-endpoint; every
Falco unit then gets relation-changed. Each unit is its own Juju unit (``falco/<n>``, its
own ops.testing state) on its own machine (its own root and fake systemd state), so what one
unit does cannot hide in another's counts.

The machines are mounted in turn at one path, as a disk is mounted at ``/``: a unit's files
name absolute paths under the machine root, so every machine must sit at the same place.
Installing 200 machines through the charm would take minutes, so each machine starts as a
copy of the one installed unit with its unit name put in the alert fields (the only thing
that differs between units); for a few sampled units the bench also installs a machine
through the charm and requires it to be identical to the copy, file for file, or it fails.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from bench_support import EventStats
from charm import FalcoCharm
from falco_rig import answered, only
from machine import FakeMachine
from ops import testing
from tls_material import make_ca

UNITS = 200
# Checked against an install through the charm (unit 0 is that install itself).
SAMPLED = (1, UNITS // 2, UNITS - 1)
OLD_URL = "https://falcosidekick.example:2801/"
NEW_URL = "https://falcosidekick.example:2901/"
SIDEKICK = "falcosidekick-k8s"
MODEL = testing.Model(name="fleet", uuid="00000000-0000-4000-8000-0000000f1ee7", type="lxd")
ONE_RESTART = {"restarts": 1, "reloads": 0, "relation_writes": 0}
NOTHING = dict.fromkeys(("restarts", "reloads", "file_writes", "relation_writes"), 0)
UNIT_FIELD = "juju_unit: falco/{}\n"
AGENTS = "var/lib/juju/agents"
OWNER = "var/lib/juju-falco/owner.json"
REGISTRATIONS = "var/lib/juju-falco/units"
STEADY = "var/lib/juju-falco/steady.json"


class FleetError(RuntimeError):
    """A unit of the fleet did not do exactly what the bench requires."""


def _relation(url: str, ca_pem: str) -> testing.Relation:
    data = {"url": json.dumps(url), "ca_cert": json.dumps(ca_pem)}
    return testing.Relation("http-endpoint", remote_app_name=SIDEKICK, remote_app_data=data)


def _contents(machine: Path) -> dict[str, Any]:
    """Return every path's mode and content, and the fake systemd's view, to compare."""
    root = machine / "root"
    systemd = json.loads((machine / "state/systemd.json").read_text())
    # When each journal line was logged (for journalctl --since) differs from machine to
    # machine; the lines themselves are compared.
    systemd.pop("journal_times", None)
    found: dict[str, Any] = {"<systemd>": systemd}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            content: Any = f"-> {path.readlink()}"
        else:
            content = None if path.is_dir() else path.read_bytes()
        found[str(path.relative_to(root))] = (path.lstat().st_mode, content)
    return found


class Fleet:
    """Machines kept under ``store``, mounted one at a time at the host machine's paths."""

    def __init__(self, host: FakeMachine, store: Path, charm_root: Path, resource: Any):
        self.host = host
        self.store = store
        self.charm_root = charm_root
        self.resource = resource
        # The machine before the charm arrives: what every installed unit starts from.
        self.blank = store / "blank"
        self.blank.mkdir(parents=True)
        host.root.rename(self.blank / "root")
        host.state.rename(self.blank / "state")

    def saved(self, unit: int) -> Path:
        """Where the machine of ``unit`` is kept while another one is mounted."""
        return self.store / f"unit-{unit}"

    def mount(self, unit: int) -> None:
        """Put the machine of ``unit`` at the host's root and fake-tool state."""
        saved = self.saved(unit)
        (saved / "root").rename(self.host.root)
        (saved / "state").rename(self.host.state)

    def unmount(self, unit: int) -> None:
        """Put the mounted machine back where ``unit``'s machine is kept."""
        saved = self.saved(unit)
        saved.mkdir(exist_ok=True)
        self.host.root.rename(saved / "root")
        self.host.state.rename(saved / "state")

    def context(self, unit: int) -> testing.Context[FalcoCharm]:
        """Return the ops.testing context of ``falco/<unit>``."""
        return testing.Context(FalcoCharm, charm_root=self.charm_root, unit_id=unit)

    def state(self, relation: testing.Relation) -> testing.State:
        """Return a unit's Juju state: related to the sidekick, in the fleet's model."""
        return testing.State(model=MODEL, relations={relation}, resources={self.resource})

    def install(self, unit: int, relation: testing.Relation) -> None:
        """Install ``unit`` through the charm on a new machine, related to the sidekick."""
        shutil.copytree(self.blank / "root", self.host.root, symlinks=True)
        shutil.copytree(self.blank / "state", self.host.state)
        # The unit's own Juju agent directory, the only one on its machine (ownership).
        agents = self.host.root / AGENTS
        (agents / "unit-falco-0").rename(agents / f"unit-falco-{unit}")
        ctx = self.context(unit)
        out = ctx.run(ctx.on.install(), self.state(relation))
        self.unmount(unit)
        if out.unit_status != testing.ActiveStatus():
            raise FleetError(f"falco/{unit} did not install: {out.unit_status}")
        (self.saved(unit) / "state/calls.jsonl").unlink(missing_ok=True)

    def copy(self, unit: int, into: Path) -> None:
        """Lay out ``unit``'s machine as a copy of unit 0's, with its own unit name."""
        source = self.saved(0)
        shutil.copytree(source / "root", into / "root", symlinks=True)
        shutil.copytree(source / "state", into / "state")
        falco_yaml = into / "root/etc/juju-falco/falco.yaml"
        text = falco_yaml.read_text()
        if text.count(UNIT_FIELD.format(0)) != 1:
            raise FleetError("unit 0's falco.yaml does not name its unit exactly once")
        falco_yaml.write_text(text.replace(UNIT_FIELD.format(0), UNIT_FIELD.format(unit)))
        # What the fake systemd's Falco read at its start: that falco.yaml.
        systemd_json = into / "state/systemd.json"
        systemd = json.loads(systemd_json.read_text())
        sha = hashlib.sha256(falco_yaml.read_bytes()).hexdigest()
        systemd["units"]["juju-falco.service"]["falco_files"]["config"] = [["falco.yaml", sha]]
        systemd_json.write_text(json.dumps(systemd, indent=1, sort_keys=True))
        # Which unit runs Falco there, and the unit's registration and agent directory.
        root = into / "root"
        (root / AGENTS / "unit-falco-0").rename(root / AGENTS / f"unit-falco-{unit}")
        registration = root / REGISTRATIONS / "falco-0"
        for record in (root / OWNER, registration):
            record.write_text(record.read_text().replace('"falco/0"', f'"falco/{unit}"'))
        registration.rename(registration.with_name(f"falco-{unit}"))
        # The digest of what unit 0 converged from names unit 0: a copy goes without it,
        # which only sends its first hook down the full path (that hook changes the URL).
        (root / STEADY).unlink()

    def check_copy(self, unit: int) -> None:
        """Fail unless the machine installed for ``unit`` equals a copy made for it."""
        copy = self.store / f"copy-{unit}"
        self.copy(unit, copy)
        installed, copied = _contents(self.saved(unit)), _contents(copy)
        installed.pop(STEADY)
        shutil.rmtree(copy)
        if installed != copied:
            differ = sorted(
                key for key in {*installed, *copied} if installed.get(key) != copied.get(key)
            )
            raise FleetError(f"falco/{unit}: a copied machine would differ in {differ}")


def fleet_sequences(bench: Any, ca_pem: str) -> dict[str, list[EventStats]]:
    """The URL change, then the client certificates, on the same fleet (module docstring)."""
    fleet, states, url_change = _url_change(bench, ca_pem)
    certificates = _client_certificates(bench, fleet, states)
    return {
        f"{UNITS} units, sidekick URL changed": url_change,
        f"{UNITS} units, client certificates arrive": certificates,
    }


def _client_certificates(
    bench: Any, fleet: Fleet, states: dict[int, testing.State]
) -> list[EventStats]:
    """Every unit asks for a client certificate, gets it (one restart), hears it again."""
    ca = make_ca("Client CA")
    # The tls-certificates library (1.12) clears the unit bag before it writes the CSR: it
    # deletes Juju's three address keys, one relation-set each, then sets the CSR. Juju
    # commits a hook's relation-sets at its end: the CA sees one change.
    asked = {"restarts": 0, "reloads": 0, "relation_writes": 4}
    requested = EventStats(
        f"certificates-relation-created, {UNITS} units",
        expect={key: value * UNITS for key, value in asked.items()},
    )
    issued = EventStats(
        f"certificates-relation-changed (certificate issued), {UNITS} units",
        expect={"restarts": UNITS, "reloads": 0, "relation_writes": 0},
    )
    again = EventStats(
        f"certificates-relation-changed (same certificate again), {UNITS} units", noop=True
    )
    for unit in range(UNITS):
        relation = testing.Relation("certificates", remote_app_name="self-signed-certificates")
        state = dataclasses.replace(states[unit], relations={*states[unit].relations, relation})
        states[unit] = _run(bench, fleet, unit, requested, asked, state, "created", relation)
    for stats, per_unit in ((issued, ONE_RESTART), (again, NOTHING)):
        for unit in range(UNITS):
            state = states[unit]
            if stats is issued:
                answer = answered(only(state, "certificates"), ca)
                relations = {r for r in state.relations if r.id != answer.id} | {answer}
                state = dataclasses.replace(state, relations=relations)
            relation = only(state, "certificates")
            states[unit] = _run(bench, fleet, unit, stats, per_unit, state, "changed", relation)
    return [requested, issued, again]


def _run(
    bench: Any,
    fleet: Fleet,
    unit: int,
    stats: EventStats,
    per_unit: dict[str, int],
    state: testing.State,
    kind: str,
    relation: testing.Relation,
) -> testing.State:
    """Dispatch relation-<kind> of ``relation`` on ``unit``; fail unless it did ``per_unit``."""
    bench.ctx = fleet.context(unit)
    if kind == "created":
        event = bench.ctx.on.relation_created(relation)
    else:
        event = bench.ctx.on.relation_changed(relation, remote_unit=0)
    before = dict(stats.counts)
    fleet.mount(unit)
    bench.dispatch(stats, lambda: event, state)
    fleet.unmount(unit)
    did = {key: stats.counts.get(key, 0) - before.get(key, 0) for key in per_unit}
    if did != per_unit:
        raise FleetError(f"falco/{unit} did {did} on {stats.event}, not {per_unit}")
    result: testing.State = bench.state
    return result


def _url_change(
    bench: Any, ca_pem: str
) -> tuple[Fleet, dict[int, testing.State], list[EventStats]]:
    """Every unit hears the new URL (one restart each), then hears it again (nothing)."""
    (resource,) = bench.state.resources
    fleet = Fleet(bench.machine, bench.machine.base / "fleet", bench.charm_root, resource)
    old = _relation(OLD_URL, ca_pem)
    fleet.install(0, old)
    for unit in range(1, UNITS):
        if unit in SAMPLED:
            fleet.install(unit, old)
            fleet.check_copy(unit)
        else:
            fleet.copy(unit, fleet.saved(unit))
    new = _relation(NEW_URL, ca_pem)
    changed = EventStats(
        f"http-endpoint-relation-changed (new URL), {UNITS} units",
        expect={"restarts": UNITS, "reloads": 0, "relation_writes": 0},
    )
    again = EventStats(
        f"http-endpoint-relation-changed (same URL again), {UNITS} units", noop=True
    )
    states = {unit: fleet.state(new) for unit in range(UNITS)}
    for stats, per_unit in ((changed, ONE_RESTART), (again, NOTHING)):
        for unit in range(UNITS):
            bench.ctx = fleet.context(unit)
            event = bench.ctx.on.relation_changed(new, remote_unit=0)
            before = dict(stats.counts)
            fleet.mount(unit)
            bench.dispatch(stats, lambda: event, states[unit])  # noqa: B023
            fleet.unmount(unit)
            states[unit] = bench.state
            did = {key: stats.counts[key] - before.get(key, 0) for key in per_unit}
            if did != per_unit:
                raise FleetError(f"falco/{unit} did {did} on {stats.event}, not {per_unit}")
    return fleet, states, [changed, again]
