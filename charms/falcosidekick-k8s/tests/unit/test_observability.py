"""State-transition tests of metrics-endpoint, grafana-dashboard, logging and the alert rules.

Every databag is decoded the way the receiving side does and checked against INTERFACES.md:
JSON text per key (raw strings for the prometheus_scrape unit keys), required fields, the
dashboards' xz+base64 content, and the Pebble log-targets layer.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import lzma
import sys
import uuid
from pathlib import Path
from typing import Any

import grafana_dashboard
import idle_hooks
import pytest
import shipped
import sidekick_states as states
from charm import FalcosidekickCharm
from ops import pebble, testing
from ops_probes import record_calls, record_pebble, record_relation_writes
from tls_material import Issued

Ctx = testing.Context[FalcosidekickCharm]
INGRESS_URL = "https://ingress.example.com/fmodel-falcosidekick-k8s"
TOPOLOGY = states.TOPOLOGY
LOKI_0 = "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
LOKI_1 = "http://loki-1.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
LABELS = {
    "product": "Juju",
    "charm": "falcosidekick-k8s",
    "juju_model": "fmodel",
    "juju_model_uuid": "00000000-0000-4000-8000-000000000001",
    "juju_application": "falcosidekick-k8s",
    "juju_unit": "falcosidekick-k8s/0",
    "job": "juju_fmodel_00000000_falcosidekick-k8s",
}


def network(address: str) -> testing.Network:
    return testing.Network("metrics-endpoint", [testing.BindAddress([testing.Address(address)])])


def logging_relation(*urls: str | None) -> testing.Relation:
    """Return a logging relation whose units publish ``urls`` (None: nothing yet)."""
    units = {
        number: ({"endpoint": json.dumps({"url": url})} if url else {})
        for number, url in enumerate(urls)
    }
    return testing.Relation("logging", remote_app_name="loki", remote_units_data=units)


def running(ctx: Ctx, root: Path, *relations: testing.Relation, **kwargs: Any) -> testing.State:
    """Return a leader running the sidekick behind an ingress, with ``relations``."""
    state = states.state(
        root,
        leader=True,
        relations={states.ingress_relation(INGRESS_URL), *relations},
        **kwargs,
    )
    return ctx.run(ctx.on.pebble_ready(states.container(root)), state)


def decode_dashboard(content: str) -> dict[str, Any]:
    """Decode a template's content the way Grafana does: base64, then xz."""
    assert content.startswith("/Td6WFo")  # the xz magic, base64-encoded
    data = json.loads(lzma.decompress(base64.b64decode(content)))
    assert isinstance(data, dict)
    return data


# metrics-endpoint ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "target"),
    [("ingress", "*:4443"), ("certificates", "*:2810"), ("neither", None)],
)
def test_scrape_job_targets_where_metrics_answer(
    ctx: Ctx, root: Path, ca: Issued, mode: str, target: str | None
) -> None:
    """arrange: a TLS mode, port 4443. act: metrics-endpoint created. assert: bags, job target.

    With TLS, /metrics is plain HTTP on 2810; behind an ingress only, on the listen port;
    on loopback only, nowhere a scraper can reach: no job.
    """
    metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    extra = {
        "ingress": {states.ingress_relation(INGRESS_URL)},
        "certificates": {states.certificates_relation()},
        "neither": set(),
    }[mode]
    state = states.state(root, leader=True, config={"port": 4443}, relations={metrics, *extra})
    if mode == "certificates":
        state = states.with_certificate(ctx, state, ca)
    else:
        state = ctx.run(ctx.on.pebble_ready(states.container(root)), state)

    out = ctx.run(ctx.on.relation_created(states.relation(state, "metrics-endpoint")), state)

    sent = states.relation(out, "metrics-endpoint")
    assert set(sent.local_app_data) == {"scrape_jobs", "scrape_metadata", "alert_rules"}
    jobs = json.loads(sent.local_app_data["scrape_jobs"])
    expected = [
        {
            "job_name": "falcosidekick",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": [target]}],
        }
    ]
    assert jobs == (expected if target else [])
    assert json.loads(sent.local_app_data["scrape_metadata"]) == TOPOLOGY
    rules = json.loads(sent.local_app_data["alert_rules"])
    assert {rule["alert"] for group in rules["groups"] for rule in group["rules"]} == {
        "FalcosidekickTargetDown",
        "FalcosidekickTargetAbsent",
        "FalcosidekickOutputErrors",
        "FalcosidekickRejectedInputs",
    }
    # Unit keys are raw strings, not JSON.
    assert sent.local_unit_data["prometheus_scrape_unit_address"] == "192.0.2.0"
    assert sent.local_unit_data["prometheus_scrape_unit_name"] == "falcosidekick-k8s/0"


