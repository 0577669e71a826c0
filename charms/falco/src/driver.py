"""Get the chosen Falco engine ready on this machine, and say why it is not. No Ops.

``kernel`` decides which engine the kernel can run; ``kmod`` builds the kernel module. This
module joins the two for the reconcile (an engine to run, or none) and for the status (why
none), so both read the same facts the same way.

The kernel's facts do not tell everything: a modern eBPF probe the verifier refuses passes
every check and fails only when Falco opens it. With ``driver=auto`` such a failure, read
from the journal, is recorded for the running kernel and ``auto`` then runs kmod, once: the
record stays until the kernel changes or the option does, so the charm never alternates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import falco_config
import journal
import kernel
import kmod
import progress
import records
from layout import Layout
from payload import Payload

logger = logging.getLogger(__name__)


def _fallback_path(layout: Layout) -> Path:
    return layout.state_dir / "driver-fallback.json"


def modern_ebpf_failure(layout: Layout) -> str | None:
    """Return why modern_ebpf failed at start on the running kernel, if it did (auto)."""
    data = records.read(_fallback_path(layout)) or {}
    if data.get("kernel") != kernel.kernel_release(layout):
        return None
    return str(data.get("reason") or "it failed at start")


def _running_engine(layout: Layout) -> str | None:
    try:
        config = falco_config.parse(layout.config_file.read_text()) or {}
    except OSError:
        return None
    engine = config.get("engine")
    return str(engine.get("kind")) if isinstance(engine, dict) else None


def note_start_failure(
    layout: Layout, setting: str, why_down: Callable[[], journal.Diagnosis | None]
) -> bool:
    """Remember, with driver=auto, that the modern probe failed at start; True if new.

    ``why_down`` reads the journal, only asked when that could matter. Any other setting
    forgets the failure: setting ``auto`` again tries modern_ebpf again.
    """
    path = _fallback_path(layout)
    if setting != kernel.AUTO:
        if path.exists():
            path.unlink()
        return False
    if modern_ebpf_failure(layout) is not None:
        return False
    why = why_down()
    if why is None or why.engine not in (kernel.MODERN_EBPF, journal.ANY_ENGINE):
        return False
    if _running_engine(layout) != kernel.MODERN_EBPF:
        return False
    release = kernel.kernel_release(layout)
    records.write(path, {"kernel": release, "reason": why.summary})
    logger.warning(
        "driver auto: modern_ebpf failed at start on %s, using kmod: %s", release, why.summary
    )
    return True


def notice(layout: Layout, setting: str) -> str | None:
    """Return what the operator should know about the engine ``auto`` chose, if anything."""
    failure = modern_ebpf_failure(layout) if setting == kernel.AUTO else None
    if failure is None:
        return None
    return f"driver auto runs kmod: modern_ebpf failed at start ({failure})"


def _choose(layout: Layout, setting: str, current: Payload) -> kernel.DriverChoice:
    failed = modern_ebpf_failure(layout) if setting == kernel.AUTO else None
    return kernel.choose(setting, layout, current.driver_sources is not None, failed)


def ready_engine(
    layout: Layout,
    setting: str,
    current: Payload,
    retry: bool,
    report: progress.Report = progress.silent,
) -> str | None:
    """Return the engine to run for the ``driver`` option, None if none can run yet.

    For kmod the module is built first; a failed build is retried only when ``retry`` is
    set (an operator action), as ``kmod.ensure_module`` explains.
    """
    sources = current.driver_sources
    choice = _choose(layout, setting, current)
    if choice.engine_kind == kernel.KMOD and sources is not None:
        try:
            kmod.ensure_module(layout, sources, kernel.kernel_release(layout), retry, report)
        except kmod.KmodError as exc:
            logger.error("cannot build the Falco kernel module: %s", exc)
            return None
    return choice.engine_kind


def problem(layout: Layout, setting: str, current: Payload) -> str | None:
    """Return why no engine runs for the ``driver`` option, if that is so."""
    choice = _choose(layout, setting, current)
    if choice.engine_kind is None:
        return choice.reason
    if choice.engine_kind == kernel.KMOD:
        return kmod.failure(layout)
    return None
