"""State-transition tests of the falco charm."""

from __future__ import annotations

from charm import FalcoCharm
from ops import testing


def test_status_says_falco_is_not_installed() -> None:
    """arrange: a fresh unit. act: install. assert: Blocked, never a fake Active."""
    ctx = testing.Context(FalcoCharm)

    out = ctx.run(ctx.on.install(), testing.State())

    assert out.unit_status == testing.BlockedStatus(
        "Falco is not installed: no payload in this revision"
    )
