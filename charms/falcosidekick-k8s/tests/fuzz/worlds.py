"""A sidekick in service to fuzz, and the properties every outcome must have.

A :class:`World` is a settled state (everything related, Active, a no-op hook does nothing)
with the container's /etc/falcosidekick kept in a directory. Each example runs on a fresh
copy of that directory, so examples never see each other's writes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import addresses
import pytest
import sidekick_states as states
from charm import FalcosidekickCharm
from fuzz_support import assert_sane_status
from ops import pebble, testing
from ops_probes import (
    PEBBLE_FILE_WRITES,
    PEBBLE_PLAN_CHANGES,
    PEBBLE_SERVICE_CHANGES,
    Calls,
    record_pebble,
    record_relation_writes,
)
from tls_material import Issued

Ctx = testing.Context[FalcosidekickCharm]
INGRESS_URL = "https://ingress.example.com/fmodel-falcosidekick-k8s"
LOKI_URL = "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
RESTARTS = ("replan_services", "restart_services", "start_services")
# A log record quotes remote values by their first characters only (issue 14: a 2 MiB URL was
# logged in full, twice per hook): whatever comes in, no record at INFO or above is longer
# than this. (At DEBUG, off in Juju by default, the tls library logs whole provider bags.)
MAX_LOG_RECORD = 1000
PEBBLE_MUTATIONS = PEBBLE_FILE_WRITES + PEBBLE_PLAN_CHANGES + PEBBLE_SERVICE_CHANGES


def endpoint_bag(url: str) -> dict[str, str]:
    return {"endpoint": json.dumps({"url": url})}


class World:
    """A settled sidekick: its state, and the directory behind /etc/falcosidekick."""

    def __init__(self, state: testing.State, root: Path):
        self.state = state
        self.root = root

    def __repr__(self) -> str:
        """Keep failure reports readable: the state is the same for every example."""
        return f"World({self.root.name})"

    @contextmanager
    def copy(self, tmp: Path) -> Iterator[tuple[testing.State, Path]]:
        """Yield the state with its config directory copied to a new place under ``tmp``."""
        root = tmp / "etc-falcosidekick"
        shutil.copytree(self.root, root)
        container = self.state.get_container(states.CONTAINER)
        moved = dataclasses.replace(
            container,
            mounts={
                **container.mounts,
                "config": testing.Mount(location=states.CONFIG_DIR, source=root),
            },
        )
        yield dataclasses.replace(self.state, containers={moved}), root

    def relation(self, endpoint: str) -> testing.Relation:
        return states.relation(self.state, endpoint)


def build_world(ctx: Ctx, root: Path, ca: Issued | None) -> World:
    """Return a leader related on every endpoint, TLS from ``ca`` (or the ingress only).

    With ``ca`` the ingress reaches the sidekick over HTTPS (ingress-backend-scheme=https),
    so that the certificate is in use.
    """
    relations = {
        states.ingress_relation(INGRESS_URL),
        states.loki_relation(LOKI_URL),
        testing.Relation(
            "logging", remote_app_name="loki", remote_units_data={0: endpoint_bag(LOKI_URL)}
        ),
        testing.Relation(
            "http-endpoint", remote_app_name="falco", remote_units_data={0: {}, 1: {}}
        ),
        testing.Relation("metrics-endpoint", remote_app_name="prometheus"),
        testing.Relation("grafana-dashboard", remote_app_name="grafana"),
        testing.PeerRelation("sidekick-peers"),
    }
    config = {}
    if ca:
        relations.add(states.certificates_relation())
        config["ingress-backend-scheme"] = "https"  # end-to-end TLS: all of it is in use
    state = states.state(root, leader=True, relations=relations, config=config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(addresses, "resolve", states.POD_DNS.get)
        if ca:
            out = states.with_certificate(ctx, state, ca)
        else:
            out = ctx.run(ctx.on.pebble_ready(states.container(root)), state)
        out = ctx.run(ctx.on.config_changed(), out)
        world = World(out, root)
        # The properties below compare with this state: it must be a fixed point.
        outcome = dispatch(ctx, out, ctx.on.update_status(), root)
    assert out.unit_status == testing.ActiveStatus(), out.unit_status
    outcome.assert_untouched(out)
    return world


@dataclass
class Outcome:
    """What one dispatch did: the output state, Pebble calls, relation-set calls, files."""

    out: testing.State
    pebble: Calls
    relation_sets: int
    files_before: dict[str, bytes]
    files_after: dict[str, bytes]
    longest_log: int = 0

    @property
    def restarts(self) -> int:
        return self.pebble.count(*RESTARTS)

    def assert_sane(self) -> None:
        """No crash got here; the status is one of four kinds and says why if not Active.

        And no log record holds a whole remote value.
        """
        assert_sane_status(self.out.unit_status)
        assert self.longest_log <= MAX_LOG_RECORD

    def assert_untouched(self, before: testing.State) -> None:
        """Nothing was written to the container, and no relation data of ours changed."""
        assert {
            name: self.pebble.count(name) for name in PEBBLE_MUTATIONS if self.pebble.count(name)
        } == {}
        assert self.files_after == self.files_before
        assert self.relation_sets == 0
        assert local_data(self.out) == local_data(before)
        assert still_accepting(self.out)

    def assert_restarts_only_for_new_files(self) -> None:
        """At most one restart, and one exactly when the files the sidekick reads changed."""
        assert self.restarts == (1 if self.files_after != self.files_before else 0)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def local_data(state: testing.State) -> dict[int, tuple[dict[str, str], dict[str, str]]]:
    """Return our app and unit bags of every relation, by relation id."""
    return {
        relation.id: (dict(relation.local_app_data), dict(relation.local_unit_data))
        for relation in state.relations
    }


def still_accepting(out: testing.State) -> bool:
    container = out.get_container(states.CONTAINER)
    return container.service_statuses.get("falcosidekick") == pebble.ServiceStatus.ACTIVE


class _LongestRecord(logging.Handler):
    """Remember the length of the longest log message emitted while attached."""

    longest = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.longest = max(self.longest, len(record.getMessage()))


def dispatch(ctx: Ctx, state: testing.State, event: Any, root: Path) -> Outcome:
    """Run ``event`` on ``state`` and record what it did."""
    before = snapshot(root)
    records = _LongestRecord(logging.INFO)
    logging.getLogger().addHandler(records)
    try:
        with record_pebble() as pebble_calls, record_relation_writes() as writes:
            out = ctx.run(event, state)
    finally:
        logging.getLogger().removeHandler(records)
    return Outcome(
        out, pebble_calls, writes.count("relation_set"), before, snapshot(root), records.longest
    )
