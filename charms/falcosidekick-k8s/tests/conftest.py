"""Fixtures shared by the unit and component tests."""

from __future__ import annotations

from pathlib import Path

import addresses
import pytest
import sidekick_states as states
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


@pytest.fixture(name="dns", autouse=True)
def dns_fixture(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The pod's name resolution, as a table a test may change (no real DNS lookups)."""
    records = dict(states.POD_DNS)
    monkeypatch.setattr(addresses, "resolve", records.get)
    return records
