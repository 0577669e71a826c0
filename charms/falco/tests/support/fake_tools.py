#!/usr/bin/env python3
"""Hand-written stand-ins for the machine tools the falco charm drives.

One script, installed under several names (``systemctl``, ``journalctl``, ``dkms``,
``modprobe``, ``dpkg``, ``apt-get``, ``apt-cache``), dispatching on the name it was called by.
Each call is appended to ``$FAKE_STATE_DIR/calls.jsonl``; the tools keep their state in
``$FAKE_STATE_DIR`` as JSON, so a test can read what the machine would look like and set
knobs (a failing start, a failing DKMS build, a package apt cannot find).

It follows the real tools' contracts the charm depends on. ``systemctl`` models what systemd
252 does with a ``Type=simple`` service, and tests/component/test_systemctl_conformance.py
holds it to a real one: a start succeeds once the process runs, and a process that then exits
1 leaves the unit waiting to restart (``activating``/``auto-restart``) or ``failed``, as its
``Restart=`` says, until the start limit; ``show -p`` prints ``Key=value`` lines in systemd's
order; units load on demand, are garbage-collected when inactive and not wanted, and warn when
their file changed on disk without ``daemon-reload``; ``enable``/``disable`` reload systemd.
What systemd logs about a unit (started, exited, scheduled restart, start limit, stopped) goes
to a journal with the lines a failing process printed (``fail_output``), and ``journalctl -u
<unit> -n <N> -o cat`` prints its end as the real one does.
``dpkg -l`` prints its five header lines; DKMS builds from ``/usr/src/<m>-<v>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

STATE_DIR = Path(os.environ.get("FAKE_STATE_DIR", "/nonexistent"))
ROOT = Path(os.environ.get("FAKE_ROOT", "/nonexistent"))


def _load(name: str, directory: Path = STATE_DIR) -> dict[str, Any]:
    path = directory / f"{name}.json"
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {}


def _save(name: str, data: dict[str, Any], directory: Path = STATE_DIR) -> None:
    (directory / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True))


def _record(tool: str, argv: list[str]) -> None:
    with (STATE_DIR / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps({"tool": tool, "argv": argv}) + "\n")


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


# ------------------------------------------------------------------------------ Falco's files
def falco_files(config: Path) -> dict[str, Any] | None:
    """Return what a Falco started on ``config`` reads, as its /metrics would say.

    Its port, then (base name, sha256 of the bytes) of the config file and of every rules
    file it loads: ``rules_files`` in order, a folder's .yaml and .yml files by name, missing
    paths skipped. tests/real/test_hot_reload.py holds this to the real Falco's /metrics.
    """
    import yaml  # the test interpreter's; only units that run a Falco need it

    if not config.is_file():
        return None
    data = yaml.safe_load(config.read_text()) or {}
    loaded = []
    for entry in data.get("rules_files") or []:
        rules = Path(entry)
        if rules.is_dir():
            loaded += sorted(p for p in rules.iterdir() if p.suffix in (".yaml", ".yml"))
        elif rules.is_file():
            loaded.append(rules)
    return {
        "port": (data.get("webserver") or {}).get("listen_port"),
        "config": [[config.name, _digest(config)]],
        "rules": sorted([file.name, _digest(file)] for file in loaded),
    }


# ------------------------------------------------------------------------------ systemctl
# Held to Debian 12's systemd 252 by tests/component/test_systemctl_conformance.py, which runs
# the same command sequences here and under a real systemd and compares what both print.
WANTS = "multi-user.target.wants"
# The `show` properties modelled, in the order systemctl prints them whatever order was asked.
SHOW_ORDER = (
    "MainPID",
    "Result",
    "NRestarts",
    "ExecMainCode",
    "ExecMainStatus",
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "Job",
    "NeedDaemonReload",
)
# What systemctl says when a start job fails, by the unit's Result.
JOB_FAILURES = {
    "exit-code": "the control process exited with error code",
    "start-limit-hit": "the start of the service was attempted too frequently",
}
STALE_WARNING = (
    "Warning: The unit file, source configuration file or drop-ins of {name} changed on "
    "disk. Run 'systemctl daemon-reload' to reload units."
)
DEFAULT_START_LIMIT_BURST = 5
FIRST_PID = 4000
# ExecMainCode: how the main process ended (siginfo's si_code): still running or never
# started, exited, killed by a signal.
CLD_NONE, CLD_EXITED, CLD_KILLED = 0, 1, 2
SIGTERM = 15
# The journal keeps this many lines per unit (journalctl -n asks for the last few only).
JOURNAL_LINES = 500


class SystemctlError(Exception):
    """A systemctl command failed: its message (for stderr) and exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _unit_settings(text: str | None) -> dict[str, Any]:
    """Return what the fake takes from a unit file: restart policy, start limit, reload."""
    settings: dict[str, Any] = {
        "restart": "no",
        "burst": DEFAULT_START_LIMIT_BURST,
        "reloadable": False,
        "installable": False,
        "description": "",
        "start_pre": False,
    }
    for line in (text or "").splitlines():
        key, _, value = line.strip().partition("=")
        if key == "Restart":
            settings["restart"] = value
        elif key == "StartLimitBurst":
            settings["burst"] = int(value)
        elif key == "ExecReload":
            settings["reloadable"] = True
        elif key == "Description":
            settings["description"] = value
        elif key == "ExecStartPre":
            settings["start_pre"] = True
        elif key == "ExecStart" and " -c " in value:
            settings["falco_config"] = value.split(" -c ", 1)[1].split()[0]
        elif line.strip() == "[Install]":
            settings["installable"] = True
    return settings


