"""The charms' copies of libs/ are generated, never edited by hand."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import vendor

ROOT = Path(__file__).resolve().parent.parent


def test_every_copy_matches_its_source() -> None:
    """arrange: the repository as committed. act: compare. assert: no copy has drifted."""
    assert vendor.drifted() == []


@pytest.fixture(name="repo_copy")
def repo_copy_fixture(tmp_path: Path) -> Path:
    """A throwaway copy of the sources and vendored files, to damage safely."""
    for source, copies in vendor.VENDORED.items():
        for path in (source, *copies):
            target = tmp_path / path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, target)
    return tmp_path


@pytest.mark.parametrize("copy", [c for cs in vendor.VENDORED.values() for c in cs])
def test_one_changed_byte_is_caught(repo_copy: Path, copy: str) -> None:
    """arrange: flip one byte of a copy. act: check. assert: exactly that copy is reported."""
    path = repo_copy / copy
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    assert vendor.drifted(repo_copy) == [copy]


def test_check_mode_exits_non_zero_on_drift(repo_copy: Path) -> None:
    """arrange: a copy edited by hand. act: vendor.py --check. assert: exit 1 and a hint."""
    copies = next(iter(vendor.VENDORED.values()))
    (repo_copy / copies[0]).write_text("# edited by hand\n")
    script = repo_copy / "libs" / "vendor.py"
    shutil.copy2(ROOT / "libs" / "vendor.py", script)

    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )

    assert result.returncode == 1
    assert f"{copies[0]} differs from its source" in result.stderr
    assert "make vendor" in result.stderr
