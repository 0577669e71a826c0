"""State-transition tests of the falcosidekick-k8s charm: workload, TLS, statuses."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import sidekick_states as states
from charm import FalcosidekickCharm
from cryptography import x509
from ops import pebble, testing
from ops_probes import record_pebble, record_relation_writes
from sidekick import MISSING_BINARY, MISSING_USER, Workload
from tls_material import Issued

Ctx = testing.Context[FalcosidekickCharm]
LOKI_URL = "http://otelcol-0.otelcol-endpoints.fmodel.svc.cluster.local:3500/loki/api/v1/push"


def tls_state(root: Path, **kwargs: object) -> testing.State:
    relations = {states.certificates_relation(), *kwargs.pop("relations", set())}  # type: ignore[misc]
    return states.state(root, leader=True, relations=relations, **kwargs)


def test_waits_for_pebble_without_error(ctx: Ctx, root: Path) -> None:
    """arrange: TLS related, Pebble unreachable. act: update-status. assert: Waiting, no error."""
    state = states.state(
        root,
        relations={states.certificates_relation()},
        containers={states.container(root, can_connect=False)},
    )

    out = ctx.run(ctx.on.update_status(), state)

    assert out.unit_status == testing.WaitingStatus(
        "waiting for Pebble in the falcosidekick container"
    )
    assert list(root.iterdir()) == []


def test_without_tls_listens_on_loopback_only_and_asks_for_a_relation(
    ctx: Ctx, root: Path
) -> None:
    """arrange: Pebble up, no TLS relation. act: pebble-ready. assert: loopback, Blocked."""
    state = states.state(root, leader=True, relations={testing.Relation("http-endpoint")})

    out = ctx.run(ctx.on.pebble_ready(states.container(root)), state)

    assert out.unit_status == testing.BlockedStatus(
        "no TLS: integrate with 'certificates' or 'ingress'"
    )
    assert states.rendered_config(root)["listenaddress"] == "127.0.0.1"
    assert out.opened_ports == frozenset()
    assert "url" not in states.relation(out, "http-endpoint").local_app_data
    plan = out.get_container(states.CONTAINER).plan
    assert plan.checks["falcosidekick-up"].http == {"url": "http://127.0.0.1:2801/healthz"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"port": 70000}, "invalid config 'port': Input should be less than or equal to 65535"),
        ({"port": 2810}, "invalid config 'port': 2810 is taken by the plain-HTTP health"),
        ({"minimum-priority": "loud"}, "invalid config 'minimum-priority': Input should be"),
        ({"custom-fields": "env"}, "invalid config 'custom-fields': expected 'name:value'"),
        ({"custom-fields": "juju_unit:x"}, "invalid config 'custom-fields': field name 'juju_u"),
        ({"custom-fields": "a-b:x"}, "invalid config 'custom-fields': field name 'a-b' must"),
        ({"custom-fields": "a:%HOME"}, "invalid config 'custom-fields': value of 'a' must not"),
        (
            {"custom-fields": "env:prod,Priority:x"},
            "invalid config 'custom-fields': field name 'Priority' is reserved: Falcosidekick "
            "labels its metrics with 'priority' itself (names are not case-sensitive); "
            "rename the field",
        ),
        (
            {"custom-fields": "k8s_pod_name:x"},
            "invalid config 'custom-fields': field name 'k8s_pod_name' is reserved",
        ),
        (
            {"custom-fields": "__meta:x"},
            "invalid config 'custom-fields': field name '__meta' must not start with '__' "
            "(Prometheus keeps such label names for itself); rename the field",
        ),
        (
            {"custom-fields": "Team:a,env:b,team:c"},
            "invalid config 'custom-fields': field names 'Team' and 'team' are the same to "
            "Falcosidekick (it ignores case): keep one",
        ),
        (
            {"custom-fields": "env:a,env:b"},
            "invalid config 'custom-fields': field name 'env' is given twice: keep one",
        ),
        (
            {"custom-fields": "Juju_Unit:x"},
            "invalid config 'custom-fields': field name 'Juju_Unit' is reserved: Falco sets the "
            "juju_* fields (names are not case-sensitive)",
        ),
        ({"loki-tenant": "a b"}, "invalid config 'loki-tenant': a Loki tenant is at most 150"),
    ],
)
def test_invalid_option_is_blocked_naming_it(
    ctx: Ctx, root: Path, config: dict[str, object], message: str
) -> None:
    """arrange: one bad option. act: config-changed. assert: Blocked naming the option."""
    state = states.state(root, config=config, relations={states.certificates_relation()})

    out = ctx.run(ctx.on.config_changed(), state)

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(message)


def test_invalid_option_keeps_the_running_config(ctx: Ctx, root: Path) -> None:
    """arrange: running sidekick. act: config-changed to a bad port. assert: nothing touched."""
    running = ctx.run(ctx.on.pebble_ready(states.container(root)), states.state(root))
    before = (root / "falcosidekick.yaml").read_text()

    with record_pebble() as pebble_calls:
        out = ctx.run(ctx.on.config_changed(), dataclasses.replace(running, config={"port": 0}))

    assert pebble_calls.by_method == {}
    assert (root / "falcosidekick.yaml").read_text() == before
    assert isinstance(out.unit_status, testing.BlockedStatus)


def test_certificate_request_covers_every_name(ctx: Ctx, root: Path) -> None:
    """arrange: certificates related. act: relation-created. assert: CSR SANs are the names."""
    state = tls_state(root)

    out = ctx.run(ctx.on.relation_created(states.relation(state, "certificates")), state)

    (csr_pem,) = states.requested_csrs(states.relation(out, "certificates"))
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {
        states.SERVICE_FQDN,
        "falcosidekick-k8s.fmodel.svc",
        "falcosidekick-k8s.fmodel",
        "falcosidekick-k8s",
        states.POD_FQDN,
    }
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [states.CLUSTER_IP]
    assert out.unit_status == testing.WaitingStatus("waiting for a certificate on 'certificates'")


def test_certificate_is_served_and_published(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: CSR sent. act: provider answers. assert: files, TLS config, URL+CA, one restart."""
    state = tls_state(
        root, relations={testing.Relation("http-endpoint"), states.loki_relation(LOKI_URL)}
    )
    state = ctx.run(ctx.on.pebble_ready(states.container(root)), state)  # running, on loopback
    created = ctx.run(ctx.on.relation_created(states.relation(state, "certificates")), state)
    answered = states.issue_certificates(states.relation(created, "certificates"), ca)

    with record_pebble() as pebble_calls, record_relation_writes() as relation_writes:
        out = ctx.run(
            ctx.on.relation_changed(answered, remote_unit=0),
            states.replace_relation(created, answered),
        )

    assert pebble_calls.count("replan_services", "restart_services", "start_services") == 1
    pushes = {str(args[0]): kwargs for args, kwargs in pebble_calls.by_method["push"]}
    assert {path: (kw["permissions"], kw["user"], kw["group"]) for path, kw in pushes.items()} == {
        "/etc/falcosidekick/tls/server.crt": (0o644, "falcosidekick", "falcosidekick"),
        "/etc/falcosidekick/tls/server.key": (0o600, "falcosidekick", "falcosidekick"),
        "/etc/falcosidekick/tls/ca.crt": (0o644, "falcosidekick", "falcosidekick"),
        "/etc/falcosidekick/falcosidekick.yaml": (0o600, "falcosidekick", "falcosidekick"),
    }
    assert stat.S_IMODE((root / "tls" / "server.key").stat().st_mode) == 0o600
    assert (root / "tls" / "ca.crt").read_text().strip() == ca.cert_pem.strip()
    config = states.rendered_config(root)
    assert config["listenaddress"] == ""
    assert config["tlsserver"]["deploy"] is True
    plan = out.get_container(states.CONTAINER).plan
    assert plan.checks["falcosidekick-up"].http == {"url": "http://127.0.0.1:2810/healthz"}
    published = states.relation(out, "http-endpoint").local_app_data
    assert json.loads(published["url"]) == f"https://{states.CLUSTER_IP}:2801/"
    assert json.loads(published["ca_cert"]).strip() == ca.cert_pem.strip()
    assert relation_writes.count("relation_set") == 1
    assert out.opened_ports == frozenset({testing.TCPPort(2801)})
    assert out.unit_status == testing.ActiveStatus()


