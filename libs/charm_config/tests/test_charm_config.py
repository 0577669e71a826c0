"""Tests of the shared config loader: one status-ready line per mistake."""

from __future__ import annotations

from typing import Literal

import ops
import pydantic
import pytest
from charm_config import InvalidConfigError, load_charm_config
from ops import testing


class Config(pydantic.BaseModel):
    """Options with the kinds of constraints the charms use."""

    model_config = pydantic.ConfigDict(frozen=True)

    port: int = pydantic.Field(2801, ge=1, le=65535)
    minimum_priority: Literal["debug", "critical"] = "debug"
    custom_fields: str = ""

    @pydantic.field_validator("custom_fields")
    @classmethod
    def _pairs(cls, value: str) -> str:
        if value and ":" not in value:
            raise ValueError("use key:value pairs separated by commas")
        return value


class ConfigCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.outcome: Config | InvalidConfigError | None = None
        framework.observe(self.on.config_changed, self._load)

    def _load(self, _: ops.EventBase) -> None:
        try:
            self.outcome = load_charm_config(self, Config)
        except InvalidConfigError as exc:
            self.outcome = exc


OPTIONS = {
    "options": {
        "port": {"type": "int", "default": 2801},
        "minimum-priority": {"type": "string", "default": "debug"},
        "custom-fields": {"type": "string", "default": ""},
    }
}


def _load(config: dict[str, int | str]) -> Config | InvalidConfigError | None:
    ctx = testing.Context(ConfigCharm, meta={"name": "c"}, config=OPTIONS)
    with ctx(ctx.on.config_changed(), testing.State(config=config)) as manager:
        manager.run()
        return manager.charm.outcome


def test_valid_config_loads() -> None:
    """arrange: valid options with dashes. act: load. assert: the typed model."""
    assert _load({"minimum-priority": "critical"}) == Config(minimum_priority="critical")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"port": 70000},
            "invalid config 'port': Input should be less than or equal to 65535 (got 70000)",
        ),
        ({"port": 0}, "invalid config 'port': Input should be greater than or equal to 1 (got 0)"),
        (
            {"minimum-priority": "loud"},
            "invalid config 'minimum-priority': "
            "Input should be 'debug' or 'critical' (got 'loud')",
        ),
        (
            {"custom-fields": "x"},
            "invalid config 'custom-fields': use key:value pairs separated by commas",
        ),
    ],
)
def test_invalid_config_names_the_option(config: dict[str, int | str], message: str) -> None:
    """arrange: one bad option. act: load. assert: one line naming it as Juju spells it."""
    outcome = _load(config)

    assert isinstance(outcome, InvalidConfigError)
    assert str(outcome) == message
    assert "\n" not in str(outcome)


def test_long_values_are_shortened() -> None:
    """arrange: a huge bad value. act: load. assert: the message stays short."""
    outcome = _load({"minimum-priority": "x" * 10_000})

    assert isinstance(outcome, InvalidConfigError)
    assert len(str(outcome)) < 200
