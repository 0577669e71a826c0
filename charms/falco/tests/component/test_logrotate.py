"""The alert log's rotation policy, run by the real logrotate against a temporary root.

logrotate renames the file, creates an empty one (0600), and runs the postrotate script,
which must signal Falco's main process with SIGUSR1 so that Falco reopens its file output.
``systemctl`` is a recording stand-in at the path the policy names.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import alert_log
import pytest
import real_tools
from layout import Layout


@pytest.fixture(name="layout")
def layout_fixture(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path / "root")
    systemctl = layout.systemctl_binary
    systemctl.parent.mkdir(parents=True)
    calls = tmp_path / "systemctl-calls"
    systemctl.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    systemctl.chmod(0o755)
    layout.alert_log_dir.mkdir(parents=True, mode=0o750)
    return layout


def rotate(layout: Layout, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    alert_log.ensure_rotation(layout, enabled=True)
    logrotate = real_tools.require("logrotate", "logrotate")
    real_tools.require_root("logrotate chowns the new file to root")
    return subprocess.run(
        [logrotate, "--force", "--state", str(tmp_path / "state"), str(layout.logrotate_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_rotation_renames_recreates_and_asks_falco_to_reopen(
    layout: Layout, tmp_path: Path
) -> None:
    """arrange: an alert log with one alert. act: logrotate --force. assert: the three steps."""
    layout.alert_log_file.write_text('{"rule": "Read sensitive file untrusted"}\n')

    result = rotate(layout, tmp_path)

    assert result.returncode == 0, result.stderr
    rotated = layout.alert_log_dir / "falco-alerts.log.1"
    assert rotated.read_text() == '{"rule": "Read sensitive file untrusted"}\n'
    assert layout.alert_log_file.read_text() == ""
    assert layout.alert_log_file.stat().st_mode & 0o777 == 0o600
    # systemctl failing (Falco not running) does not fail the rotation.
    calls = (tmp_path / "systemctl-calls").read_text().splitlines()
    assert calls == ["kill --signal=SIGUSR1 --kill-whom=main juju-falco.service"]
    # Neither the rotated file nor its compressed successors end in "log": the collector's
    # /var/log/**/*log tailing does not ship them again.
    assert not rotated.name.endswith("log")


def test_no_alert_log_yet_is_not_an_error(layout: Layout, tmp_path: Path) -> None:
    """arrange: Falco has not written any alert. act: logrotate --force. assert: quiet."""
    result = rotate(layout, tmp_path)

    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "systemctl-calls").exists()
    assert not layout.alert_log_file.exists()
