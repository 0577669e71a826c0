"""Fixtures of the Juju integration tests: a temporary model and the packed charm.

These tests need a Juju controller with an LXD cloud (`make integration`). Without one
every test fails at once with a message saying so: they never pass, and never skip, for
lack of a Juju.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jubilant
import pytest

CHARM_DIR = Path(__file__).resolve().parents[2]
NEEDS = "The falco integration tests need a Juju controller with an LXD cloud and a packed charm"


def _require_controller() -> None:
    """Fail (never skip) with what is missing, before jubilant's less helpful error."""
    if shutil.which("juju") is None:
        pytest.fail(f"{NEEDS}: there is no `juju` command here.", pytrace=False)
    try:
        subprocess.run(
            ["juju", "show-controller"], capture_output=True, text=True, timeout=120, check=True
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        stderr = (getattr(exc, "stderr", "") or "").strip()
        pytest.fail(f"{NEEDS}: `juju show-controller` failed: {stderr}", pytrace=False)


@pytest.fixture(name="charm", scope="session")
def charm_fixture() -> Path:
    """The packed charm: $CHARM_PATH, or the one `charmcraft pack` left in the charm dir."""
    if path := os.environ.get("CHARM_PATH"):
        return Path(path)
    packed = sorted(CHARM_DIR.glob("falco_*.charm"))
    if not packed:
        pytest.fail(
            f"{NEEDS}: no falco_*.charm (run `make pack` or set CHARM_PATH)", pytrace=False
        )
    return packed[-1]


@pytest.fixture(name="juju", scope="module")
def juju_fixture() -> Iterator[jubilant.Juju]:
    _require_controller()
    with jubilant.temp_model() as juju:
        juju.wait_timeout = 20 * 60
        yield juju
