"""Idle hooks cost what they must: nothing read, rendered or set that cannot have changed.

Every hook is a new process, and every hook tool it runs (``relation-get``, ``status-set``,
``juju-log``...) is an RPC to the unit agent, some of which reach the controller. A unit
that converged sees mostly hooks that change nothing: ``update-status`` every five minutes,
``config-changed`` or ``relation-changed`` with the values it already acted on. Juju tells
a charm about every change of its inputs with an event of its own (config, relation data,
secrets, leadership), so such a hook can only find two things different: the workload, which
the charm looks at itself, and the clock.

:class:`IdleHooks` keeps, in the unit's local state, what the last complete reconcile
converged on: when, whether the unit led, a digest of the options, a digest of each relation
databag a ``relation-changed`` brought, and a digest of the workload's own facts (given by
the charm). A hook is idle when it is ``update-status``, ``config-changed`` with options of
the same digest, or ``relation-changed`` (on an endpoint the charm names) with the bags it
may be about (the remote application's, and the remote unit's it names) of the same digest;
the unit leads as it did, the workload's facts are the same, and the record is less than
:data:`REFRESH_S` old. An idle hook constructs nothing and observes nothing: no relation is
read, no status is set. Anything else takes the charm's full path, and a full reconcile
every hour still catches what only time changes (a certificate nearing expiry, a name that
resolves elsewhere, a databag someone else rewrote).

:class:`StatusMemo` is the other half: ops sets the unit status after every hook that added
one, even when it is the status the unit already shows. The memo adds the status only when
it differs from the last one this unit set (or when there is none on record).

:func:`main` runs a hook with ops' own debug lines kept off ``juju-log`` (three RPCs per hook,
which Juju drops at its default INFO level) unless ``JUJU_DEBUG`` is set, as under
``juju debug-code``. The charm's own loggers are untouched.

Source of truth: ``libs/idle_hooks/`` in the falco-operators repository; the charms carry
generated copies under ``lib/`` (``make vendor``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping

import ops

# How long a record may stand in for a full reconcile.
REFRESH_S = 3600.0
# Status names by priority, highest first (the order ops uses to pick one).
_PRIORITY = ("error", "blocked", "maintenance", "waiting", "active", "unknown")
_OPS_DIR = os.path.dirname(ops.__file__) + os.sep


def digest(value: object) -> str:
    """Return a digest of ``value`` (JSON-able, mappings in any order)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _not_framework_debug(record: logging.LogRecord) -> bool:
    """Return False for a debug line of ops itself (some log on the root logger)."""
    return record.levelno >= logging.INFO or not record.pathname.startswith(_OPS_DIR)


def main(charm_class: type[ops.CharmBase], environ: Mapping[str, str] = os.environ) -> None:
    """Run the dispatched hook with ops' framework debug lines kept off ``juju-log``."""
    if "JUJU_DEBUG" not in environ:
        logging.getLogger("ops").setLevel(logging.INFO)
        logging.getLogger().addFilter(_not_framework_debug)
    ops.main(charm_class)


def highest(statuses: Iterable[ops.StatusBase]) -> ops.StatusBase | None:
    """Return the status of highest priority (the first of equals), None if there is none."""
    ranked = sorted(enumerate(statuses), key=lambda item: (_PRIORITY.index(item[1].name), item[0]))
    return ranked[0][1] if ranked else None


class StatusMemo(ops.Object):
    """The unit status this unit last set, so that the same one is not set again."""

    _stored = ops.StoredState()  # type: ignore[no-untyped-call]  # ops leaves it untyped

    def __init__(self, charm: ops.CharmBase):
        super().__init__(charm, "status-memo")
        self._charm = charm
        self._stored.set_default(status=None)

    def settle(self, event: ops.CollectStatusEvent, statuses: Iterable[ops.StatusBase]) -> None:
        """Add the highest of ``statuses`` to ``event`` unless it is the one the unit has."""
        status = highest(statuses)
        if status is None:
            return
        wanted = [status.name, status.message]
        if self._stored.status is not None and list(self._stored.status) == wanted:
            return
        event.add_status(status)
        self._stored.status = wanted

    def show(self, status: ops.StatusBase) -> None:
        """Set ``status`` now (a long step under way), and remember it was set."""
        self._charm.unit.status = status
        self._stored.status = [status.name, status.message]

    def forget(self) -> None:
        """Set the next status whatever it is (e.g. after a refresh of the charm)."""
        self._stored.status = None


