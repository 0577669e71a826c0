"""The charm with outputs: rendered from the option, the secret and the alertmanager relation."""

from __future__ import annotations

import dataclasses
import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
import sidekick_states as states
import yaml
from charm import FalcosidekickCharm
from ops import testing
from ops_probes import record_pebble, record_relation_writes
from tls_material import Issued, make_ca

Ctx = testing.Context[FalcosidekickCharm]
LOKI_URL = "http://otelcol-0.otelcol-endpoints.fmodel.svc.cluster.local:3500/loki/api/v1/push"
SLACK_HOOK = "https://hooks.slack.example/services/T000/B000/very-secret-token"
OUTPUTS = yaml.safe_dump(
    {
        "slack": {"webhookurl": {"secret": "slack-webhook"}, "minimumpriority": "Critical"},
        "webhook": {"address": "https://soc.example/falco", "minimumpriority": "warning"},
    }
)
RESTARTS = ("replan_services", "restart_services", "start_services")
NOT_A_SECRET = "secret:" + "0" * 20


def secret(**content: str) -> testing.Secret:
    return testing.Secret(tracked_content=content or {"slack-webhook": SLACK_HOOK})


def running(
    ctx: Ctx, root: Path, config: dict[str, Any], *extra: Any, secrets: Any = ()
) -> testing.State:
    """Return a sidekick in service behind an ingress, pushing to Loki, with ``config``."""
    state = states.state(
        root,
        leader=True,
        config=config,
        secrets=set(secrets),
        relations={
            states.ingress_relation("https://ingress.example/x"),
            states.loki_relation(LOKI_URL),
            testing.Relation("http-endpoint", remote_app_name="falco"),
            *extra,
        },
    )
    return ctx.run(ctx.on.pebble_ready(states.container(root)), state)


def test_outputs_are_rendered_with_credentials_read_from_the_secret(ctx: Ctx, root: Path) -> None:
    """arrange: outputs referring to a granted secret. act: pebble-ready. assert: rendered.

    The credential is in the config file only, which is private to the sidekick's user.
    """
    granted = secret()

    with record_pebble() as pebble_calls:
        out = running(
            ctx, root, {"outputs": OUTPUTS, "outputs-secret": granted.id}, secrets=[granted]
        )

    config = states.rendered_config(root)
    assert config["slack"] == {"webhookurl": SLACK_HOOK, "minimumpriority": "critical"}
    assert config["webhook"] == {
        "address": "https://soc.example/falco",
        "minimumpriority": "warning",
    }
    assert config["loki"]["hostport"].startswith("http://otelcol-0")
    pushes = {str(args[0]): kwargs for args, kwargs in pebble_calls.by_method["push"]}
    config_push = pushes["/etc/falcosidekick/falcosidekick.yaml"]
    assert (config_push["permissions"], config_push["user"]) == (0o600, "falcosidekick")
    assert stat.S_IMODE((root / "falcosidekick.yaml").stat().st_mode) == 0o600
    assert out.unit_status == testing.ActiveStatus()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"outputs": "slack: {webhookurl: {secret: slack-webhook}, chan: sec}"},
            "invalid config 'outputs': slack.chan: not a Falcosidekick 2.34.1 setting of "
            "'slack' (did you mean 'channel'?)",
        ),
        (
            {"outputs": "slack: {channel: sec}"},
            "invalid config 'outputs': slack.webhookurl is needed: without it Falcosidekick "
            "leaves slack off",
        ),
        (
            {"outputs": "slack: {webhookurl: {secret: slack-webhook}}"},
            "invalid config 'outputs': slack.webhookurl refers to a secret, but "
            "'outputs-secret' is not set",
        ),
        (
            {"outputs": OUTPUTS, "outputs-secret": NOT_A_SECRET},
            "invalid config 'outputs-secret': cannot read the secret: grant it to this "
            "application (juju grant-secret <secret> falcosidekick-k8s)",
        ),
        (
            {"outputs": "loki: {hostport: 'http://l:3100'}"},
            "invalid config 'outputs': loki: set by the charm: integrate 'send-loki-logs'",
        ),
        (
            {"outputs-ca-certs": "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----"},
            "invalid config 'outputs-ca-certs': not a PEM certificate",
        ),
    ],
)
def test_outputs_mistakes_block_and_keep_the_running_config(
    ctx: Ctx, root: Path, config: dict[str, Any], message: str
) -> None:
    """arrange: in service. act: config-changed with an outputs mistake. assert: Blocked.

    Nothing is written or restarted: the sidekick keeps the config it runs with.
    """
    state = running(ctx, root, {})
    before = (root / "falcosidekick.yaml").read_text()

    with record_pebble() as pebble_calls, record_relation_writes() as relation_writes:
        out = ctx.run(ctx.on.config_changed(), dataclasses.replace(state, config=config))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(message)
    assert pebble_calls.by_method == {}
    assert relation_writes.by_method == {}
    assert (root / "falcosidekick.yaml").read_text() == before


