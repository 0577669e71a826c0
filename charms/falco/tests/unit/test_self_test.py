"""The self-test action on a fake machine: its flow, its results, what it leaves behind.

Falco's part (an alert for the marker it sees) is played by ``self_test_rig.FakeDetection``,
with the alert the real Falco writes; the delivery side is a real HTTPS server on 127.0.0.1
(``real_falco.HttpsSink``) related over http-endpoint with the right or another CA, or a
port where nothing listens.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import self_test
import yaml
from charm import FalcoCharm
from falco_rig import sidekick_relation, with_certificate
from layout import Layout
from local_net import free_port
from machine import FakeMachine, changed_files
from ops import testing
from real_falco import HttpsSink
from self_test_rig import FakeDetection
from tls_material import make_ca

CA = make_ca("Sidekick CA")
OTHER_CA = make_ca("Another CA")
NONCE = "5e1f7e57c0ffee00"
LIBCURL_REFUSED = "libcurl failed to perform call: Couldn't connect to server"
# The actions reference shows a real result of this action (make docs includes it).
EXAMPLE = Path(__file__).resolve().parents[4] / "docs/reference/examples/falco-self-test.yaml"


@dataclasses.dataclass
class Run:
    """What one self-test returned."""

    results: dict[str, Any]
    failure: str | None
    state: testing.State


def self_test_run(ctx: testing.Context[FalcoCharm], state: testing.State, **params: Any) -> Run:
    """Run the self-test action; return its results and failure message, if any."""
    try:
        out = ctx.run(ctx.on.action("self-test", params=params), state)
        failure = None
    except testing.ActionFailed as failed:
        out, failure = failed.state, failed.message
    return Run(dict(ctx.action_results or {}), failure, out)


@pytest.fixture(autouse=True)
def quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Falco's failed POSTs show in the fake journal with the alert: no need to wait long."""
    monkeypatch.setattr(FalcoCharm, "self_test_settle_s", 0.3)


@pytest.fixture(name="installed")
def installed_fixture(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> testing.State:
    return ctx.run(ctx.on.install(), state)


@pytest.fixture(name="falco")
def falco_fixture(machine: FakeMachine) -> Iterator[FakeDetection]:
    with FakeDetection(machine) as detection:
        yield detection


@pytest.fixture(name="sink", scope="module")
def sink_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsSink]:
    with HttpsSink(tmp_path_factory.mktemp("sink"), CA) as sink:
        yield sink


def related(
    ctx: testing.Context[FalcoCharm], state: testing.State, url: str, ca: str | None = CA.cert_pem
) -> testing.State:
    relation = sidekick_relation(url, ca)
    state = dataclasses.replace(state, relations={relation})
    return ctx.run(ctx.on.relation_changed(relation), state)


def test_detected_locally_without_a_destination(
    ctx: testing.Context[FalcoCharm],
    installed: testing.State,
    machine: FakeMachine,
    falco: FakeDetection,
) -> None:
    """arrange: Falco running, no http-endpoint. act: self-test. assert: detected, local."""
    # systemd created the alert log's directory when it started Falco (LogsDirectory=).
    Layout(machine.root).alert_log_dir.mkdir(parents=True)
    machine.clear_calls()
    before = machine.files()

    run = self_test_run(ctx, installed)

    assert run.failure is None
    nonce = run.results["nonce"]
    assert re.fullmatch(r"[0-9a-f]{16}", nonce)
    assert falco.seen == [nonce]
    log = Layout(machine.root).alert_log_file
    assert run.results == {
        "nonce": nonce,
        "detected": "yes",
        "latency-ms": run.results["latency-ms"],
        "source": f"the alert log {log}",
        "rule": "Juju Falco self-test (Debug)",
        "delivered": "not configured: alerts stay on this host (integrate http-endpoint)",
        "logql": f'{{juju_unit="falco/0"}} |= "{nonce}"',
    }
    assert int(run.results["latency-ms"]) >= 0
    # Nothing restarted, reloaded or rewritten: only Falco's own alert was appended, and
    # the marker file is gone.
    assert machine.systemctl_verbs() == ["show"]
    assert machine.calls("falco") == []
    assert list(Layout(machine.root).self_test_dir.iterdir()) == []
    assert changed_files(before, machine.files()) == 1
    assert nonce in log.read_text()


