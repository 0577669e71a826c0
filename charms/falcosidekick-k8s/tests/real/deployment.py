"""A unit of the charm brought into a TLS mode on the real Pebble, with a fake Loki.

``deploy`` runs the hooks that bring a new unit on a new real Pebble into a mode; the
``deployments`` fixture (conftest) keeps one per mode for the session.
"""

from __future__ import annotations

import dataclasses
import ssl
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import fake_loki
import sidekick_states as states
from ops import testing
from real_pebble import RealPebble
from real_unit import SERVICE_ADDRESS, RealUnit
from tls_material import Issued, issue

# How the unit is related, and what it is then meant to do (README, "What listens where").
MODES = ("ingress", "certificates", "certificates+ingress")


@dataclass
class Deployed:
    """A unit in one TLS mode, its real container and the Loki it pushes alerts to."""

    mode: str
    unit: RealUnit
    pebble: RealPebble
    loki: fake_loki.FakeLoki
    ca: Issued

    @property
    def tls(self) -> bool:
        """The sidekick serves its own certificate."""
        return "certificates" in self.mode

    def alert_url_and_ca(self) -> tuple[str, str | None]:
        """Return where a Falco unit posts, and the CA it verifies the certificate with.

        Behind an ingress the published URL is the ingress's and no CA is published (Falco
        trusts the ingress's certificate). The "ingress" of these tests hands the connection
        straight to the sidekick, so with ``certificates`` it is the sidekick's certificate
        that Falco's client sees, signed by the test CA.
        """
        url, ca = self.unit.published()
        return url, ca or (self.ca.cert_pem if self.tls else None)


def loki_tls_context(ca: Issued, directory: Path) -> ssl.SSLContext:
    """Return a server context for an HTTPS Loki on the loopback signed by ``ca``."""
    served = issue(ca, "loki", ip_addresses=("127.0.0.1",))
    (directory / "loki.crt").write_text(served.cert_pem)
    (directory / "loki.key").write_text(served.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "loki.crt", directory / "loki.key")
    return context


def deploy(
    mode: str, ca: Issued, stack: ExitStack, directory: Path, https_loki: bool | None = None
) -> Deployed:
    """Bring a unit on a new real Pebble into ``mode`` ("none" too), pushing to a fake Loki.

    With ``certificates`` the fake Loki serves HTTPS (unless ``https_loki`` is False) signed
    by the same CA, which the charm adds to Falcosidekick's trust pool: the real client
    verifies it.
    """
    tls = "certificates" in mode
    https_loki = tls if https_loki is None else https_loki
    loki_tls = loki_tls_context(ca, directory) if https_loki else None
    loki = stack.enter_context(fake_loki.serving(loki_tls))
    pebble = RealPebble()
    stack.callback(pebble.stop)
    relations: set[testing.RelationBase] = {
        states.loki_relation(loki.url),
        testing.Relation("http-endpoint", remote_app_name="falco"),
        testing.Relation("metrics-endpoint", remote_app_name="prometheus"),
    }
    if tls:
        relations.add(states.certificates_relation())
    unit = RealUnit.start(pebble, {"minimum-priority": "warning"}, relations)
    if "ingress" in mode:
        # An ingress that hands connections straight to the unit's port, on the loopback.
        scheme = "https" if tls else "http"
        ingress = states.ingress_relation(f"{scheme}://{SERVICE_ADDRESS}:{unit.port}/")
        state = dataclasses.replace(unit.state, relations={*unit.state.relations, ingress})
        unit.run(unit.ctx.on.relation_changed(ingress, remote_unit=0), state)
    if tls:
        unit.serve_certificate(ca)
    return Deployed(mode, unit, pebble, loki, ca)
