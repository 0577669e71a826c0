"""Install and config-changed with the real Falco tarball: what the charm renders, Falco takes.

One unit for the module: installed with the real tarball as its bundled payload and inline
custom rules, then asked about by the real binary of its own payload (``--dry-run``, ``-L``).
The juju_* fields of every alert are proven on real alerts in test_alerts.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import workloads
import yaml
from ops import testing
from real_falco import loaded_rules_files
from real_unit import UNIT_TOPOLOGY, RealUnit, real_unit

LOCAL_ONLY = testing.ActiveStatus("alerts stay on this host: integrate http-endpoint")


@pytest.fixture(name="unit", scope="module")
def unit_fixture(
    tmp_path_factory: pytest.TempPathFactory, real_charm_root: Path
) -> Iterator[RealUnit]:
    marker = workloads.require(workloads.SELFTEST_MARKER_RULE).read_text()
    with real_unit(tmp_path_factory.mktemp("install"), real_charm_root) as unit:
        unit.install(**{"custom-rules": marker, "disabled-rules": "tag:network"})
        yield unit


def names(items: list[dict[str, object]]) -> list[str]:
    return [str(item["info"]["name"]) for item in items]  # type: ignore[index]


def test_the_charm_accepts_the_real_tarball(unit: RealUnit) -> None:
    """arrange: the real tarball bundled. act: install. assert: its version, running, active."""
    assert unit.state.workload_version == workloads.FALCO_VERSION
    assert unit.payload.falco_version == workloads.FALCO_VERSION
    assert unit.payload.driver_version == "10.2.0+driver"
    assert unit.machine.unit()["active"]
    assert unit.status == LOCAL_ONLY


def test_real_falco_accepts_the_rendered_config(unit: RealUnit) -> None:
    """arrange: the live falco.yaml. act: falco --dry-run on it. assert: ok, files loaded."""
    result = unit.falco.run("-c", str(unit.config_file), "--dry-run")

    assert result.returncode == 0, result.stderr
    # The rule set's rules.d folder is listed even when empty; Falco reads nothing from it.
    default, marker, folder, inline = unit.live_config()["rules_files"]
    assert default == str(unit.payload.default_rules)
    assert (folder, inline) == (
        f"{Path(inline).parent}/rules.d",
        f"{Path(inline).parent}/custom-rules.yaml",
    )
    # The charm's self-test rule right after the defaults, before the custom rules.
    assert marker == str(unit.layout.self_test_rules_dir / "self-test-debug.yaml")
    assert loaded_rules_files(result.stderr) == [default, marker, inline]
    assert "Disabling rules with tag: network" in result.stderr


def test_rules_listing_has_the_default_and_the_custom_rules(unit: RealUnit) -> None:
    """arrange: the live falco.yaml. act: falco -L. assert: defaults, self-test, custom rule."""
    listing = unit.falco.rules(unit.config_file)

    defaults = yaml.safe_load(unit.payload.default_rules.read_text())
    default_rules = [item["rule"] for item in defaults if "rule" in item]
    custom = yaml.safe_load(workloads.require(workloads.SELFTEST_MARKER_RULE).read_text())
    assert names(listing["rules"]) == [*default_rules, "Juju Falco self-test", custom[0]["rule"]]
    assert len(default_rules) > 20
    # Every rule carries the unit's topology as extra output fields, Falco compiled them.
    for rule in listing["rules"]:
        assert rule["details"]["extra_output_formatted_fields"] == UNIT_TOPOLOGY


def test_a_hot_reloaded_option_stays_acceptable_to_falco(unit: RealUnit) -> None:
    """arrange: installed. act: change the minimum priority. assert: falco takes it live."""
    before = unit.machine.restarts()
    config = dict(unit.state.config)
    unit.configure(**config, **{"minimum-priority": "info"})

    assert unit.live_config()["priority"] == "info"
    assert unit.machine.restarts() == before
    result = unit.falco.run("-c", str(unit.config_file), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert unit.status == LOCAL_ONLY


def test_falcos_own_reason_for_a_refused_config_reaches_the_status(
    tmp_path: Path, real_charm_root: Path
) -> None:
    """arrange: the payload's plugin library deleted. act: change an option. assert: why."""
    with real_unit(tmp_path, real_charm_root) as unit:
        unit.install()
        live = unit.config_file.read_text()
        unit.payload.container_plugin.unlink()

        unit.configure(**{"minimum-priority": "notice"})

    assert isinstance(unit.status, testing.BlockedStatus)
    message = unit.status.message
    # Falco logs this one with a timestamp and no "Error:"; the status keeps its beginning
    # and its end (the reason), and drops the timestamp.
    assert message.startswith(
        "falco --dry-run rejected the rendered falco.yaml: cannot load plugin /"
    ), message
    assert message.endswith("cannot open shared object file: No such file or directory."), message
    assert "Runtime error" not in message
    assert unit.config_file.read_text() == live
