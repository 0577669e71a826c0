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
* container_writes - always 0: a machine charm has no workload container (reported so that
                  every charm's table has the same columns);
* relation_writes - ``relation-set`` calls (the ``config`` of cos-agent, the only bag the charm
                  writes);
* lzma_compress - dashboards compressed: the rules and dashboards sent on cos-agent are built
                  (cosl imported, dashboards compressed) only when their inputs change;
* git_network_ops - git commands that reach a remote (fetch, clone, ls-remote), as recorded by
                  the fake machine's ``git``: the real git behind a fake network of local
                  repositories, so every fetch the charm runs is counted where it happens.

The custom-rules sequences run on a clock the bench moves by 5 minutes per update-status (Juju's
default interval), with a 15-minute sync interval: a branch is due every third hook.

Two sequences of issue 9 besides those of issues 3-5: 200 Falco units, each on its own machine,
hearing a new sidekick URL (``fleet.py``), and 50 update-status hooks on a unit with everything
in use (sidekick, collector, a repository at a tag, inline rules) and nothing changed. Three of
issue 13: two falco units on one machine (20 alternating update-status: nothing), Falco
stopped behind the charm's back (one start, then nothing), and a Falco that exits at every
start over 10 update-status (starts bounded by the back-off). One of issue 17: the self-test
action run three times (no restart, reload or write of the charm's), then idle hooks. The
self-test's marker rule is loaded in every sequence. The
results also hold ``cold_hooks``: the no-op update-status, config-changed and
http-endpoint-relation-changed of a unit with everything in use, each in a fresh interpreter
the way Juju runs a hook (``cold_hook.py``), next to the in-process timings that hide imports.
"""

from __future__ import annotations

import dataclasses
import json
import lzma
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHARM = HERE.parent.parent
sys.path[:0] = [str(CHARM / p) for p in ("src", "lib", "tests/shared", "tests/support")]

import cold_hook  # noqa: E402
import fleet  # noqa: E402
import hostile  # noqa: E402
from bench_support import EventStats, import_times, timed, write_results  # noqa: E402
from charm import FalcoCharm  # noqa: E402
from git_repos import MISSING_OUTPUT, RulesRepo, rule  # noqa: E402
from machine import FakeMachine, build_payload, changed_files  # noqa: E402
from ops import testing  # noqa: E402
from ops_probes import record_calls, record_relation_writes  # noqa: E402
from self_test_rig import FakeDetection  # noqa: E402
from tls_material import make_ca  # noqa: E402

RUNS_PER_NOOP = {"config-changed": 3, "update-status": 10}
UPDATE_STATUS_MINUTES = 5
SYNC_INTERVAL_MINUTES = 15
UPDATE_STATUS_HOOKS = 20
IDLE_HOOKS = 50
CRASH_LOOP_HOOKS = 10
SELF_TESTS = 3
# start_backoff: three starts at once, then after 10 and 20 minutes (hooks 5 and 9).
CRASH_LOOP_STARTS = 5
NO_BUILD = {"lzma_compress": 0}
ONE_RESTART = {"restarts": 1, "reloads": 0}
REPO_HOST = "git.example"
REPO_URL = f"ssh://git@{REPO_HOST}/org/falco-rules.git"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVGzeGMZzHOPJ5vM/OGWcs7ZOf9U9BB36Zi5S5Xx4nD"
DEPLOY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nYmVuY2g=\n-----END OPENSSH PRIVATE KEY-----\n"


# A model whose name and uuid stay put from one State to the next (the default is random).
STABLE_MODEL = testing.Model(name="bench", uuid="00000000-0000-4000-8000-00000000be7c", type="lxd")


class Clock:
    """The charm's clock during the bench."""

    now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Bench:
    """One fake machine and charm directory, driven event by event."""

    def __init__(self, base: Path):
        self.machine = FakeMachine(base / "machine")
        self.charm_root = base / "charm"
        build_payload(self.charm_root / "payload")
        self.ctx = testing.Context(FalcoCharm, charm_root=self.charm_root)
        empty = base / "resource" / "falco.tar.gz"
        empty.parent.mkdir()
        empty.write_bytes(b"")
        self.state = testing.State(resources={testing.Resource(name="falco", path=empty)})
        self.clock = Clock()
        self._rules_files: tuple[Any, list[str]] = (None, [])
        self.activate()

    def activate(self) -> None:
        """Point the charm and the fake tools at this bench's machine (several may take turns)."""
        os.environ.update(self.machine.environ())
        FalcoCharm.filesystem_root = self.machine.root
        # Falco's /metrics as the fake machine's Falco reports them (reload_check).
        FalcoCharm.falco_metrics = staticmethod(self.machine.falco_metrics)
        FalcoCharm.clock = staticmethod(self.clock)

    def _watched(self) -> dict[str, Any]:
        config_file = self.machine.root / "etc/juju-falco/falco.yaml"
        if not config_file.exists():
            return {}
        # Parsed again only when it changed: with 50,000 enabled-rules items that takes long.
        stat = config_file.stat()
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._rules_files[0] != key:
            config = json.loads(json.dumps(_yaml(config_file.read_text())))
            self._rules_files = (key, [str(p) for p in config.get("rules_files", [])])
        paths = [config_file, *(Path(p) for p in self._rules_files[1])]
        return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths if p.exists()}

    def dispatch(self, stats: EventStats, event: Callable[[], Any], state: testing.State) -> None:
        """Run one event from ``state``, add its timing and counts to ``stats``."""
        self.activate()
        self.machine.clear_calls()
        files, watched = self.machine.files(), self._watched()
        running = self.machine.unit()["active"]
        with (
            record_relation_writes() as relation_writes,
            record_calls(lzma, ("compress",)) as compressions,
        ):
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
                "container_writes": 0,
                "relation_writes": relation_writes.count("relation_set"),
                "git_network_ops": self.machine.git_network_ops(),
                "lzma_compress": compressions.count("compress"),
            },
        )
        self.state = out


