"""Hypothesis profiles for the fuzz tests, chosen with ``HYPOTHESIS_PROFILE``.

* ``ci`` (the default, what ``make test`` runs): a fixed number of examples per test, about
  600 in all, derandomized so that CI is reproducible and a failure shows up on every run;
* ``fuzz`` (``make fuzz``): many more random examples, with the example database, to look
  for new failures.

Dispatches take tens of milliseconds, so no deadline: time is the bench's business.
"""

from __future__ import annotations

import os

import pytest
import worlds
from charm import FalcosidekickCharm
from hypothesis import HealthCheck, settings
from ops import testing
from tls_material import make_ca

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]

settings.register_profile(
    "ci",
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.register_profile(
    "fuzz",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
