"""The requirer side of ``alertmanager_dispatch``: where Falcosidekick's Alertmanager output posts.

alertmanager-k8s provides the interface on its ``alerting`` endpoint (Prometheus is the
usual requirer). Wire format, as its library writes it (raw strings, not JSON text), in each
provider **unit** bag:

* ``url``: the unit's Alertmanager URL, with the path prefix of its ingress when there is
  one (``http://alertmanager-0.alertmanager-endpoints.cos.svc.cluster.local:9093``);
* ``public_address`` and ``scheme``: the same URL split in two (``<host>:<port><path>`` and
  ``http``), all an older provider writes.

The requirer writes nothing. Every unit's URL is used (Falcosidekick posts each alert to
all of the comma-separated addresses of its ``hostport``; Alertmanager's cluster removes the
duplicates). A unit whose data is not a usable URL is logged by its first characters and
ignored; while the relation exists but no unit gives one, the last good URLs are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import ops
from falcosidekick_http_endpoint import normalise_url

logger = logging.getLogger(__name__)

RELATION = "alertmanager"


def unit_url(databag: Mapping[str, str]) -> str | None:
    """Return the Alertmanager URL of a provider unit's bag; None when it gives none.

    Raises ValueError (naming the key, quoting the start of the value) when it is not usable.
    """
    url = databag.get("url", "")
    key = "url"
    if not url and databag.get("public_address"):
        key = "public_address"
        url = f"{databag.get('scheme') or 'http'}://{databag['public_address']}"
    if not url:
        return None
    try:
        return normalise_url(url)
    except ValueError as exc:
        raise ValueError(f"{key!r}: {exc}") from None


class AlertmanagerConsumer(ops.Object):
    """Reads the Alertmanager URLs of the related alertmanager-k8s units."""

    _stored = ops.StoredState()  # type: ignore[no-untyped-call]  # ops leaves it untyped

    def __init__(self, charm: ops.CharmBase, relation_name: str = RELATION):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        self._stored.set_default(urls=[])

    @property
    def relations(self) -> list[ops.Relation]:
        """The relations of the endpoint."""
        return list(self._charm.model.relations[self._relation_name])

    def current_urls(self) -> list[str]:
        """Return the distinct usable URLs the provider units publish now, sorted."""
        urls: set[str] = set()
        for relation in self.relations:
            for unit in relation.units:
                try:
                    url = unit_url(relation.data[unit])
                except ValueError as exc:
                    logger.warning(
                        "ignoring %s data from %s: %s", self._relation_name, unit.name, exc
                    )
                    continue
                if url:
                    urls.add(url)
        return sorted(urls)

    def urls(self) -> list[str]:
        """Return the URLs to post to: the current ones, else the last good ones.

        The last good URLs are kept while the relation exists and no unit gives a usable
        one, rather than dropping the output; they go with the relation.
        """
        current = self.current_urls()
        if current or not self.relations:
            self._stored.urls = current
        return list(self._stored.urls)
