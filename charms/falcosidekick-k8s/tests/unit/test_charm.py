"""State-transition tests of the falcosidekick-k8s charm."""

from __future__ import annotations

import pytest
from charm import FalcosidekickCharm
from ops import testing


@pytest.fixture(name="ctx")
def ctx_fixture() -> testing.Context[FalcosidekickCharm]:
    return testing.Context(FalcosidekickCharm)


def test_waits_for_pebble(ctx: testing.Context[FalcosidekickCharm]) -> None:
    """arrange: TLS related, Pebble not up. act: start. assert: Waiting for it."""
    state = testing.State(
        relations={testing.Relation("certificates")},
        containers={testing.Container("falcosidekick", can_connect=False)},
    )

    out = ctx.run(ctx.on.start(), state)

    assert out.unit_status == testing.WaitingStatus(
        "waiting for Pebble in the falcosidekick container"
    )


def test_asks_for_tls(ctx: testing.Context[FalcosidekickCharm]) -> None:
    """arrange: Pebble up, no TLS relation. act: start. assert: Blocked naming both relations."""
    state = testing.State(containers={testing.Container("falcosidekick", can_connect=True)})

    out = ctx.run(ctx.on.start(), state)

    assert out.unit_status == testing.BlockedStatus(
        "no TLS: integrate with 'certificates' or 'ingress'"
    )


def test_invalid_port_is_blocked(ctx: testing.Context[FalcosidekickCharm]) -> None:
    """arrange: port out of range. act: config-changed. assert: Blocked naming 'port'."""
    state = testing.State(
        config={"port": 70000},
        containers={testing.Container("falcosidekick", can_connect=True)},
    )

    out = ctx.run(ctx.on.config_changed(), state)

    assert out.unit_status == testing.BlockedStatus(
        "invalid config 'port': Input should be less than or equal to 65535 (got 70000)"
    )


def test_never_claims_active_before_it_runs_anything(
    ctx: testing.Context[FalcosidekickCharm],
) -> None:
    """arrange: Pebble and a TLS relation. act: start. assert: still Blocked, honestly."""
    state = testing.State(
        relations={testing.Relation("certificates")},
        containers={testing.Container("falcosidekick", can_connect=True)},
    )

    out = ctx.run(ctx.on.start(), state)

    assert out.unit_status == testing.BlockedStatus(
        "Falcosidekick is not managed by this revision"
    )
