"""Where Falco posts its alerts: the certificate the sidekick serves and the URL it publishes.

The published URL must be one that Falco can reach *and* verify. Falco runs on machines (or
on K8s nodes as a host process), never in a pod, so cluster DNS names do not resolve for it.
In certificates-only mode the URL host is therefore, in order of preference:

1. the ``external-hostname`` option (a LoadBalancer or NodePort address, or a DNS name for
   it), which the operator knows to be reachable;
2. the Service's ClusterIP, resolved from inside the pod: every node of the cluster routes
   it, and so does the host of a single-host setup (LXD machines next to MicroK8s);
3. the Service FQDN, when the name does not resolve (only pods could use it).

Every candidate is in the certificate request, and a host is published only once the served
certificate names it: a new name means a new certificate, and until it arrives the current
certificate keeps serving and the URL keeps a host that certificate names.

With an ingress, the URL is the ingress URL: Falco verifies the ingress, not us.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from typing import TYPE_CHECKING

import addresses
import ops
from ingress import IngressRequirer, url_host
from sidekick import TlsMaterial, Workload

if TYPE_CHECKING:  # imported where used: pydantic and cryptography import slower than ops
    from charmlibs.interfaces.tls_certificates import (
        CertificateRequestAttributes,
        TLSCertificatesRequiresV4,
    )
    from falcosidekick_http_endpoint import HttpEndpointProvider

logger = logging.getLogger(__name__)

CERTIFICATES = "certificates"
# The served certificate is no longer the one issued for our request and key; it keeps
# serving until the new one arrives.
_REVOKED = "serving a revoked certificate: waiting for a new one on 'certificates'"
_RENEWING = "waiting for a new certificate on 'certificates' (serving the previous one)"
_UNREADABLE = "ignoring unreadable data on 'certificates' (serving the current certificate)"
# Hooks where the tls-certificates library has work even when no relation is left.
_TLS_HOOKS = (f"{CERTIFICATES}-relation-", "secret-")
# Hooks in which the library's own handlers (which run before ours) load the private key.
_KEY_LOADING_HOOKS = (
    f"{CERTIFICATES}-relation-",
    "leader-elected",
    "config-changed",
    "ingress-relation-changed",
    "ingress-relation-broken",
    "secret-expired",
)


class AlertEndpoint(ops.Object):
    """The server certificate over ``certificates`` and the URL on ``http-endpoint``."""

    def __init__(
        self, charm: ops.CharmBase, ingress: IngressRequirer, external_hostname: str | None
    ):
        """Set up for ``external_hostname`` ("" for none; None when the config is invalid)."""
        super().__init__(charm, "alert-endpoint")
        self._charm = charm
        self._ingress = ingress
        self._external_hostname = external_hostname or ""
        self.names = addresses.K8sNames.for_unit(
            charm.unit.name, charm.model.name, socket.getfqdn()
        )
        self._cluster_ip: str | None = None
        self._request: CertificateRequestAttributes | None = None
        self._provider_problem: str | None = None
        # An invalid config must not change the certificate being served: no requirer then.
        self.certificates = self._requirer() if external_hostname is not None else None

    @property
    def relation(self) -> ops.Relation | None:
        """The certificates relation, if integrated."""
        return self._charm.model.get_relation(CERTIFICATES)

    def _requirer(self) -> TLSCertificatesRequiresV4 | None:
        hook = os.environ.get("JUJU_DISPATCH_PATH", "").rpartition("/")[2]
        if not self._charm.model.relations[CERTIFICATES] and not hook.startswith(_TLS_HOOKS):
            return None
        import certificates

        ingress_url = self._ingress.url()
        self._cluster_ip = addresses.resolve(self.names.service_fqdn)
        names = self.names.server_names(
            url_host(ingress_url) if ingress_url else None,
            self._external_hostname,
            self._cluster_ip,
        )
        self._request = certificates.certificate_request(names)
        # Each of these can change the names, and new names need a new certificate. Not
        # update-status: the library's checks would double that hook's cost, and a ClusterIP
        # only changes when the Service is recreated, which upgrade-charm (config-changed) sees.
        on = self._charm.on
        refresh = [
            on.config_changed,
            on["ingress"].relation_changed,
            on["ingress"].relation_broken,
        ]
        if self._provider_data_is_unreadable():
            return None  # the library would fail on it: leave it out of this hook altogether
        requirer = certificates.requirer(self._charm, self._request, refresh)
        if hook.startswith(_KEY_LOADING_HOOKS):
            certificates.replace_unusable_private_key(requirer)
        return requirer

    def _provider_data_is_unreadable(self) -> bool:
        import certificates

        relation = self.relation
        if relation is None or relation.app is None:
            return False
        self._provider_problem = certificates.provider_data_problem(relation.data[relation.app])
        if self._provider_problem:
            logger.error(
                "ignoring the data of %s on %r: %s",
                relation.app.name,
                CERTIFICATES,
                self._provider_problem,
            )
        return bool(self._provider_problem)

    def tls(self, workload: Workload) -> TlsMaterial | None:
        """Return the TLS material to serve, None when there is no certificates relation."""
        if self.relation is None:
            return None
        if self.certificates is None or self._request is None:
            return workload.deployed_tls()  # the provider's data is unreadable this hook
        if self._issued is None:
            # Nothing valid is issued for the current names and key (new names, a renewal, a
            # revoked certificate, a new private key): make sure it is asked for on any hook,
            # not only on the library's own events.
            self.certificates.sync()
        # Meanwhile the current certificate keeps serving: Falco can still post.
        return self._issued or workload.deployed_tls()

    @functools.cached_property
    def _issued(self) -> TlsMaterial | None:
        """The certificate issued for the current request and key, None if none (yet)."""
        if self.certificates is None or self._request is None:
            return None
        import certificates

        certificates.replace_unusable_private_key(self.certificates)
        return certificates.assigned_material(self.certificates, self._request)

    def reachable_hosts(self) -> list[str]:
        """Where Falco hosts can reach the Service, best first."""
        candidates = (self._external_hostname, self._cluster_ip, self.names.service_fqdn)
        return [host for host in candidates if host]

    def served_host(self, tls: TlsMaterial) -> str | None:
        """The best reachable host the served certificate names, None if it names none."""
        import certificates

        return certificates.first_named(tls.chain, self.reachable_hosts())

    def publish(self, port: int, ingress_url: str | None, tls: TlsMaterial | None) -> None:
        """As leader, tell every Falco application where to post, or withdraw the URL."""
        if not self._charm.unit.is_leader():
            return
        if ingress_url:
            # Falco talks to the ingress, whose certificate is not ours to vouch for.
            self._http_endpoint.publish(ingress_url)
        elif tls:
            host = self.served_host(tls) or self.names.service_fqdn
            host = f"[{host}]" if ":" in host else host
            self._http_endpoint.publish(f"https://{host}:{port}/", tls.ca)
        else:
            # Nothing listens on the network: a stale URL would only make Falco fail later.
            self._http_endpoint.withdraw()

    def statuses(self, workload: Workload) -> list[ops.StatusBase]:
        """Return what is missing before Falco can post to a verified URL.

        Raises ops.pebble.ConnectionError when the container cannot be read.
        """
        ingress_url = self._ingress.url()
        statuses: list[ops.StatusBase] = []
        if self._ingress.relation and ingress_url is None:
            statuses.append(ops.WaitingStatus("waiting for the URL of 'ingress'"))
        if self.relation is None:
            return statuses
        if self._provider_problem:
            statuses.append(ops.WaitingStatus(_UNREADABLE))
        served = workload.deployed_tls()
        if served is None:
            statuses.append(ops.WaitingStatus("waiting for a certificate on 'certificates'"))
        elif not ingress_url and self.served_host(served) != (best := self.reachable_hosts()[0]):
            statuses.append(ops.WaitingStatus(f"waiting for a certificate that names {best}"))
        elif self.certificates and self._request:
            import certificates

            standing = certificates.served_standing(self.certificates, self._request, served.chain)
            if standing != "current":
                statuses.append(
                    ops.WaitingStatus(_REVOKED if standing == "revoked" else _RENEWING)
                )
        return statuses

    @functools.cached_property
    def _http_endpoint(self) -> HttpEndpointProvider:
        from falcosidekick_http_endpoint import HttpEndpointProvider

        return HttpEndpointProvider(self._charm)
