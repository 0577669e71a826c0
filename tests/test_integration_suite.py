"""The end-to-end Juju tests are complete enough to collect, and fail loudly without Juju.

The falco charm's own integration suite is checked the same way by the charm's tests, in
its own environment (charms/falco/tests/unit/test_integration_suite.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pytest(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT, capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip


def test_integration_tests_collect() -> None:
    """arrange: the end-to-end suite. act: collect it. assert: tests found, no errors."""
    result = _pytest("--collect-only", "-q", "tests/integration")

    assert result.returncode == 0, result.stdout + result.stderr
    assert " collected" in result.stdout or "tests collected" in result.stdout


def test_end_to_end_suite_fails_loudly_without_juju(tmp_path: Path) -> None:
    """arrange: no juju on PATH. act: run the suite. assert: non-zero, says what it needs."""
    env = dict(os.environ, PATH=str(tmp_path), FALCO_CHARM="", FALCOSIDEKICK_CHARM="")

    result = _pytest("-q", "-x", "tests/integration", env=env)

    assert result.returncode != 0
    assert "need a Juju controller" in result.stdout
    assert " passed" not in result.stdout and " skipped" not in result.stdout