def test_non_leader_publishes_only_its_address(ctx: Ctx, root: Path) -> None:
    """arrange: not leader. act: metrics-endpoint created. assert: unit bag only."""
    metrics = testing.Relation("metrics-endpoint")
    state = states.state(root, leader=False, relations={metrics})

    out = ctx.run(ctx.on.relation_created(metrics), state)

    sent = states.relation(out, "metrics-endpoint")
    assert sent.local_app_data == {}
    assert sent.local_unit_data["prometheus_scrape_unit_name"] == "falcosidekick-k8s/0"


def test_new_pod_ip_is_published_on_update_status_and_nothing_else(ctx: Ctx, root: Path) -> None:
    """arrange: scraped unit. act: pod IP changes, update-status twice. assert: one write."""
    metrics = testing.Relation("metrics-endpoint")
    out = running(ctx, root, metrics, networks={network("10.1.0.5")})
    moved = dataclasses.replace(out, networks={network("10.1.0.9")})

    with record_relation_writes() as writes:
        moved = ctx.run(ctx.on.update_status(), moved)
    first = writes.count("relation_set")
    with record_relation_writes() as writes:
        ctx.run(ctx.on.update_status(), moved)

    sent = states.relation(moved, "metrics-endpoint")
    assert sent.local_unit_data["prometheus_scrape_unit_address"] == "10.1.0.9"
    assert (first, writes.count("relation_set")) == (1, 0)


def test_losing_tls_withdraws_the_scrape_job(ctx: Ctx, root: Path) -> None:
    """arrange: scraped behind an ingress. act: ingress broken. assert: no job, rules stay."""
    metrics = testing.Relation("metrics-endpoint")
    out = running(ctx, root, metrics)

    out = ctx.run(ctx.on.relation_broken(states.relation(out, "ingress")), out)

    sent = states.relation(out, "metrics-endpoint").local_app_data
    assert json.loads(sent["scrape_jobs"]) == []
    assert json.loads(sent["alert_rules"])["groups"]


# grafana-dashboard -----------------------------------------------------------------------


def test_dashboards_wire_format_round_trips_to_the_files(ctx: Ctx, root: Path) -> None:
    """arrange: leader. act: grafana-dashboard created. assert: one key, templates decode."""
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana")
    state = states.state(root, leader=True, relations={relation})

    out = ctx.run(ctx.on.relation_created(relation), state)

    bag = states.relation(out, "grafana-dashboard").local_app_data
    assert set(bag) == {"dashboards"}
    sent = json.loads(bag["dashboards"])
    assert uuid.UUID(sent["uuid"]).version == 4
    files = {
        f"file:{p.stem}": json.loads(p.read_text()) for p in grafana_dashboard.dashboard_files()
    }
    assert (
        set(sent["templates"])
        == set(files)
        == {
            "file:falco-security-alerts",
            "file:falco-pipeline-health",
        }
    )
    for key, template in sent["templates"].items():
        dashboard = decode_dashboard(template["content"])
        assert dashboard == {
            **files[key],
            "tags": [*files[key]["tags"], "charm: falcosidekick-k8s"],
        }
        assert template["charm"] == "falcosidekick-k8s"
        alt = hashlib.shake_256(f"falcosidekick-k8s-{key}".encode()).hexdigest(8)
        assert template["dashboard_alt_uid"] == alt
    alerts, health = (
        sent["templates"]["file:falco-security-alerts"],
        sent["templates"]["file:falco-pipeline-health"],
    )
    # Falco alerts carry the Falco units' topology: no dropdowns, no matchers for ours.
    assert (alerts["inject_dropdowns"], alerts["juju_topology"]) == (False, {})
    assert health["inject_dropdowns"] is True
    assert health["juju_topology"] == {
        k: TOPOLOGY[k] for k in ("model", "model_uuid", "application", "unit")
    }


