"""State-transition tests of the relations: ingress, send-loki-logs, http-endpoint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import certificates
import pytest
import sidekick_states as states
from charm import FalcosidekickCharm
from cryptography import x509
from ops import testing
from ops_probes import record_pebble, record_relation_writes
from tls_material import Issued

Ctx = testing.Context[FalcosidekickCharm]
INGRESS_URL = "https://ingress.example.com/fmodel-falcosidekick-k8s"
LOKI_0 = "http://otelcol-0.otelcol-endpoints.fmodel.svc.cluster.local:3500/loki/api/v1/push"
LOKI_1 = "http://otelcol-1.otelcol-endpoints.fmodel.svc.cluster.local:3500/loki/api/v1/push"
TOPOLOGY = states.TOPOLOGY


# ingress ---------------------------------------------------------------------------------------


def test_ingress_request_wire_format(ctx: Ctx, root: Path) -> None:
    """arrange: ingress related, leader. act: joined. assert: app and unit bags, Juju keys kept."""
    ingress = states.ingress_relation()
    state = states.state(root, leader=True, relations={ingress}, config={"port": 4443})

    out = ctx.run(ctx.on.relation_joined(ingress, remote_unit=0), state)

    sent = states.relation(out, "ingress")
    assert sent.local_app_data == {
        "model": '"fmodel"',
        "name": '"falcosidekick-k8s"',
        "port": "4443",
        "strip-prefix": "true",
    }
    assert json.loads(sent.local_unit_data["host"]) == states.POD_FQDN
    assert json.loads(sent.local_unit_data["ip"]) == "192.0.2.0"
    assert "private-address" in sent.local_unit_data  # Juju's own keys are left alone
    assert out.unit_status == testing.WaitingStatus("waiting for the URL of 'ingress'")


def test_non_leader_writes_only_its_unit_bag(ctx: Ctx, root: Path) -> None:
    """arrange: ingress related, not leader. act: joined. assert: unit bag only."""
    ingress = states.ingress_relation()
    state = states.state(root, leader=False, relations={ingress})

    out = ctx.run(ctx.on.relation_joined(ingress, remote_unit=0), state)

    sent = states.relation(out, "ingress")
    assert sent.local_app_data == {}
    assert "host" in sent.local_unit_data


def test_ingress_only_serves_plain_http_behind_the_ingress_and_publishes_its_url(
    ctx: Ctx, root: Path
) -> None:
    """arrange: no certificates. act: ingress URL arrives. assert: listener, URL without CA."""
    state = states.state(root, leader=True, relations={testing.Relation("http-endpoint")})
    running = ctx.run(ctx.on.pebble_ready(states.container(root)), state)
    ingress = states.ingress_relation(INGRESS_URL)

    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.relation_changed(ingress, remote_unit=0),
            dataclasses.replace(running, relations={*running.relations, ingress}),
        )

    assert pebble_calls.count("replan_services") == 1
    config = states.rendered_config(root)
    assert config["listenaddress"] == ""
    assert config["tlsserver"] == {"deploy": False}
    published = states.relation(out, "http-endpoint").local_app_data
    assert json.loads(published["url"]) == INGRESS_URL
    assert published.get("ca_cert", "") == ""
    assert "scheme" not in states.relation(out, "ingress").local_app_data
    assert out.opened_ports == frozenset({testing.TCPPort(2801)})
    assert out.unit_status == testing.ActiveStatus(
        "alerts are not stored: integrate 'send-loki-logs'"
    )


def test_ingress_https_backend_with_certificates_serves_tls_to_the_ingress(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: certificates, ingress, backend https. act: TLS established. assert: https.

    The ingress is asked for an https backend, the certificate names the ingress host too,
    and Falco is given the ingress URL without a CA (it verifies the ingress, not us).
    """
    state = states.state(
        root,
        leader=True,
        config={"ingress-backend-scheme": "https"},
        relations={
            states.certificates_relation(),
            states.ingress_relation(INGRESS_URL),
            testing.Relation("http-endpoint"),
        },
    )

    out = states.with_certificate(ctx, state, ca)

    assert json.loads(states.relation(out, "ingress").local_app_data["scheme"]) == "https"
    served = x509.load_pem_x509_certificate((root / "tls" / "server.crt").read_bytes())
    sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "ingress.example.com" in sans.get_values_for_type(x509.DNSName)
    published = states.relation(out, "http-endpoint").local_app_data
    assert json.loads(published["url"]) == INGRESS_URL
    assert published.get("ca_cert", "") == ""  # Falco verifies the ingress, not us
    assert states.rendered_config(root)["tlsserver"]["deploy"] is True


