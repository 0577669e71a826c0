"""Build the one falco.yaml the charm renders, as data. No Ops, no I/O.

Every key Falco reads is set here on purpose: Falco's code defaults differ from its shipped
falco.yaml (``engine.kind`` defaults to kmod, stdout and syslog outputs off, ...), so a key
left out is a decision too. Each ``_section`` function owns one concern. Config overrides
from the custom config repository are merged last, the way Falco merges its ``config_files``
by default ("append": mappings are merged key by key, lists are extended, other values
replaced); custom_rules decides which keys they may touch.

Falco hot-restarts itself when the watched falco.yaml is replaced. ``RESTART_KEYS`` lists
the sections whose change the charm applies with a full service restart instead: the
engine, the plugins, where alerts go (the http CA file is not watched by Falco) and the
webserver's listener.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from payload import Payload

CONTAINER_PLUGIN_INIT = {"label_max_len": 100, "with_size": False}
# Falco retries a POST only while libcurl reports a timeout. Five retries ride out a sidekick
# pod being rescheduled; beyond that the single output worker would stall every output, and
# the bounded queue is the better place to absorb a longer outage (it drops and counts).
HTTP_MAX_CONSECUTIVE_TIMEOUTS = 5
# Milliseconds an output may block before Falco logs "all output channels are blocked".
OUTPUT_TIMEOUT_MS = 2000
# The collector scrapes from the same machine: nothing else may reach metrics or healthz.
WEBSERVER_ADDRESS = "127.0.0.1"
DEFAULT_METRICS_PORT = 8765
HEALTHZ_PATH = "/healthz"
# /metrics is computed at each scrape; this interval only paces the metrics snapshots Falco
# can also emit as an alert or a file, which are off below. Upstream's default, so that
# the snapshot timer stays idle.
METRICS_INTERVAL = "1h"

RESTART_KEYS = (
    "engine",
    "load_plugins",
    "plugins",
    "stdout_output",
    "syslog_output",
    "file_output",
    "http_output",
    "webserver",
)

HEADER = (
    "# Rendered by the falco Juju charm; local edits are overwritten.\n"
    "# Change Falco through `juju config` and relations instead.\n"
)


@dataclass(frozen=True)
class Topology:
    """Where this Falco runs in Juju; added to every alert so its origin is never lost."""

    model: str
    model_uuid: str
    application: str
    unit: str
    charm_name: str


@dataclass(frozen=True)
class HttpDestination:
    """Where alerts are POSTed, and the CA file to verify the server with (None: system)."""

    url: str
    ca_file: Path | None = None
    # The machine's trust store (OpenSSL's hashed directory).
    ca_path: Path = Path("/etc/ssl/certs")
    # The client certificate chain and key Falco presents (mutual TLS); None: none.
    client_cert: Path | None = None
    client_key: Path | None = None


@dataclass(frozen=True)
class RuleInputs:
    """Which rules Falco loads and keeps, beyond its defaults."""

    # Files or folders loaded after the default rules, in this order.
    extra_rules: tuple[Path, ...] = ()
    # The charm's own rules (the self-test's marker), loaded between the two.
    charm_rules: tuple[Path, ...] = ()
    # Rules that stay enabled whatever the selection says (after it in Falco's `rules:`).
    always_enabled: tuple[str, ...] = ()
    # Falco's `rules:` list: {"disable"|"enable": {"rule"|"tag": value}}, applied in order.
    selection: tuple[dict[str, dict[str, str]], ...] = ()
    minimum_priority: str = "debug"
    overrides: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ConfigInputs:
    """Everything falco.yaml depends on."""

    payload: Payload
    engine_kind: str
    buffer_size_preset: int
    outputs_queue_capacity: int
    topology: Topology
    http: HttpDestination | None = None
    rules: RuleInputs = RuleInputs()
    metrics_port: int = DEFAULT_METRICS_PORT
    # Where alerts are kept as JSON lines; None: on stdout (the journal) instead.
    alert_log: Path | None = None


def _engine(inputs: ConfigInputs) -> dict[str, Any]:
    tuning: dict[str, Any] = {
        "buf_size_preset": inputs.buffer_size_preset,
        "drop_failed_exit": False,
    }
    if inputs.engine_kind == "modern_ebpf":
        tuning["cpus_for_each_buffer"] = 2
    return {"engine": {"kind": inputs.engine_kind, inputs.engine_kind: tuning}}


def _plugins(inputs: ConfigInputs) -> dict[str, Any]:
    # Only the container plugin: the default rules need it. Listener plugins (k8saudit,
    # json) open network ports on every host and are never loaded unless asked for.
    return {
        "load_plugins": ["container"],
        "plugins": [
            {
                "name": "container",
                "library_path": str(inputs.payload.container_plugin),
                # An empty map reaches the plugin as JSON null and it refuses to start.
                "init_config": dict(CONTAINER_PLUGIN_INIT),
            }
        ],
        "plugins_hostinfo": True,
    }


def _rules(inputs: ConfigInputs) -> dict[str, Any]:
    return {
        # No config_files: the principal's /etc/falco/config.d must not leak in.
        "config_files": [],
        # Keeps hot reload working (SIGHUP is ignored without it up to 0.44.1).
        "watch_config_files": True,
        # Defaults first, so that custom rules can override and extend them, and the
        # charm's own before the custom ones, which may override those too.
        "rules_files": [
            str(inputs.payload.default_rules),
            *(str(path) for path in inputs.rules.charm_rules),
            *(str(path) for path in inputs.rules.extra_rules),
        ],
        # Applied by Falco after every file is loaded; it wins over `enabled:` in files.
        "rules": [
            *(dict(item) for item in inputs.rules.selection),
            *({"enable": {"rule": name}} for name in inputs.rules.always_enabled),
        ],
        "priority": inputs.rules.minimum_priority,
        "rule_matching": "first",
    }


def _alert_format(inputs: ConfigInputs) -> dict[str, Any]:
    topology = inputs.topology
    # Falcosidekick rejects alerts without output_fields and labels Loki streams with
    # exactly these names, so both the JSON layout and the names are part of the contract.
    extra_fields = [
        {"juju_unit": topology.unit},
        {"juju_application": topology.application},
        {"juju_model": topology.model},
        {"juju_model_uuid": topology.model_uuid},
        {"juju_charm": topology.charm_name},
    ]
    return {
        "json_output": True,
        "json_include_output_property": True,
        "json_include_output_fields_property": True,
        "json_include_tags_property": True,
        "json_include_message_property": False,
        "time_format_iso_8601": True,
        "append_output": [{"suggested_output": True}, {"extra_fields": extra_fields}],
    }


def _http_output(http: HttpDestination | None) -> dict[str, Any]:
    if http is None:
        return {"enabled": False}
    mutual = (
        {"mtls": True, "client_cert": str(http.client_cert), "client_key": str(http.client_key)}
        if http.client_cert and http.client_key
        else {"mtls": False}
    )
    return {
        "enabled": True,
        "url": http.url,
        "user_agent": "falcosecurity/falco",
        "insecure": False,
        # The CA published on http-endpoint. Falco gives libcurl this file alone, but libcurl
        # also reads its built-in CA directory: the unit hides the machine's trust store from
        # Falco while a CA is set (systemd_unit), so that this CA is the only one trusted.
        "ca_cert": str(http.ca_file) if http.ca_file else "",
        "ca_bundle": "",
        # Used by Falco only when ca_cert is empty (a publicly trusted ingress certificate).
        "ca_path": str(http.ca_path),
        **mutual,
        "echo": False,
        "compress_uploads": False,
        "keep_alive": False,
        "max_consecutive_timeouts": HTTP_MAX_CONSECUTIVE_TIMEOUTS,
    }


def _outputs(inputs: ConfigInputs) -> dict[str, Any]:
    return {
        # Bounded: when outputs stall, Falco drops (and counts) instead of growing until the
        # OOM killer ends detection altogether.
        "outputs_queue": {"capacity": inputs.outputs_queue_capacity},
        "buffered_outputs": False,
        "output_timeout": OUTPUT_TIMEOUT_MS,
        # Alerts always stay on the host too: in the alert log, or else on stdout, which
        # is the unit's journal. Never both: each copy on disk is one more in Loki (the
        # collector ships /var/log/syslog, where the journal is forwarded, and the log).
        "stdout_output": {"enabled": inputs.alert_log is None},
        # Syslog would only be a third copy of the same lines in the journal.
        "syslog_output": {"enabled": False},
        "file_output": _file_output(inputs.alert_log),
        "http_output": _http_output(inputs.http),
    }


def _file_output(alert_log: Path | None) -> dict[str, Any]:
    if alert_log is None:
        return {"enabled": False}
    return {
        "enabled": True,
        # Opened once, not per alert; logrotate's postrotate sends SIGUSR1, on which Falco
        # reopens it (alert_log.py says why that and not copytruncate).
        "keep_alive": True,
        "filename": str(alert_log),
    }


def _webserver(inputs: ConfigInputs) -> dict[str, Any]:
    # Always on, related to cos-agent or not: relating or unrelating a collector then never
    # restarts Falco, and /healthz answers for whoever checks the unit on the machine.
    return {
        "webserver": {
            "enabled": True,
            # A handful of loopback scrapes a minute: one thread is plenty.
            "threadiness": 1,
            "listen_port": inputs.metrics_port,
            "listen_address": WEBSERVER_ADDRESS,
            "k8s_healthz_endpoint": HEALTHZ_PATH,
            "prometheus_metrics_enabled": True,
            "ssl_enabled": False,
        },
        "metrics": {
            "enabled": True,
            "interval": METRICS_INTERVAL,
            # A "metrics snapshot" alert every interval would flood every output, Loki
            # included, for data Prometheus already has.
            "output_rule": False,
            "output_file": "",
            # What the dashboard and the alert rules read: rule matches by rule and
            # priority, CPU and memory, kernel events and drops by cause, thread table.
            "rules_counters_enabled": True,
            "resource_utilization_enabled": True,
            "state_counters_enabled": True,
            "kernel_event_counters_enabled": True,
            # One series per CPU and counter: cardinality without a use here.
            "kernel_event_counters_per_cpu_enabled": False,
            # Needs a sysctl the charm does not own, and costs time in every BPF program.
            "libbpf_stats_enabled": False,
            "kernel_iter_event_counters_enabled": False,
            # The container plugin's counters (containers seen, images missing).
            "plugins_metrics_enabled": True,
            "jemalloc_stats_enabled": False,
            # Only affects snapshots; Prometheus always gets bytes.
            "convert_memory_to_mb": False,
            "include_empty_values": False,
        },
    }


def _health(inputs: ConfigInputs) -> dict[str, Any]:
    return {
        # Falco's own logs go to stderr, which systemd puts in the journal, which forwards
        # them to rsyslog's /var/log/syslog on Ubuntu: the COS collector ships them from
        # there. log_syslog would go through the same journal, so it would only duplicate.
        "log_stderr": True,
        "log_syslog": False,
        "log_level": "info",
        "libs_logger": {"enabled": True, "severity": "warning"},
        "syscall_event_timeouts": {"max_consecutives": 1000},
        "syscall_event_drops": {
            "threshold": 0.1,
            "actions": ["log", "alert"],
            "rate": 0.03333,
            "max_burst": 1,
            "simulate_drops": False,
        },
    }


SECTIONS: tuple[Callable[[ConfigInputs], dict[str, Any]], ...] = (
    _engine,
    _plugins,
    _rules,
    _alert_format,
    _outputs,
    _webserver,
    _health,
)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged the way Falco's "append" strategy does."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = merge(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = [*current, *value]
        else:
            merged[key] = value
    return merged


def build(inputs: ConfigInputs) -> dict[str, Any]:
    """Return the complete falco.yaml content for ``inputs``."""
    config: dict[str, Any] = {}
    for section in SECTIONS:
        config.update(section(inputs))
    for override in inputs.rules.overrides:
        config = merge(config, override)
    return config


def render(config: dict[str, Any]) -> str:
    """Return ``config`` as the text of falco.yaml."""
    return HEADER + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


# libyaml's parser when PyYAML has it (its wheels do): every hook reads falco.yaml, and the
# pure Python parser made that a third of an idle hook's time.
_SafeLoader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


class _FalcoYamlLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader, reading a bare ``=`` as a string like Falco's YAML library.

    Rules exceptions write comparison operators unquoted (``comps: [=, startswith]``);
    PyYAML alone would read ``=`` as the obsolete YAML "value" type and refuse it.
    """


_FalcoYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str) -> Any:
    """Return the data of YAML ``text`` as Falco reads it; raise yaml.YAMLError if invalid."""
    try:
        # A SafeLoader subclass: no arbitrary Python objects.
        return yaml.load(text, Loader=_FalcoYamlLoader)  # noqa: S506
    except UnicodeEncodeError as exc:
        # libyaml reads UTF-8: text that cannot be encoded (a lone surrogate) is no YAML.
        raise yaml.YAMLError(f"not UTF-8 text: {exc.reason}") from exc


def parse(text: str) -> dict[str, Any] | None:
    """Return the data of a falco.yaml text, or None if it is not a YAML mapping."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def needs_restart(current: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Return whether going from ``current`` to ``wanted`` must restart the service."""
    if current is None:
        return True
    return any(current.get(key) != wanted.get(key) for key in RESTART_KEYS)
