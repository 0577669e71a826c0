"""The fuzz tests' worlds, and their share of the hypothesis profiles (tests/shared/fuzz_support).

The ``ci`` profile (what ``make test`` runs) comes to about 790 examples in all; each test
runs its share of the profile's examples (``worlds.examples``).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from falco_rig import (
    DEPLOY_KEY,
    HOST_KEY,
    KNOWN_HOSTS,
    REPO_HOST,
    REPO_URL,
    SIDEKICK,
    answered,
    only,
)
from fuzz_support import load_profiles
from git_repos import RulesRepo, rule
from ops import testing
from tls_material import make_ca
from worlds import World

load_profiles(ci_examples=60, fuzz_examples=1000)

SIDEKICK_URL = "https://falcosidekick.example:2801/"
HTTPS_REPO = f"https://{REPO_HOST}/org/falco-rules.git"
TOKEN = "s3cr3t-t0ken-of-the-fuzz-world"  # noqa: S105 - the fake server's token
SIDEKICK_CA = make_ca("Fuzz sidekick CA").cert_pem
CLIENT_CA = make_ca("Fuzz client CA")


@pytest.fixture(name="related_world", scope="module")
def related_world_fixture(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Alerts to a sidekick over verified TLS, metrics to a collector, inline rules."""
    world = World(tmp_path_factory.mktemp("related-world"))
    sidekick = testing.Relation(
        "http-endpoint",
        remote_app_name=SIDEKICK,
        remote_app_data={"url": json.dumps(SIDEKICK_URL), "ca_cert": json.dumps(SIDEKICK_CA)},
    )
    collector = testing.Relation(
        "cos-agent", remote_app_name="opentelemetry-collector", remote_units_data={0: {}}
    )
    state = dataclasses.replace(
        world.state,
        config={"custom-rules": rule("Inline fuzz rule")},
        relations={sidekick, collector},
    )
    world.settle(state, lambda ctx: ctx.on.install())
    return world


@pytest.fixture(name="mtls_world", scope="module")
def mtls_world_fixture(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Alerts to a sidekick that requires client certificates, presenting this unit's."""
    world = World(tmp_path_factory.mktemp("mtls-world"))
    published = {"url": json.dumps(SIDEKICK_URL), "ca_cert": json.dumps(SIDEKICK_CA)}
    sidekick = testing.Relation(
        "http-endpoint", remote_app_name=SIDEKICK, remote_app_data=published
    )
    certificates = testing.Relation("certificates", remote_app_name="self-signed-certificates")
    world.settle(
        dataclasses.replace(world.state, relations={sidekick}), lambda ctx: ctx.on.install()
    )
    # The sidekick requires client certificates once this unit has one.
    required = {**published, "client_auth": json.dumps("required")}
    sidekick = dataclasses.replace(sidekick, remote_app_data=required)
    state = dataclasses.replace(world.state, relations={sidekick, certificates})
    created = world.ctx
    with world.running():
        state = created.run(created.on.relation_created(certificates), state)
    issued = answered(only(state, "certificates"), CLIENT_CA)
    relations = {r for r in state.relations if r.id != issued.id} | {issued}
    world.settle(
        dataclasses.replace(state, relations=relations),
        lambda ctx: ctx.on.relation_changed(issued, remote_unit=0),
    )
    return world


def _serve(world: World) -> RulesRepo:
    repo = RulesRepo(world.base / "server")
    repo.commit({"rules.d/10-custom.yaml": rule("Repository fuzz rule")})
    repo.tag("v1")
    world.machine.serve(REPO_URL, repo.bare)
    world.machine.serve(HTTPS_REPO, repo.bare)
    return repo


@pytest.fixture(name="ssh_world", scope="module")
def ssh_world_fixture(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Rules from a repository at a tag over (fake) ssh, with a deploy key secret."""
    world = World(tmp_path_factory.mktemp("ssh-world"))
    _serve(world)
    world.machine.set_network(host_keys={REPO_HOST: HOST_KEY}, deploy_keys={REPO_HOST: DEPLOY_KEY})
    key = testing.Secret(tracked_content={"value": DEPLOY_KEY}, label="deploy-key")
    config = {
        "custom-config-repository": f"git+ssh://git@{REPO_HOST}/org/falco-rules.git@v1",
        "custom-config-repo-ssh-key": key.id,
        "custom-config-repo-known-hosts": KNOWN_HOSTS,
    }
    state = dataclasses.replace(world.state, config=config, secrets={key})
    world.settle(state, lambda ctx: ctx.on.install())
    return world


@dataclasses.dataclass(frozen=True)
class BranchWorld:
    """A world whose rules come from a branch: a push is synced by the next update-status."""

    world: World
    repo: RulesRepo


@pytest.fixture(name="branch_world", scope="module")
def branch_world_fixture(tmp_path_factory: pytest.TempPathFactory) -> BranchWorld:
    """Rules from the repository's main branch over (fake) ssh, with a deploy key secret."""
    world = World(tmp_path_factory.mktemp("branch-world"))
    repo = _serve(world)
    world.machine.set_network(host_keys={REPO_HOST: HOST_KEY}, deploy_keys={REPO_HOST: DEPLOY_KEY})
    key = testing.Secret(tracked_content={"value": DEPLOY_KEY}, label="deploy-key")
    config = {
        "custom-config-repository": f"git+ssh://git@{REPO_HOST}/org/falco-rules.git@main",
        "custom-config-repo-ssh-key": key.id,
        "custom-config-repo-known-hosts": KNOWN_HOSTS,
    }
    state = dataclasses.replace(world.state, config=config, secrets={key})
    world.settle(state, lambda ctx: ctx.on.install())
    return BranchWorld(world, repo)


@pytest.fixture(name="https_world", scope="module")
def https_world_fixture(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Rules from a repository at a tag over (fake) https, with a token secret."""
    world = World(tmp_path_factory.mktemp("https-world"))
    _serve(world)
    world.machine.set_network(tokens={REPO_HOST: f"x-access-token:{TOKEN}"})
    token = testing.Secret(tracked_content={"value": TOKEN}, label="token")
    config = {
        "custom-config-repository": f"{HTTPS_REPO}@v1",
        "custom-config-repo-token": token.id,
    }
    state = dataclasses.replace(world.state, config=config, secrets={token})
    world.settle(state, lambda ctx: ctx.on.install())
    return world
