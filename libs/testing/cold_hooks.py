"""Cold hooks: what a unit pays for one hook, measured the way Juju runs it.

The bench's other timings dispatch through ops.testing in one long-lived interpreter, where
everything is imported after the first event. On a unit each hook is a new process that
imports ops and the charm, runs ``ops.main`` and talks to the unit agent through hook tools
(``config-get``, ``relation-get``, ``status-set``, ``juju-log``...), each one an RPC. This
module runs a charm that way: the charm directory laid out as ``charmcraft pack`` lays it out,
Juju's hook environment, and ``/bin/sh`` stubs for the hook tools that answer from an
``ops.testing`` State (the unit as the scenario left it: config, relations, secrets,
networks, status) and count every call.

The stubs are strict: a read they cannot answer exactly (another argument form, a relation
or secret the State does not have) is recorded as unknown and the measurement fails, so the
counts can be trusted. Shell stubs cost about a millisecond each, Juju's ``jujuc`` a few: the
CPU figure slightly underestimates the hook-tool part and is exact for the Python part.

CPU time is ``getrusage(RUSAGE_CHILDREN)`` before and after each child (user + system, the
stubs it ran included); wall time is reported too. Every round runs the floor (``import ops``
in a fresh interpreter) and then each hook once, so that a slow spell of a shared machine
lands on both; the gate is the median of the per-round ratios.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from bench_support import bytecode_env
from ops import storage, testing

JUJU_VERSION = "3.6.8"
# Hook tools that change something on the unit or in the model. They answer nothing and
# accept any arguments; each call is counted like any other.
WRITE_TOOLS = (
    "juju-log",
    "status-set",
    "application-version-set",
    "relation-set",
    "open-port",
    "close-port",
    "secret-add",
    "secret-set",
    "secret-remove",
    "secret-grant",
    "secret-revoke",
    "state-set",
    "state-delete",
)
# Reads whose answers come from the State; any call outside the table fails the probe.
READ_TOOLS = (
    "config-get",
    "is-leader",
    "status-get",
    "relation-ids",
    "relation-list",
    "relation-get",
    "network-get",
    "secret-get",
    "secret-info-get",
    "secret-ids",
    "opened-ports",
    "resource-get",
    "state-get",
    "goal-state",
    "credential-get",
    "relation-model-get",
    "storage-list",
    "storage-get",
    "action-get",
)

_PROBE = """\
import sys
sys.path[:0] = {paths!r}
{prelude}
import charm
{setup}
charm.main()
"""
_FLOOR = "import ops\n"
_INLINE_ANSWER_MAX = 2048


@dataclasses.dataclass(frozen=True)
class Hook:
    """One hook as Juju dispatches it: its name and the environment it adds."""

    label: str
    name: str
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


def hook(name: str) -> Hook:
    """Return a hook without a relation, e.g. ``update-status``."""
    return Hook(name, name)


def relation_hook(
    kind: str, relation: testing.RelationBase, remote_app: str, remote_unit: int | None
) -> Hook:
    """Return ``<endpoint>-relation-<kind>`` on ``relation`` as seen from ``remote_unit``."""
    name = f"{relation.endpoint}-relation-{kind}"
    env = {
        "JUJU_RELATION": relation.endpoint,
        "JUJU_RELATION_ID": f"{relation.endpoint}:{relation.id}",
        "JUJU_REMOTE_APP": remote_app,
    }
    if remote_unit is not None:
        env["JUJU_REMOTE_UNIT"] = f"{remote_app}/{remote_unit}"
    return Hook(name, name, env)


def packed_charm_dir(charmcraft_yaml: Path, into: Path) -> Path:
    """Lay out what ``charmcraft pack`` derives from charmcraft.yaml and ops reads."""
    data = yaml.safe_load(charmcraft_yaml.read_text())
    into.mkdir(parents=True)
    keys = (
        "name", "summary", "description", "subordinate", "requires", "provides", "peers",
        "resources", "containers", "storage", "assumes", "extra-bindings",
    )  # fmt: skip
    metadata = {key: data[key] for key in keys if key in data}
    (into / "metadata.yaml").write_text(yaml.safe_dump(metadata))
    (into / "config.yaml").write_text(yaml.safe_dump(data.get("config", {})))
    (into / "actions.yaml").write_text(yaml.safe_dump(data.get("actions", {})))
    return into


def config_defaults(charmcraft_yaml: Path) -> dict[str, Any]:
    """Return the defaults of the charm's options: what Juju adds to the set values."""
    options = yaml.safe_load(charmcraft_yaml.read_text()).get("config", {}).get("options", {})
    return {name: spec["default"] for name, spec in options.items() if "default" in spec}


