"""How the alert input is exposed: every certificates x ingress x ingress-backend-scheme case.

Each case is driven through the charm's hooks (ops.testing) and checked for what decides
whether Falco's alerts arrive: where the sidekick listens and with what, what the ingress is
asked for, the URL and CA Falco is given, the port opened, and the status. Where a case
cannot deliver, the status is Blocked naming the option or relation and the fix.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import exposure
import pytest
import sidekick_states as states
from charm import FalcosidekickCharm
from ops import pebble, testing
from scenario.mocking import _MockPebbleClient
from tls_material import Issued, make_ca

Ctx = testing.Context[FalcosidekickCharm]
INGRESS_URL = "https://alerts.example.com/fmodel-falcosidekick-k8s"
LOKI_URL = "http://otelcol-0.otelcol-endpoints.fmodel.svc.cluster.local:3500/loki/api/v1/push"
DIRECT_URL = f"https://{states.CLUSTER_IP}:2801/"
WAITING_CERTIFICATE = testing.WaitingStatus("waiting for a certificate on 'certificates'")
WAITING_INGRESS = testing.WaitingStatus("waiting for the URL of 'ingress'")
NO_TLS = testing.BlockedStatus("no TLS: integrate with 'certificates' or 'ingress'")
HTTPS_WITHOUT_CERTIFICATES = testing.BlockedStatus(
    "ingress-backend-scheme is 'https' but 'certificates' is not integrated: integrate "
    "'certificates', or set ingress-backend-scheme=http"
)
CERTIFICATES_UNUSED = testing.ActiveStatus(
    "'certificates' is not used: the ingress reaches the pods over plain HTTP "
    "(ingress-backend-scheme=http); for TLS up to the pods use an ingress that verifies "
    "HTTPS backends (traefik) with ingress-backend-scheme=https"
)

# (certificates, ingress, ingress-backend-scheme) -> (listener, URL, status)
# listener: "loopback" (plain, 127.0.0.1 only), "plain" or "tls" (every address);
# URL: None (withdrawn), "direct" (DIRECT_URL with our CA) or "ingress" (INGRESS_URL, no CA).
CASES: dict[tuple[str, str, str], tuple[str, str | None, testing.StatusBase]] = {
    ("none", "none", "http"): ("loopback", None, NO_TLS),
    ("none", "none", "https"): ("loopback", None, NO_TLS),
    ("none", "pending", "http"): ("loopback", None, WAITING_INGRESS),
    ("none", "pending", "https"): ("loopback", None, HTTPS_WITHOUT_CERTIFICATES),
    ("none", "url", "http"): ("plain", "ingress", testing.ActiveStatus()),  # (b)
    ("none", "url", "https"): ("loopback", None, HTTPS_WITHOUT_CERTIFICATES),
    ("waiting", "none", "http"): ("loopback", None, WAITING_CERTIFICATE),
    ("waiting", "none", "https"): ("loopback", None, WAITING_CERTIFICATE),
    ("waiting", "pending", "http"): ("loopback", None, WAITING_INGRESS),
    ("waiting", "pending", "https"): ("loopback", None, WAITING_INGRESS),
    ("waiting", "url", "http"): ("plain", "ingress", CERTIFICATES_UNUSED),  # (d)
    ("waiting", "url", "https"): ("loopback", None, WAITING_CERTIFICATE),
    ("issued", "none", "http"): ("tls", "direct", testing.ActiveStatus()),  # (a)
    ("issued", "none", "https"): ("tls", "direct", testing.ActiveStatus()),  # (a)
    ("issued", "pending", "http"): ("tls", "direct", WAITING_INGRESS),  # (a) meanwhile
    ("issued", "pending", "https"): ("tls", "direct", WAITING_INGRESS),  # (a) meanwhile
    ("issued", "url", "http"): ("plain", "ingress", CERTIFICATES_UNUSED),  # (d)
    ("issued", "url", "https"): ("tls", "ingress", testing.ActiveStatus()),  # (c)
}


def deployed(
    ctx: Ctx, root: Path, ca: Issued, certificates: str, ingress: str, scheme: str
) -> testing.State:
    """Return a leader in service with the relations of a case, after its hooks ran."""
    relations: set[testing.RelationBase] = {
        testing.Relation("http-endpoint", remote_app_name="falco"),
        states.loki_relation(LOKI_URL),
    }
    if certificates != "none":
        relations.add(states.certificates_relation())
    if ingress != "none":
        relations.add(states.ingress_relation(INGRESS_URL if ingress == "url" else None))
    state = states.state(
        root, leader=True, config={"ingress-backend-scheme": scheme}, relations=relations
    )
    out = ctx.run(ctx.on.pebble_ready(states.container(root)), state)
    if certificates == "waiting":
        out = ctx.run(ctx.on.relation_created(states.relation(out, "certificates")), out)
    elif certificates == "issued":
        out = states.with_certificate(ctx, out, ca)
    return ctx.run(ctx.on.update_status(), out)


def listener(root: Path) -> str:
    """Return where the rendered config makes the sidekick listen for alerts."""
    config = states.rendered_config(root)
    if config["listenaddress"] == "127.0.0.1":
        assert config["tlsserver"] == {"deploy": False}
        return "loopback"
    assert config["listenaddress"] == ""
    return "tls" if config["tlsserver"]["deploy"] else "plain"


def published(out: testing.State) -> tuple[str | None, str | None]:
    bag = states.relation(out, "http-endpoint").local_app_data
    decoded = {key: json.loads(value) for key, value in bag.items() if value}
    return decoded.get("url"), decoded.get("ca_cert")


@pytest.mark.parametrize(("certificates", "ingress", "scheme"), sorted(CASES))
def test_every_combination_delivers_or_says_why_not(
    ctx: Ctx, root: Path, ca: Issued, certificates: str, ingress: str, scheme: str
) -> None:
    """arrange: a case's relations and option. act: its hooks. assert: listener, URL, status.

    Falco is given a URL only when this unit serves it, with the CA only when it talks TLS
    to the sidekick itself; the ingress is asked for the scheme the option names.
    """
    want_listener, want_url, want_status = CASES[certificates, ingress, scheme]

    out = deployed(ctx, root, ca, certificates, ingress, scheme)

    assert listener(root) == want_listener
    url, published_ca = published(out)
    if want_url == "direct":
        assert url == DIRECT_URL
        assert published_ca is not None and published_ca.strip() == ca.cert_pem.strip()
    else:
        assert (url, published_ca) == ((INGRESS_URL, None) if want_url else (None, None))
    assert out.unit_status == want_status
    assert out.opened_ports == (
        frozenset() if want_listener == "loopback" else frozenset({testing.TCPPort(2801)})
    )
    if ingress != "none":
        bag = states.relation(out, "ingress").local_app_data
        assert json.loads(bag.get("scheme", '"http"')) == scheme
    plan = out.get_container(states.CONTAINER).plan
    assert plan.checks["falcosidekick-ready"].tcp == {"host": "192.0.2.0", "port": 2801}
    assert plan.checks["falcosidekick-ready"].level == pebble.CheckLevel.READY


def test_invalid_backend_scheme_is_blocked_naming_the_option(ctx: Ctx, root: Path) -> None:
    """arrange: an ingress. act: ingress-backend-scheme=h2c. assert: Blocked naming it."""
    state = states.state(
        root,
        config={"ingress-backend-scheme": "h2c"},
        relations={states.ingress_relation(INGRESS_URL)},
    )

    out = ctx.run(ctx.on.config_changed(), state)

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("invalid config 'ingress-backend-scheme': ")


# the ingress request after a refresh from the prior charm ----------------------------------

# What the prior falcosidekick charm left in our ingress application bag (INTERFACES.md,
# ingress v2, observed with its arguments strip_prefix=True, redirect_https=True).
PRIOR_CHARM_BAG = {
    "model": '"fmodel"',
    "name": '"falcosidekick-k8s"',
    "port": "2801",
    "strip-prefix": "true",
    "redirect-https": "true",
}


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_refreshed_ingress_request_is_the_same_as_a_fresh_one(
    ctx: Ctx, tmp_path: Path, scheme: str
) -> None:
    """arrange: the prior charm's ingress bag (redirect-https and more). act: upgrade-charm.

    assert: our application bag is byte for byte what a fresh deploy writes: the keys we do
    not own are gone, so the provider parses redirect-https as False again.
    """
    config = {"ingress-backend-scheme": scheme}
    fresh_root, old_root = tmp_path / "fresh", tmp_path / "refreshed"
    fresh_root.mkdir()
    old_root.mkdir()
    fresh_ingress = states.ingress_relation(INGRESS_URL)
    fresh = ctx.run(
        ctx.on.relation_joined(fresh_ingress, remote_unit=0),
        states.state(fresh_root, leader=True, config=config, relations={fresh_ingress}),
    )
    left_over = {**PRIOR_CHARM_BAG, "is_port_open": "false", "scheme": '"h2c"'}
    old_ingress = states.ingress_relation(INGRESS_URL, local_app_data=left_over)

    refreshed = ctx.run(
        ctx.on.upgrade_charm(),
        states.state(old_root, leader=True, config=config, relations={old_ingress}),
    )

    fresh_bag = states.relation(fresh, "ingress").local_app_data
    assert states.relation(refreshed, "ingress").local_app_data == fresh_bag
    assert "redirect-https" not in fresh_bag


# units in and out of rotation: the peer relation ---------------------------------------------

PEERS = "sidekick-peers"


def report(scheme: str = "https", port: int = 2801, **extra: Any) -> dict[str, str]:
    """Return a peer unit's bag reporting what it serves."""
    return {"alert-input": json.dumps({"scheme": scheme, "port": port, **extra})}


