"""Which units take alerts (peer relation ``sidekick-peers``), and the URL Falco is given.

Only the leader writes the URL Falco posts to (``http-endpoint``), but any unit may be the
one that serves it (the leader itself may be waiting for its certificate). So every unit
writes what it serves right now into its own peer bag, key ``alert-input`` (an
:class:`exposure.Served` as JSON; the key is deleted while it serves nothing on the
network), and the leader publishes a URL only while at least one unit serves what the URL
needs, and withdraws it otherwise: a URL nothing answers would make every Falco unit drop
its alerts silently, while without one Falco keeps them local and says so.

A unit writes only when its report changes: a write wakes every other unit.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import ops
from exposure import Exposure, Served
from relation_data import update_changed

if TYPE_CHECKING:  # imported where used: pydantic imports slower than ops
    from falcosidekick_http_endpoint import HttpEndpointProvider

logger = logging.getLogger(__name__)

PEERS = "sidekick-peers"
KEY = "alert-input"
# A remote value is quoted in logs at most this long: it can be anything, of any size.
_LOGGED_PREFIX = 40


class Rotation(ops.Object):
    """This unit's report to its peers, and what the other units report."""

    def __init__(self, charm: ops.CharmBase):
        super().__init__(charm, PEERS)
        self._charm = charm

    @property
    def relation(self) -> ops.Relation | None:
        """The peer relation (absent very early in a unit's life)."""
        return self._charm.model.get_relation(PEERS)

    def report(self, served: Served | None) -> bool:
        """Tell the other units what this unit serves (None: nothing); True if written."""
        relation = self.relation
        if relation is None:
            return False
        value = served.to_json() if served else ""
        return update_changed(relation.data[self._charm.unit], {KEY: value})

    def others(self) -> list[Served]:
        """Return what the other units serve; a report that cannot be read is skipped.

        The CA of a report is checked with the same validator the published endpoint goes
        through, so a bad report cannot make publishing fail.
        """
        from falcosidekick_http_endpoint import check_pem_certificates

        relation = self.relation
        found = []
        for unit in sorted(relation.units, key=lambda u: u.name) if relation else ():
            raw = relation.data[unit].get(KEY, "") if relation else ""
            if not raw:
                continue
            try:
                served = Served.from_json(raw)
                if served.ca:
                    served = Served(
                        served.scheme, served.port, served.hosts, check_pem_certificates(served.ca)
                    )
            except ValueError as exc:
                logger.warning(
                    "ignoring the %r report of %s (%s): %r...",
                    KEY,
                    unit.name,
                    exc,
                    raw[:_LOGGED_PREFIX],
                )
                continue
            found.append(served)
        return found

    def publish(
        self,
        exposure: Exposure,
        served: Served | None,
        reachable_hosts: Callable[[], Sequence[str]],
    ) -> None:
        """Report what this unit serves; as leader, publish the URL that some unit serves.

        ``reachable_hosts`` (asked only for a direct URL) are where Falco can reach the
        Service, best first.
        """
        self.report(served)
        if not self._charm.unit.is_leader():
            return
        serving = ([served] if served else []) + self.others()
        endpoint = exposure.endpoint(serving, reachable_hosts() if exposure.direct else ())
        if endpoint is None:
            self._http_endpoint.withdraw()
        else:
            self._http_endpoint.publish(
                endpoint.url, endpoint.ca, endpoint.client_certificate_required
            )

    @functools.cached_property
    def _http_endpoint(self) -> HttpEndpointProvider:
        from falcosidekick_http_endpoint import HttpEndpointProvider

        return HttpEndpointProvider(self._charm)
