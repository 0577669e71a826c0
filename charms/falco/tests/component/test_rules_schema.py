"""Rules files are checked against Falco 0.44.1's rule schema (``falco --rule-schema``).

The schema is structure only (which keys, which types); whether a rule loads is Falco's call
(``-V``), which the unit tests ask the fake ``falco``. Here: every rules file the tests and
the README use has Falco's structure, and the README's example also loads after the default
rules, so the documentation cannot drift from what works.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import falco_config
import git_repos
import jsonschema
import pytest
from machine import reference_file, unpacked_payload

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(name="validator", scope="module")
def validator_fixture() -> jsonschema.protocols.Validator:
    schema = json.loads(reference_file("rule-schema.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def readme_rules() -> list[str]:
    """Return the YAML blocks of the README that are rules files."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [block for block in blocks if block.lstrip().startswith(("#", "- "))]


RULES_FILES = {
    "readme": "\n".join(readme_rules()),
    "custom rule": git_repos.rule("Custom"),
    "override of a default rule": git_repos.OVERRIDE_DEFAULT,
    "default rules": reference_file("falco_rules.yaml").read_text(),
}


def test_the_readme_has_an_example_to_check() -> None:
    """arrange: the README. act: find rules blocks. assert: an override and an exception."""
    example = RULES_FILES["readme"]

    assert "override:" in example
    assert "exceptions:" in example


@pytest.mark.parametrize("name", sorted(RULES_FILES))
def test_rules_files_have_falcos_structure(
    validator: jsonschema.protocols.Validator, name: str
) -> None:
    """arrange: a rules file. act: validate against the rule schema. assert: valid."""
    document: Any = falco_config.load_yaml(RULES_FILES[name])

    assert sorted(validator.iter_errors(document), key=str) == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("- rule: r\n  desc: d\n  condition: c\n  output: o\n  priority: LOUD\n", "priority"),
        ("- rule: r\n  conditions: plural\n", "unknown key"),
        ("- list: l\n  items: [[nested]]\n", "item type"),
        ("rule: not a list\n", "top level"),
    ],
)
def test_the_schema_catches_structural_mistakes(
    validator: jsonschema.protocols.Validator, text: str, why: str
) -> None:
    """arrange: a structurally wrong file. act: validate. assert: rejected."""
    assert not validator.is_valid(falco_config.load_yaml(text)), why


def test_the_readme_example_loads_after_the_default_rules(tmp_path: Path) -> None:
    """arrange: the README example as a file. act: falco -V default, example. assert: ok."""
    top = unpacked_payload(tmp_path)
    example = tmp_path / "10-overrides.yaml"
    example.write_text(RULES_FILES["readme"])

    result = subprocess.run(
        [
            top / "usr/bin/falco",
            "-o",
            "json_output=true",
            "-V",
            str(top / "etc/falco/falco_rules.yaml"),
            "-V",
            str(example),
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    loaded = json.loads(result.stdout)["falco_load_results"]
    assert [r["successful"] for r in loaded] == [True, True], loaded
    assert result.returncode == 0
