"""Checks that a Juju integration suite is sound where no Juju is: it collects, and it fails.

Integration tests run only on a Juju host (`make integration`). Everywhere else they must
still import cleanly, and running them must fail with a message naming what is missing:
a suite that skipped or passed without a controller would prove nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NEEDS_JUJU = "need a Juju controller"


def run_pytest(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``args`` in a fresh interpreter of this environment."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd, capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip


def assert_collects(cwd: Path, suite: str) -> None:
    """Assert that ``suite`` collects at least one test and no error."""
    result = run_pytest(cwd, "--collect-only", "-q", suite)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " collected" in result.stdout, result.stdout


def assert_fails_loudly_without_juju(cwd: Path, suite: str, empty_dir: Path, **env: str) -> None:
    """Assert that ``suite`` fails, saying a controller is needed, with no `juju` anywhere.

    ``empty_dir`` becomes the whole PATH; ``env`` adds variables (for example, where the
    packed charms are) to the environment.
    """
    environment = dict(os.environ, PATH=str(empty_dir), **env)
    result = run_pytest(cwd, "-q", "-x", suite, env=environment)
    assert result.returncode != 0, result.stdout
    assert NEEDS_JUJU in result.stdout, result.stdout
    assert " passed" not in result.stdout and " skipped" not in result.stdout, result.stdout