def test_with_the_alert_log_off_the_alert_is_read_from_the_journal(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    falco: FakeDetection,
) -> None:
    """arrange: alert-log=false (alerts on stdout). act: self-test. assert: found there."""
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, config={"alert-log": False}))
    machine.clear_calls()

    run = self_test_run(ctx, out)

    assert run.failure is None
    assert run.results["detected"] == "yes"
    assert run.results["source"] == "the journal of juju-falco (alert-log is off)"
    assert not Layout(machine.root).alert_log_file.exists()
    # Read from the second before the marker, as Falco's unit logs it.
    since = [argv for argv in machine.calls("journalctl") if any("--since" in a for a in argv)]
    assert since and all(
        argv[:2] == ["-u", "juju-falco"] and re.fullmatch(r"--since=@\d+", argv[2])
        for argv in since
    )
    assert machine.systemctl_verbs() == ["show"]


def test_right_ca_delivered(
    ctx: testing.Context[FalcoCharm],
    installed: testing.State,
    machine: FakeMachine,
    falco: FakeDetection,
    sink: HttpsSink,
) -> None:
    """arrange: related to a sink the CA certifies. act: self-test. assert: delivered yes."""
    out = related(ctx, installed, sink.url)
    machine.clear_calls()

    run = self_test_run(ctx, out)

    assert run.failure is None
    assert run.results["delivered"] == "yes"
    # Nothing fake was sent: the sink only saw a TLS handshake.
    assert sink.alerts() == []
    assert machine.systemctl_verbs() == ["show"]


def test_another_ca_fails_at_delivery(
    ctx: testing.Context[FalcoCharm],
    installed: testing.State,
    falco: FakeDetection,
    tmp_path: Path,
) -> None:
    """arrange: the sink's certificate is another CA's. act: self-test. assert: delivery."""
    with HttpsSink(tmp_path / "impostor", OTHER_CA) as impostor:
        out = related(ctx, installed, impostor.url)

        run = self_test_run(ctx, out)

    assert run.results["detected"] == "yes"
    where = impostor.url.removeprefix("https://").rstrip("/")
    assert run.failure is not None
    assert run.failure.startswith(
        f"delivery: {where} presents a certificate the related CA does not verify ("
    )
    assert run.results["delivered"] == f"no: {run.failure.removeprefix('delivery: ')}"


def test_with_mutual_tls_the_handshake_presents_the_units_certificate(
    ctx: testing.Context[FalcoCharm],
    installed: testing.State,
    falco: FakeDetection,
    tmp_path: Path,
) -> None:
    """arrange: a sink requiring client certificates of CA; the unit has one. act: self-test.

    assert: delivered yes (without the certificate the handshake would be refused).
    """
    with HttpsSink(tmp_path / "mutual", CA, client_ca=CA) as sink:
        out = with_certificate(ctx, related(ctx, installed, sink.url), CA)

        run = self_test_run(ctx, out)

    assert run.failure is None
    assert run.results["delivered"] == "yes"


def test_a_client_certificate_the_sidekick_does_not_trust_fails_at_delivery(
    ctx: testing.Context[FalcoCharm],
    installed: testing.State,
    falco: FakeDetection,
    tmp_path: Path,
) -> None:
    """arrange: the sink requires client certificates of another CA. act: self-test.

    assert: delivery failed, saying the client certificate was refused.
    """
    with HttpsSink(tmp_path / "mutual", CA, client_ca=OTHER_CA) as sink:
        out = with_certificate(ctx, related(ctx, installed, sink.url), CA)

        run = self_test_run(ctx, out)

    where = sink.url.removeprefix("https://").rstrip("/")
    assert run.failure is not None
    assert run.failure.startswith(f"delivery: {where} refused this unit's client certificate (")


def test_a_client_certificate_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    """arrange: mtls on, the certificate files gone. act: handshake. assert: both named."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(CA.cert_pem)
    client = (str(tmp_path / "http-client.crt"), str(tmp_path / "http-client.key"))

    problem = self_test.handshake_problem("https://127.0.0.1:1/", str(ca_file), "", client)

    assert problem is not None
    assert problem.startswith(
        f"the CA file {ca_file} or the client certificate {client[0]} cannot be read: "
    )


def test_unreachable_sidekick_fails_at_delivery(
    ctx: testing.Context[FalcoCharm], installed: testing.State, falco: FakeDetection
) -> None:
    """arrange: related to a port where nothing listens. act: self-test. assert: delivery."""
    port = free_port()
    out = related(ctx, installed, f"https://127.0.0.1:{port}/")

    run = self_test_run(ctx, out)

    assert run.failure == f"delivery: cannot connect to 127.0.0.1:{port}: Connection refused"
    assert run.results["detected"] == "yes"


def test_a_delivery_error_falco_logged_fails_the_self_test(
    ctx: testing.Context[FalcoCharm],
    installed: testing.State,
    machine: FakeMachine,
    sink: HttpsSink,
) -> None:
    """arrange: the handshake works but Falco's POST failed. act: self-test. assert: named."""
    out = related(ctx, installed, sink.url)

    with FakeDetection(machine, delivery_error=LIBCURL_REFUSED):
        run = self_test_run(ctx, out)

    assert run.failure == f"delivery: Falco could not post the alert: {LIBCURL_REFUSED}"
    assert run.results["delivered"] == f"no: Falco could not post the alert: {LIBCURL_REFUSED}"


