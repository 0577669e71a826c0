"""Both charmcraft.yaml files declare exactly the public contract of DESIGN.md section 2.

Charm, endpoint and interface names are referenced by users' bundles, Terraform plans and
cross-model offers; renaming one breaks deployments, so the contract is pinned here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

# endpoint -> (role, interface, limit, scope)
FALCO_ENDPOINTS = {
    "general-info": ("requires", "juju-info", None, "container"),
    "http-endpoint": ("requires", "falcosidekick_http_endpoint", 1, None),
    # Issue 16: each unit's client certificate (mutual TLS to Falcosidekick).
    "certificates": ("requires", "tls-certificates", 1, None),
    "cos-agent": ("provides", "cos_agent", 1, None),
}
SIDEKICK_ENDPOINTS = {
    "http-endpoint": ("provides", "falcosidekick_http_endpoint", None, None),
    "certificates": ("requires", "tls-certificates", 1, None),
    "ingress": ("requires", "ingress", 1, None),
    "send-loki-logs": ("requires", "loki_push_api", 1, None),
    "logging": ("requires", "loki_push_api", 1, None),
    # Issue 18: alertmanager-k8s's `alerting` endpoint provides it.
    "alertmanager": ("requires", "alertmanager_dispatch", 1, None),
    "metrics-endpoint": ("provides", "prometheus_scrape", None, None),
    "grafana-dashboard": ("provides", "grafana_dashboard", None, None),
    "sidekick-peers": ("peers", "falcosidekick_peers", None, None),
}


def _charmcraft(charm: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "charms" / charm / "charmcraft.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _endpoints(meta: dict[str, Any]) -> dict[str, tuple[str, str, int | None, str | None]]:
    found = {}
    for role in ("requires", "provides", "peers"):
        for name, spec in (meta.get(role) or {}).items():
            found[name] = (role, spec["interface"], spec.get("limit"), spec.get("scope"))
    return found


@pytest.mark.parametrize(
    ("charm", "endpoints"),
    [("falco", FALCO_ENDPOINTS), ("falcosidekick-k8s", SIDEKICK_ENDPOINTS)],
)
def test_endpoints_are_exactly_the_contract(charm: str, endpoints: dict[str, Any]) -> None:
    """arrange: charmcraft.yaml. act: list endpoints. assert: names, roles, limits, scope."""
    meta = _charmcraft(charm)

    assert meta["name"] == charm
    assert _endpoints(meta) == endpoints


@pytest.mark.parametrize("charm", ["falco", "falcosidekick-k8s"])
def test_platforms_base_and_build(charm: str) -> None:
    """arrange: charmcraft.yaml. act: read. assert: 24.04 on amd64+arm64, uv-built charm."""
    meta = _charmcraft(charm)

    assert meta["type"] == "charm"
    assert meta["base"] == "ubuntu@24.04"
    assert set(meta["platforms"]) == {"amd64", "arm64"}
    assert meta["parts"]["charm"]["plugin"] == "uv"
    assert "juju >= 3.6" in meta["assumes"]


def test_falco_is_a_subordinate() -> None:
    """arrange: falco's charmcraft.yaml. act: read. assert: subordinate, no containers."""
    meta = _charmcraft("falco")

    assert meta["subordinate"] is True
    assert "containers" not in meta


def test_sidekick_container_image_and_port() -> None:
    """arrange: the sidekick's charmcraft.yaml. act: read. assert: container, image, port."""
    meta = _charmcraft("falcosidekick-k8s")

    assert "k8s-api" in meta["assumes"]
    assert meta["containers"] == {"falcosidekick": {"resource": "falcosidekick-image"}}
    resource = meta["resources"]["falcosidekick-image"]
    assert resource["type"] == "oci-image"
    assert resource["upstream-source"] == "falcosecurity/falcosidekick:2.34.1"
    assert meta["config"]["options"]["port"]["type"] == "int"
    assert meta["config"]["options"]["port"]["default"] == 2801
