"""The consumer side of the ``loki_push_api`` interface: where alerts and logs are pushed.

Two endpoints use it: ``send-loki-logs`` (the sidekick's Loki output, one URL) and
``logging`` (Pebble forwards the sidekick's own logs to every provider unit).

Wire format (every value is JSON text):

* each provider **unit** bag: ``endpoint`` = ``{"url": "<scheme>://<host>:<port>/loki/api/v1/push"}``;
* our application bag (leader): ``metadata`` (the Juju topology of this application) and
  ``alert_rules`` (a LogQL rule file, ``{}`` when there are none).

Several provider units usually give the same URL (one Service or ingress); duplicates are
dropped. The interface carries no CA: an https endpoint must be signed by a CA the sidekick
trusts (the system pool, or the CA of our own ``certificates`` provider).

A unit whose ``endpoint`` cannot be used (see relation_data.read_url: a URL with a newline would
otherwise reach the sidekick's config and Pebble's log targets) is logged by its first
characters and ignored. While the relation exists but
no unit gives a usable URL (garbage, an endpoint withdrawn, every unit gone for a while), the
last good URLs are kept rather than dropping the output; they go with the relation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import ops
from provider_units import ProviderUnitUrls
from relation_data import read_url, update_changed

RELATION = "send-loki-logs"


def app_data(metadata: Mapping[str, str], alert_rules: Mapping[str, Any]) -> dict[str, str]:
    """Return our application bag; keys sorted so that equal content is equal text."""
    return {
        "metadata": json.dumps(metadata, sort_keys=True),
        "alert_rules": json.dumps(alert_rules, sort_keys=True),
    }


class LokiPushApiConsumer(ProviderUnitUrls):
    """Reads the Loki push endpoints of the related provider, publishes our metadata."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = RELATION):
        super().__init__(charm, relation_name)

    def read_unit(self, databag: Mapping[str, str]) -> str | None:
        """Return the unit's push URL, the ``url`` of its ``endpoint`` JSON."""
        return read_url(databag, "endpoint")

    def unit_urls(self) -> dict[str, str] | None:
        """Return each provider unit's push URL by unit name; None until every unit has one.

        A unit without a usable endpoint (yet) makes the whole set not ready, so that log
        targets are never half-updated from a relation still being set up.
        """
        endpoints = self.unit_endpoints()
        if None in endpoints.values():
            return None
        return {name: url for name, url in endpoints.items() if url}

    def units_without_endpoint(self) -> list[str]:
        """Return the provider units that publish no usable endpoint, sorted by name."""
        return sorted(name for name, url in self.unit_endpoints().items() if url is None)

    def publish(
        self, metadata: Mapping[str, str], alert_rules: Callable[[], Mapping[str, Any]]
    ) -> bool:
        """As leader, write our topology and alert rules where changed; True if written.

        ``alert_rules`` is called only when there is an application bag to write.
        """
        if not (self._charm.unit.is_leader() and self.relations):
            return False
        wanted = app_data(metadata, alert_rules())
        changed = False
        for relation in self.relations:
            changed = update_changed(relation.data[self._charm.app], wanted) or changed
        return changed
