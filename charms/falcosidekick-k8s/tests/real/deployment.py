"""A unit of the charm brought into an exposure mode on the real Pebble, with a fake Loki.

``deploy`` runs the hooks that bring a new unit on a new real Pebble into a mode; the
``deployments`` fixture (conftest) keeps one per mode for the session. The modes are the
ones the README's "How alerts reach the sidekick" describes, each with the ingress played
by a proxy that does what the real provider does (ingress_proxy):

* ``certificates``: (a) the sidekick serves its own certificate; Falco posts to it directly;
* ``gateway``: (b) gateway-api-integrator terminates TLS, plain HTTP to the pod;
* ``traefik-https``: (c) traefik terminates TLS and re-encrypts to the sidekick's
  certificate (``ingress-backend-scheme=https`` with ``certificates``);
* ``gateway+certificates``: (d) both related, the gateway still talks plain HTTP to the pod;
* ``none``: neither relation (no URL, nothing on the network).
"""

from __future__ import annotations

import dataclasses
import ssl
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fake_loki
import ingress_proxy
import sidekick_states as states
from ops import testing
from real_pebble import RealPebble
from real_unit import RealUnit
from tls_material import Issued, issue, make_ca

# The deliverable modes; "none" is deployed on its own.
MODES = ("certificates", "gateway", "traefik-https", "gateway+certificates")
# Where the ingress routes /<model>-<app> (path routing, both providers).
INGRESS_PREFIX = f"/{states.MODEL.name}-falcosidekick-k8s"


@dataclass
class Deployed:
    """A unit in one mode, its real container, the Loki it pushes to and its ingress."""

    mode: str
    unit: RealUnit
    pebble: RealPebble
    loki: fake_loki.FakeLoki
    ca: Issued
    ingress: ingress_proxy.IngressProxy | None = None
    public_ca: Issued | None = None

    @property
    def tls(self) -> bool:
        """The sidekick serves its own certificate on the alert port."""
        return self.mode in ("certificates", "traefik-https")

    def alert_url_and_ca(self) -> tuple[str, str | None]:
        """Return where a Falco unit posts, and the CA it verifies the server with.

        The published CA when there is one; behind an ingress none is published and Falco
        trusts the ingress's certificate through its system store, played here by the
        ingress's CA.
        """
        url, ca = self.unit.published()
        if ca is None and self.public_ca is not None:
            return url, self.public_ca.cert_pem
        return url, ca


def loki_tls_context(ca: Issued, directory: Path) -> ssl.SSLContext:
    """Return a server context for an HTTPS Loki on the loopback signed by ``ca``."""
    served = issue(ca, "loki", ip_addresses=("127.0.0.1",))
    (directory / "loki.crt").write_text(served.cert_pem)
    (directory / "loki.key").write_text(served.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "loki.crt", directory / "loki.key")
    return context


def mode_config(mode: str) -> dict[str, Any]:
    """Return the options a mode needs besides the defaults."""
    return {"ingress-backend-scheme": "https"} if mode == "traefik-https" else {}


def deploy(
    mode: str,
    ca: Issued,
    stack: ExitStack,
    directory: Path,
    https_loki: bool | None = None,
    config: dict[str, Any] | None = None,
    extra: tuple[set[testing.RelationBase], frozenset[testing.Secret]] = (set(), frozenset()),
) -> Deployed:
    """Bring a unit on a new real Pebble into ``mode``, pushing to a fake Loki.

    With ``certificates`` related the fake Loki serves HTTPS (unless ``https_loki`` is
    False) signed by the same CA, which the charm adds to Falcosidekick's trust pool: the
    real client verifies it. ``extra`` holds more relations and the secrets of the model.
    """
    certificates = "certificates" in mode or mode == "traefik-https"
    https_loki = certificates if https_loki is None else https_loki
    loki_tls = loki_tls_context(ca, directory) if https_loki else None
    loki = stack.enter_context(fake_loki.serving(loki_tls))
    pebble = RealPebble()
    stack.callback(pebble.stop)
    relations: set[testing.RelationBase] = {
        states.loki_relation(loki.url),
        testing.Relation("http-endpoint", remote_app_name="falco"),
        testing.Relation("metrics-endpoint", remote_app_name="prometheus"),
    }
    if certificates:
        relations.add(states.certificates_relation())
    relations |= extra[0]
    options = {"minimum-priority": "warning", **mode_config(mode), **(config or {})}
    unit = RealUnit.start(pebble, options, relations, extra[1])
    deployed = Deployed(mode, unit, pebble, loki, ca)
    if mode in ("gateway", "traefik-https", "gateway+certificates"):
        kind = "traefik" if mode == "traefik-https" else "gateway"
        deployed.public_ca = make_ca("Public ingress CA")
        proxy = ingress_proxy.serving(
            kind, deployed.public_ca, directory, INGRESS_PREFIX, backend_ca=ca.cert_pem
        )
        deployed.ingress = stack.enter_context(proxy)
        ingress = states.ingress_relation(deployed.ingress.url, remote_app_name=kind)
        state = dataclasses.replace(unit.state, relations={*unit.state.relations, ingress})
        unit.run(unit.ctx.on.relation_changed(ingress, remote_unit=0), state)
    if certificates:
        unit.serve_certificate(ca)
    if deployed.ingress is not None:
        deployed.ingress.route_from(unit.relation("ingress"))
    return deployed
