"""The self-test's marker rule and delivery check, held to the real Falco 0.44.1.

The rule is validated and loaded by the real Falco through the unit's live falco.yaml; its
match is proven with the ``replay`` engine on the workloads' self-test capture, which reads
``/tmp/juju-falco-selftest-marker`` twice: the rule is rendered with that path as its marker
(the same renderer, the parameter pointed at the capture's path) in a copy of the live
falco.yaml where only that rules file differs. The delivery check (a TLS handshake from the
charm's Python, and Falco's own delivery errors) is compared with what the real Falco's
http_output did with the same sink: right CA, another CA, a closed port.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import self_test
import workloads
import yaml
from falco_rig import sidekick_relation
from local_net import free_port
from real_falco import HttpsSink, expected_alerts, keep_sample, log_lines
from real_unit import UNIT_TOPOLOGY, RealUnit, real_unit
from self_test_rig import REFERENCE_ALERT, alert_for
from tls_material import make_ca

CA = make_ca("Sidekick CA")
OTHER_CA = make_ca("Another CA")
PRIORITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")
# What identifies a marker read in the capture, whatever rule matched it (and "time").
EVENT_FIELDS = ("fd.name", "proc.cmdline", "proc.pid", "user.name", "container.id")


@pytest.fixture(name="unit", scope="module")
def unit_fixture(
    tmp_path_factory: pytest.TempPathFactory, real_charm_root: Path
) -> Iterator[RealUnit]:
    # Warning: the level of the capture's marker rule, so the priorities compare too.
    with real_unit(tmp_path_factory.mktemp("self-test"), real_charm_root) as unit:
        unit.install(**{"minimum-priority": "warning"})
        yield unit


def capture_config(unit: RealUnit, directory: Path) -> Path:
    """Return a copy of the live falco.yaml whose marker rule matches the capture's marker."""
    config = unit.live_config()
    live_marker = Path(config["rules_files"][1])
    assert live_marker.parent == unit.layout.self_test_rules_dir
    priority = yaml.safe_load(live_marker.read_text())[0]["priority"]
    rule = directory / "marker.yaml"
    rule.write_text(self_test.marker_rule(workloads.SELFTEST_MARKER_PATH, priority))
    config["rules_files"][1] = str(rule)
    copy = directory / "falco.yaml"
    copy.write_text(yaml.safe_dump(config, sort_keys=False))
    return copy


