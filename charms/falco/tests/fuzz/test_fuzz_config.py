"""Fuzz every config option of a Falco unit in service.

Juju checks only the type of an option: any string reaches a string option, any 64-bit
integer an int option. Properties:

* whatever the values, no hook fails, the status is Active, Blocked, Waiting or Maintenance,
  one line that says why when not Active, Falco is restarted or reloaded once at most, and
  relation data is written only when the metrics port the collector scrapes moved;
* a value wrong by construction gives Blocked naming the option and changes nothing at all:
  no file on the machine, no service call, no relation data; the running config stays;
* values right by construction are what Falco runs with;
* a character no one types (a control character, a line separator, a right-to-left
  override) anywhere in any string option is Blocked naming the option, and the status
  shows it escaped, never raw.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml
from falco_rig import KNOWN_HOSTS
from garbage import (
    ANY_CONFIG,
    ANY_INT,
    ANY_TEXT,
    DRIVERS,
    INVALID_CUSTOM_RULES,
    INVALID_KNOWN_HOSTS,
    INVALID_REPOSITORY_URLS,
    INVALID_SELECTIONS,
    PRIORITIES,
    UNTYPABLE,
)
from git_repos import rule
from hypothesis import given
from hypothesis import strategies as st
from ops import testing
from worlds import Outcome, World, examples

MAX_PRESET, MAX_INTERVAL, MAX_PORT = 10, 7 * 24 * 60, 65535
DEFAULT_METRICS_PORT = 8765


def configured(world: World, config: dict[str, Any]) -> Outcome:
    """Dispatch config-changed with exactly ``config`` on the world."""
    state = dataclasses.replace(world.state, config=config)
    return world.dispatch(world.ctx.on.config_changed(), state)


@examples(1.2)
@given(config=ANY_CONFIG)
def test_any_config_is_survived(related_world: World, config: dict[str, Any]) -> None:
    """arrange: Falco in service. act: config-changed with any values. assert: properties."""
    outcome = configured(related_world, config)

    outcome.assert_sane()
    if outcome.refused_as_invalid_config:
        outcome.assert_untouched()
    else:
        outcome.assert_at_most_one_action()
        # The collector hears of the metrics port only, and only when it moved.
        moved = config.get("metrics-port", DEFAULT_METRICS_PORT) != DEFAULT_METRICS_PORT
        assert outcome.relation_writes == int(moved)


INVALID_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "driver": ANY_TEXT.filter(lambda value: value not in DRIVERS),
    "buffer-size-preset": ANY_INT.filter(lambda value: not 1 <= value <= MAX_PRESET),
    "outputs-queue-capacity": ANY_INT.filter(lambda value: value < 1),
    "custom-config-repo-sync-interval": ANY_INT.filter(
        lambda value: not 1 <= value <= MAX_INTERVAL
    ),
    "metrics-port": ANY_INT.filter(lambda value: not 1 <= value <= MAX_PORT),
    "minimum-priority": ANY_TEXT.filter(lambda value: value not in PRIORITIES),
    "custom-rules": INVALID_CUSTOM_RULES,
    "enabled-rules": INVALID_SELECTIONS,
    "disabled-rules": INVALID_SELECTIONS,
    "custom-config-repository": INVALID_REPOSITORY_URLS,
    "custom-config-repo-known-hosts": INVALID_KNOWN_HOSTS,
}


@examples(4)
@given(data=st.data(), option=st.sampled_from(sorted(INVALID_VALUES)))
def test_wrong_value_is_blocked_and_changes_nothing(
    related_world: World, data: st.DataObject, option: str
) -> None:
    """arrange: in service. act: one option wrong, the others as they were. assert.

    Blocked naming the wrong option; the machine, the service and the relation data are
    exactly as before.
    """
    value = data.draw(INVALID_VALUES[option], label=option)
    config = {**related_world.state.config, option: value}

    outcome = configured(related_world, config)

    outcome.assert_sane()
    assert isinstance(outcome.out.unit_status, testing.BlockedStatus)
    assert outcome.out.unit_status.message.startswith(f"invalid config '{option}'")
    outcome.assert_untouched()


@examples(0.25)
@given(
    preset=st.integers(1, MAX_PRESET),
    capacity=st.one_of(st.integers(1, 10**6), st.just(2**63 - 1)),
    port=st.integers(1, MAX_PORT),
    priority=st.sampled_from(PRIORITIES),
    alert_log=st.booleans(),
)
def test_right_values_are_what_falco_runs_with(
    related_world: World, preset: int, capacity: int, port: int, priority: str, alert_log: bool
) -> None:
    """arrange: in service. act: every numeric option right. assert: rendered as given."""
    config = {
        **related_world.state.config,
        "buffer-size-preset": preset,
        "outputs-queue-capacity": capacity,
        "metrics-port": port,
        "minimum-priority": priority,
        "alert-log": alert_log,
    }

    outcome = configured(related_world, config)
    rendered = yaml.safe_load(outcome.rendered)

    outcome.assert_sane()
    outcome.assert_at_most_one_action()
    assert outcome.out.unit_status == testing.ActiveStatus()
    assert rendered["engine"]["modern_ebpf"]["buf_size_preset"] == preset
    assert rendered["outputs_queue"]["capacity"] == capacity
    assert rendered["webserver"]["listen_port"] == port
    assert rendered["priority"] == priority
    assert rendered["file_output"]["enabled"] is alert_log


# A value each string option takes, as an operator types it.
TYPED_TEXT = {
    "driver": "nodriver",
    "minimum-priority": "warning",
    "custom-rules": rule("Typed rule"),
    "enabled-rules": "Terminal shell in container,tag:network",
    "disabled-rules": "tag:mitre_discovery\nRead sensitive file untrusted",
    "custom-config-repository": "https://git.example/org/rules.git@v1",
    "custom-config-repo-known-hosts": KNOWN_HOSTS,
}


@examples(1.5)
@given(option=st.sampled_from(sorted(TYPED_TEXT)), char=UNTYPABLE, where=st.integers(0, 400))
def test_a_character_no_one_types_is_blocked_in_every_string_option(
    related_world: World, option: str, char: str, where: int
) -> None:
    """arrange: in service. act: a typed value with an untypable character put anywhere.

    assert: Blocked naming the option, the character not shown raw; nothing changed.
    """
    typed = TYPED_TEXT[option]
    at = where % (len(typed) + 1)
    config = {**related_world.state.config, option: typed[:at] + char + typed[at:]}

    outcome = configured(related_world, config)

    outcome.assert_sane()
    assert isinstance(outcome.out.unit_status, testing.BlockedStatus)
    assert outcome.out.unit_status.message.startswith(f"invalid config '{option}'")
    assert char not in outcome.out.unit_status.message
    outcome.assert_untouched()
