"""URLs published by each unit of a related provider, with the last good set kept.

``loki_push_api`` and ``alertmanager_dispatch`` share this shape: every provider unit writes
its own address in its unit bag, the sidekick uses all of them, and remote data that cannot
be used is logged (by its first characters only) and ignored. While the relation exists but
no unit gives a usable URL (garbage, an address withdrawn, every unit gone for a while), the
last good URLs stay in use rather than dropping the destination; they go with the relation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import ops

logger = logging.getLogger(__name__)


class ProviderUnitUrls(ops.Object):
    """Reads one URL per unit of the providers related on ``relation_name``.

    Subclasses say how a unit bag gives its URL (``read_unit``).
    """

    _stored = ops.StoredState()  # type: ignore[no-untyped-call]  # ops leaves it untyped

    def __init__(self, charm: ops.CharmBase, relation_name: str):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        self._stored.set_default(urls=[])

    def read_unit(self, databag: Mapping[str, str]) -> str | None:
        """Return the URL in a provider unit's bag, None when it gives none.

        Raises ValueError naming the key when the value is not usable.
        """
        raise NotImplementedError

    @property
    def relations(self) -> list[ops.Relation]:
        """The relations of the endpoint."""
        return list(self._charm.model.relations[self._relation_name])

    def unit_endpoints(self) -> dict[str, str | None]:
        """Return each provider unit's URL by unit name; None when unset or unusable."""
        endpoints: dict[str, str | None] = {}
        for relation in self.relations:
            for unit in relation.units:
                try:
                    endpoints[unit.name] = self.read_unit(relation.data[unit])
                except ValueError as exc:
                    logger.warning(
                        "ignoring %s data from %s: %s", self._relation_name, unit.name, exc
                    )
                    endpoints[unit.name] = None
        return endpoints

    def current_urls(self) -> list[str]:
        """Return the distinct usable URLs the provider units publish now, sorted."""
        return sorted({url for url in self.unit_endpoints().values() if url})

    def urls(self) -> list[str]:
        """Return the URLs to use: the current ones, else the last good ones."""
        current = self.current_urls()
        if current or not self.relations:
            self._stored.urls = current
        return list(self._stored.urls)