def replay(unit: RealUnit, config: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Replay the capture through ``config``; return the new alert log lines and the log."""
    capture = workloads.require(workloads.SELFTEST_CAPTURE)
    log = unit.layout.alert_log_file
    before = log.stat().st_size if log.exists() else 0
    result = unit.falco.run(
        "-c",
        str(config),
        "-o",
        "engine.kind=replay",
        "-o",
        f"engine.replay.capture_file={capture}",
        env={**os.environ, "FALCO_HOSTNAME": workloads.SELFTEST_HOSTNAME},
    )
    assert result.returncode == 0, result.stderr
    with log.open("rb") as opened:
        opened.seek(before)
        alerts = [json.loads(line) for line in opened.read().decode().splitlines()]
    return alerts, log_lines(result.stderr)


def identity(alert: dict[str, Any]) -> dict[str, Any]:
    """The event an alert is about and how it is labelled, whatever rule matched it."""
    fields = {key: alert["output_fields"].get(key) for key in EVENT_FIELDS}
    kept = ("hostname", "priority", "source", "time")
    return {**{key: alert[key] for key in kept}, "output_fields": fields}


def test_the_marker_rule_is_validated_and_loaded_after_the_defaults(unit: RealUnit) -> None:
    """arrange: installed. act: falco --dry-run and -L on the live config. assert: loaded."""
    config = unit.live_config()
    marker = unit.layout.self_test_rules_dir / "self-test-warning.yaml"
    assert config["rules_files"][:2] == [str(unit.payload.default_rules), str(marker)]
    assert config["rules"][-1] == {"enable": {"rule": self_test.RULE_NAME}}

    listing = unit.falco.rules(unit.config_file)

    (rule,) = [r for r in listing["rules"] if r["info"]["name"] == self_test.RULE_NAME]
    assert rule["info"]["priority"] == "Warning"
    assert rule["details"]["extra_output_formatted_fields"] == UNIT_TOPOLOGY
    assert [r["info"]["name"] for r in listing["rules"]][-1] == self_test.RULE_NAME


def test_every_priority_of_the_marker_rule_is_valid(unit: RealUnit, tmp_path: Path) -> None:
    """arrange: the rule at each minimum-priority. act: falco -V after the defaults. assert."""
    files = []
    for name in PRIORITIES:
        path = tmp_path / f"{name}.yaml"
        marker_dir = f"{unit.layout.self_test_dir}/"
        path.write_text(self_test.marker_rule(marker_dir, self_test.rule_priority(name)))
        files += ["-V", str(path)]

    result = unit.falco.run(
        "-c", str(unit.config_file), "-o", "json_output=true",
        "-V", str(unit.payload.default_rules), *files,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])["falco_load_results"]
    assert [(r["successful"], r["warnings"]) for r in loaded] == [(True, [])] * 9


def test_the_marker_rule_matches_exactly_the_marker_reads_of_the_capture(
    unit: RealUnit, tmp_path: Path
) -> None:
    """arrange: the rule pointed at the capture's marker. act: replay. assert: both reads.

    Compared with the workloads' expected alerts of their own marker rule: same events,
    same time, host, priority and source; nothing else in the capture matches it.
    """
    alerts, _ = replay(unit, capture_config(unit, tmp_path))

    ours = [alert for alert in alerts if alert["rule"] == self_test.RULE_NAME]
    expected = [
        alert
        for alert in expected_alerts(workloads.require(workloads.SELFTEST_EXPECTED))
        if alert["output_fields"].get("fd.name") == workloads.SELFTEST_MARKER_PATH
    ]
    assert len(expected) == 2
    assert [identity(alert) for alert in ours] == [identity(alert) for alert in expected]
    # The other alerts of the capture are not the marker's business.
    assert {alert["rule"] for alert in alerts} - {self_test.RULE_NAME} == {
        "Read sensitive file untrusted",
        "Search Private Keys or Passwords",
        "Create Symlink Over Sensitive Files",
    }
    first = ours[0]
    assert first["output_fields"]["fd.filename"] == Path(workloads.SELFTEST_MARKER_PATH).name
    assert first["tags"] == list(self_test.TAGS)
    assert {key: first["output_fields"][key] for key in UNIT_TOPOLOGY} == UNIT_TOPOLOGY
    # The action finds it the way it reads the alert log.
    marker = Path(workloads.SELFTEST_MARKER_PATH)
    assert self_test.alert_about(json.dumps(first), marker) == first
    # The fake machine's Falco writes this very alert (tests/support/self_test_rig.py).
    line = json.dumps(first, separators=(",", ":"))
    keep_sample("self-test-alert.json", line + "\n")
    assert REFERENCE_ALERT.read_text().strip() == line, f"update {REFERENCE_ALERT}"
    assert alert_for(marker) == first


@pytest.fixture(name="right_sink", scope="module")
def right_sink_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsSink]:
    with HttpsSink(tmp_path_factory.mktemp("right"), CA) as sink:
        yield sink


@pytest.fixture(name="impostor", scope="module")
def impostor_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsSink]:
    with HttpsSink(tmp_path_factory.mktemp("impostor"), OTHER_CA) as sink:
        yield sink


def delivery(unit: RealUnit, url: str, tmp_path: Path) -> tuple[str | None, list[str], int]:
    """Relate ``url`` with the sidekick CA; return the charm's verdict, Falco's log, alerts.

    The verdict is the self-test's: the handshake, then Falco's delivery errors read from
    what the real Falco logged while it replayed the capture to ``url``.
    """
    unit.relate(sidekick_relation(url, CA.cert_pem))
    http = unit.live_config()["http_output"]
    _, log = replay(unit, capture_config(unit, tmp_path))
    request = self_test.Request(
        unit="falco/0", falco_running=True, read_journal=lambda _: log, settle_s=0
    )
    _, problem = self_test.check_delivery({"http_output": http}, 0, request)
    return problem, log, len(log)


def test_right_ca_the_check_passes_and_falco_delivers(
    unit: RealUnit, right_sink: HttpsSink, tmp_path: Path
) -> None:
    """arrange: a sink the related CA certifies. act: check, replay. assert: both agree."""
    before = len(right_sink.alerts())

    problem, log, _ = delivery(unit, right_sink.url, tmp_path)

    assert problem is None
    delivered = right_sink.alerts()[before:]
    assert self_test.RULE_NAME in {alert["rule"] for alert in delivered}
    assert not [line for line in log if self_test.DELIVERY_ERROR in line]


def test_another_ca_the_check_fails_as_falco_does(
    unit: RealUnit, impostor: HttpsSink, tmp_path: Path
) -> None:
    """arrange: a sink another CA certifies. act: check, replay. assert: both refuse it."""
    problem, log, _ = delivery(unit, impostor.url, tmp_path)

    assert impostor.alerts() == []
    assert problem is not None
    assert "presents a certificate the related CA does not verify" in problem
    assert "certificate verify failed" in problem or "unable to get local issuer" in problem
    # Falco's own words, which the check reads from the journal when the handshake passes.
    said = self_test.falco_delivery_error(lambda _: log, 0, 0)
    assert said == (
        "Falco could not post the alert: libcurl failed to perform call: "
        "SSL peer certificate or SSH remote key was not OK"
    )


def test_a_closed_port_the_check_fails_as_falco_does(unit: RealUnit, tmp_path: Path) -> None:
    """arrange: a URL where nothing listens. act: check, replay. assert: both fail."""
    port = free_port()

    problem, log, _ = delivery(unit, f"https://127.0.0.1:{port}/", tmp_path)

    assert problem == f"cannot connect to 127.0.0.1:{port}: Connection refused"
    said = self_test.falco_delivery_error(lambda _: log, 0, 0)
    assert said == (
        "Falco could not post the alert: libcurl failed to perform call: "
        "Couldn't connect to server"
    )
