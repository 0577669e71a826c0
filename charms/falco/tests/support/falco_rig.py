"""The charm on a fake machine: fixtures and helpers shared by the unit and fault tests.

The conftest of each test directory registers the fixtures by importing them from here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from charm import FalcoCharm
from git_repos import RulesRepo, rule
from machine import FakeMachine, build_payload, unpacked_payload
from ops import testing
from tls_material import Issued, make_ca, sign_csr

SIDEKICK = "falcosidekick-k8s"
SIDEKICK_URL = "https://sidekick.example:2801/"
REPO_HOST = "git.example"
REPO_URL = f"ssh://git@{REPO_HOST}/org/falco-rules.git"
# Any well-formed ed25519 public key: the fake ssh server presents it as its host key.
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVGzeGMZzHOPJ5vM/OGWcs7ZOf9U9BB36Zi5S5Xx4nD"
KNOWN_HOSTS = f"{REPO_HOST} {HOST_KEY}"
DEPLOY_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


@pytest.fixture(name="machine")
def machine_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMachine]:
    machine = FakeMachine(tmp_path / "machine")
    for key, value in machine.environ().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(FalcoCharm, "filesystem_root", machine.root)
    # Falco's /metrics on the fake machine (tests/real hold it to the real one).
    monkeypatch.setattr(FalcoCharm, "falco_metrics", staticmethod(machine.falco_metrics))
    monkeypatch.setattr(FalcoCharm, "reload_wait_s", 0.5)
    yield machine


@pytest.fixture(name="charm_root")
def charm_root_fixture(tmp_path: Path) -> Path:
    root = tmp_path / "charm"
    build_payload(root / "payload")
    return root


@pytest.fixture(name="fake_falco")
def fake_falco_fixture(tmp_path: Path) -> Path:
    """The fake falco binary of a payload, unpacked outside any machine."""
    return unpacked_payload(tmp_path / "unpacked") / "usr/bin/falco"


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


@dataclasses.dataclass
class FakeClock:
    """The charm's clock, moved by the test."""

    now: float = 1_700_000_000.0

    def advance(self, minutes: float) -> None:
        self.now += minutes * 60

    def __call__(self) -> float:
        return self.now


@pytest.fixture(name="clock")
def clock_fixture(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(FalcoCharm, "clock", staticmethod(clock))
    return clock


@pytest.fixture(name="repo")
def repo_fixture(tmp_path: Path, machine: FakeMachine) -> RulesRepo:
    """A rules repository served over (fake) ssh, with a deploy key and a pinned host key."""
    repo = RulesRepo(tmp_path / "server")
    repo.commit({"rules.d/10-custom.yaml": rule("Custom rule one")})
    repo.tag("v1")
    machine.serve(REPO_URL, repo.bare)
    machine.set_network(host_keys={REPO_HOST: HOST_KEY}, deploy_keys={REPO_HOST: DEPLOY_KEY})
    return repo


@pytest.fixture(name="deploy_key")
def deploy_key_fixture() -> testing.Secret:
    return testing.Secret(tracked_content={"value": DEPLOY_KEY})


def repo_config(secret: testing.Secret, ref: str = "v1", **extra: Any) -> dict[str, Any]:
    """Return the options of an ssh repository at ``ref`` with a pinned host key."""
    return {
        "custom-config-repository": f"git+ssh://git@{REPO_HOST}/org/falco-rules.git@{ref}",
        "custom-config-repo-ssh-key": secret.id,
        "custom-config-repo-known-hosts": KNOWN_HOSTS,
        **extra,
    }


@dataclasses.dataclass
class Rig:
    """The charm on a fake machine, a rules repository it reaches over (fake) ssh, a clock."""

    ctx: testing.Context[FalcoCharm]
    state: testing.State
    machine: FakeMachine
    repo: RulesRepo
    deploy_key: testing.Secret
    clock: FakeClock

    def config(self, ref: str = "v1", **extra: Any) -> dict[str, Any]:
        """Return the options of the repository at ``ref``, pinned, with the deploy key."""
        return repo_config(self.deploy_key, ref, **extra)

    def install(self, ref: str = "v1", **extra: Any) -> testing.State:
        """Install Falco with the repository at ``ref`` (and ``extra`` options)."""
        return self.start(self.config(ref, **extra))

    def start(self, config: dict[str, Any]) -> testing.State:
        """Install Falco with exactly ``config``; the deploy key secret exists."""
        return self.ctx.run(self.ctx.on.install(), dataclasses.replace(self.state, config=config))


@pytest.fixture(name="rig")
def rig_fixture(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    repo: RulesRepo,
    deploy_key: testing.Secret,
    clock: FakeClock,
) -> Rig:
    with_key = dataclasses.replace(state, secrets={deploy_key})
    return Rig(ctx, with_key, machine, repo, deploy_key, clock)


# --- the certificates relation (client certificate) ----------------------------------
def requested_csrs(relation: testing.Relation) -> list[str]:
    raw = relation.local_unit_data.get("certificate_signing_requests", "[]")
    return [request["certificate_signing_request"] for request in json.loads(raw)]


def answered(relation: testing.Relation, ca: Issued) -> testing.Relation:
    """Return ``relation`` with the provider's certificate for every CSR of the unit."""
    answers = [
        {
            "certificate_signing_request": csr,
            "certificate": (cert := sign_csr(csr, ca)),
            "ca": ca.cert_pem,
            "chain": [cert, ca.cert_pem],
        }
        for csr in requested_csrs(relation)
    ]
    return dataclasses.replace(relation, remote_app_data={"certificates": json.dumps(answers)})


def only(out: testing.State, endpoint: str) -> testing.Relation:
    (found,) = (r for r in out.relations if r.endpoint == endpoint)
    assert isinstance(found, testing.Relation)
    return found


def with_certificate(
    ctx: testing.Context[FalcoCharm], out: testing.State, ca: Issued
) -> testing.State:
    """Run the relation's hooks until the provider answered the unit's request."""
    relations = {r for r in out.relations if r.endpoint != "certificates"}
    certificates = testing.Relation("certificates", remote_app_name="self-signed-certificates")
    out = dataclasses.replace(out, relations=relations | {certificates})
    out = ctx.run(ctx.on.relation_created(certificates), out)
    issued = answered(only(out, "certificates"), ca)
    relations = {r for r in out.relations if r.id != issued.id} | {issued}
    return ctx.run(
        ctx.on.relation_changed(issued, remote_unit=0),
        dataclasses.replace(out, relations=relations),
    )
