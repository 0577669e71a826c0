"""The sidekick's server certificate over ``certificates`` (tls-certificates, one per unit).

The tls-certificates library pulls in cryptography and many pydantic models, so it is
imported only where a certificate matters: this module imports it inside the functions that
use it, and :class:`ServerCertificate` sets the library up only while the relation exists
(or the library still has its secrets to clean up after the relation went away).

Which names the certificate must carry, and which reachable host it covers, is decided here;
whether it is served at all is the exposure's business (exposure.py).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import addresses
import ops
from sidekick import TlsMaterial, Workload
from tls_guard import provider_data_problem, replace_unusable_private_key

if TYPE_CHECKING:  # imported where used: see the module docstring
    from charmlibs.interfaces.tls_certificates import (
        CertificateRequestAttributes,
        TLSCertificatesRequiresV4,
    )

logger = logging.getLogger(__name__)

RELATION = "certificates"
# The label of the secret where the tls library keeps this unit's private key (its own
# format, which tests/unit/test_relations.py holds to it): idle hooks read it by label
# without importing the library.
_LIBRARY_ID = "afd8c2bccf834997afce12c2706d2ede"


def private_key_label(unit_name: str) -> str:
    """Return the label of the secret holding ``unit_name``'s private key (see above)."""
    return f"{_LIBRARY_ID}-private-key-{unit_name.split('/')[1]}-{RELATION}"


# X.509 limits the common name to 64 characters; the SANs carry every name anyway.
_MAX_COMMON_NAME = 64
# The served certificate is no longer the one issued for our request and key; it keeps
# serving until the new one arrives.
REVOKED = "serving a revoked certificate: waiting for a new one on 'certificates'"
RENEWING = "waiting for a new certificate on 'certificates' (serving the previous one)"
UNREADABLE = "ignoring unreadable data on 'certificates' (serving the current certificate)"
WAITING = "waiting for a certificate on 'certificates'"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def certificate_request(names: Sequence[str]) -> CertificateRequestAttributes:
    """Return the request for a server certificate valid for every name in ``names``.

    The first name is the preferred one (the Service name Falco uses); an address goes in
    the IP SANs, where clients look for it.
    """
    from charmlibs.interfaces.tls_certificates import CertificateRequestAttributes

    dns = [name for name in names if not _is_ip(name)]
    ips = [name for name in names if _is_ip(name)]
    common_name = next((name for name in dns if len(name) <= _MAX_COMMON_NAME), None)
    return CertificateRequestAttributes(
        common_name=common_name, sans_dns=dns or None, sans_ip=ips or None
    )


def assigned_material(
    certificates: TLSCertificatesRequiresV4, request: CertificateRequestAttributes
) -> TlsMaterial | None:
    """Return the certificate issued for ``request`` with its key and CA, or None yet.

    A certificate the provider marked revoked is not one to (start to) serve: None.
    """
    provider_certificate, private_key = certificates.get_assigned_certificate(request)
    if provider_certificate is None or private_key is None or provider_certificate.revoked:
        return None
    leaf, ca = provider_certificate.certificate, provider_certificate.ca
    # Serve the intermediates too: Falco is given only the CA and must build the path.
    intermediates = [c for c in provider_certificate.chain if c not in (leaf, ca)]
    chain = "".join(f"{str(cert).strip()}\n" for cert in (leaf, *intermediates))
    return TlsMaterial(chain=chain, key=f"{str(private_key).strip()}\n", ca=f"{str(ca).strip()}\n")


def served_standing(
    certificates: TLSCertificatesRequiresV4, request: CertificateRequestAttributes, chain_pem: str
) -> str:
    """Say whether the served certificate is the provider's answer to our current request.

    ``"current"``; ``"revoked"`` when the provider lists it as revoked; ``"stale"`` otherwise
    (a renewal, new names or a new key pending). Read from relation data only, without the
    private key: loading an RSA key takes tens of milliseconds, too much for every hook.
    """
    from charmlibs.interfaces.tls_certificates import CertificateRequestAttributes
    from cryptography import x509

    leaf = x509.load_pem_x509_certificate(chain_pem.encode())
    current = [
        requested.certificate_signing_request
        for requested in certificates.get_csrs_from_requirer_relation_data()
        if request
        == CertificateRequestAttributes.from_csr(
            requested.certificate_signing_request, requested.is_ca
        )
    ]
    standing = "stale"
    for issued in certificates.get_provider_certificates():
        if x509.load_pem_x509_certificate(str(issued.certificate).encode()) != leaf:
            continue
        if issued.revoked:
            return "revoked"
        if issued.certificate_signing_request in current:
            standing = "current"
    return standing


def named_hosts(chain_pem: str, hosts: Sequence[str]) -> tuple[str, ...]:
    """Return those of ``hosts`` the leaf certificate of ``chain_pem`` is valid for, in order.

    Names are compared exactly (the certificate request never holds wildcards), addresses as
    addresses, the way Falco's libcurl checks the URL host.
    """
    from cryptography import x509

    leaf = x509.load_pem_x509_certificate(chain_pem.encode())
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    dns = {name.lower() for name in sans.get_values_for_type(x509.DNSName)}
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return tuple(
        host
        for host in hosts
        if ((str(ipaddress.ip_address(host)) in ips) if _is_ip(host) else (host.lower() in dns))
    )


def first_named(chain_pem: str, hosts: Sequence[str]) -> str | None:
    """Return the first of ``hosts`` the leaf certificate of ``chain_pem`` is valid for."""
    return next(iter(named_hosts(chain_pem, hosts)), None)


