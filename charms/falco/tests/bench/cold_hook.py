"""Cold hooks of a falco unit with everything in use, the way Juju runs them.

The bench's other timings dispatch through ops.testing in one long-lived interpreter, where
every module is already imported after the first event; a real hook is a new process that
imports ops and the charm, runs ``ops.main`` and talks to the unit agent through hook tools.
This runs the no-op hooks of a unit related to a sidekick (http-endpoint) and a collector
(cos-agent), syncing a rules repository at a tag, with inline custom rules: set up under
ops.testing on the fake machine (bench.Bench), then each hook in a fresh interpreter
through the charm's ``main`` with shell-stub hook tools answering from the unit's last
State (libs/testing/cold_hooks.py).

Behind the stubs the fake machine's own tools stay reachable, but ``systemctl`` is a
``/bin/sh`` stub too: it answers the read-only queries as a running unit would and fails the
hook on any other verb (the fake machine's systemctl is a Python program, which would
dominate the figure: the real one costs a few milliseconds, as ``jujuc`` does). A hook that
changes a file on the machine fails the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cold_hooks
import yaml
from machine import FakeMachine, changed_files
from ops import testing

UNIT = "falco/0"
APP = "falco"

_SETUP = """\
from pathlib import Path
charm.FalcoCharm.filesystem_root = Path({root!r})
"""
_SYSTEMCTL = """\
echo systemctl >> "$STUB_SYSTEMCTL_LOG"
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


def hooks(state: testing.State) -> list[cold_hooks.Hook]:
    """Return the no-op hooks to run: update-status, config-changed, relation-changed."""
    (sidekick,) = (r for r in state.relations if r.endpoint == "http-endpoint")
    return [
        cold_hooks.hook("update-status"),
        cold_hooks.hook("config-changed"),
        cold_hooks.relation_hook("changed", sidekick, "falcosidekick-k8s", 0),
    ]


def measure(
    charm: Path,
    machine: FakeMachine,
    state: testing.State,
    base: Path,
    rounds: int = cold_hooks.ROUNDS,
) -> dict[str, Any]:
    """Run the unit's no-op hooks cold ``rounds`` times; return the figures per hook.

    Raises RuntimeError if a hook failed, ran a hook tool the stubs do not know, or changed
    a file on the machine.
    """
    charmcraft = charm / "charmcraft.yaml"
    answers = cold_hooks.answers_from_state(state, APP, 0, cold_hooks.config_defaults(charmcraft))
    data = yaml.safe_load(charmcraft.read_text())
    endpoints = [n for role in ("provides", "requires", "peers") for n in data.get(role, {})]
    cold_hooks.with_relation_ids(answers, endpoints)
    tools = base / "machine-stubs"
    tools.mkdir(parents=True)
    systemctl = tools / "systemctl"
    systemctl.write_text(f"#!/bin/sh\n{_SYSTEMCTL}")
    systemctl.chmod(0o755)
    environ = machine.environ()
    env = {
        **environ,
        "PATH": f"{tools}:{environ['PATH']}",
        "STUB_SYSTEMCTL_LOG": str(base / "systemctl.log"),
        "JUJU_MACHINE_ID": "0",
    }
    probe = cold_hooks.Probe(
        charm=charm,
        unit=UNIT,
        model=state.model,
        answers=answers,
        setup=_SETUP.format(root=str(machine.root)),
        env=env,
    )
    cold = cold_hooks.ColdHooks(probe, base / "unit", state)
    files = machine.files()

    def unchanged(_unit: str, hook: cold_hooks.Hook) -> None:
        if changed_files(files, machine.files()):
            raise RuntimeError(f"cold {hook.label} changed files on the machine: not a no-op")

    return cold_hooks.measure({UNIT: (cold, hooks(state))}, rounds, unchanged)
