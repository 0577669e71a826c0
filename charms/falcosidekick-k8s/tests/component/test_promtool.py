"""The Prometheus rules the charm sends, checked by the real ``promtool`` (Debian prometheus)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import alert_rules
import pytest
import real_tools
import sidekick_states as states
import yaml

TOPOLOGY = states.TOPOLOGY


@pytest.fixture(name="promtool")
def promtool_fixture() -> str:
    return real_tools.require("promtool", "prometheus")


def test_rendered_prometheus_rules_pass_promtool(promtool: str, tmp_path: Path) -> None:
    """arrange: the rules sent on metrics-endpoint. act: promtool check rules. assert: ok."""
    rules_file = tmp_path / "falcosidekick.rules.yaml"
    rules_file.write_text(yaml.safe_dump(alert_rules.prometheus_rules(TOPOLOGY)))

    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


def test_promtool_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    """arrange: a rule with bad PromQL. act: promtool check rules. assert: it fails."""
    rules = alert_rules.prometheus_rules(TOPOLOGY)
    rules["groups"][0]["rules"][0]["expr"] = "sum by (juju_unit (up"
    rules_file = tmp_path / "broken.rules.yaml"
    rules_file.write_text(yaml.safe_dump(rules))

    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )

    assert result.returncode != 0
