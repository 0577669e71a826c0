"""Valid ``outputs`` sections built from the schema, for the unit, fuzz and real tests.

Every value points at the loopback: the real-binary tests start Falcosidekick with these
sections, and nothing in the tests may talk to another address.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import outputs

EXAMPLE = Path(__file__).parent / "unit" / "reference" / "falcosidekick-2.34.1-config_example.yaml"
_KEY_LINE = re.compile(r"^(?P<indent> *)#? ?(?P<key>[A-Za-z][A-Za-z0-9_]*):")

# The discard port: nothing listens on it here, so a delivery attempt fails at once.
CLOSED = "127.0.0.1:9"
# Values the real 2.34.1 needs for an output to start (outputs._output_rules), or that are
# text of a format of their own.
PARTICULAR: dict[tuple[str, str], Any] = {
    ("syslog", "protocol"): "udp",
    ("syslog", "port"): "9",
    ("alertmanager", "dropeventthresholds"): "100:critical, 10:warning",
    ("alertmanager", "customseveritymap"): {"warning": "sev-warning", "Critical": "page"},
    ("alertmanager", "extralabels"): {"team": "security"},
    # Contacting the output at start: it is not there (see outputs._output_rules).
    ("elasticsearch", "createindextemplate"): False,
    ("quickwit", "autocreateindex"): False,
}
# Values that must be left out of a valid section (refused by the charm, see outputs.py).
LEFT_OUT = frozenset(("mutualtls",))


def enabling_value(section: str, key: str) -> str:
    """Return a value for an enabling key that points at the loopback."""
    if outputs.is_url_key(section, key):
        return f"http://{CLOSED}/"
    return "127.0.0.1" if key == "host" else "x"


def secret_key(section: str, key: str) -> str:
    """Return the content key the credential ``section.key`` is read from."""
    return f"{section}-{key}".replace("_", "-")


def leaf(section: str, key: str, kind: str) -> Any:
    """Return a valid value of ``kind`` for ``section.key`` (credentials as references)."""
    if (section, key) in PARTICULAR:
        return PARTICULAR[section, key]
    if key in outputs.CREDENTIAL_KEYS:
        return {"secret": secret_key(section, key)}
    if key == "minimumpriority":
        return "warning"
    if key in outputs.OFFERED.get(section, ()) or outputs.is_url_key(section, key):
        return enabling_value(section, key)
    values: dict[str, Any] = {
        "string": "falco",
        "int": 3,
        "bool": True,
        "list": ["falco"],
        "map": {"X-Team": "security"},
        "duration": "2s",
    }
    return values[kind]


def full_section(section: str) -> dict[str, Any]:
    """Return ``section`` with every key the schema has, each with a valid value."""

    def build(schema: dict[str, Any], name: str) -> dict[str, Any]:
        return {
            key: build(kind, name) if isinstance(kind, dict) else leaf(name, key, kind)
            for key, kind in schema.items()
            if key not in LEFT_OUT
        }

    return build(outputs.SCHEMA[section], section)


def minimal_section(section: str) -> dict[str, Any]:
    """Return ``section`` with only what turns it on (credentials as references)."""
    settings = {key: leaf(section, key, "string") for key in outputs.OFFERED[section]}
    if section == "syslog":
        settings.update(protocol="udp", port="9")
    return settings


def secret_content(spec: dict[str, Any]) -> dict[str, str]:
    """Return a secret holding a value for every reference in ``spec``."""
    content: dict[str, str] = {}
    for section, settings in spec.items():
        for key, value in _references(settings):
            name = value["secret"]
            url = outputs.is_url_key(section, key)
            content[name] = enabling_value(section, key) if url else f"{section}-credential"
    return content


def _references(settings: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    found = []
    for key, value in settings.items():
        if isinstance(value, dict) and list(value) == ["secret"]:
            found.append((key, value))
        elif isinstance(value, dict):
            found += _references(value)
    return found


def example_key_paths() -> set[tuple[str, ...]]:
    """Return every key path in the upstream example, commented-out keys included.

    The example documents most keys as comments ("# hostport: ..."); the indentation in
    front of the "#" says where they belong. Viper matches keys case-insensitively. (A
    reading of its own, simpler than scripts/derive_outputs_schema.py: the two are compared.)
    """
    paths: set[tuple[str, ...]] = set()
    stack: list[tuple[int, str]] = []
    for line in EXAMPLE.read_text().splitlines():
        match = _KEY_LINE.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"].lower()))
        paths.add(tuple(key for _, key in stack))
    return paths
