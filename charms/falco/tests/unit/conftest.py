"""Fixtures: a fake machine under a temporary root, a charm directory with a payload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from charm import FalcoCharm
from machine import FakeMachine, build_payload
from ops import testing
from tls_material import make_ca

SIDEKICK = "falcosidekick-k8s"
SIDEKICK_URL = "https://sidekick.example:2801/"


@pytest.fixture(name="machine")
def machine_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMachine]:
    machine = FakeMachine(tmp_path / "machine")
    for key, value in machine.environ().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(FalcoCharm, "filesystem_root", machine.root)
    yield machine


@pytest.fixture(name="charm_root")
def charm_root_fixture(tmp_path: Path) -> Path:
    root = tmp_path / "charm"
    build_payload(root / "payload")
    return root


@pytest.fixture(name="ctx")
def ctx_fixture(machine: FakeMachine, charm_root: Path) -> testing.Context[FalcoCharm]:
    return testing.Context(FalcoCharm, charm_root=charm_root)


@pytest.fixture(name="no_resource")
def no_resource_fixture(tmp_path: Path) -> testing.Resource:
    # What Charmhub hands out when the operator attached nothing: an empty placeholder.
    empty = tmp_path / "empty-resource" / "falco.tar.gz"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    return testing.Resource(name="falco", path=empty)


@pytest.fixture(name="state")
def state_fixture(no_resource: testing.Resource) -> testing.State:
    return testing.State(resources={no_resource})


@pytest.fixture(name="ca_pem")
def ca_pem_fixture() -> str:
    return make_ca("Sidekick CA").cert_pem


def sidekick_relation(url: str = SIDEKICK_URL, ca_pem: str | None = None) -> testing.Relation:
    """Return an http-endpoint relation as the sidekick's leader publishes it."""
    data = {"url": json.dumps(url)}
    if ca_pem:
        data["ca_cert"] = json.dumps(ca_pem)
    return testing.Relation("http-endpoint", remote_app_name=SIDEKICK, remote_app_data=data)
