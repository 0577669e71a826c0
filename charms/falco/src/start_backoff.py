"""How often the charm starts a Falco that systemd reports down. No Ops.

Falco that exits is restarted by systemd itself (``Restart=on-failure``) until the unit's
start limit (5 starts in 10 minutes); after that, or when it was stopped or never started
(a hook killed between stop and start), only a start brings it back. The charm gives that
start on its next hook, whatever the hook. A Falco that cannot run would then be started
again by every hook: each start is five more crashes, and a log storm. So consecutive
starts that did not keep Falco up are counted on disk, and after ``FREE_RETRIES`` of them
the next one waits ``BASE_INTERVAL_S``, doubling each time up to ``MAX_INTERVAL_S``: with
update-status every 5 minutes, a Falco that never stays up is started at hooks 1, 2, 3, 5,
9, 17, then every hour. An operator's change (config-changed, upgrade-charm, refresh-rules)
retries at once. The count is forgotten as soon as Falco is seen running.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import records
from layout import Layout

FREE_RETRIES = 3
BASE_INTERVAL_S = 10 * 60
MAX_INTERVAL_S = 60 * 60


@dataclass(frozen=True)
class Attempts:
    """Starts given since Falco was last seen running, and when the last one was."""

    count: int = 0
    last: float = 0.0

    def interval(self) -> float:
        """Return how long after the last start the next one may come (seconds)."""
        if self.count < FREE_RETRIES:
            return 0.0
        return float(min(BASE_INTERVAL_S * 2 ** (self.count - FREE_RETRIES), MAX_INTERVAL_S))

    @property
    def next_retry(self) -> float:
        """When the next start may come (epoch seconds)."""
        return self.last + self.interval()


def _path(layout: Layout) -> Path:
    return layout.state_dir / "start-attempts.json"


def read(layout: Layout) -> Attempts:
    """Return the starts counted so far (none when Falco was last seen running)."""
    data = records.read(_path(layout)) or {}
    try:
        return Attempts(count=int(data.get("count", 0)), last=float(data.get("last", 0.0)))
    except (TypeError, ValueError):
        return Attempts()


def due(layout: Layout, now: float, forced: bool = False) -> bool:
    """Return whether a start may be given now (always when ``forced``)."""
    return forced or now >= read(layout).next_retry


def record_start(layout: Layout, now: float) -> Attempts:
    """Count one more start given at ``now``; return the new count."""
    attempts = Attempts(count=read(layout).count + 1, last=now)
    records.write(_path(layout), {"count": attempts.count, "last": attempts.last})
    return attempts


def forget(layout: Layout) -> bool:
    """Forget the count (Falco runs); True if there was one."""
    path = _path(layout)
    if not path.exists():
        return False
    path.unlink()
    return True
