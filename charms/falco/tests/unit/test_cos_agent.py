"""State-transition tests of cos-agent: what the collector on the machine is told, and when."""

from __future__ import annotations

import base64
import dataclasses
import json
import lzma
import sys
from typing import Any

import cos_content
import idle_hooks
import pytest
import yaml
from charm import FalcoCharm
from falco_rig import FakeClock
from machine import FakeMachine, changed_files
from ops import testing
from ops_probes import record_calls, record_relation_writes
from topology import MODEL_NAME, MODEL_UUID, RULE_LABELS

MODEL = testing.Model(name=MODEL_NAME, uuid=MODEL_UUID)
# INTERFACES.md section 4: the fields the collector requires, and the two it tolerates.
REQUIRED = {
    "metrics_alert_rules",
    "log_alert_rules",
    "dashboards",
    "metrics_scrape_jobs",
    "log_slots",
}
OPTIONAL = {"subordinate", "tracing_protocols"}
CONFIG = "etc/juju-falco/falco.yaml"
Ctx = testing.Context[FalcoCharm]


def collector() -> testing.Relation:
    """The opentelemetry-collector unit on the same machine (one remote unit: container scope)."""
    return testing.Relation(
        "cos-agent", remote_app_name="opentelemetry-collector", remote_units_data={0: {}}
    )


def published(state: testing.State) -> dict[str, Any]:
    """Return the decoded ``config`` this unit published on cos-agent."""
    (relation,) = (r for r in state.relations if r.endpoint == "cos-agent")
    data: dict[str, Any] = json.loads(relation.local_unit_data["config"])
    return data


def related(ctx: Ctx, state: testing.State, leader: bool = True) -> testing.State:
    """Install Falco, then relate a collector (joined)."""
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, model=MODEL, leader=leader))
    relation = collector()
    out = dataclasses.replace(out, relations={relation})
    return ctx.run(ctx.on.relation_joined(relation, remote_unit=0), out)


def falco_yaml(machine: FakeMachine) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((machine.root / CONFIG).read_text())
    return data


