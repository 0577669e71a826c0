"""What is wrong or worth knowing about this unit, from facts observed on the machine. No Ops.

The charm's status is derived on every hook from these facts, never from what a hook
remembers having done: the payload in use or refused, the driver, the last DKMS build, the
last refusal of the config or of the custom rules, whether systemd reports Falco active, and
what http-endpoint provides. Findings are (status name, message) pairs; the charm turns them
into Juju statuses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import alert_destination
import coexistence
import custom_rules
import driver
import journal
import payload
import service
import start_backoff
from falcosidekick_http_endpoint import EndpointReading
from layout import SERVICE_NAME, Layout
from systemd_facts import UnitFacts

BLOCKED = "blocked"
ACTIVE = "active"
NO_PAYLOAD = f"no usable Falco payload: attach the '{payload.RESOURCE}' resource"


@dataclass(frozen=True)
class Options:
    """The options the findings depend on."""

    driver: str
    metrics_port: int


@dataclass(frozen=True)
class ServiceState:
    """What systemd says about the Falco service, and why it is down if it is."""

    facts: UnitFacts
    why_down: journal.Diagnosis | None = None


def _down(layout: Layout, service_state: ServiceState) -> str:
    """Return that Falco is down, why, and when the charm starts it again."""
    facts = service_state.facts
    state = facts.state
    if facts.waiting_to_restart:
        state += f" (systemd restarts it, {facts.n_restarts} restarts so far)"
    attempts = start_backoff.read(layout)
    if attempts.count >= start_backoff.FREE_RETRIES:
        retry = time.strftime("%H:%M UTC", time.gmtime(attempts.next_retry))
        state += f" after {attempts.count} starts, next start at {retry} or on a config change"
    why = service_state.why_down
    if why is None:
        return f"Falco is {state}: see `journalctl -u {SERVICE_NAME}`"
    return f"Falco is {state}: {why.summary} (`journalctl -u {SERVICE_NAME}`)"


def findings(
    layout: Layout, options: Options, reading: EndpointReading, service_state: ServiceState
) -> list[tuple[str, str]]:
    """Return every (status name, message) worth showing, most fundamental first."""
    driver_setting = options.driver
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
    own_pid = service_state.facts.main_pid
    taken = coexistence.port_problem(layout, options.metrics_port, own_pid)
    if taken is not None:
        found.append((BLOCKED, taken))
    if not service_state.facts.running:
        found.append((BLOCKED, _down(layout, service_state)))
    for notice in (
        driver.notice(layout, driver_setting),
        coexistence.other_falco_notice(layout, own_pid),
    ):
        if notice is not None:
            found.append((ACTIVE, notice))
    concern = alert_destination.concern(alert_destination.choose(reading, layout))
    if concern is not None:
        found.append(concern)
    return found
