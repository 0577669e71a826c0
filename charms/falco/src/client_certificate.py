"""This unit's client certificate over ``certificates`` (tls-certificates, one per unit).

With it, Falco proves to Falcosidekick which unit posts an alert (mutual TLS): a sidekick
with ``client-authentication=required`` refuses every connection without a certificate
signed by a CA it trusts. Each unit asks for its own certificate, named after the unit and
the model; the library keeps the private key in a unit-owned Juju secret. The charm writes
the certificate chain and the key (0600, root only) under the charm's config directory and
renders ``http_output.mtls`` with them.

The tls-certificates library pulls in cryptography and many pydantic models, so it is set
up only while the relation exists (or the library still has its secrets to clean up after
the relation went away), and imported only then.

A certificate being used stays while its replacement is pending (renewal, revocation, a new
key): Falco keeps posting meanwhile, and the new one is one restart.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import ops
from client_tls import ClientMaterial, client_name, deployed
from layout import Layout
from tls_guard import provider_data_problem, replace_unusable_private_key

if TYPE_CHECKING:  # imported where used: see the module docstring
    from charmlibs.interfaces.tls_certificates import (
        CertificateRequestAttributes,
        TLSCertificatesRequiresV4,
    )

logger = logging.getLogger(__name__)

RELATION = "certificates"


def certificate_request(unit: str, model: str) -> CertificateRequestAttributes:
    """Return the request for this unit's client certificate."""
    from charmlibs.interfaces.tls_certificates import CertificateRequestAttributes

    name = client_name(unit, model)
    return CertificateRequestAttributes(common_name=name, sans_dns=frozenset({name}))


class ClientCertificate(ops.Object):
    """This unit's client certificate: requested once related, kept current."""

    _stored = ops.StoredState()  # type: ignore[no-untyped-call]  # ops leaves it untyped

    def __init__(self, charm: ops.CharmBase):
        super().__init__(charm, RELATION)
        self._charm = charm
        self._stored.set_default(library_state=False)
        related = self.relation is not None
        needed = related or bool(self._stored.library_state)
        self._stored.library_state = related
        self.library = self._set_up(charm) if needed else None

    @property
    def relation(self) -> ops.Relation | None:
        """The certificates relation, if integrated."""
        return self._charm.model.get_relation(RELATION)

    @functools.cached_property
    def request(self) -> CertificateRequestAttributes:
        """What this unit asks for."""
        return certificate_request(self._charm.unit.name, self._charm.model.name)

    def _set_up(self, charm: ops.CharmBase) -> TLSCertificatesRequiresV4 | None:
        relation = self.relation
        if relation is not None and relation.app is not None:
            problem = provider_data_problem(relation.data[relation.app])
            if problem:
                logger.error(
                    "ignoring the data of %s on %r: %s", relation.app.name, RELATION, problem
                )
                return None  # the library would fail on it: left out of this hook
        from charmlibs.interfaces.tls_certificates import Mode, TLSCertificatesRequiresV4

        on = charm.on
        # The events on which the library loads the private key: the key is checked first
        # (observers run in the order they were registered).
        for event in (
            on[RELATION].relation_created,
            on[RELATION].relation_changed,
            on.leader_elected,
            on.secret_expired,
        ):
            self.framework.observe(event, self._check_private_key)
        return TLSCertificatesRequiresV4(
            charm, RELATION, certificate_requests=[self.request], mode=Mode.UNIT
        )

    def _check_private_key(self, _: ops.EventBase) -> None:
        if self.library is not None:
            replace_unusable_private_key(self.library)

    def material(self, layout: Layout) -> ClientMaterial | None:
        """Return the certificate and key to present; None without the relation or one yet.

        The one in use stays while no valid one is issued for the current request and key.
        """
        if self.relation is None:
            return None
        if self.library is None:
            return deployed(layout)  # the provider's data is unreadable this hook
        replace_unusable_private_key(self.library)
        issued, private_key = self.library.get_assigned_certificate(self.request)
        if issued is None or private_key is None or issued.revoked:
            # Make sure it is asked for on any hook, not only on the library's own events.
            self.library.sync()
            return deployed(layout)
        leaf, ca = issued.certificate, issued.ca
        # The intermediates travel with the leaf: the sidekick is given only the CA.
        intermediates = [cert for cert in issued.chain if cert not in (leaf, ca)]
        chain = "".join(f"{str(cert).strip()}\n" for cert in (leaf, *intermediates))
        return ClientMaterial(chain, f"{str(private_key).strip()}\n")
