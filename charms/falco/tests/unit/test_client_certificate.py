"""The client certificate over 'certificates': requested, written, presented, and its statuses."""

from __future__ import annotations

import dataclasses
import json
import stat
from typing import Any

import yaml
from charm import FalcoCharm
from cryptography import x509
from cryptography.x509.oid import NameOID
from falco_rig import (
    SIDEKICK,
    answered,
    only,
    requested_csrs,
    sidekick_relation,
    with_certificate,
)
from machine import FakeMachine
from ops import testing
from tls_material import make_ca

MODEL = testing.Model(name="fmodel", uuid="00000000-0000-4000-8000-000000000001")
CERT_FILE = "etc/juju-falco/http-client.crt"
KEY_FILE = "etc/juju-falco/http-client.key"


def http_output(machine: FakeMachine) -> dict[str, Any]:
    config = yaml.safe_load((machine.root / "etc/juju-falco/falco.yaml").read_text())
    result: dict[str, Any] = config["http_output"]
    return result


def started(
    ctx: testing.Context[FalcoCharm], state: testing.State, ca_pem: str, client_auth: bool = False
) -> testing.State:
    relation = sidekick_relation(ca_pem=ca_pem)
    if client_auth:
        data = {**relation.remote_app_data, "client_auth": json.dumps("required")}
        relation = dataclasses.replace(relation, remote_app_data=data)
    return ctx.run(ctx.on.install(), dataclasses.replace(state, model=MODEL, relations={relation}))


def test_unit_asks_for_a_certificate_naming_itself_and_its_model(
    ctx: testing.Context[FalcoCharm], state: testing.State, ca_pem: str
) -> None:
    """arrange: Falco posting to the sidekick. act: relate certificates. assert: one CSR."""
    out = started(ctx, state, ca_pem)
    certificates = testing.Relation("certificates", remote_app_name="self-signed-certificates")

    out = ctx.run(
        ctx.on.relation_created(certificates),
        dataclasses.replace(out, relations={*out.relations, certificates}),
    )

    (csr_pem,) = requested_csrs(only(out, "certificates"))
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [name.value for name in names] == ["falco-0.fmodel"]
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["falco-0.fmodel"]


def test_issued_certificate_is_presented_after_one_restart(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> None:
    """arrange: Falco posting. act: a certificate is issued, then a no-op hook.

    assert: mtls with the chain and a 0600 key matching the certificate; one restart, then
    nothing restarted or written.
    """
    ca = make_ca("Client CA")
    out = started(ctx, state, ca_pem)
    machine.clear_calls()

    out = with_certificate(ctx, out, ca)
    restarts = machine.restarts()
    machine.clear_calls()
    before = machine.files()
    out = ctx.run(ctx.on.update_status(), out)

    output = http_output(machine)
    assert output["mtls"] is True
    assert output["client_cert"] == str(machine.root / CERT_FILE)
    assert output["client_key"] == str(machine.root / KEY_FILE)
    chain = (machine.root / CERT_FILE).read_text()
    leaf = x509.load_pem_x509_certificate(chain.encode())
    assert leaf.issuer == ca.cert.subject
    key_file = machine.root / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(key_file.read_bytes(), password=None)
    assert key.public_key() == leaf.public_key()
    assert restarts == 1
    assert machine.restarts() == 0
    assert machine.files() == before
    assert out.unit_status == testing.ActiveStatus()


def test_renewed_certificate_is_one_restart(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> None:
    """arrange: a certificate presented. act: the provider issues a new one (same CSR).

    assert: the new certificate is written and Falco restarted once.
    """
    ca = make_ca("Client CA")
    out = with_certificate(ctx, started(ctx, state, ca_pem), ca)
    first = (machine.root / CERT_FILE).read_text()
    machine.clear_calls()

    renewed = answered(only(out, "certificates"), ca)
    relations = {r for r in out.relations if r.id != renewed.id} | {renewed}
    ctx.run(
        ctx.on.relation_changed(renewed, remote_unit=0),
        dataclasses.replace(out, relations=relations),
    )

    assert (machine.root / CERT_FILE).read_text() != first
    assert machine.restarts() == 1


def test_removed_relation_stops_presenting_and_deletes_the_key(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> None:
    """arrange: a certificate presented. act: certificates relation-broken.

    assert: mtls off, certificate and key deleted, one restart.
    """
    out = with_certificate(ctx, started(ctx, state, ca_pem), make_ca("Client CA"))
    machine.clear_calls()

    ctx.run(ctx.on.relation_broken(only(out, "certificates")), out)

    assert http_output(machine)["mtls"] is False
    assert not (machine.root / CERT_FILE).exists()
    assert not (machine.root / KEY_FILE).exists()
    assert machine.restarts() == 1


def test_sidekick_requiring_a_certificate_blocks_a_unit_without_one(
    ctx: testing.Context[FalcoCharm], state: testing.State, ca_pem: str
) -> None:
    """arrange: none. act: the sidekick announces client_auth. assert: Blocked, names the fix."""
    out = started(ctx, state, ca_pem, client_auth=True)

    assert out.unit_status == testing.BlockedStatus(
        f"{SIDEKICK} requires a client certificate: integrate 'certificates' with the CA "
        "that signs Falcosidekick's (juju integrate <falco app>:certificates <ca app>)"
    )


def test_unit_waits_for_its_certificate_then_is_active(
    ctx: testing.Context[FalcoCharm], state: testing.State, ca_pem: str
) -> None:
    """arrange: client_auth announced. act: relate certificates, then issue. assert: statuses."""
    out = started(ctx, state, ca_pem, client_auth=True)
    certificates = testing.Relation("certificates", remote_app_name="self-signed-certificates")

    waiting = ctx.run(
        ctx.on.relation_created(certificates),
        dataclasses.replace(out, relations={*out.relations, certificates}),
    )
    active = with_certificate(ctx, out, make_ca("Client CA"))

    assert waiting.unit_status == testing.WaitingStatus(
        "waiting for a client certificate on 'certificates' (Falcosidekick requires one)"
    )
    assert active.unit_status == testing.ActiveStatus()


def test_unreadable_provider_data_is_ignored(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> None:
    """arrange: a certificate presented. act: the provider writes a non-PEM certificate.

    assert: no error, the certificate in use stays, nothing restarted.
    """
    out = with_certificate(ctx, started(ctx, state, ca_pem), make_ca("Client CA"))
    before = (machine.root / CERT_FILE).read_text()
    machine.clear_calls()
    garbage = [{"certificate_signing_request": "x", "certificate": "not pem", "ca": "no"}]
    broken = dataclasses.replace(
        only(out, "certificates"), remote_app_data={"certificates": json.dumps(garbage)}
    )
    relations = {r for r in out.relations if r.id != broken.id} | {broken}

    ctx.run(
        ctx.on.relation_changed(broken, remote_unit=0),
        dataclasses.replace(out, relations=relations),
    )

    assert (machine.root / CERT_FILE).read_text() == before
    assert http_output(machine)["mtls"] is True
    assert machine.restarts() == 0


def test_an_idle_hook_puts_back_a_deleted_client_key(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> None:
    """arrange: presenting a certificate. act: its key file deleted, update-status. assert.

    The idle hook (steady.py: nothing to render) still checks the files Falco reads: the
    key is back, 0600, as it was.
    """
    out = with_certificate(ctx, started(ctx, state, ca_pem), make_ca("Client CA"))
    key = machine.root / KEY_FILE
    written = key.read_text()
    key.unlink()

    ctx.run(ctx.on.update_status(), out)

    assert key.read_text() == written
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
