"""Fixtures of the real-workload tests: the charm on the real Pebble and Falcosidekick.

Each TLS mode is set up once per test session (a Pebble, the hooks that bring the unit into
the mode, a fake Loki on the loopback) and shared by the tests that look at it; tests that
change a deployment make their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from deployment import Deployed, deploy
from tls_material import Issued


@pytest.fixture(name="deployments", scope="session")
def deployments_fixture(
    ca: Issued, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Deployed]]:
    """Return the deployment of a mode, made on first use and kept for the session."""
    made: dict[str, Deployed] = {}
    with ExitStack() as stack:

        def deployed(mode: str) -> Deployed:
            if mode not in made:
                made[mode] = deploy(mode, ca, stack, tmp_path_factory.mktemp("loki"))
            return made[mode]

        yield deployed
