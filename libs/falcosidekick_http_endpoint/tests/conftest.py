"""Fixtures of the falcosidekick_http_endpoint tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from endpoint_charms import (
    PROVIDER_CONFIG,
    PROVIDER_META,
    REQUIRER_META,
    ProviderCharm,
    RequirerCharm,
)
from ops import testing
from ops_probes import Calls, record_relation_writes
from tls_material import Issued, issue, make_ca


@pytest.fixture(name="provider_ctx")
def provider_ctx_fixture() -> testing.Context[ProviderCharm]:
    return testing.Context(ProviderCharm, meta=PROVIDER_META, config=PROVIDER_CONFIG)


@pytest.fixture(name="requirer_ctx")
def requirer_ctx_fixture() -> testing.Context[RequirerCharm]:
    return testing.Context(RequirerCharm, meta=REQUIRER_META)


@pytest.fixture(name="relation_writes")
def relation_writes_fixture() -> Iterator[Calls]:
    """Every relation-set the charm runs, counted where ops hands it to Juju."""
    with record_relation_writes() as calls:
        yield calls


@pytest.fixture(name="ca", scope="session")
def ca_fixture() -> Issued:
    return make_ca("Falcosidekick test CA")


@pytest.fixture(name="server_cert", scope="session")
def server_cert_fixture(ca: Issued) -> Issued:
    return issue(
        ca, "falcosidekick-k8s", dns_names=("falcosidekick-k8s.fmodel.svc.cluster.local",)
    )