def _yaml(text: str) -> Any:
    import yaml

    # The safe loader, in C: with 50,000 enabled-rules items the Python one takes long.
    return yaml.load(text, Loader=yaml.CSafeLoader)


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
    sequences["cos-agent"] = cos_agent_sequence(Bench(base / "cos-agent"))
    sequences["alert-log"] = alert_log_sequence(Bench(base / "alert-log"))
    sequences["upgrade-charm"] = upgrade_sequence(Bench(base / "upgrade"))
    sequences["custom rules, tag ref"] = tag_sequence(Bench(base / "tag"))
    sequences["custom rules, branch ref"] = branch_sequence(Bench(base / "branch"))
    sequences["custom rules, options"] = inline_sequence(Bench(base / "inline"))
    sequences.update(fleet.fleet_sequences(Bench(base / "fleet"), make_ca("Sidekick CA").cert_pem))
    sequences[f"update-status x{IDLE_HOOKS}, everything in use"] = idle_sequence(
        Bench(base / "idle")
    )
    sequences["two falco units on one machine"] = two_units_sequence(Bench(base / "two"))
    sequences["Falco stopped behind the charm's back"] = stopped_sequence(Bench(base / "stop"))
    sequences["Falco exits at every start"] = crash_loop_sequence(Bench(base / "crash"))
    sequences["self-test"] = self_test_sequence(Bench(base / "self-test"))
    sequences["update-status on large inputs, in turns"] = hostile.idle_sequences(
        lambda name: Bench(base / name), _with_repository
    )
    return sequences


