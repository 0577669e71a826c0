#!/usr/bin/env python3
"""Juju charm for Falcosidekick: receives Falco alerts over TLS, forwards them to Loki and more."""

from __future__ import annotations

import functools
import logging
import socket
import time
from typing import TYPE_CHECKING

import addresses
import client_auth
import idle_hooks
import log_forwarding
import ops
import outputs
import sidekick_client
from alertmanager_dispatch import AlertmanagerConsumer
from certificates import ServerCertificate, named_hosts, private_key_label
from exposure import Exposure, Inputs, Served
from grafana_dashboard import GrafanaDashboardProvider
from ingress import IngressRequirer, url_host
from loki_push_api import LokiPushApiConsumer
from prometheus_scrape import MetricsEndpointProvider
from rotation import PEERS, Rotation
from shipped import ShippedArtifacts
from sidekick import (
    CONTAINER,
    MISSING_BINARY,
    LokiOutput,
    MissingUserError,
    Settings,
    Workload,
)
from topology import juju_topology

if TYPE_CHECKING:  # imported where used: pydantic imports slower than ops
    from config import CharmConfig

logger = logging.getLogger(__name__)

# The relation events that can change what the charm must do; each leads to one reconcile.
_RELATION_EVENTS = {
    "ingress": ("joined", "changed", "broken"),
    "send-loki-logs": ("joined", "changed", "departed", "broken"),
    "certificates": ("changed", "broken"),
    "http-endpoint": ("joined",),
    "metrics-endpoint": ("created",),
    "grafana-dashboard": ("created",),
    "logging": ("joined", "changed", "departed", "broken"),
    "alertmanager": ("joined", "changed", "departed", "broken"),
    PEERS: ("changed", "departed"),
}
_STATUS = {"active": ops.ActiveStatus, "blocked": ops.BlockedStatus, "waiting": ops.WaitingStatus}
# relation-changed with the data the unit already acted on is idle on these endpoints (not on
# certificates: its library acts on the event by itself).
_IDLE_RELATION_CHANGED = (
    "ingress", "send-loki-logs", "logging", "alertmanager", "http-endpoint", PEERS,
)  # fmt: skip


