"""The fuzz tests' worlds, and their share of the hypothesis profiles (tests/shared/fuzz_support).

The ``ci`` profile (what ``make test`` runs) runs 50 examples per test, about 600 in all.
"""

from __future__ import annotations

import pytest
import worlds
from charm import FalcosidekickCharm
from fuzz_support import load_profiles
from ops import testing
from tls_material import make_ca

load_profiles(ci_examples=50, fuzz_examples=2000)


@pytest.fixture(name="tls_world", scope="session")
def tls_world_fixture(tmp_path_factory: pytest.TempPathFactory) -> worlds.World:
    """A leader serving its own certificate behind an ingress, every relation set up."""
    ctx = testing.Context(FalcosidekickCharm)
    return worlds.build_world(ctx, tmp_path_factory.mktemp("tls-world"), make_ca("Fuzz CA"))


@pytest.fixture(name="plain_world", scope="session")
def plain_world_fixture(tmp_path_factory: pytest.TempPathFactory) -> worlds.World:
    """A leader behind an ingress without certificates (cheaper hooks), every other relation."""
    ctx = testing.Context(FalcosidekickCharm)
    return worlds.build_world(ctx, tmp_path_factory.mktemp("plain-world"), None)