def leader_waiting_for_its_certificate(
    root: Path, peers: dict[int, dict[str, str]], leader: bool = True
) -> testing.State:
    """Return a leader whose own certificate is not there yet, with peers reporting."""
    return states.state(
        root,
        leader=leader,
        relations={
            states.certificates_relation(),
            testing.Relation("http-endpoint", remote_app_name="falco"),
            testing.PeerRelation(PEERS, peers_data=peers),
        },
    )


def test_leader_publishes_what_another_unit_serves(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: the leader waits for its certificate; unit 1 serves. act: peer changed.

    assert: the URL and CA unit 1 serves are published; the leader reports nothing.
    """
    peer = report(hosts=[states.CLUSTER_IP, states.SERVICE_FQDN], ca=ca.cert_pem)
    state = leader_waiting_for_its_certificate(root, {1: peer})

    out = ctx.run(ctx.on.relation_changed(states.peer_relation(state), remote_unit=1), state)

    assert published(out) == (DIRECT_URL, ca.cert_pem.strip() + "\n")
    assert "alert-input" not in states.peer_relation(out).local_unit_data
    assert out.unit_status == WAITING_CERTIFICATE


def test_leader_withdraws_when_no_unit_serves(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: URL published from unit 1's report. act: unit 1 stops serving. assert: gone."""
    peer = report(hosts=[states.CLUSTER_IP], ca=ca.cert_pem)
    state = leader_waiting_for_its_certificate(root, {1: peer})
    serving = ctx.run(ctx.on.relation_changed(states.peer_relation(state), remote_unit=1), state)
    assert published(serving)[0] == DIRECT_URL
    stopped = testing.PeerRelation(PEERS, id=states.peer_relation(serving).id, peers_data={1: {}})

    out = ctx.run(
        ctx.on.relation_changed(stopped, remote_unit=1), states.replace_relation(serving, stopped)
    )

    assert published(out) == (None, None)


def test_leader_publishes_a_host_every_serving_unit_names_and_every_ca(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: two units, certificates from two CAs. act: peer changed. assert: both CAs.

    The leader's certificate names the ClusterIP, unit 1's (another CA) only the Service
    name: the Service name is published with both CAs. The Service takes Falco to either
    unit: the host must be valid for both certificates, and Falco must trust both CAs (as
    during a CA rotation that reached one unit).
    """
    other_ca = make_ca("Another unit's CA")
    peer = report(hosts=[states.SERVICE_FQDN], ca=other_ca.cert_pem)
    serving = states.with_certificate(ctx, leader_waiting_for_its_certificate(root, {}), ca)
    with_peer = states.replace_relation(
        serving,
        testing.PeerRelation(PEERS, id=states.peer_relation(serving).id, peers_data={1: peer}),
    )

    out = ctx.run(
        ctx.on.relation_changed(states.peer_relation(with_peer), remote_unit=1), with_peer
    )

    url, bundle = published(out)
    assert url == f"https://{states.SERVICE_FQDN}:2801/"
    assert bundle is not None
    assert set(_pems(bundle)) == {ca.cert_pem.strip(), other_ca.cert_pem.strip()}


def _pems(bundle: str) -> list[str]:
    marker = "-----END CERTIFICATE-----"
    return [part.strip() + "\n" + marker for part in bundle.split(marker) if part.strip()]


@pytest.mark.parametrize(
    "garbage",
    [
        "not json",
        json.dumps(["https", 2801]),
        json.dumps({"scheme": "ftp", "port": 2801}),
        json.dumps({"scheme": "https", "port": "2801"}),
        json.dumps({"scheme": "https", "port": 2801, "hosts": "x"}),
        json.dumps({"scheme": "https", "port": 2801, "hosts": ["x"], "ca": "not a PEM"}),
        "[" * 100_000,
        json.dumps({"scheme": "https", "port": 2801, "ca": "x" * 100_000}),
    ],
)
def test_unreadable_peer_report_is_ignored(
    ctx: Ctx, root: Path, garbage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """arrange: the leader waits for its certificate; unit 1 reports garbage. act: changed.

    assert: no hook error, nothing published from it, and the log quotes only its start.
    """
    state = leader_waiting_for_its_certificate(root, {1: {"alert-input": garbage}})

    out = ctx.run(ctx.on.relation_changed(states.peer_relation(state), remote_unit=1), state)

    assert published(out) == (None, None)
    assert all(len(record.getMessage()) < 300 for record in caplog.records)


def test_a_unit_on_another_port_does_not_count(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: unit 1 still serves the old port. act: peer changed. assert: no URL."""
    state = leader_waiting_for_its_certificate(
        root, {1: report(port=2901, hosts=[states.CLUSTER_IP], ca=ca.cert_pem)}
    )

    out = ctx.run(ctx.on.relation_changed(states.peer_relation(state), remote_unit=1), state)

    assert published(out) == (None, None)


def test_unit_reports_what_it_serves_once(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: a non-leader serving its certificate. act: two no-op hooks. assert.

    Its report (scheme, port, the hosts its certificate names, its CA) is written once; the
    no-op hooks write nothing.
    """
    state = leader_waiting_for_its_certificate(root, {}, leader=False)
    out = states.with_certificate(ctx, state, ca)

    written = dict(states.peer_relation(out).local_unit_data)
    for _ in range(2):
        out = ctx.run(ctx.on.update_status(), out)

    assert json.loads(written["alert-input"]) == {
        "scheme": "https",
        "port": 2801,
        "hosts": [states.CLUSTER_IP, states.SERVICE_FQDN],
        "ca": ca.cert_pem.strip() + "\n",
    }
    assert states.peer_relation(out).local_unit_data == written
    assert "url" not in states.relation(out, "http-endpoint").local_app_data


def test_a_sidekick_that_does_not_start_is_not_published(
    ctx: Ctx, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: behind an ingress, Pebble cannot start the service. act: pebble-ready.

    assert: no URL for Falco (nothing would answer it), Waiting; once it starts, published.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    change = pebble.Change(
        pebble.ChangeID("7"), "replan", "Replan", "Error", [], True, "exited quickly", now, now
    )

    def refuse(self: _MockPebbleClient, timeout: float = 30.0, delay: float = 0.1) -> None:
        raise pebble.ChangeError("cannot start service: exited quickly", change)

    state = states.state(
        root,
        leader=True,
        relations={
            states.ingress_relation(INGRESS_URL),
            testing.Relation("http-endpoint", remote_app_name="falco"),
        },
    )
    with monkeypatch.context() as patch:
        patch.setattr(_MockPebbleClient, "replan_services", refuse)
        failed = ctx.run(ctx.on.pebble_ready(states.container(root)), state)

    started = ctx.run(ctx.on.update_status(), failed)

    assert published(failed) == (None, None)
    assert failed.unit_status == testing.WaitingStatus(
        "falcosidekick is not running, see its logs"
    )
    assert published(started) == (INGRESS_URL, None)


# the exposure model on its own -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "mode"),
    [
        (exposure.Inputs(2801), exposure.Mode.CLOSED),
        (exposure.Inputs(2801, certificates=True), exposure.Mode.DIRECT_TLS),
        (
            exposure.Inputs(2801, "https", ingress=True, ingress_url=INGRESS_URL),
            exposure.Mode.CLOSED,
        ),
        (
            exposure.Inputs(2801, "https", True, True, INGRESS_URL),
            exposure.Mode.INGRESS_TLS,
        ),
        (exposure.Inputs(2801, "http", True, True, INGRESS_URL), exposure.Mode.INGRESS_PLAIN),
        (exposure.Inputs(2801, "http", True, True, None), exposure.Mode.DIRECT_TLS),
    ],
)
def test_decide(inputs: exposure.Inputs, mode: exposure.Mode) -> None:
    """arrange: inputs. act: decide. assert: the mode of the module's table."""
    assert exposure.decide(inputs) is mode


def test_served_round_trips_through_peer_data() -> None:
    """arrange: a report. act: to JSON and back. assert: the same report."""
    served = exposure.Served("https", 2801, ("10.0.0.1", "fd00::1"), "-----BEGIN CERT...")

    assert exposure.Served.from_json(served.to_json()) == served


@pytest.mark.parametrize(
    ("named", "host"),
    [
        ([["10.0.0.1", "sidekick.svc"], ["sidekick.svc"]], "sidekick.svc"),  # every unit
        ([["10.0.0.1"], ["sidekick.svc"]], "10.0.0.1"),  # none in common: the best any names
        ([[], []], "sidekick.svc"),  # no certificate names one: the Service name
    ],
)
def test_direct_url_host_is_one_the_serving_certificates_name(
    named: list[list[str]], host: str
) -> None:
    """arrange: units serving certificates naming hosts. act: endpoint. assert: the host."""
    direct = exposure.Exposure.of(exposure.Inputs(2801, certificates=True))
    serving = [exposure.Served("https", 2801, tuple(hosts)) for hosts in named]

    endpoint = direct.endpoint(serving, ["10.0.0.1", "sidekick.svc"])

    assert endpoint == exposure.Endpoint(f"https://{host}:2801/")
