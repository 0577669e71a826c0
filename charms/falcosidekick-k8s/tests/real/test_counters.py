"""The real sidekick's counters: which series exist before the first event, and at what value.

The promtool tests of the shipped rules and panels (tests/component/test_promtool.py) feed
series built by ``counter_shapes.minutely``: absent before the first event, then born at
``BORN_AT``. This is the proof that the real Falcosidekick's series look like that.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

from counter_shapes import BORN_AT
from deployment import Deployed
from real_unit import falco_alert, post
from sidekick import SERVICE

INPUTS = "falcosecurity_falcosidekick_inputs_total"
OUTPUTS = "falcosecurity_falcosidekick_outputs_total"
EVENTS = "falcosecurity_falcosidekick_falco_events_total"
_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} (\S+)$")


def samples(metrics: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Return the sidekick's own samples of a text exposition: (name, labels) -> value."""
    found = {}
    for line in metrics.splitlines():
        sample = _SAMPLE.match(line)
        if sample and sample[1] in (INPUTS, OUTPUTS, EVENTS):
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', sample[2]))
            found[sample[1], labels] = float(sample[3])
    return found


def series(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def new_series(before: str, after: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Return the series in ``after`` that ``before`` did not have, with their values."""
    old = samples(before)
    return {key: value for key, value in samples(after).items() if key not in old}


def test_counters_are_born_at_one_on_their_first_event(
    deployments: Callable[[str], Deployed],
) -> None:
    """arrange: a fresh real sidekick (TLS mode). act: a rejected post, a failed, a good delivery.

    assert: no sidekick series before any event; each event makes new series appear at 1,
    with no 0 sample before them (the shape the promtool series assume).
    """
    deployed = deployments("certificates")
    deployed.pebble.client().restart_services([SERVICE])  # counters start from nothing
    unit, loki = deployed.unit, deployed.loki
    url, ca = deployed.alert_url_and_ca()
    fresh = unit.metrics()

    assert samples(fresh) == {}

    assert post(url, b"{}", ca)[0] == 400
    rejected = unit.metrics()
    loki.status = 500
    try:
        assert post(url, json.dumps(falco_alert("Counter birth")).encode(), ca)[0] == 200
        failed = scrape_with(unit.metrics, series(OUTPUTS, destination="loki", status="error"))
    finally:
        loki.status = 204
    assert post(url, json.dumps(falco_alert("Counter birth")).encode(), ca)[0] == 200
    delivered = scrape_with(unit.metrics, series(OUTPUTS, destination="loki", status="ok"))

    assert new_series(fresh, rejected) == {
        series(INPUTS, source="requests", status="rejected"): BORN_AT,
        # A rejected body is counted as a Falco event too, with empty rule and priority.
        series(
            EVENTS,
            hostname="unknown",
            rule="",
            priority="0",
            priority_raw="",
            source="syscalls",
            k8s_ns_name="",
            k8s_pod_name="",
        ): BORN_AT,
    }
    assert new_series(rejected, failed) == {
        series(INPUTS, source="requests", status="accepted"): BORN_AT,
        series(OUTPUTS, destination="loki", status="error"): BORN_AT,
        series(
            EVENTS,
            hostname="fixture-host",
            rule="Counter birth",
            priority="4",
            priority_raw="warning",
            source="syscall",
            k8s_ns_name="",
            k8s_pod_name="",
        ): BORN_AT,
    }
    assert new_series(failed, delivered) == {
        series(OUTPUTS, destination="loki", status="ok"): BORN_AT,
    }


def scrape_with(scrape: Callable[[], str], key: tuple[str, frozenset[tuple[str, str]]]) -> str:
    """Return a scrape that has ``key`` (deliveries are counted after the post is answered)."""
    deadline = time.monotonic() + 30
    while True:
        text = scrape()
        if key in samples(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.05)
