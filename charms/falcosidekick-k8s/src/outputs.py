"""The ``outputs`` option: Falcosidekick output sections, checked before Falcosidekick sees them.

Falcosidekick 2.34.1 reads its config with viper, which ignores keys it does not know and
turns what it cannot read into defaults: a misspelt key, a section without the key that
enables it, or ``minimumpriority: info`` (not a priority it knows, so everything is sent)
are all silent. So every section and key of the option is checked against the keys of the
2.34.1 config example (``sidekick_outputs_schema.json``, derived by
``scripts/derive_outputs_schema.py``) and against what the real binary showed
(``tests/real/test_output_sections.py``), and anything else is a problem naming its path.

Credentials never go in the option (anyone who can read the model's config could read
them): a value ``{secret: <key>}`` stands for the content key ``<key>`` of the Juju secret
named by ``outputs-secret``, read only when the config file is rendered (:func:`resolve`).

Problems are reported by path and reason, never with the value: the value may be a
credential put in the wrong place.
"""

from __future__ import annotations

import difflib
import json
import re
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

SCHEMA_FILE = Path(__file__).with_name("sidekick_outputs_schema.json")
SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())["keys"]
PRIORITIES = (
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "debug",
)
# Alertmanager 0.27 removed the v1 API that Falcosidekick posts to by default.
ALERTMANAGER_ENDPOINT = "/api/v2/alerts"
MAX_OPTION_SIZE = 64 * 1024

