"""Small charms that use the library the way falco and falcosidekick-k8s do."""

from __future__ import annotations

import json

import ops
import pydantic
from falcosidekick_http_endpoint import EndpointReading, HttpEndpointProvider, HttpEndpointRequirer


class ProviderCharm(ops.CharmBase):
    """Publishes the URL and CA found in its config, like the sidekick does from its state."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.endpoint = HttpEndpointProvider(self)
        self.published: bool | None = None
        for event in (self.on.config_changed, self.on["http-endpoint"].relation_joined):
            framework.observe(event, self._publish)

    def _publish(self, _: ops.EventBase) -> None:
        url = str(self.config.get("url", ""))
        ca_cert = str(self.config.get("ca-cert", "")) or None
        required = bool(self.config.get("client-certificate-required", False))
        if url == "withdraw":
            self.published = self.endpoint.withdraw()
        else:
            self.published = self.endpoint.publish(url, ca_cert, required)


class RequirerCharm(ops.CharmBase):
    """Records what the library reads, like the falco charm's reconcile does."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.endpoint = HttpEndpointRequirer(self)
        self.reading: EndpointReading | None = None
        for event in (
            self.on.update_status,
            self.on["http-endpoint"].relation_changed,
            self.on["http-endpoint"].relation_broken,
        ):
            framework.observe(event, self._read)

    def _read(self, _: ops.EventBase) -> None:
        self.reading = self.endpoint.read()


class PriorUrl(pydantic.BaseModel):
    """The prior falco charm's view of the provider bag: a URL, nothing else."""

    url: pydantic.HttpUrl


class PriorRequirerCharm(ops.CharmBase):
    """Reads the bag the way the prior falco charm's requirer does.

    Its library (pfe-interfaces-falcosidekick-http-endpoint 1.0.0) loads the remote
    application bag with ``Relation.load`` into a pydantic model of ``url`` alone: each
    field JSON-decoded, other keys left alone. A decode error there is a hook error.
    """

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.urls: dict[str, str] = {}
        framework.observe(self.on["http-endpoint"].relation_changed, self._read)

    def _read(self, _: ops.EventBase) -> None:
        for relation in self.model.relations["http-endpoint"]:
            assert relation.app is not None
            self.urls[relation.app.name] = str(relation.load(PriorUrl, relation.app).url)


PROVIDER_META = {
    "name": "falcosidekick-k8s",
    "provides": {"http-endpoint": {"interface": "falcosidekick_http_endpoint"}},
}
PROVIDER_CONFIG = {
    "options": {
        "url": {"type": "string", "default": ""},
        "ca-cert": {"type": "string", "default": ""},
        "client-certificate-required": {"type": "boolean", "default": False},
    }
}
REQUIRER_META = {
    "name": "falco",
    "requires": {"http-endpoint": {"interface": "falcosidekick_http_endpoint"}},
}


def app_bag(url: str, ca_cert: str | None = None, client_auth: bool = False) -> dict[str, str]:
    """Return a provider app databag as the wire format describes it."""
    bag = {"url": json.dumps(url)}
    if ca_cert is not None:
        bag["ca_cert"] = json.dumps(ca_cert)
    if client_auth:
        bag["client_auth"] = json.dumps("required")
    return bag
