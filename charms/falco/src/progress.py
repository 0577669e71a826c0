"""Steps long enough for an operator to wonder: said before, timed after. No Ops.

Building the kernel module with DKMS (minutes, with apt installs), unpacking a payload, the
first fetch of a large rules repository and validating rules with Falco can each outlast the
status ``juju status`` shows. Workload modules take a ``Report`` callable and announce such a
step before it runs; the charm turns the announcement into a maintenance status, so a hook
that runs no such step sets nothing. A step that took more than ``SLOW_S`` is logged with
its duration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Report = Callable[[str], None]
SLOW_S = 5.0
logger = logging.getLogger(__name__)


def silent(_: str) -> None:
    """Announce nothing (no one is watching: tests, checks)."""


@contextmanager
def step(report: Report, what: str) -> Iterator[None]:
    """Announce ``what``, run the block, and log how long it took if that was long."""
    report(what)
    start = time.monotonic()
    try:
        yield
    finally:
        took = time.monotonic() - start
        if took >= SLOW_S:
            logger.info("%s: took %.0f s", what, took)
