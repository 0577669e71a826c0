"""The real Falco of ../shared/workloads, unpacked once per session, and the charm around it.

Every test here needs the real programs: ``workloads`` skips them outside CI when the
tarball is missing or cannot run (the Debian libraries of ``make deps``) and fails them with
``CI=true``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import workloads
from real_falco import Falco
from real_unit import prepare_charm_root


@pytest.fixture(name="real_falco_dir", scope="session")
def real_falco_dir_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real release tarball, unpacked once (its top directory)."""
    return workloads.unpack_falco(tmp_path_factory.mktemp("real-falco"))


@pytest.fixture(name="real_falco", scope="session")
def real_falco_fixture(real_falco_dir: Path) -> Falco:
    """The real falco binary, outside any machine."""
    return Falco(real_falco_dir / "usr/bin/falco")


@pytest.fixture(name="real_charm_root", scope="session")
def real_charm_root_fixture(tmp_path_factory: pytest.TempPathFactory, real_falco: Falco) -> Path:
    """A charm directory whose bundled payload is the real tarball (checked to run first)."""
    tarball = workloads.require(workloads.FALCO_TARBALL)
    return prepare_charm_root(tmp_path_factory.mktemp("real-charm"), tarball)
