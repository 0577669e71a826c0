"""A stand-in ``falco`` binary following Falco 0.44's command-line contract.

Tests put this script, as ``usr/bin/falco``, into a tarball with the release layout. The
constants below are replaced when the tarball is built (version, driver version and a
behaviour knob), so a test can build a good payload, one whose binary cannot report its
version, or one that refuses every config at ``--dry-run``.

Contract (WORKLOADS.md section 2 and reference/falco-0.44.1/validate-output*.json):

* ``--version``: text, or one JSON object when ``json_output`` is true (``-o`` or config);
* ``-c <file>``: missing file -> ``Error: Could not find configuration file at <file>``, 1;
* ``--dry-run``: loads config, plugins (each in load_plugins must be configured and its
  library must exist), the ``priority`` and ``rules`` settings, and rules files in order
  (folders read by name, .yaml/.yml only, missing paths skipped, like Falco); exit 0 or 1
  with ``Error: <why>`` on stderr;
* ``-V <file>`` (repeatable): the files are loaded in order into one engine, so a later file
  may override what an earlier one defined; ``{"falco_load_results": [...]}`` with
  json_output, exit 1 if a file does not load. The errors this fake knows: YAML that does
  not parse or is not a list, a new rule without ``output``, an ``override`` or ``append``
  of a rule, macro or list that no earlier file defined.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

FALCO_VERSION = "@FALCO_VERSION@"
DRIVER_VERSION = "@DRIVER_VERSION@"
BEHAVIOUR = "@BEHAVIOUR@"
ENGINES = ("kmod", "modern_ebpf", "nodriver", "replay")


# libyaml's parser when PyYAML has it: a restart validates the default rules, and the pure
# Python parser made that most of the cost of every restart in the tests and the bench.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):
    """Reads a bare ``=`` as a string, like Falco's YAML library (yaml-cpp)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _record(argv: list[str]) -> None:
    state = os.environ.get("FAKE_STATE_DIR")
    if state:
        with (Path(state) / "calls.jsonl").open("a") as calls:
            calls.write(json.dumps({"tool": "falco", "argv": argv}) + "\n")


