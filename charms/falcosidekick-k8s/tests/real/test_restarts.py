"""The real sidekick restarts only when it must: its PID, before and after each hook.

Falcosidekick reads its config and certificates only at start, so a change to them needs a
new process; anything else must leave the running one alone (Falco posts to it meanwhile).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl
from collections.abc import Iterator
from contextlib import ExitStack

import fake_loki
import ops
import pytest
import sidekick_states as states
from cryptography import x509
from deployment import Deployed, deploy
from ops import testing
from ops_probes import PEBBLE_FILE_WRITES, PEBBLE_PLAN_CHANGES, record_calls
from real_unit import falco_alert, post
from tls_material import Issued, make_ca

PEBBLE_CHANGES = (*PEBBLE_FILE_WRITES, *PEBBLE_PLAN_CHANGES, "replan_services")


@pytest.fixture(name="deployed", scope="module")
def deployed_fixture(ca: Issued, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """A unit serving its own certificate (plain-HTTP Loki: the CA is rotated below)."""
    with ExitStack() as stack:
        directory = tmp_path_factory.mktemp("restarts")
        yield deploy("certificates", ca, stack, directory, https_loki=False)


def served_serial(deployed: Deployed, ca_pem: str) -> int:
    """Return the serial of the certificate the sidekick serves, verified with ``ca_pem``."""
    context = ssl.create_default_context(cadata=ca_pem)
    address = ("127.0.0.1", deployed.unit.port)
    with (
        socket.create_connection(address, timeout=10) as connection,
        context.wrap_socket(connection, server_hostname=address[0]) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_no_op_hook_keeps_the_process_and_touches_nothing(deployed: Deployed) -> None:
    """arrange: in service. act: update-status. assert: same PID, no file, layer or replan."""
    unit = deployed.unit
    pid = deployed.pebble.sidekick_pid()

    with record_calls(ops.pebble.Client, PEBBLE_CHANGES) as calls:
        out = unit.run(unit.ctx.on.update_status())

    assert deployed.pebble.sidekick_pid() == pid
    assert calls.by_method == {}
    assert out.unit_status == testing.ActiveStatus()


def test_logging_relation_keeps_the_process_and_forwards_its_logs(deployed: Deployed) -> None:
    """arrange: in service. act: a Loki joins on `logging`. assert: same PID; logs arrive there.

    The log target goes into the real Pebble's plan; Pebble then pushes the sidekick's own log
    lines (here, the one it writes for a delivered alert), labelled with our topology.
    """
    unit = deployed.unit
    pid = deployed.pebble.sidekick_pid()
    with fake_loki.serving() as logs:
        logging = testing.Relation(
            "logging",
            remote_app_name="loki",
            remote_units_data={0: {"endpoint": json.dumps({"url": logs.url})}},
        )
        state = dataclasses.replace(unit.state, relations={*unit.state.relations, logging})
        unit.run(unit.ctx.on.relation_changed(logging, remote_unit=0), state)

        assert deployed.pebble.sidekick_pid() == pid
        targets = deployed.pebble.client().get_plan().log_targets
        assert targets["loki/0"].location == logs.url
        url, ca = deployed.alert_url_and_ca()
        assert post(url, json.dumps(falco_alert("Logged delivery")).encode(), ca)[0] == 200
        entries = logs.wait_for(lambda found: any("Loki - POST OK" in e.line for e in found))

    forwarded = next(e for e in entries if "Loki - POST OK" in e.line)
    assert {
        "juju_unit": "falcosidekick-k8s/0",
        "juju_application": "falcosidekick-k8s",
        "juju_model": "fmodel",
        "pebble_service": "falcosidekick",
    }.items() <= forwarded.labels.items()


def test_config_change_restarts_once_and_the_new_process_applies_it(deployed: Deployed) -> None:
    """arrange: in service. act: minimum-priority critical and a Loki tenant.

    assert: one replan, a new process; a Warning alert (posted first) is not forwarded, a
    Critical one is, with the tenant header.
    """
    unit = deployed.unit
    pid = deployed.pebble.sidekick_pid()
    config = {**unit.state.config, "minimum-priority": "critical", "loki-tenant": "team-a"}

    with record_calls(ops.pebble.Client, ("replan_services",)) as calls:
        unit.run(unit.ctx.on.config_changed(), dataclasses.replace(unit.state, config=config))

    assert calls.count("replan_services") == 1
    assert deployed.pebble.sidekick_pid() != pid
    url, ca = deployed.alert_url_and_ca()
    for priority in ("Warning", "Critical"):
        alert = falco_alert(f"After the config change ({priority})", priority)
        assert post(url, json.dumps(alert).encode(), ca)[0] == 200
    loki = deployed.loki
    loki.wait_for(lambda _: bool(loki.lines_of_rule("After the config change (Critical)")))
    (critical,) = loki.lines_of_rule("After the config change (Critical)")
    assert critical.tenant == "team-a"
    assert loki.lines_of_rule("After the config change (Warning)") == []


def test_new_ca_is_served_by_a_new_process_and_revocation_alone_restarts_nothing(
    deployed: Deployed,
) -> None:
    """arrange: in service. act: the provider revokes (CA change), then issues with a new CA.

    assert: the revocation leaves the process (Falco keeps posting); the new certificate is
    served by a new process, verified by the new CA that is now published.
    """
    unit = deployed.unit
    pid = deployed.pebble.sidekick_pid()
    old_serial = served_serial(deployed, deployed.ca.cert_pem)
    provided = json.loads(unit.relation("certificates").remote_app_data["certificates"])
    revoked = dataclasses.replace(
        unit.relation("certificates"),
        remote_app_data={"certificates": json.dumps([{**e, "revoked": True} for e in provided])},
    )

    unit.run(unit.ctx.on.relation_changed(revoked, remote_unit=0), unit.replace_relation(revoked))
    assert deployed.pebble.sidekick_pid() == pid
    assert served_serial(deployed, deployed.ca.cert_pem) == old_serial

    new_ca = make_ca("Rotated CA")
    answered = states.issue_certificates(unit.relation("certificates"), new_ca)
    unit.run(
        unit.ctx.on.relation_changed(answered, remote_unit=0), unit.replace_relation(answered)
    )

    assert deployed.pebble.sidekick_pid() != pid
    url, published_ca = unit.published()
    assert published_ca is not None
    assert published_ca.strip() == new_ca.cert_pem.strip()
    assert served_serial(deployed, published_ca) != old_serial
    assert post(url, json.dumps(falco_alert("After rotation")).encode(), published_ca)[0] == 200
