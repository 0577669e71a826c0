"""Real alerts from the real Falco, through what the charm rendered, over verified TLS.

No kernel access is needed: Falco's ``replay`` engine reads the workloads' self-test capture
(a few commands reading /etc/shadow and the like) through the unit's live falco.yaml, with
only the engine changed on the command line. The charm is related to an HTTPS sink on
127.0.0.1 over ``http-endpoint`` with the test CA as ``ca_cert``, as Falcosidekick would
publish it; the sink keeps what Falco POSTs. The inline custom rules are the marker rule,
so the charm's own custom rules are proven to fire too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import real_tools
import workloads
from falco_rig import sidekick_relation
from real_falco import HttpsSink, expected_alerts, keep_sample, log_lines
from real_unit import UNIT_TOPOLOGY, RealUnit, real_unit
from tls_material import make_ca

# The tutorial quotes the alert log line this test sees (same capture, same config).
TUTORIAL = Path(__file__).resolve().parents[4] / "docs" / "tutorial" / "end-to-end.md"
CA = make_ca("Sidekick CA")
OTHER_CA = make_ca("Another CA")
# Fields that depend on how the capture is printed (time format), not on what happened.
TIME_FIELDS = ("evt.time", "evt.time.iso8601")


@pytest.fixture(name="unit", scope="module")
def unit_fixture(
    tmp_path_factory: pytest.TempPathFactory, real_charm_root: Path
) -> Iterator[RealUnit]:
    marker = workloads.require(workloads.SELFTEST_MARKER_RULE).read_text()
    with real_unit(tmp_path_factory.mktemp("alerts"), real_charm_root) as unit:
        unit.install(**{"custom-rules": marker})
        yield unit


@pytest.fixture(name="sink", scope="module")
def sink_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsSink]:
    with HttpsSink(tmp_path_factory.mktemp("sink"), CA) as sink:
        yield sink


def in_trust_store(store: Path) -> tuple[str, ...]:
    """Return a wrapper running a command where ``store`` is the machine's trust store.

    A private mount namespace binds ``store`` over /etc/ssl/certs for that command only:
    the host's own store is never touched.
    """
    real_tools.require_root("a private mount namespace puts the trust store in place")
    unshare = real_tools.require("unshare", "util-linux")
    mount = 'mount --bind "$0" /etc/ssl/certs && exec "$@"'
    return (unshare, "--mount", "--propagation", "private", "--", "sh", "-c", mount, str(store))


def replay(unit: RealUnit, trust_store: Path | None = None) -> str:
    """Run the real Falco on the live falco.yaml over the self-test capture; its log."""
    capture = workloads.require(workloads.SELFTEST_CAPTURE)
    wrapper = in_trust_store(trust_store) if trust_store is not None else ()
    result = unit.falco.run(
        "-c",
        str(unit.config_file),
        "-o",
        "engine.kind=replay",
        "-o",
        f"engine.replay.capture_file={capture}",
        env={**os.environ, "FALCO_HOSTNAME": workloads.SELFTEST_HOSTNAME},
        wrapper=wrapper,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def comparable(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert without what depends on the print format or on the Juju unit."""
    fields = {
        key: value
        for key, value in alert["output_fields"].items()
        if key not in TIME_FIELDS and key not in UNIT_TOPOLOGY
    }
    kept = ("hostname", "priority", "rule", "source", "tags")
    return {**{key: alert[key] for key in kept}, "output_fields": fields}


def expected() -> list[dict[str, Any]]:
    path = workloads.require(workloads.SELFTEST_EXPECTED)
    return [comparable(alert) for alert in expected_alerts(path)]


def test_alerts_reach_the_endpoint_over_verified_tls_with_the_units_topology(
    unit: RealUnit, sink: HttpsSink
) -> None:
    """arrange: related to the sink, its CA published. act: replay. assert: every alert."""
    unit.relate(sidekick_relation(sink.url, CA.cert_pem))
    http = unit.live_config()["http_output"]
    assert (http["url"], http["ca_cert"]) == (sink.url, str(unit.layout.http_ca_file))
    assert unit.layout.http_ca_file.read_text() == CA.cert_pem

    replay(unit)

    alerts = sink.alerts()
    keep_sample("delivered-alert.json", json.dumps(alerts[0], indent=2, sort_keys=True) + "\n")
    assert [comparable(alert) for alert in alerts] == expected()
    for alert in alerts:
        assert {key: alert["output_fields"][key] for key in UNIT_TOPOLOGY} == UNIT_TOPOLOGY
    assert {alert["rule"] for alert in alerts} >= {"Juju falco selftest marker opened"}
    assert {headers["Content-Type"] for headers in sink.headers()} == {"application/json"}
    # The same alerts stay on the host, in the alert log.
    lines = unit.layout.alert_log_file.read_text().splitlines()
    logged = [json.loads(line) for line in lines]
    # The tutorial shows this very line for `sudo cat /etc/shadow`: real output, kept true.
    shadow = next(line for line in lines if '"rule":"Read sensitive file untrusted"' in line)
    keep_sample("alert-log-sensitive-file.json", shadow + "\n")
    assert shadow in TUTORIAL.read_text(), f"update {TUTORIAL.name} with this line: {shadow}"
    assert [comparable(alert) for alert in logged[-len(alerts) :]] == expected()
    assert all(alert["output_fields"]["juju_unit"] == "falco/0" for alert in logged)


