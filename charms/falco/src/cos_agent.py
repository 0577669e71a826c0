"""The provider side of the ``cos_agent`` interface (``cos-agent``), our own implementation.

The counterpart is a COS collector subordinate on the same machine (opentelemetry-collector,
or grafana-agent). The relation is container-scoped, so only unit bags are used and every
Falco unit writes its own; leadership plays no part. Wire format (INTERFACES.md section 4):
one unit-bag key, ``config``, holding one JSON object::

    {"metrics_alert_rules": {...} or {},  # PromQL rule file
     "log_alert_rules": {...} or {},      # LogQL rule file
     "dashboards": ["<xz+base64 of a dashboard JSON>", ...],
     "metrics_scrape_jobs": [{"job_name", "metrics_path", "static_configs"}],
     "log_slots": [],                     # snap log slots; Falco is no snap
     "subordinate": null, "tracing_protocols": null}

Every field is always present, even when empty: the collector refuses the whole bag when
one is missing. The scrape job targets ``localhost:<metrics-port>``: the collector scrapes
from the same machine and Falco's webserver listens on loopback only. The collector adds
``juju_model``, ``juju_model_uuid``, ``juju_application`` and ``juju_unit`` of this unit
to every series it scrapes.

Every write wakes the collector, so ``config`` is written only when what it says changes:
the value in the bag is decoded and compared, and written as canonical JSON (sorted keys),
so neither key order nor whitespace can cause a rewrite.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import cos_content
import ops
from falco_config import Topology
from layout import Layout
from relation_data import update_changed

RELATION = "cos-agent"
CONFIG_KEY = "config"
METRICS_PATH = "/metrics"


def scrape_jobs(application: str, port: int) -> list[dict[str, Any]]:
    """Return the scrape job of Falco's metrics on this machine.

    The name is fixed and unique per application: the collector merges the jobs of every
    subordinate on the machine, and a name that changed with the port would split the series.
    """
    return [
        {
            "job_name": f"{application}_falco",
            "metrics_path": METRICS_PATH,
            "static_configs": [{"targets": [f"localhost:{port}"]}],
        }
    ]


def unit_config(content: dict[str, Any], jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the complete ``config`` object: every field, even when empty."""
    return {
        "metrics_alert_rules": content.get("metrics_alert_rules") or {},
        "log_alert_rules": content.get("log_alert_rules") or {},
        "dashboards": list(content.get("dashboards") or []),
        "metrics_scrape_jobs": jobs,
        "log_slots": [],
        # Obsolete upstream, still sent as null by the official provider.
        "subordinate": None,
        # Falco emits no traces.
        "tracing_protocols": None,
    }


def encode(config: dict[str, Any]) -> str:
    """Return the canonical JSON text of ``config``."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def published(databag: Mapping[str, str]) -> Any:
    """Return the decoded ``config`` in ``databag``; None when absent or not JSON."""
    try:
        return json.loads(databag.get(CONFIG_KEY, "") or "null")
    except (ValueError, RecursionError):  # written by someone else, or truncated
        return None


class CosAgentProvider(ops.Object):
    """Tells the collector on this machine what to scrape, which rules and dashboards to ship."""

    def __init__(self, charm: ops.CharmBase, layout: Layout, relation_name: str = RELATION):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._layout = layout
        self._relation_name = relation_name

    def publish(self, metrics_port: int, topology: Topology, rebuild: bool = False) -> bool:
        """Write ``config`` where it differs from what we want; True if a bag was written.

        Nothing is built without a relation. ``rebuild`` builds the rules and dashboards
        again even if their inputs did not change (the charm's code may have).
        """
        relations = self._charm.model.relations[self._relation_name]
        if not relations:
            return False
        content = cos_content.content(self._layout, dataclasses.asdict(topology), rebuild)
        return self._write(unit_config(content, scrape_jobs(topology.application, metrics_port)))

    def withdraw(self) -> bool:
        """Publish nothing to scrape and no rules or dashboards; True if a bag was written.

        For a unit that does not run this machine's Falco (ownership): the unit that does
        publishes it, so that its series are not scraped twice under two unit names.
        """
        if not self._charm.model.relations[self._relation_name]:
            return False
        return self._write(unit_config({}, []))

    def _write(self, wanted: dict[str, Any]) -> bool:
        relations = self._charm.model.relations[self._relation_name]
        changed = False
        for relation in relations:
            databag = relation.data[self._charm.unit]
            if published(databag) == wanted:
                continue
            changed |= update_changed(databag, {CONFIG_KEY: encode(wanted)})
        return changed