def self_test_sequence(bench: Bench) -> list[EventStats]:
    """The self-test's marker rule is part of every sequence; here it is run, then idled on.

    The action restarts, reloads and writes nothing: the one write per run is Falco's alert
    line in the alert log (the fake machine's Falco, self_test_rig). Hooks after it and a
    config-changed with the same options find the marker rule as they left it.
    """
    bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
    config = _yaml((bench.machine.root / "etc/juju-falco/falco.yaml").read_text())
    marker = bench.machine.root / "etc/juju-falco/self-test/self-test-debug.yaml"
    assert config["rules_files"][1] == str(marker), "the marker rule is not loaded"
    bench.machine.root.joinpath("var/log/falco").mkdir(parents=True, exist_ok=True)
    runs = EventStats(
        f"self-test x{SELF_TESTS}",
        expect={"restarts": 0, "reloads": 0, "file_writes": SELF_TESTS, "relation_writes": 0},
    )
    with FakeDetection(bench.machine):
        for _ in range(SELF_TESTS):
            bench.dispatch(runs, lambda: bench.ctx.on.action("self-test"), bench.state)
    idle = EventStats(f"update-status x{UPDATE_STATUS_HOOKS} (after self-tests)", noop=True)
    for _ in range(UPDATE_STATUS_HOOKS):
        bench.dispatch(idle, bench.ctx.on.update_status, bench.state)
    same = EventStats("config-changed (same options)", noop=True)
    bench.dispatch(same, bench.ctx.on.config_changed, bench.state)
    return [runs, idle, same]


def two_units_sequence(bench: Bench) -> list[EventStats]:
    """Two principals related to falco put two units on one machine; only one runs Falco.

    Both installed, then 20 update-status hooks alternating between them: nothing at all.
    """
    bench.machine.deploy_unit("falco/1")
    contexts = [bench.ctx, testing.Context(FalcoCharm, charm_root=bench.charm_root, unit_id=1)]
    states = [bench.state, bench.state]
    install = EventStats("install falco/0, then falco/1", expect={"restarts": 1, "reloads": 0})
    idle = EventStats(f"update-status x{UPDATE_STATUS_HOOKS}, alternating units", noop=True)
    for stats, hooks in ((install, 2), (idle, UPDATE_STATUS_HOOKS)):
        for hook in range(hooks):
            unit = hook % 2
            bench.ctx = contexts[unit]
            event = bench.ctx.on.install if stats is install else bench.ctx.on.update_status
            bench.dispatch(stats, event, states[unit])
            states[unit] = bench.state
    bench.ctx = contexts[0]
    return [install, idle]


def stopped_sequence(bench: Bench) -> list[EventStats]:
    """Falco stopped (by hand, or a hook killed between stop and start), then 5 hooks.

    The first hook starts it, once; the next forgets the count of starts (one record
    removed); then nothing.
    """
    bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
    bench.machine.stop_by_hand()
    first = EventStats("update-status (Falco found stopped)", expect={"restarts": 1})
    bench.dispatch(first, bench.ctx.on.update_status, bench.state)
    after = EventStats("update-status x4 after it", expect={"restarts": 0, "reloads": 0})
    for _ in range(4):
        bench.clock.now += UPDATE_STATUS_MINUTES * 60
        bench.dispatch(after, bench.ctx.on.update_status, bench.state)
    return [first, after]


def crash_loop_sequence(bench: Bench) -> list[EventStats]:
    """Falco exits at every start; systemd gives up between hooks 5 minutes apart.

    Starts are bounded by start_backoff: hooks 1, 2, 3, then 5 and 9, over 10 hooks.
    """
    bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
    bench.machine.set_knob("systemd", "fail_start", True)
    loop = EventStats(
        f"update-status x{CRASH_LOOP_HOOKS}, 5 minutes apart",
        expect={"restarts": CRASH_LOOP_STARTS, "reloads": 0},
    )
    for _ in range(CRASH_LOOP_HOOKS):
        bench.machine.crash()  # systemd restarts it until its start limit, then gives up
        bench.clock.now += UPDATE_STATUS_MINUTES * 60
        bench.dispatch(loop, bench.ctx.on.update_status, bench.state)
    return [loop]


