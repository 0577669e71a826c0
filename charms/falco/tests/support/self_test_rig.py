"""Falco's side of the self-test on a FakeMachine: it sees the marker file and alerts.

No Falco runs on the fake machine, so ``FakeDetection`` plays its part while an action runs:
a thread watches the charm's self-test directory and, for each new marker file, writes the
alert the real Falco 0.44.1 writes for the charm's marker rule to the output the live
falco.yaml enables: a line appended to the alert log (``file_output``), or a line in the
unit's journal (``stdout_output``). The alert is ``tests/reference/self-test-alert.json``,
what the real Falco printed for the marker rule through the charm's config
(tests/real/test_marker_rule_through_falco.py keeps it true), with the marker's path and
nonce put in.
``delivery_error`` adds the line Falco logs when its POST fails.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import workloads
import yaml
from fake_tools import log_lines
from layout import SERVICE_NAME, Layout
from machine import FakeMachine, reference_file
from self_test import RULE_NAME

REFERENCE_ALERT = reference_file("self-test-alert.json")
# The marker path in the reference alert: the capture's (test_marker_rule_through_falco.py).
REFERENCE_MARKER = workloads.SELFTEST_MARKER_PATH
REFERENCE_PRIORITY = "Warning"
POLL_S = 0.01


def alert_for(marker: Path, priority: str = REFERENCE_PRIORITY) -> dict[str, Any]:
    """Return the alert the real Falco writes when ``marker`` is read, as a dict.

    ``priority`` is the rule's, as Falco prints it ("Debug").
    """
    text = REFERENCE_ALERT.read_text().strip()
    text = text.replace(REFERENCE_MARKER, str(marker))
    text = text.replace(Path(REFERENCE_MARKER).name, marker.name)
    text = text.replace(f" {REFERENCE_PRIORITY} {RULE_NAME}", f" {priority} {RULE_NAME}")
    alert: dict[str, Any] = json.loads(text)
    alert["priority"] = priority
    return alert


def rule_priority(config: dict[str, Any]) -> str:
    """Return the priority of the marker rule the falco.yaml ``config`` loads, as Falco says it."""
    rule = yaml.safe_load(Path(config["rules_files"][1]).read_text())[0]
    assert rule["rule"] == RULE_NAME
    return str(rule["priority"]).capitalize()


class FakeDetection:
    """A thread writing the marker rule's alert for every marker file that appears."""

    def __init__(
        self, machine: FakeMachine, detect: bool = True, delivery_error: str | None = None
    ) -> None:
        self.machine = machine
        self.layout = Layout(machine.root)
        self.detect = detect
        self.delivery_error = delivery_error
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> FakeDetection:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.is_set():
            directory = self.layout.self_test_dir
            for marker in sorted(directory.iterdir()) if directory.is_dir() else []:
                if marker.name not in self.seen:
                    self.seen.append(marker.name)
                    if self.detect:
                        self._alert(marker)
            time.sleep(POLL_S)

    def _alert(self, marker: Path) -> None:
        config = yaml.safe_load(self.layout.config_file.read_text())
        alert = alert_for(marker, rule_priority(config))
        line = json.dumps(alert, separators=(",", ":"))
        journal: list[str] = []
        if config["file_output"]["enabled"]:
            log_file = Path(config["file_output"]["filename"])
            # systemd creates the directory when it starts the unit (LogsDirectory=).
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with log_file.open("a") as log:
                log.write(line + "\n")
        elif config["stdout_output"]["enabled"]:
            journal.append(line)
        if self.delivery_error and config["http_output"]["enabled"]:
            journal.append(self.delivery_error)
        if journal:
            self._log(journal)

    def _log(self, lines: list[str]) -> None:
        """Append to the fake journal, replacing its state file whole (tools read it)."""
        path = self.machine.state / "systemd.json"
        state = json.loads(path.read_text()) if path.exists() else {}
        log_lines(state, f"{SERVICE_NAME}.service", lines)
        scratch = path.with_name(".systemd.json.tmp")
        scratch.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(scratch, path)