class ServerCertificate(ops.Object):
    """This unit's server certificate: requested with every name Falco may use, kept current.

    The library is set up while the relation exists, and once more after it went away (its
    relation-broken handler removes the key and certificate secrets). A private key secret
    that cannot be loaded is replaced before each event on which the library loads the key,
    and before the charm loads it.
    """

    _stored = ops.StoredState()  # type: ignore[no-untyped-call]  # ops leaves it untyped

    def __init__(
        self,
        charm: ops.CharmBase,
        names: addresses.K8sNames,
        external_hostname: str | None,
        ingress_host: Callable[[], str | None],
    ):
        """Set up for ``external_hostname`` ("" for none; None when the config is invalid).

        ``ingress_host`` gives the ingress's host, which the certificate names too; it is
        asked only when the library is set up.
        """
        super().__init__(charm, RELATION)
        self._charm = charm
        self.names = names
        self._external_hostname = external_hostname or ""
        self._ingress_host = ingress_host
        self._request: CertificateRequestAttributes | None = None
        self.provider_problem: str | None = None
        self._stored.set_default(library_state=False)
        related = self.relation is not None
        needed = related or bool(self._stored.library_state)
        self._stored.library_state = related
        # An invalid config must not change the certificate being served: no library then.
        self.library = self._set_up(charm) if needed and external_hostname is not None else None

    @property
    def relation(self) -> ops.Relation | None:
        """The certificates relation, if integrated."""
        return self._charm.model.get_relation(RELATION)

    @functools.cached_property
    def cluster_ip(self) -> str | None:
        """The application Service's address, as the pod resolves its name."""
        return addresses.resolve(self.names.service_fqdn)

    def reachable_hosts(self) -> list[str]:
        """Where Falco hosts can reach the Service, best first (see addresses)."""
        candidates = (self._external_hostname, self.cluster_ip, self.names.service_fqdn)
        return [host for host in candidates if host]

    def _set_up(self, charm: ops.CharmBase) -> TLSCertificatesRequiresV4 | None:
        if self._provider_data_is_unreadable():
            return None  # the library would fail on it: leave it out of this hook altogether
        from charmlibs.interfaces.tls_certificates import Mode, TLSCertificatesRequiresV4

        names = self.names.server_names(
            self._ingress_host(), self._external_hostname, self.cluster_ip
        )
        self._request = certificate_request(names)
        on = charm.on
        # Each of these can change the names, and new names need a new certificate. Not
        # update-status: a ClusterIP only changes when the Service is recreated, which
        # upgrade-charm (config-changed) sees.
        refresh = [
            on.config_changed,
            on["ingress"].relation_changed,
            on["ingress"].relation_broken,
        ]
        # The events on which the library loads the private key: the key is checked first
        # (observers run in the order they were registered).
        for event in (
            on[RELATION].relation_created,
            on[RELATION].relation_changed,
            on.leader_elected,
            on.secret_expired,
            *refresh,
        ):
            self.framework.observe(event, self._check_private_key)
        return TLSCertificatesRequiresV4(
            charm,
            RELATION,
            certificate_requests=[self._request],
            mode=Mode.UNIT,
            refresh_events=refresh,
        )

    def _check_private_key(self, _: ops.EventBase) -> None:
        if self.library is not None:
            replace_unusable_private_key(self.library)

    def _provider_data_is_unreadable(self) -> bool:
        relation = self.relation
        if relation is None or relation.app is None:
            return False
        self.provider_problem = provider_data_problem(relation.data[relation.app])
        if self.provider_problem:
            logger.error(
                "ignoring the data of %s on %r: %s",
                relation.app.name,
                RELATION,
                self.provider_problem,
            )
        return bool(self.provider_problem)

    def material(self, workload: Workload) -> TlsMaterial | None:
        """Return the TLS material to serve, None without a relation or a certificate yet.

        The certificate being served stays while its replacement is pending (new names, a
        renewal, a revoked certificate, a new private key): Falco can still post.
        """
        if self.relation is None:
            return None
        if self.library is None or self._request is None:
            return workload.deployed_tls()  # the provider's data is unreadable this hook
        # Loading the key here (every hook) is also what notices a key secret that was
        # rotated, removed or garbled since the last hook.
        replace_unusable_private_key(self.library)
        issued = assigned_material(self.library, self._request)
        if issued is None:
            # Nothing valid is issued for the current names and key: make sure it is asked
            # for on any hook, not only on the library's own events.
            self.library.sync()
        return issued or workload.deployed_tls()

    def standing(self, served: TlsMaterial) -> str:
        """Return the standing of the served certificate (see served_standing)."""
        return self._standing(served.chain)

    @functools.lru_cache(maxsize=4)  # noqa: B019 - one instance per hook
    def _standing(self, chain_pem: str) -> str:
        if self.library is None or self._request is None:
            return "current"  # nothing to compare with this hook
        return served_standing(self.library, self._request, chain_pem)

    def statuses(self, served: TlsMaterial | None, direct: bool) -> list[tuple[str, str]]:
        """Return (level, message) of what is missing before the certificate is as wanted.

        ``direct``: Falco reaches this unit with its certificate (not through an ingress),
        so the certificate must name the best host Falco can reach.
        """
        if self.relation is None:
            return []
        statuses = [("waiting", UNREADABLE)] if self.provider_problem else []
        best = self.reachable_hosts()[0]
        if served is None:
            statuses.append(("waiting", WAITING))
        elif direct and first_named(served.chain, [best]) is None:
            statuses.append(("waiting", f"waiting for a certificate that names {best}"))
        elif (standing := self.standing(served)) != "current":
            statuses.append(("waiting", REVOKED if standing == "revoked" else RENEWING))
        return statuses
