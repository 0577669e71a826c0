"""client-authentication: mutual TLS on the alert input, its CAs, and what Falco is told."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import sidekick_states as states
from charm import FalcosidekickCharm
from exposure import CLIENT_AUTH_BEHIND_INGRESS
from ops import testing
from ops_probes import record_pebble, record_relation_writes
from tls_material import Issued, make_ca

Ctx = testing.Context[FalcosidekickCharm]
LOKI_URL = "http://otelcol-0.otelcol-endpoints.fmodel.svc.cluster.local:3500/loki/api/v1/push"
INGRESS_URL = "https://alerts.example.com/fmodel-falcosidekick-k8s"
RESTARTS = ("replan_services", "restart_services", "start_services")
CLIENT_CA_FILE = "client-ca.crt"


def serving(
    ctx: Ctx, root: Path, ca: Issued, config: dict[str, Any], *extra: Any, secrets: Any = ()
) -> testing.State:
    """Return a leader serving its own certificate (direct TLS) with ``config``."""
    relations = {
        testing.Relation("http-endpoint", remote_app_name="falco"),
        states.loki_relation(LOKI_URL),
        states.certificates_relation(),
        *extra,
    }
    start = states.state(
        root, leader=True, config=config, relations=relations, secrets=list(secrets)
    )
    out = ctx.run(ctx.on.pebble_ready(states.container(root)), start)
    out = states.with_certificate(ctx, out, ca)
    return ctx.run(ctx.on.update_status(), out)


def announced(out: testing.State) -> dict[str, Any]:
    bag = states.relation(out, "http-endpoint").local_app_data
    return {key: json.loads(value) for key, value in bag.items() if value}


def test_required_turns_on_mutual_tls_with_the_provider_ca(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: certificates, no ingress. act: client-authentication=required.

    assert: tlsserver.mutualtls with the provider's CA as cacertfile; announced; active.
    """
    out = serving(ctx, root, ca, {"client-authentication": "required"})

    tlsserver = states.rendered_config(root)["tlsserver"]
    assert tlsserver["mutualtls"] is True
    assert tlsserver["cacertfile"] == f"/etc/falcosidekick/tls/{CLIENT_CA_FILE}"
    assert (root / "tls" / CLIENT_CA_FILE).read_text().strip() == ca.cert_pem.strip()
    assert announced(out)["client_auth"] == "required"
    assert out.unit_status == testing.ActiveStatus()


