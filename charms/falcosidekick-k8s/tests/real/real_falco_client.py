"""The real Falco as a client of the sidekick, configured by the falco charm's own renderer.

The falco charm has its own environment (``charms/falco``), so its renderer runs there, in
a subprocess (``uv run``), as ``tests/test_alert_chain.py`` does: it writes the falco.yaml
the charm would render for the published URL and CA and a client certificate, and runs the
falco charm's self-test handshake against the sidekick. The real Falco (the workloads
tarball) then replays the self-test capture through that falco.yaml, posting every alert.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import workloads

FALCO_CHARM = Path(__file__).resolve().parents[2].parent / "falco"

# Runs in the falco charm's environment. argv[1]: JSON {"payload": dir, "url", "ca_file",
# "metrics_port", "marker_rule", "clients": {name: [cert, key] or null}, "out": dir}.
# Writes <out>/<name>.yaml per client and prints {name: self-test handshake problem}.
_PROBE = """
import json, sys
from pathlib import Path
sys.path[:0] = ["src", "lib"]
import falco_config, self_test
from config import FalcoConfig
from payload import Payload

args = json.loads(sys.argv[1])
payload = Payload("0" * 64, Path(args["payload"]), "0.44.1", "10.2.0+driver")
defaults = FalcoConfig.model_fields
topology = falco_config.Topology(
    "fmodel", "00000000-0000-4000-8000-000000000001", "falco", "falco/0", "falco"
)
problems = {}
for name, client in args["clients"].items():
    http = falco_config.HttpDestination(
        args["url"],
        Path(args["ca_file"]),
        client_cert=Path(client[0]) if client else None,
        client_key=Path(client[1]) if client else None,
    )
    inputs = falco_config.ConfigInputs(
        payload=payload,
        engine_kind="nodriver",
        buffer_size_preset=defaults["buffer_size_preset"].default,
        outputs_queue_capacity=defaults["outputs_queue_capacity"].default,
        topology=topology,
        http=http,
        rules=falco_config.RuleInputs(charm_rules=(Path(args["marker_rule"]),)),
        metrics_port=args["metrics_port"],
    )
    text = falco_config.render(falco_config.build(inputs))
    (Path(args["out"]) / f"{name}.yaml").write_text(text)
    problems[name] = self_test.handshake_problem(
        args["url"], args["ca_file"], "", tuple(client) if client else None
    )
print(json.dumps(problems))
"""


@dataclass(frozen=True)
class Rendered:
    """The falco.yaml of each client, and what the charm's self-test handshake said."""

    configs: dict[str, Path]
    handshakes: dict[str, str | None]


def render(
    falco_dir: Path,
    url: str,
    ca_file: Path,
    metrics_port: int,
    clients: dict[str, tuple[Path, Path] | None],
    out: Path,
) -> Rendered:
    """Render a falco.yaml per client with the falco charm's renderer (see _PROBE)."""
    args: dict[str, Any] = {
        "payload": str(falco_dir),
        "url": url,
        "ca_file": str(ca_file),
        "metrics_port": metrics_port,
        "marker_rule": str(workloads.require(workloads.SELFTEST_MARKER_RULE)),
        "clients": {
            name: [str(pair[0]), str(pair[1])] if pair else None for name, pair in clients.items()
        },
        "out": str(out),
    }
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to run the falco charm in its own environment (make deps)"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.setdefault("UV_PYTHON", getattr(sys, "_base_executable", sys.executable))
    env["UV_PYTHON_DOWNLOADS"] = "never"
    command = [uv, "run", "--quiet", "--directory", str(FALCO_CHARM), "python", "-c", _PROBE]
    result = subprocess.run(
        [*command, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    handshakes = json.loads(result.stdout.splitlines()[-1])
    return Rendered({name: out / f"{name}.yaml" for name in clients}, handshakes)


def replay(falco_dir: Path, config: Path) -> str:
    """Run the real Falco on ``config`` over the self-test capture; return its log."""
    capture = workloads.require(workloads.SELFTEST_CAPTURE)
    result = subprocess.run(
        [
            str(falco_dir / "usr/bin/falco"),
            "-c",
            str(config),
            "-o",
            "engine.kind=replay",
            "-o",
            f"engine.replay.capture_file={capture}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "FALCO_HOSTNAME": workloads.SELFTEST_HOSTNAME},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def expected_rules() -> list[str]:
    """Return the rule of every alert the capture raises, in order."""
    path = workloads.require(workloads.SELFTEST_EXPECTED)
    return [json.loads(line)["rule"] for line in path.read_text().splitlines() if line]
