"""Fan-out through the real Falcosidekick under the real Pebble: Slack, a webhook, Alertmanager.

One unit serves its own certificate and pushes to an HTTPS Loki (signed by the model's CA);
its ``outputs`` send alerts to a fake Slack incoming webhook (URL from the secret), a
generic webhook over HTTPS signed by a CA of its own (trusted through ``outputs-ca-certs``,
with an Authorization header from the secret) and a real Alertmanager (Debian's) whose
address comes from the ``alertmanager`` relation. Each output has its own minimum priority.
The fakes (fake_outputs) refuse what the real services refuse and keep the bodies the real
Falcosidekick sent; the alerts Alertmanager holds are read from its API.
"""

from __future__ import annotations

import dataclasses
import json
import ssl
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fake_outputs
import ops
import outputs as outputs_option
import pytest
import real_alertmanager
import yaml
from deployment import Deployed, deploy
from ops import testing
from ops_probes import record_calls
from real_unit import falco_alert, post
from sidekick_client import output_counts
from tls_material import Issued, issue, make_ca

SLACK_PATH = "/services/T0FALCO/B0FALCO/first-slack-token"
SOC_TOKEN = "Bearer soc-token-never-shown"  # noqa: S105 - a test value
PRIORITIES = ("Notice", "Warning", "Error", "Critical")
# What each destination must get of an alert at each priority (its minimum priority).
EXPECTED = {
    "slack": {"Critical"},
    "webhook": {"Warning", "Error", "Critical"},
    "alertmanager": {"Error", "Critical"},
    "loki": {"Warning", "Error", "Critical"},  # the charm's minimum-priority (deploy)
}


@dataclass
class FanOut:
    """The unit and the destinations it fans out to."""

    deployed: Deployed
    slack: fake_outputs.FakeDestination
    webhook: fake_outputs.FakeDestination
    alertmanager: real_alertmanager.RealAlertmanager
    webhook_ca: Issued

    def config(self, **changes: Any) -> dict[str, Any]:
        """Return the unit's config with ``changes`` (None removes an option)."""
        config = {**self.deployed.unit.state.config, **changes}
        return {key: value for key, value in config.items() if value is not None}

    def secret(self) -> testing.Secret:
        """Return outputs-secret as the unit's latest state has it."""
        secret_id = self.deployed.unit.state.config["outputs-secret"]
        (secret,) = (s for s in self.deployed.unit.state.secrets if s.id == secret_id)
        return secret


def server_context(ca: Issued, directory: Path, name: str) -> ssl.SSLContext:
    """Return a server context for ``name`` on 127.0.0.1, signed by ``ca``."""
    served = issue(ca, name, ip_addresses=("127.0.0.1",))
    (directory / f"{name}.crt").write_text(served.cert_pem)
    (directory / f"{name}.key").write_text(served.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / f"{name}.crt", directory / f"{name}.key")
    return context


@pytest.fixture(name="fan_out", scope="module")
def fan_out_fixture(ca: Issued, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FanOut]:
    """A unit in service with its three outputs and Loki."""
    directory = tmp_path_factory.mktemp("outputs")
    webhook_ca = make_ca("Webhook CA")
    with ExitStack() as stack:
        slack = stack.enter_context(fake_outputs.serving("slack", SLACK_PATH))
        webhook = stack.enter_context(
            fake_outputs.serving(
                "webhook", "/falco", server_context(webhook_ca, directory, "webhook")
            )
        )
        alertmanager = stack.enter_context(real_alertmanager.serving(directory))
        secret = testing.Secret(
            tracked_content={"slack-webhook": slack.url, "soc-token": SOC_TOKEN}
        )
        outputs = {
            "slack": {"webhookurl": {"secret": "slack-webhook"}, "minimumpriority": "critical"},
            "webhook": {
                "address": webhook.url,
                "minimumpriority": "warning",
                "customheaders": {"Authorization": {"secret": "soc-token"}},
            },
            "alertmanager": {"minimumpriority": "error", "extralabels": {"team": "security"}},
        }
        relation = testing.Relation(
            "alertmanager",
            remote_app_name="alertmanager",
            # As alertmanager-k8s writes it: raw strings, its base URL.
            remote_units_data={0: {"url": alertmanager.url}},
        )
        config = {
            "outputs": yaml.safe_dump(outputs),
            "outputs-secret": secret.id,
            "outputs-ca-certs": webhook_ca.cert_pem,
        }
        deployed = deploy(
            "certificates", ca, stack, directory, config=config, extra=({relation}, {secret})
        )
        yield FanOut(deployed, slack, webhook, alertmanager, webhook_ca)