def idle_sequence(bench: Bench) -> list[EventStats]:
    """A unit with every input in use, then 50 update-status hooks (250 min): nothing to do."""
    _, state = _with_repository(bench, "v1")
    sidekick = testing.Relation(
        "http-endpoint",
        remote_app_name="falcosidekick-k8s",
        remote_app_data={
            "url": json.dumps("https://sidekick.example:2801/"),
            "ca_cert": json.dumps(make_ca("Sidekick CA").cert_pem),
        },
    )
    collector = testing.Relation(
        "cos-agent", remote_app_name="opentelemetry-collector", remote_units_data={0: {}}
    )
    config = {**state.config, "custom-rules": rule("Inline")}
    bench.state = dataclasses.replace(
        state, config=config, relations={sidekick, collector}, model=STABLE_MODEL
    )
    bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
    idle = EventStats(f"update-status x{IDLE_HOOKS} (related, repository at a tag)", noop=True)
    for _ in range(IDLE_HOOKS):
        bench.clock.now += UPDATE_STATUS_MINUTES * 60
        bench.dispatch(idle, bench.ctx.on.update_status, bench.state)
    return [idle]


def cold_hooks(base: Path) -> dict[str, Any]:
    """Converge a unit with everything in use, then run its no-op hooks cold (cold_hook.py).

    The unit runs on real time here: the cold hooks' charm has no fake clock.
    """
    bench = Bench(base / "machine")
    bench.clock.now = time.time()
    _, state = _with_repository(bench, "v1")
    sidekick = testing.Relation(
        "http-endpoint",
        remote_app_name="falcosidekick-k8s",
        remote_app_data={
            "url": json.dumps("https://sidekick.example:2801/"),
            "ca_cert": json.dumps(make_ca("Sidekick CA").cert_pem),
        },
        remote_units_data={0: {}},
    )
    collector = testing.Relation(
        "cos-agent", remote_app_name="opentelemetry-collector", remote_units_data={0: {}}
    )
    config = {**state.config, "custom-rules": rule("Inline")}
    bench.state = dataclasses.replace(
        state, config=config, relations={sidekick, collector}, model=STABLE_MODEL
    )
    settle = EventStats("settle")
    bench.dispatch(settle, bench.ctx.on.install, bench.state)
    bench.dispatch(settle, bench.ctx.on.config_changed, bench.state)
    (current,) = (r for r in bench.state.relations if r.endpoint == "http-endpoint")
    bench.dispatch(
        settle, lambda: bench.ctx.on.relation_changed(current, remote_unit=0), bench.state
    )
    bench.dispatch(settle, bench.ctx.on.update_status, bench.state)
    return {
        "hooks": cold_hook.measure(CHARM, bench.machine, bench.state, base / "cold"),
        "prior": cold_hook.cold_hooks.PRIOR,
    }


def _with_repository(
    bench: Bench, ref: str, files: dict[str, str] | None = None, bare: Path | None = None
) -> tuple[RulesRepo | None, testing.State]:
    """Serve a rules repository over the fake ssh; return it with a state using it at ``ref``.

    ``files`` is its first commit (tagged v1); ``bare``, an existing repository to serve
    instead (then None is returned for the repository).
    """
    repo = None
    if bare is None:
        repo = RulesRepo(bench.machine.base / "server")
        repo.commit(files or {"rules.d/10-custom.yaml": rule("Bench rule")})
        repo.tag("v1")
        bare = repo.bare
    bench.machine.serve(REPO_URL, bare)
    bench.machine.set_network(host_keys={REPO_HOST: HOST_KEY}, deploy_keys={REPO_HOST: DEPLOY_KEY})
    secret = testing.Secret(tracked_content={"value": DEPLOY_KEY})
    config: dict[str, str | int] = {
        "custom-config-repository": f"git+ssh://git@{REPO_HOST}/org/falco-rules.git@{ref}",
        "custom-config-repo-ssh-key": secret.id,
        "custom-config-repo-known-hosts": f"{REPO_HOST} {HOST_KEY}",
        "custom-config-repo-sync-interval": SYNC_INTERVAL_MINUTES,
    }
    return repo, dataclasses.replace(bench.state, config=config, secrets=frozenset({secret}))


