"""Fixtures of every test directory: the charm on a fake machine (tests/support/falco_rig.py)."""

from falco_rig import (  # noqa: F401 - imported to register the fixtures
    ca_pem_fixture,
    charm_root_fixture,
    clock_fixture,
    ctx_fixture,
    deploy_key_fixture,
    fake_falco_fixture,
    machine_fixture,
    no_resource_fixture,
    repo_fixture,
    rig_fixture,
    state_fixture,
)
