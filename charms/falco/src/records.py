"""The charm's own small JSON records under /var/lib/juju-falco. No Ops.

They hold facts the machine cannot show by itself (which tarball was refused and why, what
the charm added to DKMS), so that the status stays true across hooks. Writing is
change-driven like everything else: an unchanged record is not rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read(path: Path) -> dict[str, Any] | None:
    """Return the record at ``path``, or None if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write(path: Path, data: dict[str, Any]) -> bool:
    """Store ``data`` at ``path`` (private to root); return True if the file changed."""
    text = json.dumps(data, sort_keys=True) + "\n"
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    path.chmod(0o600)
    return True


def field(path: Path, key: str) -> str | None:
    """Return one text field of the record at ``path``, if both exist."""
    value = (read(path) or {}).get(key)
    return None if value is None else str(value)
