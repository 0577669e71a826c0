"""The test-alert client (sidekick_client) against the real Falcosidekick and its counters.

Falcosidekick answers a posted event before Loki is tried; only its delivery counters say
what Loki did. The client is run against the real binary, whose Loki answers 204, refuses
(500) or never answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import fake_loki
import pytest
from deployment import Deployed
from local_net import free_port
from sidekick import LokiOutput, Settings
from sidekick_client import DeliveryCheckError, deliver_test_event
from sidekick_process import real_sidekick
from tls_material import make_ca


@pytest.fixture(name="running", scope="module")
def running_fixture(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, fake_loki.FakeLoki]]:
    """A real sidekick on the loopback pushing to a fake Loki; yields its URL and the Loki."""
    with ExitStack() as stack:
        loki = stack.enter_context(fake_loki.serving())
        settings = Settings(free_port(), False, loki=LokiOutput(loki.url))
        outcome = stack.enter_context(real_sidekick(settings, tmp_path_factory.mktemp("sk")))
        assert outcome.exit_code is None, outcome.output
        yield f"http://127.0.0.1:{settings.port}", loki


@pytest.mark.parametrize(
    ("loki_answer", "accepted", "failed"),
    [(204, True, False), (500, False, True), ("silence", False, False)],
)
def test_delivery_is_read_from_the_real_counters(
    running: tuple[str, fake_loki.FakeLoki], loki_answer: int | str, accepted: bool, failed: bool
) -> None:
    """arrange: Loki answers 204, 500 or nothing. act: deliver a test event. assert: as counted."""
    base, loki = running
    if loki_answer == "silence":
        loki.hold = threading.Event()
    else:
        loki.status = int(loki_answer)
    try:
        # Silence is waited for 1 s; an answer is recorded within the bound whatever it is.
        timeout = 1.0 if loki_answer == "silence" else 30.0
        delivery = deliver_test_event(base, f"{base}/metrics", timeout_s=timeout).of("loki")
    finally:
        if loki.hold is not None:
            loki.hold.set()
        loki.hold, loki.status = None, 204

    assert (delivery.accepted, delivery.failed) == (accepted, failed)


def test_tls_sidekick_is_verified_against_its_ca(deployments: Callable[[str], Deployed]) -> None:
    """arrange: the real sidekick serving the charm's certificate. act: deliver with its CA.

    assert: accepted; with another CA the client cannot reach it.
    """
    deployed = deployments("certificates")
    alert_base = f"https://127.0.0.1:{deployed.unit.port}"
    metrics_url = f"http://127.0.0.1:{deployed.unit.no_tls_port}/metrics"

    report = deliver_test_event(alert_base, metrics_url, deployed.ca.cert_pem, timeout_s=30)
    with pytest.raises(DeliveryCheckError, match=r"cannot reach falcosidekick at https://127"):
        deliver_test_event(alert_base, metrics_url, make_ca("Other").cert_pem)

    assert report.of("loki").accepted