def test_dashboards_are_rewritten_only_when_they_change(ctx: Ctx, root: Path) -> None:
    """arrange: dashboards sent. act: no-op hooks, then a new leader. assert: 0, then 1 write."""
    relation = testing.Relation("grafana-dashboard")
    state = states.state(root, leader=True, relations={relation})
    sent = ctx.run(ctx.on.relation_created(relation), state)
    before = json.loads(states.relation(sent, "grafana-dashboard").local_app_data["dashboards"])

    with record_relation_writes() as writes:
        for event in (ctx.on.config_changed(), ctx.on.upgrade_charm(), ctx.on.leader_elected()):
            sent = ctx.run(event, sent)
    noop_writes = writes.count("relation_set")
    other_leader = testing.Context(FalcosidekickCharm, unit_id=1)
    out = other_leader.run(other_leader.on.leader_elected(), sent)

    after = json.loads(states.relation(out, "grafana-dashboard").local_app_data["dashboards"])
    assert noop_writes == 0
    assert after["uuid"] != before["uuid"]
    juju_topology = after["templates"]["file:falco-pipeline-health"]["juju_topology"]
    assert juju_topology["unit"] == "falcosidekick-k8s/1"


def test_unreadable_dashboards_bag_is_replaced(ctx: Ctx, root: Path) -> None:
    """arrange: our bag holds garbage (an older charm). act: config-changed. assert: rewritten."""
    relation = testing.Relation("grafana-dashboard", local_app_data={"dashboards": "{"})
    state = states.state(root, leader=True, relations={relation})

    out = ctx.run(ctx.on.config_changed(), state)

    sent = json.loads(states.relation(out, "grafana-dashboard").local_app_data["dashboards"])
    assert len(sent["templates"]) == 2


# logging: Pebble log forwarding ----------------------------------------------------------


def test_log_targets_one_per_loki_unit_without_restart(ctx: Ctx, root: Path) -> None:
    """arrange: sidekick running. act: two Loki units publish endpoints. assert: layer shape.

    Log targets are not services: nothing is restarted and no file is written.
    """
    out = running(ctx, root)
    relation = logging_relation(LOKI_0, LOKI_1)

    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.relation_changed(relation, remote_unit=1),
            dataclasses.replace(out, relations={*out.relations, relation}),
        )

    plan = out.get_container(states.CONTAINER).plan
    assert {name: target.to_dict() for name, target in plan.log_targets.items()} == {
        f"loki/{n}": {
            "override": "replace",
            "type": "loki",
            "location": url,
            "services": ["all"],
            "labels": LABELS,
        }
        for n, url in enumerate((LOKI_0, LOKI_1))
    }
    layers = out.get_container(states.CONTAINER).layers
    assert set(layers["falcosidekick-log-forwarding"].to_dict()) == {"summary", "log-targets"}
    assert pebble_calls.count("add_layer") == 1
    assert pebble_calls.count("replan_services", "restart_services", "start_services", "push") == 0
    bag = states.relation(out, "logging").local_app_data
    assert json.loads(bag["metadata"]) == TOPOLOGY
    assert json.loads(bag["alert_rules"]) == {}


def test_departed_unit_target_is_disabled_and_broken_disables_all(ctx: Ctx, root: Path) -> None:
    """arrange: targets for two units. act: loki/1 departs, then broken. assert: disabled."""
    relation = logging_relation(LOKI_0, LOKI_1)
    out = running(ctx, root, relation)
    departed = dataclasses.replace(
        states.relation(out, "logging"),
        remote_units_data={0: {"endpoint": json.dumps({"url": LOKI_0})}},
    )

    out = ctx.run(
        ctx.on.relation_departed(departed, remote_unit=1, departing_unit=1),
        states.replace_relation(out, departed),
    )
    after_departure = dict(out.get_container(states.CONTAINER).plan.log_targets)
    out = ctx.run(ctx.on.relation_broken(states.relation(out, "logging")), out)

    disabled = {
        "override": "replace",
        "type": "loki",
        "location": "(removed)",
        "services": ["-all"],
    }
    assert after_departure["loki/1"].to_dict() == disabled
    assert after_departure["loki/0"].to_dict()["location"] == LOKI_0
    targets = out.get_container(states.CONTAINER).plan.log_targets
    assert {name: t.to_dict() for name, t in targets.items()} == {
        "loki/0": disabled,
        "loki/1": disabled,
    }