def block_cosl(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``import cosl...`` fail from now on, as if it were not installed."""
    for name in [n for n in sys.modules if n == "cosl" or n.startswith("cosl.")] + ["cosl"]:
        monkeypatch.setitem(sys.modules, name, None)


def test_joined_publishes_every_field_the_collector_needs(
    ctx: Ctx, state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco running. act: a collector joins. assert: config as INTERFACES.md §4."""
    out = related(ctx, state)

    config = published(out)
    assert set(config) == REQUIRED | OPTIONAL
    assert config["metrics_scrape_jobs"] == [
        {
            "job_name": "falco_falco",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": ["localhost:8765"]}],
        }
    ]
    assert (config["log_slots"], config["subordinate"], config["tracing_protocols"]) == (
        [],
        None,
        None,
    )
    (dashboard,) = config["dashboards"]
    decoded = json.loads(lzma.decompress(base64.b64decode(dashboard)))
    on_disk = json.loads((cos_content.DASHBOARDS_DIR / "falco-host-health.json").read_text())
    assert decoded == on_disk | {"tags": [*on_disk["tags"], "charm: falco"]}
    for rule_file in (config["metrics_alert_rules"], config["log_alert_rules"]):
        assert rule_file["groups"]
        for group in rule_file["groups"]:
            assert group["name"].startswith("prod_00000000_falco_")
            for rule in group["rules"]:
                assert rule["labels"].items() >= RULE_LABELS.items()
    # Written as canonical JSON, so the same content always has the same text.
    (relation,) = out.relations
    assert relation.local_unit_data["config"] == json.dumps(
        config, sort_keys=True, separators=(",", ":")
    )


@pytest.mark.parametrize("leader", [True, False])
def test_every_unit_publishes_its_own_config(
    ctx: Ctx, state: testing.State, machine: FakeMachine, leader: bool
) -> None:
    """arrange: a leader or a follower. act: collector joins. assert: config in its bag."""
    out = related(ctx, state, leader=leader)

    assert published(out)["metrics_scrape_jobs"][0]["static_configs"] == [
        {"targets": ["localhost:8765"]}
    ]


def test_relating_a_collector_never_restarts_falco(
    ctx: Ctx, state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco running. act: collector joins. assert: no restart, metrics already on."""
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, model=MODEL))
    machine.clear_calls()
    before = machine.files()
    relation = collector()

    with record_relation_writes() as writes:
        ctx.run(
            ctx.on.relation_joined(relation, remote_unit=0),
            dataclasses.replace(out, relations={relation}),
        )

    assert machine.restarts() == 0
    assert writes.count("relation_set") == 1
    # Only the charm's record of the built rules and dashboards.
    assert changed_files(before, machine.files()) == 1


def test_falco_serves_metrics_and_healthz_on_loopback_only(
    ctx: Ctx, state: testing.State, machine: FakeMachine
) -> None:
    """arrange: nothing related. act: install. assert: webserver and metrics settings."""
    ctx.run(ctx.on.install(), state)

    config = falco_yaml(machine)
    assert config["webserver"] == {
        "enabled": True,
        "threadiness": 1,
        "listen_port": 8765,
        "listen_address": "127.0.0.1",
        "k8s_healthz_endpoint": "/healthz",
        "prometheus_metrics_enabled": True,
        "ssl_enabled": False,
    }
    metrics = config["metrics"]
    assert metrics["enabled"] is True
    assert metrics["output_rule"] is False
    assert metrics["output_file"] == ""
    for wanted in (
        "rules_counters_enabled",
        "resource_utilization_enabled",
        "kernel_event_counters_enabled",
    ):
        assert metrics[wanted] is True


def test_no_op_hooks_write_nothing_and_neither_import_cosl_nor_compress(
    ctx: Ctx, state: testing.State, machine: FakeMachine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: config published. act: idle hooks, the collector's own write. assert: 0.

    The first hook built the rules and dashboards; later ones reuse the record, so they
    work without cosl and without compressing anything, and write nothing anywhere.
    """
    out = related(ctx, state)
    machine.clear_calls()
    before = machine.files()
    block_cosl(monkeypatch)
    (relation,) = out.relations
    # The collector writes back its (empty) tracing receivers: a relation-changed for us.
    answered = dataclasses.replace(relation, remote_units_data={0: {"receivers": "[]"}})

    with record_calls(lzma, ("compress",)) as compressions, record_relation_writes() as writes:
        for event in (ctx.on.update_status(), ctx.on.config_changed(), ctx.on.start()):
            out = ctx.run(event, out)
        out = ctx.run(
            ctx.on.relation_changed(answered, remote_unit=0),
            dataclasses.replace(out, relations={answered}),
        )

    assert compressions.count("compress") == 0
    assert writes.count("relation_set") == 0
    assert changed_files(before, machine.files()) == 0
    assert machine.restarts() == 0
    assert published(out)["metrics_scrape_jobs"]


def test_metrics_port_change_is_one_restart_and_moves_the_scrape_job(
    ctx: Ctx, state: testing.State, machine: FakeMachine
) -> None:
    """arrange: config published. act: metrics-port=9100. assert: 1 restart, 1 write."""
    out = related(ctx, state)
    machine.clear_calls()

    with record_relation_writes() as writes:
        out = ctx.run(
            ctx.on.config_changed(), dataclasses.replace(out, config={"metrics-port": 9100})
        )

    assert machine.restarts() == 1
    assert machine.systemctl_verbs().count("stop") == 1
    assert falco_yaml(machine)["webserver"]["listen_port"] == 9100
    assert writes.count("relation_set") == 1
    assert published(out)["metrics_scrape_jobs"][0]["static_configs"] == [
        {"targets": ["localhost:9100"]}
    ]
    assert out.unit_status == testing.ActiveStatus(
        "alerts stay on this host: integrate http-endpoint"
    )


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_invalid_metrics_port_blocks_and_changes_nothing(
    ctx: Ctx, state: testing.State, machine: FakeMachine, port: int
) -> None:
    """arrange: config published. act: an impossible port. assert: Blocked, nothing moved."""
    out = related(ctx, state)
    machine.clear_calls()
    before = machine.files()

    with record_relation_writes() as writes:
        out = ctx.run(
            ctx.on.config_changed(), dataclasses.replace(out, config={"metrics-port": port})
        )

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("invalid config 'metrics-port'")
    assert writes.count("relation_set") == 0
    assert changed_files(before, machine.files()) == 0
    assert machine.restarts() == 0
    assert published(out)["metrics_scrape_jobs"][0]["static_configs"] == [
        {"targets": ["localhost:8765"]}
    ]


def test_same_content_in_another_encoding_is_not_rewritten(
    ctx: Ctx, state: testing.State, machine: FakeMachine
) -> None:
    """arrange: the bag holds our config pretty-printed. act: update-status. assert: 0."""
    out = related(ctx, state)
    (relation,) = out.relations
    pretty = json.dumps(published(out), indent=4)
    rewritten = dataclasses.replace(relation, local_unit_data={"config": pretty})

    with record_relation_writes() as writes:
        out = ctx.run(ctx.on.update_status(), dataclasses.replace(out, relations={rewritten}))

    assert writes.count("relation_set") == 0
    (relation,) = out.relations
    assert relation.local_unit_data["config"] == pretty


@pytest.mark.parametrize("garbage", ["{not json", '{"dashboards": []}', ""])
def test_garbled_or_partial_config_is_put_right(
    ctx: Ctx, state: testing.State, machine: FakeMachine, garbage: str, clock: FakeClock
) -> None:
    """arrange: the bag holds something else. act: update-status. assert: rewritten once.

    At the next full reconcile: an update-status within the hour after one is idle
    (idle_hooks), so it runs an hour later.
    """
    out = related(ctx, state)
    clock.advance(idle_hooks.REFRESH_S / 60)
    want = published(out)
    (relation,) = out.relations
    damaged = dataclasses.replace(relation, local_unit_data={"config": garbage})

    with record_relation_writes() as writes:
        out = ctx.run(ctx.on.update_status(), dataclasses.replace(out, relations={damaged}))

    assert writes.count("relation_set") == 1
    assert published(out) == want


def test_upgrade_builds_again_and_writes_only_what_changed(
    ctx: Ctx, state: testing.State, machine: FakeMachine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: config published. act: upgrade-charm, with and without cosl. assert.

    A refresh may bring new code: the content is built again (one dashboard compressed),
    and since it came out the same, nothing is written. Without cosl that build fails,
    which shows the no-op test above would have caught a build.
    """
    out = related(ctx, state)
    machine.clear_calls()
    before = machine.files()

    with record_calls(lzma, ("compress",)) as compressions, record_relation_writes() as writes:
        ctx.run(ctx.on.upgrade_charm(), out)
    block_cosl(monkeypatch)
    with pytest.raises(testing.errors.UncaughtCharmError, match="cosl"):
        ctx.run(ctx.on.upgrade_charm(), out)

    assert compressions.count("compress") == 1
    assert writes.count("relation_set") == 0
    assert changed_files(before, machine.files()) == 0


def test_a_record_of_other_inputs_is_built_again(
    ctx: Ctx, state: testing.State, machine: FakeMachine, clock: FakeClock
) -> None:
    """arrange: the record's digest is someone else's. act: update-status. assert: rebuilt.

    At the next full reconcile, an hour later (see the test above).
    """
    out = related(ctx, state)
    clock.advance(idle_hooks.REFRESH_S / 60)
    record_file = machine.root / "var/lib/juju-falco/cos-agent-content.json"
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps(record | {"digest": "older", "content": {}}))

    with record_calls(lzma, ("compress",)) as compressions, record_relation_writes() as writes:
        ctx.run(ctx.on.update_status(), out)

    assert compressions.count("compress") == 1
    assert writes.count("relation_set") == 0
    assert json.loads(record_file.read_text()) == record


def test_invalid_config_at_join_publishes_nothing_until_fixed(
    ctx: Ctx, state: testing.State, machine: FakeMachine
) -> None:
    """arrange: an invalid port. act: collector joins, then the port is fixed. assert."""
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, model=MODEL))
    relation = collector()
    broken = dataclasses.replace(out, relations={relation}, config={"metrics-port": 0})

    out = ctx.run(ctx.on.relation_joined(relation, remote_unit=0), broken)
    (relation,) = out.relations
    assert "config" not in relation.local_unit_data

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={}))
    assert published(out)["metrics_scrape_jobs"][0]["job_name"] == "falco_falco"