def _first_sync(bench: Bench, ref: str) -> tuple[RulesRepo, EventStats]:
    bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
    repo, state = _with_repository(bench, ref)
    assert repo is not None
    first = EventStats(
        f"config-changed (repository @{ref}, first sync)",
        expect={"git_network_ops": 1, "restarts": 0, "reloads": 1},
    )
    bench.dispatch(first, bench.ctx.on.config_changed, state)
    return repo, first


def tag_sequence(bench: Bench) -> list[EventStats]:
    """A tag: fetched once, then 20 update-status hooks (100 minutes) without the network."""
    _, first = _first_sync(bench, "v1")
    idle = EventStats(f"update-status x{UPDATE_STATUS_HOOKS} (tag)", noop=True)
    for _ in range(UPDATE_STATUS_HOOKS):
        bench.clock.now += UPDATE_STATUS_MINUTES * 60
        bench.dispatch(idle, bench.ctx.on.update_status, bench.state)
    refresh = EventStats(
        "refresh-rules action (tag unchanged)",
        expect={"git_network_ops": 1, "restarts": 0, "reloads": 0},
    )
    bench.dispatch(refresh, lambda: bench.ctx.on.action("refresh-rules"), bench.state)
    return [first, idle, refresh]


def branch_sequence(bench: Bench) -> list[EventStats]:
    """A branch over 20 update-status hooks: fetched only when due; new rules, bad rules."""
    repo, first = _first_sync(bench, "main")
    pushes = {
        4: ("good", {"rules.d/20-more.yaml": rule("More")}),
        10: ("bad", {"rules.d/30-bad.yaml": MISSING_OUTPUT}),
    }
    not_due = EventStats("update-status (sync not due)", noop=True)
    same = EventStats("update-status (sync due, rules unchanged)")
    changed = EventStats("update-status (sync due, new rules)")
    refused = EventStats("update-status (sync due, rules Falco refuses)")
    elapsed, pending = 0, None
    for hook in range(1, UPDATE_STATUS_HOOKS + 1):
        if hook in pushes:
            pending, files = pushes[hook]
            repo.commit(files)
        bench.clock.now += UPDATE_STATUS_MINUTES * 60
        elapsed += UPDATE_STATUS_MINUTES
        if elapsed < SYNC_INTERVAL_MINUTES:
            stats = not_due
        else:
            elapsed = 0
            stats = {None: same, "good": changed, "bad": refused}[pending]
            pending = None
        bench.dispatch(stats, bench.ctx.on.update_status, bench.state)
    # Exact targets, from the schedule above: every due hook fetches once; only new, valid
    # rules reload; nothing ever restarts.
    same.expect = {"git_network_ops": len(same.durations), "restarts": 0, "reloads": 0}
    changed.expect = {"git_network_ops": 1, "restarts": 0, "reloads": 1}
    refused.expect = {"git_network_ops": 1, "restarts": 0, "reloads": 0}
    return [first, not_due, same, changed, refused]


def inline_sequence(bench: Bench) -> list[EventStats]:
    """Rules from the options: each change one reload, no restart; the same again: nothing."""
    bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
    stats = []
    for name, config in (
        ("custom-rules", {"custom-rules": rule("Inline")}),
        ("disabled-rules", {"custom-rules": rule("Inline"), "disabled-rules": "tag:network"}),
        ("minimum-priority", {"custom-rules": rule("Inline"), "minimum-priority": "notice"}),
    ):
        change = EventStats(f"config-changed {name}", expect={"restarts": 0, "reloads": 1})
        bench.dispatch(
            change, bench.ctx.on.config_changed, dataclasses.replace(bench.state, config=config)
        )
        stats.append(change)
    again = EventStats("config-changed (same options)", noop=True)
    bench.dispatch(again, bench.ctx.on.config_changed, bench.state)
    return [*stats, again]


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


