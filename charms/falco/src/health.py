"""What is wrong or worth knowing about this unit, from facts observed on the machine. No Ops.

The charm's status is derived on every hook from these facts, never from what a hook
remembers having done: the payload in use or refused, the driver, the last DKMS build, the
last refusal of the config or of the custom rules, whether systemd reports Falco active, and
what http-endpoint provides. Findings are (status name, message) pairs; the charm turns them
into Juju statuses.
"""

from __future__ import annotations

import time

import alert_destination
import custom_rules
import driver
import payload
import service
import start_backoff
from falcosidekick_http_endpoint import EndpointReading
from layout import SERVICE_NAME, Layout
from systemd_facts import UnitFacts

BLOCKED = "blocked"
NO_PAYLOAD = f"no usable Falco payload: attach the '{payload.RESOURCE}' resource"


def _down(layout: Layout, facts: UnitFacts) -> str:
    """Return why Falco is down, as far as systemd says, and when the charm retries."""
    state = facts.state
    if facts.waiting_to_restart:
        state += f" (systemd restarts it, {facts.n_restarts} restarts so far)"
    attempts = start_backoff.read(layout)
    if attempts.count >= start_backoff.FREE_RETRIES:
        retry = time.strftime("%H:%M UTC", time.gmtime(attempts.next_retry))
        state += f" after {attempts.count} starts, next start at {retry} or on a config change"
    return f"Falco is {state}: see `journalctl -u {SERVICE_NAME}`"


def findings(
    layout: Layout, driver_setting: str, reading: EndpointReading, facts: UnitFacts
) -> list[tuple[str, str]]:
    """Return every (status name, message) worth showing, most fundamental first."""
    found: list[tuple[str, str]] = []
    refused = payload.rejection(layout)
    if refused is not None:
        found.append((BLOCKED, refused.message))
    current = payload.installed(layout)
    if current is None:
        return [*found, (BLOCKED, NO_PAYLOAD)]
    problems = (
        driver.problem(layout, driver_setting, current),
        service.config_rejection(layout),
        custom_rules.read_report(layout).problem,
    )
    found.extend((BLOCKED, problem) for problem in problems if problem)
    if not facts.running:
        found.append((BLOCKED, _down(layout, facts)))
    concern = alert_destination.concern(alert_destination.choose(reading, layout))
    if concern is not None:
        found.append(concern)
    return found
