"""The fake falco (tests/support/fake_falco.py) held to the real Falco 0.44.1.

The unit, fault, fuzz and bench tests run the charm against the fake, which is fast and
scriptable. It is only worth that if it answers like the real binary where the charm looks:
each case below runs the same command line against both, each with the charm's own rendered
falco.yaml pointing at its own payload, and compares the exit code, which rules files load,
and the first error: its code, and its message where the fake claims to copy it (its
docstring says where). Paths that differ between the two sides are normalized first.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import falco_config
import pytest
import yaml
from git_repos import OVERRIDE_DEFAULT, rule
from machine import DRIVER_VERSION, FALCO_VERSION, unpacked_payload
from payload import Payload
from real_falco import Falco, loaded_rules_files, log_lines
from real_unit import UNIT_TOPOLOGY

GOOD = rule("Good")
# Appends to the condition of the rule GOOD defines: valid only after it.
EXTENDS_GOOD = (
    "- rule: Good\n  condition: and proc.name = cat\n  override:\n    condition: append\n"
)
FILES = {
    "good.yaml": GOOD,
    "extends-good.yaml": EXTENDS_GOOD,
    "parse-error.yaml": "- rule: [unclosed\n",
    "not-a-list.yaml": "rule: not a list\n",
    "no-output.yaml": "- rule: No output\n  desc: d\n  condition: evt.type = openat\n"
    "  priority: WARNING\n",
    "override-undefined.yaml": EXTENDS_GOOD.replace("Good", "Nobody"),
    "override-default.yaml": OVERRIDE_DEFAULT,
    "disable-default.yaml": "- rule: Read sensitive file untrusted\n  enabled: false\n",
    "disable-unknown.yaml": "- rule: Nobody\n  enabled: false\n",
    "folder/a.yaml": rule("From a folder"),
    "folder/b.yml": "- list: folder_list\n  items: [a]\n",
    "folder/c.txt": "not rules: Falco skips other names\n",
    "folder/d.yaml.bak": "not rules either\n",
}


@dataclass(frozen=True)
class Side:
    """One binary with its payload, its own config directory and the shared rules files."""

    name: str
    falco: Falco
    payload: Path
    home: Path
    rules: Path

    def config(self, change: Callable[[dict[str, Any]], None] | None = None) -> str:
        """Write the charm's falco.yaml for this payload, changed by ``change``; its path."""
        data = falco_config.build(
            falco_config.ConfigInputs(
                payload=Payload("0" * 64, self.payload, FALCO_VERSION, DRIVER_VERSION),
                engine_kind="modern_ebpf",
                buffer_size_preset=4,
                outputs_queue_capacity=1000,
                topology=falco_config.Topology(
                    UNIT_TOPOLOGY["juju_model"],
                    UNIT_TOPOLOGY["juju_model_uuid"],
                    UNIT_TOPOLOGY["juju_application"],
                    UNIT_TOPOLOGY["juju_unit"],
                    UNIT_TOPOLOGY["juju_charm"],
                ),
            )
        )
        if change is not None:
            change(data)
        path = self.home / "falco.yaml"
        path.write_text(falco_config.render(data))
        return str(path)

    def normalize(self, text: str) -> str:
        """Replace this side's own paths by placeholders the other side shares."""
        return text.replace(str(self.payload), "<payload>").replace(str(self.home), "<home>")


@dataclass(frozen=True)
class Outcome:
    """What a command came to, in the terms the two binaries are compared in."""

    exit_code: int
    loaded: list[str] = field(default_factory=list)
    error_code: str | None = None
    error: str | None = None
    stdout: Any = None


def _error_line(stderr: str) -> str | None:
    fatal = [line for line in log_lines(stderr) if line.startswith(("Error:", "Runtime error:"))]
    return fatal[-1] if fatal else None


def _load_results(stdout: str) -> list[dict[str, Any]] | None:
    for line in stdout.splitlines():
        if line.startswith('{"falco_load_results"'):
            results: list[dict[str, Any]] = json.loads(line)["falco_load_results"]
            return results
    return None


def outcome(side: Side, args: list[str], message: bool, output: str) -> Outcome:
    """Run ``args`` on ``side``; keep the message and stdout only where they are compared."""
    result = side.falco.run(*args)
    stderr = side.normalize(result.stderr)
    results = _load_results(result.stdout)
    error_code = None
    if results is not None:
        loaded = [
            side.normalize(f"{r['name']}: {'ok' if r['successful'] else 'invalid'}")
            for r in results
        ]
        failed = [r for r in results if not r["successful"]]
        error_code = failed[0]["errors"][0]["code"] if failed else None
        error = failed[0]["errors"][0]["message"] if failed and message else None
    else:
        loaded = loaded_rules_files(stderr)
        error = _error_line(stderr) if message else None
    stdout: Any = None
    if output == "json":
        stdout = json.loads(result.stdout.splitlines()[-1])
    elif output == "text":
        stdout = result.stdout
    return Outcome(result.returncode, loaded, error_code, error, stdout)


@dataclass(frozen=True)
class Case:
    """One command line, built for a side; whether the fake copies the message, stdout."""

    args: Callable[[Side], list[str]]
    message: bool = True
    output: str = ""


def validate(*names: str, default: bool = False) -> Callable[[Side], list[str]]:
    def args(side: Side) -> list[str]:
        files = ([str(side.payload / "etc/falco/falco_rules.yaml")] if default else []) + [
            str(side.rules / name) for name in names
        ]
        return ["-c", side.config(), "-o", "json_output=true"] + [
            arg for path in files for arg in ("-V", path)
        ]

    return args


