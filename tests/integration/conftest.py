"""Deploy the seed architecture once for the end-to-end tests, on a real Juju.

Needs (``make integration``): a Juju controller with a machine cloud that gives VMs (LXD),
a Kubernetes cloud, and both charms packed (``make pack``). Concierge's ``dev`` preset gives
all of that. Without a reachable controller every test here fails at once with a message
saying so: these tests never pass, and never skip, for lack of a Juju.

Environment:
  FALCO_CHARM, FALCOSIDEKICK_CHARM  packed charms (default: charms/*/<name>_*.charm)
  JUJU_MACHINE_CONTROLLER           controller of the machine cloud (default: concierge-lxd
                                    when it exists, else the current controller)
  JUJU_K8S_CONTROLLER               controller of the K8s cloud (default: concierge-k8s when
                                    it exists, else the machine controller)
  JUJU_MACHINE_CLOUD, JUJU_K8S_CLOUD  cloud names when one controller has both clouds
  KEEP_MODELS=1                     keep the models after the run, for debugging
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jubilant
import pytest

ROOT = Path(__file__).resolve().parents[2]
NEEDS = (
    "The end-to-end tests need a Juju controller with a machine (LXD) cloud and a "
    "Kubernetes cloud, and both charms packed (see tests/integration/conftest.py)"
)
TIMEOUT = 30 * 60


def _juju_json(*args: str) -> dict[str, object]:
    if shutil.which("juju") is None:
        pytest.fail(f"{NEEDS}: there is no `juju` command here.", pytrace=False)
    try:
        out = subprocess.run(
            ["juju", *args, "--format", "json"],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        pytest.fail(f"{NEEDS}: `juju {' '.join(args)}` failed: {stderr.strip()}", pytrace=False)
    data = json.loads(out.stdout or "{}")
    return data if isinstance(data, dict) else {}


def _packed(name: str, variable: str) -> Path:
    if path := os.environ.get(variable):
        return Path(path)
    found = sorted((ROOT / "charms" / name).glob(f"{name}_*.charm"))
    if not found:
        pytest.fail(f"{NEEDS}: no packed {name} charm (run `make pack` or set {variable})",
                    pytrace=False)  # fmt: skip
    return found[-1]


@dataclass(frozen=True)
class Deployment:
    """Where everything of the seed architecture runs."""

    hosts: jubilant.Juju
    sidekick: jubilant.Juju
    sidekick_offer: str

    def falco_unit_status(self) -> tuple[str, jubilant.statustypes.UnitStatus]:
        """The Falco unit on ubuntu/0 and its status (subordinates sit under their principal)."""
        principal = self.hosts.status().apps["ubuntu"].units["ubuntu/0"]
        name, status = next(
            (name, status) for name, status in principal.subordinates.items()
            if name.startswith("falco/")
        )  # fmt: skip
        return name, status

    @property
    def falco_unit(self) -> str:
        """The Falco unit on ubuntu/0."""
        return self.falco_unit_status()[0]


def _controllers() -> tuple[str, str]:
    controllers = _juju_json("controllers").get("controllers") or {}
    if not isinstance(controllers, dict) or not controllers:
        pytest.fail(f"{NEEDS}: `juju controllers` lists none.", pytrace=False)
    current = str(_juju_json("controllers").get("current-controller") or next(iter(controllers)))
    machine = os.environ.get("JUJU_MACHINE_CONTROLLER") or (
        "concierge-lxd" if "concierge-lxd" in controllers else current
    )
    k8s = os.environ.get("JUJU_K8S_CONTROLLER") or (
        "concierge-k8s" if "concierge-k8s" in controllers else machine
    )
    for controller in {machine, k8s}:
        _juju_json("models", "--controller", controller)  # proves it answers
    return machine, k8s


@pytest.fixture(scope="session")
def deployment() -> Iterator[Deployment]:
    """The seed architecture, deployed and settled, shared by every end-to-end test."""
    machine_controller, k8s_controller = _controllers()
    falco_charm = _packed("falco", "FALCO_CHARM")
    sidekick_charm = _packed("falcosidekick-k8s", "FALCOSIDEKICK_CHARM")
    suffix = uuid.uuid4().hex[:6]
    hosts_model, sidekick_model = f"falco-hosts-{suffix}", f"falcosidekick-{suffix}"

    hosts = jubilant.Juju()
    hosts.add_model(hosts_model, os.environ.get("JUJU_MACHINE_CLOUD"),
                    controller=machine_controller)  # fmt: skip
    sidekick = jubilant.Juju()
    sidekick.add_model(sidekick_model, os.environ.get("JUJU_K8S_CLOUD"),
                       controller=k8s_controller)  # fmt: skip
    hosts.wait_timeout = sidekick.wait_timeout = TIMEOUT
    try:
        # Kubernetes side: the sidekick with its own certificate, alerts to Loki through a
        # collector (as in COS), and Loki itself so the tests can query what arrived.
        sidekick.deploy(
            sidekick_charm,
            "falcosidekick-k8s",
            resources={"falcosidekick-image": "falcosecurity/falcosidekick:2.34.1"},
        )
        sidekick.deploy("self-signed-certificates")
        sidekick.deploy("opentelemetry-collector-k8s", trust=True)
        sidekick.deploy("loki-k8s", "loki", trust=True)
        sidekick.integrate("falcosidekick-k8s:certificates", "self-signed-certificates")
        sidekick.integrate(
            "falcosidekick-k8s:send-loki-logs", "opentelemetry-collector-k8s:receive-loki-logs"
        )
        sidekick.integrate("falcosidekick-k8s:logging", "loki:logging")
        sidekick.integrate("opentelemetry-collector-k8s:send-loki-logs", "loki:logging")
        sidekick.offer("falcosidekick-k8s", endpoint="http-endpoint", name="falcosidekick")

        # Machine side: Falco on VMs (its drivers need the host kernel, not an LXD container).
        hosts.deploy(
            "ubuntu",
            base="ubuntu@24.04",
            num_units=1,
            constraints={"virt-type": "virtual-machine"},
        )
        hosts.deploy(falco_charm, "falco")
        hosts.integrate("falco:general-info", "ubuntu")
        offer = f"admin/{sidekick_model}.falcosidekick"
        hosts.consume(offer, "falcosidekick", controller=k8s_controller)
        hosts.integrate("falco:http-endpoint", "falcosidekick")

        sidekick.wait(jubilant.all_active, error=jubilant.any_error)
        hosts.wait(jubilant.all_active, error=jubilant.any_error)
        yield Deployment(hosts=hosts, sidekick=sidekick, sidekick_offer=offer)
    finally:
        if not os.environ.get("KEEP_MODELS"):
            for juju in (hosts, sidekick):
                if juju.model:
                    juju.destroy_model(juju.model, destroy_storage=True, force=True)
