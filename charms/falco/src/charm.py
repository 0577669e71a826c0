#!/usr/bin/env python3
"""Juju charm for Falco, a machine subordinate that runs runtime security detection."""

from __future__ import annotations

import logging

import ops
from falcosidekick_http_endpoint import HttpEndpointRequirer

logger = logging.getLogger(__name__)


class FalcoCharm(ops.CharmBase):
    """Runs Falco on the principal's machine and sends its alerts to Falcosidekick."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.http_endpoint = HttpEndpointRequirer(self)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        # This revision carries no Falco payload yet, so nothing watches this machine.
        event.add_status(ops.BlockedStatus("Falco is not installed: no payload in this revision"))


if __name__ == "__main__":  # pragma: no cover
    ops.main(FalcoCharm)