Change = Callable[[Side, dict[str, Any]], None]


def dry_run(change: Change | None = None) -> Callable[[Side], list[str]]:
    def args(side: Side) -> list[str]:
        return ["-c", side.config(lambda config: change and change(side, config)), "--dry-run"]

    return args


def set_key(path: str, value: Any) -> Change:
    def change(_: Side, config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[key] if not key.isdigit() else node[int(key)]
        node[last] = value

    return change


def rules_files(*names: str) -> Change:
    def change(side: Side, config: dict[str, Any]) -> None:
        config["rules_files"] += [str(side.rules / name) for name in names]

    return change


CASES: dict[str, Case] = {
    "--version, JSON": Case(lambda _: ["--version", "-o", "json_output=true"], output="json"),
    "--version, text": Case(lambda _: ["--version"], output="text"),
    "-c of a missing file": Case(lambda side: ["-c", f"{side.home}/missing.yaml", "--dry-run"]),
    "--dry-run of the charm's config": Case(dry_run()),
    "--dry-run: folders by name, missing files skipped": Case(
        dry_run(rules_files("missing.yaml", "folder", "good.yaml", "extends-good.yaml"))
    ),
    "--dry-run: an invalid rules file": Case(dry_run(rules_files("good.yaml", "no-output.yaml"))),
    "--dry-run: plugin library missing": Case(
        dry_run(set_key("plugins.0.library_path", "/nonexistent/libcontainer.so"))
    ),
    "--dry-run: plugin not configured": Case(dry_run(set_key("load_plugins", ["nosuch"]))),
    "--dry-run: unknown engine": Case(dry_run(set_key("engine.kind", "bogus"))),
    "--dry-run: bad priority": Case(dry_run(set_key("priority", "LOUD"))),
    "--dry-run: priority info": Case(dry_run(set_key("priority", "info"))),
    "--dry-run: bad rules selection": Case(
        dry_run(set_key("rules", [{"disable": {"rule": "x"}}, {"disable": {"bogus": "x"}}]))
    ),
    "--dry-run: rules selection by rule and tag": Case(
        dry_run(set_key("rules", [{"disable": {"tag": "network"}}, {"enable": {"rule": "x"}}]))
    ),
    "-V valid": Case(validate("good.yaml", default=True)),
    "-V YAML parse error": Case(validate("parse-error.yaml"), message=False),
    "-V not a list": Case(validate("not-a-list.yaml")),
    "-V rule without output": Case(validate("no-output.yaml")),
    "-V override of an undefined rule": Case(validate("override-undefined.yaml")),
    "-V of a missing file": Case(validate("good.yaml", "missing.yaml")),
    "-V of a folder": Case(validate("folder")),
    "-V second file overrides the first": Case(validate("good.yaml", "extends-good.yaml")),
    "-V override without the first": Case(validate("extends-good.yaml")),
    "-V override of a default rule": Case(validate("override-default.yaml", default=True)),
    "-V enabled alone, known rule": Case(validate("disable-default.yaml", default=True)),
    "-V enabled alone, unknown rule": Case(validate("disable-unknown.yaml", default=True)),
}


@pytest.fixture(name="sides", scope="module")
def sides_fixture(
    tmp_path_factory: pytest.TempPathFactory, real_falco_dir: Path
) -> dict[str, Side]:
    base = tmp_path_factory.mktemp("conformance")
    rules = base / "rules"
    for name, text in FILES.items():
        (rules / name).parent.mkdir(parents=True, exist_ok=True)
        (rules / name).write_text(text)
    found = {}
    for name in ("real", "fake"):
        home = base / name
        home.mkdir()
        top = home / "payload"
        if name == "real":
            shutil.copytree(real_falco_dir, top, symlinks=True)
        else:
            shutil.move(unpacked_payload(home / "unpacked"), top)
        found[name] = Side(name, Falco(top / "usr/bin/falco"), top, home, rules)
    return found


@pytest.mark.parametrize("case", list(CASES))
def test_the_fake_answers_like_the_real_falco(sides: dict[str, Side], case: str) -> None:
    """arrange: one command line. act: run it on both binaries. assert: the same outcome."""
    spec = CASES[case]
    real, fake = (
        outcome(side, spec.args(side), spec.message, spec.output)
        for side in (sides["real"], sides["fake"])
    )

    assert fake == real


def test_the_comparison_sees_a_difference(sides: dict[str, Side]) -> None:
    """arrange: a case only the real Falco refuses (a condition). act: both. assert: differ."""
    broken = sides["real"].rules / "unknown-field.yaml"
    broken.write_text(GOOD.replace("and fd.name =", "and fd.nme ="))
    real, fake = (
        outcome(side, validate("unknown-field.yaml")(side), True, "")
        for side in (sides["real"], sides["fake"])
    )

    assert real.error_code == "LOAD_ERR_COMPILE_CONDITION"
    assert real.error == "filter_check called with nonexistent field fd.nme"
    assert fake != real


def test_the_config_files_are_the_charms_own(sides: dict[str, Side]) -> None:
    """arrange: the real side. act: read its config. assert: the charm's, on its payload."""
    config = yaml.safe_load(Path(sides["real"].config()).read_text())

    assert config["load_plugins"] == ["container"]
    assert config["plugins"][0]["library_path"].startswith(str(sides["real"].payload))
    assert config["engine"]["kind"] == "modern_ebpf"
