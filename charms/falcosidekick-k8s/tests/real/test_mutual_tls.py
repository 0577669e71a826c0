"""Mutual TLS: the real Falco posting to the real Falcosidekick that requires client certificates.

The sidekick charm runs under the real Pebble with ``client-authentication=required``, its
server certificate issued by the test CA over ``certificates`` (direct TLS). The real Falco
replays the self-test capture through the falco.yaml the falco charm renders for the URL and
CA the sidekick published and a client certificate (real_falco_client): issued by the same
CA, by another CA, or none. The fake Loki shows what the sidekick took.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import real_falco_client
import workloads
from cryptography.x509.oid import ExtendedKeyUsageOID
from deployment import Deployed, deploy
from local_net import free_port
from ops import testing
from real_unit import falco_alert, post
from sidekick_client import output_counts
from tls_material import Issued, issue, make_ca

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CURL_REFUSED = re.compile(
    r"libcurl failed to perform call: "
    r"(Failed sending data to the peer|Failure when receiving data from the peer)"
)
# Go's http.Server logs every refused handshake; the alert handlers never see it.
REFUSED_HANDSHAKE = re.compile(r"http: TLS handshake error from [^:]+:\d+: (.*)")


@dataclass
class Pipeline:
    """The sidekick requiring client certificates, and Falco configured for each client."""

    sidekick: Deployed
    falco_dir: Path
    rendered: real_falco_client.Rendered
    cert_dir: Path

    def replay(self, client: str) -> str:
        return real_falco_client.replay(self.falco_dir, self.rendered.configs[client])

    def sidekick_log(self) -> str:
        """What the sidekick printed (Pebble's service log)."""
        return self.sidekick.pebble.cli("logs", "falcosidekick", "-n", "all")


def write_client(directory: Path, issued: Issued) -> tuple[Path, Path]:
    """Write a client certificate and key where the falco charm would; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "http-client.crt", directory / "http-client.key"
    cert.write_text(issued.cert_pem)
    key.write_text(issued.key_pem)
    key.chmod(0o600)
    return cert, key


@pytest.fixture(name="pipeline", scope="module")
def pipeline_fixture(ca: Issued, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    base = tmp_path_factory.mktemp("mtls")
    with ExitStack() as stack:
        sidekick = deploy(
            "certificates", ca, stack, base, config={"client-authentication": "required"}
        )
        falco_dir = workloads.unpack_falco(tmp_path_factory.mktemp("falco"))
        url, published_ca = sidekick.unit.published()
        assert published_ca is not None
        ca_file = base / "http-endpoint-ca.pem"
        ca_file.write_text(published_ca)
        name = "falco-0.fmodel"
        clients: dict[str, tuple[Path, Path] | None] = {
            "valid": write_client(base / "valid", issue(ca, name, dns_names=(name,))),
            "none": None,
            "other-ca": write_client(
                base / "other", issue(make_ca("Another CA"), name, dns_names=(name,))
            ),
            # Where the charm writes it: the same paths, new content after rotation.
            "rotated": write_client(base / "rotated", issue(ca, name, dns_names=(name,))),
            # What a CA that issues server certificates only gives (extended key usage).
            "server-only": write_client(
                base / "server-only",
                issue(ca, name, dns_names=(name,), extended_key_usage=(SERVER_AUTH,)),
            ),
        }
        out = base / "configs"
        out.mkdir()
        rendered = real_falco_client.render(falco_dir, url, ca_file, free_port(), clients, out)
        yield Pipeline(sidekick, falco_dir, rendered, base)


def rejected_inputs(sidekick: Deployed) -> float:
    text = sidekick.unit.metrics()
    found = re.search(
        r'^falcosecurity_falcosidekick_inputs_total\{source="requests",status="rejected"\} (\S+)',
        text,
        re.MULTILINE,
    )
    return float(found.group(1)) if found else 0.0


def test_the_sidekick_announces_that_it_requires_client_certificates(pipeline: Pipeline) -> None:
    """arrange: client-authentication=required. act: read http-endpoint. assert: announced."""
    bag = pipeline.sidekick.unit.relation("http-endpoint").local_app_data

    assert json.loads(bag["client_auth"]) == "required"
    config = pipeline.rendered.configs["valid"].read_text()
    assert "mtls: true" in config


def test_falco_with_a_client_certificate_of_the_ca_delivers_every_alert(
    pipeline: Pipeline,
) -> None:
    """arrange: a certificate from the sidekick's CA. act: replay. assert: all in Loki."""
    before = len(pipeline.sidekick.loki.entries)
    expected = real_falco_client.expected_rules()

    pipeline.replay("valid")

    entries = pipeline.sidekick.loki.wait_for(lambda now: len(now) >= before + len(expected))
    rules = [json.loads(entry.line)["rule"] for entry in entries[before:]]
    assert sorted(rules) == sorted(expected)
    assert pipeline.rendered.handshakes["valid"] is None


@pytest.mark.parametrize("client", ["none", "other-ca", "server-only"])
def test_falco_without_a_trusted_certificate_is_refused(pipeline: Pipeline, client: str) -> None:
    """arrange: no client certificate, another CA's, or one for servers only. act: replay.

    assert: nothing reaches Loki; Falco logs the failed posts; the sidekick refuses the
    handshakes (in its log: they never reach the input counters).
    """
    before_entries = len(pipeline.sidekick.loki.entries)
    before_log = pipeline.sidekick_log()
    before_rejected = rejected_inputs(pipeline.sidekick)

    log = pipeline.replay(client)
    # Delivered alerts would have been pushed by now: the valid client's arrive within this.
    pipeline.sidekick.loki.wait_for(lambda now: True)

    assert len(pipeline.sidekick.loki.entries) == before_entries
    # With TLS 1.3 the refusal comes after curl's handshake: curl only fails to send or to
    # receive, whichever it was doing when the server's alert came (both were seen).
    assert CURL_REFUSED.search(log), log
    refusals = REFUSED_HANDSHAKE.findall(pipeline.sidekick_log()[len(before_log) :])
    assert refusals, pipeline.sidekick_log()[len(before_log) :]
    assert rejected_inputs(pipeline.sidekick) == before_rejected
    said = {
        "none": "client didn't provide a certificate",
        "other-ca": "certificate signed by unknown authority",
        "server-only": "certificate specifies an incompatible key usage",
    }[client]
    assert any(said in why for why in refusals), refusals


def test_the_self_test_handshake_says_what_the_sidekick_refused(pipeline: Pipeline) -> None:
    """arrange: the three clients. act: the falco charm's self-test handshake. assert: verdicts."""
    handshakes = pipeline.rendered.handshakes

    assert handshakes["valid"] is None
    assert handshakes["rotated"] is None
    problem = handshakes["other-ca"]
    assert problem is not None and "refused this unit's client certificate" in problem
    # Without a certificate the handshake is TLS 1.3 and completes before the server
    # refuses: only Falco's own log (checked by the self-test too) shows the failure.
    assert handshakes["none"] is None


def test_a_rotated_client_certificate_loses_no_alert(pipeline: Pipeline) -> None:
    """arrange: alerts delivered with one certificate. act: rotate it, replay (a restart).

    assert: every alert of both runs arrived; the sidekick was not restarted.
    """
    expected = real_falco_client.expected_rules()
    pid = pipeline.sidekick.pebble.sidekick_pid()
    before = len(pipeline.sidekick.loki.entries)

    pipeline.replay("valid")
    pipeline.replay("rotated")

    entries = pipeline.sidekick.loki.wait_for(lambda now: len(now) >= before + 2 * len(expected))
    rules = [json.loads(entry.line)["rule"] for entry in entries[before:]]
    assert sorted(rules) == sorted(expected * 2)
    assert pipeline.sidekick.pebble.sidekick_pid() == pid


def test_a_post_without_a_certificate_is_refused(pipeline: Pipeline) -> None:
    """arrange: mutual TLS. act: post an alert with the CA but no certificate. assert: refused."""
    url, ca_pem = pipeline.sidekick.alert_url_and_ca()
    body = json.dumps(falco_alert("Forged alert")).encode()

    with pytest.raises((ssl.SSLError, OSError)):
        post(url, body, ca_pem)

    assert pipeline.sidekick.loki.lines_of_rule("Forged alert") == []


def test_test_alert_action_presents_the_sidekicks_own_certificate(pipeline: Pipeline) -> None:
    """arrange: mutual TLS. act: the test-alert action. assert: Loki accepted the test event."""
    unit = pipeline.sidekick.unit
    before = output_counts(unit.metrics(), "loki")

    with unit.wired():
        unit.state = unit.ctx.run(unit.ctx.on.action("test-alert"), unit.state)

    results = unit.ctx.action_results or {}
    assert results["loki"]["outcome"] == "accepted"
    assert output_counts(unit.metrics(), "loki").ok > before.ok
    assert isinstance(unit.state.unit_status, testing.ActiveStatus)
