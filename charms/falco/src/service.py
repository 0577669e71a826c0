"""Converge the Falco service on the machine to the wanted files. No Ops.

Render, compare with what is on disk, act only on a difference: nothing at all when nothing
changed; a hot reload when only what Falco reloads by itself changed; one restart when the
unit, the binary, the engine or the outputs changed.

A hot reload is Falco's own: with ``watch_config_files`` it notices the atomic replacement of
falco.yaml, validates the new file and restarts inside the same process (keeping the old
config if validation fails). Sending SIGHUP as well would reload twice, so the charm never
does. For a restart the service is stopped before the files change, so that the watcher does
not start a reload the restart would cut short.
"""

from __future__ import annotations

import enum
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import falco_cli
import falco_config
import records
import systemd_unit
from alert_destination import Destination
from charmlibs import systemd
from layout import SERVICE_NAME, Layout
from payload import Payload

if TYPE_CHECKING:
    from config import FalcoConfig


class Action(enum.Enum):
    """What converging did to the running Falco."""

    NONE = "none"
    RELOAD = "reload"
    RESTART = "restart"


@dataclass(frozen=True)
class Desired:
    """The files Falco should run with."""

    falco_binary: Path
    config: dict[str, Any]
    config_text: str
    unit_text: str
    http_ca_pem: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What converging did, and why it stopped short if it did."""

    action: Action = Action.NONE
    problem: str | None = None


def desired(
    layout: Layout,
    config: FalcoConfig,
    current: Payload,
    engine_kind: str,
    topology: falco_config.Topology,
    destination: Destination,
) -> Desired:
    """Return the files Falco should run with for these inputs."""
    data = falco_config.build(
        falco_config.ConfigInputs(
            payload=current,
            engine_kind=engine_kind,
            buffer_size_preset=config.buffer_size_preset,
            outputs_queue_capacity=config.outputs_queue_capacity,
            topology=topology,
            http=destination.http,
        )
    )
    unit = systemd_unit.render(
        systemd_unit.UnitInputs(
            falco_binary=current.falco_binary,
            config_file=layout.config_file,
            kill_binary=layout.kill_binary,
            engine_kind=engine_kind,
            modprobe_binary=layout.modprobe_binary,
        )
    )
    return Desired(
        falco_binary=current.falco_binary,
        config=data,
        config_text=falco_config.render(data),
        unit_text=unit,
        http_ca_pem=destination.ca_pem,
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` atomically, so no reader (Falco's watcher) sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(text)
    scratch.chmod(mode)
    os.replace(scratch, path)


def _sync(path: Path, text: str | None) -> None:
    if text is None:
        path.unlink(missing_ok=True)
    else:
        _write(path, text)


def _reset_failed() -> None:
    """Clear systemd's start limit so a fixed config can start a unit that gave up."""
    systemctl = shutil.which("systemctl")
    if systemctl is not None:
        # Fixed arguments, absolute path; no shell.
        subprocess.run(  # noqa: S603
            [systemctl, "reset-failed", SERVICE_NAME], capture_output=True, check=False
        )


def is_running() -> bool:
    """Return whether systemd reports the Falco service active."""
    return systemd.service_running(SERVICE_NAME)


def has_failed() -> bool:
    """Return whether systemd gave up on the Falco service."""
    return systemd.service_failed(SERVICE_NAME)


def _restart(layout: Layout, desired: Desired, unit_changed: bool, running: bool) -> Outcome:
    try:
        if running:
            systemd.service_stop(SERVICE_NAME)
        _sync(layout.http_ca_file, desired.http_ca_pem)
        os.replace(layout.staged_config_file, layout.config_file)
        _sync(layout.unit_file, desired.unit_text)
        if unit_changed:
            systemd.daemon_reload()
            systemd.service_enable(SERVICE_NAME)
        if has_failed():
            _reset_failed()
        systemd.service_start(SERVICE_NAME)
    except systemd.SystemdError as exc:
        return Outcome(Action.RESTART, problem=f"systemd could not start Falco: {exc}")
    return Outcome(Action.RESTART)


def _rejection_path(layout: Layout) -> Path:
    return layout.state_dir / "config-rejected.json"


def config_rejection(layout: Layout) -> str | None:
    """Return why Falco refused the config the charm last wanted, if it did."""
    return records.field(_rejection_path(layout), "reason")


def _validate(layout: Layout, desired: Desired) -> str | None:
    """Check the wanted config with the wanted binary; return the problem, if any.

    Validation happens before anything goes live, so the running Falco keeps its files when
    it fails. A refusal is remembered by content digest: the same config is not staged and
    checked again on every hook, which would write files on hooks that change nothing.
    """
    fingerprint = hashlib.sha256(
        f"{desired.falco_binary}\0{desired.config_text}".encode()
    ).hexdigest()
    recorded = records.read(_rejection_path(layout)) or {}
    if recorded.get("sha256") == fingerprint:
        return str(recorded.get("reason"))
    _write(layout.staged_config_file, desired.config_text)
    check = falco_cli.dry_run(desired.falco_binary, layout.staged_config_file)
    if check.ok:
        _rejection_path(layout).unlink(missing_ok=True)
        return None
    layout.staged_config_file.unlink(missing_ok=True)
    reason = f"falco --dry-run rejected the rendered falco.yaml: {check.message}"
    records.write(_rejection_path(layout), {"sha256": fingerprint, "reason": reason})
    return reason


def converge(layout: Layout, desired: Desired) -> Outcome:
    """Bring the service to ``desired`` with the least disruption; see the module doc."""
    current_config = _read(layout.config_file)
    unit_changed = _read(layout.unit_file) != desired.unit_text
    ca_changed = _read(layout.http_ca_file) != desired.http_ca_pem
    config_changed = current_config != desired.config_text
    if not (unit_changed or ca_changed or config_changed):
        # What runs is what is wanted, so an earlier refusal is no longer current.
        _rejection_path(layout).unlink(missing_ok=True)
        return Outcome()
    problem = _validate(layout, desired)
    if problem is not None:
        return Outcome(problem=problem)
    running = is_running()
    current = falco_config.parse(current_config) if current_config is not None else None
    if (
        unit_changed
        or ca_changed
        or not running
        or falco_config.needs_restart(current, desired.config)
    ):
        return _restart(layout, desired, unit_changed, running)
    os.replace(layout.staged_config_file, layout.config_file)
    return Outcome(Action.RELOAD)


def purge(layout: Layout) -> None:
    """Delete every file and directory the charm created (the unit must be gone already)."""
    for path in layout.owned_paths():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def stop_and_forget(layout: Layout) -> None:
    """Stop and disable the service and delete its unit; safe to call more than once."""
    if layout.unit_file.exists():
        for step in (systemd.service_stop, systemd.service_disable):
            try:
                step(SERVICE_NAME)
            except systemd.SystemdError:
                continue
        layout.unit_file.unlink(missing_ok=True)
        systemd.daemon_reload()
