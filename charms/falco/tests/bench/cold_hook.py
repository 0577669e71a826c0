"""The cold cost of one no-op hook: a fresh interpreter runs ``ops.main`` for update-status.

The bench's other timings dispatch through ops.testing in one long-lived interpreter, where
every module is already imported after the first event; a real hook is a new process that
imports ops, the charm and whatever the hook needs on the way (pydantic for the config).
This probe measures that: the charm directory is laid out as ``charmcraft pack`` lays it out
(metadata.yaml, config.yaml, actions.yaml), the unit runs on a fake machine the charm
installed beforehand, and each run is ``python -c <probe>`` with Juju's hook environment.

The hook tools Juju provides (``config-get``, ``relation-ids``, ``status-set``, ``juju-log``...)
and ``systemctl`` are ``/bin/sh`` stubs that answer what a converged, unrelated unit would
see and record their calls; a call the stubs do not know fails the probe, so does any
``systemctl`` verb other than the read-only queries. Shell stubs cost about a millisecond,
Juju's ``jujuc`` and the real ``systemctl`` a few: the figure is a slight underestimate of
the process and hook-tool part, and exact for the Python part.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from bench_support import bytecode_env
from machine import FakeMachine, changed_files

RUNS = 5

_PROBE = """\
import json, sys, time
start = time.perf_counter()
sys.path[:0] = {paths!r}
import charm
imported = time.perf_counter()
import ops
from pathlib import Path
charm.FalcoCharm.filesystem_root = Path({root!r})
ops.main(charm.FalcoCharm)
done = time.perf_counter()
Path({out!r}).write_text(json.dumps({{"import": imported - start, "dispatch": done - imported}}))
"""

# What a converged unit without relations hears back from Juju and systemd. Every stub
# appends its name to $STUB_LOG.
_ANSWERS = {
    "config-get": 'cat "$STUB_DIR/config.json"',
    "relation-ids": "echo '[]'",
    "is-leader": "echo true",
    "status-get": 'echo \'{"status": "active", "message": "", "status-data": {}}\'',
    "status-set": "true",
    "juju-log": "true",
    "application-version-set": "true",
}
_SYSTEMCTL = """\
for arg in "$@"; do
  case "$arg" in
    show) printf 'MainPID=4001\\nResult=success\\nNRestarts=0\\nExecMainStatus=0\\n'
          printf 'ActiveState=active\\nSubState=running\\n'; exit 0 ;;
    is-active|is-failed|is-enabled) exit 1 ;;
    -*) ;;
    *) echo "systemctl verb not expected on a no-op hook: $arg" >&2; exit 3 ;;
  esac
done
"""


def _stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f'#!/bin/sh\necho {name} >> "$STUB_LOG"\n{body}\n')
    path.chmod(0o755)


def _packed_charm_dir(charmcraft_yaml: Path, into: Path) -> Path:
    """Lay out what ``charmcraft pack`` derives from charmcraft.yaml, which ops reads."""
    data = yaml.safe_load(charmcraft_yaml.read_text())
    into.mkdir(parents=True)
    keys = ("name", "summary", "description", "subordinate", "requires", "provides", "resources")
    metadata = {key: data[key] for key in keys if key in data}
    (into / "metadata.yaml").write_text(yaml.safe_dump(metadata))
    (into / "config.yaml").write_text(yaml.safe_dump(data.get("config", {})))
    (into / "actions.yaml").write_text(yaml.safe_dump(data.get("actions", {})))
    return into


def _config_defaults(charmcraft_yaml: Path) -> dict[str, Any]:
    """Return what ``config-get --all`` answers for a unit with nothing set: the defaults."""
    options = yaml.safe_load(charmcraft_yaml.read_text())["config"]["options"]
    return {name: spec["default"] for name, spec in options.items() if "default" in spec}


@dataclass(frozen=True)
class Unit:
    """A unit the charm installed and converged, without relations, on a fake machine."""

    name: str
    model: str
    model_uuid: str
    machine: FakeMachine


def measure(charm: Path, unit: Unit, base: Path) -> dict[str, Any]:
    """Run the no-op update-status RUNS times in fresh interpreters; return the medians.

    The fake machine's own tools stay reachable behind the stubs. Raises RuntimeError if
    the hook failed or did anything but read.
    """
    charmcraft_yaml = charm / "charmcraft.yaml"
    charm_dir = _packed_charm_dir(charmcraft_yaml, base / "charm")
    stubs = base / "stubs"
    stubs.mkdir()
    (stubs / "config.json").write_text(json.dumps(_config_defaults(charmcraft_yaml)))
    for name, answer in _ANSWERS.items():
        _stub(stubs, name, answer)
    _stub(stubs, "systemctl", _SYSTEMCTL)
    log = base / "stub-calls.log"
    tools_env = unit.machine.environ()
    env = {
        **bytecode_env(),
        **tools_env,
        "PATH": f"{stubs}{os.pathsep}{tools_env['PATH']}",
        "STUB_DIR": str(stubs),
        "STUB_LOG": str(log),
        "JUJU_CHARM_DIR": str(charm_dir),
        "JUJU_DISPATCH_PATH": "hooks/update-status",
        "JUJU_HOOK_NAME": "update-status",
        "JUJU_UNIT_NAME": unit.name,
        "JUJU_MODEL_NAME": unit.model,
        "JUJU_MODEL_UUID": unit.model_uuid,
        "JUJU_VERSION": "3.6.8",
        "JUJU_MACHINE_ID": "0",
    }
    paths = [str(charm / "src"), str(charm / "lib")]
    out = base / "probe.json"
    probe = _PROBE.format(paths=paths, root=str(unit.machine.root), out=str(out))
    samples: list[dict[str, float]] = []
    files = unit.machine.files()
    # The first run creates the unit's state database, as the install hook did on a real unit,
    # and fills the bytecode cache, as a unit's first hook does.
    for run in range(RUNS + 1):
        log.write_text("")
        start = time.perf_counter()
        # Our own interpreter and probe text, no shell.
        result = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"cold update-status failed:\n{result.stderr}")
        if run:
            samples.append({**json.loads(out.read_text()), "total": wall})
    if changed_files(files, unit.machine.files()):
        raise RuntimeError("the cold update-status changed files on the machine: not a no-op")
    calls = log.read_text().split()
    return {
        "total": statistics.median(s["total"] for s in samples),
        "import": statistics.median(s["import"] for s in samples),
        "dispatch": statistics.median(s["dispatch"] for s in samples),
        "runs": RUNS,
        "tool_calls": {name: calls.count(name) for name in sorted(set(calls))},
    }