class FakeSystemd:
    """systemd's view of the service units under ``root``, kept as JSON in ``state_dir``.

    A unit is "in memory" once systemd loaded it; it keeps the file digest and settings it
    was loaded with until a daemon-reload, so a file changed on disk is noticed but not used.
    Any command loads a unit it names on demand (or finds it "not-found"), and a unit that
    is inactive and not wanted by an enabled target is dropped from memory again (systemd's
    garbage collection): then its Result and NRestarts are forgotten too. There is no time:
    a failing start leaves the unit where systemd puts it once the process has exited, and
    ``give_up`` plays the restarts systemd would make until its start limit stops them.
    """

    def __init__(self, state_dir: Path, root: Path) -> None:
        self.state_dir = state_dir
        self.root = root
        self.unit_dir = root / "etc/systemd/system"
        self.state = _load("systemd", state_dir)
        self.state.setdefault("units", {})
        self.state.setdefault("knobs", {})
        self.quiet = False
        self.no_block = False
        self.err: list[str] = []
        self.out: list[str] = []

    @property
    def units(self) -> dict[str, dict[str, Any]]:
        """The units in memory, by name."""
        units: dict[str, dict[str, Any]] = self.state["units"]
        return units

    def save(self) -> None:
        """Forget units systemd would garbage-collect, then store the state."""
        wanted = set(self.state.get("wanted", []))
        for name in list(self.units):
            unit = self.units[name]
            if unit["active"] == "inactive" and not unit.get("job") and name not in wanted:
                del self.units[name]
        _save("systemd", self.state, self.state_dir)

    # --- the unit files on disk ---
    def _file(self, name: str) -> Path:
        return self.unit_dir / name

    def _disk_path(self, path: Path) -> str:
        """Return ``path`` as systemd on the machine would print it."""
        return "/" + str(path.relative_to(self.root))

    def _read(self, name: str) -> str | None:
        path = self._file(name)
        return path.read_text() if path.is_file() else None

    def _enabled(self, name: str) -> bool:
        return (self.unit_dir / WANTS / name).is_symlink()

    # --- units in memory ---
    def unit(self, name: str) -> dict[str, Any]:
        """Return the unit as systemd holds it, loading it from disk if it is not in memory."""
        if name not in self.units:
            self.units[name] = {
                "active": "inactive",
                "sub": "dead",
                "result": "success",
                "restarts": 0,
                "attempts": 0,
                "pid": 0,
                "job": 0,
                "code": CLD_NONE,
                "status": 0,
            }
            self._load_file(name)
        return self.units[name]

    def _load_file(self, name: str) -> None:
        text = self._read(name)
        unit = self.units[name]
        unit["loaded"] = hashlib.sha256(text.encode()).hexdigest() if text is not None else None
        unit.update(_unit_settings(text))

    def _found(self, name: str, verb: str) -> dict[str, Any]:
        unit = self.unit(name)
        if unit["loaded"] is None:
            raise SystemctlError(f"Failed to {verb} {name}: Unit {name} not found.", 5)
        return unit

    def _stale(self, name: str) -> bool:
        unit = self.units.get(name)
        return unit is not None and unit["loaded"] != _digest(self._file(name))

    def _warn_if_stale(self, name: str, starting: bool = False) -> None:
        if self._stale(name):
            self.err.append(STALE_WARNING.format(name=name))
            if starting:
                # What the unit tests check: the charm never starts a unit systemd has not
                # reloaded.
                self.state.setdefault("stale_starts", []).append(name)

    def _fails(self, name: str) -> bool:
        knob = self.state["knobs"].get("fail_start")
        return bool(knob) and (knob is True or name in knob)

    # --- what a Falco the unit runs reads ---
    def _falco_read(self, name: str) -> None:
        """The unit's Falco (re)reads its files: record what it now runs, its watches armed."""
        unit = self.units[name]
        if unit.get("falco_config"):
            unit["falco_files"] = falco_files(Path(unit["falco_config"]))
            self.state["knobs"].pop("falco_watch_lost", None)

    # --- what systemd logs about a unit ---
    def log(self, name: str, *lines: str) -> None:
        """Append ``lines`` to the journal of ``name`` (what ``journalctl -u`` shows)."""
        log_lines(self.state, name, lines)

    def _label(self, name: str) -> str:
        """Return how systemd names the unit in its messages: with its Description if any."""
        description = self.units[name].get("description")
        return f"{name} - {description}" if description else name

    def _log_start(self, name: str) -> None:
        # "Starting" only shows when the unit spends time activating: with ExecStartPre.
        if self.units[name].get("start_pre"):
            self.log(name, f"Starting {self._label(name)}...")
        self.log(name, f"Started {self._label(name)}.")

    def _log_stop(self, name: str, running: bool, restarting: bool = False) -> None:
        label = self._label(name)
        if running and restarting:
            # A restart job logs the old process's end only, then the start.
            self.log(name, f"{name}: Deactivated successfully.")
            return
        if running:
            self.log(name, f"Stopping {label}...", f"{name}: Deactivated successfully.")
        self.log(name, f"Stopped {label}.")

    # --- what happens to a unit ---
    def _attempt(self, name: str, fails: bool, manual: bool) -> None:
        """Start ``name`` once if its start limit allows; Type=simple: the job succeeds.

        There is no clock: a start that runs is taken to last longer than the start limit's
        interval, so only it counts towards the limit, with the failed starts after it. A
        manual start that the limit lets through sets NRestarts back to 0.
        """
        unit = self.units[name]
        if unit["attempts"] >= unit["burst"]:
            unit.update(active="failed", sub="failed", pid=0)
            if unit["result"] == "success":
                unit["result"] = "start-limit-hit"
            self.log(
                name,
                f"{name}: Start request repeated too quickly.",
                f"{name}: Failed with result '{unit['result']}'.",
                f"Failed to start {self._label(name)}.",
            )
            reason = JOB_FAILURES[unit["result"]]
            raise SystemctlError(
                f"Job for {name} failed because {reason}.\n"
                f'See "systemctl status {name}" and "journalctl -xeu {name}" for details.',
                1,
            )
        unit["job"] = 0
        if manual:
            unit["restarts"] = 0
        self._log_start(name)
        if fails:
            unit["attempts"] += 1
            self._exited(name)
            return
        unit["attempts"] = 1
        self.state["next_pid"] = self.state.get("next_pid", FIRST_PID) + 1
        unit.update(
            active="active",
            sub="running",
            result="success",
            pid=self.state["next_pid"],
            code=CLD_NONE,
            status=0,
        )
        self._falco_read(name)

    def _exited(self, name: str) -> None:
        """The main process exited with status 1: restart later, or fail (Restart=)."""
        unit = self.units[name]
        self.log(name, *self.state["knobs"].get("fail_output", []))
        restarting = unit["restart"] in ("on-failure", "always")
        state = ("activating", "auto-restart") if restarting else ("failed", "failed")
        unit.update(
            active=state[0], sub=state[1], result="exit-code", pid=0, code=CLD_EXITED, status=1
        )
        self.log(
            name,
            f"{name}: Main process exited, code=exited, status=1/FAILURE",
            f"{name}: Failed with result 'exit-code'.",
        )

    def _manual_start(self, name: str) -> None:
        self._attempt(name, self._fails(name), manual=True)

    def _automatic_restart(self, name: str, fails: bool) -> None:
        # Counted before the start limit is checked: the refused restart counts too.
        unit = self.units[name]
        unit["restarts"] += 1
        self.log(
            name,
            f"{name}: Scheduled restart job, restart counter is at {unit['restarts']}.",
            f"Stopped {self._label(name)}.",
        )
        self._attempt(name, fails, manual=False)

    def give_up(self, name: str) -> None:
        """Let time pass on a unit that crashes: systemd restarts it until its start limit."""
        unit = self.unit(name)
        if unit["active"] == "active":
            self._exited(name)
        while unit["sub"] == "auto-restart":
            try:
                self._automatic_restart(name, fails=True)
            except SystemctlError:
                break

    def _stop(self, name: str, restarting: bool = False) -> None:
        unit = self.units[name]
        if unit["active"] == "active":
            # SIGTERM ends the main process: a process that does not handle it (the sleep of
            # the conformance units) is killed by it.
            self._log_stop(name, running=True, restarting=restarting)
            unit.update(active="inactive", sub="dead", pid=0, code=CLD_KILLED, status=SIGTERM)
        elif unit["active"] == "activating":
            self._log_stop(name, running=False)
            unit.update(active="inactive", sub="dead", pid=0)
        unit["job"] = 0

    # --- the verbs ---
    def daemon_reload(self) -> None:
        """Reload every unit in memory from disk, and load the enabled ones."""
        self.state["daemon_reloads"] = self.state.get("daemon_reloads", 0) + 1
        wanted = sorted(p.name for p in (self.unit_dir / WANTS).glob("*.service"))
        self.state["wanted"] = wanted
        for name in [*self.units, *wanted]:
            self.unit(name)
            self._load_file(name)

    def start(self, name: str) -> None:
        """Start a unit (nothing if active); Type=simple: succeed once the process runs."""
        unit = self._found(name, "start")
        self._warn_if_stale(name, starting=True)
        if unit["active"] == "active":
            return
        if unit["sub"] == "auto-restart":
            # The start job waits for the restart timer (RestartSec), then rides on it.
            if self.no_block:
                self.state["next_job"] = self.state.get("next_job", 100) + 1
                unit["job"] = self.state["next_job"]
                return
            self.state.setdefault("waited_starts", []).append(name)
            self._automatic_restart(name, self._fails(name))
            return
        self._manual_start(name)

    def restart(self, name: str) -> None:
        """Stop the unit if it runs or waits to restart, then start it at once."""
        self._found(name, "restart")
        self._warn_if_stale(name, starting=True)
        self._stop(name, restarting=True)
        self._manual_start(name)

    def stop(self, name: str) -> None:
        """Stop a unit; a failed one stays failed."""
        if name not in self.units and self._read(name) is None:
            raise SystemctlError(f"Failed to stop {name}: Unit {name} not loaded.", 5)
        self.unit(name)
        self._warn_if_stale(name)
        self._stop(name)

    def reload(self, name: str) -> None:
        """Run ExecReload= of an active unit."""
        unit = self._found(name, "reload")
        self._warn_if_stale(name)
        if not unit["reloadable"]:
            raise SystemctlError(
                f"Failed to reload {name}: Job type reload is not applicable for unit {name}.",
                3,
            )
        if unit["active"] != "active":
            self.log(name, f"{name}: Unit cannot be reloaded because it is inactive.")
            raise SystemctlError(f"{name} is not active, cannot reload.", 1)
        self.state["reloads"] = self.state.get("reloads", 0) + 1
        label = self._label(name)
        self.log(name, f"Reloading {label}...", f"Reloaded {label}.")
        if not self.state["knobs"].get("falco_ignores_sighup"):
            self._falco_read(name)
        # A real process standing in for the unit's (tests/real): ExecReload's SIGHUP.
        process = self.state["knobs"].get("main_process")
        if process:
            os.kill(int(process), signal.SIGHUP)

    def enable(self, name: str) -> None:
        """Link the unit into multi-user.target, then reload systemd as systemctl does."""
        if self._read(name) is None:
            raise SystemctlError(f"Failed to enable unit: Unit file {name} does not exist.", 1)
        link = self.unit_dir / WANTS / name
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(self._file(name))
            self.err.append(
                f"Created symlink {self._disk_path(link)} → {self._disk_path(self._file(name))}."
            )
        self.daemon_reload()

    def disable(self, name: str) -> None:
        """Remove the unit's link (even one left by a deleted file), then reload systemd."""
        link = self.unit_dir / WANTS / name
        if self._read(name) is None and not link.is_symlink():
            raise SystemctlError(f"Failed to disable unit: Unit file {name} does not exist.", 1)
        if link.is_symlink():
            link.unlink()
            self.err.append(f'Removed "{self._disk_path(link)}".')
        self.daemon_reload()

    def reset_failed(self, name: str) -> None:
        """Forget a unit's failure, result, restart count and start limit."""
        unit = self.units.get(name)
        if unit is None:
            raise SystemctlError(
                f"Failed to reset failed state of unit {name}: Unit {name} not loaded.", 1
            )
        if unit["active"] == "failed":
            unit.update(active="inactive", sub="dead")
        unit.update(result="success", restarts=0, attempts=0)

    def is_enabled(self, name: str) -> int:
        """Print the unit file's state, read from disk as systemctl does."""
        text = self._read(name)
        if text is None:
            raise SystemctlError(
                f"Failed to get unit file state for {name}: No such file or directory", 1
            )
        if self._enabled(name):
            state = "enabled"
        else:
            state = "static" if not _unit_settings(text)["installable"] else "disabled"
        self.say(state)
        return 0 if state in ("enabled", "static") else 1

    def properties(self, name: str) -> dict[str, str]:
        """Return every modelled ``show`` property of ``name``."""
        unit = self.unit(name)
        text = self._read(name)
        if text is None:
            file_state = ""
        elif self._enabled(name):
            file_state = "enabled"
        else:
            file_state = "disabled" if _unit_settings(text)["installable"] else "static"
        return {
            "MainPID": str(unit["pid"]),
            "Result": unit["result"],
            "NRestarts": str(unit["restarts"]),
            "ExecMainCode": str(unit["code"]),
            "ExecMainStatus": str(unit["status"]),
            "Id": name,
            "LoadState": "loaded" if unit["loaded"] is not None else "not-found",
            "ActiveState": unit["active"],
            "SubState": unit["sub"],
            "UnitFileState": file_state,
            "Job": str(unit["job"] or ""),
            "NeedDaemonReload": "yes" if self._stale(name) else "no",
        }

    def say(self, line: str) -> None:
        """Print ``line`` on stdout unless --quiet."""
        if not self.quiet:
            self.out.append(line)


