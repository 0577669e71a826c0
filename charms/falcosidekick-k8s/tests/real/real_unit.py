"""The charm's unit with the real Pebble as its container: ops.testing hooks, real workload.

ops.testing runs the hooks and plays Juju (config, relations, secrets); only the container's
Pebble client is swapped for a real ``ops.pebble.Client`` on the socket of a
:class:`~real_pebble.RealPebble`. So the charm's own ``Workload`` pushes its files (owner and
modes as rendered), adds its layer and replans on the real Pebble, which starts the real
Falcosidekick with them. The output state's container is not updated (ops.testing keeps its
own idea of it): what the workload does is read from the real Pebble and the real process.
"""

from __future__ import annotations

import dataclasses
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import addresses
import ops
import pytest
import sidekick
import sidekick_states as states
import workloads
import yaml
from charm import FalcosidekickCharm
from local_net import free_port
from ops import testing
from real_pebble import RealPebble
from scenario import mocking
from tls_material import Issued

# The address the Service name resolves to inside these tests: the unit publishes it, and
# the tests may only talk to the loopback.
SERVICE_ADDRESS = "127.0.0.1"
# The pod's own address (what Juju's network-get gives for every endpoint): another loopback
# address, so that a sidekick listening on 127.0.0.1 only cannot be reached on it.
POD_ADDRESS = "127.0.0.2"
# Every endpoint of the charm: network-get answers the pod's address for each.
ENDPOINTS = tuple(
    name
    for role in ("provides", "requires", "peers")
    for name in yaml.safe_load((Path(__file__).parents[2] / "charmcraft.yaml").read_text())[role]
)
# The Falco unit an alert claims to come from (the falco charm adds these output fields).
FALCO_TOPOLOGY = {
    "juju_unit": "falco/3",
    "juju_application": "falco",
    "juju_model": "estate",
    "juju_model_uuid": "00000000-0000-4000-8000-0000000000f0",
    "juju_charm": "falco",
}


def falco_alert(rule: str, priority: str = "Warning") -> dict[str, Any]:
    """Return a real Falco alert (from the workloads' selftest) as a falco unit posts it.

    ``rule`` names it, so a test finds its own alert in Loki; the output fields carry the
    juju_* topology exactly as the falco charm's ``append_output`` adds it.
    """
    expected = workloads.require(workloads.SELFTEST_EXPECTED).read_text().splitlines()
    alert: dict[str, Any] = json.loads(expected[1])  # "Read sensitive file untrusted"
    alert["rule"] = rule
    alert["priority"] = priority
    alert["output_fields"] = {**alert["output_fields"], **FALCO_TOPOLOGY}
    return alert


def client_context(ca_pem: str | None) -> ssl.SSLContext | None:
    """Return how Falco verifies the sidekick: the published CA, and the host in the URL."""
    return ssl.create_default_context(cadata=ca_pem) if ca_pem else None


def post(url: str, body: bytes, ca_pem: str | None = None) -> tuple[int, str]:
    """POST ``body`` to ``url`` (on the loopback), verifying with ``ca_pem``; return the answer."""
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - see _open
    return _open(request, client_context(ca_pem))


def get(url: str, ca_pem: str | None = None) -> tuple[int, str]:
    """GET ``url`` (on the loopback); return the status and body."""
    return _open(urllib.request.Request(url), client_context(ca_pem))  # noqa: S310 - see _open


