"""Hostile and malformed inputs (issue 14): never a hook error, never written, never logged whole.

Operator input that the sidekick cannot use is Blocked naming the option; remote data that
cannot be used is logged (its first characters only) and ignored, and the last good value
stays. Each value is checked once where it comes in, with the validator the code after it
relies on (the interface library's, for URLs and CA PEM).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
import sidekick_states as states
from charm import FalcosidekickCharm
from ops import testing
from ops_probes import record_pebble, record_relation_writes
from tls_material import Issued, issue

Ctx = testing.Context[FalcosidekickCharm]
INGRESS_URL = "https://alerts.example.com/fmodel-falcosidekick-k8s"
LOKI_0 = "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
# Logs quote a remote value by a short prefix: a record stays well under this.
MAX_LOGGED = 400


def behind_ingress(ctx: Ctx, root: Path) -> testing.State:
    """Return a leader in service behind an ingress, forwarding to Loki and its logs too."""
    relations = {
        states.ingress_relation(INGRESS_URL),
        states.loki_relation(LOKI_0),
        testing.Relation(
            "logging",
            remote_app_name="loki",
            remote_units_data={0: {"endpoint": json.dumps({"url": LOKI_0})}},
        ),
        testing.Relation("http-endpoint", remote_app_name="falco"),
    }
    out = ctx.run(
        ctx.on.pebble_ready(states.container(root)),
        states.state(root, leader=True, relations=relations),
    )
    assert out.unit_status == testing.ActiveStatus()
    return out


def published_url(out: testing.State) -> str | None:
    raw = states.relation(out, "http-endpoint").local_app_data.get("url")
    return json.loads(raw) if raw else None


def assert_logs_are_short(caplog: pytest.LogCaptureFixture) -> None:
    long = [
        record.getMessage()[:120]
        for record in caplog.records
        if len(record.getMessage()) > MAX_LOGGED
    ]
    assert long == []


# the ingress URL -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://alerts example.com/fmodel-falcosidekick-k8s",  # a space in the host
        "https://alerts.example.com/" + "a" * 2100,  # longer than an http(s) URL may be
        "https://alerts.example.com/other\n-path",  # a raw newline (a parser would drop it)
    ],
)
def test_ingress_url_the_strict_check_refuses_is_ignored_not_a_hook_error(
    ctx: Ctx, root: Path, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """arrange: in service behind an ingress. act: such a URL, then update-status. assert.

    No hook error, the last good URL stays, nothing written, the log quotes only the start
    of the value.
    """
    good = behind_ingress(ctx, root)
    ingress = states.relation(good, "ingress")
    broken = dataclasses.replace(ingress, remote_app_data={"ingress": json.dumps({"url": url})})
    caplog.set_level(logging.DEBUG)

    with record_pebble() as pebble_calls, record_relation_writes() as writes:
        out = ctx.run(
            ctx.on.relation_changed(broken, remote_unit=0), states.replace_relation(good, broken)
        )
        out = ctx.run(ctx.on.update_status(), out)

    assert published_url(out) == INGRESS_URL
    assert pebble_calls.by_method == {}
    assert writes.count("relation_set") == 0
    assert out.unit_status == testing.ActiveStatus()
    assert_logs_are_short(caplog)


def test_plain_http_ingress_url_delivers_but_says_it_is_unencrypted(ctx: Ctx, root: Path) -> None:
    """arrange: behind an ingress. act: its URL is http://. assert: published, Active, says so."""
    good = behind_ingress(ctx, root)
    plain = dataclasses.replace(
        states.relation(good, "ingress"),
        remote_app_data={"ingress": json.dumps({"url": "http://10.1.2.3/fmodel-sidekick"})},
    )

    out = ctx.run(
        ctx.on.relation_changed(plain, remote_unit=0), states.replace_relation(good, plain)
    )

    assert published_url(out) == "http://10.1.2.3/fmodel-sidekick"
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert out.unit_status.message.startswith("alerts reach 10.1.2.3 unencrypted: ")
    assert "certificate" in out.unit_status.message


# Loki URLs (send-loki-logs and logging) ---------------------------------------------------


@pytest.mark.parametrize("endpoint", ["send-loki-logs", "logging"])
@pytest.mark.parametrize(
    "url",
    [
        LOKI_0 + "\n",
        "http://loki-1.loki-endpoints.cos.svc.cluster.local:3100/loki\r\n/api/v1/push",
        "http://loki 1:3100/loki/api/v1/push",
        "http://loki-1:3100/" + "x" * (2 * 1024 * 1024),
    ],
)
def test_loki_url_the_strict_check_refuses_is_ignored(
    ctx: Ctx, root: Path, endpoint: str, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """arrange: forwarding to Loki. act: a unit publishes such a URL. assert: last good kept.

    Nothing is written to the container (no newline reaches the config or the Pebble log
    targets), and no log record holds the whole value.
    """
    good = behind_ingress(ctx, root)
    relation = states.relation(good, endpoint)
    broken = dataclasses.replace(
        relation, remote_units_data={0: {"endpoint": json.dumps({"url": url})}}
    )
    caplog.set_level(logging.DEBUG)

    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.relation_changed(broken, remote_unit=0), states.replace_relation(good, broken)
        )

    assert pebble_calls.by_method == {}
    config = states.rendered_config(root)
    assert config["loki"]["hostport"] + config["loki"]["endpoint"] == LOKI_0
    plan = out.get_container(states.CONTAINER).plan
    assert all("\n" not in target.location for target in plan.log_targets.values())
    assert_logs_are_short(caplog)