def test_ingress_host_change_keeps_serving_until_the_new_certificate(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: TLS served, backend https. act: ingress URL arrives. assert: new CSR only.

    The listener is the same (HTTPS on the port): no restart and no key churn until the
    certificate that also names the ingress host arrives.
    """
    state = states.state(
        root,
        leader=True,
        config={"ingress-backend-scheme": "https"},
        relations={states.certificates_relation()},
    )
    served = states.with_certificate(ctx, state, ca)
    ingress = states.ingress_relation(INGRESS_URL)

    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.relation_changed(ingress, remote_unit=0),
            dataclasses.replace(served, relations={*served.relations, ingress}),
        )

    assert pebble_calls.count("replan_services", "push") == 0
    (csr_pem,) = states.requested_csrs(states.relation(out, "certificates"))
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "ingress.example.com" in sans.get_values_for_type(x509.DNSName)
    assert json.loads(states.relation(out, "ingress").local_app_data["scheme"]) == "https"


def test_ingress_ip_address_goes_into_ip_sans(ctx: Ctx, root: Path) -> None:
    """arrange: ingress URL on an IP. act: certificates created. assert: IP SAN."""
    state = states.state(
        root,
        relations={
            states.certificates_relation(),
            states.ingress_relation("http://10.1.2.3/fmodel-fs"),
        },
    )

    out = ctx.run(ctx.on.relation_created(states.relation(state, "certificates")), state)

    (csr_pem,) = states.requested_csrs(states.relation(out, "certificates"))
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {
        "10.1.2.3",
        states.CLUSTER_IP,
    }


@pytest.mark.parametrize(
    "garbage",
    ["not json", json.dumps(["a list"]), json.dumps({"url": 5}), json.dumps({"url": "ftp://x/"})],
)
def test_malformed_ingress_url_is_ignored_and_last_good_kept(
    ctx: Ctx, root: Path, garbage: str
) -> None:
    """arrange: ingress URL published. act: provider writes garbage. assert: nothing changes."""
    ingress = states.ingress_relation(INGRESS_URL)
    state = states.state(root, leader=True, relations={ingress, testing.Relation("http-endpoint")})
    good = ctx.run(ctx.on.pebble_ready(states.container(root)), state)
    broken = dataclasses.replace(
        states.relation(good, "ingress"), remote_app_data={"ingress": garbage}
    )

    with record_pebble() as pebble_calls, record_relation_writes() as relation_writes:
        out = ctx.run(
            ctx.on.relation_changed(broken, remote_unit=0), states.replace_relation(good, broken)
        )

    assert pebble_calls.by_method == {}
    assert relation_writes.count("relation_set") == 0
    assert json.loads(states.relation(out, "http-endpoint").local_app_data["url"]) == INGRESS_URL


def test_ingress_revoked_closes_the_network_listener(ctx: Ctx, root: Path) -> None:
    """arrange: ingress-only mode. act: broken. assert: loopback, URL withdrawn, Blocked."""
    ingress = states.ingress_relation(INGRESS_URL)
    state = states.state(root, leader=True, relations={ingress, testing.Relation("http-endpoint")})
    good = ctx.run(ctx.on.pebble_ready(states.container(root)), state)

    with record_pebble() as pebble_calls:
        out = ctx.run(ctx.on.relation_broken(states.relation(good, "ingress")), good)

    assert pebble_calls.count("replan_services") == 1
    assert states.rendered_config(root)["listenaddress"] == "127.0.0.1"
    assert states.relation(out, "http-endpoint").local_app_data.get("url", "") == ""
    assert out.opened_ports == frozenset()
    assert isinstance(out.unit_status, testing.BlockedStatus)


# send-loki-logs ----------------------------------------------------------------------------


def test_loki_output_from_provider_units(ctx: Ctx, root: Path) -> None:
    """arrange: two provider units, options set. act: changed. assert: Loki config, metadata."""
    loki = states.loki_relation(LOKI_1, LOKI_0, LOKI_1)
    state = states.state(
        root,
        leader=True,
        relations={loki, states.ingress_relation(INGRESS_URL)},
        config={
            "minimum-priority": "notice",
            "loki-tenant": "security",
            "custom-fields": "environment:prod, team:sec",
        },
    )

    out = ctx.run(ctx.on.relation_changed(loki, remote_unit=0), state)

    config = states.rendered_config(root)
    assert config["loki"]["hostport"] == LOKI_0.removesuffix("/loki/api/v1/push")
    assert config["loki"]["minimumpriority"] == "notice"
    assert config["loki"]["tenant"] == "security"
    assert config["loki"]["format"] == "json"
    assert config["customfields"] == {"environment": "prod", "team": "sec"}
    bag = states.relation(out, "send-loki-logs").local_app_data
    assert json.loads(bag["metadata"]) == TOPOLOGY
    assert [g["name"] for g in json.loads(bag["alert_rules"])["groups"]] == [
        "fmodel_00000000_falcosidekick_k8s_falco_security_alerts_rules"
    ]
    assert out.unit_status == testing.ActiveStatus()


def test_loki_waits_for_an_endpoint(ctx: Ctx, root: Path) -> None:
    """arrange: provider unit without data. act: joined. assert: no Loki output, Waiting."""
    loki = states.loki_relation()
    state = states.state(root, relations={loki, states.ingress_relation(INGRESS_URL)})

    out = ctx.run(ctx.on.relation_joined(loki, remote_unit=0), state)

    assert "loki" not in states.rendered_config(root)
    assert out.unit_status == testing.WaitingStatus("waiting for a Loki URL on 'send-loki-logs'")


@pytest.mark.parametrize(
    "garbage", ["{", json.dumps({"url": None}), json.dumps({"url": "loki:3100"}), json.dumps(3)]
)
def test_malformed_loki_endpoint_is_ignored_and_last_good_kept(
    ctx: Ctx, root: Path, garbage: str
) -> None:
    """arrange: Loki configured. act: the unit writes garbage. assert: nothing changes.

    The last good URL stays, and the status says that it is the last one.
    """
    state = states.state(
        root, relations={states.loki_relation(LOKI_0), states.ingress_relation(INGRESS_URL)}
    )
    good = ctx.run(ctx.on.pebble_ready(states.container(root)), state)
    loki = states.relation(good, "send-loki-logs")
    broken = dataclasses.replace(loki, remote_units_data={0: {"endpoint": garbage}})

    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.relation_changed(broken, remote_unit=0), states.replace_relation(good, broken)
        )

    assert pebble_calls.by_method == {}
    assert states.rendered_config(root)["loki"]["hostport"] == LOKI_0.removesuffix(
        "/loki/api/v1/push"
    )
    assert out.unit_status == testing.WaitingStatus(
        "waiting for a Loki URL on 'send-loki-logs' (alerts go to the last one meanwhile)"
    )


def test_loki_gone_keeps_accepting_alerts(ctx: Ctx, root: Path) -> None:
    """arrange: Loki configured. act: relation-broken. assert: still listening, status says so."""
    state = states.state(
        root, relations={states.loki_relation(LOKI_0), states.ingress_relation(INGRESS_URL)}
    )
    good = ctx.run(ctx.on.pebble_ready(states.container(root)), state)

    out = ctx.run(ctx.on.relation_broken(states.relation(good, "send-loki-logs")), good)

    config = states.rendered_config(root)
    assert "loki" not in config
    assert config["listenaddress"] == ""
    assert out.unit_status == testing.ActiveStatus(
        "alerts are not stored: integrate 'send-loki-logs'"
    )


@pytest.mark.parametrize("behind", ["nothing", "an ingress with a plain backend"])
def test_https_loki_trusts_our_ca(ctx: Ctx, root: Path, ca: Issued, behind: str) -> None:
    """arrange: certificates, https Loki. act: reconcile. assert: tlsclient CA file set.

    Also where the certificate itself is not served (an ingress reaches the pods over
    plain HTTP): the Loki signed by the same provider stays trusted.
    """
    https_loki = "https://otelcol.fmodel.svc.cluster.local:3500/loki/api/v1/push"
    relations = {states.certificates_relation(), states.loki_relation(https_loki)}
    if behind != "nothing":
        relations.add(states.ingress_relation(INGRESS_URL))
    state = states.state(root, relations=relations)

    states.with_certificate(ctx, state, ca)

    config = states.rendered_config(root)
    assert config["tlsclient"] == {"cacertfile": "/etc/falcosidekick/tls/ca.crt"}
    assert config["tlsserver"]["deploy"] is (behind == "nothing")
    assert (root / "tls" / "ca.crt").read_text().strip() == ca.cert_pem.strip()


def test_non_leader_writes_no_loki_metadata(ctx: Ctx, root: Path) -> None:
    """arrange: not leader. act: joined. assert: no app bag write."""
    loki = states.loki_relation(LOKI_0)
    state = states.state(root, leader=False, relations={loki})

    out = ctx.run(ctx.on.relation_joined(loki, remote_unit=0), state)

    assert states.relation(out, "send-loki-logs").local_app_data == {}


# http-endpoint -----------------------------------------------------------------------------


def test_new_leader_publishes_and_non_leader_does_not(ctx: Ctx, root: Path) -> None:
    """arrange: ingress ready, Falco related. act: as non-leader, then leader-elected. assert."""
    state = states.state(
        root,
        leader=False,
        relations={states.ingress_relation(INGRESS_URL), testing.Relation("http-endpoint")},
    )
    follower = ctx.run(ctx.on.pebble_ready(states.container(root)), state)

    leader = ctx.run(ctx.on.leader_elected(), dataclasses.replace(follower, leader=True))

    assert states.relation(follower, "http-endpoint").local_app_data == {}
    assert (
        json.loads(states.relation(leader, "http-endpoint").local_app_data["url"]) == INGRESS_URL
    )


def test_certificates_removed_behind_a_plain_backend_changes_nothing_for_alerts(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: certificates and ingress, backend http. act: certificates broken. assert.

    The certificate was not used for alerts (the status said so): the sidekick, the
    ingress request and the URL stay as they are, only that note goes away.
    """
    state = states.state(
        root,
        leader=True,
        relations={
            states.certificates_relation(),
            states.ingress_relation(INGRESS_URL),
            testing.Relation("http-endpoint"),
        },
    )
    both = states.with_certificate(ctx, state, ca)
    assert both.unit_status == testing.ActiveStatus(
        "alerts are not stored: integrate 'send-loki-logs'"
    )

    with record_pebble() as pebble_calls, record_relation_writes() as relation_writes:
        out = ctx.run(ctx.on.relation_broken(states.relation(both, "certificates")), both)

    assert pebble_calls.count("replan_services", "push") == 0
    assert relation_writes.count("relation_set") == 0
    config = states.rendered_config(root)
    assert (config["listenaddress"], config["tlsserver"]) == ("", {"deploy": False})
    assert "scheme" not in states.relation(out, "ingress").local_app_data
    assert json.loads(states.relation(out, "http-endpoint").local_app_data["url"]) == INGRESS_URL


def test_certificates_removed_behind_an_https_backend_is_blocked_and_withdrawn(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: certificates, ingress, backend https. act: certificates broken. assert.

    Nothing can serve the HTTPS backend the ingress was asked for: Blocked naming both
    fixes, the sidekick back on the loopback, the URL withdrawn (Falco keeps alerts local).
    """
    state = states.state(
        root,
        leader=True,
        config={"ingress-backend-scheme": "https"},
        relations={
            states.certificates_relation(),
            states.ingress_relation(INGRESS_URL),
            testing.Relation("http-endpoint"),
        },
    )
    both = states.with_certificate(ctx, state, ca)

    out = ctx.run(ctx.on.relation_broken(states.relation(both, "certificates")), both)

    assert states.rendered_config(root)["listenaddress"] == "127.0.0.1"
    assert states.relation(out, "http-endpoint").local_app_data.get("url", "") == ""
    assert out.unit_status == testing.BlockedStatus(
        "ingress-backend-scheme is 'https' but 'certificates' is not integrated: integrate "
        "'certificates', or set ingress-backend-scheme=http"
    )


def test_private_key_label_is_the_one_the_tls_library_gives_its_secret(
    ctx: testing.Context[FalcosidekickCharm], root: Path, ca: Issued
) -> None:
    """arrange: serving a certificate. act: nothing. assert: our label names the key secret.

    Idle hooks read the private key's secret by this label without importing the library.
    """
    start = states.state(root, leader=True, relations={states.certificates_relation()})
    out = states.with_certificate(ctx, start, ca)

    labels = {secret.label for secret in out.secrets}

    assert certificates.private_key_label("falcosidekick-k8s/0") in labels