def test_a_key_missing_from_the_secret_is_named_with_its_user(ctx: Ctx, root: Path) -> None:
    """arrange: the secret lacks the referred key. act: config-changed. assert: Blocked, why."""
    other = secret(**{"teams-webhook": "https://teams.example/x"})

    out = running(ctx, root, {"outputs": OUTPUTS, "outputs-secret": other.id}, secrets=[other])

    assert out.unit_status == testing.BlockedStatus(
        "invalid config 'outputs-secret': the secret has no key 'slack-webhook' "
        "(used by slack.webhookurl)"
    )


def test_new_secret_revision_restarts_once_and_the_same_one_restarts_nothing(
    ctx: Ctx, root: Path
) -> None:
    """arrange: in service with revision 1. act: secret-changed to 2, then again.

    assert: one restart with the new value, then none (the content did not change).
    """
    old = "https://hooks.slack.example/services/T000/B000/old"
    first_revision = testing.Secret(tracked_content={"slack-webhook": old})
    config = {"outputs": OUTPUTS, "outputs-secret": first_revision.id}
    state = running(ctx, root, config, secrets=[first_revision])
    assert states.rendered_config(root)["slack"]["webhookurl"] == old
    rotated = dataclasses.replace(first_revision, latest_content={"slack-webhook": SLACK_HOOK})
    state = dataclasses.replace(state, secrets={rotated})

    with record_pebble() as first:
        changed = ctx.run(ctx.on.secret_changed(rotated), state)
    (tracked,) = changed.secrets  # now tracking the latest revision
    with record_pebble() as second:
        again = ctx.run(ctx.on.secret_changed(tracked), changed)

    assert states.rendered_config(root)["slack"]["webhookurl"] == SLACK_HOOK
    assert first.count(*RESTARTS) == 1
    assert second.by_method == {}
    assert again.unit_status == testing.ActiveStatus()


def test_secret_values_never_leave_the_config_file(
    ctx: Ctx, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """arrange: a credential in the secret. act: hooks good and bad, test-alert. assert: hidden.

    The value is in no log, status, relation bag, Pebble plan or action result.
    """
    caplog.set_level(logging.DEBUG)
    granted = secret()
    config = {"outputs": OUTPUTS, "outputs-secret": granted.id}
    seen: list[str] = []

    state = running(ctx, root, config, secrets=[granted])
    runs = [
        (ctx.on.config_changed(), state),
        (ctx.on.secret_changed(granted), state),
        (ctx.on.update_status(), state),
        (ctx.on.config_changed(), dataclasses.replace(state, config={**config, "port": 0})),
        (
            ctx.on.config_changed(),
            dataclasses.replace(
                state, config={**config, "outputs": OUTPUTS.replace("Critical", "loud")}
            ),
        ),
    ]
    for event, before in runs:
        out = ctx.run(event, before)
        seen += [repr(out.unit_status), repr(out.app_status), repr(out.relations)]
        seen.append(repr(out.get_container(states.CONTAINER).plan.to_dict()))
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("test-alert", params={"timeout": 1}), state)
    seen += [failed.value.message, repr(ctx.action_results)]
    seen += [caplog.text, repr([entry.message for entry in ctx.juju_log])]

    assert SLACK_HOOK in (root / "falcosidekick.yaml").read_text()
    assert "very-secret-token" not in "\n".join(seen)


def alertmanager_relation(*units: dict[str, str]) -> testing.Relation:
    return testing.Relation(
        "alertmanager",
        remote_app_name="alertmanager",
        remote_units_data=dict(enumerate(units)) or {0: {}},
    )