def cos_agent_sequence(bench: Bench) -> list[EventStats]:
    """Relate a collector, let it answer, idle, move the metrics port, upgrade the charm."""
    model = testing.Model(name="prod", uuid="00000000-0000-4000-8000-000000000001")
    bench.state = dataclasses.replace(bench.state, model=model)
    bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
    relation = testing.Relation(
        "cos-agent", remote_app_name="opentelemetry-collector", remote_units_data={0: {}}
    )
    # Joined: the config is written once, the content built once; Falco is not touched.
    joined = EventStats(
        "cos-agent-relation-joined",
        expect={"restarts": 0, "reloads": 0, "relation_writes": 1, "lzma_compress": 1},
    )
    state = dataclasses.replace(bench.state, relations={relation})
    bench.dispatch(joined, lambda: bench.ctx.on.relation_joined(relation, remote_unit=0), state)
    # The collector writes its (empty) tracing receivers back: nothing to do.
    (current,) = bench.state.relations
    answered = dataclasses.replace(current, remote_units_data={0: {"receivers": "[]"}})
    changed = EventStats(
        "cos-agent-relation-changed (collector's own data)", noop=True, expect=NO_BUILD
    )
    state = dataclasses.replace(bench.state, relations={answered})
    bench.dispatch(changed, lambda: bench.ctx.on.relation_changed(answered, remote_unit=0), state)
    idle = EventStats(
        f"update-status x{UPDATE_STATUS_HOOKS} (related)", noop=True, expect=NO_BUILD
    )
    for _ in range(UPDATE_STATUS_HOOKS):
        bench.dispatch(idle, bench.ctx.on.update_status, bench.state)
    port = EventStats(
        "config-changed metrics-port",
        expect={"restarts": 1, "reloads": 0, "relation_writes": 1, "lzma_compress": 0},
    )
    state = dataclasses.replace(bench.state, config={"metrics-port": 9100})
    bench.dispatch(port, bench.ctx.on.config_changed, state)
    same = EventStats("config-changed (same metrics-port)", noop=True, expect=NO_BUILD)
    bench.dispatch(same, bench.ctx.on.config_changed, bench.state)
    # A refresh may bring new code: built again, identical, so nothing is written.
    upgrade = EventStats("upgrade-charm (related)", noop=True, expect={"lzma_compress": 1})
    bench.dispatch(upgrade, bench.ctx.on.upgrade_charm, bench.state)
    return [joined, changed, idle, port, same, upgrade]


def alert_log_sequence(bench: Bench) -> list[EventStats]:
    """Turn the alert log off and on: one restart each (outputs change)."""
    bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
    stats = []
    for value in (False, True):
        change = EventStats(f"config-changed alert-log={str(value).lower()}", expect=ONE_RESTART)
        state = dataclasses.replace(bench.state, config={"alert-log": value})
        bench.dispatch(change, bench.ctx.on.config_changed, state)
        stats.append(change)
    return stats


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
        cold = cold_hooks(Path(base) / "cold")
        memory, limits = hostile.peak_memory(HERE, Path(base) / "memory")
    imports = import_times([str(CHARM / "src"), str(CHARM / "lib")])
    out = Path(argv[1])
    write_results(out, "falco", sequences, imports, limits, cold_hooks=cold)
    # Not a key bench_support writes (shared with the sidekick): added here, documented in
    # the charm's README.
    results = json.loads(out.read_text())
    results["peak_rss_mib"] = memory
    out.write_text(json.dumps(results, indent=2) + "\n")
    ratio = imports["ratio"]
    print(f"falco: import {imports['charm']:.3f}s vs ops {imports['ops']:.3f}s ({ratio:.2f}x)")
    for ref, figures in memory.items():
        print(
            f"falco: install syncing the '{ref}' commit: hook peak RSS"
            f" {figures['hook']:.0f} MiB, its largest child (git, ssh) at most"
            f" {figures['git']:.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
