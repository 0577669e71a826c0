"""The Terraform modules parse and name exactly the endpoints the charms declare."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
CHARM_MODULES = ["falco", "falcosidekick-k8s"]


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and block labels; drop them."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


def _module(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every top-level block of every .tf file of the module, merged by block type."""
    merged: dict[str, list[dict[str, Any]]] = {}
    for tf in sorted(path.glob("*.tf")):
        with tf.open() as handle:
            parsed = _unquote(hcl2.load(handle))
        for block_type, blocks in parsed.items():
            if block_type != "__comments__":
                merged.setdefault(block_type, []).extend(blocks)
    return merged


def _named(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {name: body for block in blocks for name, body in block.items()}


def _charmcraft(charm: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "charms" / charm / "charmcraft.yaml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(
    "module", sorted(p.parent.relative_to(TERRAFORM) for p in TERRAFORM.rglob("*.tf"))
)
def test_every_module_parses(module: Path) -> None:
    """arrange: a module directory. act: parse every file. assert: blocks were found."""
    assert _module(TERRAFORM / module)


@pytest.mark.parametrize("charm", CHARM_MODULES)
def test_endpoint_outputs_match_charmcraft(charm: str) -> None:
    """arrange: module outputs and charmcraft.yaml. assert: same endpoints, same roles."""
    outputs = _named(_module(TERRAFORM / charm)["output"])
    meta = _charmcraft(charm)

    for role in ("requires", "provides"):
        declared = set(meta.get(role, {}))
        published = outputs[role]["value"]
        assert set(published.values()) == declared, role
        for purpose, endpoint in published.items():
            assert purpose == endpoint.replace("-", "_")


@pytest.mark.parametrize("charm", CHARM_MODULES)
def test_module_deploys_the_charm_with_the_usual_variables(charm: str) -> None:
    """arrange: a charm module. assert: it deploys that charm and takes the usual inputs."""
    module = _module(TERRAFORM / charm)
    variables = _named(module["variable"])
    (application,) = _named(module["resource"])["juju_application"].values()

    assert {"model_uuid", "app_name", "channel", "revision", "base", "config"} <= set(variables)
    assert application["charm"][0]["name"] == _charmcraft(charm)["name"]
    assert application["model_uuid"] == "${var.model_uuid}"


def test_subordinate_module_sets_no_unit_count() -> None:
    """arrange: the falco module. assert: no units (providers >= 0.19 reject them)."""
    module = _module(TERRAFORM / "falco")
    (application,) = _named(module["resource"])["juju_application"].values()

    assert _charmcraft("falco")["subordinate"] is True
    assert "units" not in application
    assert "units" not in _named(module["variable"])


def test_example_only_uses_endpoints_the_modules_output() -> None:
    """arrange: the seed example. assert: every module.<m>.<role>.<x> reference resolves."""
    text = "\n".join(p.read_text() for p in (TERRAFORM / "examples" / "seed").glob("*.tf"))
    sources = {"falco": "falco", "falcosidekick": "falcosidekick-k8s"}
    references = re.findall(r"module\.(\w+)\.(requires|provides)\.(\w+)", text)

    assert references
    for module_name, role, purpose in references:
        outputs = _named(_module(TERRAFORM / sources[module_name])["output"])
        assert purpose in outputs[role]["value"], f"module.{module_name}.{role}.{purpose}"
