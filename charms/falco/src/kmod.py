"""Build Falco's kernel module with DKMS from the payload's driver sources. No Ops.

DKMS builds modules from ``/usr/src/<module>-<version>`` and rebuilds them by itself when
the kernel is upgraded, so the charm copies the tarball's driver sources there once and lets
DKMS own the build. The module is loaded by the unit's ``ExecStartPre``, not here. What the
charm created is recorded so that ``remove`` undoes exactly that, and never a tree that a
Falco package of the principal installed.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import progress
import records
from layout import Layout
from messages import shorten

MODULE = "falco"
DKMS_TIMEOUT_S = 1200


class KmodError(Exception):
    """The module cannot be built; ``str()`` says why, ready for a status."""


@dataclass(frozen=True)
class KmodRecord:
    """The module version the charm added to DKMS, and whether it created its sources."""

    version: str
    created_sources: bool


def _record_path(layout: Layout) -> Path:
    return layout.state_dir / "kmod.json"


def read_record(layout: Layout) -> KmodRecord | None:
    """Return what the charm added to DKMS, if anything."""
    data = records.read(_record_path(layout)) or {}
    if "version" not in data:
        return None
    return KmodRecord(
        version=str(data["version"]), created_sources=bool(data.get("created_sources"))
    )


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise KmodError(f"{name} is not installed")
    return found


def _run(args: list[str], timeout: int = DKMS_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    try:
        # Fixed tools resolved to absolute paths, fixed arguments; no shell.
        return subprocess.run(  # noqa: S603
            args, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise KmodError(f"{Path(args[0]).name} {args[1]} took longer than {timeout}s") from exc


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    return shorten(last)


def installed(version: str, release: str) -> bool:
    """Return whether DKMS reports the module ``version`` installed for kernel ``release``."""
    dkms = shutil.which("dkms")
    if dkms is None:
        return False
    status = _run([dkms, "status", "-m", MODULE, "-v", version, "-k", release], timeout=60)
    return status.returncode == 0 and "installed" in status.stdout


def _install_build_packages(release: str) -> None:
    # Imported here: only machines that use the kmod driver pay for charmlibs-apt.
    from charmlibs import apt

    packages = ["dkms", f"linux-headers-{release}"]
    try:
        apt.add_package(packages)
    except (apt.PackageError, apt.PackageNotFoundError) as exc:
        raise KmodError(f"cannot install {' and '.join(packages)}: {exc.message}") from exc


def _failure_path(layout: Layout) -> Path:
    return layout.state_dir / "kmod-failure.json"


def failure(layout: Layout) -> str | None:
    """Return why the last build failed, if the last attempt failed."""
    return records.field(_failure_path(layout), "reason")


def _build(
    layout: Layout, sources: Path, version: str, release: str, report: progress.Report
) -> None:
    with progress.step(report, f"installing dkms and linux-headers-{release} with apt"):
        _install_build_packages(release)
    target = layout.dkms_source_parent / sources.name
    created = not target.exists()
    if created:
        shutil.copytree(sources, target, symlinks=True)
    previous = read_record(layout)
    if previous is not None and previous.version == version:
        created = created or previous.created_sources
    records.write(_record_path(layout), {"version": version, "created_sources": created})
    with progress.step(report, f"building the Falco kernel module for {release} (dkms)"):
        build = _run([_tool("dkms"), "install", "-m", MODULE, "-v", version, "-k", release])
    if build.returncode != 0:
        raise KmodError(
            f"DKMS could not build {MODULE} {version} for kernel {release}: "
            f"{_last_line(build.stderr or build.stdout)}"
        )


def ensure_module(
    layout: Layout,
    sources: Path,
    release: str,
    retry: bool,
    report: progress.Report = progress.silent,
) -> bool:
    """Make sure DKMS has built the module in ``sources`` for ``release``; True if it built.

    A failed build is recorded and not retried on every hook (it installs packages and
    compiles): only when ``retry`` is set (an operator action) or its inputs changed. Raises
    KmodError with the reason while the module is not available.
    """
    version = sources.name.removeprefix(f"{MODULE}-")
    if installed(version, release):
        _failure_path(layout).unlink(missing_ok=True)
        return False
    attempt = {"version": version, "release": release}
    recorded = records.read(_failure_path(layout)) or {}
    if not retry and recorded.get("attempt") == attempt:
        raise KmodError(str(recorded.get("reason", "the last DKMS build failed")))
    try:
        _build(layout, sources, version, release, report)
    except KmodError as exc:
        records.write(_failure_path(layout), {"attempt": attempt, "reason": str(exc)})
        raise
    _failure_path(layout).unlink(missing_ok=True)
    return True


def remove(layout: Layout) -> None:
    """Unload the module and undo what the charm added to DKMS (nothing else)."""
    record = read_record(layout)
    if record is None:
        return
    for tool, args in (
        ("modprobe", ["-r", MODULE]),
        ("dkms", ["remove", "-m", MODULE, "-v", record.version, "--all"]),
    ):
        path = shutil.which(tool)
        if path is not None:
            try:
                _run([path, *args], timeout=300)
            except KmodError:
                continue
    if record.created_sources:
        shutil.rmtree(layout.dkms_source_parent / f"{MODULE}-{record.version}", ignore_errors=True)
    _record_path(layout).unlink(missing_ok=True)
    _failure_path(layout).unlink(missing_ok=True)
