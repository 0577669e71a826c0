#!/usr/bin/env python3
"""Juju charm for Falcosidekick: receives Falco alerts over TLS and forwards them to Loki."""

from __future__ import annotations

import functools
import logging
import os
import socket
from typing import TYPE_CHECKING

import ops
import sidekick_client
from addresses import K8sNames
from ingress import IngressRequirer, url_host
from loki_push_api import LokiPushApiConsumer
from sidekick import CONTAINER, LokiOutput, Settings, TlsMaterial, Workload

if TYPE_CHECKING:  # imported where used: pydantic and cryptography import slower than ops
    from charmlibs.interfaces.tls_certificates import TLSCertificatesRequiresV4
    from config import CharmConfig
    from falcosidekick_http_endpoint import HttpEndpointProvider

logger = logging.getLogger(__name__)

# Hooks where the tls-certificates library has work even when no relation is left.
_TLS_HOOKS = ("certificates-relation-", "secret-")


class FalcosidekickCharm(ops.CharmBase):
    """Runs Falcosidekick and tells Falco where to send alerts."""

    _config_problem = ""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._names = K8sNames.for_unit(self.unit.name, self.model.name, socket.getfqdn())
        self.ingress = IngressRequirer(self)
        self.loki = LokiPushApiConsumer(self)
        self.certificates = self._certificates_requirer()
        on = self.on
        for event in (
            on[CONTAINER].pebble_ready,
            on.config_changed,
            on.upgrade_charm,
            on.update_status,
            on.leader_elected,
            *(on[name].relation_joined for name in ("ingress", "send-loki-logs", "http-endpoint")),
            *(on[name].relation_changed for name in ("ingress", "send-loki-logs", "certificates")),
            *(on[name].relation_broken for name in ("ingress", "send-loki-logs", "certificates")),
            on["send-loki-logs"].relation_departed,
        ):
            framework.observe(event, self._on_change)
        if self.certificates:
            framework.observe(self.certificates.on.certificate_available, self._on_change)
        framework.observe(on.test_alert_action, self._on_test_alert_action)
        framework.observe(on.collect_unit_status, self._on_collect_unit_status)

    def _on_change(self, _: ops.EventBase) -> None:
        self._reconcile()

    def _on_test_alert_action(self, event: ops.ActionEvent) -> None:
        container = self.unit.get_container(CONTAINER)
        if not self.loki.urls():
            event.fail("no Loki to deliver to: integrate 'send-loki-logs' first")
            return
        local = Workload(container).serving_endpoints() if container.can_connect() else None
        if local is None:
            event.fail("falcosidekick is not running")
            return
        timeout = float(event.params.get("timeout", 10))
        try:
            delivery = sidekick_client.deliver_test_event(
                local.alert_base, local.metrics_url, local.ca, timeout_s=timeout
            )
        except sidekick_client.DeliveryCheckError as exc:
            event.fail(str(exc))
            return
        event.set_results(delivery.results())
        if problem := delivery.problem(timeout):
            event.fail(problem)

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        if self._config is None:
            event.add_status(ops.BlockedStatus(self._config_problem))
        certificates, ingress = self.model.get_relation("certificates"), self.ingress.relation
        if not (certificates or ingress):
            event.add_status(
                ops.BlockedStatus("no TLS: integrate with 'certificates' or 'ingress'")
            )
        workload = Workload(self.unit.get_container(CONTAINER))
        try:
            if certificates and workload.deployed_tls() is None:
                event.add_status(ops.WaitingStatus("waiting for a certificate on 'certificates'"))
            if ingress and self.ingress.url() is None:
                event.add_status(ops.WaitingStatus("waiting for the URL of 'ingress'"))
            if not workload.is_running():
                event.add_status(ops.WaitingStatus("falcosidekick is not running, see its logs"))
            elif not workload.is_healthy():
                event.add_status(ops.WaitingStatus("falcosidekick fails its health check"))
        except ops.pebble.ConnectionError:
            event.add_status(
                ops.WaitingStatus("waiting for Pebble in the falcosidekick container")
            )
        if not self.loki.relations:
            event.add_status(ops.ActiveStatus("alerts are not stored: integrate 'send-loki-logs'"))
        elif not self.loki.urls():
            event.add_status(ops.WaitingStatus("waiting for a Loki URL on 'send-loki-logs'"))
        event.add_status(ops.ActiveStatus())

    def _reconcile(self) -> None:
        """Converge the workload and every relation on the current inputs."""
        config = self._config
        if config is None:
            return  # the running config stays; the status names the option to fix
        self.loki.publish(alert_rules={})
        container = self.unit.get_container(CONTAINER)
        if not container.can_connect():
            return  # Waiting; retried on pebble-ready and update-status
        workload = Workload(container)
        ingress_url = self.ingress.url()
        try:
            tls = self._tls(workload)
            urls = self.loki.urls()
            loki = (
                LokiOutput(urls[0], config.loki_tenant, config.minimum_priority) if urls else None
            )
            settings = Settings(
                config.port, bool(tls or ingress_url), tls, loki, config.custom_fields
            )
            workload.apply(settings)
        except ops.pebble.ConnectionError as exc:
            logger.info("Pebble went away, will retry: %s", exc)
            return
        except ops.pebble.ChangeError as exc:
            logger.error("falcosidekick did not start: %s", exc)
        self.unit.set_ports(*([config.port] if settings.listen_on_network else []))
        self.ingress.publish(config.port, tls=tls is not None, host=self._names.pod_fqdn)
        self._publish_endpoint(config.port, ingress_url, tls)

    def _publish_endpoint(
        self, port: int, ingress_url: str | None, tls: TlsMaterial | None
    ) -> None:
        if not self.unit.is_leader():
            return
        if ingress_url:
            # Falco talks to the ingress, whose certificate is not ours to vouch for.
            self._http_endpoint.publish(ingress_url)
        elif tls:
            # The Service name: any unit can take alerts, not only the leader's pod.
            self._http_endpoint.publish(f"https://{self._names.service_fqdn}:{port}/", tls.ca)
        else:
            # Nothing listens on the network: a stale URL would only make Falco fail later.
            self._http_endpoint.withdraw()

    def _tls(self, workload: Workload) -> TlsMaterial | None:
        if self.certificates is None or not self.model.get_relation("certificates"):
            return None
        import certificates

        # While a certificate for new names is on its way, keep serving the current one.
        issued = certificates.assigned_material(self.certificates, self._certificate_request)
        return issued or workload.deployed_tls()

    def _certificates_requirer(self) -> TLSCertificatesRequiresV4 | None:
        hook = os.environ.get("JUJU_DISPATCH_PATH", "").rpartition("/")[2]
        if not self.model.relations["certificates"] and not hook.startswith(_TLS_HOOKS):
            return None
        import certificates

        ingress_url = self.ingress.url()
        names = self._names.server_names(url_host(ingress_url) if ingress_url else None)
        self._certificate_request = certificates.certificate_request(names)
        # The names include the ingress host: a new one needs a new certificate.
        refresh = [self.on["ingress"].relation_changed, self.on["ingress"].relation_broken]
        return certificates.requirer(self, self._certificate_request, refresh)

    @functools.cached_property
    def _config(self) -> CharmConfig | None:
        """The validated options; None when invalid, with the reason in _config_problem."""
        from charm_config import InvalidConfigError, load_charm_config
        from config import CharmConfig

        try:
            return load_charm_config(self, CharmConfig)
        except InvalidConfigError as exc:
            self._config_problem = str(exc)
            return None

    @functools.cached_property
    def _http_endpoint(self) -> HttpEndpointProvider:
        from falcosidekick_http_endpoint import HttpEndpointProvider

        return HttpEndpointProvider(self)


if __name__ == "__main__":  # pragma: no cover
    ops.main(FalcosidekickCharm)
