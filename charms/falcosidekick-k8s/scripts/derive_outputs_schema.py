#!/usr/bin/env python3
"""Derive Falcosidekick's config schema (key names and value types) from its config example.

Falcosidekick reads its config with viper, which ignores keys it does not know: a typo in an
output section disables that output without a word. The charm checks every key of its
``outputs`` option against the keys Falcosidekick 2.34.1 documents, and those are in one
place only: ``config_example.yaml`` of that release, where most keys are commented out
(``  # hostport: "" # ...``). This script reads the example, commented keys included, and
writes ``src/sidekick_outputs_schema.json``: a tree of the key names (lower-cased, as viper
matches them) whose leaves are the type of the example's value, one of ``string``, ``int``,
``bool``, ``list`` or ``map`` (a mapping of names chosen by the operator, such as HTTP
headers), or ``duration`` where the real binary reads another type (TYPE_CORRECTIONS). The
schema is data the charm ships; ``tests/unit/test_outputs.py`` runs this script again and
fails when the shipped file differs.

Usage: ``derive_outputs_schema.py <config_example.yaml> <schema.json>`` to write,
``... --check`` to compare.

How a commented key's place is read: the spaces before the ``#`` and those after it beyond
one add up to its indentation, so ``  #   key: value`` (two and three) belongs under the
``  # customHeaders:`` above it (two and one). Values that the example leaves empty are
strings, unless lines starting with ``-`` (a list) or deeper keys (a section) follow.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

VERSION = "2.34.1"
# Mappings whose keys in the example are placeholders (``key: value``, ``Akey``, environment
# variable names) for names the operator chooses, not settings.
FREE_MAPS = frozenset(
    (
        "customfields",
        "templatedfields",
        "customheaders",
        "extensions",
        "tag",
        "customattributes",
        "extraenvvars",
    )
)
# Where the example's value has another type than the one Falcosidekick 2.34.1 reads: the
# real binary logs "Error unmarshalling config" for the example's type and drops the
# setting (tests/real/test_output_sections.py proves each with every offered key). The
# example documents the three Alertmanager maps as "comma separated" text, and shows
# no value or an empty text for numbers; "duration" is Go's (1s, 500ms).
TYPE_CORRECTIONS: dict[tuple[str, ...], str] = {
    ("alertmanager", "customseveritymap"): "map",
    ("alertmanager", "expiresafter"): "int",
    ("alertmanager", "extraannotations"): "map",
    ("alertmanager", "extralabels"): "map",
    ("elasticsearch", "batching", "flushinterval"): "duration",
    ("grafana", "dashboardid"): "int",
    ("grafana", "panelid"): "int",
}
_KEY = re.compile(r"(?P<key>[A-Za-z][A-Za-z0-9_]*)\s*:(?:\s+(?P<value>.*))?$")
_LIST_ITEM = re.compile(r"-(\s|$)")
_QUOTED = re.compile(r"""("[^"]*"|'[^']*')""")


@dataclass
class _Node:
    indent: int
    value: Any = None
    children: dict[str, _Node] = field(default_factory=dict)
    is_list: bool = False


def _strip_comment(text: str) -> str:
    """Return ``text`` without a trailing `` # comment`` that is outside quotes."""
    quote = ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1].isspace()):
            return text[:index].rstrip()
    return text.rstrip()


def _scalar(text: str) -> Any:
    """Return the example's value: YAML when it parses, else its first quoted string or word.

    A few comments run on after the value without a ``#`` (``"" if set to ...``) or replace
    it with prose; the value's type is then that of what starts the text.
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        quoted = _QUOTED.match(text)
        return yaml.safe_load(quoted.group(0)) if quoted else text.split()[0]


def _lines(example: str) -> list[tuple[int, str]]:
    """Return (indentation, content) of every line that could be a key or a list item."""
    found = []
    for raw in example.splitlines():
        stripped = raw.lstrip(" ")
        before = len(raw) - len(stripped)
        if stripped.startswith("#"):
            body = stripped[1:]
            after = len(body) - len(body.lstrip(" "))
            found.append((before + max(after - 1, 0), body.strip()))
        elif stripped:
            found.append((before, stripped.rstrip()))
    return found


def _type_of(name: str, node: _Node) -> Any:
    if node.children:
        if name in FREE_MAPS:
            return "map"
        return {key: _type_of(key, child) for key, child in sorted(node.children.items())}
    if name in FREE_MAPS:
        return "map"
    value = node.value
    if node.is_list or isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, dict):
        return "map"
    return "string"


def derive(example: str) -> dict[str, Any]:
    """Return the schema of the config example ``example`` (see the module docstring)."""
    root = _Node(indent=-1)
    stack = [root]
    for indent, content in _lines(example):
        if _LIST_ITEM.match(content):
            while len(stack) > 1 and stack[-1].indent >= indent:
                stack.pop()
            stack[-1].is_list = stack[-1] is not root
            continue
        match = _KEY.match(content)
        if not match:
            continue  # prose
        while stack[-1].indent >= indent:
            stack.pop()
        key = match["key"].lower()
        value = _strip_comment(match["value"] or "")
        node = stack[-1].children.setdefault(key, _Node(indent))
        node.value = _scalar(value) if value else node.value
        stack.append(node)
    missing = FREE_MAPS - _names(root)
    if missing:
        raise ValueError(f"free maps not in the example: {sorted(missing)}")
    keys = {key: _type_of(key, child) for key, child in sorted(root.children.items())}
    for path, kind in TYPE_CORRECTIONS.items():
        *parents, name = path
        section = keys
        for parent in parents:
            section = section[parent]
        if name not in section:
            raise ValueError(f"corrected key not in the example: {'.'.join(path)}")
        section[name] = kind
    return {"falcosidekick": VERSION, "keys": keys}


def _names(node: _Node) -> set[str]:
    names = set(node.children)
    for child in node.children.values():
        names |= _names(child)
    return names


def render(schema: dict[str, Any]) -> str:
    """Return the schema as the JSON text the charm ships."""
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    """Write (or with ``--check``, compare) the schema file; see the module docstring."""
    check = "--check" in argv
    example, target = (Path(arg) for arg in argv if arg != "--check")
    text = render(derive(example.read_text()))
    if check:
        if target.read_text() != text:
            print(f"{target} is out of date: run {Path(__file__).name} again")
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