@pytest.mark.parametrize(
    ("units", "hostport"),
    [
        (
            [{"url": "http://alertmanager-0.alertmanager-endpoints.cos.svc.cluster.local:9093"}],
            "http://alertmanager-0.alertmanager-endpoints.cos.svc.cluster.local:9093",
        ),
        (
            [
                {"url": "http://am-1.am:9093", "public_address": "am-1.am:9093", "scheme": "http"},
                {"url": "http://am-0.am:9093", "public_address": "am-0.am:9093", "scheme": "http"},
            ],
            "http://am-0.am:9093,http://am-1.am:9093",
        ),
        (
            [{"url": "https://ingress.example/cos-alertmanager"}] * 2,
            "https://ingress.example/cos-alertmanager",
        ),
        ([{"public_address": "am-0.am:9093", "scheme": "https"}], "https://am-0.am:9093"),
    ],
    ids=["v1", "v1-two-units", "ingress-same-url", "v0"],
)
def test_alertmanager_relation_fills_the_alertmanager_output(
    ctx: Ctx, root: Path, units: list[dict[str, str]], hostport: str
) -> None:
    """arrange: alertmanager-k8s units' data (as its library writes it). act: relation-changed.

    assert: Falcosidekick posts to every unit, on the v2 API; the option's settings apply.
    """
    state = running(ctx, root, {"outputs": "alertmanager: {minimumpriority: error}"})
    relation = alertmanager_relation(*units)

    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        dataclasses.replace(state, relations={*state.relations, relation}),
    )

    assert states.rendered_config(root)["alertmanager"] == {
        "hostport": hostport,
        "endpoint": "/api/v2/alerts",
        "minimumpriority": "error",
    }
    assert out.unit_status == testing.ActiveStatus()


def test_alertmanager_garbage_is_ignored_and_the_last_good_address_kept(
    ctx: Ctx, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """arrange: an Alertmanager in use. act: its unit writes garbage. assert: kept, logged."""
    good = alertmanager_relation({"url": "http://am-0.am:9093"})
    state = running(ctx, root, {}, good)
    before = (root / "falcosidekick.yaml").read_text()
    broken = dataclasses.replace(good, remote_units_data={0: {"url": "ftp://am\n:x"}})

    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.relation_changed(broken, remote_unit=0), states.replace_relation(state, broken)
        )

    assert states.rendered_config(root)["alertmanager"]["hostport"] == "http://am-0.am:9093"
    assert (root / "falcosidekick.yaml").read_text() == before
    assert pebble_calls.by_method == {}
    assert "ignoring alertmanager data from alertmanager/0: 'url': not an http(s) URL" in (
        caplog.text
    )
    assert out.unit_status == testing.ActiveStatus()


def test_alertmanager_address_given_twice_is_blocked(ctx: Ctx, root: Path) -> None:
    """arrange: hostport in outputs. act: alertmanager joins. assert: Blocked, remove one."""
    state = running(ctx, root, {"outputs": "alertmanager: {hostport: 'http://am:9093'}"})
    relation = alertmanager_relation({"url": "http://am-0.am:9093"})

    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        dataclasses.replace(state, relations={*state.relations, relation}),
    )

    assert out.unit_status == testing.BlockedStatus(
        "invalid config 'outputs': alertmanager.hostport is given and 'alertmanager' is "
        "integrated: remove one"
    )
    assert states.rendered_config(root)["alertmanager"]["hostport"] == "http://am:9093"


def test_outputs_ca_is_trusted_next_to_the_system_pool(ctx: Ctx, root: Path, ca: Issued) -> None:
    """arrange: TLS served, https Loki signed by our CA. act: add an outputs CA. assert.

    One file holds both CAs (Falcosidekick takes one), appended to the system pool for every
    output; removing the option goes back to the served CA alone.
    """
    https_loki = states.loki_relation(LOKI_URL.replace("http://", "https://"))
    start = states.state(
        root,
        leader=True,
        relations={states.certificates_relation(), https_loki},
    )
    served = states.with_certificate(ctx, start, ca)
    webhook_ca = make_ca("Webhook CA")
    config = {"outputs-ca-certs": webhook_ca.cert_pem}

    with record_pebble() as pebble_calls:
        out = ctx.run(ctx.on.config_changed(), dataclasses.replace(served, config=config))
    trusted = (root / "tls" / "outputs-ca.crt").read_text()
    rendered = states.rendered_config(root)
    back = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={}))

    assert rendered["tlsclient"] == {"cacertfile": "/etc/falcosidekick/tls/outputs-ca.crt"}
    assert trusted.strip() == (ca.cert_pem.strip() + "\n" + webhook_ca.cert_pem.strip())
    assert pebble_calls.count(*RESTARTS) == 1
    assert states.rendered_config(root)["tlsclient"] == {
        "cacertfile": "/etc/falcosidekick/tls/ca.crt"
    }
    assert not (root / "tls" / "outputs-ca.crt").exists()
    assert back.unit_status == out.unit_status


def test_test_alert_needs_some_output(ctx: Ctx, root: Path) -> None:
    """arrange: no Loki, an output in the option. act: test-alert. assert: tried, not refused."""
    state = states.state(root, config={"outputs": "webhook: {address: 'http://127.0.0.1:9/'}"})

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("test-alert"), state)

    assert failure.value.message == "falcosidekick is not running"
    assert json.dumps(ctx.action_results or {}) == "{}"
