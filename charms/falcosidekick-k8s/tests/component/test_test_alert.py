"""The test-alert action where no sidekick answers, and the parsing of the real counters.

What the action reports against a running Falcosidekick is checked against the real one in
tests/real (test_tls_modes, test_sidekick_client).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sidekick_states as states
from charm import FalcosidekickCharm
from ops import testing
from sidekick_client import DeliveryCheckError, deliver_test_event, output_counts

Ctx = testing.Context[FalcosidekickCharm]
LOKI_URL = "http://otelcol-0.otelcol-endpoints.fmodel.svc.cluster.local:3500/loki/api/v1/push"
# The counters of a real Falcosidekick 2.34.1 with a Loki and a webhook output (the text
# exposition as it serves it).
REAL_METRICS = """\
# HELP falcosecurity_falcosidekick_outputs_total
# TYPE falcosecurity_falcosidekick_outputs_total counter
falcosecurity_falcosidekick_outputs_total{destination="loki",status="error"} 2
falcosecurity_falcosidekick_outputs_total{destination="loki",status="ok"} 4
falcosecurity_falcosidekick_outputs_total{destination="webhook",status="ok"} 7
"""


def closed_port() -> int:
    """Return a loopback TCP port nothing listens on right now."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def test_output_counts_reads_only_the_destination_asked() -> None:
    """arrange: real counters of two outputs. act: parse for loki. assert: loki's ok and error."""
    counts = output_counts(REAL_METRICS, "loki")

    assert (counts.ok, counts.error) == (4.0, 2.0)
    assert output_counts(REAL_METRICS, "slack") == output_counts("", "loki")
    assert output_counts("", "loki").ok == 0.0  # no series before the first delivery


def test_unreachable_sidekick_is_an_error() -> None:
    """arrange: nothing listening. act: deliver. assert: DeliveryCheckError naming the URL."""
    metrics_url = f"http://127.0.0.1:{closed_port()}/metrics"

    with pytest.raises(DeliveryCheckError, match=r"cannot reach falcosidekick at http://127"):
        deliver_test_event("http://127.0.0.1:9", metrics_url, timeout_s=0.1)


def running_behind_ingress(ctx: Ctx, root: Path, port: int) -> testing.State:
    """Return the state of a sidekick serving plain HTTP on ``port`` behind an ingress."""
    state = states.state(
        root,
        config={"port": port},
        relations={
            states.ingress_relation("https://ingress.example/x"),
            states.loki_relation(LOKI_URL),
        },
    )
    return ctx.run(ctx.on.pebble_ready(states.container(root)), state)


def test_action_needs_an_output_and_a_running_sidekick(ctx: Ctx, root: Path) -> None:
    """arrange: no output; Loki but nothing deployed. act: test-alert. assert: clear failures."""
    no_loki = states.state(root)
    not_running = states.state(root, relations={states.loki_relation(LOKI_URL)})

    with pytest.raises(testing.ActionFailed) as without_loki:
        ctx.run(ctx.on.action("test-alert"), no_loki)
    with pytest.raises(testing.ActionFailed) as without_sidekick:
        ctx.run(ctx.on.action("test-alert"), not_running)

    assert without_loki.value.message == (
        "no output to deliver to: integrate 'send-loki-logs' or set 'outputs'"
    )
    assert without_sidekick.value.message == "falcosidekick is not running"


def test_action_fails_when_the_sidekick_does_not_answer(ctx: Ctx, root: Path) -> None:
    """arrange: config deployed on a port where nothing listens. act: test-alert. assert: fails."""
    port = closed_port()
    state = running_behind_ingress(ctx, root, port)

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("test-alert", params={"timeout": 1}), state)

    assert failure.value.message.startswith(
        f"cannot reach falcosidekick at http://127.0.0.1:{port}"
    )
