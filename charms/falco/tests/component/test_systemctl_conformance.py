"""The fake systemctl held to a real systemd: the same commands must get the same answers.

The unit and fault tests drive the charm against ``fake_tools``' systemctl. Each scenario
here runs one sequence of steps twice, on a FakeMachine and under Debian 12's systemd in the
container (``real_systemd``), and compares the transcripts: exit codes, stdout and stderr,
with only process and job ids normalised. A step is a systemctl command line, a change to a
unit file, or "settle": the real test waits until systemd has put the unit in a state, the
fake (which has no clock) lets that time pass at once. Unit files whose ExecStart exits 1
are the fake's ``fail_start`` units. A "journal" step compares what ``journalctl -u <unit> -n
50 -o cat --no-pager`` prints: systemd's own lines about the unit (the units print nothing).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Protocol

import pytest
from local_net import wait_for
from machine import FakeMachine
from real_systemd import Container

UNIT_DIR = Path("/etc/systemd/system")
SLEEPER = "ExecStart=/bin/sleep infinity\n"
FAILS = "ExecStart=/bin/sh -c 'exit 1'\n"
RELOAD = "ExecReload=/bin/kill -HUP $MAINPID\n"
INSTALL = "[Install]\nWantedBy=multi-user.target\n"
# Unit files by the word scenarios call them by. "missing" has none.
UNIT_FILES = {
    "good": f"[Service]\nType=simple\n{SLEEPER}{RELOAD}{INSTALL}",
    "static": f"[Service]\n{SLEEPER}",
    # Exits 1; restarted after an hour, so it stays waiting for its restart timer.
    "crash": (
        "[Unit]\nStartLimitIntervalSec=600\nStartLimitBurst=3\n"
        f"[Service]\nType=simple\n{FAILS}{RELOAD}Restart=on-failure\nRestartSec=1h\n{INSTALL}"
    ),
    # Exits 1, not restarted, no ExecReload.
    "once": f"[Service]\nType=simple\n{FAILS}{INSTALL}",
    # Exits 1 and is restarted at once until the start limit stops it, like the charm's unit
    # (StartLimitBurst=5 in 10 minutes, RestartSec=15s) only faster.
    "limit": (
        "[Unit]\nStartLimitIntervalSec=600\nStartLimitBurst=3\n"
        f"[Service]\nType=simple\n{FAILS}Restart=on-failure\nRestartSec=100ms\n"
    ),
}
FAILING = ("crash", "once", "limit")
ALL_PROPERTIES = (
    "MainPID,Result,NRestarts,ExecMainCode,ExecMainStatus,Id,LoadState,ActiveState,SubState,"
    "UnitFileState,Job,NeedDaemonReload"
)
# What the charm reads each hook (systemd_facts.PROPERTIES), asked in another order.
CHARM_PROPERTIES = "ActiveState,SubState,Result,NRestarts,ExecMainStatus,MainPID"
# How the charm reads the end of the unit's journal (journal.py), the unit name last.
JOURNAL_ARGS = ("-n", "50", "-o", "cat", "--no-pager", "-u")
# How the self-test reads it from a second on (journal.read_since), the unit name last.
JOURNAL_SINCE_ARGS = ("-n", "10000", "-o", "cat", "--no-pager", "--since=@{since}", "-u")

SCENARIOS: dict[str, list[str]] = {
    "good-unit": [
        "write good",
        "is-active good",
        # Loaded on demand: no daemon-reload is needed for a unit systemd never loaded.
        "start good",
        "is-active good",
        "is-failed good",
        f"show -p {ALL_PROPERTIES} good",
        "reload good",
        "restart good",
        "is-active --quiet good",
        "show -p ActiveState --value good",
        "stop good",
        "is-active good",
        "show -p MainPID,Result,ActiveState,SubState good",
        "reload good",
        "stop good",
        # No journal step here: ExecReload's SIGHUP ends `sleep`, and systemd logs that and
        # "Reloaded" in either order.
    ],
    "exits-1-and-waits-to-restart": [
        "write crash",
        "enable crash",
        "start crash",
        "settle crash auto-restart",
        "is-active crash",
        "is-failed crash",
        f"show -p {ALL_PROPERTIES} crash",
        "reload crash",
        # A start job waits for the restart timer; restart does not.
        "--no-block start crash",
        "show -p ActiveState,SubState,Job crash",
        "restart crash",
        "settle crash auto-restart",
        "show -p Result,NRestarts,ActiveState,SubState,Job crash",
        "stop crash",
        "show -p Result,NRestarts,ActiveState,SubState crash",
        "is-failed crash",
        "reset-failed crash",
        "show -p Result,ActiveState,SubState crash",
        f"show -p {CHARM_PROPERTIES} crash",
        "journal crash",
    ],
    "exits-1-without-restart": [
        "write once",
        "start once",
        "settle once failed",
        "is-active once",
        "is-failed once",
        "show -p MainPID,Result,NRestarts,ActiveState,SubState once",
        "stop once",
        "show -p Result,ActiveState,SubState once",
        "reload once",
        "start once",
        "settle once failed",
        "reset-failed once",
        "show -p Result,ActiveState,SubState once",
        "reset-failed once",
        "journal once",
    ],
    "start-limit": [
        "write limit",
        "start limit",
        "settle limit failed",
        "show -p Result,NRestarts,ActiveState,SubState limit",
        "is-failed limit",
        "start limit",
        "restart limit",
        "show -p Result,NRestarts,ActiveState,SubState limit",
        "reset-failed limit",
        "show -p Result,NRestarts,ActiveState,SubState limit",
        "start limit",
        "settle limit failed",
        "show -p Result,NRestarts,ActiveState,SubState limit",
        f"show -p {CHARM_PROPERTIES} limit",
        "journal limit",
    ],
    "changed-on-disk": [
        "write good",
        "enable good",
        "start good",
        "edit good",
        "show -p NeedDaemonReload good",
        "is-active good",
        "reload good",
        "restart good",
        "stop good",
        "start good",
        "daemon-reload",
        "show -p NeedDaemonReload good",
        "start good",
        "delete good",
        "show -p LoadState,ActiveState,NeedDaemonReload good",
        "stop good",
        "daemon-reload",
        "show -p LoadState,ActiveState,UnitFileState good",
        "start good",
        "disable good",
    ],
    "enable-disable": [
        "write good",
        "write static",
        "is-enabled good",
        "enable good",
        "is-enabled good",
        "enable good",
        "disable good",
        "disable good",
        "is-enabled --quiet good",
        "enable --now good",
        "is-active good",
        "show -p UnitFileState,ActiveState good",
        f"show -p {CHARM_PROPERTIES} good",
        "stop good",
        f"show -p {CHARM_PROPERTIES} good",
        "start good",
        "disable --now good",
        "is-active good",
        "is-enabled static",
        "is-enabled missing",
        "enable missing",
        "disable missing",
        "journal good",
    ],
    # "mark" waits for the next whole second and remembers it; "journal-since" reads the
    # journal from that second on, as the self-test does: only what came after the mark.
    "journal-since": [
        "write good",
        "start good",
        "stop good",
        "mark",
        "start good",
        "stop good",
        "journal-since good",
        "journal good",
    ],
    "unknown-unit": [
        "is-active missing",
        "is-failed missing",
        f"show -p {ALL_PROPERTIES} missing",
        "start missing",
        "restart missing",
        "reload missing",
        "stop missing",
        "reset-failed missing",
        "journal missing",
    ],
}


class Systemd(Protocol):
    def write(self, name: str, text: str) -> None: ...
    def delete(self, name: str) -> None: ...
    def systemctl(self, args: list[str]) -> tuple[int, str, str]: ...
    def settle(self, name: str, sub_state: str) -> None: ...
    def journal(self, name: str, since: int | None = None) -> tuple[int, str, str]: ...


class Fake:
    """fake_tools' systemctl on a FakeMachine."""

    def __init__(self, machine: FakeMachine, failing: list[str]) -> None:
        self.machine = machine
        machine.set_knob("systemd", "fail_start", failing)

    def write(self, name: str, text: str) -> None:
        path = self.machine.root / UNIT_DIR.relative_to("/") / name
        path.write_text(text)

    def delete(self, name: str) -> None:
        (self.machine.root / UNIT_DIR.relative_to("/") / name).unlink()

    def systemctl(self, args: list[str]) -> tuple[int, str, str]:
        result = subprocess.run(
            [self.machine.bin / "systemctl", *args],
            capture_output=True,
            text=True,
            check=False,
            env=os.environ | self.machine.environ(),
        )
        return result.returncode, result.stdout, result.stderr

    def settle(self, name: str, sub_state: str) -> None:
        if sub_state == "failed":
            systemd = self.machine.systemd()
            systemd.give_up(name)
            systemd.save()

    def journal(self, name: str, since: int | None = None) -> tuple[int, str, str]:
        result = subprocess.run(
            [self.machine.bin / "journalctl", *journal_args(since), name],
            capture_output=True,
            text=True,
            check=False,
            env=os.environ | self.machine.environ(),
        )
        return result.returncode, result.stdout, result.stderr