def test_none_asks_for_no_client_certificate(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: certificates, default options. act: hooks. assert: no mutualtls, nothing said."""
    out = serving(ctx, root, ca, {})

    tlsserver = states.rendered_config(root)["tlsserver"]
    assert "mutualtls" not in tlsserver
    assert "cacertfile" not in tlsserver
    assert not (root / "tls" / CLIENT_CA_FILE).exists()
    assert "client_auth" not in announced(out)
    assert set(announced(out)) == {"url", "ca_cert"}


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_required_behind_an_ingress_takes_no_alert(
    ctx: Ctx, root: Path, ca: Issued, scheme: str
) -> None:
    """arrange: certificates and an ingress with its URL. act: required.

    assert: loopback only, no URL for Falco, Blocked saying why and what to change.
    """
    config = {"client-authentication": "required", "ingress-backend-scheme": scheme}
    out = serving(ctx, root, ca, config, states.ingress_relation(INGRESS_URL))

    assert states.rendered_config(root)["listenaddress"] == "127.0.0.1"
    assert announced(out) == {}
    assert out.unit_status == testing.BlockedStatus(CLIENT_AUTH_BEHIND_INGRESS)
    assert out.opened_ports == frozenset()


def test_turning_it_on_restarts_once_then_nothing(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: direct TLS without client auth. act: required, then the same config again.

    assert: one restart and one write of http-endpoint, then no restart and no write.
    """
    out = serving(ctx, root, ca, {})
    on = dataclasses.replace(out, config={"client-authentication": "required"})

    with record_pebble() as first, record_relation_writes() as first_writes:
        out = ctx.run(ctx.on.config_changed(), on)
    with record_pebble() as second, record_relation_writes() as second_writes:
        ctx.run(ctx.on.config_changed(), out)

    assert first.count(*RESTARTS) == 1
    assert first_writes.count("relation_set") == 1
    assert second.count(*RESTARTS) == 0
    assert second.count("push") == 0
    assert second_writes.count("relation_set") == 0


def test_client_ca_secret_adds_cas(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: client-ca-secret with another CA. act: required. assert: both CAs trusted."""
    other = make_ca("Other Falco CA")
    secret = testing.Secret(tracked_content={"ca-certs": other.cert_pem})
    config = {"client-authentication": "required", "client-ca-secret": secret.id}

    serving(ctx, root, ca, config, secrets=[secret])

    trusted = (root / "tls" / CLIENT_CA_FILE).read_text()
    assert trusted == ca.cert_pem.strip() + "\n" + other.cert_pem


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read the secret: grant it to this application"),
        ({"other": "x"}, "the secret has no 'ca-certs' key"),
        ({"ca-certs": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "is not"),
    ],
)
def test_unusable_client_ca_secret_is_blocked_and_changes_nothing(
    ctx: Ctx, root: Path, ca: Issued, content: dict[str, str] | None, problem: str
) -> None:
    """arrange: mutual TLS running. act: client-ca-secret ungranted or wrong.

    assert: Blocked naming the option, the running config and files untouched.
    """
    out = serving(ctx, root, ca, {"client-authentication": "required"})
    before = {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}
    secret = testing.Secret(tracked_content=content or {"ca-certs": ca.cert_pem})
    config = {"client-authentication": "required", "client-ca-secret": secret.id}
    state = dataclasses.replace(out, config=config, secrets=[secret] if content else [])

    with record_pebble() as calls:
        out = ctx.run(ctx.on.config_changed(), state)

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("invalid config 'client-ca-secret'")
    assert problem in out.unit_status.message
    assert "AAAA" not in out.unit_status.message
    assert calls.count(*RESTARTS, "push") == 0
    assert {path: path.read_bytes() for path in root.rglob("*") if path.is_file()} == before


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("optional", "'optional' is not possible: Falcosidekick either requires"),
        ("mutual", "must be 'none' or 'required'"),
    ],
)
def test_impossible_client_authentication_is_blocked(
    ctx: Ctx, root: Path, ca: Issued, value: str, problem: str
) -> None:
    """arrange: a sidekick in service. act: an unknown value. assert: Blocked naming it."""
    out = serving(ctx, root, ca, {})

    out = ctx.run(
        ctx.on.config_changed(),
        dataclasses.replace(out, config={"client-authentication": value}),
    )

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(f"invalid config 'client-authentication': {problem}")


def test_new_revision_of_client_ca_secret_restarts_once(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: mutual TLS with client-ca-secret. act: a new revision, then the same again.

    assert: the new CA is trusted after one restart; the second secret-changed does nothing.
    """
    first, second = make_ca("First Falco CA"), make_ca("Second Falco CA")
    secret = testing.Secret(tracked_content={"ca-certs": first.cert_pem})
    config = {"client-authentication": "required", "client-ca-secret": secret.id}
    out = serving(ctx, root, ca, config, secrets=[secret])
    rotated = dataclasses.replace(secret, latest_content={"ca-certs": second.cert_pem})

    others = {s for s in out.secrets if s.id != secret.id}
    with record_pebble() as calls:
        changed = ctx.run(
            ctx.on.secret_changed(rotated), dataclasses.replace(out, secrets={*others, rotated})
        )
    (tracked,) = (s for s in changed.secrets if s.id == secret.id)
    with record_pebble() as again:
        ctx.run(ctx.on.secret_changed(tracked), changed)

    trusted = (root / "tls" / CLIENT_CA_FILE).read_text()
    assert second.cert_pem in trusted and first.cert_pem not in trusted
    assert calls.count(*RESTARTS) == 1
    assert again.count(*RESTARTS) == 0
    assert again.count("push") == 0
