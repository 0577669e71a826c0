"""The charm's Juju integration tests collect here and fail loudly where there is no Juju.

They run only on a Juju host (`make integration`); this keeps them importable and honest
in every `make test`, in the charm's own environment (they share its conftest).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHARM_DIR = Path(__file__).resolve().parents[2]


def _pytest(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=CHARM_DIR, capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip


def test_integration_tests_collect() -> None:
    """arrange: the integration suite. act: collect it. assert: tests found, no errors."""
    result = _pytest("--collect-only", "-q", "tests/integration")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests collected" in result.stdout


def test_integration_tests_fail_loudly_without_juju(tmp_path: Path) -> None:
    """arrange: no juju on PATH. act: run the suite. assert: non-zero, says what it needs."""
    env = dict(os.environ, PATH=str(tmp_path), CHARM_PATH=str(tmp_path / "falco.charm"))

    result = _pytest("-q", "-x", "tests/integration", env=env)

    assert result.returncode != 0
    assert "need a Juju controller" in result.stdout
    assert " passed" not in result.stdout and " skipped" not in result.stdout