def rules(bodies: list[Any], kind: str) -> set[str]:
    """Return the rules of the alerts a fake of ``kind`` (or Alertmanager) holds."""
    if kind == "alertmanager":
        return {alert["labels"]["rule"] for alert in bodies}
    if kind == "slack":
        return {
            field["value"]
            for body in bodies
            for attachment in body["attachments"]
            for field in attachment["fields"]
            if field["title"] == "rule"
        }
    return {body["rule"] for body in bodies}


def by_priority(prefix: str, priorities: set[str]) -> set[str]:
    return {f"{prefix} ({priority})" for priority in priorities}


def errors_of(fan_out: FanOut, destination: str) -> float:
    return output_counts(fan_out.deployed.unit.metrics(), destination).error


def test_each_output_gets_the_alerts_at_or_above_its_own_minimum_priority(
    fan_out: FanOut,
) -> None:
    """arrange: in service. act: alerts of four priorities, lowest first.

    assert: each destination got exactly those at or above its minimum priority, in the
    shape its service takes (Slack attachments, Alertmanager v2 labels, the Falco alert).
    """
    url, ca = fan_out.deployed.alert_url_and_ca()
    for priority in PRIORITIES:
        alert = falco_alert(f"Fan-out ({priority})", priority)
        assert post(url, json.dumps(alert).encode(), ca)[0] == 200

    destinations = {
        "slack": fan_out.slack,
        "webhook": fan_out.webhook,
        "alertmanager": fan_out.alertmanager,
    }
    got = {}
    for kind, destination in destinations.items():
        wanted = by_priority("Fan-out", EXPECTED[kind])
        bodies = destination.wait_for(lambda found, k=kind, w=wanted: w <= rules(found, k))
        got[kind] = {rule for rule in rules(bodies, kind) if rule.startswith("Fan-out")}
    loki = fan_out.deployed.loki
    loki.wait_for(lambda _: bool(loki.lines_of_rule("Fan-out (Critical)")))
    got["loki"] = {p for p in PRIORITIES if loki.lines_of_rule(f"Fan-out ({p})")}

    assert got == {
        **{kind: by_priority("Fan-out", EXPECTED[kind]) for kind in destinations},
        "loki": EXPECTED["loki"],
    }
    slack = next(b for b in fan_out.slack.bodies() if "Fan-out (Critical)" in rules([b], "slack"))
    fields = {f["title"]: f["value"] for f in slack["attachments"][0]["fields"]}
    assert (fields["priority"], fields["hostname"]) == ("Critical", "fixture-host")
    assert slack["attachments"][0]["text"].endswith("k8s_ns_name=<NA>")
    alert = next(
        a for a in fan_out.alertmanager.alerts() if a["labels"]["rule"] == "Fan-out (Critical)"
    )
    assert {
        "alertname": "Fan-out (Critical)",
        "severity": "critical",
        "source": "falco",
        "team": "security",
        "juju_unit": "falco/3",
        "juju_model": "estate",
    }.items() <= alert["labels"].items()
    assert alert["annotations"]["description"] == falco_alert("x")["output"]
    request = next(r for r in fan_out.webhook.received if r.body["rule"] == "Fan-out (Critical)")
    assert request.headers["Authorization"] == SOC_TOKEN
    assert request.body["output_fields"]["juju_application"] == "falco"