class Real:
    """systemctl in the container."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def write(self, name: str, text: str) -> None:
        self.container.write(UNIT_DIR / name, text)

    def delete(self, name: str) -> None:
        self.container.host_path(UNIT_DIR / name).unlink()

    def systemctl(self, args: list[str]) -> tuple[int, str, str]:
        result = self.container.systemctl(*args)
        return result.returncode, result.stdout, result.stderr

    def settle(self, name: str, sub_state: str) -> None:
        def reached() -> bool | None:
            now = self.container.systemctl("show", "-p", "SubState", "--value", name)
            return True if now.stdout.strip() == sub_state else None

        wait_for(f"{name} to reach {sub_state}", reached)

    def journal(self, name: str, since: int | None = None) -> tuple[int, str, str]:
        self.container.run("journalctl", "--sync")
        result = self.container.run("journalctl", *journal_args(since), name)
        return result.returncode, result.stdout, result.stderr

    def forget(self, names: list[str]) -> None:
        """Leave the container as it was: units stopped, disabled, gone, not failed."""
        for name in names:
            self.container.systemctl("stop", name)
            self.container.systemctl("disable", name)
            self.container.host_path(UNIT_DIR / name).unlink(missing_ok=True)
            link = UNIT_DIR / "multi-user.target.wants" / name
            self.container.host_path(link).unlink(missing_ok=True)
        self.container.systemctl("daemon-reload")
        for name in names:
            self.container.systemctl("reset-failed", name)


def normalised(text: str) -> list[str]:
    """Return the lines of ``text`` with ids that differ from run to run replaced."""
    text = re.sub(r"^MainPID=[1-9]\d*$", "MainPID=<pid>", text, flags=re.MULTILINE)
    text = re.sub(r"^Job=\d+$", "Job=<job>", text, flags=re.MULTILINE)
    return text.splitlines()


def journal_args(since: int | None) -> tuple[str, ...]:
    """Return journalctl's arguments as the charm gives them, the unit name to follow."""
    if since is None:
        return JOURNAL_ARGS
    return tuple(arg.format(since=since) for arg in JOURNAL_SINCE_ARGS)