# operator input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        "env:prod\nteam:sec",  # a newline inside a value
        "env:pr\x00od",  # NUL
        "env:pr\tod",  # a tab
        "env:" + "x" * (1024 * 1024),  # 1 MiB
    ],
)
def test_custom_field_value_with_control_characters_or_huge_is_blocked(
    ctx: Ctx, root: Path, fields: str
) -> None:
    """arrange: in service. act: custom-fields with such a value. assert: Blocked, unchanged."""
    good = behind_ingress(ctx, root)
    before = (root / "falcosidekick.yaml").read_text()

    with record_pebble() as pebble_calls:
        out = ctx.run(
            ctx.on.config_changed(), dataclasses.replace(good, config={"custom-fields": fields})
        )

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("invalid config 'custom-fields': value of 'env' ")
    assert len(out.unit_status.message) < 200
    assert pebble_calls.by_method == {}
    assert (root / "falcosidekick.yaml").read_text() == before


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "fe80::1%eth0", "224.0.0.1"])  # noqa: S104
def test_external_hostname_no_client_can_connect_to_is_blocked(
    ctx: Ctx, root: Path, ca: Issued, host: str
) -> None:
    """arrange: serving a certificate. act: external-hostname is such an address. assert.

    Blocked naming the option; no new certificate is asked for (a scoped address would have
    been dropped from the request, and the unit would have waited for it forever).
    """
    relations = {states.certificates_relation(), testing.Relation("http-endpoint")}
    serving = states.with_certificate(
        ctx, states.state(root, leader=True, relations=relations), ca
    )
    csrs = states.requested_csrs(states.relation(serving, "certificates"))

    out = ctx.run(
        ctx.on.config_changed(),
        dataclasses.replace(serving, config={"external-hostname": host}),
    )

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("invalid config 'external-hostname': ")
    assert states.requested_csrs(states.relation(out, "certificates")) == csrs


# CA PEM from other units -------------------------------------------------------------------


@pytest.mark.parametrize("extra", ["junk after the certificate\n", "key"])
def test_peer_ca_with_anything_but_certificates_is_not_published(
    ctx: Ctx, root: Path, ca: Issued, extra: str
) -> None:
    """arrange: unit 1 reports a CA followed by junk or a key. act: changed. assert: no URL.

    The leader waits for its own certificate, so nothing serves with a usable CA.
    """
    tail = issue(ca, "x").key_pem if extra == "key" else extra
    report = {
        "scheme": "https",
        "port": 2801,
        "hosts": [states.CLUSTER_IP],
        "ca": ca.cert_pem + tail,
    }
    peers = testing.PeerRelation(
        "sidekick-peers", peers_data={1: {"alert-input": json.dumps(report)}}
    )
    state = states.state(
        root,
        leader=True,
        relations={
            states.certificates_relation(),
            testing.Relation("http-endpoint", remote_app_name="falco"),
            peers,
        },
    )

    out = ctx.run(ctx.on.relation_changed(peers, remote_unit=1), state)

    assert states.relation(out, "http-endpoint").local_app_data.get("ca_cert", "") == ""
    assert published_url(out) is None


# the certificates provider's bag ----------------------------------------------------------


def test_provider_bag_that_is_not_json_is_not_logged_whole(
    ctx: Ctx, root: Path, ca: Issued, caplog: pytest.LogCaptureFixture
) -> None:
    """arrange: serving a certificate. act: the provider writes 2 MiB of text that is not JSON.

    assert: the served certificate stays, the status says the data is ignored, and no log
    record holds it (the tls library would log the whole bag as an error on every read).
    """
    relations = {states.certificates_relation(), testing.Relation("http-endpoint")}
    serving = states.with_certificate(
        ctx, states.state(root, leader=True, relations=relations), ca
    )
    before = (root / "tls" / "server.crt").read_text()
    garbage = dataclasses.replace(
        states.relation(serving, "certificates"),
        remote_app_data={"certificates": "é" * (2 * 1024 * 1024)},
    )
    caplog.set_level(logging.INFO)

    out = ctx.run(
        ctx.on.relation_changed(garbage, remote_unit=0), states.replace_relation(serving, garbage)
    )

    assert (root / "tls" / "server.crt").read_text() == before
    assert out.unit_status == testing.WaitingStatus(
        "ignoring unreadable data on 'certificates' (serving the current certificate)"
    )
    assert_logs_are_short(caplog)
