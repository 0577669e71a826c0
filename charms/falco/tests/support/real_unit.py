"""The charm on a FakeMachine with the REAL Falco tarball as its payload.

Only systemd (and git's network, unless a test removes the fake git) stays fake: the charm
unpacks the real release tarball, asks the real ``falco`` for its version, validates rules
with the real ``-V`` and the rendered falco.yaml with the real ``--dry-run``. The tests then
run the real Falco themselves on what the charm left live (``real_falco.py``).

A unit lives for a whole scenario group (a test module), so its environment is patched with
a ``MonkeyPatch`` context rather than the function-scoped ``monkeypatch`` fixture.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import payload
import pytest
import yaml
from charm import FalcoCharm
from layout import Layout
from machine import FakeMachine
from ops import testing
from real_falco import Falco
from topology import MODEL_NAME, MODEL_UUID

MODEL = testing.Model(name=MODEL_NAME, uuid=MODEL_UUID)
# The topology every alert and rule of the unit carries (append_output extra_fields).
UNIT_TOPOLOGY = {
    "juju_unit": "falco/0",
    "juju_application": "falco",
    "juju_model": MODEL_NAME,
    "juju_model_uuid": MODEL_UUID,
    "juju_charm": "falco",
}


@dataclass(frozen=True)
class ActionOutcome:
    """What a ``refresh-rules`` run returned: its results and, if it failed, why."""

    results: dict[str, Any]
    failure: str | None
    state: testing.State


@dataclass
class RealUnit:
    """One falco unit, its machine, and the state the last hook left."""

    ctx: testing.Context[FalcoCharm]
    machine: FakeMachine
    state: testing.State

    @property
    def layout(self) -> Layout:
        """Where the charm's files are on the machine."""
        return Layout(self.machine.root)

    @property
    def config_file(self) -> Path:
        """The live falco.yaml."""
        return self.layout.config_file

    def live_config(self) -> dict[str, Any]:
        """Return the live falco.yaml as data."""
        data: dict[str, Any] = yaml.safe_load(self.config_file.read_text())
        return data

    @property
    def payload(self) -> payload.Payload:
        """The unpacked payload the charm runs."""
        current = payload.installed(self.layout)
        assert current is not None, "the charm has no payload"
        return current

    @property
    def falco(self) -> Falco:
        """The real falco binary of the charm's payload."""
        return Falco(self.payload.falco_binary)

    @property
    def status(self) -> testing.UnitStatus:
        """The unit status the last hook set."""
        return self.state.unit_status

    def run(self, event: Any, state: testing.State | None = None) -> testing.State:
        """Dispatch ``event`` on ``state`` (the last one by default); keep the result."""
        self.state = self.ctx.run(event, state or self.state)
        return self.state

    def install(self, **options: Any) -> testing.State:
        """Install with exactly ``options`` set."""
        return self.run(self.ctx.on.install(), dataclasses.replace(self.state, config=options))

    def configure(self, **options: Any) -> testing.State:
        """Run config-changed with exactly ``options`` set."""
        state = dataclasses.replace(self.state, config=options)
        return self.run(self.ctx.on.config_changed(), state)

    def relate(self, relation: testing.RelationBase) -> testing.State:
        """Add ``relation`` (replacing one of the same endpoint) and run relation-changed."""
        others = {r for r in self.state.relations if r.endpoint != relation.endpoint}
        state = dataclasses.replace(self.state, relations={*others, relation})
        return self.run(self.ctx.on.relation_changed(relation), state)

    def refresh_rules(self) -> ActionOutcome:
        """Run the refresh-rules action; return its results and failure message, if any."""
        try:
            self.state = self.ctx.run(self.ctx.on.action("refresh-rules"), self.state)
            failure = None
        except testing.ActionFailed as failed:
            self.state = failed.state
            failure = failed.message
        return ActionOutcome(dict(self.ctx.action_results or {}), failure, self.state)


def prepare_charm_root(root: Path, tarball: Path) -> Path:
    """Make ``root`` a charm directory whose bundled payload is ``tarball``; return it."""
    (root / "payload").mkdir(parents=True, exist_ok=True)
    bundled = root / "payload" / "falco.tar.gz"
    bundled.unlink(missing_ok=True)
    bundled.symlink_to(tarball)
    return root


@contextmanager
def real_unit(
    base: Path, charm_root: Path, real_git: bool = False, real_metrics: bool = False
) -> Iterator[RealUnit]:
    """Yield a unit on a new FakeMachine under ``base``, its environment patched meanwhile.

    With ``real_metrics`` the charm reads what Falco runs from the real Falco's /metrics
    (a test runs one on the unit's metrics-port); otherwise from the fake machine's.
    """
    with pytest.MonkeyPatch.context() as patch:
        machine = FakeMachine(base / "machine")
        if real_git:
            (machine.bin / "git").unlink()  # the real git, straight to a real server
        for key, value in machine.environ().items():
            patch.setenv(key, value)
        patch.setattr(FalcoCharm, "filesystem_root", machine.root)
        if not real_metrics:
            patch.setattr(FalcoCharm, "falco_metrics", staticmethod(machine.falco_metrics))
        # systemd creates the alert log's directory when it starts the unit (LogsDirectory=).
        Layout(machine.root).alert_log_dir.mkdir(parents=True, exist_ok=True)
        # What Charmhub hands out when the operator attached nothing: an empty placeholder.
        placeholder = base / "no-resource" / "falco.tar.gz"
        placeholder.parent.mkdir(parents=True, exist_ok=True)
        placeholder.write_bytes(b"")
        state = testing.State(
            resources={testing.Resource(name="falco", path=placeholder)}, model=MODEL
        )
        yield RealUnit(testing.Context(FalcoCharm, charm_root=charm_root), machine, state)
