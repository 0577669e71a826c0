"""A Falco unit in service to fuzz, and the properties every outcome must have.

A :class:`World` is a settled unit (its state is a fixed point: a no-op hook does nothing) on
a fake machine. The machine stays at one path, because the files the charm renders name
absolute paths under it; after an example that changed anything, the machine (its files and
the fake tools' state) is put back as it was, so examples never see each other's writes.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from charm import FalcoCharm
from falco_rig import FakeClock
from fuzz_support import assert_sane_status
from hypothesis import settings
from machine import FakeMachine, build_payload
from ops import testing
from ops_probes import record_relation_writes

Ctx = testing.Context[FalcoCharm]
READ_ONLY_SYSTEMCTL = ("is-active", "is-failed", "is-enabled", "show", "status")
FALCO_YAML = "etc/juju-falco/falco.yaml"
UNIT_FILE = "etc/systemd/system/juju-falco.service"
CA_FILE = "etc/juju-falco/http-endpoint-ca.pem"
# The charm's own records (sync state, refusals): they may change when input is refused.
RECORDS = "var/lib/juju-falco/"
# A model whose name and uuid stay put between examples (the default is random).
MODEL = testing.Model(name="fuzz", uuid="00000000-0000-4000-8000-00000000f022", type="lxd")


def examples(share: float) -> settings:
    """Return settings running ``share`` of the profile's examples (at least one).

    Hooks that fetch from the repository cost ten times an invalid option, so each test
    asks for its share of the profile (conftest.py) rather than a fixed number.
    """
    assert settings.default is not None
    return settings(max_examples=max(1, round(settings.default.max_examples * share)))


@dataclass
class Outcome:
    """What one dispatch did: the output state, the machine before and after, the calls."""

    out: testing.State
    before: dict[str, Any]
    after: dict[str, Any]
    systemctl: list[list[str]]
    relation_writes: int
    world_state: testing.State
    # falco.yaml as the hook left it.
    rendered: str
    # What the hook left in every file it created or modified.
    written: dict[str, bytes]

    @property
    def changed(self) -> list[str]:
        """Every path created, modified or removed on the machine."""
        keys = {*self.before, *self.after}
        return sorted(key for key in keys if self.before.get(key) != self.after.get(key))

    @property
    def restarts(self) -> int:
        return sum(_verb(argv) in ("start", "restart") for argv in self.systemctl)

    @property
    def service_changes(self) -> list[str]:
        """The systemctl verbs that change something (queries left out)."""
        return [_verb(argv) for argv in self.systemctl if _verb(argv) not in READ_ONLY_SYSTEMCTL]

    @property
    def reloads(self) -> int:
        """Falco's own hot reload: falco.yaml replaced under a running Falco."""
        return int(self.restarts == 0 and FALCO_YAML in self.changed)

    @property
    def refused_as_invalid_config(self) -> bool:
        """Whether the hook stopped at the options: Blocked naming one as invalid."""
        status = self.out.unit_status
        return isinstance(status, testing.BlockedStatus) and status.message.startswith(
            "invalid config"
        )

    def assert_sane(self) -> None:
        """No crash got here; the status is one of four kinds and says why if not Active."""
        assert_sane_status(self.out.unit_status)

    def assert_untouched(self) -> None:
        """Nothing written on the machine or in relation data; Falco not restarted."""
        assert self.changed == []
        assert self.service_changes == []
        self.assert_no_relation_writes()

    def assert_falco_untouched(self) -> None:
        """Falco runs with exactly what it had: only the charm's own records may change."""
        assert [path for path in self.changed if not path.startswith(RECORDS)] == []
        assert self.service_changes == []
        self.assert_no_relation_writes()

    def assert_no_relation_writes(self) -> None:
        assert self.relation_writes == 0
        assert local_data(self.out) == local_data(self.world_state)

    def assert_at_most_one_action(self) -> None:
        """One restart or one reload at most, and either only for a change of Falco's files."""
        assert self.restarts + self.reloads <= 1
        if self.restarts:
            assert {FALCO_YAML, UNIT_FILE, CA_FILE} & set(self.changed), self.changed


