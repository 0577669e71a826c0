"""Faults while the sidekick is in service: what already works must keep working.

Each test starts from a sidekick that serves its own certificate, takes alerts from a Falco
application and forwards them to Loki, breaks one thing the way it breaks in production,
and checks three things: alerts are still accepted (the service is not stopped and what it
serves is not removed), the status says what is going on, and the repair costs exactly one
restart when what the sidekick runs with really changes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import sidekick_states as states
from charm import FalcosidekickCharm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ops import pebble, testing
from ops_probes import record_pebble, record_relation_writes
from tls_material import Issued, make_ca

Ctx = testing.Context[FalcosidekickCharm]
LOKI_0 = "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
LOKI_1 = "http://loki-1.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
INGRESS_URL = "https://ingress.example.com/fmodel-falcosidekick-k8s"
RESTARTS = ("replan_services", "restart_services", "start_services")
WRITES = ("push", "make_dir", "remove_path")
REVOKED = "serving a revoked certificate: waiting for a new one on 'certificates'"
RENEWING = "waiting for a new certificate on 'certificates' (serving the previous one)"
LOKI_LAST = "waiting for a Loki URL on 'send-loki-logs' (alerts go to the last one meanwhile)"


def in_service(ctx: Ctx, root: Path, ca: Issued, *extra: testing.Relation) -> testing.State:
    """Return a leader serving its certificate to Falco, forwarding to Loki, Active."""
    relations = {
        states.certificates_relation(),
        testing.Relation("http-endpoint", remote_app_name="falco"),
        states.loki_relation(LOKI_0),
        *extra,
    }
    out = states.with_certificate(ctx, states.state(root, leader=True, relations=relations), ca)
    assert out.unit_status == testing.ActiveStatus()
    return out


def served_files(root: Path) -> dict[str, str]:
    """Return every file the sidekick runs with, by path under /etc/falcosidekick."""
    return {
        str(path.relative_to(root)): path.read_text()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def still_accepting(out: testing.State) -> bool:
    """Return whether the sidekick still runs: Falco's posts are taken."""
    container = out.get_container(states.CONTAINER)
    return container.service_statuses.get("falcosidekick") == pebble.ServiceStatus.ACTIVE


def published(out: testing.State) -> dict[str, Any]:
    """Return what Falco is told on http-endpoint, decoded."""
    bag = states.relation(out, "http-endpoint").local_app_data
    return {key: json.loads(value) for key, value in bag.items() if value}


def provider_certificates(relation: testing.Relation) -> list[dict[str, Any]]:
    entries = json.loads(relation.remote_app_data["certificates"])
    assert isinstance(entries, list)
    return entries


def revoke_all(relation: testing.Relation) -> testing.Relation:
    """Return ``relation`` with every certificate marked revoked.

    That is what a provider does when its CA changes (``revoke_all_certificates``).
    """
    entries = [{**entry, "revoked": True} for entry in provider_certificates(relation)]
    return dataclasses.replace(relation, remote_app_data={"certificates": json.dumps(entries)})


def private_key_secret(out: testing.State) -> testing.Secret:
    (secret,) = (s for s in out.secrets if s.label and "private-key" in s.label)
    return secret


def new_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def new_revision(secret: testing.Secret, content: dict[str, str]) -> testing.Secret:
    """Return ``secret`` with a new revision holding ``content``."""
    return dataclasses.replace(secret, tracked_content=content, latest_content=content)


def with_secret(out: testing.State, secret: testing.Secret | None, old: testing.Secret) -> Any:
    """Return ``out`` with ``old`` replaced by ``secret`` (or removed when None)."""
    secrets = {s for s in out.secrets if s.id != old.id} | ({secret} if secret else set())
    return dataclasses.replace(out, secrets=secrets)


def answer(ctx: Ctx, out: testing.State, ca: Issued) -> testing.State:
    """Let the provider answer every CSR of our unit; return the state after that hook."""
    answered = states.issue_certificates(states.relation(out, "certificates"), ca)
    return ctx.run(
        ctx.on.relation_changed(answered, remote_unit=0), states.replace_relation(out, answered)
    )


# certificates ----------------------------------------------------------------------------------