# The outputs the charm offers, each with the keys that turn it on: Falcosidekick leaves an
# output off, without a word, while any of them is empty. Every one is upstream code in the
# test binary; tests/real/test_output_sections.py proves with it that these keys (and only
# all of them together) enable the output, and that it counts its deliveries in /metrics
# under its section name (which test-alert and the output-errors alert rule rely on).
OFFERED: dict[str, tuple[str, ...]] = {
    "alertmanager": ("hostport",),
    "cliq": ("webhookurl",),
    "datadog": ("apikey",),
    "datadoglogs": ("apikey",),
    "discord": ("webhookurl",),
    "dynatrace": ("apitoken", "apiurl"),
    "elasticsearch": ("hostport",),
    "googlechat": ("webhookurl",),
    "gotify": ("hostport",),
    "grafana": ("hostport", "apikey"),
    "grafanaoncall": ("webhookurl",),
    "influxdb": ("hostport",),
    "kafkarest": ("address",),
    "mattermost": ("webhookurl",),
    "n8n": ("address",),
    "nodered": ("address",),
    "openobserve": ("hostport",),
    "opsgenie": ("apikey",),
    "quickwit": ("hostport",),
    "rocketchat": ("webhookurl",),
    "slack": ("webhookurl",),
    "sumologic": ("receiverurl",),
    "syslog": ("host",),
    "talon": ("address",),
    "teams": ("webhookurl",),
    "tekton": ("eventlistener",),
    "telegram": ("token", "chatid"),
    "webex": ("webhookurl",),
    "webhook": ("address",),
    "webui": ("url",),
    "zincsearch": ("hostport",),
}
_SDK = (
    "not offered yet: its code needs a cloud, broker or Kubernetes SDK, which the Falcosidekick "
    "the charm is tested with does not carry"
)
# Every other top-level key of the 2.34.1 config, and why the option does not take it.
NOT_OFFERED: dict[str, str] = {
    **dict.fromkeys(
        (
            "aws",
            "azure",
            "cloudevents",
            "fission",
            "gcp",
            "kafka",
            "kubeless",
            "logstash",
            "mqtt",
            "nats",
            "openfaas",
            "otlp",
            "pagerduty",
            "policyreport",
            "rabbitmq",
            "redis",
            "smtp",
            "stan",
            "timescaledb",
            "wavefront",
            "yandex",
        ),
        _SDK,
    ),
    "spyderbat": (
        "not offered: Falcosidekick 2.34.1 calls Spyderbat's API when it starts and crashes "
        "when it cannot reach it, which would stop every output"
    ),
    "statsd": "a metrics forwarder, not an alert output: scrape 'metrics-endpoint' instead",
    "dogstatsd": "a metrics forwarder, not an alert output: scrape 'metrics-endpoint' instead",
    "loki": "set by the charm: integrate 'send-loki-logs' (see also 'loki-tenant')",
    "prometheus": "set by the charm: its metrics are on 'metrics-endpoint'",
    "listenaddress": "set by the charm from its relations",
    "listenport": "set by the charm: use the 'port' option",
    "tlsserver": "set by the charm: integrate 'certificates'",
    "tlsclient": "set by the charm: use the 'outputs-ca-certs' option",
    "mutualtlsfilespath": "not offered: the charm has no client certificate for outputs",
    "mutualtlsclient": "not offered: the charm has no client certificate for outputs",
    "customfields": "set by the charm: use the 'custom-fields' option",
    "debug": "not offered: it prints every alert sent, credentials in URLs included, in logs",
    "templatedfields": "a global setting, not an output: not offered",
    "customtags": "a global setting, not an output: not offered",
    "bracketreplacer": "a global setting, not an output: not offered",
    "outputfieldformat": "a global setting, not an output: not offered",
}
# Keys whose value is a credential wherever they appear: they must come from the secret.
CREDENTIAL_KEYS = frozenset(
    ("apikey", "apitoken", "headerauthvalue", "password", "receiverurl", "token", "webhookurl")
)
# Header names (customheaders) that carry credentials.
_CREDENTIAL_HEADER = re.compile(r"auth|token|key|secret|pass|cookie", re.IGNORECASE)
# Keys whose value is the URL Falcosidekick posts to (after resolve: secrets may hold them).
# An invalid one is logged as "Bad Endpoint" and the output left off.
URL_KEYS = frozenset(
    ("hostport", "webhookurl", "address", "url", "eventlistener", "receiverurl", "apiurl")
)
# Outputs whose key of that name is not a URL, and other keys that are.
_NOT_URLS = frozenset((("syslog", "host"),))
_MORE_URLS = frozenset((("datadog", "host"), ("datadoglogs", "host")))
# Falcosidekick's own numbers for the priorities (its customseveritymap is keyed by them).
SIDEKICK_PRIORITY = {name: 8 - index for index, name in enumerate(PRIORITIES)}
_DURATION = re.compile(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_THRESHOLD = re.compile(r"\s*\d+\s*:\s*(?P<priority>[A-Za-z]+)\s*")
# Juju's rule for secret content keys.
SECRET_KEY = re.compile(r"[a-z](?:-?[a-z0-9]){2,}")
_REFERENCE_SYNTAX = "{secret: <key of 'outputs-secret'>}"


@dataclass(frozen=True)
class SecretRef:
    """A value to be read from the content key ``key`` of the ``outputs-secret`` secret."""

    key: str


class OutputsError(ValueError):
    """The outputs cannot be rendered; ``option`` is the option the operator must fix."""

    def __init__(self, option: str, problem: str):
        super().__init__(f"invalid config '{option}': {problem}")
        self.option = option
        self.problem = problem


Spec = dict[str, dict[str, Any]]


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _name(key: object) -> str:
    """Return a key as a path shows it: as is when a plain name, else quoted and shortened.

    Keys are names, shown so that a misspelt one can be fixed; a key that is not a plain name
    is quoted (a newline must not reach the status) and cut short (it can be any size).
    """
    if isinstance(key, str) and _PLAIN_NAME.fullmatch(key):
        return key
    return reprlib.repr(key)


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _keyed(data: Mapping[Any, Any], path: str) -> dict[str, Any]:
    """Return ``data`` with lower-cased string keys; raise if two differ only in case."""
    result: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ValueError(f"{path}{_name(key)}: keys must be names")
        lowered = key.lower()
        if lowered in result:
            raise ValueError(
                f"{path}{_name(lowered)}: given twice (Falcosidekick ignores the case of keys)"
            )
        result[lowered] = value
    return result


def _secret_ref(value: Mapping[Any, Any], path: str) -> SecretRef:
    if list(value) != ["secret"] or not isinstance(value["secret"], str):
        raise ValueError(f"{path}: a mapping here must be {_REFERENCE_SYNTAX}")
    key = value["secret"]
    if not SECRET_KEY.fullmatch(key):
        raise ValueError(
            f"{path}: {key!r} is not a secret content key (3 or more lower-case letters, "
            "digits and single hyphens, starting with a letter)"
        )
    return SecretRef(key)


def _string(value: object, path: str) -> str | int | float | SecretRef:
    """Check a value Falcosidekick reads as text (numbers are written as text by it)."""
    if isinstance(value, Mapping):
        return _secret_ref(value, path)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{path}: expected text or {_REFERENCE_SYNTAX}")
    if isinstance(value, str) and _has_userinfo(value):
        raise ValueError(
            f"{path}: a URL with a user or password must come from 'outputs-secret': "
            f"write {_REFERENCE_SYNTAX}"
        )
    return value


def _has_userinfo(text: str) -> bool:
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return False
    return bool(parts.netloc and (parts.username or parts.password))


def _map(value: Any, path: str, headers: bool) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: expected a mapping of names to values")
    result: dict[str, Any] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{path}: names must be text")
        checked = _string(item, f"{path}.{_name(name)}")
        if headers and _CREDENTIAL_HEADER.search(name) and not isinstance(checked, SecretRef):
            raise ValueError(f"{path}.{_name(name)}: a credential, must be {_REFERENCE_SYNTAX}")
        result[name] = checked
    return result


def _leaf(kind: str, key: str, value: Any, path: str) -> Any:
    """Check one value against the type the schema gives it."""
    if kind == "map":
        return _map(value, path, headers=key == "customheaders")
    if kind == "duration":
        if not (isinstance(value, str) and _DURATION.fullmatch(value)):
            raise ValueError(f"{path}: expected a duration such as 1s or 500ms")
        return value
    if kind == "list":
        if not isinstance(value, list) or not all(
            isinstance(item, (str, int)) and not isinstance(item, bool) for item in value
        ):
            raise ValueError(f"{path}: expected a list of texts")
        return list(value)
    if kind in ("int", "bool"):
        wanted = bool if kind == "bool" else int
        if not isinstance(value, wanted) or (kind == "int" and isinstance(value, bool)):
            raise ValueError(
                f"{path}: expected {'true or false' if kind == 'bool' else 'a number'}"
            )
        return value
    checked = _string(value, path)
    if key in CREDENTIAL_KEYS and not isinstance(checked, SecretRef):
        raise ValueError(
            f"{path}: a credential, must come from 'outputs-secret': write {_REFERENCE_SYNTAX}"
        )
    return checked


def _refused(key: str, value: Any, path: str) -> None:
    """Raise for the keys and values of an offered output that the charm does not allow."""
    if key == "mutualtls":
        raise ValueError(f"{path}: not offered: the charm has no client certificate for outputs")
    if key == "checkcert" and value is not True:
        raise ValueError(
            f"{path}: certificate checks stay on; add the output's CA to 'outputs-ca-certs'"
        )


def _section(schema: Mapping[str, Any], data: Any, path: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping of its settings")
    result: dict[str, Any] = {}
    for key, value in _keyed(data, f"{path}.").items():
        where = f"{path}.{_name(key)}"
        if key not in schema:
            raise ValueError(
                f"{where}: not a Falcosidekick 2.34.1 setting of {path!r}"
                + _suggest(key, list(schema))
            )
        _refused(key, value, where)
        kind = schema[key]
        if isinstance(kind, dict):
            result[key] = _section(kind, value, where)
        else:
            result[key] = _leaf(kind, key, value, where)
    return result


def _priority(section: str, settings: dict[str, Any]) -> None:
    """Lower-case ``minimumpriority``; Falcosidekick sends everything for a name it lacks."""
    if "minimumpriority" not in settings:
        return
    value = settings["minimumpriority"]
    if not isinstance(value, str) or value.lower() not in (*PRIORITIES, ""):
        raise ValueError(
            f"{section}.minimumpriority: expected one of {', '.join(PRIORITIES)} "
            "(Falcosidekick would send every alert for any other value)"
        )
    settings["minimumpriority"] = value.lower()


def _output_rules(section: str, settings: dict[str, Any]) -> None:
    """Refuse what the real 2.34.1 showed to crash or to switch an output off silently."""
    if section == "syslog":
        protocol = settings.get("protocol")
        if not (isinstance(protocol, str) and protocol.lower() in ("tcp", "udp")):
            raise ValueError(
                "syslog.protocol: required, tcp or udp (Falcosidekick 2.34.1 crashes at start "
                "without it, whatever its documentation says)"
            )
        settings["protocol"] = protocol.lower()
    if section == "alertmanager":
        _alertmanager_rules(settings)
    if section == "quickwit" and settings.get("autocreateindex") is True:
        raise ValueError(
            "quickwit.autocreateindex: not offered: when Quickwit cannot be reached at start, "
            "Falcosidekick 2.34.1 leaves the output off without a word; create the index first"
        )


def _alertmanager_rules(settings: dict[str, Any]) -> None:
    """Check what Alertmanager or Falcosidekick would refuse in the Alertmanager output.

    Alertmanager refuses an alert (every alert, then) with an invalid label name, and
    Falcosidekick reads its severity map keyed by its own priority numbers: the operator
    writes priority names, the charm renders the numbers.
    """
    for name in settings.get("extralabels", {}):
        if not _LABEL_NAME.fullmatch(name):
            raise ValueError(
                f"alertmanager.extralabels.{_name(name)}: not a label name (letters, digits and "
                "underscores): Alertmanager would refuse every alert"
            )
    if "customseveritymap" in settings:
        severities = {}
        for name, severity in settings["customseveritymap"].items():
            if name.lower() not in SIDEKICK_PRIORITY:
                raise ValueError(
                    f"alertmanager.customseveritymap.{_name(name)}: expected a priority name "
                    f"({', '.join(PRIORITIES)})"
                )
            severities[SIDEKICK_PRIORITY[name.lower()]] = severity
        settings["customseveritymap"] = severities
    thresholds = settings.get("dropeventthresholds")
    if isinstance(thresholds, str) and thresholds.strip():
        for item in thresholds.split(","):
            match = _THRESHOLD.fullmatch(item)
            if not (match and match["priority"].lower() in PRIORITIES):
                raise ValueError(
                    "alertmanager.dropeventthresholds: expected 'count:priority' pairs "
                    "separated by commas, such as '100:critical, 10:warning'"
                )


def parse(text: str) -> Spec:
    """Return the ``outputs`` option as checked sections; raise ValueError naming the path.

    Keys are lower-cased (as Falcosidekick reads them); credentials stay :class:`SecretRef`
    until :func:`resolve`.
    """
    if len(text) > MAX_OPTION_SIZE:
        raise ValueError(f"longer than {MAX_OPTION_SIZE // 1024} KiB")
    try:
        data = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        # The parser's message quotes the text, which may hold a misplaced credential.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"not valid YAML{where}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError("expected a mapping of Falcosidekick output sections, such as 'slack:'")
    spec: Spec = {}
    for section, settings in _keyed(data, "").items():
        if section in NOT_OFFERED:
            raise ValueError(f"{section}: {NOT_OFFERED[section]}")
        if section not in OFFERED:
            raise ValueError(
                f"{_name(section)}: not a Falcosidekick 2.34.1 output"
                + _suggest(section, list(OFFERED))
            )
        checked = _section(SCHEMA[section], settings, section)
        _priority(section, checked)
        _output_rules(section, checked)
        spec[section] = checked
    return spec


def secret_keys(spec: Mapping[str, Any]) -> set[str]:
    """Return the content keys of ``outputs-secret`` that ``spec`` refers to."""
    found: set[str] = set()
    for value in spec.values():
        if isinstance(value, SecretRef):
            found.add(value.key)
        elif isinstance(value, Mapping):
            found |= secret_keys(value)
    return found


def _filled(data: Mapping[str, Any], secret: Mapping[str, str] | None, path: str) -> Any:
    result: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}"
        if isinstance(value, SecretRef):
            if secret is None:
                raise OutputsError(
                    "outputs", f"{where} refers to a secret, but 'outputs-secret' is not set"
                )
            if value.key not in secret:
                raise OutputsError(
                    "outputs-secret", f"the secret has no key {value.key!r} (used by {where})"
                )
            result[key] = secret[value.key]
        elif isinstance(value, Mapping):
            result[key] = _filled(value, secret, where)
        else:
            result[key] = value
    return result


def _with_alertmanagers(spec: Spec, urls: Sequence[str]) -> Spec:
    """Fill the Alertmanager output's address from the ``alertmanager`` relation's URLs."""
    if not urls:
        return spec
    settings = dict(spec.get("alertmanager", {}))
    if settings.get("hostport"):
        raise OutputsError(
            "outputs",
            "alertmanager.hostport is given and 'alertmanager' is integrated: remove one",
        )
    # Falcosidekick posts to every comma-separated address; it appends the endpoint itself.
    settings["hostport"] = ",".join(url.rstrip("/") for url in urls)
    return {**spec, "alertmanager": settings}


def resolve(
    spec: Spec, secret: Mapping[str, str] | None, alertmanager_urls: Sequence[str] = ()
) -> Spec:
    """Return the output sections as Falcosidekick's config has them; raise OutputsError.

    ``secret`` is the content of ``outputs-secret`` (None when unset), ``alertmanager_urls``
    what the ``alertmanager`` relation gives. An output whose enabling keys are not all
    set is a problem, not an output quietly left off.
    """
    rendered: Spec = {}
    for section, settings in _with_alertmanagers(spec, alertmanager_urls).items():
        filled = _filled(settings, secret, section)
        _check_enabled(section, settings, filled)
        _check_urls(section, settings, filled)
        if section == "alertmanager":
            filled.setdefault("endpoint", ALERTMANAGER_ENDPOINT)
        rendered[section] = filled
    return rendered


def _check_enabled(section: str, settings: Mapping[str, Any], filled: Mapping[str, Any]) -> None:
    for key in OFFERED[section]:
        value = filled.get(key)
        if value is not None and str(value).strip():
            continue
        given = settings.get(key)
        if isinstance(given, SecretRef):
            raise OutputsError(
                "outputs-secret", f"key {given.key!r} is empty (used by {section}.{key})"
            )
        hint = " (or integrate 'alertmanager')" if section == "alertmanager" else ""
        raise OutputsError(
            "outputs",
            f"{section}.{key} is needed: without it Falcosidekick leaves {section} off{hint}",
        )


def _is_url(text: str) -> bool:
    if any(char.isspace() or not char.isprintable() for char in text):
        return False
    try:
        parts = urlsplit(text)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def is_url_key(section: str, key: str) -> bool:
    """Return whether ``section.key`` is the URL (or URLs) the output posts to."""
    named = key in URL_KEYS or (section, key) in _MORE_URLS
    return named and (section, key) not in _NOT_URLS


def _check_urls(section: str, settings: Mapping[str, Any], filled: Mapping[str, Any]) -> None:
    """Refuse a URL Falcosidekick cannot post to: it would leave the output off."""
    for key, value in filled.items():
        if not is_url_key(section, key) or value in (None, ""):
            continue
        several = (section, key) == ("alertmanager", "hostport")
        texts = [t.strip() for t in str(value).split(",")] if several else [str(value)]
        if all(_is_url(text) for text in texts):
            continue
        given = settings.get(key)
        if isinstance(given, SecretRef):
            raise OutputsError(
                "outputs-secret",
                f"key {given.key!r} (used by {section}.{key}) is not an http(s) URL",
            )
        kind = "comma-separated http(s) URLs" if several else "an http(s) URL"
        raise OutputsError("outputs", f"{section}.{key}: expected {kind}")


def destinations(config: Mapping[str, Any]) -> list[str]:
    """Return the outputs a rendered Falcosidekick config delivers to, by metric label.

    Falcosidekick labels ``falcosecurity_falcosidekick_outputs_total`` with the section
    name of each output (``destination="slack"``).
    """
    loki = config.get("loki")
    found = ["loki"] if isinstance(loki, Mapping) and loki.get("hostport") else []
    return found + sorted(section for section in config if section in OFFERED)
