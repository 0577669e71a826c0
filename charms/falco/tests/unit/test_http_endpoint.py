"""State-transition tests of http-endpoint: where alerts go and which CA Falco trusts."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import yaml
from charm import FalcoCharm
from falco_rig import SIDEKICK, SIDEKICK_URL, sidekick_relation
from machine import FakeMachine, changed_files
from ops import testing

CA_FILE = "etc/juju-falco/http-endpoint-ca.pem"


def http_output(machine: FakeMachine) -> dict[str, Any]:
    config = yaml.safe_load((machine.root / "etc/juju-falco/falco.yaml").read_text())
    result: dict[str, Any] = config["http_output"]
    return result


def test_related_sidekick_with_ca_gets_alerts_verified_against_that_ca(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> None:
    """arrange: Falco running locally. act: relation-changed with URL and CA. assert."""
    out = ctx.run(ctx.on.install(), state)
    machine.clear_calls()
    relation = sidekick_relation(ca_pem=ca_pem)

    out = ctx.run(
        ctx.on.relation_changed(relation), dataclasses.replace(out, relations={relation})
    )

    assert out.unit_status == testing.ActiveStatus()
    output = http_output(machine)
    assert output["enabled"] is True
    assert output["url"] == SIDEKICK_URL
    assert output["insecure"] is False
    assert output["ca_cert"] == str(machine.root / CA_FILE)
    assert output["max_consecutive_timeouts"] == 5
    assert (machine.root / CA_FILE).read_text() == ca_pem.strip() + "\n"
    assert machine.restarts() == 1


def test_new_url_restarts_once_and_rewrites_only_falco_yaml(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> None:
    """arrange: alerts go to the sidekick. act: it publishes a new URL, same CA. assert.

    One restart, and the unit file and the CA, unchanged, are not written again.
    """
    relation = sidekick_relation(ca_pem=ca_pem)
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, relations={relation}))
    machine.clear_calls()
    before = machine.files()
    moved = sidekick_relation("https://sidekick.example:2901/", ca_pem=ca_pem)

    ctx.run(ctx.on.relation_changed(moved), dataclasses.replace(out, relations={moved}))

    after = machine.files()
    # The charm's record of what these inputs converged to moves with them (steady.py).
    assert sorted(k for k in {*before, *after} if before.get(k) != after.get(k)) == [
        "etc/juju-falco/falco.yaml",
        "var/lib/juju-falco/steady.json",
    ]
    assert http_output(machine)["url"] == "https://sidekick.example:2901/"
    assert machine.restarts() == 1


def test_sidekick_without_ca_uses_the_system_trust_store(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: provider publishes only a URL (older sidekick). act: relate. assert."""
    relation = sidekick_relation()

    ctx.run(ctx.on.install(), dataclasses.replace(state, relations={relation}))

    output = http_output(machine)
    assert output["ca_cert"] == ""
    assert output["ca_path"] == str(machine.root / "etc/ssl/certs")
    assert not (machine.root / CA_FILE).exists()