def next_second() -> int:
    """Wait until the next whole second of the clock; return it."""
    second = int(time.time()) + 1
    time.sleep(max(0.0, second - time.time()) + 0.05)
    return second


def transcript(systemd: Systemd, steps: list[str], names: dict[str, str]) -> list[str]:
    """Run ``steps``; return every command with its exit code and output."""
    lines: list[str] = []
    mark: int | None = None
    for step in steps:
        words = [names.get(word, word) for word in shlex.split(step)]
        if words[0] == "mark":
            mark = next_second()
            lines.append("# mark")
            continue
        if words[0] in ("journal", "journal-since"):
            since = mark if words[0] == "journal-since" else None
            code, out, err = systemd.journal(words[1], since)
            lines.extend([f"$ {words[0]} {step.split()[1]}", f"  exit {code}"])
            lines.extend(f"  out: {line}" for line in out.splitlines())
            lines.extend(f"  err: {line}" for line in err.splitlines())
            continue
        if words[0] in ("write", "edit", "delete", "settle"):
            kind = step.split()[1]
            if words[0] == "write":
                systemd.write(words[1], UNIT_FILES[kind])
            elif words[0] == "edit":
                systemd.write(words[1], UNIT_FILES[kind] + "# edited\n")
            elif words[0] == "delete":
                systemd.delete(words[1])
            else:
                systemd.settle(words[1], words[2])
            lines.append(f"# {step}")
            continue
        code, out, err = systemd.systemctl(words)
        lines.extend([f"$ systemctl {step}", f"  exit {code}"])
        lines.extend(f"  out: {line}" for line in normalised(out))
        lines.extend(f"  err: {line}" for line in normalised(err))
    return lines


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_fake_systemctl_answers_like_systemd(
    scenario: str, container: Container, tmp_path: Path
) -> None:
    """arrange: a scenario. act: run it on the fake and on systemd. assert: same transcript."""
    names = {kind: f"conformance-{scenario}-{kind}.service" for kind in [*UNIT_FILES, "missing"]}
    failing = [names[kind] for kind in FAILING]
    real = Real(container)
    try:
        from_systemd = transcript(real, SCENARIOS[scenario], names)
    finally:
        real.forget(list(names.values()))

    from_fake = transcript(
        Fake(FakeMachine(tmp_path / "fake"), failing), SCENARIOS[scenario], names
    )

    assert from_fake == from_systemd
