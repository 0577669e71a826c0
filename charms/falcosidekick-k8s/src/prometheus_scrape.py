"""The provider side of the ``prometheus_scrape`` interface (``metrics-endpoint``).

Wire format:

* our application bag (leader), JSON text: ``scrape_jobs`` (a list of Prometheus scrape
  configs), ``scrape_metadata`` (our Juju topology) and ``alert_rules`` (a PromQL rule file);
* each unit's own bag, raw strings (not JSON): ``prometheus_scrape_unit_address`` (the pod
  IP) and ``prometheus_scrape_unit_name``.

The job's target is the wildcard ``*:<port>``: the scraper makes one target per unit from the
unit bags, with the unit's topology labels. ``scrape_metadata`` is always sent complete: the
official consumer raises without it.

Where ``/metrics`` answers from outside the pod depends on the TLS mode, and the caller says
so: plain HTTP on 2810 when the sidekick serves TLS, the listen port behind an ingress, and
nowhere at all when it listens on loopback only (no job then; the scraper ignores the
relation until there is one, and the absent-target alert says nothing is scraped).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

import ops
from relation_data import update_changed

RELATION = "metrics-endpoint"
JOB_NAME = "falcosidekick"
METRICS_PATH = "/metrics"


def scrape_jobs(port: int | None) -> list[dict[str, Any]]:
    """Return the scrape jobs for ``/metrics`` on ``port`` of every unit (none without port)."""
    if port is None:
        return []
    return [
        {
            "job_name": JOB_NAME,
            "metrics_path": METRICS_PATH,
            "static_configs": [{"targets": [f"*:{port}"]}],
        }
    ]


def app_data(
    jobs: list[dict[str, Any]], metadata: Mapping[str, str], alert_rules: Mapping[str, Any]
) -> dict[str, str]:
    """Return our application bag; keys sorted so that equal content is equal text."""
    return {
        "scrape_jobs": json.dumps(jobs, sort_keys=True),
        "scrape_metadata": json.dumps(metadata, sort_keys=True),
        "alert_rules": json.dumps(alert_rules, sort_keys=True),
    }


def unit_data(address: str, unit_name: str) -> dict[str, str]:
    """Return our unit bag: raw strings, as the consumer reads them."""
    return {"prometheus_scrape_unit_address": address, "prometheus_scrape_unit_name": unit_name}


class MetricsEndpointProvider(ops.Object):
    """Tells Prometheus (or an OpenTelemetry Collector) how to scrape every unit."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = RELATION):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name

    @property
    def relations(self) -> list[ops.Relation]:
        """The relations of the endpoint."""
        return list(self._charm.model.relations[self._relation_name])

    def _address(self, relation: ops.Relation) -> str:
        # Pod IPs change when a pod is rescheduled: read on every reconcile (update-status too).
        binding = self._charm.model.get_binding(relation)
        address = binding.network.bind_address if binding else None
        return str(address) if address else socket.getfqdn()

    def publish(
        self,
        port: int | None,
        metadata: Mapping[str, str],
        alert_rules: Callable[[], Mapping[str, Any]],
    ) -> bool:
        """Write the unit bag, and as leader the app bag, where changed; True if any was.

        ``alert_rules`` is called only when there is an application bag to write.
        """
        changed = False
        unit_name = self._charm.unit.name
        for relation in self.relations:
            wanted = unit_data(self._address(relation), unit_name)
            changed = update_changed(relation.data[self._charm.unit], wanted) or changed
        if self._charm.unit.is_leader() and self.relations:
            wanted = app_data(scrape_jobs(port), metadata, alert_rules())
            for relation in self.relations:
                changed = update_changed(relation.data[self._charm.app], wanted) or changed
        return changed
