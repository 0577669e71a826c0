"""The provider side of the ``grafana_dashboard`` interface (``grafana-dashboard``).

Wire format: our application bag (leader) holds one key, ``dashboards``, the JSON text of
``{"templates": {"file:<stem>": template, ...}, "uuid": "<random>"}``, where a template is::

    {"charm": <charm name>, "content": <xz-compressed, base64-encoded dashboard JSON>,
     "juju_topology": {model, model_uuid, application, unit} or {},
     "inject_dropdowns": <bool>, "dashboard_alt_uid": <16 hex chars>}

Each dashboard gets a stable "Path40" uid (unless its file has a 40-hex one) and a
``charm: <name>`` tag. The random ``uuid`` only exists to make the other side see a change:
it is regenerated when the templates change, and nothing is written when they did not.

``inject_dropdowns`` asks Grafana to add Juju topology variables and, when ``juju_topology``
is not empty, to add matchers for them to every query. That is right for a dashboard of our
own metrics, and wrong for one of the Falco alerts we store: those streams carry the Falco
units' topology, so such dashboards are sent without dropdowns and with an empty topology.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import ops

logger = logging.getLogger(__name__)

RELATION = "grafana-dashboard"
DASHBOARDS_DIR = Path(__file__).parent / "grafana_dashboards"
CHARM_DIR = Path(__file__).parent.parent
_SUFFIXES = (".json", ".json.tmpl", ".tmpl")
_TOPOLOGY_KEYS = ("model", "model_uuid", "application", "unit")


def dashboard_files(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    """Return the dashboard files of ``directory``, sorted."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(_SUFFIXES))


def template_id(path: Path) -> str:
    """Return the id Grafana knows a dashboard file by."""
    return f"file:{path.stem}"


def prepare(dashboard: dict[str, Any], charm_name: str, rel_path: str) -> dict[str, Any]:
    """Return ``dashboard`` with a stable uid and our charm tag, as Grafana expects it."""
    from cosl import DashboardPath40UID

    prepared = dict(dashboard)
    if not DashboardPath40UID.is_valid(prepared.get("uid", "")):
        prepared["uid"] = DashboardPath40UID.generate(charm_name, rel_path)
    tags = list(prepared.get("tags", []))
    if not any(str(tag).startswith("charm: ") for tag in tags):
        tags.append(f"charm: {charm_name}")
    prepared["tags"] = tags
    return prepared


def templates(
    charm_name: str,
    topology: Mapping[str, str],
    foreign_topology: Collection[str] = (),
    directory: Path = DASHBOARDS_DIR,
) -> dict[str, dict[str, Any]]:
    """Return the templates of every dashboard file in ``directory``.

    Dashboards whose id is in ``foreign_topology`` show other applications' data: they get
    no topology dropdowns and no topology.
    """
    from cosl import LZMABase64

    found: dict[str, dict[str, Any]] = {}
    for path in dashboard_files(directory):
        key = template_id(path)
        # The uid is derived from the path in the charm, as the official provider does.
        rel_path = str(path.relative_to(CHARM_DIR) if path.is_relative_to(CHARM_DIR) else path)
        dashboard = prepare(json.loads(path.read_text()), charm_name, rel_path)
        own = key not in foreign_topology
        found[key] = {
            "charm": charm_name,
            "content": LZMABase64.compress(json.dumps(dashboard)),
            "juju_topology": {k: topology[k] for k in _TOPOLOGY_KEYS} if own else {},
            "inject_dropdowns": own,
            "dashboard_alt_uid": hashlib.shake_256(f"{charm_name}-{key}".encode()).hexdigest(8),
        }
    return found


def published_templates(databag: Mapping[str, str]) -> dict[str, Any] | None:
    """Return the templates in our bag, None when there are none (or they are unreadable)."""
    try:
        data = json.loads(databag.get("dashboards", "") or "null")
    except (ValueError, RecursionError):  # an older charm, or someone else, wrote it
        return None
    found = data.get("templates") if isinstance(data, dict) else None
    return found if isinstance(found, dict) else None


class GrafanaDashboardProvider(ops.Object):
    """Gives Grafana the dashboards in ``src/grafana_dashboards``."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = RELATION):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name

    def publish(self, dashboards: Callable[[], dict[str, Any]]) -> bool:
        """As leader, write the dashboards where they changed; True if a bag was written.

        ``dashboards`` (the templates, see :func:`templates`) is called only when there is
        an application bag to write.
        """
        relations = self._charm.model.relations[self._relation_name]
        if not (relations and self._charm.unit.is_leader()):
            return False
        wanted = dashboards()
        changed = False
        for relation in relations:
            databag = relation.data[self._charm.app]
            if published_templates(databag) != wanted:
                # The uuid changes with the content, so that the other side sees an event.
                databag["dashboards"] = json.dumps(
                    {"templates": wanted, "uuid": str(uuid.uuid4())}, sort_keys=True
                )
                changed = True
        return changed
