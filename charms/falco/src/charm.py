#!/usr/bin/env python3
"""Juju charm for Falco, a machine subordinate that runs runtime security detection.

The charm only wires Juju to the workload modules: every event runs one reconcile that reads
all inputs and converges the machine, and the status is derived from what is observed on the
machine. See README.md for which option causes a hot reload and which a restart.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import alert_destination
import alert_log
import custom_rules
import falco_config
import git_sync
import kernel
import kmod
import ops
import payload
import repo_secrets
import service
from cos_agent import CosAgentProvider
from falcosidekick_http_endpoint import HttpEndpointRequirer
from layout import SERVICE_NAME, Layout

if TYPE_CHECKING:  # imported where used: pydantic takes longer to import than ops
    from config import FalcoConfig

logger = logging.getLogger(__name__)

RESOURCE = "falco"
BUNDLED_PAYLOAD = Path("payload") / "falco.tar.gz"


class FalcoCharm(ops.CharmBase):
    """Runs Falco on the principal's machine and sends its alerts to Falcosidekick."""

    # Everything the charm touches on the machine hangs off this root, and the sync interval
    # runs on this clock; tests move both.
    filesystem_root = Path("/")
    clock = staticmethod(time.time)
    _config_problem = ""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._layout = Layout(self.filesystem_root)
        self.http_endpoint = HttpEndpointRequirer(self, alert_destination.RELATION)
        self.cos_agent = CosAgentProvider(self, self._layout)
        on = self.on
        for event in (on.install, on.upgrade_charm):
            framework.observe(event, self._on_payload_may_change)
        framework.observe(on.config_changed, self._on_config_changed)
        framework.observe(on.secret_changed, self._on_secret_changed)
        framework.observe(on.refresh_rules_action, self._on_refresh_rules_action)
        for event in (
            on.start,
            on.update_status,
            on[alert_destination.RELATION].relation_joined,
            on[alert_destination.RELATION].relation_changed,
            on[alert_destination.RELATION].relation_broken,
            on["cos-agent"].relation_joined,
            on["cos-agent"].relation_changed,
        ):
            framework.observe(event, self._on_input_changed)
        framework.observe(on.stop, self._on_stop)
        framework.observe(on.remove, self._on_remove)
        framework.observe(on.collect_unit_status, self._on_collect_unit_status)

    def _on_payload_may_change(self, _: ops.EventBase) -> None:
        # Only install and upgrade-charm (which `juju attach-resource` also triggers) can
        # bring a new tarball; hashing tens of MB on every hook would be waste. They are
        # also when the charm's own code changes.
        self._reconcile(refresh_payload=True, operator_action=True)

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        self._reconcile(operator_action=True)

    def _on_input_changed(self, _: ops.EventBase) -> None:
        self._reconcile()

    def _on_secret_changed(self, _: ops.SecretChangedEvent) -> None:
        # The only secrets the charm reads are the repository's credentials.
        self._reconcile(sync_now=True)

    def _on_refresh_rules_action(self, event: ops.ActionEvent) -> None:
        report = self._reconcile(sync_now=True)
        if report is None:
            why = [status.message for status in self._observed_status()]
            event.fail(f"rules not applied: {(why or ['see juju status'])[0]}")
            return
        event.set_results(
            {
                "commit": report.commit or "none",
                "files": "\n".join(report.files) or "none (default rules only)",
                "validation": report.problem or "ok",
            }
        )
        if report.problem:
            event.fail(report.problem)

    def _on_stop(self, _: ops.StopEvent) -> None:
        service.stop_and_forget(self._layout)

    def _on_remove(self, _: ops.RemoveEvent) -> None:
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
        config = self._config
        if config is None:
            return None
        # Published whether Falco runs or not: a failing scrape is what raises FalcoDown.
        self.cos_agent.publish(config.metrics_port, self._topology, rebuild=refresh_payload)
        alert_log.ensure_rotation(self._layout, config.alert_log)
        current = self._ensure_payload(refresh_payload)
        if current is None:
            return None
        choice = kernel.choose(config.driver, self._layout, current.driver_sources is not None)
        if choice.engine_kind is None:
            return None
        if choice.engine_kind == kernel.KMOD and current.driver_sources is not None:
            release = kernel.kernel_release(self._layout)
            try:
                kmod.ensure_module(self._layout, current.driver_sources, release, operator_action)
            except kmod.KmodError as exc:
                logger.error("cannot build the Falco kernel module: %s", exc)
                return None
        rules = custom_rules.plan(self._layout, config.custom_rules, self._sync(config, sync_now))
        destination = alert_destination.choose(self.http_endpoint.read(), self._layout)
        inputs = service.Inputs(config, current, choice.engine_kind, self._topology, destination)
        outcome, report = service.apply(self._layout, inputs, rules)
        if outcome.problem is not None:
            logger.error("Falco left as it was: %s", outcome.problem)
            return None
        if outcome.action is not service.Action.NONE:
            logger.info("Falco %s applied (%s)", outcome.action.value, current.falco_version)
        for stale in payload.prune(self._layout, keep=current):
            logger.info("removed the replaced payload %s", stale)
        return report

    def _sync(self, config: FalcoConfig, now: bool) -> git_sync.SyncRecord | None:
        """Fetch the custom config repository if due; return its sync state (None: no repo)."""
        return git_sync.ensure(
            self._layout,
            config.repo_settings,
            functools.partial(repo_secrets.credentials, self.model, self.app.name),
            self.clock(),
            force=now,
        )

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

    def _ensure_payload(self, refresh: bool) -> payload.Payload | None:
        """Return the payload to run, unpacking a new candidate when one may have arrived."""
        current = payload.installed(self._layout)
        if current is not None and not refresh:
            return current
        current, new = payload.ensure(self._layout, self._payload_source())
        if new and current is not None:
            self.unit.set_workload_version(current.falco_version)
        return current

    def _payload_source(self) -> Path | None:
        """Return the attached ``falco`` resource if there is one, else the bundled tarball."""
        try:
            attached: Path | None = self.model.resources.fetch(RESOURCE)
        except ops.ModelError:
            attached = None
        return payload.source(attached, self.charm_dir / BUNDLED_PAYLOAD)

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        for status in self._observed_status():
            event.add_status(status)
        event.add_status(ops.ActiveStatus())

    def _observed_status(self) -> list[ops.StatusBase]:
        """Return what is wrong or worth knowing, from facts observed on the machine."""
        config = self._config
        if config is None:
            return [ops.BlockedStatus(self._config_problem)]
        found: list[ops.StatusBase] = []
        refused = payload.rejection(self._layout)
        if refused is not None:
            found.append(ops.BlockedStatus(f"'{RESOURCE}' resource refused: {refused.reason}"))
        current = payload.installed(self._layout)
        if current is None:
            return [
                *found,
                ops.BlockedStatus("no usable Falco payload: attach the 'falco' resource"),
            ]
        choice = kernel.choose(config.driver, self._layout, current.driver_sources is not None)
        problems = [
            choice.reason if choice.engine_kind is None else None,
            kmod.failure(self._layout) if choice.engine_kind == kernel.KMOD else None,
            service.config_rejection(self._layout),
            custom_rules.read_report(self._layout).problem,
        ]
        found.extend(ops.BlockedStatus(problem) for problem in problems if problem)
        if not service.is_running():
            state = "failed" if service.has_failed() else "not running"
            found.append(
                ops.BlockedStatus(f"Falco is {state}: see `journalctl -u {SERVICE_NAME}`")
            )
        reading = self.http_endpoint.read()
        concern = alert_destination.concern(alert_destination.choose(reading, self._layout))
        if concern is not None:
            found.append(ops.StatusBase.from_name(*concern))
        return found


if __name__ == "__main__":  # pragma: no cover
    ops.main(FalcoCharm)
