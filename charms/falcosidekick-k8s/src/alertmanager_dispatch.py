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

from collections.abc import Mapping

import ops
from falcosidekick_http_endpoint import normalise_url
from provider_units import ProviderUnitUrls

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


class AlertmanagerConsumer(ProviderUnitUrls):
    """Reads the Alertmanager URLs of the related alertmanager-k8s units."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = RELATION):
        super().__init__(charm, relation_name)

    def read_unit(self, databag: Mapping[str, str]) -> str | None:
        """Return the unit's Alertmanager URL (``unit_url``)."""
        return unit_url(databag)