def test_revoked_certificate_keeps_serving_and_its_renewal_restarts_once(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: serving. act: provider revokes (CA change), then re-issues. assert: no gap.

    Falco keeps posting to the revoked certificate (stopping would lose alerts) while the
    status says so; the new certificate, signed by the new CA, is served with one restart
    and the new CA is published once.
    """
    out = in_service(ctx, root, ca)
    before = served_files(root)
    revoked = revoke_all(states.relation(out, "certificates"))

    with record_pebble() as pebble_calls, record_relation_writes() as writes:
        out = ctx.run(
            ctx.on.relation_changed(revoked, remote_unit=0), states.replace_relation(out, revoked)
        )
    assert (pebble_calls.count(*RESTARTS, *WRITES), writes.count("relation_set")) == (0, 0)
    assert served_files(root) == before
    assert still_accepting(out)
    assert out.unit_status == testing.WaitingStatus(REVOKED)

    new_ca = make_ca("Rotated CA")
    with record_pebble() as pebble_calls, record_relation_writes() as writes:
        out = answer(ctx, out, new_ca)

    assert pebble_calls.count(*RESTARTS) == 1
    assert (root / "tls" / "ca.crt").read_text().strip() == new_ca.cert_pem.strip()
    assert published(out)["ca_cert"].strip() == new_ca.cert_pem.strip()
    assert writes.count("relation_set") == 1  # ca_cert; the URL is the same
    assert out.unit_status == testing.ActiveStatus()


@pytest.mark.parametrize(
    "bag",
    [
        {"certificates": '[{"certificate_signing_request": "x", "certificate": "x", "ca": "x"}]'},
        {"certificates": "[" * 5000 + "]" * 5000},
        {"request_errors": '[{"csr": "not a CSR", "error": {}}]'},
    ],
    ids=["not-pem", "too-deep", "bad-csr-in-error"],
)
def test_unreadable_provider_data_keeps_serving_until_it_is_readable(
    ctx: Ctx, root: Path, ca: Issued, bag: dict[str, str]
) -> None:
    """arrange: serving. act: the provider writes what the tls library cannot parse. assert.

    The library would fail on every certificates hook: the charm leaves it out, keeps
    serving, says so; once the provider writes a readable bag again, all is as before.
    """
    out = in_service(ctx, root, ca)
    good = states.relation(out, "certificates")
    before = served_files(root)
    unreadable = dataclasses.replace(good, remote_app_data=bag)

    with record_pebble() as pebble_calls, record_relation_writes() as writes:
        out = ctx.run(
            ctx.on.relation_changed(unreadable, remote_unit=0),
            states.replace_relation(out, unreadable),
        )
    assert (pebble_calls.count(*RESTARTS, *WRITES), writes.count("relation_set")) == (0, 0)
    assert served_files(root) == before
    assert still_accepting(out)
    assert out.unit_status == testing.WaitingStatus(
        "ignoring unreadable data on 'certificates' (serving the current certificate)"
    )

    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.relation_changed(good, remote_unit=0), states.replace_relation(out, good)
        )
    assert pebble_calls.count(*RESTARTS, *WRITES) == 0
    assert out.unit_status == testing.ActiveStatus()


def test_certificate_secret_expiry_renews_without_a_gap(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: serving. act: the certificate secret expires (renewal time). assert: no gap.

    The library sends a new CSR; the current certificate serves until the answer, which is
    then served with one restart.
    """
    out = in_service(ctx, root, ca)
    before = served_files(root)
    (certificate_secret,) = (s for s in out.secrets if s.label and "certificate-" in s.label)

    with record_pebble() as pebble_calls:
        out = ctx.run(ctx.on.secret_expired(certificate_secret, revision=1), out)
    assert pebble_calls.count(*RESTARTS, *WRITES) == 0
    assert served_files(root) == before
    assert out.unit_status == testing.WaitingStatus(RENEWING)

    with record_pebble() as pebble_calls:
        out = answer(ctx, out, ca)

    assert pebble_calls.count(*RESTARTS) == 1
    assert served_files(root)["tls/server.crt"] != before["tls/server.crt"]
    assert out.unit_status == testing.ActiveStatus()


@pytest.mark.parametrize(
    ("fault", "hook"),
    [
        ("rotated", "update_status"),
        ("removed", "update_status"),
        ("garbage", "update_status"),
        ("garbage", "config_changed"),
        ("garbage", "leader_elected"),
    ],
)
def test_private_key_secret_fault_gets_a_new_certificate_without_a_gap(
    ctx: Ctx, root: Path, ca: Issued, fault: str, hook: str
) -> None:
    """arrange: serving. act: the key secret is rotated, removed or corrupted. assert.

    Whatever happened to the tls library's private key secret, the next hook (update-status,
    or one where the library's own handler loads the key first) asks for a certificate for a
    usable key, the sidekick keeps serving the key and certificate it has, and the answer is
    served with one restart; the key file then matches the certificate again.
    """
    out = in_service(ctx, root, ca)
    before = served_files(root)
    secret = private_key_secret(out)
    replacement = {
        "rotated": new_revision(secret, {"private-key": new_key_pem()}),
        "removed": None,
        "garbage": new_revision(secret, {"private-key": "not a key"}),
    }[fault]
    csr_before = states.requested_csrs(states.relation(out, "certificates"))

    with record_pebble() as pebble_calls:
        out = ctx.run(getattr(ctx.on, hook)(), with_secret(out, replacement, secret))
    assert pebble_calls.count(*RESTARTS, *WRITES) == 0
    assert served_files(root) == before
    assert still_accepting(out)
    assert out.unit_status == testing.WaitingStatus(RENEWING)
    (csr,) = states.requested_csrs(states.relation(out, "certificates"))
    assert [csr] != csr_before

    with record_pebble() as pebble_calls:
        out = answer(ctx, out, ca)

    assert pebble_calls.count(*RESTARTS) == 1
    files = served_files(root)
    assert files["tls/server.key"] != before["tls/server.key"]
    assert files["tls/server.crt"] != before["tls/server.crt"]
    assert out.unit_status == testing.ActiveStatus()
    assert published(out)["url"] == f"https://{states.CLUSTER_IP}:2801/"


# Loki ------------------------------------------------------------------------------------------


def test_loki_endpoint_disappears_and_comes_back(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: forwarding to loki/0. act: endpoint withdrawn, unit gone, back. assert.

    While the relation exists the last good URL stays (no restart, status says so); the
    same URL coming back costs nothing, a new one one restart; only relation-broken drops
    the Loki output.
    """
    out = in_service(ctx, root, ca)
    config_before = states.rendered_config(root)
    loki = states.relation(out, "send-loki-logs")

    withdrawn = dataclasses.replace(loki, remote_units_data={0: {}})
    gone = dataclasses.replace(loki, remote_units_data={})
    same = dataclasses.replace(
        loki, remote_units_data={0: {"endpoint": json.dumps({"url": LOKI_0})}}
    )
    moved = dataclasses.replace(
        loki, remote_units_data={1: {"endpoint": json.dumps({"url": LOKI_1})}}
    )
    steps = [
        (ctx.on.relation_changed(withdrawn, remote_unit=0), withdrawn),
        (ctx.on.relation_departed(gone, remote_unit=0, departing_unit=0), gone),
        (ctx.on.relation_joined(same, remote_unit=0), same),
    ]
    statuses = []
    with record_pebble() as pebble_calls:
        for event, relation in steps:
            out = ctx.run(event, states.replace_relation(out, relation))
            statuses.append(out.unit_status)
            assert states.rendered_config(root) == config_before
            assert still_accepting(out)
    assert pebble_calls.count(*RESTARTS, *WRITES) == 0
    assert statuses == [
        testing.WaitingStatus(LOKI_LAST),
        testing.WaitingStatus(LOKI_LAST),
        testing.ActiveStatus(),
    ]

    with record_pebble() as moved_calls:
        out = ctx.run(
            ctx.on.relation_changed(moved, remote_unit=1), states.replace_relation(out, moved)
        )
    assert moved_calls.count(*RESTARTS) == 1
    assert states.rendered_config(root)["loki"]["hostport"] == LOKI_1.removesuffix(
        "/loki/api/v1/push"
    )

    out = ctx.run(ctx.on.relation_broken(states.relation(out, "send-loki-logs")), out)
    assert "loki" not in states.rendered_config(root)
    assert still_accepting(out)
    assert out.unit_status == testing.ActiveStatus(
        "alerts are not stored: integrate 'send-loki-logs'"
    )


# the pod ---------------------------------------------------------------------------------------


def test_container_restart_with_an_empty_filesystem_rewrites_everything_and_starts_once(
    ctx: Ctx, root: Path, ca: Issued, tmp_path: Path
) -> None:
    """arrange: serving, forwarding logs. act: pebble-ready on an empty container. assert.

    A restarted container has neither files nor plan: config, certificate, key and CA are
    written again (from relation data and the key secret), the service and log targets
    are planned again, and the service starts once. Relations do not change.
    """
    logging = testing.Relation(
        "logging",
        remote_app_name="loki",
        remote_units_data={0: {"endpoint": json.dumps({"url": LOKI_0})}},
    )
    out = in_service(ctx, root, ca, logging)
    before = served_files(root)
    empty_root = tmp_path / "new-pod"
    empty_root.mkdir()
    fresh = states.container(empty_root)

    with record_pebble() as pebble_calls, record_relation_writes() as writes:
        out = ctx.run(ctx.on.pebble_ready(fresh), dataclasses.replace(out, containers={fresh}))

    assert served_files(empty_root) == before
    assert pebble_calls.count(*RESTARTS) == 1
    assert pebble_calls.count("push") == len(before)
    assert writes.count("relation_set") == 0
    plan = out.get_container(states.CONTAINER).plan
    assert set(plan.services) == {"falcosidekick"}
    assert set(plan.log_targets) == {"loki/0"}
    assert still_accepting(out)
    assert out.unit_status == testing.ActiveStatus()


def test_upgrade_with_a_new_image_waits_for_pebble_then_starts_once(
    ctx: Ctx, root: Path, ca: Issued, tmp_path: Path
) -> None:
    """arrange: serving. act: upgrade-charm, Pebble down; pebble-ready, empty. assert.

    A new image recreates the pod: during upgrade-charm Pebble may not answer yet. What
    Falco was told stays published; once Pebble is up, everything is written again and the
    service starts once.
    """
    out = in_service(ctx, root, ca)
    before, told = served_files(root), published(out)
    new_root = tmp_path / "new-image"
    new_root.mkdir()
    unreachable = states.container(new_root, can_connect=False)

    with record_relation_writes() as writes:
        upgrading = ctx.run(
            ctx.on.upgrade_charm(), dataclasses.replace(out, containers={unreachable})
        )
    assert writes.count("relation_set") == 0
    assert published(upgrading) == told
    assert upgrading.unit_status == testing.WaitingStatus(
        "waiting for Pebble in the falcosidekick container"
    )

    fresh = states.container(new_root)
    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.pebble_ready(fresh), dataclasses.replace(upgrading, containers={fresh})
        )

    assert pebble_calls.count(*RESTARTS) == 1
    assert served_files(new_root) == before
    assert out.unit_status == testing.ActiveStatus()


def test_upgrade_from_an_older_revision_converges_in_one_restart(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: an older revision's files and rules. act: upgrade-charm. assert: converged.

    The older revision left another config file, the service started with it, and rules
    with the generic HostHealth group: one restart, the rules replaced, Active.
    """
    metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    out = in_service(ctx, root, ca, metrics)
    sent = states.relation(out, "metrics-endpoint")
    old_rules = json.loads(sent.local_app_data["alert_rules"])
    old_rules["groups"].append(
        {"name": "HostHealth", "rules": [{"alert": "HostDown", "expr": "up < 1"}]}
    )
    older = dataclasses.replace(
        sent, local_app_data={**sent.local_app_data, "alert_rules": json.dumps(old_rules)}
    )
    config_file = root / "falcosidekick.yaml"
    config_file.write_text(config_file.read_text().replace("debug: false", "debug: true"))
    container = out.get_container(states.CONTAINER)
    layer = container.layers["falcosidekick"].to_dict()
    layer["services"]["falcosidekick"]["environment"] = {"CHARM_FILES_DIGEST": "older"}
    started_by_older = dataclasses.replace(
        container, layers={**container.layers, "falcosidekick": pebble.Layer(layer)}
    )
    older_state = dataclasses.replace(
        states.replace_relation(out, older), containers={started_by_older}
    )

    with record_pebble() as pebble_calls, record_relation_writes() as writes:
        out = ctx.run(ctx.on.upgrade_charm(), older_state)

    assert pebble_calls.count(*RESTARTS) == 1
    assert states.rendered_config(root)["debug"] is False
    rules = json.loads(states.relation(out, "metrics-endpoint").local_app_data["alert_rules"])
    assert [group["name"] for group in rules["groups"]] == [
        "fmodel_00000000_falcosidekick_k8s_falcosidekick_rules"
    ]
    assert writes.count("relation_set") == 1
    assert out.unit_status == testing.ActiveStatus()


def test_config_file_changed_behind_our_back_is_put_back_without_restart(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: serving; someone edits the config file. act: update-status. assert.

    The running process was started with the charm's file (the plan's digest says so):
    the file is written back, and nothing is restarted.
    """
    out = in_service(ctx, root, ca)
    config_file = root / "falcosidekick.yaml"
    good = config_file.read_text()
    config_file.write_text(good.replace("debug: false", "debug: true"))

    with record_pebble() as pebble_calls:
        out = ctx.run(ctx.on.update_status(), out)

    assert config_file.read_text() == good
    assert pebble_calls.count("push") == 1
    assert pebble_calls.count(*RESTARTS) == 0
    assert out.unit_status == testing.ActiveStatus()


def test_ingress_url_garbage_keeps_falco_posting_to_the_last_good_one(
    ctx: Ctx, root: Path
) -> None:
    """arrange: behind an ingress. act: the provider publishes garbage, then nothing. assert.

    Garbage is ignored (last good URL kept, nothing restarted); an emptied bag means the
    route is not ready: the status says so, and the sidekick keeps listening.
    """
    ingress = states.ingress_relation(INGRESS_URL)
    state = states.state(root, leader=True, relations={ingress, testing.Relation("http-endpoint")})
    out = ctx.run(ctx.on.pebble_ready(states.container(root)), state)
    garbage = dataclasses.replace(
        states.relation(out, "ingress"), remote_app_data={"ingress": '{"url": 7}'}
    )

    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.relation_changed(garbage, remote_unit=0), states.replace_relation(out, garbage)
        )

    assert pebble_calls.count(*RESTARTS, *WRITES) == 0
    assert published(out)["url"] == INGRESS_URL
    assert still_accepting(out)
