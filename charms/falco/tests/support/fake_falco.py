"""A stand-in ``falco`` binary following Falco 0.44.1's command-line contract.

Tests put this script, as ``usr/bin/falco``, into a tarball with the release layout. The
constants below are replaced when the tarball is built (version, driver version and a
behaviour knob), so a test can build a good payload, one whose binary cannot report its
version, or one that refuses every config at ``--dry-run``.

It is held to the real binary: ``tests/real/test_conformance.py`` runs the same commands
against both and compares exit codes, which files load, and the first error (its code, and
its message where this docstring says the fake copies it). What it does:

* ``--version``: the real text, or the real JSON object when ``json_output`` is true (``-o``
  or config);
* ``-c <file>``: missing file -> ``Error: Could not find configuration file at <file>``, 1;
* ``--dry-run``: checks, in Falco's order and with Falco's messages, ``engine.kind``, the
  ``rules:`` selection (yaml-cpp's "bad conversion" at the item's line and column),
  ``priority``, each plugin of ``load_plugins`` (configured, library present: Falco's
  "Runtime error" line, without ``Error:``), then loads the rules files in order (folders
  read by name, .yaml/.yml only, missing paths skipped) and logs each file it loads as
  Falco does (``Loading rules from:``); exit 0, or 1 with ``Error: <why>``;
* ``-V <file>`` (repeatable): every file must open (``Could not open file <f> for
  reading``, nothing on stdout), then the files are loaded in order into one engine, so a
  later file may override what an earlier one defined; ``{"falco_load_results": [...]}``
  with json_output, exit 1 if a file does not load. The errors it knows, with Falco's code
  and message: not a list, a new rule without ``output``, an ``override``/``append`` of a
  rule, macro or list no earlier file defined, ``enabled`` alone for an unknown rule; YAML
  that does not parse gets Falco's code and PyYAML's message.

What it does not model, and where the real binary covers it: conditions and outputs are
never compiled (unknown fields, undefined macros, syntax errors, ``append_output`` fields),
plugin requirements of the rules files and the plugins ``-V`` loads from the config, config
keys other than those above, rule priorities, and everything Falco does once it runs
(engines, outputs, hot reload, metrics). ``tests/real/`` runs the charm's rendered config
and rules through the real Falco for all of these.
"""

from __future__ import annotations

import datetime
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
# What falco 0.44.1 reports next to its own version (its libs, plugin API and driver API).
VERSIONS = {
    "driver_api_version": "10.0.0",
    "driver_schema_version": "4.3.0",
    "engine_version": "62",
    "engine_version_semver": "0.62.0",
    "libs_version": "0.25.4",
    "plugin_api_version": "3.12.0",
}


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