def _relation_units(
    relation: testing.RelationBase, app: str
) -> tuple[str, dict[str, Mapping[str, str]]]:
    """Return the remote application's name and its units' databags by unit name."""
    if isinstance(relation, testing.PeerRelation):
        return app, {f"{app}/{n}": data for n, data in relation.peers_data.items()}
    if isinstance(relation, testing.SubordinateRelation):
        remote = relation.remote_app_name
        return remote, {relation.remote_unit_name: relation.remote_unit_data}
    assert isinstance(relation, testing.Relation)
    remote = relation.remote_app_name
    return remote, {f"{remote}/{n}": data for n, data in relation.remote_units_data.items()}


def _relation_answers(
    relation: testing.RelationBase, app: str, unit: str
) -> Iterable[tuple[str, str, str]]:
    """Yield (tool, arguments, answer) for every read of ``relation`` ops can make."""
    remote_app, units = _relation_units(relation, app)
    remote_app_data: Mapping[str, str] = {}
    if isinstance(relation, testing.Relation | testing.SubordinateRelation):
        remote_app_data = relation.remote_app_data
    for ref in (str(relation.id), f"{relation.endpoint}:{relation.id}"):
        yield "relation-list", f"--format=json -r {ref}", json.dumps(sorted(units))
        yield "relation-list", f"--format=json --app -r {ref}", json.dumps(remote_app)
        bags = {
            ("", unit): relation.local_unit_data,
            ("--app ", app): relation.local_app_data,
            ("--app ", remote_app): remote_app_data,
            **{("", name): data for name, data in units.items()},
        }
        for (flag, owner), data in bags.items():
            yield "relation-get", f"--format=json -r {ref} {flag}- {owner}", json.dumps(data)


def _secret_answers(secret: testing.Secret) -> Iterable[tuple[str, str, str]]:
    """Yield (tool, arguments, answer) for the reads of ``secret`` ops can make."""
    tracked = json.dumps(dict(secret.tracked_content))
    latest = json.dumps(dict(secret.latest_content))
    names = [secret.id]
    if secret.label:
        names += [f"--label {secret.label}", f"{secret.id} --label {secret.label}"]
    for name in names:
        yield "secret-get", f"--format=json {name}", tracked
        yield "secret-get", f"--format=json {name} --refresh", latest
        yield "secret-get", f"--format=json {name} --peek", latest
        if secret.owner:
            info = {
                secret.id.split(":")[-1]: {
                    "revision": secret._latest_revision,
                    "label": secret.label or "",
                    "owner": secret.owner,
                    "rotation": secret.rotate or "never",
                }
            }
            yield "secret-info-get", f"--format=json {name}", json.dumps(info)


def _network_answers(state: testing.State) -> Iterable[tuple[str, str, str]]:
    """Yield (tool, arguments, answer) for ``network-get`` of each binding of ``state``."""
    for network in state.networks:
        answer = json.dumps(network._hook_tool_output_fmt())  # type: ignore[no-untyped-call]
        yield "network-get", f"--format=json {network.binding_name}", answer
        for relation in state.relations:
            if relation.endpoint == network.binding_name:
                args = f"--format=json -r {relation.id} {relation.endpoint}"
                yield "network-get", args, answer


