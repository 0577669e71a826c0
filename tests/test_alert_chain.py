"""The alert chain across both charms: Falco's topology fields -> Loki labels -> queries.

A Falco alert reaches Grafana only if three independent pieces agree on label names:

1. the falco charm adds the Juju topology of its unit to every alert
   (``append_output`` ``extra_fields`` in the falco.yaml it renders);
2. the falcosidekick-k8s charm makes those fields Loki stream labels
   (``loki.extralabels`` in the config it renders);
3. the dashboards and Loki alert rules it sends select Falco's streams by those labels (and
   by the falco charm's name), reading priority and rule from the JSON line.

Each side is read from what its charm really renders, in the charm's own environment
(``uv run`` in ``charms/<name>``), never from a list written here. The check itself is a
plain function, so the tests below can show that renaming a field on any side breaks it.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FALCO_DIR = ROOT / "charms" / "falco"
SIDEKICK_DIR = ROOT / "charms" / "falcosidekick-k8s"

# Runs in the falco charm's environment: builds falco.yaml with the charm's own renderer.
# Sample values for the renderer's inputs; a new required input fails with a clear message.
_FALCO_PROBE = """
import dataclasses, json, sys
from pathlib import Path
sys.path[:0] = ["src", "lib"]
import falco_config
from payload import Payload

