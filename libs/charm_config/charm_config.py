"""Load a charm's Juju config into a pydantic model, turning mistakes into one clear message.

``CharmBase.load_config(..., errors="blocked")`` would put pydantic's multi-line report in the
status. Operators need one line that names the option as they typed it in ``juju config`` and
says what is allowed, so both charms load their config through :func:`load_charm_config`.

Source of truth: ``libs/charm_config/`` in the falco-operators repository; the charms carry
generated copies under ``lib/`` (``make vendor``).
"""

from __future__ import annotations

from typing import TypeVar

import ops
import pydantic

ConfigT = TypeVar("ConfigT", bound=pydantic.BaseModel)

_MAX_SHOWN_VALUE = 40


class InvalidConfigError(Exception):
    """The operator's config cannot be used; ``str()`` is a status-ready message."""

    def __init__(self, option: str, problem: str):
        super().__init__(f"invalid config '{option}': {problem}")
        self.option = option
        self.problem = problem


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN_VALUE else text[: _MAX_SHOWN_VALUE - 3] + "..."


def describe(error: pydantic.ValidationError) -> InvalidConfigError:
    """Return the first problem of ``error`` with the Juju option name it belongs to."""
    first = error.errors(include_url=False)[0]
    location = [str(part) for part in first["loc"]]
    option = location[0].replace("_", "-") if location else "config"
    problem = first["msg"]
    # pydantic prefixes the messages of ValueErrors raised by validators.
    problem = problem.removeprefix("Value error, ")
    if first["type"] not in ("value_error", "missing") and "input" in first:
        problem = f"{problem} (got {_shown(first['input'])})"
    return InvalidConfigError(option, problem)


def load_charm_config(charm: ops.CharmBase, model: type[ConfigT]) -> ConfigT:
    """Return ``charm``'s config as ``model``; raise :class:`InvalidConfigError` if invalid."""
    try:
        return charm.load_config(model)
    except pydantic.ValidationError as exc:
        raise describe(exc) from None