class IdleHooks(ops.Object):
    """What the last complete reconcile converged on; whether this hook can change nothing.

    ``relation_endpoints`` are the endpoints whose ``relation-changed`` may be idle (not one
    whose library acts on the event by itself). ``clock`` gives the time (seconds);
    ``environ`` is what Juju says about the hook (default: this process's environment).
    """

    _stored = ops.StoredState()  # type: ignore[no-untyped-call]  # ops leaves it untyped

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_endpoints: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ):
        super().__init__(charm, "idle-hooks")
        self._charm = charm
        self._endpoints = frozenset(relation_endpoints)
        self._clock = clock
        # What Juju says about the hook it dispatched (ops reads the same variables).
        environ = os.environ if environ is None else environ
        path = environ.get("JUJU_DISPATCH_PATH", "")
        self._hook = path.removeprefix("hooks/") if path.startswith("hooks/") else ""
        relation_id = environ.get("JUJU_RELATION_ID", "").rpartition(":")[2]
        self._relation_id = int(relation_id) if relation_id.isdigit() else None
        self._remote_unit = environ.get("JUJU_REMOTE_UNIT", "")
        self._stored.set_default(converged=None, bags={})

    def _changed_bags(self) -> tuple[str, str] | None:
        """Return the key and digest of the bags this relation-changed brought, if one did."""
        endpoint = self._hook.removesuffix("-relation-changed")
        if endpoint == self._hook or endpoint not in self._endpoints:
            return None
        if self._relation_id is None:
            return None
        relation = self._charm.model.get_relation(endpoint, self._relation_id)
        if relation is None:
            return None
        # Both bags the event may be about: the remote application's, and the unit's it
        # names. (Juju names no unit when only the application's bag changed; a test
        # harness may name one anyway, and nothing is lost reading both.)
        bags: dict[str, dict[str, str]] = {}
        if relation.app is not None:
            bags["app"] = dict(relation.data[relation.app])
        if self._remote_unit:
            bags["unit"] = dict(relation.data[self._charm.model.get_unit(self._remote_unit)])
        return f"{relation.id}/{self._remote_unit}", digest(bags)

    def holds(
        self,
        facts: Callable[[], str | None],
        polled: Callable[[], str | None] = lambda: None,
    ) -> bool:
        """Return whether this hook can change nothing (see the module docstring).

        ``facts`` returns the digest of the workload's facts now (None when it cannot be
        looked at); it is called last, only when everything else holds. ``polled`` returns
        the digest of what may change behind Juju's back but costs hook tools to read (an
        address, a secret the unit owns): update-status and config-changed look at it; a
        relation-changed looks at its relation only (the next update-status polls).
        """
        record = self._stored.converged
        if record is None:
            return False
        now = self._clock()
        if not 0 <= now - record["at"] < REFRESH_S or now >= record["until"]:
            return False
        hook = self._hook
        if hook == "config-changed":
            same = digest(dict(self._charm.model.config)) == record["config"]
        elif hook == "update-status":
            same = True
        else:
            changed = self._changed_bags()
            same = changed is not None and self._stored.bags.get(changed[0]) == changed[1]
        if not same or self._charm.unit.is_leader() != record["leader"]:
            return False
        if hook in ("update-status", "config-changed") and polled() != record["polled"]:
            return False
        return bool(facts() == record["facts"])

    def begin(self) -> None:
        """Forget the record: a full reconcile is under way and may not finish."""
        self._stored.converged = None

    def converged(
        self, facts: str | None, polled: str | None = None, until: float | None = None
    ) -> None:
        """Record that the full reconcile of this hook converged, with the workload's facts.

        ``until`` is when something the charm does on a schedule falls due (a sync), if ever:
        no hook is idle from then on.
        """
        now = self._clock()
        self._stored.converged = {
            "at": now,
            "until": now + REFRESH_S if until is None else until,
            "leader": self._charm.unit.is_leader(),
            "config": digest(dict(self._charm.model.config)),
            "facts": facts,
            "polled": polled,
        }
        changed = self._changed_bags()
        if changed is not None:
            self._stored.bags[changed[0]] = changed[1]
        if self._hook.endswith("-relation-broken") and self._relation_id is not None:
            prefix = f"{self._relation_id}/"
            for key in [key for key in self._stored.bags if key.startswith(prefix)]:
                del self._stored.bags[key]
