"""The names and addresses a Falco host may use to reach this application.

Juju gives every sidecar application a Service named after it and every unit a pod behind a
headless ``<app>-endpoints`` Service. Alerts go to the Service, so that any unit can take
them; the pod name is what an ingress uses to reach one unit as a backend.

Falco never runs in a pod (it runs on machines, or on K8s nodes as a host process), so it
cannot resolve cluster DNS names. What it can reach without an ingress is the Service's
ClusterIP: every node routes it through kube-proxy, and on a single-host setup (LXD machines
next to MicroK8s) the machines reach it through the host. The pod resolves its Service name
to that address.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

logger = logging.getLogger(__name__)

DEFAULT_CLUSTER_DOMAIN = "cluster.local"


def cluster_domain(pod_fqdn: str) -> str:
    """Return the cluster DNS domain from the pod's own FQDN (clusters may rename it)."""
    _, svc, domain = pod_fqdn.partition(".svc.")
    return domain.rstrip(".") if svc and domain else DEFAULT_CLUSTER_DOMAIN


@dataclass(frozen=True)
class K8sNames:
    """The DNS names of one unit of a Juju application on Kubernetes."""

    app: str
    model: str
    unit_number: int
    domain: str = DEFAULT_CLUSTER_DOMAIN

    @classmethod
    def for_unit(cls, unit_name: str, model: str, pod_fqdn: str) -> K8sNames:
        """Return the names of ``unit_name`` (``app/N``), the domain read from ``pod_fqdn``."""
        app, _, number = unit_name.partition("/")
        return cls(app, model, int(number), cluster_domain(pod_fqdn))

    @property
    def service_fqdn(self) -> str:
        """The application's Service: one name for every unit."""
        return f"{self.app}.{self.model}.svc.{self.domain}"

    @property
    def pod_fqdn(self) -> str:
        """This unit's pod, through the headless Service Juju creates."""
        return f"{self.app}-{self.unit_number}.{self.app}-endpoints.{self.model}.svc.{self.domain}"

    def server_names(self, *extra_hosts: str | None) -> tuple[str, ...]:
        """Every name a client may use for this unit, most specific Service name first.

        Pods in the same namespace can use the short forms, so they are covered too;
        ``extra_hosts`` (an ingress host, an external name, the ClusterIP) come last.
        """
        names = [
            self.service_fqdn,
            f"{self.app}.{self.model}.svc",
            f"{self.app}.{self.model}",
            self.app,
            self.pod_fqdn,
        ]
        names += [host for host in extra_hosts if host]
        return tuple(dict.fromkeys(names))


def resolve(host: str) -> str | None:
    """Return the address ``host`` resolves to from here, None (logged) when it does not."""
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        logger.warning("cannot resolve %s, publishing the name instead: %s", host, exc)
        return None
    return str(found[0][4][0]) if found else None
