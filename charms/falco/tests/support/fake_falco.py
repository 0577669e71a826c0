"""A stand-in ``falco`` binary following Falco 0.44's command-line contract.

Tests put this script, as ``usr/bin/falco``, into a tarball with the release layout. The
constants below are replaced when the tarball is built (version, driver version and a
behaviour knob), so a test can build a good payload, one whose binary cannot report its
version, or one that refuses every config at ``--dry-run``.

Contract (WORKLOADS.md section 2 and reference/falco-0.44.1/validate-output*.json):

* ``--version``: text, or one JSON object when ``json_output`` is true (``-o`` or config);
* ``-c <file>``: missing file -> ``Error: Could not find configuration file at <file>``, 1;
* ``--dry-run``: loads config, plugins (each in load_plugins must be configured and its
  library must exist) and rules files (missing ones are skipped, like Falco); exit 0 or 1
  with ``Error: <why>`` on stderr;
* ``-V <file>`` (repeatable): ``{"falco_load_results": [...]}`` with json_output, exit 1 if a
  file does not load (a rule without ``output`` is the error this fake knows).
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


def _load_rules(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = {
        "errors": [],
        "name": str(path),
        "schema_valid": True,
        "schema_warnings": [],
        "successful": True,
        "warnings": [],
    }
    items = yaml.safe_load(path.read_text()) or []
    for item in items:
        if isinstance(item, dict) and "rule" in item and "output" not in item:
            result["successful"] = False
            result["errors"].append(
                {
                    "code": "LOAD_ERR_YAML_VALIDATE",
                    "codedesc": "Error validating internal structure of YAML file",
                    "message": "Item has no mapping for key 'output'",
                    "context": {"snippet": f"- rule: {item['rule']}\n  ^\n"},
                }
            )
    return result


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
    for rules in config.get("rules_files") or []:
        path = Path(rules)
        if path.is_file() and not _load_rules(path)["successful"]:
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
        config = yaml.safe_load(path.read_text()) or {}
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
        results = [_load_rules(Path(name)) for name in flags["-V"]]
        if json_output:
            print(json.dumps({"falco_load_results": results}))
        return 0 if all(r["successful"] for r in results) else 1
    return _fail("the fake falco does not watch system calls")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