def test_joined_before_data_waits_and_changes_nothing(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco running. act: relation-joined, no data yet. assert: Waiting, no work."""
    out = ctx.run(ctx.on.install(), state)
    machine.clear_calls()
    before = machine.files()
    relation = testing.Relation("http-endpoint", remote_app_name=SIDEKICK)

    out = ctx.run(ctx.on.relation_joined(relation), dataclasses.replace(out, relations={relation}))

    assert out.unit_status == testing.WaitingStatus(f"waiting for {SIDEKICK} to publish its URL")
    assert changed_files(before, machine.files()) == 0
    assert machine.restarts() == 0


def test_broken_relation_returns_to_local_alerts_with_one_restart(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> None:
    """arrange: alerts go to the sidekick. act: relation-broken. assert: local, CA gone."""
    relation = sidekick_relation(ca_pem=ca_pem)
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, relations={relation}))
    machine.clear_calls()

    out = ctx.run(ctx.on.relation_broken(relation), out)

    assert http_output(machine) == {"enabled": False}
    assert not (machine.root / CA_FILE).exists()
    assert machine.restarts() == 1
    assert out.unit_status == testing.ActiveStatus(
        "alerts stay on this host: integrate http-endpoint"
    )


def test_unchanged_relation_data_is_a_no_op(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> None:
    """arrange: alerts go to the sidekick. act: relation-changed, same data. assert: no work."""
    relation = sidekick_relation(ca_pem=ca_pem)
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, relations={relation}))
    machine.clear_calls()
    before = machine.files()

    ctx.run(ctx.on.relation_changed(relation), out)

    assert changed_files(before, machine.files()) == 0
    assert machine.restarts() == 0


def test_malformed_data_keeps_the_last_good_destination(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> None:
    """arrange: alerts go to the sidekick. act: the provider publishes garbage. assert."""
    relation = sidekick_relation(ca_pem=ca_pem)
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, relations={relation}))
    machine.clear_calls()
    before = machine.files()
    broken = dataclasses.replace(
        relation, remote_app_data={"url": json.dumps("ftp://nowhere"), "ca_cert": '"x"'}
    )

    out = ctx.run(ctx.on.relation_changed(broken), dataclasses.replace(out, relations={broken}))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(
        f"http-endpoint data ignored (keeping the previous destination): {SIDEKICK}: "
    )
    assert http_output(machine)["url"] == SIDEKICK_URL
    assert changed_files(before, machine.files()) == 0
    assert machine.restarts() == 0


def test_malformed_data_from_the_start_keeps_alerts_local(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: the provider's first data is garbage. act: install. assert: local, Blocked."""
    relation = testing.Relation(
        "http-endpoint", remote_app_name=SIDEKICK, remote_app_data={"url": "not json"}
    )

    out = ctx.run(ctx.on.install(), dataclasses.replace(state, relations={relation}))

    assert http_output(machine) == {"enabled": False}
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("http-endpoint data ignored (alerts stay local)")


def test_a_huge_url_is_ignored_and_quoted_short(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> None:
    """arrange: alerts go to the sidekick. act: it publishes a 20 kB URL. assert.

    Found by fuzzing: the status quoted the whole URL. It is ignored (nothing written, no
    restart) and the status stays one short line.
    """
    relation = sidekick_relation(ca_pem=ca_pem)
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, relations={relation}))
    machine.clear_calls()
    before = machine.files()
    huge = sidekick_relation("https://" + "0" * 20_000, ca_pem=ca_pem)

    out = ctx.run(ctx.on.relation_changed(huge), dataclasses.replace(out, relations={huge}))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(
        f"http-endpoint data ignored (keeping the previous destination): {SIDEKICK}: not an"
    )
    assert len(out.unit_status.message) <= 300
    assert changed_files(before, machine.files()) == 0
    assert machine.restarts() == 0


def test_a_related_ca_hides_the_machines_trust_store_from_falco(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> None:
    """arrange: Falco running, no CA. act: the sidekick publishes a CA, then withdraws it.

    assert: with the CA, the unit hides the machine's trust store (libcurl would read it
    next to ca_cert); without, it does not; each change is one restart.
    """
    directive = f"TemporaryFileSystem={machine.root / 'etc/ssl/certs'}:ro"
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, relations={sidekick_relation()}))
    unit = machine.root / "etc/systemd/system/juju-falco.service"
    assert directive not in unit.read_text()

    for ca, hidden in ((ca_pem, True), (None, False)):
        machine.clear_calls()
        relation = sidekick_relation(ca_pem=ca)
        out = ctx.run(
            ctx.on.relation_changed(relation), dataclasses.replace(out, relations={relation})
        )
        assert (directive in unit.read_text()) is hidden
        assert machine.restarts() == 1
        assert machine.tool_state("systemd").get("stale_starts") is None