def test_log_targets_wait_until_every_unit_has_an_endpoint(ctx: Ctx, root: Path) -> None:
    """arrange: loki/1 has no endpoint yet. act: changed. assert: plan untouched, Waiting."""
    out = running(ctx, root)
    relation = logging_relation(LOKI_0, None)

    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.relation_changed(relation, remote_unit=0),
            dataclasses.replace(out, relations={*out.relations, relation}),
        )

    assert out.get_container(states.CONTAINER).plan.log_targets == {}
    assert pebble_calls.count("add_layer") == 0
    assert out.unit_status == testing.WaitingStatus(
        "log targets unchanged: no Loki endpoint from loki/1 on 'logging'"
    )


def test_status_names_the_logging_units_that_keep_the_old_targets(ctx: Ctx, root: Path) -> None:
    """arrange: forwarding to loki/0. act: two new units, one silent, one garbage. assert.

    The old targets stay and the status says which units hold them back; once both publish,
    the targets follow and the status is Active again.
    """
    out = running(ctx, root, logging_relation(LOKI_0))
    grown = dataclasses.replace(
        states.relation(out, "logging"),
        remote_units_data={
            0: {"endpoint": json.dumps({"url": LOKI_0})},
            1: {},
            2: {"endpoint": json.dumps({"url": "loki:3100"})},
        },
    )

    waiting = ctx.run(
        ctx.on.relation_changed(grown, remote_unit=2), states.replace_relation(out, grown)
    )
    ready = dataclasses.replace(
        grown,
        remote_units_data={n: {"endpoint": json.dumps({"url": LOKI_0})} for n in range(3)},
    )
    out = ctx.run(
        ctx.on.relation_changed(ready, remote_unit=2), states.replace_relation(waiting, ready)
    )

    assert set(waiting.get_container(states.CONTAINER).plan.log_targets) == {"loki/0"}
    assert waiting.unit_status == testing.WaitingStatus(
        "log targets unchanged: no Loki endpoint from loki/1 and 1 more on 'logging'"
    )
    assert set(out.get_container(states.CONTAINER).plan.log_targets) == {
        "loki/0",
        "loki/1",
        "loki/2",
    }
    assert out.unit_status == testing.ActiveStatus(
        "alerts are not stored: integrate 'send-loki-logs'"
    )


def test_log_targets_are_applied_again_to_a_new_container(ctx: Ctx, root: Path) -> None:
    """arrange: forwarding set up. act: the pod restarts (empty plan), pebble-ready. assert."""
    out = running(ctx, root, logging_relation(LOKI_0))
    fresh = states.container(root)

    with record_pebble() as pebble_calls:
        again = ctx.run(ctx.on.pebble_ready(fresh), dataclasses.replace(out, containers={fresh}))
    with record_pebble() as noop_calls:
        ctx.run(ctx.on.update_status(), again)

    assert set(again.get_container(states.CONTAINER).plan.log_targets) == {"loki/0"}
    assert pebble_calls.count("add_layer") == 2  # the service, then the log targets
    assert noop_calls.by_method == {}


def test_logging_waits_for_pebble(ctx: Ctx, root: Path) -> None:
    """arrange: Pebble unreachable. act: logging changed. assert: nothing attempted, Waiting."""
    relation = logging_relation(LOKI_0)
    state = states.state(
        root,
        relations={relation, states.ingress_relation(INGRESS_URL)},
        containers={states.container(root, can_connect=False)},
    )

    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)

    assert out.unit_status == testing.WaitingStatus(
        "waiting for Pebble in the falcosidekick container"
    )


# send-loki-logs: the Falco alert rules ---------------------------------------------------


def test_loki_consumer_sends_falco_rules_without_topology_labels(ctx: Ctx, root: Path) -> None:
    """arrange: leader, Loki related. act: joined. assert: metadata and label-free rules.

    The receiver names the rule file after ``metadata`` and injects no matchers into rules
    that lack the juju_model/juju_model_uuid/juju_application labels.
    """
    loki = states.loki_relation(LOKI_0)
    state = states.state(root, leader=True, relations={loki})

    out = ctx.run(ctx.on.relation_joined(loki, remote_unit=0), state)

    bag = states.relation(out, "send-loki-logs").local_app_data
    assert set(bag) == {"metadata", "alert_rules"}
    assert json.loads(bag["metadata"]) == TOPOLOGY
    rules = json.loads(bag["alert_rules"])
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert not {"juju_model", "juju_model_uuid", "juju_application"} & set(rule["labels"])
            assert '{juju_charm="falco"}' in rule["expr"]


