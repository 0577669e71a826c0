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
# The largest value a text option takes: as much as one rules file of the repository.
MAX_TEXT_OPTION_BYTES = git_sync.MAX_FILE_BYTES
MAX_KNOWN_HOSTS_BYTES = 64 * 1024
# A "tag:" with nothing but blanks after it, up to the end of its item.
_EMPTY_TAG = re.compile(r"tag:[^\S\n]*(?:,|\n|$)")
# Control characters besides the tab and line breaks a multi-line option holds.
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _unprintable(text: str) -> str | None:
    """Return the first character of ``text`` that no one types in an option, if any.

    Tabs and line breaks are text; anything else that does not print (NUL, a terminal
    escape, a right-to-left override, a line separator Python splits on and ssh or Falco
    does not) would make what the charm checks differ from what a program reads.
    """
    match = _ASCII_CONTROL.search(text)
    if match is not None:
        return str(match.group())
    if not text.isascii():
        chars: list[str] = _NON_ASCII.findall(text)
        for char in chars:
            if not char.isprintable():
                return char
    return None


def _check_text(value: str, limit: int) -> str:
    """Refuse a text option longer than ``limit`` bytes or holding a control character."""
    size = len(value.encode(errors="surrogatepass"))
    if size > limit:
        raise ValueError(f"longer than {limit // 1024} KiB ({size // 1024} KiB)")
    char = _unprintable(value)
    if char is not None:
        raise ValueError(f"holds a control character ({char!a}): remove it")
    return value


def _check_selection(text: str) -> None:
    """Refuse a ``tag:`` without a tag; linear in ``text``, without building the selectors."""
    for match in _EMPTY_TAG.finditer(text):
        item_start = max(text.rfind(",", 0, match.start()), text.rfind("\n", 0, match.start()))
        if not text[item_start + 1 : match.start()].strip():
            raise ValueError("'tag:' needs a tag name, e.g. tag:network")


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
        if value.strip(repository.BLANKS):
            repository.parse_repository(value)
        return value.strip(repository.BLANKS)

    @pydantic.field_validator("custom_config_repo_known_hosts")
    @classmethod
    def _known_hosts(cls, value: str) -> str:
        # ssh splits lines at "\n" only, and would read a "\r" as part of the key.
        value = _check_text(value, MAX_KNOWN_HOSTS_BYTES).replace("\r\n", "\n")
        if "\r" in value:
            raise ValueError("holds a carriage return inside a line: one host key per line")
        problem = repository.known_hosts_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @pydantic.field_validator("custom_rules")
    @classmethod
    def _inline_rules(cls, value: str) -> str:
        if not value.strip():
            return ""
        _check_text(value, MAX_TEXT_OPTION_BYTES)
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
        # Checked on every hook: kept linear and light; the selectors are built only when
        # falco.yaml is rendered.
        _check_text(value, MAX_TEXT_OPTION_BYTES)
        _check_selection(value)
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