class FalcosidekickCharm(ops.CharmBase):
    """Runs Falcosidekick and tells Falco where to send alerts."""

    _client_ca_problem = ""
    _config_problem = ""
    _image_problem = ""
    _outputs_problem = ""
    _converged = False
    _stored = ops.StoredState()  # type: ignore[no-untyped-call]  # ops leaves it untyped
    # The unit's clock (idle_hooks dates its record with it); tests move it.
    clock = staticmethod(time.time)

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.idle = idle_hooks.IdleHooks(self, _IDLE_RELATION_CHANGED, self.clock)
        self.status_memo = idle_hooks.StatusMemo(self)
        # The label of the private key's secret when the last reconcile had one (idle hooks).
        self._stored.set_default(key_secret="")
        if self.idle.holds(self._workload_facts, self._polled):
            return  # nothing can have changed since the last reconcile: see idle_hooks
        self.ingress = IngressRequirer(self)
        self.loki = LokiPushApiConsumer(self)
        self.logging = LokiPushApiConsumer(self, "logging")
        self.alertmanager = AlertmanagerConsumer(self)
        self.metrics = MetricsEndpointProvider(self)
        self.dashboards = GrafanaDashboardProvider(self)
        self.shipped = ShippedArtifacts(self)
        self.rotation = Rotation(self)
        self.names = addresses.K8sNames.for_unit(self.unit.name, self.model.name, socket.getfqdn())
        external = self._config.external_hostname if self._config else None
        self.certificate = ServerCertificate(self, self.names, external, self._ingress_host)
        on = self.on
        for event in (
            on[CONTAINER].pebble_ready,
            on.config_changed,
            on.update_status,
            on.leader_elected,
            # A new revision of outputs-secret: the charm reads the latest when rendering.
            on.secret_changed,
            *(
                getattr(on[name], f"relation_{kind}")
                for name, kinds in _RELATION_EVENTS.items()
                for kind in kinds
            ),
        ):
            framework.observe(event, self._on_change)
        if self.certificate.library:
            framework.observe(self.certificate.library.on.certificate_available, self._on_change)
        framework.observe(on.upgrade_charm, self._on_upgrade_charm)
        framework.observe(on.test_alert_action, self._on_test_alert_action)
        framework.observe(on.collect_unit_status, self._on_collect_unit_status)

    def _on_change(self, _: ops.EventBase) -> None:
        self._reconcile()

    def _on_upgrade_charm(self, _: ops.UpgradeCharmEvent) -> None:
        self.shipped.forget()  # built by the previous revision's code and libraries
        self.status_memo.forget()
        self._reconcile()

    def _on_test_alert_action(self, event: ops.ActionEvent) -> None:
        container = self.unit.get_container(CONTAINER)
        config = self._config
        configured = config is not None and bool(config.outputs)
        if not (self.loki.urls() or self.alertmanager.urls() or configured):
            event.fail("no output to deliver to: integrate 'send-loki-logs' or set 'outputs'")
            return
        local = Workload(container).serving_endpoints() if container.can_connect() else None
        if local is None:
            event.fail("falcosidekick is not running")
            return
        timeout = float(event.params.get("timeout", 10))
        try:
            # The outputs of the config it runs with: what the event can reach now.
            report = sidekick_client.deliver_test_event(
                local.alert_base,
                local.metrics_url,
                local.ca,
                local.destinations,
                timeout,
                client_certificate=local.client_certificate,
            )
        except sidekick_client.DeliveryCheckError as exc:
            event.fail(str(exc))
            return
        event.set_results(report.results())
        if problem := report.problem(timeout):
            event.fail(problem)

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        self.status_memo.settle(event, self._statuses())
        if self._converged:
            library = self.certificate.library
            self._stored.key_secret = private_key_label(self.unit.name) if library else ""
            self.idle.converged(self._workload_facts(), self._polled())

    def _statuses(self) -> list[ops.StatusBase]:
        """Return every status that applies, in ops' order of precedence among equals."""
        statuses: list[ops.StatusBase] = [
            ops.BlockedStatus(problem) for problem in self._operator_problems()
        ]
        exposure = self._exposure
        notes = exposure.notes() if exposure else []
        statuses += [_STATUS[n.level](n.message) for n in notes if n.level != "active"]
        workload = Workload(self.unit.get_container(CONTAINER))
        try:
            statuses += self._workload_statuses(workload, exposure)
        except ops.pebble.ConnectionError:
            statuses.append(ops.WaitingStatus("waiting for Pebble in the falcosidekick container"))
        statuses += self._loki_statuses()
        statuses += [ops.ActiveStatus(n.message) for n in notes if n.level == "active"]
        statuses.append(ops.ActiveStatus())
        return statuses

    def _workload_facts(self) -> str | None:
        """Return the digest of the workload's facts (idle_hooks); None without Pebble."""
        try:
            return Workload(self.unit.get_container(CONTAINER)).facts()
        except ops.pebble.ConnectionError:
            return None

    def _polled(self) -> str:
        """Return the digest of what idle hooks poll through hook tools (idle_hooks).

        The pod's address: the unit publishes it (scrape target, its report to peers), and a
        rescheduled pod has another. A pod has one address, which every binding gives: this
        reads the binding of the scrape target. And the private key's secret, which the
        full path checks and replaces when it cannot be loaded: its content as tracked.
        """
        binding = self.model.get_binding("metrics-endpoint")
        address = binding.network.bind_address if binding else None
        key: dict[str, str] | None = None
        if label := self._stored.key_secret:
            try:
                key = self.model.get_secret(label=label).get_content()
            except (ops.SecretNotFoundError, ops.ModelError):
                key = {}
        return idle_hooks.digest([str(address or ""), key])

    def _operator_problems(self) -> list[str]:
        """Return what the operator must fix: an option, the outputs, the image."""
        problems = []
        if self._config is None:
            problems.append(self._config_problem)
        elif self._outputs is None:
            problems.append(self._outputs_problem)
        elif self._extra_client_cas is None:
            problems.append(self._client_ca_problem)
        if self._image_problem:
            problems.append(self._image_problem)
        return problems

    def _workload_statuses(
        self, workload: Workload, exposure: Exposure | None
    ) -> list[ops.StatusBase]:
        """Say what keeps this unit from taking alerts. Raises ops.pebble.ConnectionError."""
        statuses: list[ops.StatusBase] = []
        if exposure and exposure.tls:
            served = workload.deployed_tls()
            for level, message in self.certificate.statuses(served, exposure.direct):
                statuses.append(_STATUS[level](message))
        if not workload.is_running():
            if workload.find_binary() is None:
                statuses.append(ops.BlockedStatus(MISSING_BINARY))
            statuses.append(ops.WaitingStatus("falcosidekick is not running, see its logs"))
        elif not workload.is_healthy():
            statuses.append(ops.WaitingStatus("falcosidekick fails its health check"))
        return statuses

    def _loki_statuses(self) -> list[ops.StatusBase]:
        """Say where alerts and our own logs go when that is not simply "to Loki"."""
        statuses: list[ops.StatusBase] = []
        if not self.loki.relations:
            statuses.append(ops.ActiveStatus("alerts are not stored: integrate 'send-loki-logs'"))
        elif not self.loki.current_urls():
            last = " (alerts go to the last one meanwhile)" if self.loki.urls() else ""
            statuses.append(ops.WaitingStatus(f"waiting for a Loki URL on 'send-loki-logs'{last}"))
        if pending := self.logging.units_without_endpoint():
            # The log targets are not touched until every unit has one: say why they lag.
            more = f" and {len(pending) - 1} more" if len(pending) > 1 else ""
            statuses.append(
                ops.WaitingStatus(
                    f"log targets unchanged: no Loki endpoint from {pending[0]}{more} on 'logging'"
                )
            )
        return statuses

    def _reconcile(self) -> None:
        """Converge the workload and every relation on the current inputs."""
        self.idle.begin()
        config, exposure, rendered_outputs = self._config, self._exposure, self._outputs
        extra_client_cas = self._extra_client_cas
        if (
            config is None
            or exposure is None
            or rendered_outputs is None
            or extra_client_cas is None
        ):
            # The running config stays; the status names the option to fix. Nothing more
            # to do until an input changes.
            self._converged = True
            return
        topology = juju_topology(self)
        # The Falco alert rules travel with the alerts; our own logs get none (the same
        # rules on both relations would fire every alert twice in a shared Loki).
        self.loki.publish(topology, self.shipped.falco_loki_rules)
        self.logging.publish(topology, dict)
        self.dashboards.publish(self.shipped.dashboards)
        container = self.unit.get_container(CONTAINER)
        if not container.can_connect():
            # Waiting; retried on pebble-ready and update-status. Whether it serves is not
            # known: the last report and URL stay (the pod is out of the Service meanwhile,
            # since Pebble answers no readiness probe either).
            return
        workload = Workload(container)
        served: Served | None = None
        try:
            # Fetched whenever related: outputs trust its CA even where it is not served.
            material = self.certificate.material(workload)
            listener = exposure.listener(material is not None)
            urls = self.loki.urls()
            loki = (
                LokiOutput(urls[0], config.loki_tenant, config.minimum_priority) if urls else None
            )
            settings = Settings(
                config.port,
                listener.network,
                material if listener.tls else None,
                loki,
                config.custom_fields,
                self._pod_address,
                client_ca=material.ca if material else None,
                outputs=rendered_outputs,
                outputs_ca=config.outputs_ca_certs,
                client_auth_ca=(
                    client_auth.bundle(material.ca, extra_client_cas)
                    if material and exposure.mutual_tls
                    else None
                ),
            )
            if (log_urls := self.logging.unit_urls()) is not None:
                workload.forward_logs(log_urls, log_forwarding.labels(topology))
            workload.apply(settings)
            served = self._served(workload, settings)
            converged = True
        except ops.pebble.ConnectionError as exc:
            logger.info("Pebble went away, will retry: %s", exc)
            return
        except ops.pebble.ChangeError as exc:
            logger.error("falcosidekick did not start: %s", exc)
            converged = False  # retried on the next hook
        except MissingUserError as exc:
            logger.error("%s (%s)", exc, exc.__cause__)
            self._image_problem = str(exc)
            converged = False
        self.unit.set_ports(*([config.port] if settings.listen_on_network else []))
        self.ingress.publish(config.port, exposure.ingress_scheme, host=self.names.pod_fqdn)
        self.rotation.publish(exposure, served, self.certificate.reachable_hosts)
        self.metrics.publish(settings.metrics_port, topology, self.shipped.prometheus_rules)
        self._converged = converged

    def _served(self, workload: Workload, settings: Settings) -> Served | None:
        """Return what this unit serves on the network now; None when nothing.

        From what the charm knows: where it made the sidekick listen, and whether Pebble
        runs it. (The ready check says the same to Kubernetes, but its last result can
        predate a restart made a moment ago.) Raises ops.pebble.ConnectionError.
        """
        if not (settings.listen_on_network and workload.is_running()):
            return None
        if settings.tls is None:
            return Served("http", settings.port)
        hosts = named_hosts(settings.tls.chain, self.certificate.reachable_hosts())
        return Served("https", settings.port, hosts, settings.tls.ca)

    @functools.cached_property
    def _pod_address(self) -> str:
        """The pod's own address, as the Service reaches it (its FQDN if Juju gives none)."""
        binding = self.model.get_binding(PEERS)
        address = binding.network.bind_address if binding else None
        return str(address) if address else self.names.pod_fqdn

    def _ingress_host(self) -> str | None:
        url = self.ingress.url()
        return url_host(url) if url else None

    @functools.cached_property
    def _exposure(self) -> Exposure | None:
        """How the alert input is exposed; None when the config is invalid."""
        config = self._config
        if config is None:
            return None
        inputs = Inputs(
            port=config.port,
            backend_scheme=config.ingress_backend_scheme,
            certificates=self.model.get_relation("certificates") is not None,
            ingress=self.ingress.relation is not None,
            ingress_url=self.ingress.url(),
            client_auth=config.client_authentication == "required",
        )
        return Exposure.of(inputs)

    @functools.cached_property
    def _extra_client_cas(self) -> str | None:
        """The CAs of client-ca-secret ("" if none or not needed); None when unusable.

        Read only while client certificates are required; the reason is in
        _client_ca_problem.
        """
        config = self._config
        if config is None or config.client_authentication != "required":
            return ""
        try:
            return client_auth.extra_cas(self.model, self.app.name, config.client_ca_secret)
        except client_auth.ClientCaError as exc:
            self._client_ca_problem = str(exc)
            return None

    @functools.cached_property
    def _outputs(self) -> outputs.Spec | None:
        """The output sections to render, secrets read; None when they cannot be.

        The reason is in _outputs_problem (it names the option and key, never a value).
        """
        config = self._config
        if config is None:
            return None
        try:
            secret = self._outputs_secret(config.outputs_secret, config.outputs)
            return outputs.resolve(config.outputs, secret, self.alertmanager.urls())
        except outputs.OutputsError as exc:
            self._outputs_problem = str(exc)
            return None

    def _outputs_secret(self, secret_id: str, spec: outputs.Spec) -> dict[str, str] | None:
        """Return the content of outputs-secret, read only when ``spec`` refers to it.

        Always its latest revision: secret-changed then re-renders, once. Raises
        outputs.OutputsError when the secret cannot be read.
        """
        if not (secret_id and outputs.secret_keys(spec)):
            return None
        try:
            return self.model.get_secret(id=secret_id).get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError):
            raise outputs.OutputsError(
                "outputs-secret",
                "cannot read the secret: grant it to this application "
                f"(juju grant-secret <secret> {self.app.name})",
            ) from None

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


def main() -> None:
    """Run the hook Juju dispatched (the idle_hooks way: see its ``main``)."""
    idle_hooks.main(FalcosidekickCharm)


if __name__ == "__main__":  # pragma: no cover
    main()