def test_alertmanager_refuses_a_whole_post_for_one_invalid_label_name(fan_out: FanOut) -> None:
    """arrange: the real Alertmanager. act: post an alert with a label name it refuses.

    assert: the whole post is refused: why the charm refuses such alertmanager.extralabels
    (every alert would be lost), while a valid name is taken.
    """
    labels = {"alertname": "Label probe", "rule": "Label probe", "priority": "Critical"}

    refused = fan_out.alertmanager.post([{"labels": {**labels, "team-name": "security"}}])
    taken = fan_out.alertmanager.post([{"labels": {**labels, "team_name": "security"}}])

    assert refused == (400, '"invalid label set: invalid name \\"team-name\\""\n')
    assert taken == (200, "")
    with pytest.raises(ValueError, match=r"extralabels\.team-name: not a label name"):
        outputs_option.parse("alertmanager: {extralabels: {team-name: security}}")


def test_test_alert_reports_every_destination_and_reaches_them_all(fan_out: FanOut) -> None:
    """arrange: in service. act: test-alert. assert: accepted by each, counters per output.

    Falcosidekick's test event (priority Debug) goes to every output whatever its minimum.
    """
    unit = fan_out.deployed.unit
    metrics = unit.metrics()
    before = {name: output_counts(metrics, name) for name in EXPECTED}

    unit.run(unit.ctx.on.action("test-alert", params={"timeout": 30}))

    results = unit.ctx.action_results
    assert results is not None
    assert results.pop("result") == (
        "every output accepted the test alert (loki, alertmanager, slack, webhook)"
    )
    assert results == {
        name: {
            "ok": f"{before[name].ok:g} -> {before[name].ok + 1:g}",
            "error": f"{before[name].error:g} -> {before[name].error:g}",
            "outcome": "accepted",
        }
        for name in EXPECTED
    }
    for kind, fake in (("slack", fan_out.slack), ("webhook", fan_out.webhook)):
        assert "Test rule" in rules(fake.bodies(), kind)
    assert "Test rule" in rules(fan_out.alertmanager.alerts(), "alertmanager")
    assert SOC_TOKEN not in json.dumps(results) and SLACK_PATH not in json.dumps(results)


def test_a_failing_destination_is_reported_while_the_others_deliver(fan_out: FanOut) -> None:
    """arrange: Slack answers 500. act: test-alert. assert: Slack failed, counted; Loki got it."""
    unit = fan_out.deployed.unit
    errors = errors_of(fan_out, "slack")
    loki_tests = len(fan_out.deployed.loki.lines_of_rule("Test rule"))
    fan_out.slack.status = 500
    try:
        with pytest.raises(testing.ActionFailed) as failure:
            unit.run(unit.ctx.on.action("test-alert", params={"timeout": 30}))
    finally:
        fan_out.slack.status = None

    assert failure.value.message == "slack did not accept the test alert: see falcosidekick's logs"
    results = unit.ctx.action_results
    assert results is not None
    assert {name: results[name]["outcome"] for name in EXPECTED} == {
        "loki": "accepted",
        "alertmanager": "accepted",
        "slack": "failed",
        "webhook": "accepted",
    }
    assert "result" not in results
    assert errors_of(fan_out, "slack") == errors + 1
    assert len(fan_out.deployed.loki.lines_of_rule("Test rule")) == loki_tests + 1


def wait_for_errors(fan_out: FanOut, destination: str, count: float) -> None:
    deadline = time.monotonic() + 30
    while errors_of(fan_out, destination) < count:
        assert time.monotonic() < deadline, f"{destination} recorded no error"
        time.sleep(0.05)


