"""The alert rules and dashboards this charm sends over cos-agent, built only when needed. No Ops.

* ``metrics_alert_rules``: ``src/prometheus_alert_rules/``, on Falco's own metrics. Every
  rule gets this application's topology labels and a topology-prefixed group name, so the
  receiving Prometheus scopes each expression to this application. The generic ``HostHealth``
  group (``HostDown``: ``up < 1``, ``HostMetricsMissing``: ``absent(up)``) that the upstream
  provider adds is left out: ``FalcoDown`` and ``FalcoTargetMissing`` fire on the very same
  expressions, so one outage would page twice, and ours say what it means for detection.
* ``log_alert_rules``: ``src/loki_alert_rules/`` (the shared FalcoCriticalAlert rule), with
  our topology labels: Loki then scopes the rule to the alert streams of this application's
  units, which the sidekick labels with exactly that topology.
* ``dashboards``: ``src/grafana_dashboards/*.json``, each with a stable "Path40" uid and a
  ``charm: falco`` tag, xz-compressed and base64-encoded as the collector expects.

Building them imports cosl (about a second on a cold interpreter) and compresses every
dashboard, for a result that depends only on the files above and the unit's topology. So the
last build is kept in a record under the charm's state directory together with a digest of
those inputs, and reused while the digest matches. The code that builds them changes only
with the charm (``install``, ``upgrade-charm``), when the caller asks for a rebuild.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import records
from layout import Layout

SRC = Path(__file__).resolve().parent
PROMETHEUS_RULES_DIR = SRC / "prometheus_alert_rules"
LOKI_RULES_DIR = SRC / "loki_alert_rules"
DASHBOARDS_DIR = SRC / "grafana_dashboards"
SOURCE_DIRS = (PROMETHEUS_RULES_DIR, LOKI_RULES_DIR, DASHBOARDS_DIR)
# Dashboards are named by their path in the charm, as the upstream provider names them.
DASHBOARDS_REL_DIR = "src/grafana_dashboards"
CHARM_TAG_PREFIX = "charm: "


def dashboard_files(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    """Return the dashboard files, in a stable order."""
    return sorted(directory.glob("*.json"))


def inputs_digest(topology: Mapping[str, str], source_dirs: tuple[Path, ...] = SOURCE_DIRS) -> str:
    """Return a digest of everything the content is built from, short of the code."""
    digest = hashlib.sha256(json.dumps(dict(topology), sort_keys=True).encode())
    for directory in source_dirs:
        for path in sorted(p for p in directory.iterdir() if p.is_file()):
            digest.update(f"\0{directory.name}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def prepare_dashboard(
    dashboard: dict[str, Any], charm_name: str, file_name: str
) -> dict[str, Any]:
    """Return ``dashboard`` with a stable uid and our charm tag."""
    from cosl import DashboardPath40UID

    prepared = dict(dashboard)
    if not DashboardPath40UID.is_valid(str(prepared.get("uid", ""))):
        rel_path = f"{DASHBOARDS_REL_DIR}/{file_name}"
        prepared["uid"] = DashboardPath40UID.generate(charm_name, rel_path)
    tags = [str(tag) for tag in prepared.get("tags", [])]
    if not any(tag.startswith(CHARM_TAG_PREFIX) for tag in tags):
        tags.append(f"{CHARM_TAG_PREFIX}{charm_name}")
    prepared["tags"] = tags
    return prepared


def build(topology: Mapping[str, str]) -> dict[str, Any]:
    """Return the rule files and encoded dashboards for ``topology`` (imports cosl)."""
    from cosl import JujuTopology, LZMABase64
    from cosl.rules import AlertRules

    juju_topology = JujuTopology.from_dict(dict(topology))
    metrics = AlertRules(query_type="promql", topology=juju_topology)
    metrics.add_path(PROMETHEUS_RULES_DIR)
    logs = AlertRules(query_type="logql", topology=juju_topology)
    logs.add_path(LOKI_RULES_DIR)
    dashboards = [
        LZMABase64.compress(
            json.dumps(
                prepare_dashboard(json.loads(path.read_text()), topology["charm_name"], path.name)
            )
        )
        for path in dashboard_files()
    ]
    return {
        "metrics_alert_rules": metrics.as_dict(),
        "log_alert_rules": logs.as_dict(),
        "dashboards": dashboards,
    }


def content(layout: Layout, topology: Mapping[str, str], rebuild: bool = False) -> dict[str, Any]:
    """Return the rules and dashboards for ``topology``, built again only when needed.

    ``rebuild`` forces a build (the charm's code may have changed); the record is still
    rewritten only if the result differs.
    """
    digest = inputs_digest(topology)
    record = records.read(layout.cos_agent_record) or {}
    cached = record.get("content")
    if not rebuild and record.get("digest") == digest and isinstance(cached, dict):
        return cached
    built = build(topology)
    records.write(layout.cos_agent_record, {"digest": digest, "content": built})
    return built
