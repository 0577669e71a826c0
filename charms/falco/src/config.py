"""The falco charm's Juju config, validated in one place.

Field names are the option names with ``-`` turned into ``_``; ``load_charm_config`` turns a
validation error back into a one-line status naming the option as the operator typed it.
Only what one option can say about itself is checked here. Whether the repository can be
reached, the secrets read and the rules loaded by Falco is found out when syncing and
validating, and reported without blocking unrelated changes.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import falco_config
import git_sync
import pydantic
import repository
import yaml
from messages import shorten

Driver = Literal["modern_ebpf", "kmod", "auto"]
# Falco's priority names (falco.yaml `priority`), lowest kept level included.
Priority = Literal[
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "info",
    "debug",
]

# Falco's ring-buffer presets (engine.<kind>.buf_size_preset): 1 is 1 MiB per buffer and each
# step doubles, up to 10 = 512 MiB; 0 is reserved.
MIN_BUFFER_PRESET = 1
MAX_BUFFER_PRESET = 10
MINUTES_PER_WEEK = 7 * 24 * 60
# Falco's webserver (metrics, healthz) listens on loopback; any TCP port Falco can bind.
MAX_PORT = 65535
RULE_ITEM_KEYS = ("rule", "macro", "list", "required_engine_version", "required_plugin_versions")
_SELECTOR_SEPARATORS = re.compile(r"[,\n]")
TAG_PREFIX = "tag:"


def _selectors(text: str) -> tuple[dict[str, str], ...]:
    """Return ``rule``/``tag`` selectors from comma- or newline-separated items."""
    found = []
    for raw in _SELECTOR_SEPARATORS.split(text):
        item = raw.strip()
        if not item:
            continue
        if item.startswith(TAG_PREFIX):
            tag = item.removeprefix(TAG_PREFIX).strip()
            if not tag:
                raise ValueError("'tag:' needs a tag name, e.g. tag:network")
            found.append({"tag": tag})
        else:
            found.append({"rule": item})
    return tuple(found)


class FalcoConfig(pydantic.BaseModel):
    """Operator choices: the engine, the outputs, the custom rules, the metrics port."""

    model_config = pydantic.ConfigDict(frozen=True, extra="ignore")

    driver: Driver = "modern_ebpf"
    buffer_size_preset: int = pydantic.Field(default=4, ge=MIN_BUFFER_PRESET, le=MAX_BUFFER_PRESET)
    outputs_queue_capacity: int = pydantic.Field(default=100_000, ge=1)
    custom_config_repository: str = ""
    custom_config_repo_ssh_key: str = ""
    custom_config_repo_known_hosts: str = ""
    custom_config_repo_token: str = ""
    custom_config_repo_sync_interval: int = pydantic.Field(default=15, ge=1, le=MINUTES_PER_WEEK)
    custom_rules: str = ""
    enabled_rules: str = ""
    disabled_rules: str = ""
    minimum_priority: Priority = "debug"
    metrics_port: int = pydantic.Field(default=8765, ge=1, le=MAX_PORT)
    alert_log: bool = True

    @pydantic.field_validator(
        "custom_config_repo_ssh_key", "custom_config_repo_token", mode="before"
    )
    @classmethod
    def _secret_id(cls, value: Any) -> Any:
        # load_config hands `type: secret` options over as lazy ops.Secret objects. Only the
        # id is kept: the content is read when git needs it, not on every hook.
        return getattr(value, "id", value) or ""

    @pydantic.field_validator("custom_config_repository")
    @classmethod
    def _repository_url(cls, value: str) -> str:
        if value.strip():
            repository.parse_repository(value)
        return value.strip()

    @pydantic.field_validator("custom_config_repo_known_hosts")
    @classmethod
    def _known_hosts(cls, value: str) -> str:
        problem = repository.known_hosts_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @pydantic.field_validator("custom_rules")
    @classmethod
    def _inline_rules(cls, value: str) -> str:
        if not value.strip():
            return ""
        try:
            items: Any = falco_config.load_yaml(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"not valid YAML: {shorten(str(exc).splitlines()[0])}") from exc
        if items is None:
            return ""
        if not isinstance(items, list) or not all(
            isinstance(item, dict) and any(key in item for key in RULE_ITEM_KEYS) for item in items
        ):
            raise ValueError("expected a YAML list of Falco rules, macros and lists")
        return value

    @pydantic.field_validator("enabled_rules", "disabled_rules")
    @classmethod
    def _selection(cls, value: str) -> str:
        _selectors(value)
        return value

    @property
    def repo_settings(self) -> git_sync.Settings | None:
        """How to sync the custom config repository, if one is configured."""
        url = self.custom_config_repository
        if not url:
            return None
        return git_sync.Settings(
            repository=repository.parse_repository(url),
            known_hosts=self.custom_config_repo_known_hosts,
            ssh_key_secret=self.custom_config_repo_ssh_key,
            token_secret=self.custom_config_repo_token,
            interval_s=self.custom_config_repo_sync_interval * 60,
        )

    @property
    def rule_selection(self) -> tuple[dict[str, dict[str, str]], ...]:
        """Falco's `rules:` list: disable first, then enable, so that enabling wins."""
        disabled = [{"disable": item} for item in _selectors(self.disabled_rules)]
        enabled = [{"enable": item} for item in _selectors(self.enabled_rules)]
        return (*disabled, *enabled)
