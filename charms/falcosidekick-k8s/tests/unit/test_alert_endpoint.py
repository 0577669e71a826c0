"""Where Falco is told to post: a host it can reach, named by the certificate being served."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import addresses
import certificates
import pytest
import sidekick_states as states
from charm import FalcosidekickCharm
from cryptography import x509
from ops import pebble, testing
from ops_probes import record_pebble
from scenario.mocking import _MockPebbleClient
from tls_material import Issued, issue

Ctx = testing.Context[FalcosidekickCharm]
EXTERNAL = "falcosidekick.example.com"


def served(ctx: Ctx, root: Path, ca: Issued, **config: str) -> testing.State:
    """Return a leader serving a certificate, with a Falco application related."""
    state = states.state(
        root,
        leader=True,
        config=config,
        relations={states.certificates_relation(), testing.Relation("http-endpoint")},
    )
    return states.with_certificate(ctx, state, ca)


def published_url(out: testing.State) -> str:
    url = json.loads(states.relation(out, "http-endpoint").local_app_data["url"])
    assert isinstance(url, str)
    return url


def csr_sans(out: testing.State) -> set[str]:
    (csr_pem,) = states.requested_csrs(states.relation(out, "certificates"))
    sans = x509.load_pem_x509_csr(csr_pem.encode()).extensions
    names = sans.get_extension_for_class(x509.SubjectAlternativeName).value
    return {
        *names.get_values_for_type(x509.DNSName),
        *map(str, names.get_values_for_type(x509.IPAddress)),
    }


def test_cluster_ip_is_published_when_no_external_hostname(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: Service resolves to its ClusterIP. act: certificate served. assert: URL on it."""
    out = served(ctx, root, ca)

    assert published_url(out) == f"https://{states.CLUSTER_IP}:2801/"
    assert out.unit_status == testing.ActiveStatus(
        "alerts are not stored: integrate 'send-loki-logs'"
    )


def test_unresolvable_service_falls_back_to_its_name(
    ctx: Ctx, root: Path, ca: Issued, dns: dict[str, str]
) -> None:
    """arrange: the Service name does not resolve. act: certificate served. assert: FQDN URL."""
    dns.clear()

    out = served(ctx, root, ca)

    assert published_url(out) == f"https://{states.SERVICE_FQDN}:2801/"
    assert states.CLUSTER_IP not in csr_sans(out)


def test_external_hostname_is_published_once_a_certificate_names_it(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: ClusterIP URL served. act: set external-hostname, then the new cert arrives.

    assert: first a new CSR, no restart, old URL kept, Waiting; then one restart and the URL.
    """
    before = served(ctx, root, ca)

    with record_pebble() as pebble_calls:
        asked = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(before, config={"external-hostname": EXTERNAL}),
        )
    waiting_calls = pebble_calls.count("push", "replan_services")
    answered = states.issue_certificates(states.relation(asked, "certificates"), ca)
    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.relation_changed(answered, remote_unit=0),
            states.replace_relation(asked, answered),
        )

    assert EXTERNAL in csr_sans(asked)
    assert states.CLUSTER_IP in csr_sans(asked)  # still reachable from cluster nodes
    assert waiting_calls == 0
    assert published_url(asked) == f"https://{states.CLUSTER_IP}:2801/"
    assert asked.unit_status == testing.WaitingStatus(
        f"waiting for a certificate that names {EXTERNAL}"
    )
    assert pebble_calls.count("replan_services") == 1
    assert published_url(out) == f"https://{EXTERNAL}:2801/"
    assert isinstance(out.unit_status, testing.ActiveStatus)


def test_ipv6_external_address_is_bracketed_in_the_url(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: external-hostname is an IPv6 address. act: served. assert: [addr] URL, IP SAN."""
    out = served(ctx, root, ca, **{"external-hostname": "FD00::10"})

    assert published_url(out) == "https://[fd00::10]:2801/"
    assert "fd00::10" in csr_sans(out)


@pytest.mark.parametrize("bad", ["https://sidekick.example.com", "sidekick:2801", "-x.example"])
def test_invalid_external_hostname_is_blocked_and_changes_nothing(
    ctx: Ctx, root: Path, ca: Issued, bad: str
) -> None:
    """arrange: certificate served. act: a malformed external-hostname. assert: Blocked, kept."""
    before = served(ctx, root, ca)
    csrs_before = csr_sans(before)

    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.config_changed(), dataclasses.replace(before, config={"external-hostname": bad})
        )

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("invalid config 'external-hostname': ")
    assert csr_sans(out) == csrs_before
    assert published_url(out) == published_url(before)
    assert pebble_calls.by_method == {}


def test_service_that_fails_to_start_is_a_status_not_an_error(
    ctx: Ctx, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: Pebble cannot start the service. act: pebble-ready. assert: Waiting, no raise."""
    now = datetime.datetime.now(datetime.timezone.utc)
    change = pebble.Change(
        pebble.ChangeID("7"), "replan", "Replan", "Error", [], True, "exited quickly", now, now
    )

    def refuse(self: _MockPebbleClient, timeout: float = 30.0, delay: float = 0.1) -> None:
        raise pebble.ChangeError("cannot start service: exited quickly", change)

    monkeypatch.setattr(_MockPebbleClient, "replan_services", refuse)
    state = states.state(root, relations={states.ingress_relation("https://ingress.example/x")})

    out = ctx.run(ctx.on.pebble_ready(states.container(root)), state)

    assert out.unit_status == testing.WaitingStatus("falcosidekick is not running, see its logs")
    assert states.rendered_config(root)["listenaddress"] == ""
    assert out.opened_ports == frozenset({testing.TCPPort(2801)})


def test_first_named_compares_names_and_addresses_as_curl_does(ca: Issued) -> None:
    """arrange: a cert for a name and an IP. act: look hosts up. assert: first one it names."""
    cert = issue(ca, "x", dns_names=("Sidekick.Example",), ip_addresses=("fd00::1",)).cert_pem

    assert certificates.first_named(cert, ["10.0.0.1", "sidekick.example"]) == "sidekick.example"
    assert certificates.first_named(cert, ["FD00:0::1", "sidekick.example"]) == "FD00:0::1"
    assert certificates.first_named(cert, ["other.example"]) is None
    assert certificates.first_named(ca.cert_pem, ["Test CA"]) is None  # no SANs at all


def test_resolve_answers_from_the_system_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """arrange: the real resolver. act: resolve localhost and an invalid name. assert: IP, None."""
    monkeypatch.undo()  # the autouse fixture replaced addresses.resolve with a table

    assert addresses.resolve("localhost") in ("127.0.0.1", "::1")
    assert addresses.resolve("no-such-host.invalid") is None