def test_published_host_is_in_the_served_certificate(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: certificate served. act: read URL, cert, CA. assert: SAN matches, CA verifies."""
    out = states.with_certificate(
        ctx, tls_state(root, relations={testing.Relation("http-endpoint")}), ca
    )

    published = states.relation(out, "http-endpoint").local_app_data
    host = json.loads(published["url"]).split("://")[1].split(":")[0]
    served = x509.load_pem_x509_certificate((root / "tls" / "server.crt").read_bytes())
    sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert host in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    published_ca = x509.load_pem_x509_certificate(json.loads(published["ca_cert"]).encode())
    served.verify_directly_issued_by(published_ca)


def test_renewed_certificate_restarts_once_and_writes_only_the_certificate(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: certificate served. act: provider renews it. assert: one restart, cert pushed."""
    out = states.with_certificate(
        ctx, tls_state(root, relations={testing.Relation("http-endpoint")}), ca
    )
    renewed = states.issue_certificates(states.relation(out, "certificates"), ca, days=30)
    old_cert = (root / "tls" / "server.crt").read_text()

    with record_pebble() as pebble_calls, record_relation_writes() as relation_writes:
        ctx.run(
            ctx.on.relation_changed(renewed, remote_unit=0), states.replace_relation(out, renewed)
        )

    assert pebble_calls.count("replan_services", "restart_services", "start_services") == 1
    assert [str(args[0]) for args, _ in pebble_calls.by_method["push"]] == [
        "/etc/falcosidekick/tls/server.crt"
    ]
    assert (root / "tls" / "server.crt").read_text() != old_cert
    assert relation_writes.count("relation_set") == 0  # same URL, same CA


def test_no_op_events_do_nothing(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: TLS, Loki, Falco related. act: config-changed, update-status. assert: no work."""
    relations = {testing.Relation("http-endpoint"), states.loki_relation(LOKI_URL)}
    out = states.with_certificate(ctx, tls_state(root, relations=relations), ca)

    with record_pebble() as pebble_calls, record_relation_writes() as relation_writes:
        for event in (ctx.on.config_changed(), ctx.on.update_status(), ctx.on.upgrade_charm()):
            out = ctx.run(event, out)

    assert pebble_calls.by_method == {}
    assert relation_writes.count("relation_set") == 0
    assert out.unit_status == testing.ActiveStatus()


def test_certificates_removed_without_ingress_goes_back_to_blocked(
    ctx: Ctx, root: Path, ca: Issued
) -> None:
    """arrange: TLS served. act: relation-broken. assert: key removed, loopback, URL withdrawn.

    The tls library still runs in that hook (the relation is gone from the model): it
    removes its private key secret.
    """
    out = states.with_certificate(
        ctx, tls_state(root, relations={testing.Relation("http-endpoint")}), ca
    )
    certificates = states.relation(out, "certificates")
    assert any("private-key" in (secret.label or "") for secret in out.secrets)

    with record_pebble() as pebble_calls:
        out = ctx.run(ctx.on.relation_broken(certificates), out)

    assert sorted(p.name for p in (root / "tls").iterdir()) == []
    assert not any("private-key" in (secret.label or "") for secret in out.secrets)
    assert pebble_calls.count("remove_path") == 3
    assert pebble_calls.count("replan_services") == 1
    assert states.rendered_config(root)["listenaddress"] == "127.0.0.1"
    assert states.relation(out, "http-endpoint").local_app_data.get("url", "") == ""
    assert out.opened_ports == frozenset()
    assert out.unit_status == testing.BlockedStatus(
        "no TLS: integrate with 'certificates' or 'ingress'"
    )


def test_stopped_service_is_started_again(ctx: Ctx, root: Path) -> None:
    """arrange: config in place, service inactive. act: update-status. assert: one replan."""
    running = ctx.run(ctx.on.pebble_ready(states.container(root)), states.state(root))
    stopped = dataclasses.replace(
        running.get_container(states.CONTAINER),
        service_statuses={"falcosidekick": pebble.ServiceStatus.INACTIVE},
    )

    with record_pebble() as pebble_calls:
        ctx.run(ctx.on.update_status(), dataclasses.replace(running, containers={stopped}))

    assert pebble_calls.count("replan_services") == 1
    assert pebble_calls.count("push") == 0


def test_status_reports_a_dead_or_unhealthy_service(ctx: Ctx, root: Path) -> None:
    """arrange: TLS via ingress, service in error or check down. act: status. assert: Waiting."""
    state = states.state(
        root, relations={states.ingress_relation("https://ingress.example/fmodel-fs")}
    )
    running = ctx.run(ctx.on.pebble_ready(states.container(root)), state)
    container = running.get_container(states.CONTAINER)
    backoff = dataclasses.replace(
        container, service_statuses={"falcosidekick": pebble.ServiceStatus.ERROR}
    )
    down = dataclasses.replace(
        container,
        check_infos={
            testing.CheckInfo(
                "falcosidekick-up",
                level=pebble.CheckLevel.ALIVE,
                status=pebble.CheckStatus.DOWN,
                failures=3,
            )
        },
    )

    dead = ctx.run(
        ctx.on.collect_unit_status(), dataclasses.replace(running, containers={backoff})
    )
    sick = ctx.run(ctx.on.collect_unit_status(), dataclasses.replace(running, containers={down}))

    assert dead.unit_status == testing.WaitingStatus("falcosidekick is not running, see its logs")
    assert sick.unit_status == testing.WaitingStatus("falcosidekick fails its health check")


def test_image_without_the_binary_is_blocked_and_left_alone(
    ctx: Ctx, root: Path, tmp_path: Path
) -> None:
    """arrange: an image with no falcosidekick anywhere. act: pebble-ready. assert: Blocked."""
    empty = tmp_path / "empty-app"
    empty.mkdir()
    container = states.container(root, image_app=empty)
    state = states.state(root, relations={states.certificates_relation()}, containers={container})

    with record_pebble() as pebble_calls:
        out = ctx.run(ctx.on.pebble_ready(container), state)

    assert out.unit_status == testing.BlockedStatus(MISSING_BINARY)
    assert "'falcosidekick-image'" in MISSING_BINARY
    assert out.get_container(states.CONTAINER).plan.services == {}
    assert pebble_calls.count("replan_services") == 0
    assert list(root.iterdir()) == []


def test_an_image_with_the_binary_on_the_path_runs_it_from_there(
    ctx: Ctx, root: Path, tmp_path: Path
) -> None:
    """arrange: only /usr/local/bin has the binary. act: pebble-ready. assert: it runs that."""
    empty, bin_dir = tmp_path / "empty-app", tmp_path / "usr-local-bin"
    empty.mkdir()
    bin_dir.mkdir()
    (bin_dir / "falcosidekick").write_text("#!/bin/sh\n")
    container = states.container(root, image_app=empty)
    container = dataclasses.replace(
        container,
        mounts={
            **container.mounts,
            "bin": testing.Mount(location="/usr/local/bin", source=bin_dir),
        },
    )

    out = ctx.run(ctx.on.pebble_ready(container), states.state(root, containers={container}))

    service = out.get_container(states.CONTAINER).plan.services["falcosidekick"]
    assert service.command == (
        "/usr/local/bin/falcosidekick -c /etc/falcosidekick/falcosidekick.yaml"
    )


@pytest.fixture(name="image_without_user")
def image_without_user_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the test Pebble answer as one in an image without the 'falcosidekick' user.

    ops.testing ignores file owners; a real Pebble refuses a name it cannot look up, with
    this error (which charmlibs-pathops turns into LookupError).
    """
    from ops._private.harness import _TestingPebbleClient

    def refusing(original: Any) -> Any:
        def call(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("user") == "falcosidekick":
                raise pebble.PathError(
                    "generic-file-error",
                    "cannot look up user and group: user: unknown user falcosidekick",
                )
            return original(self, path, *args, **kwargs)

        return call

    for name in ("push", "make_dir"):
        monkeypatch.setattr(
            _TestingPebbleClient, name, refusing(getattr(_TestingPebbleClient, name))
        )


@pytest.mark.usefixtures("image_without_user")
def test_image_without_the_user_is_blocked_not_an_error(ctx: Ctx, root: Path) -> None:
    """arrange: an image without the sidekick's user. act: pebble-ready. assert: Blocked."""
    state = states.state(root, relations={states.certificates_relation()})

    with record_pebble() as pebble_calls:
        out = ctx.run(ctx.on.pebble_ready(states.container(root)), state)

    assert out.unit_status == testing.BlockedStatus(MISSING_USER)
    assert out.get_container(states.CONTAINER).plan.services == {}
    assert pebble_calls.count("replan_services") == 0
    assert list(root.iterdir()) == []


def test_serving_endpoints_follow_the_deployed_tls_mode(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: TLS served. act: ask where the sidekick answers. assert: https, 2810, the CA."""
    out = states.with_certificate(ctx, tls_state(root), ca)

    with ctx(ctx.on.update_status(), out) as manager:
        container = manager.charm.unit.get_container(states.CONTAINER)
        local = Workload(container).serving_endpoints()

    assert local is not None
    assert local.alert_base == "https://127.0.0.1:2801"
    assert local.metrics_url == "http://127.0.0.1:2810/metrics"
    assert local.ca is not None
    assert local.ca.strip() == ca.cert_pem.strip()
