"""Decide which Falco engine this kernel can run, before anything is started. No Ops.

A driver the kernel cannot run makes Falco exit at start; under systemd that is a crash loop
that watches nothing. Checking first turns it into a status that says why and what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from layout import Layout

MODERN_EBPF = "modern_ebpf"
KMOD = "kmod"
AUTO = "auto"
# BPF ring buffers (BPF_MAP_TYPE_RINGBUF) arrived in Linux 5.8; the modern probe needs them.
MIN_MODERN_EBPF_KERNEL = (5, 8)
_RELEASE = re.compile(r"^(\d+)\.(\d+)")


@dataclass(frozen=True)
class DriverChoice:
    """The engine to run, or None with the reason no engine can run."""

    engine_kind: str | None
    reason: str = ""


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def kernel_release(layout: Layout) -> str:
    """Return the running kernel's release, e.g. "6.8.0-45-generic" ("" if unknown)."""
    return _read(layout.kernel_release_file)


def _version(release: str) -> tuple[int, int] | None:
    match = _RELEASE.match(release)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _container(layout: Layout) -> str:
    return _read(layout.container_marker)


def modern_ebpf_problem(layout: Layout) -> str | None:
    """Return why the modern eBPF probe cannot run here, or None if it can."""
    container = _container(layout)
    if container:
        return f"this machine is a {container} container and cannot load BPF programs"
    release = kernel_release(layout)
    version = _version(release)
    if version is not None and version < MIN_MODERN_EBPF_KERNEL:
        return f"kernel {release} is older than 5.8 and has no BPF ring buffer"
    if not layout.btf_vmlinux.exists():
        return f"kernel {release or '(unknown)'} exposes no BTF at /sys/kernel/btf/vmlinux"
    return None


def kmod_problem(layout: Layout, has_driver_sources: bool) -> str | None:
    """Return why the kernel module cannot be built and loaded here, or None if it can."""
    container = _container(layout)
    if container:
        return f"this machine is a {container} container and cannot load kernel modules"
    lockdown = _read(layout.lockdown_file)
    active = re.search(r"\[(\w+)\]", lockdown)
    if active and active.group(1) != "none":
        return f"kernel lockdown ({active.group(1)}) refuses unsigned modules"
    if not has_driver_sources:
        return "the Falco payload has no kmod driver sources (usr/src/falco-*)"
    return None


def choose(
    setting: str, layout: Layout, has_driver_sources: bool, modern_ebpf_failed: str | None = None
) -> DriverChoice:
    """Return the engine for the ``driver`` option ``setting`` on this machine.

    ``modern_ebpf_failed`` is why the modern probe failed at start on this kernel, if it
    did: ``auto`` then takes kmod.
    """
    if setting == MODERN_EBPF:
        problem = modern_ebpf_problem(layout)
        if problem:
            return DriverChoice(None, f"driver modern_ebpf: {problem}; try driver=kmod")
        return DriverChoice(MODERN_EBPF)
    if setting == KMOD:
        problem = kmod_problem(layout, has_driver_sources)
        if problem:
            return DriverChoice(None, f"driver kmod: {problem}; try driver=modern_ebpf")
        return DriverChoice(KMOD)
    # auto: the modern probe needs nothing built or loaded, so it is preferred.
    ebpf_problem = modern_ebpf_problem(layout) or modern_ebpf_failed
    if ebpf_problem is None:
        return DriverChoice(MODERN_EBPF)
    kmod = kmod_problem(layout, has_driver_sources)
    if kmod is None:
        return DriverChoice(KMOD)
    return DriverChoice(None, f"no driver can run: modern_ebpf: {ebpf_problem}; kmod: {kmod}")