# no-op -----------------------------------------------------------------------------------


def test_no_op_hooks_write_nothing_with_every_relation(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: TLS, Loki, Falco, metrics, dashboards, logging. act: no-op hooks. assert: 0."""
    relations = {
        states.certificates_relation(),
        testing.Relation("http-endpoint"),
        states.loki_relation(LOKI_0),
        testing.Relation("metrics-endpoint"),
        testing.Relation("grafana-dashboard"),
        logging_relation(LOKI_0),
    }
    out = states.with_certificate(ctx, states.state(root, leader=True, relations=relations), ca)
    out = ctx.run(ctx.on.config_changed(), out)

    with record_pebble() as pebble_calls, record_relation_writes() as relation_writes:
        for event in (ctx.on.config_changed(), ctx.on.update_status(), ctx.on.upgrade_charm()):
            out = ctx.run(event, out)
        for relation in out.relations:
            if relation.endpoint in ("metrics-endpoint", "grafana-dashboard", "logging"):
                out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), out)

    assert pebble_calls.by_method == {}
    assert relation_writes.count("relation_set") == 0
    assert out.unit_status == testing.ActiveStatus()
    assert (
        (out.get_container(states.CONTAINER).service_statuses["falcosidekick"])
        == pebble.ServiceStatus.ACTIVE
    )


def test_malformed_logging_endpoint_keeps_the_current_targets(ctx: Ctx, root: Path) -> None:
    """arrange: forwarding to loki/0. act: loki/0 writes garbage. assert: plan unchanged."""
    out = running(ctx, root, logging_relation(LOKI_0))
    broken = dataclasses.replace(
        states.relation(out, "logging"), remote_units_data={0: {"endpoint": "{"}}
    )

    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.relation_changed(broken, remote_unit=0), states.replace_relation(out, broken)
        )

    assert out.get_container(states.CONTAINER).plan.log_targets["loki/0"].location == LOKI_0
    assert pebble_calls.by_method == {}
    assert out.unit_status == testing.WaitingStatus(
        "log targets unchanged: no Loki endpoint from loki/0 on 'logging'"
    )


# rules and dashboards are built only when their inputs change -----------------------------

SHIPPING = ("metrics-endpoint", "grafana-dashboard", "send-loki-logs")


def block_cosl(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``import cosl...`` fail, as if it were not installed."""
    for name in [n for n in sys.modules if n == "cosl" or n.startswith("cosl.")] + ["cosl"]:
        monkeypatch.setitem(sys.modules, name, None)


def shipping_leader(ctx: Ctx, root: Path) -> testing.State:
    """Return a running leader related on every endpoint that carries rules or dashboards."""
    relations = [states.loki_relation(LOKI_0)]
    relations += [testing.Relation(name) for name in SHIPPING if name != "send-loki-logs"]
    return running(ctx, root, *relations)


def stored_digest(out: testing.State) -> str:
    (stored,) = (
        s for s in out.stored_states if (s.owner_path or "").endswith("[shipped-artifacts]")
    )
    digest = stored.content["digest"]
    assert isinstance(digest, str)
    return digest


def test_no_op_hooks_neither_import_cosl_nor_compress(
    ctx: Ctx, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: leader shipping rules and dashboards. act: no-op hooks, cosl gone. assert: 0.

    The first hook built everything; later hooks reuse it, so they need neither cosl nor
    LZMA, and write nothing.
    """
    out = shipping_leader(ctx, root)
    block_cosl(monkeypatch)

    with record_calls(lzma, ("compress",)) as lzma_calls, record_relation_writes() as writes:
        for event in (ctx.on.config_changed(), ctx.on.update_status(), ctx.on.leader_elected()):
            out = ctx.run(event, out)
        for relation in out.relations:
            if relation.endpoint in SHIPPING:
                out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), out)

    assert lzma_calls.count("compress") == 0
    assert writes.count("relation_set") == 0
    assert all(states.relation(out, name).local_app_data for name in SHIPPING)


def test_upgrade_builds_again_and_writes_only_what_changed(
    ctx: Ctx, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: leader shipping. act: upgrade-charm, with and without cosl. assert: rebuilt.

    A refresh may bring new code or libraries: the build is done again (two dashboards
    compressed), and since the result is the same, nothing is written. Without cosl the
    build fails, which shows the no-op test above would catch a build.
    """
    out = shipping_leader(ctx, root)

    with record_calls(lzma, ("compress",)) as lzma_calls, record_relation_writes() as writes:
        upgraded = ctx.run(ctx.on.upgrade_charm(), out)
    block_cosl(monkeypatch)
    with pytest.raises(testing.errors.UncaughtCharmError, match="cosl"):
        ctx.run(ctx.on.upgrade_charm(), out)

    assert lzma_calls.count("compress") == 2
    assert writes.count("relation_set") == 0
    assert stored_digest(upgraded) == stored_digest(out)


def test_stale_digest_rebuilds_and_a_wiped_bag_is_rewritten_from_the_cache(
    ctx: Ctx, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: leader shipping. act: stored digest differs; then a bag is emptied. assert.

    A different digest (other files or topology) means a new build; an emptied bag is put
    right from the cache, without a build. Both at the next full reconcile: an update-status
    within the hour after one is idle (idle_hooks), so the hooks run an hour later.
    """
    out = shipping_leader(ctx, root)
    later = FalcosidekickCharm.clock() + idle_hooks.REFRESH_S
    monkeypatch.setattr(FalcosidekickCharm, "clock", staticmethod(lambda: later))
    stale = {
        dataclasses.replace(s, content={**s.content, "digest": "older"})
        if (s.owner_path or "").endswith("[shipped-artifacts]")
        else s
        for s in out.stored_states
    }
    wiped = dataclasses.replace(states.relation(out, "grafana-dashboard"), local_app_data={})

    with record_calls(lzma, ("compress",)) as rebuild:
        rebuilt = ctx.run(ctx.on.update_status(), dataclasses.replace(out, stored_states=stale))
    with record_calls(lzma, ("compress",)) as cached, record_relation_writes() as writes:
        repaired = ctx.run(ctx.on.update_status(), states.replace_relation(out, wiped))

    assert rebuild.count("compress") == 2
    assert stored_digest(rebuilt) == stored_digest(out) != "older"
    assert cached.count("compress") == 0
    assert writes.count("relation_set") == 1
    sent = json.loads(states.relation(repaired, "grafana-dashboard").local_app_data["dashboards"])
    assert set(sent["templates"]) == {"file:falco-security-alerts", "file:falco-pipeline-health"}


def test_non_leader_builds_nothing(ctx: Ctx, root: Path) -> None:
    """arrange: a follower related on every shipping endpoint. act: hooks. assert: no build."""
    relations = {states.loki_relation(LOKI_0), states.ingress_relation(INGRESS_URL)}
    relations |= {testing.Relation(name) for name in SHIPPING if name != "send-loki-logs"}
    state = states.state(root, leader=False, relations=relations)

    with record_calls(lzma, ("compress",)) as lzma_calls:
        out = ctx.run(ctx.on.pebble_ready(states.container(root)), state)
        ctx.run(ctx.on.update_status(), out)

    assert lzma_calls.count("compress") == 0


def test_inputs_digest_follows_the_files_and_the_topology(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: copies of the shipped files. act: digest, change the unit, a file. assert."""
    copies = []
    for directory in shipped.SOURCE_DIRS:
        copy = tmp_path / directory.name
        copy.mkdir()
        for path in directory.iterdir():
            (copy / path.name).write_bytes(path.read_bytes())
        copies.append(copy)
    monkeypatch.setattr(shipped, "SOURCE_DIRS", tuple(copies))

    first, again = shipped.inputs_digest(TOPOLOGY), shipped.inputs_digest(dict(TOPOLOGY))
    other_unit = shipped.inputs_digest({**TOPOLOGY, "unit": "falcosidekick-k8s/1"})
    (copies[-1] / "falco-pipeline-health.json").write_text("{}")
    other_file = shipped.inputs_digest(TOPOLOGY)

    assert first == again
    assert len({first, other_unit, other_file}) == 3
