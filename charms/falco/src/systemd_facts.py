"""What systemd says about the Falco service, read once per hook. No Ops.

Converging and the status both depend on the unit's state: whether it runs, waits to be
restarted by systemd, or failed, and why. One ``systemctl show`` gives all of it; the charm
reads it once per hook (``UnitProbe``) and again only after it started or stopped Falco
itself, so a healthy hook that changes nothing costs exactly that one call.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from layout import SERVICE_NAME

PROPERTIES = ("ActiveState", "SubState", "Result", "NRestarts", "ExecMainStatus", "MainPID")
SHOW_TIMEOUT_S = 60
UNKNOWN = "unknown"


@dataclass(frozen=True)
class UnitFacts:
    """The service's state as systemd reports it (``systemctl show`` property values)."""

    active_state: str = "inactive"
    sub_state: str = "dead"
    result: str = "success"
    n_restarts: int = 0
    exec_main_status: int = 0
    main_pid: int = 0

    @property
    def running(self) -> bool:
        """Whether Falco runs (a reload in progress still counts)."""
        return self.active_state in ("active", "reloading")

    @property
    def waiting_to_restart(self) -> bool:
        """Whether Falco exited and systemd will start it again by itself (Restart=)."""
        return self.sub_state == "auto-restart"

    @property
    def failed(self) -> bool:
        """Whether systemd gave up on Falco (it exited and no restart is coming)."""
        return self.active_state == "failed"

    @property
    def stopped(self) -> bool:
        """Whether Falco is down and nothing will bring it back but a start."""
        return self.active_state in ("inactive", "failed")

    @property
    def state(self) -> str:
        """A short description of the state for a status: "failed", "not running"."""
        return "failed" if self.failed else "not running"


def _number(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


def parse(text: str) -> UnitFacts:
    """Return the facts in ``systemctl show -p ...`` output (``Key=value`` lines)."""
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return UnitFacts(
        active_state=values.get("ActiveState") or UNKNOWN,
        sub_state=values.get("SubState") or UNKNOWN,
        result=values.get("Result") or "",
        n_restarts=_number(values.get("NRestarts", "")),
        exec_main_status=_number(values.get("ExecMainStatus", "")),
        main_pid=_number(values.get("MainPID", "")),
    )


def read(name: str = SERVICE_NAME) -> UnitFacts:
    """Ask systemd about the unit ``name``; an unknown state when systemctl cannot answer."""
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return UnitFacts(active_state=UNKNOWN, sub_state=UNKNOWN)
    try:
        # Fixed arguments, absolute path; no shell.
        result = subprocess.run(  # noqa: S603
            [systemctl, "show", name, "-p", ",".join(PROPERTIES)],
            capture_output=True,
            text=True,
            timeout=SHOW_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return UnitFacts(active_state=UNKNOWN, sub_state=UNKNOWN)
    if result.returncode != 0:
        return UnitFacts(active_state=UNKNOWN, sub_state=UNKNOWN)
    return parse(result.stdout)


class UnitProbe:
    """The unit's facts for one hook: read on first use, again only after ``forget``."""

    def __init__(self, name: str = SERVICE_NAME) -> None:
        self._name = name
        self._facts: UnitFacts | None = None

    def facts(self) -> UnitFacts:
        """Return the facts, reading them from systemd if this hook has not yet."""
        if self._facts is None:
            self._facts = read(self._name)
        return self._facts

    def forget(self) -> None:
        """Drop what was read: the charm just started or stopped the unit."""
        self._facts = None