def _fail(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return 1


def _options(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    flags: dict[str, Any] = {"-o": [], "-V": []}
    rest = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-o", "-c", "-V"):
            value = argv[i + 1]
            if arg == "-c":
                flags["-c"] = value
            else:
                flags[arg].append(value)
            i += 2
        else:
            rest.append(arg)
            i += 1
    return flags, rest


PRIORITIES = (
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "info",
    "debug",
)
ITEM_KINDS = ("rule", "macro", "list")


def _error(
    code: str, codedesc: str, message: str, name: str = "", kind: str = ""
) -> dict[str, Any]:
    locations = [{"item_name": "", "item_type": "rules content"}]
    if name:
        locations.append({"item_name": name, "item_type": kind})
    return {
        "code": code,
        "codedesc": codedesc,
        "message": message,
        "context": {"locations": locations, "snippet": f"- {kind}: {name}\n  ^\n"},
    }


def _item_error(item: Any, defined: set[tuple[str, str]]) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return _error(
            "LOAD_ERR_YAML_VALIDATE",
            "Error validating internal structure of YAML file",
            "Unexpected element type. Each element should be a yaml associative array.",
        )
    kind = next((k for k in ITEM_KINDS if k in item), None)
    if kind is None:
        return None
    name = str(item[kind])
    changes = "override" in item or item.get("append") is True
    if changes and (kind, name) not in defined:
        message = (
            f"{kind.capitalize()} uses 'append' or 'override.<key>: append' but no "
            f"{kind} by that name already exists"
        )
        return _error(
            "LOAD_ERR_VALIDATE",
            "Error validating rule/macro/list/exception objects",
            message,
            name,
            kind,
        )
    if (
        kind == "rule"
        and not changes
        and "output" not in item
        and set(item) != {"rule", "enabled"}
    ):
        return _error(
            "LOAD_ERR_YAML_VALIDATE",
            "Error validating internal structure of YAML file",
            "Item has no mapping for key 'output'",
            name,
            kind,
        )
    defined.add((kind, name))
    return None


def _load_rules(path: Path, defined: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    defined = set() if defined is None else defined
    result: dict[str, Any] = {
        "errors": [],
        "name": str(path),
        "schema_valid": True,
        "schema_warnings": [],
        "successful": True,
        "warnings": [],
    }
    try:
        items = _yaml(path.read_text())
    except yaml.YAMLError as exc:
        items, error = None, _error("LOAD_ERR_YAML_PARSE", "Error parsing YAML", str(exc))
        result["errors"].append(error)
    if items is not None and not isinstance(items, list):
        result["errors"].append(
            _error(
                "LOAD_ERR_YAML_VALIDATE",
                "Error validating internal structure of YAML file",
                "Rules content is not yaml array of objects",
            )
        )
    for item in items if isinstance(items, list) else []:
        error = _item_error(item, defined)
        if error is not None:
            result["errors"].append(error)
            break
    result["successful"] = not result["errors"]
    return result


def _rules_paths(entries: list[Any]) -> list[Path]:
    paths = []
    for entry in entries:
        path = Path(str(entry))
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            paths.append(path)
    return paths


def _selection_problem(config: dict[str, Any]) -> str | None:
    if str(config.get("priority", "debug")).lower() not in PRIORITIES:
        return (
            f'Unknown priority "{config.get("priority")}"--must be one of {", ".join(PRIORITIES)}'
        )
    for item in config.get("rules") or []:
        if not isinstance(item, dict) or not set(item) <= {"enable", "disable"} or not item:
            return "Invalid rules selection item: expected enable or disable"
    return None


def _dry_run(config: dict[str, Any]) -> int:
    if BEHAVIOUR == "dry-run-fails":
        return _fail("Plugin requirement not satisfied, must load one of: container (>= 0.4.0)")
    kind = (config.get("engine") or {}).get("kind", "kmod")
    if kind not in ENGINES:
        return _fail(f"Unknown engine kind: {kind}")
    plugins = {p["name"]: p for p in config.get("plugins") or []}
    for name in config.get("load_plugins", list(plugins)):
        if name not in plugins:
            return _fail(f"Cannot load plugin '{name}': plugin config not found for given name")
        if not Path(plugins[name]["library_path"]).is_file():
            return _fail(f"cannot load plugin {name}: {plugins[name]['library_path']} not found")
    problem = _selection_problem(config)
    if problem:
        return _fail(problem)
    defined: set[tuple[str, str]] = set()
    for path in _rules_paths(config.get("rules_files") or []):
        if not _load_rules(path, defined)["successful"]:
            return _fail(f"{path}: Invalid")
    return 0


def main(argv: list[str]) -> int:
    _record(argv)
    flags, rest = _options(argv)
    config: dict[str, Any] = {}
    if "-c" in flags:
        path = Path(flags["-c"])
        if not path.is_file():
            return _fail(f"Could not find configuration file at {path}")
        config = yaml.load(path.read_text(), Loader=_SafeLoader) or {}  # noqa: S506 - a safe loader
    json_output = bool(config.get("json_output")) or "json_output=true" in flags["-o"]
    if "--version" in rest:
        if BEHAVIOUR == "version-fails":
            return _fail("error while loading shared libraries: libfake.so.1")
        info = {
            "default_driver_version": DRIVER_VERSION,
            "driver_api_version": "8.0.0",
            "driver_schema_version": "3.0.0",
            "engine_version": "62",
            "engine_version_semver": "0.62.0",
            "falco_version": FALCO_VERSION,
            "libs_version": "0.25.4",
            "plugin_api_version": "3.11.0",
        }
        print(json.dumps(info) if json_output else f"Falco version: {FALCO_VERSION} (x86_64)")
        return 0
    if "--dry-run" in rest:
        return _dry_run(config)
    if flags["-V"]:
        defined: set[tuple[str, str]] = set()
        results = [_load_rules(Path(name), defined) for name in flags["-V"]]
        if json_output:
            print(json.dumps({"falco_load_results": results}))
        return 0 if all(r["successful"] for r in results) else 1
    return _fail("the fake falco does not watch system calls")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