def answers_from_state(
    state: testing.State, app: str, unit_id: int, defaults: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    """Return what each read hook tool answers, by its exact arguments, for ``state``.

    The unit is ``<app>/<unit_id>``; ``defaults`` are the options' defaults (config-get
    answers them with the values set in the State on top).
    """
    unit = f"{app}/{unit_id}"
    answers: dict[str, dict[str, str]] = {tool: {} for tool in READ_TOOLS}

    def add(tool: str, args: str, answer: str) -> None:
        answers[tool][args] = answer

    add("config-get", "--format=json", json.dumps({**defaults, **state.config}))
    add("is-leader", "--format=json", json.dumps(state.leader))
    status = {"status": state.unit_status.name, "message": state.unit_status.message}
    add(
        "status-get",
        "--include-data --format=json --application=false",
        json.dumps({**status, "status-data": {}}),
    )
    endpoints: dict[str, list[str]] = {}
    for relation in state.relations:
        endpoints.setdefault(relation.endpoint, []).append(f"{relation.endpoint}:{relation.id}")
        for tool, args, answer in _relation_answers(relation, app, unit):
            add(tool, args, answer)
    for endpoint, ids in endpoints.items():
        add("relation-ids", f"{endpoint} --format=json", json.dumps(ids))
    for secret in state.secrets:
        for tool, args, answer in _secret_answers(secret):
            add(tool, args, answer)
    for tool, args, answer in _network_answers(state):
        add(tool, args, answer)
    ports = [f"{p.port}/{p.protocol}" if p.port else p.protocol for p in state.opened_ports]
    add("opened-ports", "--format=json", json.dumps(ports))
    for res in state.resources:
        add("resource-get", res.name, str(res.path))
    return answers


def with_relation_ids(answers: dict[str, dict[str, str]], endpoints: Iterable[str]) -> None:
    """Answer ``relation-ids`` with no relation for every endpoint ``answers`` lacks."""
    for endpoint in endpoints:
        answers["relation-ids"].setdefault(f"{endpoint} --format=json", "[]")


def write_stubs(directory: Path, answers: Mapping[str, Mapping[str, str]]) -> None:
    """Write one ``/bin/sh`` stub per hook tool into ``directory``.

    Each appends its name to ``$STUB_LOG``; a read answers from its table by its exact
    arguments and, for any other arguments, appends them to ``$STUB_UNKNOWN`` and exits 2.
    Only shell built-ins run, so a stub costs what starting ``/bin/sh`` costs.
    """
    directory.mkdir(parents=True, exist_ok=True)
    large = directory / "answers"
    large.mkdir(exist_ok=True)
    for tool in WRITE_TOOLS:
        _write(directory / tool, f'echo {tool} >> "$STUB_LOG"\n')
    for tool, table in answers.items():
        cases = []
        for n, (args, answer) in enumerate(table.items()):
            if len(answer) > _INLINE_ANSWER_MAX:
                # A long answer inline would be parsed again by every call of the tool.
                (large / f"{tool}-{n}").write_text(answer)
                say = f"cat {shlex.quote(str(large / f'{tool}-{n}'))}"
            else:
                say = f"printf '%s' {shlex.quote(answer)}"
            cases.append(f"  {shlex.quote(args)}) {say} ;;\n")
        _write(
            directory / tool,
            f'echo {tool} >> "$STUB_LOG"\n'
            f'case "$*" in\n{"".join(cases)}'
            f'  *) printf \'%s %s\\n\' {tool} "$*" >> "$STUB_UNKNOWN"\n'
            "     echo 'ERROR not known to the bench stubs' >&2; exit 2 ;;\n"
            "esac\n",
        )


def _write(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o755)


def write_unit_state(db: Path, state: testing.State) -> None:
    """Store the State's StoredState contents where ops.main reads them (the unit's DB)."""
    store = storage.SQLiteStorage(db)
    for stored in state.stored_states:
        store.save_snapshot(stored._handle_path, dict(stored.content))
    store.commit()
    store.close()


@dataclasses.dataclass
class Probe:
    """How to run one charm's hooks in fresh interpreters against the stubs.

    Each probe runs ``charm.main()``, what the charm's ``__main__`` runs under ``dispatch``.
    ``prelude`` and ``setup`` are Python run before and after ``import charm`` in each probe:
    what the bench must point elsewhere than a real unit has it (a Pebble socket, a machine
    root in a temp dir).
    """

    charm: Path
    unit: str
    model: testing.Model
    answers: dict[str, dict[str, str]]
    prelude: str = ""
    setup: str = ""
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    paths: Sequence[str] = ()


@dataclasses.dataclass
class Sample:
    """One child process: its CPU (user + system, children included) and wall time."""

    cpu_s: float
    wall_s: float


def _run_child(argv: list[str], env: Mapping[str, str]) -> tuple[Sample, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # Our own interpreter and probe text, no shell.
    result = subprocess.run(argv, env=dict(env), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[-1][:200]!r} failed:\n{result.stderr}")
    return Sample(cpu, wall), result.stderr


class ColdHooks:
    """A charm directory, its stubs and unit DB under ``base``, ready to run hooks cold."""

    def __init__(self, probe: Probe, base: Path, state: testing.State):
        self.probe = probe
        charm_dir = packed_charm_dir(probe.charm / "charmcraft.yaml", base / "charm")
        write_unit_state(charm_dir / ".unit-state.db", state)
        stubs = base / "stubs"
        write_stubs(stubs, probe.answers)
        self.log = base / "calls.log"
        self.unknown = base / "unknown.log"
        self.env = {
            **bytecode_env(),
            **probe.env,
            "PATH": f"{stubs}{os.pathsep}{probe.env.get('PATH', os.environ['PATH'])}",
            "STUB_LOG": str(self.log),
            "STUB_UNKNOWN": str(self.unknown),
            "JUJU_CHARM_DIR": str(charm_dir),
            "JUJU_UNIT_NAME": probe.unit,
            "JUJU_MODEL_NAME": probe.model.name,
            "JUJU_MODEL_UUID": probe.model.uuid,
            "JUJU_VERSION": JUJU_VERSION,
        }
        paths = [*(str(probe.charm / p) for p in ("src", "lib")), *probe.paths]
        self.source = _PROBE.format(paths=paths, prelude=probe.prelude, setup=probe.setup)

    def run(self, hook: Hook) -> tuple[Sample, Counter[str]]:
        """Run ``hook`` once in a fresh interpreter; return its cost and its hook-tool calls."""
        self.log.write_text("")
        self.unknown.write_text("")
        env = {
            **self.env,
            **hook.env,
            "JUJU_DISPATCH_PATH": f"hooks/{hook.name}",
            "JUJU_HOOK_NAME": hook.name,
        }
        sample, _ = _run_child([sys.executable, "-c", self.source], env)
        if unknown := self.unknown.read_text():
            raise RuntimeError(
                f"{hook.label}: hook tools called in ways the stubs do not know:\n{unknown}"
            )
        return sample, Counter(self.log.read_text().split())


def floor() -> Sample:
    """Return the cost of ``import ops`` in a fresh interpreter (the floor of every hook)."""
    sample, _ = _run_child([sys.executable, "-c", _FLOOR], bytecode_env())
    return sample


# Rounds of the bench: the gate is the median of per-round ratios, so at least this many.
ROUNDS = 11
# The prior charms (canonical/falco-operators) cannot be checked out and run here.
PRIOR = "unavailable here: the ratios are to the floor, `import ops` in the same rounds"


def measure(
    units: Mapping[str, tuple[ColdHooks, Sequence[Hook]]],
    rounds: int = ROUNDS,
    after_each: Callable[[str, Hook], None] | None = None,
) -> dict[str, Any]:
    """Run every hook of every unit once per round, after the floor; return the figures.

    A first round, not counted, fills the bytecode cache as a unit's first hook does.
    ``after_each(unit, hook)`` may check what the hook did (and raise). The figures are
    keyed ``"<unit> <hook label>"``.
    """
    samples: dict[str, list[tuple[Sample, Sample, Counter[str]]]] = {}
    for round_ in range(rounds + 1):
        base = floor()
        for unit, (cold, hooks) in units.items():
            for h in hooks:
                sample, calls = cold.run(h)
                if after_each:
                    after_each(unit, h)
                if round_:
                    samples.setdefault(f"{unit} {h.label}", []).append((sample, base, calls))
    figures: dict[str, Any] = {}
    for key, runs in samples.items():
        calls = runs[-1][2]
        figures[key] = {
            "rounds": len(runs),
            "cpu_s": statistics.median(s.cpu_s for s, _, _ in runs),
            "wall_s": statistics.median(s.wall_s for s, _, _ in runs),
            "floor_cpu_s": statistics.median(b.cpu_s for _, b, _ in runs),
            "floor_wall_s": statistics.median(b.wall_s for _, b, _ in runs),
            "cpu_ratio": statistics.median(s.cpu_s / b.cpu_s for s, b, _ in runs),
            "hook_tool_calls": sum(calls.values()),
            "hook_tools": dict(sorted(calls.items())),
            "max_hook_tool_calls": max(sum(c.values()) for _, _, c in runs),
        }
    return figures
