#!/usr/bin/env python3
"""Juju charm for Falcosidekick: receives Falco alerts over HTTPS and forwards them."""

from __future__ import annotations

import logging

import ops
from charm_config import InvalidConfigError, load_charm_config
from config import CharmConfig
from falcosidekick_http_endpoint import HttpEndpointProvider

logger = logging.getLogger(__name__)

CONTAINER = "falcosidekick"


class FalcosidekickCharm(ops.CharmBase):
    """Runs Falcosidekick and tells Falco where to send alerts."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.http_endpoint = HttpEndpointProvider(self)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        try:
            load_charm_config(self, CharmConfig)
        except InvalidConfigError as exc:
            event.add_status(ops.BlockedStatus(str(exc)))
        if not (self.model.get_relation("certificates") or self.model.get_relation("ingress")):
            event.add_status(
                ops.BlockedStatus("no TLS: integrate with 'certificates' or 'ingress'")
            )
        if not self.unit.get_container(CONTAINER).can_connect():
            event.add_status(
                ops.WaitingStatus("waiting for Pebble in the falcosidekick container")
            )
        else:
            # Nothing runs in the container yet, so there is no healthy state to report.
            event.add_status(ops.BlockedStatus("Falcosidekick is not managed by this revision"))


if __name__ == "__main__":  # pragma: no cover
    ops.main(FalcosidekickCharm)
