"""The Juju topology of this unit, in the shape every COS relation interface uses."""

from __future__ import annotations

from collections.abc import Mapping

import ops


def juju_topology(charm: ops.CharmBase) -> dict[str, str]:
    """Return model, model_uuid, application, unit and charm_name of this unit."""
    return {
        "model": charm.model.name,
        "model_uuid": charm.model.uuid,
        "application": charm.app.name,
        "unit": charm.unit.name,
        "charm_name": charm.meta.name,
    }


def identifier(topology: Mapping[str, str]) -> str:
    """Return ``<model>_<first 8 of the uuid>_<application>``, as COS names our jobs and rules."""
    return f"{topology['model']}_{topology['model_uuid'][:8]}_{topology['application']}"
