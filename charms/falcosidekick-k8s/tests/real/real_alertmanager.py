"""A real Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1, for the sidekick's output.

It takes what Falcosidekick's Alertmanager output posts to ``/api/v2/alerts`` and refuses
what a real Alertmanager refuses (an invalid label name refuses the whole post), so the test
sees the alerts as Alertmanager holds them (``GET /api/v2/alerts``), not a fake's idea of
them. Its gossip cluster is off (it would bind a fixed port) and it keeps its data in a
directory of its own. Debian 12 has 0.25, which still serves the v1 API that 0.27 removed:
that the charm posts to v2 is checked on what it renders, not by a 404 here.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import real_tools
from local_net import free_port, wait_for

# One receiver that does nothing: Alertmanager needs a route; what it holds is what we read.
CONFIG = "route:\n  receiver: keep\nreceivers:\n  - name: keep\n"


@dataclass
class RealAlertmanager:
    """A running Alertmanager: where the sidekick posts, and what it holds."""

    url: str  # the base URL, as the alertmanager relation gives it

    def alerts(self) -> list[dict[str, Any]]:
        """Return the alerts it holds now, as its v2 API gives them."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=10) as response:  # noqa: S310
            alerts: list[dict[str, Any]] = json.loads(response.read())
        return alerts

    def post(self, alerts: list[dict[str, Any]]) -> tuple[int, str]:
        """POST ``alerts`` to its v2 API as Falcosidekick does; return the status and body."""
        request = urllib.request.Request(  # noqa: S310 - the loopback
            f"{self.url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def wait_for(
        self, found: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 30.0
    ) -> list[dict[str, Any]]:
        """Return the alerts once ``found`` holds for them; fail after ``timeout_s``."""

        def matching() -> list[dict[str, Any]] | None:
            alerts = self.alerts()
            return alerts if found(alerts) else None

        what = "Alertmanager to get what was expected"
        return wait_for(what, matching, timeout_s, 0.05, self.alerts)


@contextmanager
def serving(directory: Path) -> Iterator[RealAlertmanager]:
    """Run Alertmanager on a free loopback port until the block ends."""
    binary = real_tools.require("prometheus-alertmanager", "prometheus-alertmanager")
    (directory / "alertmanager.yml").write_text(CONFIG)
    port = free_port()
    log = (directory / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={directory / 'alertmanager.yml'}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    manager = RealAlertmanager(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{manager.url}/-/ready", timeout=1).close()  # noqa: S310
                break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    output = (directory / "alertmanager.log").read_text()
                    raise AssertionError(f"alertmanager did not start: {output}") from None
                time.sleep(0.05)
        yield manager
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
