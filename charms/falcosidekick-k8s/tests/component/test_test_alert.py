"""The test-alert path against a fake sidekick on real loopback sockets."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import sidekick
import sidekick_states as states
from charm import FalcosidekickCharm
from fake_sidekick import FakeSidekick, free_port, serving
from ops import testing
from sidekick_client import DeliveryCheckError, deliver_test_event, output_counts
from tls_material import Issued, issue, make_ca

Ctx = testing.Context[FalcosidekickCharm]
LOKI_URL = "http://otelcol-0.otelcol-endpoints.fmodel.svc.cluster.local:3500/loki/api/v1/push"


def test_output_counts_reads_only_the_destination_asked() -> None:
    """arrange: metrics of two outputs. act: parse for loki. assert: loki's ok and error."""
    counts = output_counts(FakeSidekick(loki={"ok": 4, "error": 2}).metrics(), "loki")

    assert (counts.ok, counts.error) == (4.0, 2.0)
    assert output_counts("", "loki").ok == 0.0


@pytest.mark.parametrize(
    ("outcome", "accepted", "failed"),
    [("ok", True, False), ("error", False, True), ("silent", False, False)],
)
def test_delivery_is_read_from_the_counters(outcome: str, accepted: bool, failed: bool) -> None:
    """arrange: fake sidekick with an outcome. act: deliver a test event. assert: as counted."""
    fake = FakeSidekick(outcome=outcome)  # type: ignore[arg-type]
    with serving(fake) as (alert_base, metrics_url):
        delivery = deliver_test_event(alert_base, metrics_url, timeout_s=1.0)

    assert (delivery.accepted, delivery.failed) == (accepted, failed)
    assert fake.posts == ["/test"]


def test_tls_sidekick_is_verified_against_its_ca(tmp_path: Path, ca: Issued) -> None:
    """arrange: HTTPS fake signed by the CA. act: deliver with the CA. assert: accepted."""
    served = issue(ca, "falcosidekick-k8s", dns_names=(states.SERVICE_FQDN,))
    (tmp_path / "crt").write_text(served.cert_pem)
    (tmp_path / "key").write_text(served.key_pem)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "crt", tmp_path / "key")

    with serving(FakeSidekick(), tls=server_context) as (alert_base, metrics_url):
        delivery = deliver_test_event(alert_base, metrics_url, ca.cert_pem)
        with pytest.raises(DeliveryCheckError, match="cannot reach falcosidekick"):
            deliver_test_event(alert_base, metrics_url, make_ca("Other").cert_pem)

    assert alert_base.startswith("https://")
    assert delivery.accepted


def test_unreachable_sidekick_is_an_error() -> None:
    """arrange: nothing listening. act: deliver. assert: DeliveryCheckError naming the URL."""
    with serving(FakeSidekick()) as (_, metrics_url):
        pass

    with pytest.raises(DeliveryCheckError, match=r"cannot reach falcosidekick at http://127"):
        deliver_test_event("http://127.0.0.1:9", metrics_url, timeout_s=0.1)


def running_behind_ingress(ctx: Ctx, root: Path, port: int) -> testing.State:
    """Return the state of a sidekick serving plain HTTP on ``port`` behind an ingress."""
    state = states.state(
        root,
        config={"port": port},
        relations={
            states.ingress_relation("https://ingress.example/x"),
            states.loki_relation(LOKI_URL),
        },
    )
    return ctx.run(ctx.on.pebble_ready(states.container(root)), state)


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        ("error", "Loki did not accept the test alert: see falcosidekick's logs"),
        ("silent", "falcosidekick recorded no delivery to Loki within 1 s"),
    ],
)
def test_action_fails_when_loki_does_not_take_the_alert(
    ctx: Ctx, root: Path, outcome: str, message: str
) -> None:
    """arrange: sidekick whose Loki fails. act: test-alert. assert: action fails, says why."""
    fake = FakeSidekick(outcome=outcome)  # type: ignore[arg-type]
    with serving(fake) as (alert_base, _):
        state = running_behind_ingress(ctx, root, int(alert_base.rsplit(":", 1)[1]))
        with pytest.raises(testing.ActionFailed) as failure:
            ctx.run(ctx.on.action("test-alert", params={"timeout": 1}), state)

    assert failure.value.message == message


def test_action_reports_loki_accepted(ctx: Ctx, root: Path) -> None:
    """arrange: sidekick whose Loki works. act: test-alert. assert: results with the counts."""
    with serving(FakeSidekick(loki={"ok": 2, "error": 1})) as (alert_base, _):
        state = running_behind_ingress(ctx, root, int(alert_base.rsplit(":", 1)[1]))
        ctx.run(ctx.on.action("test-alert", params={"timeout": 5}), state)

    assert ctx.action_results == {
        "result": "Loki accepted the test alert",
        "loki-ok": "2 -> 3",
        "loki-error": "1 -> 1",
    }


def test_action_needs_loki_and_a_running_sidekick(ctx: Ctx, root: Path) -> None:
    """arrange: no Loki; Loki but nothing deployed. act: test-alert. assert: clear failures."""
    no_loki = states.state(root)
    not_running = states.state(root, relations={states.loki_relation(LOKI_URL)})

    with pytest.raises(testing.ActionFailed) as without_loki:
        ctx.run(ctx.on.action("test-alert"), no_loki)
    with pytest.raises(testing.ActionFailed) as without_sidekick:
        ctx.run(ctx.on.action("test-alert"), not_running)

    assert without_loki.value.message == "no Loki to deliver to: integrate 'send-loki-logs' first"
    assert without_sidekick.value.message == "falcosidekick is not running"


def test_action_fails_when_the_sidekick_does_not_answer(ctx: Ctx, root: Path) -> None:
    """arrange: config deployed on a port where nothing listens. act: test-alert. assert: fails."""
    with serving(FakeSidekick()) as (alert_base, _):
        port = int(alert_base.rsplit(":", 1)[1])
    state = running_behind_ingress(ctx, root, port)

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("test-alert", params={"timeout": 1}), state)

    assert failure.value.message.startswith(
        f"cannot reach falcosidekick at http://127.0.0.1:{port}"
    )


def test_action_in_tls_mode_verifies_the_served_certificate(
    ctx: Ctx, root: Path, ca: Issued, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: the charm serves its certificate; an HTTPS fake runs with the deployed files.

    act: test-alert. assert: posted over TLS to the alert port, counters read on the plain one.
    """
    alert_port, plain_port = free_port(), free_port()
    monkeypatch.setattr(sidekick, "NO_TLS_PORT", plain_port)
    state = states.state(
        root,
        config={"port": alert_port},
        relations={states.certificates_relation(), states.loki_relation(LOKI_URL)},
    )
    tls_state = states.with_certificate(ctx, state, ca)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(root / "tls" / "server.crt", root / "tls" / "server.key")
    fake = FakeSidekick(loki={"ok": 2, "error": 1})

    with serving(fake, tls=server_context, ports=(alert_port, plain_port)):
        ctx.run(ctx.on.action("test-alert", params={"timeout": 5}), tls_state)

    assert states.rendered_config(root)["tlsserver"]["notlsport"] == plain_port
    assert fake.posts == ["/test"]
    assert ctx.action_results == {
        "result": "Loki accepted the test alert",
        "loki-ok": "2 -> 3",
        "loki-error": "1 -> 1",
    }
