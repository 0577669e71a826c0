"""Fixtures of the Juju integration tests: a temporary model and the packed charm.

These tests need a Juju controller with an LXD cloud (`make integration`). Without one,
jubilant's first command fails and so does every test: they never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import jubilant
import pytest

CHARM_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(name="charm", scope="session")
def charm_fixture() -> Path:
    """The packed charm: $CHARM_PATH, or the one `charmcraft pack` left in the charm dir."""
    if path := os.environ.get("CHARM_PATH"):
        return Path(path)
    packed = sorted(CHARM_DIR.glob("falco_*.charm"))
    if not packed:
        raise FileNotFoundError("no falco_*.charm: run `make pack` or set CHARM_PATH")
    return packed[-1]


@pytest.fixture(name="juju", scope="module")
def juju_fixture() -> Iterator[jubilant.Juju]:
    with jubilant.temp_model() as juju:
        juju.wait_timeout = 20 * 60
        yield juju
