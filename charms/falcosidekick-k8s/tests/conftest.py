"""Fixtures shared by the unit and component tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from charm import FalcosidekickCharm
from ops import testing
from tls_material import Issued, make_ca


@pytest.fixture(name="ctx")
def ctx_fixture() -> testing.Context[FalcosidekickCharm]:
    return testing.Context(FalcosidekickCharm)


@pytest.fixture(name="root")
def root_fixture(tmp_path: Path) -> Path:
    """The directory behind the container's /etc/falcosidekick."""
    root = tmp_path / "etc-falcosidekick"
    root.mkdir()
    return root


@pytest.fixture(name="ca", scope="session")
def ca_fixture() -> Issued:
    return make_ca("Sidekick Test CA")
