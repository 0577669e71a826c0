"""Loopback ports and bounded waits for tests that run real programs.

Several test sessions may share a machine (CI, developers, helpers in other worktrees), so a
test never assumes a fixed port is free: it asks the kernel for one. Real programs take a
moment to come up; tests wait for what they need with a bounded poll, which fails naming
what never happened instead of hanging or sleeping a fixed time.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Ample for a program starting on a loaded 2-core machine; a poll ends as soon as it can.
DEFAULT_WAIT_S = 30.0


def free_port() -> int:
    """Return a TCP port nothing listens on right now, on the loopback and every address.

    Dual-stack when the machine has IPv6, so that a program told to bind every address
    (``::`` or ``0.0.0.0``) finds the port free too.
    """
    if socket.has_dualstack_ipv6():
        with socket.create_server(("", 0), family=socket.AF_INET6, dualstack_ipv6=True) as probe:
            return int(probe.getsockname()[1])
    with socket.create_server(("0.0.0.0", 0)) as probe:  # noqa: S104 - only to find a port
        return int(probe.getsockname()[1])


def wait_for(
    what: str,
    probe: Callable[[], T | bool | None],
    timeout: float = DEFAULT_WAIT_S,
    every: float = 0.1,
    seen: Callable[[], object] | None = None,
) -> T:
    """Return ``probe()``'s first result that is neither None nor False, polling every ``every`` s.

    Fails with an AssertionError naming ``what`` after ``timeout`` seconds, and what ``seen()``
    returns then (e.g. what a fake server received), if given.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None and found is not False:
            return found  # type: ignore[return-value]
        if time.monotonic() > deadline:
            detail = f"; seen: {seen()!r}" if seen else ""
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}{detail}")
        time.sleep(every)
