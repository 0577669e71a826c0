"""The alert rules and dashboards the charm ships, built again only when their inputs change.

Building them means importing cosl and LZMA-compressing every dashboard: tens of
milliseconds on every leader hook with ``metrics-endpoint``, ``send-loki-logs`` or
``grafana-dashboard`` related, for a result that almost never changes. What they are built
from is the charm's own files (rule files, dashboards) and the unit's topology; the code and
libraries that build them change only on a refresh, which fires ``upgrade-charm``.

So the unit keeps the last build in its local state, under a digest of the files and the
topology, and reuses it while the digest matches; ``upgrade-charm`` drops it. The cache only
saves the build: what it returns is still compared with each databag before writing, so a
bag that someone else changed is still put right.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import alert_rules
import grafana_dashboard
import ops
from topology import juju_topology

# Dashboards of the Falco alerts: their streams carry the Falco units' topology, not ours.
FALCO_DASHBOARDS = ("file:falco-security-alerts",)
# Every directory whose files the artifacts are built from.
SOURCE_DIRS = (
    alert_rules.PROMETHEUS_RULES_DIR,
    alert_rules.LOKI_RULES_DIR,
    grafana_dashboard.DASHBOARDS_DIR,
)


def inputs_digest(topology: Mapping[str, str]) -> str:
    """Return a digest of everything the artifacts are built from (short of the code)."""
    digest = hashlib.sha256(json.dumps(topology, sort_keys=True).encode())
    for directory in SOURCE_DIRS:
        for path in sorted(p for p in directory.iterdir() if p.is_file()):
            digest.update(f"\0{directory.name}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class ShippedArtifacts(ops.Object):
    """The rule files and dashboard templates of this unit, each built at most once."""

    _stored = ops.StoredState()  # type: ignore[no-untyped-call]  # ops leaves it untyped

    def __init__(self, charm: ops.CharmBase):
        super().__init__(charm, "shipped-artifacts")
        self._charm = charm
        self._stored.set_default(digest="", built={})

    def forget(self) -> None:
        """Drop every build: the code that made them may have changed (a refresh)."""
        self._stored.digest = ""
        self._stored.built = {}

    def prometheus_rules(self) -> dict[str, Any]:
        """The PromQL rule file for ``metrics-endpoint``."""
        return self._built("prometheus_rules", alert_rules.prometheus_rules)

    def falco_loki_rules(self) -> dict[str, Any]:
        """The LogQL rule file on Falco alerts for ``send-loki-logs``."""
        return self._built("falco_loki_rules", alert_rules.falco_loki_rules)

    def dashboards(self) -> dict[str, Any]:
        """The dashboard templates for ``grafana-dashboard``."""
        name = self._charm.meta.name
        return self._built(
            "dashboards",
            lambda topology: grafana_dashboard.templates(name, topology, FALCO_DASHBOARDS),
        )

    @functools.cached_property
    def _topology(self) -> dict[str, str]:
        return juju_topology(self._charm)

    @functools.cached_property
    def _digest(self) -> str:
        """The inputs digest, computed on first use: units that build nothing never pay it."""
        return inputs_digest(self._topology)

    def _built(
        self, name: str, build: Callable[[dict[str, str]], dict[str, Any]]
    ) -> dict[str, Any]:
        if self._stored.digest != self._digest:
            self._stored.digest = self._digest
            self._stored.built = {}
        if name not in self._stored.built:
            self._stored.built[name] = json.dumps(build(self._topology), sort_keys=True)
        built: dict[str, Any] = json.loads(self._stored.built[name])
        return built