def test_a_sink_certified_by_another_ca_receives_nothing(unit: RealUnit, tmp_path: Path) -> None:
    """arrange: a sink whose certificate another CA signed. act: replay. assert: nothing."""
    with HttpsSink(tmp_path / "impostor", OTHER_CA) as impostor:
        unit.relate(sidekick_relation(impostor.url, CA.cert_pem))
        assert unit.live_config()["http_output"]["url"] == impostor.url

        log = replay(unit)

        assert impostor.alerts() == []
    # Falco said why (libcurl's words), and replayed to the end of the capture (exit 0).
    refused = "libcurl failed to perform call: SSL peer certificate or SSH remote key was not OK"
    assert refused in log_lines(log)


@pytest.fixture(name="store_trusts_other_ca")
def store_trusts_other_ca_fixture(unit: RealUnit) -> Iterator[Path]:
    """The other CA in a trust store laid out like Debian's and Ubuntu's /etc/ssl/certs.

    One PEM file per CA, its OpenSSL hash link (what a CA directory lookup opens), and the
    ca-certificates.crt bundle (libcurl's default CA file). The store is the machine's
    /etc/ssl/certs, rooted under the unit's fake machine like every path of the charm; the
    host's own store is never touched.
    """
    openssl = real_tools.require("openssl", "openssl")
    store = unit.layout.system_ca_dir
    store.mkdir(parents=True, exist_ok=True)
    pem = store / "another-ca.pem"
    pem.write_text(OTHER_CA.cert_pem)
    (store / "ca-certificates.crt").write_text(OTHER_CA.cert_pem)
    hashed = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(pem)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (store / f"{hashed}.0").symlink_to(pem.name)
    yield store
    shutil.rmtree(store)


def test_without_a_related_ca_the_machines_trust_store_verifies_the_sink(
    unit: RealUnit, tmp_path: Path, store_trusts_other_ca: Path
) -> None:
    """arrange: a sink certified by a CA of the machine's store; no CA related. act: replay.

    assert: delivered (a public CA signs the ingress: the store is what verifies it).
    """
    with HttpsSink(tmp_path / "public", OTHER_CA) as sink:
        unit.relate(sidekick_relation(sink.url))
        http = unit.live_config()["http_output"]
        assert (http["ca_cert"], http["ca_path"]) == ("", str(store_trusts_other_ca))

        replay(unit, trust_store=store_trusts_other_ca)

        assert [comparable(alert) for alert in sink.alerts()] == expected()


def test_libcurl_trusts_the_machines_store_besides_the_related_ca(
    unit: RealUnit, tmp_path: Path, store_trusts_other_ca: Path
) -> None:
    """arrange: a sink certified by a CA of the machine's store; another CA related.

    act: replay outside the charm's unit. assert: delivered all the same. Falco sets only
    libcurl's CA file (``ca_cert``; ``ca_path`` is used only without one), and libcurl still
    looks in its built-in CA directory, /etc/ssl/certs. This is why the unit hides the
    machine's store from Falco while a CA is related (systemd_unit; proved under a real
    systemd in tests/component/test_unit_under_systemd.py).
    """
    with HttpsSink(tmp_path / "impostor", OTHER_CA) as impostor:
        unit.relate(sidekick_relation(impostor.url, CA.cert_pem))

        replay(unit, trust_store=store_trusts_other_ca)

        assert [comparable(alert) for alert in impostor.alerts()] == expected()


@pytest.mark.parametrize(
    ("options", "silenced"),
    [
        ({"disabled-rules": "Read sensitive*"}, {"Read sensitive file untrusted"}),
        ({"disabled-rules": "*", "enabled-rules": "tag:T1552.001"}, None),
        ({"minimum-priority": "error"}, None),
    ],
)
def test_rule_options_decide_what_falco_reports(
    unit: RealUnit, sink: HttpsSink, options: dict[str, str], silenced: set[str] | None
) -> None:
    """arrange: related to the sink. act: select rules, replay. assert: only those alert."""
    marker = workloads.require(workloads.SELFTEST_MARKER_RULE).read_text()
    unit.relate(sidekick_relation(sink.url, CA.cert_pem))
    unit.configure(**{"custom-rules": marker, **options})
    before = len(sink.alerts())

    replay(unit)

    fired = {alert["rule"] for alert in sink.alerts()[before:]}
    everything = {alert["rule"] for alert in expected()}
    if options.get("enabled-rules"):
        # Only "Search Private Keys or Passwords" carries T1552.001 among those the capture fires.
        assert fired == {"Search Private Keys or Passwords"}
    elif silenced is None:
        assert fired == set()  # every alert of the capture is a Warning
    else:
        assert fired == everything - silenced