def _open(request: urllib.request.Request, context: ssl.SSLContext | None) -> tuple[int, str]:
    # These tests may only talk to the loopback.
    assert request.host.split(":")[0] in ("127.0.0.1", "localhost"), request.full_url
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@dataclass
class RealUnit:
    """A leader unit of the charm whose container is ``pebble``; ``state`` is its latest."""

    pebble: RealPebble
    port: int
    no_tls_port: int
    state: testing.State
    ctx: testing.Context[FalcosidekickCharm] = dataclasses.field(
        default_factory=lambda: testing.Context(FalcosidekickCharm)
    )

    @classmethod
    def start(
        cls,
        pebble: RealPebble,
        config: dict[str, Any],
        relations: set[testing.RelationBase],
        secrets: frozenset[testing.Secret] = frozenset(),
    ) -> RealUnit:
        """Return a unit configured with ``config`` (its port is a free one) after pebble-ready."""
        port = free_port()
        state = testing.State(
            leader=True,
            model=states.MODEL,
            config={**config, "port": port},
            containers={container()},
            relations=relations,
            networks=pod_networks(),
            secrets=secrets,
        )
        unit = cls(pebble, port, free_port(), state)
        unit.run(unit.ctx.on.pebble_ready(container()))
        return unit

    @contextmanager
    def wired(self) -> Iterator[None]:
        """Run the charm with the real Pebble as its container's, as the tests set things up.

        ops.testing builds every container's Pebble client in this one method; pointing it
        at the real Pebble is the only change. The no-TLS port is moved to a free one (other
        suites on this machine may hold 2810), and the Service name resolves to the loopback.
        """
        socket_path = self.pebble.socket_path
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(
                mocking._MockModelBackend,
                "get_pebble",
                lambda _backend, _path: ops.pebble.Client(socket_path=socket_path),
            )
            patch.setattr(sidekick, "NO_TLS_PORT", self.no_tls_port)
            patch.setattr(addresses, "resolve", {states.SERVICE_FQDN: SERVICE_ADDRESS}.get)
            yield

    def run(self, event: Any, state: testing.State | None = None) -> testing.State:
        """Run ``event`` on ``state`` (default: the latest); keep and return the output."""
        with self.wired():
            self.state = self.ctx.run(event, state or self.state)
        return self.state

    def relation(self, endpoint: str) -> testing.Relation:
        """Return the relation of ``endpoint`` in the latest state."""
        return states.relation(self.state, endpoint)

    def replace_relation(self, new: testing.Relation) -> testing.State:
        """Return the latest state with ``new`` in place of the relation with its id."""
        return states.replace_relation(self.state, new)

    def serve_certificate(self, ca: Issued) -> testing.State:
        """Have the certificates provider sign the unit's request with ``ca``, then serve it."""
        certificates = self.relation("certificates")
        self.run(self.ctx.on.relation_created(certificates))
        answered = states.issue_certificates(self.relation("certificates"), ca)
        return self.run(
            self.ctx.on.relation_changed(answered, remote_unit=0),
            self.replace_relation(answered),
        )

    def published(self) -> tuple[str, str | None]:
        """Return the URL and CA the unit publishes to Falco on ``http-endpoint``."""
        data = self.relation("http-endpoint").local_app_data
        ca = json.loads(data["ca_cert"]) if data.get("ca_cert") else None
        return json.loads(data["url"]), ca

    def scrape_port(self) -> int:
        """Return the port of the scrape job the unit publishes on ``metrics-endpoint``."""
        (job,) = json.loads(self.relation("metrics-endpoint").local_app_data["scrape_jobs"])
        (target,) = job["static_configs"][0]["targets"]
        return int(target.rpartition(":")[2])

    def metrics(self) -> str:
        """Return the sidekick's /metrics as Prometheus scrapes it from the published job."""
        status, text = get(f"http://127.0.0.1:{self.scrape_port()}/metrics")
        assert status == 200, text
        return text


def pod_networks() -> set[testing.Network]:
    """Return the unit's bindings, all on the pod's address (POD_ADDRESS)."""
    address = testing.BindAddress([testing.Address(POD_ADDRESS)])
    return {
        testing.Network(name, [address], ingress_addresses=[POD_ADDRESS]) for name in ENDPOINTS
    }


def container() -> testing.Container:
    """Return the workload container as ops.testing needs to know it (files are real)."""
    return testing.Container(states.CONTAINER, can_connect=True)
