#!/usr/bin/env python3
"""Replay the issue's event sequences through ops.testing and count what each dispatch did.

Usage: ``bench.py <results.json>`` from the charm directory (``make bench`` does this).
Counted at the Juju and Pebble boundary (tests/shared/ops_probes.py): restarts (Pebble
replan/restart/start), container writes (push, make_dir, remove_path) and relation writes
(relation-set). A no-op event must leave all three at 0; a real change restarts exactly once.
``reloads``, ``file_writes`` and ``git_network_ops`` do not apply to this charm (no hot
reload, no machine files, no git) and are reported as 0.

``cold_hooks`` (tests/bench/cold.py): the no-op hooks of a unit with its relations in use,
each in a fresh interpreter through ``ops.main`` on the real Pebble, with their CPU, wall
time and hook-tool calls next to the floor (``import ops``) of the same rounds.

One more count, ``lzma_compress``, shows that the leader does not build its dashboards again
on every hook (src/shipped.py): no-op events of the sequences with the observability
relations expect 0.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import lzma
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHARM_DIR = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(CHARM_DIR / p) for p in ("src", "lib", "tests/shared", "tests", "tests/real")]

import addresses  # noqa: E402
import cold  # noqa: E402
import sidekick_states as states  # noqa: E402
from bench_support import EventStats, import_times, timed, write_results  # noqa: E402
from charm import FalcosidekickCharm  # noqa: E402
from ops import testing  # noqa: E402
from ops_probes import record_calls, record_pebble, record_relation_writes  # noqa: E402
from tls_material import Issued, make_ca  # noqa: E402

RESTARTS = ("replan_services", "restart_services", "start_services")
CONTAINER_WRITES = ("push", "make_dir", "remove_path")
LOKI_URL = "http://otelcol-0.otelcol-endpoints.fmodel.svc.cluster.local:3500/loki/api/v1/push"
INGRESS_URL = "https://ingress.example.com/fmodel-falcosidekick-k8s"
FALCO_UNITS = 200
NOT_APPLICABLE = {"reloads": 0, "file_writes": 0, "git_network_ops": 0}
NO_BUILD = {"lzma_compress": 0}

Ctx = testing.Context[FalcosidekickCharm]
Step = Callable[[testing.State], tuple[Any, testing.State]]


class Sequence:
    """Dispatches events one after the other, each on the previous output state."""

    def __init__(self, ctx: Ctx, state: testing.State, root: Path):
        self.ctx = ctx
        self.state = state
        self.root = root
        self.events: list[EventStats] = []

    def run(
        self,
        name: str,
        step: Step,
        times: int = 1,
        noop: bool = False,
        expect: dict[str, int] | None = None,
    ) -> None:
        """Dispatch the event ``step`` builds ``times`` times and record what it did."""
        stats = EventStats(name, noop=noop, expect=expect or {})
        for _ in range(times):
            event, state = step(self.state)
            with (
                record_pebble() as pebble,
                record_relation_writes() as relations,
                record_calls(lzma, ("compress",)) as compressions,
            ):
                self.state, seconds = timed(lambda: self.ctx.run(event, state))  # noqa: B023
            stats.add(
                seconds,
                {
                    "restarts": pebble.count(*RESTARTS),
                    "container_writes": pebble.count(*CONTAINER_WRITES),
                    "relation_writes": relations.count("relation_set"),
                    **NOT_APPLICABLE,
                    "lzma_compress": compressions.count("compress"),
                },
            )
        self.events.append(stats)

    def quiet(self, step: Step) -> None:
        """Dispatch an event that sets the scene and is not measured."""
        event, state = step(self.state)
        self.state = self.ctx.run(event, state)


def same(event: Any) -> Step:
    return lambda state: (event, state)


def add_relation(relation: testing.Relation, hook: str) -> Step:
    def step(state: testing.State) -> tuple[Any, testing.State]:
        new = dataclasses.replace(state, relations={*state.relations, relation})
        unit = {} if hook == "relation_created" else {"remote_unit": 0}
        return getattr(CTX.on, hook)(relation, **unit), new

    return step


def broken(endpoint: str) -> Step:
    def step(state: testing.State) -> tuple[Any, testing.State]:
        return CTX.on.relation_broken(states.relation(state, endpoint)), state

    return step


def answer_csr(ca: Issued, days: int) -> Step:
    def step(state: testing.State) -> tuple[Any, testing.State]:
        answered = states.issue_certificates(states.relation(state, "certificates"), ca, days)
        event = CTX.on.relation_changed(answered, remote_unit=0)
        return event, states.replace_relation(state, answered)

    return step


CTX: Ctx = testing.Context(FalcosidekickCharm)


# Juju creates the peer relation with the application: every sequence has it.
PEERS = testing.PeerRelation("sidekick-peers")


def fresh(root: Path, *relations: testing.Relation) -> Sequence:
    base = {testing.Relation("http-endpoint", remote_app_name="falco"), PEERS, *relations}
    return Sequence(CTX, states.state(root, leader=True, relations=base), root)


def lifecycle(
    seq: Sequence, relation: testing.Relation, hook: str, names: tuple[str, str]
) -> list[EventStats]:
    """Start the sidekick, then add ``relation`` (one restart), idle, remove it (one restart)."""
    seq.quiet(same(CTX.on.pebble_ready(states.container(seq.root))))
    seq.run(names[0], add_relation(relation, hook), expect={"restarts": 1})
    seq.run("update-status", same(CTX.on.update_status()), times=10, noop=True)
    seq.run(names[1], broken(relation.endpoint), expect={"restarts": 1})
    return seq.events


def observability(seq: Sequence) -> list[EventStats]:
    """Relate metrics, dashboards and log forwarding to a running sidekick, idle, unrelate.

    Log targets are not services: adding or removing them must not restart the sidekick.
    """
    seq.quiet(same(CTX.on.pebble_ready(states.container(seq.root))))
    metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    seq.run(  # our unit's address, and the leader's jobs, metadata and rules
        "metrics-endpoint-created",
        add_relation(metrics, "relation_created"),
        expect={"restarts": 0, "relation_writes": 2},
    )
    dashboards = testing.Relation("grafana-dashboard", remote_app_name="grafana")
    seq.run(
        "grafana-dashboard-created",
        add_relation(dashboards, "relation_created"),
        expect={"restarts": 0, "relation_writes": 1},
    )
    logging = testing.Relation(
        "logging",
        remote_app_name="loki",
        remote_units_data={0: {"endpoint": json.dumps({"url": LOKI_URL})}},
    )
    seq.run("logging-changed", add_relation(logging, "relation_changed"), expect={"restarts": 0})
    seq.run("update-status", same(CTX.on.update_status()), times=10, noop=True, expect=NO_BUILD)
    seq.run("config-changed", same(CTX.on.config_changed()), times=3, noop=True, expect=NO_BUILD)
    seq.run("logging-broken", broken("logging"), expect={"restarts": 0, **NO_BUILD})
    return seq.events


def each_falco_unit(hook: str) -> Step:
    """Return a step that dispatches ``hook`` on http-endpoint from the next Falco unit."""
    units = itertools.cycle(range(FALCO_UNITS))

    def step(state: testing.State) -> tuple[Any, testing.State]:
        relation = states.relation(state, "http-endpoint")
        return getattr(CTX.on, hook)(relation, remote_unit=next(units)), state

    return step


def falco_fleet(seq: Sequence, ca: Issued) -> list[EventStats]:
    """A sidekick serving its own certificate to a Falco application of FALCO_UNITS units.

    Changing ``port`` changes the published URL: one restart and two relation writes (the
    unit's report to its peers, then the URL the leader publishes from it). Then
    every Falco unit joins and changes on http-endpoint (the requirer writes nothing we
    read) and update-status runs with nothing changed: 0 of everything.
    """
    seq.quiet(same(CTX.on.pebble_ready(states.container(seq.root))))
    seq.quiet(lambda s: (CTX.on.relation_created(states.relation(s, "certificates")), s))
    seq.quiet(answer_csr(ca, 90))

    def new_port(state: testing.State) -> tuple[Any, testing.State]:
        return CTX.on.config_changed(), dataclasses.replace(state, config={"port": 2901})

    seq.run(
        "config-changed",
        new_port,
        expect={"restarts": 1, "relation_writes": 2, "container_writes": 1},
    )
    for hook in ("relation_joined", "relation_changed"):
        seq.run(
            "http-endpoint-" + hook.replace("_", "-"),
            each_falco_unit(hook),
            times=FALCO_UNITS,
            noop=True,
        )
    seq.run("update-status", same(CTX.on.update_status()), times=50, noop=True)
    return seq.events


def with_outputs(root: Path) -> list[EventStats]:
    """Fan out to Slack (URL from a secret) and an Alertmanager related over alertmanager.

    Setting the outputs, a new secret revision and a new Alertmanager each restart once; the
    same secret revision again, the same Alertmanager data again and idle hooks do nothing.
    """
    secret = testing.Secret(tracked_content={"slack-webhook": "https://hooks.example/T/B/one"})
    relations = {
        testing.Relation("http-endpoint", remote_app_name="falco"),
        PEERS,
        states.ingress_relation(INGRESS_URL),
        states.loki_relation(LOKI_URL),
    }
    state = states.state(root, leader=True, relations=relations, secrets={secret})
    seq = Sequence(CTX, state, root)
    seq.quiet(same(CTX.on.pebble_ready(states.container(root))))
    config = {
        "outputs": "slack: {webhookurl: {secret: slack-webhook}, minimumpriority: critical}\n"
        "alertmanager: {minimumpriority: error}\n",
        "outputs-secret": secret.id,
    }
    alertmanager = testing.Relation(
        "alertmanager",
        remote_app_name="alertmanager",
        remote_units_data={0: {"url": "http://alertmanager-0.alertmanager-endpoints:9093"}},
    )

    def set_outputs(state: testing.State) -> tuple[Any, testing.State]:
        with_relation = dataclasses.replace(state, relations={*state.relations, alertmanager})
        return CTX.on.config_changed(), dataclasses.replace(with_relation, config=config)

    seq.run("config-changed", set_outputs, expect={"restarts": 1, "container_writes": 1})
    seq.run("update-status", same(CTX.on.update_status()), times=10, noop=True)

    def secret_changed(content: dict[str, str] | None) -> Step:
        def step(state: testing.State) -> tuple[Any, testing.State]:
            (current,) = state.secrets
            new = dataclasses.replace(current, latest_content=content) if content else current
            return CTX.on.secret_changed(new), dataclasses.replace(state, secrets={new})

        return step

    seq.run("secret-changed", secret_changed(None), times=3, noop=True)
    rotated = {"slack-webhook": "https://hooks.example/T/B/two"}
    seq.run("secret-rotated", secret_changed(rotated), expect={"restarts": 1})

    def alertmanager_changed(state: testing.State) -> tuple[Any, testing.State]:
        return CTX.on.relation_changed(
            states.relation(state, "alertmanager"), remote_unit=0
        ), state

    seq.run("alertmanager-changed", alertmanager_changed, times=3, noop=True)
    seq.run("config-changed", same(CTX.on.config_changed()), times=3, noop=True)
    return seq.events


def main(output: Path) -> None:
    """Run every sequence, write the results where bench/report.py reads them."""
    ca = make_ca("Bench CA")
    addresses.resolve = states.POD_DNS.get  # the pod's DNS, without real lookups
    sequences: dict[str, list[EventStats]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        roots = iter(Path(tmp, str(n)) for n in range(10))

        def root() -> Path:
            path = next(roots)
            path.mkdir()
            return path

        seq = fresh(root(), states.ingress_relation(INGRESS_URL), states.loki_relation(LOKI_URL))
        pebble_ready = same(CTX.on.pebble_ready(states.container(seq.root)))
        seq.run("pebble-ready", pebble_ready, expect={"restarts": 1})
        seq.run("config-changed", same(CTX.on.config_changed()), times=3, noop=True)
        seq.run("update-status", same(CTX.on.update_status()), times=10, noop=True)
        sequences["steady"] = seq.events

        seq = fresh(root(), states.certificates_relation())
        seq.quiet(same(CTX.on.pebble_ready(states.container(seq.root))))
        seq.quiet(lambda s: (CTX.on.relation_created(states.relation(s, "certificates")), s))
        seq.run("certificate-available", answer_csr(ca, 90), expect={"restarts": 1})
        seq.run("update-status", same(CTX.on.update_status()), times=10, noop=True)
        seq.run("certificate-renewed", answer_csr(ca, 60), expect={"restarts": 1})
        seq.run("config-changed", same(CTX.on.config_changed()), times=3, noop=True)
        sequences["certificates"] = seq.events

        ingress = states.ingress_relation(INGRESS_URL)
        sequences["ingress"] = lifecycle(
            fresh(root()), ingress, "relation_changed", ("ingress-ready", "ingress-revoked")
        )
        sequences["send-loki-logs"] = lifecycle(
            fresh(root(), states.ingress_relation(INGRESS_URL)),
            states.loki_relation(LOKI_URL),
            "relation_joined",
            ("send-loki-logs-joined", "send-loki-logs-broken"),
        )

        behind_ingress = fresh(root(), states.ingress_relation(INGRESS_URL))
        sequences["observability"] = observability(behind_ingress)

        falco = testing.Relation(
            "http-endpoint",
            remote_app_name="falco",
            remote_units_data={n: {} for n in range(FALCO_UNITS)},
        )
        fleet_root = root()
        fleet = states.state(
            fleet_root, leader=True, relations={falco, states.certificates_relation(), PEERS}
        )
        sequences["falco-fleet"] = falco_fleet(Sequence(CTX, fleet, fleet_root), ca)
        sequences["outputs"] = with_outputs(root())

        cold_hooks = {
            "hooks": cold.measure(Path(tmp, "cold"), ca),
            "prior": cold.cold_hooks.PRIOR,
        }
    imports = import_times(["src", "lib"])
    write_results(output, "falcosidekick-k8s", sequences, imports, cold_hooks=cold_hooks)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