def _unit_name(raw: str) -> str:
    return raw if "." in raw else f"{raw}.service"


def _split(argv: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Return the options, the ``-p`` properties and the other words of a command line."""
    options, properties, words = [], [], []
    arguments = iter(argv)
    for arg in arguments:
        if arg in ("-p", "--property"):
            properties.extend(next(arguments, "").split(","))
        elif arg.startswith("--property="):
            properties.extend(arg.removeprefix("--property=").split(","))
        elif arg.startswith("-"):
            options.append(arg)
        else:
            words.append(arg)
    return options, properties, words


def _show(fake: FakeSystemd, options: list[str], asked: list[str], names: list[str]) -> int:
    unknown = [p for p in asked if p not in SHOW_ORDER]
    if not asked or unknown:
        print(f"fake systemctl: show properties not modelled: {unknown or 'all'}", file=sys.stderr)
        return 2
    for index, name in enumerate(names):
        if index:
            fake.out.append("")
        values = fake.properties(name)
        for key in SHOW_ORDER:
            if key in asked:
                fake.out.append(values[key] if "--value" in options else f"{key}={values[key]}")
    return 0


def _state_query(fake: FakeSystemd, verb: str, names: list[str]) -> int:
    wanted = "active" if verb == "is-active" else "failed"
    states = [fake.unit(name)["active"] for name in names]
    for state in states:
        fake.say(state)
    if wanted in states:
        return 0
    return 3 if verb == "is-active" else 1


UNIT_VERBS = {
    "start": FakeSystemd.start,
    "restart": FakeSystemd.restart,
    "stop": FakeSystemd.stop,
    "reload": FakeSystemd.reload,
    "enable": FakeSystemd.enable,
    "disable": FakeSystemd.disable,
    "reset-failed": FakeSystemd.reset_failed,
}


def _run(fake: FakeSystemd, argv: list[str]) -> int:
    options, asked, words = _split(argv)
    verb, names = words[0], [_unit_name(n) for n in words[1:]]
    fake.quiet = "--quiet" in options or "-q" in options
    fake.no_block = "--no-block" in options
    if verb == "daemon-reload":
        fake.daemon_reload()
        return 0
    if verb == "show":
        return _show(fake, options, asked, names)
    if verb in ("is-active", "is-failed"):
        return _state_query(fake, verb, names)
    if verb == "is-enabled":
        return max(fake.is_enabled(name) for name in names)
    if verb not in UNIT_VERBS:
        print(f"fake systemctl: unsupported verb {verb}", file=sys.stderr)
        return 2
    code = 0
    for name in names:
        try:
            UNIT_VERBS[verb](fake, name)
            if "--now" in options and verb in ("enable", "disable"):
                (fake.start if verb == "enable" else fake.stop)(name)
        except SystemctlError as exc:
            fake.err.append(str(exc))
            code = exc.code
    return code


def systemctl(argv: list[str]) -> int:
    fake = FakeSystemd(STATE_DIR, ROOT)
    try:
        code = _run(fake, argv)
    except SystemctlError as exc:
        fake.err.append(str(exc))
        code = exc.code
    fake.save()
    for line in fake.out:
        print(line)
    for line in fake.err:
        print(line, file=sys.stderr)
    return code


# ------------------------------------------------------------------------------ journalctl
def log_lines(state: dict[str, Any], name: str, lines: Any) -> None:
    """Append ``lines`` to the journal of unit ``name`` in the systemd ``state``, timed now."""
    journal = state.setdefault("journal", {}).setdefault(name, [])
    times = state.setdefault("journal_times", {}).setdefault(name, [])
    for line in lines:
        journal.append(line)
        times.append(time.time())
    del journal[:-JOURNAL_LINES]
    del times[:-JOURNAL_LINES]


def _since(argv: list[str]) -> float | None:
    """Return the time of ``--since=@<seconds>``; None without it."""
    for arg in argv:
        if arg.startswith("--since=@"):
            return float(arg.removeprefix("--since=@"))
    return None


def journalctl(argv: list[str]) -> int:
    """Print a unit's journal: ``-u <unit> [--since=@<s>] [-n <lines>] [-o cat] [--no-pager]``.

    Only the message text is kept (``-o cat``); a unit without entries prints nothing.
    ``--since`` keeps the entries logged from that second on; ``-n`` then the last ones.
    """
    unit = _unit_name(_option(argv, "-u"))
    count = int(_option(argv, "-n") or 10)
    if "-u" not in argv or _option(argv, "-o") not in ("", "cat"):
        print(f"fake journalctl: unsupported arguments {argv}", file=sys.stderr)
        return 2
    state = _load("systemd")
    lines = state.get("journal", {}).get(unit, [])
    since = _since(argv)
    if since is not None:
        times = state.get("journal_times", {}).get(unit, [])
        lines = [line for line, at in zip(lines, times, strict=True) if at >= since]
    for line in lines[-count:] if count else []:
        print(line)
    return 0


# ------------------------------------------------------------------------------ dkms, modprobe
def _option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1] if flag in argv else ""


def dkms(argv: list[str]) -> int:
    state = _load("dkms")
    installed: list[str] = state.setdefault("installed", [])
    verb = argv[0]
    module, version, kernel = _option(argv, "-m"), _option(argv, "-v"), _option(argv, "-k")
    key = f"{module}/{version}/{kernel}"
    if verb == "status":
        for entry in installed:
            m, v, k = entry.split("/")
            if m == module and v == version and (not kernel or k == kernel):
                print(f"{m}/{v}, {k}, x86_64: installed")
        return 0
    if verb == "install":
        if not (ROOT / "usr/src" / f"{module}-{version}" / "dkms.conf").is_file():
            print(f"Error! Could not find module source directory for {module}-{version}")
            return 3
        if state.get("knobs", {}).get("fail_build"):
            print("Error! Bad return status for module build on kernel", file=sys.stderr)
            return 10
        if key not in installed:
            installed.append(key)
    elif verb == "remove":
        state["installed"] = [e for e in installed if not e.startswith(f"{module}/{version}/")]
    _save("dkms", state)
    return 0


# ------------------------------------------------------------------------------ apt
def _packages() -> dict[str, Any]:
    state = _load("apt")
    state.setdefault("installed", [])
    state.setdefault("missing", [])
    return state


def dpkg(argv: list[str]) -> int:
    if argv == ["--print-architecture"]:
        print("amd64")
        return 0
    state = _packages()
    name = argv[-1]
    if name not in state["installed"]:
        print(f"dpkg-query: no packages found matching {name}", file=sys.stderr)
        return 1
    print("Desired=Unknown/Install/Remove/Purge/Hold")
    print("| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend")
    print("|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)")
    print("||/ Name           Version      Architecture Description")
    print("+++-==============-============-============-=================================")
    print(f"ii  {name}  1.0-1  amd64  fake package")
    return 0


def apt_cache(argv: list[str]) -> int:
    state = _packages()
    name = argv[-1]
    if name in state["missing"]:
        print(f"E: No packages found for {name}", file=sys.stderr)
        return 100
    print(f"Package: {name}\nArchitecture: amd64\nVersion: 1.0-1\n")
    return 0


def apt_get(argv: list[str]) -> int:
    state = _packages()
    if "install" in argv:
        for spec in argv[argv.index("install") + 1 :]:
            name = spec.split("=")[0]
            if name in state["missing"]:
                print(f"E: Unable to locate package {name}", file=sys.stderr)
                return 100
            if name not in state["installed"]:
                state["installed"].append(name)
    _save("apt", state)
    return 0


TOOLS = {
    "systemctl": systemctl,
    "journalctl": journalctl,
    "dkms": dkms,
    "modprobe": lambda argv: 0,
    "dpkg": dpkg,
    "apt-get": apt_get,
    "apt-cache": apt_cache,
}


def main() -> int:
    tool = Path(sys.argv[0]).name
    _record(tool, sys.argv[1:])
    return TOOLS[tool](sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
