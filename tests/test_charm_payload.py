"""What charmcraft packs into each charm: its runtime dependencies and no developer tools.

charmcraft's uv plugin installs a charm's environment with `uv sync --no-dev` (craft-parts
2.x, charmcraft 4.5): every dependency group except `dev` lands in the charm. This asks uv
itself, from the same lock, what that command would install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHARMS = ["falco", "falcosidekick-k8s"]
DEVELOPER_TOOLS = {"pytest", "ruff", "mypy", "coverage", "hypothesis", "codespell", "jubilant"}


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not os.access(found, os.X_OK):
        pytest.fail("uv is needed to read the lock files: run `make deps`", pytrace=False)
    return found


def _packed_requirements(charm: str) -> set[str]:
    out = subprocess.run(
        [_uv(), "export", "--frozen", "--no-dev", "--no-hashes", "--no-header",
         "--no-emit-project", "--no-annotate"],
        cwd=ROOT / "charms" / charm, capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return {
        line.split("==")[0].split("[")[0].strip().lower()
        for line in out.splitlines()
        if line.strip() and not line.startswith(("#", " "))
    }


@pytest.mark.parametrize("charm", CHARMS)
def test_the_charm_carries_no_developer_tools(charm: str) -> None:
    """arrange: the lock. act: export what `uv sync --no-dev` installs. assert: no tools."""
    packed = _packed_requirements(charm)

    assert "ops" in packed and "pydantic" in packed
    assert not packed & DEVELOPER_TOOLS, sorted(packed & DEVELOPER_TOOLS)