def test_the_https_webhook_is_trusted_through_outputs_ca_certs_only(fan_out: FanOut) -> None:
    """arrange: in service. act: drop outputs-ca-certs, post; put it back, post.

    assert: without it the real client refuses the webhook's certificate (an error, nothing
    received) while Loki (our own CA) and Slack deliver; with it the webhook gets alerts.
    """
    unit = fan_out.deployed.unit
    url, ca = fan_out.deployed.alert_url_and_ca()
    errors = errors_of(fan_out, "webhook")

    unit.run(
        unit.ctx.on.config_changed(),
        dataclasses.replace(unit.state, config=fan_out.config(**{"outputs-ca-certs": None})),
    )
    untrusted = falco_alert("Without the webhook CA", "Critical")
    assert post(url, json.dumps(untrusted).encode(), ca)[0] == 200
    wait_for_errors(fan_out, "webhook", errors + 1)
    fan_out.slack.wait_for(lambda found: "Without the webhook CA" in rules(found, "slack"))
    loki = fan_out.deployed.loki
    loki.wait_for(lambda _: bool(loki.lines_of_rule("Without the webhook CA")))
    assert "Without the webhook CA" not in rules(fan_out.webhook.bodies(), "webhook")
    logs = fan_out.deployed.pebble.cli("logs", "falcosidekick", "-n", "all")
    assert "x509: certificate signed by unknown authority" in logs

    unit.run(
        unit.ctx.on.config_changed(),
        dataclasses.replace(
            unit.state, config=fan_out.config(**{"outputs-ca-certs": fan_out.webhook_ca.cert_pem})
        ),
    )
    restarted = errors_of(fan_out, "webhook")  # a new process: counters from nothing
    trusted = falco_alert("With the webhook CA", "Critical")
    assert post(url, json.dumps(trusted).encode(), ca)[0] == 200
    fan_out.webhook.wait_for(lambda found: "With the webhook CA" in rules(found, "webhook"))
    assert errors_of(fan_out, "webhook") == restarted == 0


def rotate(fan_out: FanOut, slack_url: str) -> tuple[int, int]:
    """Publish a new revision of the secret with ``slack_url``; return (replans, new PID)."""
    unit = fan_out.deployed.unit
    current = fan_out.secret()
    content = {**current.tracked_content, "slack-webhook": slack_url}
    rotated = dataclasses.replace(current, latest_content=content)
    others = {s for s in unit.state.secrets if s.id != current.id}
    with record_calls(ops.pebble.Client, ("replan_services",)) as calls:
        unit.run(
            unit.ctx.on.secret_changed(rotated),
            dataclasses.replace(unit.state, secrets={*others, rotated}),
        )
    return calls.count("replan_services"), fan_out.deployed.pebble.sidekick_pid()


def test_a_new_secret_revision_restarts_once_and_the_same_one_not_at_all(fan_out: FanOut) -> None:
    """arrange: in service. act: secret-changed with a new Slack URL, then with the same.

    assert: one replan and a new process that posts to the new URL; then the same process.
    """
    pebble = fan_out.deployed.pebble
    old_url = fan_out.slack.url
    new_path = SLACK_PATH.replace("first", "second")
    pid = pebble.sidekick_pid()
    fan_out.slack.path = new_path
    try:
        replans, new_pid = rotate(fan_out, old_url.replace(SLACK_PATH, new_path))
        url, ca = fan_out.deployed.alert_url_and_ca()
        alert = falco_alert("After the secret rotation", "Critical")
        assert post(url, json.dumps(alert).encode(), ca)[0] == 200
        fan_out.slack.wait_for(lambda found: "After the secret rotation" in rules(found, "slack"))
        again = rotate(fan_out, old_url.replace(SLACK_PATH, new_path))
    finally:
        fan_out.slack.path = SLACK_PATH
        rotate(fan_out, old_url)

    assert (replans, new_pid != pid) == (1, True)
    assert again == (0, new_pid)
    (received,) = [
        r
        for r in fan_out.slack.received
        if "After the secret rotation" in rules([r.body], "slack")
    ]
    assert received.path == new_path


def test_secret_values_never_reach_the_charm_logs_statuses_or_relations(fan_out: FanOut) -> None:
    """arrange: every hook the module ran. act: read what Juju saw. assert: no secret value."""
    unit = fan_out.deployed.unit
    seen = [line.message for line in unit.ctx.juju_log]
    seen += [repr(status) for status in unit.ctx.unit_status_history]
    seen += [repr(unit.state.unit_status), repr(unit.state.relations)]

    text = "\n".join(seen)
    assert len(seen) > 10
    assert "first-slack-token" not in text and "soc-token-never-shown" not in text
