"""Get the chosen Falco engine ready on this machine, and say why it is not. No Ops.

``kernel`` decides which engine the kernel can run; ``kmod`` builds the kernel module. This
module joins the two for the reconcile (an engine to run, or none) and for the status (why
none), so both read the same facts the same way.
"""

from __future__ import annotations

import logging

import kernel
import kmod
from layout import Layout
from payload import Payload

logger = logging.getLogger(__name__)


def ready_engine(layout: Layout, setting: str, current: Payload, retry: bool) -> str | None:
    """Return the engine to run for the ``driver`` option, None if none can run yet.

    For kmod the module is built first; a failed build is retried only when ``retry`` is
    set (an operator action), as ``kmod.ensure_module`` explains.
    """
    sources = current.driver_sources
    choice = kernel.choose(setting, layout, sources is not None)
    if choice.engine_kind == kernel.KMOD and sources is not None:
        try:
            kmod.ensure_module(layout, sources, kernel.kernel_release(layout), retry)
        except kmod.KmodError as exc:
            logger.error("cannot build the Falco kernel module: %s", exc)
            return None
    return choice.engine_kind


def problem(layout: Layout, setting: str, current: Payload) -> str | None:
    """Return why no engine runs for the ``driver`` option, if that is so."""
    choice = kernel.choose(setting, layout, current.driver_sources is not None)
    if choice.engine_kind is None:
        return choice.reason
    if choice.engine_kind == kernel.KMOD:
        return kmod.failure(layout)
    return None
