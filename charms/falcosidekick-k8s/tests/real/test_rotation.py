"""Units out of rotation, on the real Pebble and Falcosidekick: no traffic, no URL.

Juju's readiness probe of the workload container is Pebble's health at level ``ready``; the
charm's ready check connects to the pod's address on the alert port. A unit that listens on
the loopback only (waiting for its certificate) fails it, and the leader publishes no URL
while no unit serves one (here: while the real sidekick cannot start).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import fake_loki
import pytest
import sidekick_states as states
import workloads
import yaml
from local_net import free_port
from ops import testing
from real_pebble import RealPebble
from real_unit import POD_ADDRESS, RealUnit, falco_alert, get, post
from sidekick import READY_CHECK
from tls_material import Issued, issue, make_ca


@pytest.fixture(name="waiting", scope="module")
def waiting_fixture() -> Iterator[RealUnit]:
    """A leader related to a certificates provider that has not answered yet."""
    with ExitStack() as stack:
        loki = stack.enter_context(fake_loki.serving())
        pebble = RealPebble()
        stack.callback(pebble.stop)
        relations: set[testing.RelationBase] = {
            states.certificates_relation(),
            states.loki_relation(loki.url),
            testing.Relation("http-endpoint", remote_app_name="falco"),
            testing.PeerRelation("sidekick-peers"),
        }
        unit = RealUnit.start(pebble, {}, relations)
        unit.run(unit.ctx.on.relation_created(unit.relation("certificates")))
        yield unit


def ready(unit: RealUnit) -> bool:
    """Run the ready check now; return Pebble's health at level ready (the K8s probe)."""
    unit.pebble.cli("check", "--refresh", READY_CHECK)
    return unit.pebble.health("ready")


def test_unit_waiting_for_its_certificate_is_out_of_rotation(
    waiting: RealUnit, ca: Issued
) -> None:
    """arrange: certificates related, not answered. act: the real ready check. assert.

    Not ready (the Service sends it nothing: it listens on 127.0.0.1 only), no URL for
    Falco; once the certificate arrives, ready and published.
    """
    assert not ready(waiting)
    assert waiting.state.unit_status == testing.WaitingStatus(
        "waiting for a certificate on 'certificates'"
    )
    assert "url" not in waiting.relation("http-endpoint").local_app_data

    serving(waiting, ca)

    assert ready(waiting)
    url, published_ca = waiting.published()
    assert published_ca is not None and published_ca.strip() == ca.cert_pem.strip()
    assert get(f"{url}ping", published_ca) == (200, "pong\n")


def serving(unit: RealUnit, ca: Issued) -> RealUnit:
    """Return ``unit`` serving a certificate from ``ca`` (issued now if not yet)."""
    if "certificates" not in unit.relation("certificates").remote_app_data:
        unit.serve_certificate(ca)
    return unit


def test_leader_withdraws_the_url_while_the_sidekick_cannot_start(
    waiting: RealUnit, ca: Issued
) -> None:
    """arrange: serving. act: move to a port something else holds; then free it.

    assert: the real sidekick cannot bind and Pebble cannot start it: the URL is withdrawn
    (Falco keeps its alerts local and says so) and the unit is not ready; once the port is
    free, the next hook starts it and publishes the URL on the new port.
    """
    unit = serving(waiting, ca)
    busy = free_port()
    with socket.create_server(("", busy), family=socket.AF_INET6, dualstack_ipv6=True):
        state = dataclasses.replace(unit.state, config={**unit.state.config, "port": busy})
        stuck = unit.run(unit.ctx.on.config_changed(), state)

        assert "url" not in unit.relation("http-endpoint").local_app_data
        assert stuck.unit_status == testing.WaitingStatus(
            "falcosidekick is not running, see its logs"
        )
        assert "alert-input" not in states.peer_relation(stuck).local_unit_data

    deadline = time.monotonic() + 30
    while True:  # Pebble may be backing off a restart: a later hook catches up
        unit.run(unit.ctx.on.update_status())
        if "url" in unit.relation("http-endpoint").local_app_data or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    url, ca = unit.published()
    assert url.endswith(f":{busy}/")
    assert post(url, json.dumps(falco_alert("After the port was freed")).encode(), ca)[0] == 200
    assert ready(unit)
    report = json.loads(states.peer_relation(unit.state).local_unit_data["alert-input"])
    assert (report["scheme"], report["port"]) == ("https", busy)


def test_one_process_cannot_take_alerts_on_its_tls_and_its_plain_port(tmp_path: Path) -> None:
    """arrange: the real sidekick with TLS and "/" in notlspaths. act: POST / on both ports.

    assert: "/" moves to the plain port and the TLS port answers 404: a second, plain
    listener next to the TLS one would need a second sidekick (why an ingress with a plain
    backend is served in plain HTTP only, exposure.py).
    """
    ca = make_ca("Two ports CA")
    served = issue(ca, "sidekick", ip_addresses=("127.0.0.1",))
    (tmp_path / "server.crt").write_text(served.cert_pem)
    (tmp_path / "server.key").write_text(served.key_pem)
    tls_port, plain_port = free_port(), free_port()
    config = {
        "listenaddress": "127.0.0.1",
        "listenport": tls_port,
        "tlsserver": {
            "deploy": True,
            "certfile": str(tmp_path / "server.crt"),
            "keyfile": str(tmp_path / "server.key"),
            "notlsport": plain_port,
            "notlspaths": ["/", "/healthz"],
        },
    }
    (tmp_path / "sidekick.yaml").write_text(yaml.safe_dump(config))
    binary = workloads.require(workloads.FALCOSIDEKICK)
    with (tmp_path / "log").open("wb") as log:
        process = subprocess.Popen(
            [str(binary), "-c", str(tmp_path / "sidekick.yaml")], stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get(f"http://127.0.0.1:{plain_port}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        body = json.dumps(falco_alert("Both ports")).encode()

        on_tls = post(f"https://127.0.0.1:{tls_port}/", body, ca.cert_pem)
        on_plain = post(f"http://127.0.0.1:{plain_port}/", body)
    finally:
        process.terminate()
        process.wait(timeout=30)

    assert on_tls == (404, "404 page not found\n")
    assert on_plain == (200, "")


def test_ready_check_connects_where_the_service_does(waiting: RealUnit) -> None:
    """arrange: a unit in service. act: read the real plan. assert: the pod's address."""
    check = waiting.pebble.client().get_plan().checks[READY_CHECK]

    assert check.tcp == {"host": POD_ADDRESS, "port": waiting.state.config["port"]}