def _verb(argv: list[str]) -> str:
    return next(arg for arg in argv if not arg.startswith("-"))


def local_data(state: testing.State) -> dict[int, tuple[dict[str, str], dict[str, str]]]:
    """Return our app and unit bags of every relation, by relation id."""
    return {
        relation.id: (dict(relation.local_app_data), dict(relation.local_unit_data))
        for relation in state.relations
    }


class World:
    """A settled unit on a fake machine, and the machine as it was when settled."""

    def __init__(self, base: Path):
        self.base = base
        self.machine = FakeMachine(base / "machine")
        charm_root = base / "charm"
        build_payload(charm_root / "payload")
        self.ctx: Ctx = testing.Context(FalcoCharm, charm_root=charm_root)
        empty = base / "resource" / "falco.tar.gz"
        empty.parent.mkdir()
        empty.write_bytes(b"")
        self.resource = testing.Resource(name="falco", path=empty)
        self.state = testing.State(model=MODEL, resources={self.resource})
        self.clock = FakeClock()
        self._pristine = base / "pristine"
        self._snapshot: dict[str, Any] = {}

    def __repr__(self) -> str:
        """Keep failure reports short: the world is the same for every example."""
        return f"World({self.base.name})"

    @contextmanager
    def running(self) -> Iterator[World]:
        """Point the charm and the fake tools at this world's machine while in use."""
        with pytest.MonkeyPatch.context() as patch:
            for key, value in self.machine.environ().items():
                patch.setenv(key, value)
            patch.setattr(FalcoCharm, "filesystem_root", self.machine.root)
            patch.setattr(FalcoCharm, "clock", staticmethod(self.clock))
            patch.setattr(FalcoCharm, "falco_metrics", staticmethod(self.machine.falco_metrics))
            yield self

    def settle(self, state: testing.State, event: Callable[[Ctx], Any]) -> None:
        """Dispatch ``event`` on ``state`` and keep the result as the world's fixed point."""
        with self.running():
            out = self.ctx.run(event(self.ctx), state)
            out = self.ctx.run(self.ctx.on.update_status(), out)
        self.state = out
        self._save()
        outcome = self.dispatch(self.ctx.on.update_status(), out)
        assert isinstance(out.unit_status, testing.ActiveStatus), out.unit_status
        outcome.assert_untouched()

    def _save(self) -> None:
        shutil.rmtree(self._pristine, ignore_errors=True)
        self.machine.clear_calls()
        shutil.copytree(self.machine.root, self._pristine / "root", symlinks=True)
        shutil.copytree(self.machine.state, self._pristine / "state", symlinks=True)
        self._snapshot = self._files()

    def _files(self) -> dict[str, Any]:
        found = self.machine.files()
        found["<systemd>"] = self.machine.tool_state("systemd")
        return found

    def _restore(self) -> None:
        for name in ("root", "state"):
            shutil.rmtree(self.machine.base / name)
            shutil.copytree(self._pristine / name, self.machine.base / name, symlinks=True)
        self._snapshot = self._files()

    def dispatch(self, event: Any, state: testing.State) -> Outcome:
        """Run ``event`` on ``state``, record what it did, then put the machine back."""
        self.machine.clear_calls()
        before = self._snapshot
        with self.running(), record_relation_writes() as writes:
            out = self.ctx.run(event, state)
        after = self._files()
        systemctl = self.machine.calls("systemctl")
        rendered = (self.machine.root / FALCO_YAML).read_text()
        written = {
            path: (self.machine.root / path).read_bytes()
            for path in after
            if before.get(path) != after[path] and (self.machine.root / path).is_file()
        }
        if after != before:
            self._restore()
        return Outcome(
            out,
            before,
            after,
            systemctl,
            writes.count("relation_set"),
            self.state,
            rendered,
            written,
        )

    def with_relation(self, relation: testing.Relation) -> testing.State:
        """Return the world's state with ``relation`` in place of the one with its id."""
        others = {r for r in self.state.relations if r.id != relation.id}
        return dataclasses.replace(self.state, relations={*others, relation})

    def relation(self, endpoint: str) -> testing.Relation:
        (found,) = (r for r in self.state.relations if r.endpoint == endpoint)
        return found
