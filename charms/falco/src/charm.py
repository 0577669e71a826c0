#!/usr/bin/env python3
"""Juju charm for Falco, a machine subordinate that runs runtime security detection.

The charm only wires Juju to the workload modules: every event runs one reconcile that reads
all inputs and converges the machine, and the status is derived from what is observed on the
machine. See README.md for which option causes a hot reload and which a restart.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import alert_destination
import alert_log
import client_tls
import coexistence
import custom_rules
import driver
import falco_config
import git_sync
import health
import idle_facts
import idle_hooks
import journal
import kmod
import ops
import ownership
import payload
import records
import reload_check
import repo_secrets
import self_test
import service
import systemd_facts
from client_certificate import ClientCertificate
from cos_agent import CosAgentProvider
from falcosidekick_http_endpoint import HttpEndpointRequirer
from layout import Layout
from messages import status_line

if TYPE_CHECKING:  # imported where used: pydantic takes longer to import than ops
    from config import FalcoConfig

logger = logging.getLogger(__name__)

BUNDLED_PAYLOAD = Path("payload") / "falco.tar.gz"
# relation-changed with the data the unit already acted on is idle on these endpoints.
_IDLE_RELATION_CHANGED = (alert_destination.RELATION, "cos-agent")


class FalcoCharm(ops.CharmBase):
    """Runs Falco on the principal's machine and sends its alerts to Falcosidekick."""

    # Everything the charm touches on the machine hangs off this root, and the sync interval
    # runs on this clock; tests move both.
    filesystem_root = Path("/")
    clock = staticmethod(time.time)
    # Where the charm reads what Falco runs (its /metrics), and how long it waits for it.
    falco_metrics = staticmethod(reload_check.scrape)
    reload_wait_s = reload_check.WAIT_S
    # How long the self-test gives Falco to report a failed delivery after the alert.
    self_test_settle_s = self_test.DELIVERY_SETTLE_S
    self_test_nonce = staticmethod(self_test.new_nonce)
    _config_problem = ""
    _leaving = False
    # Set by a reconcile that left the machine converged: idle hooks may then follow.
    _converged = False
    _sync_due: float | None = None
    _stored = ops.StoredState()  # type: ignore[no-untyped-call]  # ops leaves it untyped

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._layout = Layout(self.filesystem_root)
        # First thing in every hook: a deploy key on disk is one a killed hook left behind.
        git_sync.remove_key(self._layout)
        self.idle = idle_hooks.IdleHooks(self, _IDLE_RELATION_CHANGED, self.clock)
        self.status_memo = idle_hooks.StatusMemo(self)
        # The metrics port of the last converged reconcile (idle hooks check who holds it).
        self._stored.set_default(metrics_port=0)
        if self.idle.holds(self._machine_facts):
            return  # nothing can have changed since the last reconcile: see idle_hooks
        self.http_endpoint = HttpEndpointRequirer(self, alert_destination.RELATION)
        self.cos_agent = CosAgentProvider(self, self._layout)
        self.client_certificate = ClientCertificate(self)
        on = self.on
        for event in (on.install, on.upgrade_charm):
            framework.observe(event, self._on_payload_may_change)
        framework.observe(on.config_changed, self._on_config_changed)
        framework.observe(on.secret_changed, self._on_secret_changed)
        framework.observe(on.refresh_rules_action, self._on_refresh_rules_action)
        framework.observe(on.self_test_action, self._on_self_test_action)
        for event in (
            on.start,
            on.update_status,
            on[alert_destination.RELATION].relation_joined,
            on[alert_destination.RELATION].relation_changed,
            on[alert_destination.RELATION].relation_broken,
            on["cos-agent"].relation_joined,
            on["cos-agent"].relation_changed,
            on["certificates"].relation_broken,
        ):
            framework.observe(event, self._on_input_changed)
        if self.client_certificate.library is not None:
            available = self.client_certificate.library.on.certificate_available
            framework.observe(available, self._on_input_changed)
        framework.observe(on.stop, self._on_stop)
        framework.observe(on.remove, self._on_remove)
        framework.observe(on.collect_unit_status, self._on_collect_unit_status)

    def _on_payload_may_change(self, _: ops.EventBase) -> None:
        # Only these can bring a new tarball; they are also when the charm's own code changes.
        self.status_memo.forget()
        self._reconcile(refresh_payload=True, operator_action=True)

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        self._reconcile(operator_action=True)

    def _on_input_changed(self, _: ops.EventBase) -> None:
        self._reconcile()

    def _on_secret_changed(self, _: ops.SecretChangedEvent) -> None:
        # The only secrets the charm reads are the repository's credentials.
        self._reconcile(sync_now=True)

    def _on_refresh_rules_action(self, event: ops.ActionEvent) -> None:
        if not self._ownership.mine:
            event.fail(f"this unit does not run Falco: {self._ownership.owner} does")
            return
        report = self._reconcile(sync_now=True)
        if report is None:
            why = [status.message for status in self._observed_status()]
            event.fail(f"rules not applied: {(why or ['see juju status'])[0]}")
            return
        event.set_results({**report.action_results(), **payload.results(self._layout)})
        if report.problem:
            event.fail(report.problem)

    def _on_self_test_action(self, event: ops.ActionEvent) -> None:
        # Reads and probes only: nothing is reconciled, restarted or reloaded.
        if not self._ownership.mine:
            event.fail(
                f"this unit does not run Falco: run the self-test on {self._ownership.owner}"
            )
            return
        request = self_test.Request(
            unit=self._topology.unit,
            falco_running=self._unit_probe.facts().running,
            read_journal=journal.read_since,
            timeout_s=float(event.params.get("timeout", self_test.DEFAULT_TIMEOUT_S)),
            settle_s=self.self_test_settle_s,
            nonce=self.self_test_nonce(),
        )
        outcome = self_test.run(self._layout, request)
        event.set_results(outcome.results())
        if outcome.failure:
            event.fail(outcome.failure)

    def _on_stop(self, _: ops.StopEvent) -> None:
        # Stop comes before remove: Falco stays for the falco units that stay (ownership).
        self._leaving = True
        if not ownership.others_alive(self._layout, self.unit.name):
            service.stop_and_forget(self._layout)

    def _on_remove(self, _: ops.RemoveEvent) -> None:
        self._leaving = True
        if ownership.leave(self._layout, self.unit.name):
            service.stop_and_forget(self._layout)
            kmod.remove(self._layout)
            service.purge(self._layout)

    def _reconcile(
        self, refresh_payload: bool = False, operator_action: bool = False, sync_now: bool = False
    ) -> custom_rules.Report | None:
        """Converge the machine to what config, payload, relations and rules ask for.

        Every early return leaves what runs untouched; collect-status explains why. Returns
        what the custom rules came to, or None if it stopped before applying them.
        """
        self.idle.begin()
        if not self._ownership.mine:
            # Another falco unit runs this machine's Falco: nothing here is ours to change,
            # and its metrics are scraped through the owner (else twice, under two units).
            self.cos_agent.withdraw()
            self._converged = True
            return None
        config, layout = self._config, self._layout
        if config is None:
            self._converged = True  # blocked until the options change
            return None
        ownership.record_options(layout, self._ownership, self._options)
        # Published whether Falco runs or not: a failing scrape is what raises FalcoDown.
        self.cos_agent.publish(config.metrics_port, self._topology, rebuild=refresh_payload)
        alert_log.ensure_rotation(layout, config.alert_log)
        current, new = payload.select(
            layout, refresh_payload, self._payload_source, self._progress
        )
        if current is None:
            return None
        if new:
            self.unit.set_workload_version(current.falco_version)
            logger.info("Falco %s from payload sha256 %s", current.falco_version, current.sha256)
        driver.note_start_failure(layout, config.driver, self._why_down)
        engine_kind = driver.ready_engine(
            layout, config.driver, current, operator_action, self._progress
        )
        if engine_kind is None:
            return None
        synced = repo_secrets.sync_if_due(
            layout,
            config.repo_settings,
            self.model,
            self.app.name,
            self.clock(),
            sync_now,
            self._progress,
        )
        rules = custom_rules.Sources(config.custom_rules, synced)
        destination = alert_destination.choose(self.http_endpoint.read(), layout)
        client = self.client_certificate.material(layout)
        inputs = service.Inputs(config, current, engine_kind, self._topology, destination, client)
        runtime = service.Runtime(
            self._unit_probe,
            self.clock(),
            operator_action or sync_now,
            self.falco_metrics,
            self.reload_wait_s,
            self._progress,
        )
        # New charm code (install, upgrade-charm) may render differently: no shortcut then.
        outcome, report = service.apply(
            layout, inputs, rules, runtime, trust_steady=not refresh_payload
        )
        if outcome.problem is not None:
            logger.error("Falco left as it was: %s", outcome.problem)
            return None
        if outcome.action is not service.Action.NONE:
            logger.info("Falco %s applied (%s)", outcome.action.value, current.falco_version)
        for stale in payload.prune(layout, keep=current):
            logger.info("removed the replaced payload %s", stale)
        # Converged when this reconcile found nothing to do and Falco runs: after a change
        # the next hook confirms it (a start is forgotten once Falco is seen running), and a
        # Falco that is down is started again (start_backoff) by the hooks that follow.
        self._converged = (
            outcome.action is service.Action.NONE and self._unit_probe.facts().running
        )
        self._sync_due = git_sync.next_due(synced, config.repo_settings)
        return report

    @functools.cached_property
    def _unit_probe(self) -> systemd_facts.UnitProbe:
        """The Falco service's state in systemd, read at most once per hook unless acted on."""
        return systemd_facts.UnitProbe()

    @functools.cached_property
    def _ownership(self) -> ownership.Ownership:
        """Which falco unit runs Falco on this machine, claimed by this one if none does."""
        return ownership.resolve(self._layout, self.unit.name)

    @property
    def _options(self) -> str | None:
        """The digest of the valid options; None when they are invalid."""
        config = self._config
        return ownership.options_digest(config.model_dump_json()) if config else None

    def _progress(self, step: str) -> None:
        """Say what long step runs now (progress.py): a status only while it runs."""
        logger.info("%s", step)
        self.status_memo.show(ops.MaintenanceStatus(status_line(step)))

    @functools.cached_property
    def _journal(self) -> journal.WhyDown:
        """Why Falco is down, read from its journal only when systemd reports it down."""
        return journal.WhyDown(self._unit_probe)

    def _why_down(self) -> journal.Diagnosis | None:
        return self._journal.diagnosis()

    @functools.cached_property
    def _topology(self) -> falco_config.Topology:
        """Where this unit runs in Juju: on every alert, rule and dashboard it sends."""
        model, app = self.model, self.app
        return falco_config.Topology(
            model.name, model.uuid, app.name, self.unit.name, self.meta.name
        )

    @functools.cached_property
    def _config(self) -> FalcoConfig | None:
        """The validated options; None when invalid, with the reason in _config_problem."""
        from charm_config import InvalidConfigError, load_charm_config
        from config import FalcoConfig

        try:
            return load_charm_config(self, FalcoConfig)
        except InvalidConfigError as exc:
            self._config_problem = str(exc)
            return None

    def _payload_source(self) -> payload.Offer | None:
        """Return the attached ``falco`` resource if there is one, else the bundled tarball."""
        try:
            attached: Path | None = self.model.resources.fetch(payload.RESOURCE)
        except ops.ModelError:
            attached = None
        return payload.source(attached, self.charm_dir / BUNDLED_PAYLOAD)

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        if self._leaving:
            return
        self.status_memo.settle(event, [*self._observed_status(), ops.ActiveStatus()])
        if self._converged:
            config = self._config
            self._stored.metrics_port = config.metrics_port if config else 0
            self.idle.converged(self._machine_facts(), until=self._sync_due)

    def _machine_facts(self) -> str:
        """Return the digest of what the status and the next reconcile read from the machine.

        Who runs Falco here and with which options; for the unit that runs it, the stat of
        every file it owns (idle_facts), what systemd says of its unit, who else holds the
        metrics port, whether another Falco runs (idle_hooks).
        """
        layout, mine = self._layout, self._ownership
        facts: list[object] = [mine.owner, records.read(layout.owner_record)]
        if mine.mine:
            unit = self._unit_probe.facts()
            port = int(self._stored.metrics_port)
            facts += [
                idle_facts.tree_fingerprint(layout),
                dataclasses.asdict(unit),
                coexistence.port_problem(layout, port, unit.main_pid) if port else None,
                coexistence.other_falco_notice(layout, unit.main_pid),
            ]
        return idle_hooks.digest(facts)

    def _observed_status(self) -> list[ops.StatusBase]:
        """Return what is wrong or worth knowing, from facts observed on the machine."""
        if not self._ownership.mine:
            differ = ownership.options_differ(self._layout, self._options)
            return [ops.StatusBase.from_name(*ownership.status(self._ownership, differ))]
        config = self._config
        if config is None:
            return [ops.BlockedStatus(status_line(self._config_problem))]
        service_state = health.ServiceState(self._unit_probe.facts(), self._why_down())
        options = health.Options(config.driver, config.metrics_port)
        reading = self.http_endpoint.read()
        found = health.findings(self._layout, options, reading, service_state)
        related = self.client_certificate.relation is not None
        if client := client_tls.concern(reading, related, self._layout):
            found.append(client)
        return [ops.StatusBase.from_name(name, status_line(message)) for name, message in found]


def main() -> None:
    """Run the hook Juju dispatched (the idle_hooks way: see its ``main``)."""
    idle_hooks.main(FalcoCharm)


if __name__ == "__main__":  # pragma: no cover
    main()
