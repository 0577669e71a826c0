"""Fixtures of the falcosidekick_http_endpoint tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from endpoint_charms import (
    PROVIDER_CONFIG,
    PROVIDER_META,
    REQUIRER_META,
    ProviderCharm,
    RelationWrites,
    RequirerCharm,
)
from ops import testing
from scenario.mocking import _MockModelBackend
from tls_material import Issued, issue, make_ca


@pytest.fixture(name="provider_ctx")
def provider_ctx_fixture() -> testing.Context[ProviderCharm]:
    return testing.Context(ProviderCharm, meta=PROVIDER_META, config=PROVIDER_CONFIG)


@pytest.fixture(name="requirer_ctx")
def requirer_ctx_fixture() -> testing.Context[RequirerCharm]:
    return testing.Context(RequirerCharm, meta=REQUIRER_META)


@pytest.fixture(name="relation_writes")
def relation_writes_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[RelationWrites]:
    """Count relation-set calls at the boundary where ops hands them to Juju."""
    writes = RelationWrites()
    original = _MockModelBackend.relation_set

    def recording(self, relation_id, data, is_app, *, relation_name=None):  # type: ignore[no-untyped-def]
        writes.calls.append((relation_id, is_app, dict(data)))
        return original(self, relation_id, data, is_app, relation_name=relation_name)

    monkeypatch.setattr(_MockModelBackend, "relation_set", recording)
    yield writes


@pytest.fixture(name="ca", scope="session")
def ca_fixture() -> Issued:
    return make_ca("Falcosidekick test CA")


@pytest.fixture(name="server_cert", scope="session")
def server_cert_fixture(ca: Issued) -> Issued:
    return issue(
        ca, "falcosidekick-k8s", dns_names=("falcosidekick-k8s.fmodel.svc.cluster.local",)
    )
