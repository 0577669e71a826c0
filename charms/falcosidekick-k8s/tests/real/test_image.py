"""Images the charm cannot run, on the real Pebble: Blocked naming the resource, nothing run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sidekick_states as states
from ops import testing
from real_pebble import SIDEKICK_BINARY, RealPebble
from real_unit import RealUnit
from sidekick import MISSING_BINARY, MISSING_USER


@pytest.fixture(name="pebble")
def pebble_fixture(request: pytest.FixtureRequest) -> Iterator[RealPebble]:
    pebble = RealPebble(with_sidekick_user=request.param == "with user")
    yield pebble
    pebble.stop()


@pytest.mark.parametrize("pebble", ["without user"], indirect=True)
def test_image_without_the_user_is_blocked_by_the_real_pebble(pebble: RealPebble) -> None:
    """arrange: an image without user falcosidekick. act: pebble-ready. assert: Blocked.

    The real Pebble refuses to push a file owned by a user its container does not know.
    """
    unit = RealUnit.start(pebble, {}, {states.ingress_relation("http://127.0.0.1:1/")})

    assert unit.state.unit_status == testing.BlockedStatus(MISSING_USER)
    assert pebble.service_pids() == []
    assert not (pebble.root / "etc/falcosidekick/falcosidekick.yaml").exists()


@pytest.mark.parametrize("pebble", ["with user"], indirect=True)
def test_image_without_the_binary_is_blocked_and_nothing_is_written(pebble: RealPebble) -> None:
    """arrange: an image without falcosidekick. act: pebble-ready. assert: Blocked, no files."""
    (pebble.root / SIDEKICK_BINARY.lstrip("/")).unlink()

    unit = RealUnit.start(pebble, {}, {states.ingress_relation("http://127.0.0.1:1/")})

    assert unit.state.unit_status == testing.BlockedStatus(MISSING_BINARY)
    assert pebble.service_pids() == []
    assert pebble.client().get_plan().services == {}
    assert not (pebble.root / "etc/falcosidekick").exists()