samples = {
    "payload": Payload(sha256="0" * 64, directory=Path("/opt/falco"),
                       falco_version="0.44.1", driver_version="9.0.0+driver"),
    "engine_kind": "modern_ebpf",
    "buffer_size_preset": 4,
    "outputs_queue_capacity": 100,
    "topology": falco_config.Topology(**json.loads(sys.argv[1])),
}
fields = dataclasses.fields(falco_config.ConfigInputs)
missing = [f.name for f in fields if f.name not in samples
           and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
if missing:
    sys.exit(f"ConfigInputs needs {missing}: add samples in tests/test_alert_chain.py")
given = {f.name: samples[f.name] for f in fields if f.name in samples}
inputs = falco_config.ConfigInputs(**given)
print(json.dumps(falco_config.render(falco_config.build(inputs))))
"""


def _uv_run(charm_dir: Path, *args: str) -> str:
    """Run ``python args`` in ``charm_dir``'s own environment; return its last stdout line."""
    # `uv run` names itself in $UV; `make test` also puts the uv it installed on the PATH.
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to run each charm in its own environment (make deps installs it)"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.setdefault("UV_PYTHON", getattr(sys, "_base_executable", sys.executable))
    env["UV_PYTHON_DOWNLOADS"] = "never"
    result = subprocess.run(
        [uv, "run", "--quiet", "--directory", str(charm_dir), "python", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def _charm_name(charm_dir: Path) -> str:
    """Return the ``name:`` of a charmcraft.yaml (what ``self.meta.name`` gives the charm)."""
    text = (charm_dir / "charmcraft.yaml").read_text()
    match = re.search(r"^name:\s*(\S+)\s*$", text, re.MULTILINE)
    assert match, "charmcraft.yaml has no name"
    return match.group(1)


def _load_logql() -> ModuleType:
    """Load the sidekick charm's LogQL label reader (standard library only) from its tests."""
    spec = importlib.util.spec_from_file_location("logql", SIDEKICK_DIR / "tests" / "logql.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["logql"] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


logql = _load_logql()


@pytest.fixture(name="falco", scope="module")
def falco_fixture() -> dict[str, Any]:
    """The falco charm's name and the extra fields of its rendered falco.yaml."""
    import yaml

    name = _charm_name(FALCO_DIR)
    topology = {
        "model": "prod",
        "model_uuid": "00000000-0000-4000-8000-000000000002",
        "application": "falco",
        "unit": "falco/3",
        "charm_name": name,
    }
    rendered = yaml.safe_load(
        json.loads(_uv_run(FALCO_DIR, "-c", _FALCO_PROBE, json.dumps(topology)))
    )
    fields: dict[str, Any] = {}
    for item in rendered["append_output"]:
        for entry in item.get("extra_fields", []):
            fields.update(entry)
    return {"charm": name, "fields": fields}


@pytest.fixture(name="sidekick", scope="module")
def sidekick_fixture() -> dict[str, Any]:
    """The Loki labels, Loki rules and dashboards the sidekick charm really sends."""
    facts: dict[str, Any] = json.loads(_uv_run(SIDEKICK_DIR, "tests/chain_probe.py"))
    return facts


def chain_breaks(
    falco_charm: str,
    falco_fields: dict[str, Any],
    extralabels: list[str],
    loki_rules: dict[str, Any],
    dashboards: dict[str, dict[str, Any]],
) -> list[str]:
    """Return every place where the chain from Falco's fields to the queries is broken."""
    breaks = []
    for label in extralabels:
        if label not in falco_fields:
            breaks.append(f"the sidekick labels streams with {label!r}: no Falco alert has it")
        elif not isinstance(falco_fields[label], str):
            breaks.append(f"Falco's {label!r} is not a string: the sidekick drops it as a label")
    breaks += [
        f"Falco adds {field!r} to alerts but the sidekick does not make it a Loki label"
        for field in falco_fields
        if field.startswith("juju_") and field not in extralabels
    ]
    queries = [
        (f"dashboard {key}", expr)
        for key, dashboard in dashboards.items()
        for expr in logql.dashboard_queries(dashboard)
    ] + [(f"Loki rule {name}", expr) for name, expr in logql.rule_expressions(loki_rules)]
    if not any(where.startswith("Loki rule") for where, _ in queries):
        breaks.append("no Loki alert rule is sent on send-loki-logs")
    for where, expr in queries:
        query = logql.parse(expr)
        if unknown := logql.unknown_labels(query, set(extralabels)):
            breaks.append(f"{where} uses labels the Loki output does not write: {sorted(unknown)}")
        if not query.selectors or any(
            selector.get("juju_charm") != falco_charm for selector in query.selectors
        ):
            breaks.append(f"{where} does not select the {falco_charm!r} charm's streams")
        if where.startswith("Loki rule") and not {"juju_unit", "rule"} <= query.grouping:
            breaks.append(f"{where} does not keep the Juju unit and the rule in the alert")
    return breaks


def test_the_chain_holds(falco: dict[str, Any], sidekick: dict[str, Any]) -> None:
    """arrange: both charms' rendered outputs. act: follow the labels. assert: no break."""
    breaks = chain_breaks(
        falco["charm"],
        falco["fields"],
        sidekick["extralabels"],
        sidekick["loki_rules"],
        sidekick["dashboards"],
    )

    assert breaks == []
    assert falco["fields"]["juju_unit"] == "falco/3"
    assert len(sidekick["dashboards"]) == 2


def _rename_in_rules(rules: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    renamed = copy.deepcopy(rules)
    for group in renamed["groups"]:
        for rule in group["rules"]:
            rule["expr"] = rule["expr"].replace(old, new)
    return renamed


def _rename_in_dashboards(dashboards: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return {key: json.loads(json.dumps(d).replace(old, new)) for key, d in dashboards.items()}


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        ("falco field", "the sidekick labels streams with 'juju_unit': no Falco alert has it"),
        ("sidekick label", "Falco adds 'juju_unit' to alerts but the sidekick does not"),
        ("dashboard selector", "dashboard file:falco-security-alerts uses labels"),
        ("loki rule grouping", "Loki rule FalcoCriticalAlert uses labels the Loki output"),
        ("falco charm name", "does not select the 'falco-machine' charm's streams"),
    ],
)
def test_renaming_a_field_on_any_side_breaks_the_chain(
    falco: dict[str, Any], sidekick: dict[str, Any], side: str, expected: str
) -> None:
    """arrange: copies of both sides, one name changed. act: follow the labels. assert: break."""
    charm, fields = falco["charm"], dict(falco["fields"])
    labels = list(sidekick["extralabels"])
    rules, dashboards = sidekick["loki_rules"], sidekick["dashboards"]
    if side == "falco field":
        fields["juju_unit_name"] = fields.pop("juju_unit")
    elif side == "sidekick label":
        labels = [("unit" if label == "juju_unit" else label) for label in labels]
    elif side == "dashboard selector":
        dashboards = _rename_in_dashboards(dashboards, "juju_unit=~", "unit=~")
    elif side == "loki rule grouping":
        rules = _rename_in_rules(rules, "juju_unit, rule", "unit, rule")
    else:
        charm = "falco-machine"

    breaks = chain_breaks(charm, fields, labels, rules, dashboards)

    assert any(expected in message for message in breaks), breaks
