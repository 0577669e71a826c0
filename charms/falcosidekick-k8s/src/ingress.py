"""The requirer side of the ``ingress`` interface, version 2 (traefik-k8s, gateway-api-integrator).

Wire format (every value is JSON text):

* our application bag (leader): ``model``, ``name``, ``port``, ``strip-prefix`` and, with
  ``ingress-backend-scheme=https``, ``scheme`` = ``"https"`` (a key at its default value is
  left out, as the ingress library does);
* our unit bag (every unit): ``host`` (the pod's FQDN) and ``ip``;
* the provider's application bag: ``ingress`` = ``{"url": "<the URL clients use>"}``.

Our application bag holds our keys and nothing else: any other key (``redirect-https``,
which the prior falcosidekick charm set, or a key an older revision wrote) is deleted when
the bag is written, so that the provider reads the same request after a refresh as after a
fresh deploy. In the unit bag only our keys are touched: Juju keeps its own there. Writes
happen only when a value changes, so a no-op reconcile wakes nobody. A provider URL that
cannot be used (the interface library's validator, the one it meets again when published
to Falco, refuses it) is logged by its first characters and ignored; the last good one is
kept until the relation goes away.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import ops
from relation_data import read_url, update_changed

logger = logging.getLogger(__name__)

RELATION = "ingress"


def url_host(url: str) -> str:
    """Return the host clients put in a TLS handshake for ``url``."""
    return urlsplit(url).hostname or ""


def app_data(model: str, name: str, port: int, scheme: str) -> dict[str, str]:
    """Return our application bag (only the keys with a value)."""
    data = {
        "model": json.dumps(model),
        "name": json.dumps(name),
        "port": json.dumps(port),
        # The provider routes /<model>-<name>/...; the sidekick serves alerts on "/".
        "strip-prefix": json.dumps(True),
    }
    if scheme != "http":
        data["scheme"] = json.dumps(scheme)
    return data


def unit_data(host: str, ip: str | None) -> dict[str, str]:
    """Return our unit bag; ``""`` marks a key to delete."""
    return {"host": json.dumps(host), "ip": json.dumps(ip) if ip else ""}


class IngressRequirer(ops.Object):
    """Asks an ingress provider to route to this application, reads the URL it gives."""

    _stored = ops.StoredState()  # type: ignore[no-untyped-call]  # ops leaves it untyped

    def __init__(self, charm: ops.CharmBase, relation_name: str = RELATION):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        self._stored.set_default(url="")

    @property
    def relation(self) -> ops.Relation | None:
        """The ingress relation, if integrated."""
        return self._charm.model.get_relation(self._relation_name)

    def url(self) -> str | None:
        """Return the URL the provider published (or the last good one), None when not ready."""
        relation = self.relation
        if relation is None or relation.app is None:
            self._stored.url = ""
            return None
        try:
            url = read_url(relation.data[relation.app], "ingress")
        except ValueError as exc:
            logger.warning("ignoring ingress data from %s: %s", relation.app.name, exc)
            return str(self._stored.url) or None
        self._stored.url = url or ""
        return url

    def publish(self, port: int, scheme: str, host: str) -> bool:
        """Tell the provider where and how (``scheme``) to reach us; True if a bag changed."""
        relation = self.relation
        if relation is None:
            return False
        binding = self._charm.model.get_binding(relation)
        address = binding.network.bind_address if binding else None
        changed = update_changed(
            relation.data[self._charm.unit], unit_data(host, str(address) if address else None)
        )
        if self._charm.unit.is_leader():
            bag = relation.data[self._charm.app]
            wanted = app_data(self._charm.model.name, self._charm.app.name, port, scheme)
            not_ours = {key: "" for key in bag if key not in wanted}
            changed = update_changed(bag, {**not_ours, **wanted}) or changed
        return changed
