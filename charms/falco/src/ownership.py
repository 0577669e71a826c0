"""Which falco unit on this machine runs Falco. No Ops.

Juju places one falco unit per principal unit, so a machine hosting two principals related
to falco (``ubuntu`` and a co-located ``ntp``; ``k8s`` and ``etcd``) gets two falco units.
Everything the charm puts on the machine is per machine (one service, one falco.yaml, one
payload, one alert log), so exactly one unit owns it: the first to claim it. The others
change nothing of it and say who runs it; Falco's alerts carry the owner's unit name.

The claim is a record (``owner.json``) created atomically (a hard link of a complete file,
which fails if the record exists), though Juju already runs one hook at a time per machine.
A unit can also vanish without its ``remove`` hook (``juju remove-unit --force``, a machine
restored from a backup); Juju keeps each deployed unit's agent directory
(``/var/lib/juju/agents/unit-<app>-<n>/``) until the unit is gone, so a record naming a unit
without one is stale and the next unit to run a hook takes over, changing nothing but the
unit name Falco's alerts carry. When the owner is removed while another falco unit lives on
the machine, it releases the record and leaves Falco running and every file in place; the
survivor takes over at its next hook (one hot reload: the new unit name). The last unit to
leave removes everything. Each unit registers itself (``units/<app>-<n>``) so that a
leaving unit knows whether it is the last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import records
from layout import Layout

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ownership:
    """This unit and the unit that runs Falco here."""

    unit: str
    owner: str

    @property
    def mine(self) -> bool:
        """Whether this unit runs Falco on the machine."""
        return self.owner == self.unit


def _registration(layout: Layout, unit: str) -> Path:
    return layout.units_dir / unit.replace("/", "-")


def alive(layout: Layout, unit: str) -> bool:
    """Return whether ``unit`` is still deployed on this machine (its agent directory is).

    Without Juju's agents directory at all nothing can be told, and a unit that cannot be
    told gone is taken to be there: a live owner must never lose Falco under it.
    """
    if not layout.juju_agents_dir.is_dir():
        return True
    return layout.agent_dir(unit).is_dir()


def registered(layout: Layout) -> list[str]:
    """Return the falco units that registered on this machine and have not left."""
    if not layout.units_dir.is_dir():
        return []
    units = []
    for path in sorted(layout.units_dir.iterdir()):
        unit = records.field(path, "unit")
        if unit:
            units.append(unit)
    return units


def _register(layout: Layout, unit: str) -> None:
    path = _registration(layout, unit)
    if not path.exists():
        records.write(path, {"unit": unit})


def owner(layout: Layout) -> str | None:
    """Return the unit named by the owner record, if there is one."""
    return records.field(layout.owner_record, "unit")


def _claim(layout: Layout, unit: str, stale: str | None) -> bool:
    """Make ``unit`` the owner; True if it is. Replaces the record only if ``stale``."""
    record = layout.owner_record
    record.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = record.with_name(f".{record.name}.{os.getpid()}")
    scratch.write_text(json.dumps({"unit": unit}, sort_keys=True) + "\n")
    scratch.chmod(0o600)
    try:
        if stale is None:
            os.link(scratch, record)
        elif owner(layout) == stale:
            os.replace(scratch, record)
            logger.warning("%s is gone from this machine: %s takes over Falco", stale, unit)
    except FileExistsError:
        pass
    finally:
        scratch.unlink(missing_ok=True)
    return owner(layout) == unit


def resolve(layout: Layout, unit: str) -> Ownership:
    """Return who runs Falco here, claiming it for ``unit`` if nobody (alive) does.

    Writes nothing when nothing changed.
    """
    _register(layout, unit)
    current = owner(layout)
    if current is None or (current != unit and not alive(layout, current)):
        _claim(layout, unit, current)
        current = owner(layout) or unit
    return Ownership(unit, current)


def record_options(layout: Layout, ownership: Ownership, options: str | None) -> None:
    """Record the digest of the options the owner applies (written only when it changes)."""
    if ownership.mine and options is not None:
        records.write(layout.owner_record, {"unit": ownership.unit, "options": options})


def options_differ(layout: Layout, options: str | None) -> bool:
    """Return whether ``options`` (None: invalid) are not the ones the owner applies."""
    return records.field(layout.owner_record, "options") != options


def others_alive(layout: Layout, unit: str) -> list[str]:
    """Return the other falco units still deployed on this machine."""
    return [other for other in registered(layout) if other != unit and alive(layout, other)]


def leave(layout: Layout, unit: str) -> bool:
    """``unit`` is being removed; return True if it is the last and must remove Falco.

    An owner that is not the last releases the record (module doc): Falco stays.
    """
    _registration(layout, unit).unlink(missing_ok=True)
    others = others_alive(layout, unit)
    if not others:
        return True
    if owner(layout) == unit:
        layout.owner_record.unlink(missing_ok=True)
        logger.info("leaving Falco running for %s, which takes it over", others[0])
    return False


def options_digest(options: str) -> str:
    """Return the digest of a unit's validated options (as JSON), for comparison."""
    return hashlib.sha256(options.encode()).hexdigest()


def status(ownership: Ownership, differ: bool) -> tuple[str, str]:
    """Return the status (name, message) of a unit that does not run Falco."""
    message = f"Falco on this machine is run by {ownership.owner}"
    if differ:
        return (
            "blocked",
            f"{message}; this unit's options differ from its and are not applied: configure "
            f"both applications alike",
        )
    return "active", message