def test_no_alert_fails_at_detection_and_removes_the_marker(
    ctx: testing.Context[FalcoCharm], installed: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco sees nothing. act: self-test, timeout=1. assert: detection, no file."""
    with FakeDetection(machine, detect=False) as blind:
        run = self_test_run(ctx, installed, timeout=1)

    layout = Layout(machine.root)
    marker = layout.self_test_dir / blind.seen[0]
    assert run.failure == (
        f"detection: no alert for {marker} in the alert log {layout.alert_log_file} within "
        "1 s: is the rule 'Juju Falco self-test' overridden by custom rules, or Falco "
        "dropping events?"
    )
    assert run.results["detected"] == "no"
    assert run.results["delivered"] == "not checked"
    assert list(layout.self_test_dir.iterdir()) == []


def test_falco_not_running_fails_first(
    ctx: testing.Context[FalcoCharm],
    installed: testing.State,
    machine: FakeMachine,
    falco: FakeDetection,
) -> None:
    """arrange: Falco stopped behind the charm's back. act: self-test. assert: falco link."""
    machine.stop_by_hand()

    run = self_test_run(ctx, installed)

    assert run.failure == "falco: Falco is not running: see `juju status`"
    assert falco.seen == []
    # The action starts nothing: that is the next hook's job.
    assert not machine.unit()["active"]


def test_a_falco_yaml_without_the_rule_fails_at_the_rule(
    ctx: testing.Context[FalcoCharm],
    installed: testing.State,
    machine: FakeMachine,
    falco: FakeDetection,
) -> None:
    """arrange: a live falco.yaml from before the rule. act: self-test. assert: rule link."""
    config_file = Layout(machine.root).config_file
    config = yaml.safe_load(config_file.read_text())
    del config["rules_files"][1]
    config_file.write_text(yaml.safe_dump(config))

    run = self_test_run(ctx, installed)

    assert run.failure == (
        "rule: the running falco.yaml does not load the self-test rule (run it after the hook)"
    )
    assert falco.seen == []


def test_another_falco_unit_of_the_machine_points_to_the_owner(
    ctx: testing.Context[FalcoCharm],
    installed: testing.State,
    machine: FakeMachine,
    falco: FakeDetection,
) -> None:
    """arrange: falco/1 on falco/0's machine. act: self-test on falco/1. assert: refused."""
    machine.deploy_unit("falco/1")
    other = testing.Context(FalcoCharm, charm_root=ctx.charm_root, unit_id=1)

    run = self_test_run(other, installed)

    assert run.failure == "this unit does not run Falco: run the self-test on falco/0"
    assert falco.seen == []


def test_two_self_tests_at_once_use_their_own_markers(
    ctx: testing.Context[FalcoCharm],
    installed: testing.State,
    machine: FakeMachine,
    falco: FakeDetection,
) -> None:
    """arrange: Falco running. act: two self-tests in parallel. assert: each its own alert."""
    layout = Layout(machine.root)
    outcomes: list[self_test.Outcome] = []

    def one() -> None:
        request = self_test.Request("falco/0", True, lambda _: [], settle_s=0)
        outcomes.append(self_test.run(layout, request))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [outcome.failure for outcome in outcomes] == [None, None]
    nonces = {outcome.nonce for outcome in outcomes}
    assert len(nonces) == 2
    assert set(falco.seen) == nonces
    assert list(layout.self_test_dir.iterdir()) == []


def test_the_actions_reference_shows_a_real_result(
    ctx: testing.Context[FalcoCharm],
    installed: testing.State,
    machine: FakeMachine,
    falco: FakeDetection,
    sink: HttpsSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """arrange: related to the sink. act: self-test. assert: the documented result, as is."""
    monkeypatch.setattr(FalcoCharm, "self_test_nonce", staticmethod(lambda: NONCE))
    out = related(ctx, installed, sink.url)

    run = self_test_run(ctx, out)

    # As on a machine: the fake machine's root is "/" there.
    shown = {key: value.replace(str(machine.root), "") for key, value in run.results.items()}
    documented = yaml.safe_load(EXAMPLE.read_text())
    assert documented == {**shown, "latency-ms": documented["latency-ms"]}, (
        f"update {EXAMPLE} with {json.dumps(shown)}"
    )
    assert re.fullmatch(r"\d+", documented["latency-ms"])
