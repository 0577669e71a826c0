#!/usr/bin/env python3
"""Replay scripted event sequences through the falco charm and count what each one did.

Usage: ``bench.py <output json>`` (from charms/falco; ``make bench`` runs it). The charm runs
under ops.testing against the fake machine of the unit tests; every dispatch is counted at the
machine boundary:

* restarts      - ``systemctl start``/``restart`` calls recorded by the fake systemctl;
* reloads       - Falco hot reloads: ``systemctl reload`` calls, plus a watched file (falco.yaml
                  or a loaded rules file) replaced while Falco kept running without a restart,
                  which Falco's own watcher turns into one reload;
* file_writes   - files created, modified or removed under the machine root;
* relation_writes - ``relation-set`` calls (the charm writes no relation data);
* git_network_ops - always 0 until rules come from git.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHARM = HERE.parent.parent
sys.path[:0] = [str(CHARM / p) for p in ("src", "lib", "tests/shared", "tests/support")]

from bench_support import EventStats, import_times, timed, write_results  # noqa: E402
from charm import FalcoCharm  # noqa: E402
from machine import FakeMachine, build_payload, changed_files  # noqa: E402
from ops import testing  # noqa: E402
from ops_probes import record_relation_writes  # noqa: E402
from tls_material import make_ca  # noqa: E402

RUNS_PER_NOOP = {"config-changed": 3, "update-status": 10}


class Bench:
    """One fake machine and charm directory, driven event by event."""

    def __init__(self, base: Path):
        self.machine = FakeMachine(base / "machine")
        os.environ.update(self.machine.environ())
        FalcoCharm.filesystem_root = self.machine.root
        self.charm_root = base / "charm"
        build_payload(self.charm_root / "payload")
        self.ctx = testing.Context(FalcoCharm, charm_root=self.charm_root)
        empty = base / "resource" / "falco.tar.gz"
        empty.parent.mkdir()
        empty.write_bytes(b"")
        self.state = testing.State(resources={testing.Resource(name="falco", path=empty)})

    def _watched(self) -> dict[str, Any]:
        config_file = self.machine.root / "etc/juju-falco/falco.yaml"
        if not config_file.exists():
            return {}
        config = json.loads(json.dumps(_yaml(config_file.read_text())))
        paths = [config_file, *(Path(p) for p in config.get("rules_files", []))]
        return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths if p.exists()}

    def dispatch(self, stats: EventStats, event: Callable[[], Any], state: testing.State) -> None:
        """Run one event from ``state``, add its timing and counts to ``stats``."""
        self.machine.clear_calls()
        files, watched = self.machine.files(), self._watched()
        running = self.machine.unit()["active"]
        with record_relation_writes() as relation_writes:
            out, seconds = timed(lambda: self.ctx.run(event(), state))
        restarts = self.machine.restarts()
        reloads = self.machine.systemctl_verbs().count("reload")
        if running and restarts == 0 and self.machine.unit()["active"]:
            reloads += int(watched != self._watched())
        stats.add(
            seconds,
            {
                "restarts": restarts,
                "reloads": reloads,
                "file_writes": changed_files(files, self.machine.files()),
                "relation_writes": relation_writes.count("relation_set"),
                "git_network_ops": 0,
            },
        )
        self.state = out


def _yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def run_sequences(base: Path) -> dict[str, list[EventStats]]:
    """Run every scripted sequence, each on a fresh machine."""
    sequences: dict[str, list[EventStats]] = {}

    bench = Bench(base / "install")
    install = EventStats("install", expect={"restarts": 1, "reloads": 0})
    bench.dispatch(install, bench.ctx.on.install, bench.state)
    sequences["install"] = [install]

    for name, event in (
        ("config-changed", "config_changed"),
        ("update-status", "update_status"),
    ):
        bench = Bench(base / name)
        bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
        stats = EventStats(name, noop=True)
        for _ in range(RUNS_PER_NOOP[name]):
            bench.dispatch(stats, getattr(bench.ctx.on, event), bench.state)
        sequences[f"{name} x{RUNS_PER_NOOP[name]}"] = [stats]

    bench = Bench(base / "reload")
    bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
    reload = EventStats("config-changed", expect={"restarts": 0, "reloads": 1})
    bench.state = dataclasses.replace(bench.state, config={"outputs-queue-capacity": 5000})
    bench.dispatch(reload, bench.ctx.on.config_changed, bench.state)
    sequences["config-changed outputs-queue-capacity"] = [reload]

    sequences["http-endpoint"] = http_endpoint_sequence(Bench(base / "http"))
    sequences["upgrade-charm"] = upgrade_sequence(Bench(base / "upgrade"))
    return sequences


def http_endpoint_sequence(bench: Bench) -> list[EventStats]:
    """Relate a sidekick: joined (no data yet), changed (URL and CA), broken."""
    bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
    relation = testing.Relation("http-endpoint", remote_app_name="falcosidekick-k8s")
    unit = 0
    joined = EventStats("http-endpoint-relation-joined", noop=True)
    state = dataclasses.replace(bench.state, relations={relation})
    bench.dispatch(joined, lambda: bench.ctx.on.relation_joined(relation, remote_unit=unit), state)
    published = dataclasses.replace(
        relation,
        remote_app_data={
            "url": json.dumps("https://sidekick.example:2801/"),
            "ca_cert": json.dumps(make_ca("Sidekick CA").cert_pem),
        },
    )
    changed = EventStats("http-endpoint-relation-changed", expect={"restarts": 1, "reloads": 0})
    state = dataclasses.replace(bench.state, relations={published})
    bench.dispatch(
        changed, lambda: bench.ctx.on.relation_changed(published, remote_unit=unit), state
    )
    again = EventStats("http-endpoint-relation-changed (same data)", noop=True)
    bench.dispatch(
        again, lambda: bench.ctx.on.relation_changed(published, remote_unit=unit), bench.state
    )
    broken = EventStats("http-endpoint-relation-broken", expect={"restarts": 1, "reloads": 0})
    bench.dispatch(broken, lambda: bench.ctx.on.relation_broken(published), bench.state)
    return [joined, changed, again, broken]


def upgrade_sequence(bench: Bench) -> list[EventStats]:
    """upgrade-charm with the same payload (no-op), then with a new Falco (one restart)."""
    bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
    same = EventStats("upgrade-charm (same payload)", noop=True)
    bench.dispatch(same, bench.ctx.on.upgrade_charm, bench.state)
    build_payload(bench.charm_root / "payload", version="0.44.2")
    new = EventStats("upgrade-charm (new payload)", expect={"restarts": 1, "reloads": 0})
    bench.dispatch(new, bench.ctx.on.upgrade_charm, bench.state)
    return [same, new]


def main(argv: list[str]) -> int:
    """Run the sequences and the import probe; write the results to ``argv[1]``."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="falco-bench-") as base:
        sequences = run_sequences(Path(base))
    imports = import_times([str(CHARM / "src"), str(CHARM / "lib")])
    write_results(Path(argv[1]), "falco", sequences, imports)
    ratio = imports["charm"] / imports["ops"]
    print(f"falco: import {imports['charm']:.3f}s vs ops {imports['ops']:.3f}s ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