def _log(message: str) -> None:
    """Log to stderr the way Falco does (log_stderr), with its timestamp prefix."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")
    print(f"{now}: {message}", file=sys.stderr)


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


# Falco's names, in its message's order; it also takes "info" and any letter case.
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


def _undefined(kind: str, name: str, message: str) -> dict[str, Any]:
    return _error(
        "LOAD_ERR_VALIDATE",
        "Error validating rule/macro/list/exception objects",
        message,
        name,
        kind,
    )


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
        return _undefined(
            kind,
            name,
            f"{kind.capitalize()} uses 'append' or 'override.<key>: append' but no "
            f"{kind} by that name already exists",
        )
    if kind == "rule" and not changes and set(item) == {"rule", "enabled"}:
        if (kind, name) in defined:
            return None
        return _undefined(
            kind, name, "Rule has 'enabled' key but no rule by that name already exists"
        )
    if kind == "rule" and not changes and "output" not in item:
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


def _scalar(node: yaml.Node | None) -> bool:
    return isinstance(node, yaml.ScalarNode)


def _bad_selection_node(selection: yaml.Node) -> yaml.Node | None:
    """Return the node of ``rules:`` that yaml-cpp cannot convert, if any."""
    if not isinstance(selection, yaml.SequenceNode):
        return selection
    for item in selection.value:
        if not isinstance(item, yaml.MappingNode):
            return item
        keys = {key.value: value for key, value in item.value if _scalar(key)}
        chosen = keys.get("enable", keys.get("disable"))
        if not isinstance(chosen, yaml.MappingNode):
            return item
        names = {key.value: value for key, value in chosen.value if _scalar(key)}
        if not {"rule", "tag"} & set(names):
            return item
        for value in names.values():
            if not _scalar(value):
                return value
    return None


def _selection_problem(config_text: str) -> str | None:
    """Return yaml-cpp's message for a ``rules:`` selection it cannot read, as Falco says it."""
    root = yaml.compose(config_text, Loader=_SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if _scalar(key) and key.value == "rules":
            bad = _bad_selection_node(value)
            if bad is not None:
                line, column = bad.start_mark.line + 1, bad.start_mark.column + 1
                return f"yaml-cpp: error at line {line}, column {column}: bad conversion"
    return None


def _plugin_problem(config: dict[str, Any]) -> int | None:
    plugins = {p["name"]: p for p in config.get("plugins") or []}
    for name in config.get("load_plugins", list(plugins)):
        if name not in plugins:
            return _fail(f"Cannot load plugin '{name}': plugin config not found for given name")
        library = plugins[name]["library_path"]
        if not Path(library).is_file():
            # Falco says this one without "Error:", as a log line.
            _log(
                f"Runtime error: cannot load plugin {library}: can't load plugin dynamic "
                f"library: {library}: cannot open shared object file: No such file or "
                "directory. Exiting."
            )
            return 1
    return None


def _dry_run(config_file: str, config_text: str, config: dict[str, Any]) -> int:
    if BEHAVIOUR == "dry-run-fails":
        return _fail("Plugin requirement not satisfied, must load one of: container (>= 0.4.0)")
    kind = (config.get("engine") or {}).get("kind", "kmod")
    if kind not in ENGINES:
        return _fail(
            f"Error reading config file ({config_file}): engine.kind '{kind}' is not a valid kind."
        )
    problem = _selection_problem(config_text)
    if problem:
        return _fail(problem)
    priority = str(config.get("priority", "debug"))
    if priority.lower() not in (*PRIORITIES, "info"):
        return _fail(f'Unknown priority "{priority}"--must be one of {", ".join(PRIORITIES)}')
    failed = _plugin_problem(config)
    if failed is not None:
        return failed
    defined: set[tuple[str, str]] = set()
    _log("Loading rules from:")
    for path in _rules_paths(config.get("rules_files") or []):
        _log(f"   {path} | schema validation: ok")
        if not _load_rules(path, defined)["successful"]:
            return _fail(f"{path}: Invalid")
    return 0


def _version(json_output: bool) -> int:
    if BEHAVIOUR == "version-fails":
        return _fail("error while loading shared libraries: libfake.so.1")
    if json_output:
        info = dict(VERSIONS, falco_version=FALCO_VERSION, default_driver_version=DRIVER_VERSION)
        print(json.dumps(dict(sorted(info.items())), separators=(",", ":")))
        return 0
    print(
        f"Falco version: {FALCO_VERSION}\n"
        f"Libs version:  {VERSIONS['libs_version']}\n"
        f"Plugin API:    {VERSIONS['plugin_api_version']}\n"
        f"Engine:        {VERSIONS['engine_version_semver']}\n"
        "Driver:\n"
        f"  API version:    {VERSIONS['driver_api_version']}\n"
        f"  Schema version: {VERSIONS['driver_schema_version']}\n"
        f"  Default driver: {DRIVER_VERSION}"
    )
    return 0


def _validate(names: list[str], json_output: bool) -> int:
    for name in names:
        path = Path(name)
        if path.is_dir():
            _log(
                "Runtime error: basic_filebuf::underflow error reading the file: Is a "
                "directory. Exiting."
            )
            return 1
        if not path.is_file():
            return _fail(f"Could not open file {name} for reading")
    defined: set[tuple[str, str]] = set()
    results = []
    for name in names:
        result = _load_rules(Path(name), defined)
        # Falco names each file as it was given on the command line.
        result["name"] = name
        results.append(result)
    if json_output:
        print(json.dumps({"falco_load_results": results}))
    return 0 if all(r["successful"] for r in results) else 1


def main(argv: list[str]) -> int:
    _record(argv)
    flags, rest = _options(argv)
    config: dict[str, Any] = {}
    config_text = ""
    if "-c" in flags:
        path = Path(flags["-c"])
        if not path.is_file():
            return _fail(f"Could not find configuration file at {path}")
        config_text = path.read_text()
        config = yaml.load(config_text, Loader=_SafeLoader) or {}  # noqa: S506 - a safe loader
    json_output = bool(config.get("json_output")) or "json_output=true" in flags["-o"]
    if "--version" in rest:
        return _version(json_output)
    if "--dry-run" in rest:
        return _dry_run(flags.get("-c", ""), config_text, config)
    if flags["-V"]:
        return _validate(flags["-V"], json_output)
    return _fail("the fake falco does not watch system calls")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
