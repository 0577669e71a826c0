"""Fault tests: what breaks around a Falco unit in service, and what the charm does about it.

Each test brings a unit into service, breaks one thing the way it breaks in production (a
secret removed or rotated, a refresh with a new or a broken payload, the git host down at a
scheduled sync, the sidekick's CA changed or withdrawn, Falco dead or failed, the charm's
files deleted, the sidekick or the collector gone), then checks two things on every hook:
nothing that worked is lost (the rules and the destination Falco runs with, the service),
and the status tells the truth. Counts are exact: a repair restarts or reloads once, an idle
hook afterwards does nothing.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from charm import FalcoCharm
from falco_rig import DEPLOY_KEY, REPO_HOST, SIDEKICK, FakeClock, Rig, sidekick_relation
from git_repos import rule
from machine import FakeMachine, build_payload
from ops import testing
from tls_material import make_ca

CONFIG = "etc/juju-falco/falco.yaml"
UNIT_FILE = "etc/systemd/system/juju-falco.service"
CA_FILE = "etc/juju-falco/http-endpoint-ca.pem"
LOGROTATE = "etc/logrotate.d/juju-falco"
LOCAL_ONLY = testing.ActiveStatus("alerts stay on this host: integrate http-endpoint")
NOT_SYNCED = "custom-config-repository not synced: "
JOURNAL = "see `journalctl -u juju-falco`"
HTTPS_URL = f"https://{REPO_HOST}/org/falco-rules.git"
OTHER_DEPLOY_KEY = DEPLOY_KEY.replace("b3Bl", "cm90")


@dataclass
class Hook:
    """What one dispatch did on the machine."""

    out: testing.State
    changed: list[str]
    restarts: int
    reloads: int
    network_ops: int
    falco_calls: int

    @property
    def idle(self) -> bool:
        """Nothing written, started or fetched."""
        return (self.changed, self.restarts, self.reloads, self.network_ops) == ([], 0, 0, 0)


def dispatch(
    ctx: testing.Context[FalcoCharm], machine: FakeMachine, event: Any, state: testing.State
) -> Hook:
    """Run ``event`` on ``state``; return what it did on the machine."""
    machine.clear_calls()
    before = machine.files()
    out = ctx.run(event, state)
    after = machine.files()
    changed = sorted(key for key in {*before, *after} if before.get(key) != after.get(key))
    restarts = machine.restarts()
    reloaded = CONFIG in changed and restarts == 0 and machine.unit()["active"]
    return Hook(
        out,
        changed,
        restarts,
        int(reloaded),
        machine.git_network_ops(),
        len(machine.calls("falco")),
    )


def rendered(machine: FakeMachine) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((machine.root / CONFIG).read_text())
    return data


def loaded_rules(machine: FakeMachine) -> list[str]:
    """Return the names of the custom rules Falco loads (defaults left out)."""
    names = []
    # After the default rules and the self-test rule.
    for entry in rendered(machine)["rules_files"][2:]:
        path = Path(entry)
        files = sorted(path.iterdir()) if path.is_dir() else [path]
        for file in files:
            names += [item["rule"] for item in yaml.safe_load(file.read_text()) or []]
    return names


def blocked(hook: Hook) -> str:
    assert isinstance(hook.out.unit_status, testing.BlockedStatus), hook.out.unit_status
    return hook.out.unit_status.message


# -- secrets ---------------------------------------------------------------------------------


def test_deploy_key_secret_removed_keeps_the_rules_and_says_how_to_fix(rig: Rig) -> None:
    """arrange: rules from a branch over ssh. act: the key secret is removed, then back.

    assert: the due sync fails without reaching the network, the rules that run stay, the
    status names the secret and the command; it is not retried before the next due time;
    when the secret is readable again the next due sync brings the new rules (one reload).
    """
    out = rig.install("main")
    assert loaded_rules(rig.machine) == ["Custom rule one"]
    rig.repo.commit({"rules.d/20-more.yaml": rule("Custom rule two")})
    gone = dataclasses.replace(out, secrets=frozenset())

    rig.clock.advance(15)
    hook = dispatch(rig.ctx, rig.machine, rig.ctx.on.update_status(), gone)

    secret_id = rig.deploy_key.id
    assert blocked(hook) == (
        f"{NOT_SYNCED}cannot read secret {secret_id} (custom-config-repo-ssh-key): check that "
        f"it exists and run `juju grant-secret {secret_id} falco`"
    )
    assert (hook.network_ops, hook.restarts, hook.reloads) == (0, 0, 0)
    assert loaded_rules(rig.machine) == ["Custom rule one"]
    rig.clock.advance(5)
    again = dispatch(rig.ctx, rig.machine, rig.ctx.on.update_status(), hook.out)
    assert again.idle
    assert blocked(again).startswith(NOT_SYNCED)

    back = dataclasses.replace(again.out, secrets={rig.deploy_key})
    rig.clock.advance(10)
    healed = dispatch(rig.ctx, rig.machine, rig.ctx.on.update_status(), back)

    assert (healed.network_ops, healed.restarts, healed.reloads) == (1, 0, 1)
    assert loaded_rules(rig.machine) == ["Custom rule one", "Custom rule two"]
    assert healed.out.unit_status == LOCAL_ONLY


def test_deploy_key_rotated_in_juju_before_the_server_then_on_both(rig: Rig) -> None:
    """arrange: rules over ssh. act: new key revision the server refuses, then accepts.

    assert: secret-changed syncs at once; refused, the rules stay and the status says the
    server refused the key; once the server has it, refresh-rules syncs with no reload (the
    rules did not change) and the status is clear again.
    """
    out = rig.install("main")
    rotated = dataclasses.replace(
        rig.deploy_key,
        tracked_content={"value": OTHER_DEPLOY_KEY},
        latest_content={"value": OTHER_DEPLOY_KEY},
    )
    state = dataclasses.replace(out, secrets={rotated})

    hook = dispatch(rig.ctx, rig.machine, rig.ctx.on.secret_changed(rotated), state)

    assert hook.network_ops == 1
    assert blocked(hook) == (
        f"{NOT_SYNCED}{REPO_HOST}:22 refused the key in custom-config-repo-ssh-key: add its "
        "public key to the repository (deploy key) or fix the secret"
    )
    assert (hook.restarts, hook.reloads) == (0, 0)
    assert loaded_rules(rig.machine) == ["Custom rule one"]

    rig.machine.set_network(deploy_keys={REPO_HOST: OTHER_DEPLOY_KEY})
    action = rig.ctx.on.action("refresh-rules")
    healed = dispatch(rig.ctx, rig.machine, action, hook.out)

    assert (healed.network_ops, healed.restarts, healed.reloads) == (1, 0, 0)
    assert rig.ctx.action_results is not None
    assert rig.ctx.action_results["validation"] == "ok"
    assert healed.out.unit_status == LOCAL_ONLY


def test_token_secret_removed_then_rotated(rig: Rig) -> None:
    """arrange: rules over https with a token. act: the token is removed, then rotated.

    assert: removed, the sync fails, the rules stay, the status says which secret; a new
    token revision syncs at once and the unit is clear again, without a reload.
    """
    rig.machine.set_network(tokens={REPO_HOST: "x-access-token:first-token"})
    rig.machine.serve(HTTPS_URL, rig.repo.bare)
    token = testing.Secret(tracked_content={"value": "first-token"})
    config = {
        "custom-config-repository": f"{HTTPS_URL}@main",
        "custom-config-repo-token": token.id,
    }
    out = rig.ctx.run(
        rig.ctx.on.install(), dataclasses.replace(rig.state, config=config, secrets={token})
    )
    assert out.unit_status == LOCAL_ONLY
    rig.clock.advance(15)

    removed = dispatch(
        rig.ctx, rig.machine, rig.ctx.on.update_status(), dataclasses.replace(out, secrets=set())
    )

    assert blocked(removed).startswith(f"{NOT_SYNCED}cannot read secret {token.id}")
    assert (removed.restarts, removed.reloads) == (0, 0)
    assert loaded_rules(rig.machine) == ["Custom rule one"]

    rig.machine.set_network(tokens={REPO_HOST: "x-access-token:second-token"})
    rotated = dataclasses.replace(token, latest_content={"value": "second-token"})
    state = dataclasses.replace(removed.out, secrets={rotated})
    healed = dispatch(rig.ctx, rig.machine, rig.ctx.on.secret_changed(rotated), state)

    assert (healed.network_ops, healed.restarts, healed.reloads) == (1, 0, 0)
    assert healed.out.unit_status == LOCAL_ONLY


# -- upgrade-charm -----------------------------------------------------------------------------


@pytest.fixture(name="in_service")
def in_service_fixture(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, ca_pem: str
) -> testing.State:
    """A unit sending alerts to the sidekick over verified TLS, with inline custom rules."""
    related = dataclasses.replace(
        state,
        config={"custom-rules": rule("Inline rule")},
        relations={sidekick_relation(ca_pem=ca_pem)},
    )
    out = ctx.run(ctx.on.install(), related)
    assert out.unit_status == testing.ActiveStatus()
    return out


def test_upgrade_with_a_new_payload_restarts_once_and_keeps_everything_else(
    ctx: testing.Context[FalcoCharm],
    machine: FakeMachine,
    charm_root: Path,
    in_service: testing.State,
) -> None:
    """arrange: in service. act: refresh to a charm with Falco 0.44.2. assert.

    One restart onto the new binary; the destination, its CA and the custom rules stay; the
    old payload is deleted; the workload version says 0.44.2.
    """
    before = rendered(machine)
    build_payload(charm_root / "payload", version="0.44.2")

    hook = dispatch(ctx, machine, ctx.on.upgrade_charm(), in_service)

    assert (hook.restarts, hook.reloads) == (1, 0)
    after = rendered(machine)
    assert after["http_output"] == before["http_output"]
    assert loaded_rules(machine) == ["Inline rule"]
    assert len(list((machine.root / "opt/juju-falco").iterdir())) == 1
    assert hook.out.workload_version == "0.44.2"
    assert hook.out.unit_status == testing.ActiveStatus()
    assert dispatch(ctx, machine, ctx.on.update_status(), hook.out).idle


def test_upgrade_with_a_broken_payload_keeps_falco_running_then_a_good_one_heals(
    ctx: testing.Context[FalcoCharm],
    machine: FakeMachine,
    charm_root: Path,
    in_service: testing.State,
) -> None:
    """arrange: in service. act: refresh to a charm whose Falco cannot run, then a good one.

    assert: the broken tarball is refused, Falco keeps running its files (nothing but the
    charm's record written), the status blames the bundled tarball, idle hooks do not try it
    again; the next good refresh restarts once and clears the status.
    """
    config_before = (machine.root / CONFIG).read_text()
    build_payload(charm_root / "payload", version="0.44.2", behaviour="version-fails")

    broken = dispatch(ctx, machine, ctx.on.upgrade_charm(), in_service)

    assert blocked(broken).startswith(
        "the charm's bundled Falco tarball refused: falco --version failed"
    )
    assert blocked(broken).endswith("(attach a working 'falco' resource)")
    assert (broken.restarts, broken.reloads) == (0, 0)
    assert broken.changed == ["var/lib/juju-falco/payload-rejected.json"]
    assert (machine.root / CONFIG).read_text() == config_before
    assert machine.unit()["active"] is True
    idle = dispatch(ctx, machine, ctx.on.update_status(), broken.out)
    assert idle.idle and idle.falco_calls == 0
    assert blocked(idle) == blocked(broken)

    build_payload(charm_root / "payload", version="0.44.3")
    healed = dispatch(ctx, machine, ctx.on.upgrade_charm(), idle.out)

    assert (healed.restarts, healed.reloads) == (1, 0)
    assert healed.out.unit_status == testing.ActiveStatus()
    assert healed.out.workload_version == "0.44.3"


def test_upgrade_to_a_payload_refusing_the_config_keeps_the_running_falco(
    ctx: testing.Context[FalcoCharm],
    machine: FakeMachine,
    charm_root: Path,
    in_service: testing.State,
) -> None:
    """arrange: in service. act: refresh to a Falco that refuses the rendered config. assert.

    The new binary answers --version but its --dry-run refuses the config: falco.yaml and
    the unit stay on the running binary, nothing restarts, the status quotes Falco, and the
    previous payload is kept (Falco still runs from it).
    """
    config_before = (machine.root / CONFIG).read_text()
    build_payload(charm_root / "payload", version="0.44.2", behaviour="dry-run-fails")

    hook = dispatch(ctx, machine, ctx.on.upgrade_charm(), in_service)

    assert blocked(hook).startswith("falco --dry-run rejected the rendered falco.yaml:")
    assert (hook.restarts, hook.reloads) == (0, 0)
    assert (machine.root / CONFIG).read_text() == config_before
    assert len(list((machine.root / "opt/juju-falco").iterdir())) == 2
    idle = dispatch(ctx, machine, ctx.on.update_status(), hook.out)
    assert idle.idle and idle.falco_calls == 0
    assert blocked(idle) == blocked(hook)


# -- the git host ------------------------------------------------------------------------------


def test_git_host_down_at_a_scheduled_sync(rig: Rig) -> None:
    """arrange: rules from a branch; a new commit; the host goes down. act: syncs come due.

    assert: the due sync fails once (one connection attempt), the rules stay, the status
    says the host cannot be reached; no retry before the interval; the host back, the next
    due sync fetches the new rules with one reload and the status clears.
    """
    out = rig.install("main")
    rig.repo.commit({"rules.d/20-more.yaml": rule("Custom rule two")})
    rig.machine.set_network(down=[REPO_HOST])

    rig.clock.advance(15)
    down = dispatch(rig.ctx, rig.machine, rig.ctx.on.update_status(), out)

    assert blocked(down) == f"{NOT_SYNCED}cannot reach {REPO_HOST}:22: connection refused"
    assert (down.network_ops, down.restarts, down.reloads) == (1, 0, 0)
    assert loaded_rules(rig.machine) == ["Custom rule one"]
    rig.clock.advance(5)
    assert dispatch(rig.ctx, rig.machine, rig.ctx.on.update_status(), down.out).idle

    rig.machine.set_network(down=[])
    rig.clock.advance(10)
    back = dispatch(rig.ctx, rig.machine, rig.ctx.on.update_status(), down.out)

    assert (back.network_ops, back.restarts, back.reloads) == (1, 0, 1)
    assert loaded_rules(rig.machine) == ["Custom rule one", "Custom rule two"]
    assert back.out.unit_status == LOCAL_ONLY


# -- the sidekick's CA -------------------------------------------------------------------------


def test_sidekick_ca_changed_withdrawn_garbled_and_restored(
    ctx: testing.Context[FalcoCharm], machine: FakeMachine, in_service: testing.State, ca_pem: str
) -> None:
    """arrange: alerts verified with the sidekick's CA. act: CA changed, garbled, gone, back.

    assert: each usable change restarts Falco once with the CA it names (with none, the
    system trust store: the sidekick sits behind a publicly trusted certificate); a garbled
    CA changes nothing and the status says the data was ignored.
    """
    ca_file = machine.root / CA_FILE
    steps: list[tuple[str | None, int, str | None]] = [
        (make_ca("Renewed sidekick CA").cert_pem, 1, "renewed"),
        ("-----BEGIN CERTIFICATE-----\nrevoked\n-----END CERTIFICATE-----\n", 0, None),
        (None, 1, "system"),
        (ca_pem, 1, "original"),
    ]
    out = in_service
    renewed = steps[0][0]
    for ca, restarts, trusted in steps:
        (current,) = out.relations
        data = {"url": current.remote_app_data["url"]}
        relation = dataclasses.replace(
            current, remote_app_data=data | ({"ca_cert": json.dumps(ca)} if ca else {})
        )
        state = dataclasses.replace(out, relations={relation})
        hook = dispatch(ctx, machine, ctx.on.relation_changed(relation), state)
        out = hook.out

        assert (hook.restarts, hook.reloads) == (restarts, 0), ca
        ca_cert = rendered(machine)["http_output"]["ca_cert"]
        if trusted is None:
            assert blocked(hook).startswith(
                "http-endpoint data ignored (keeping the previous destination): "
                f"{SIDEKICK}: 'ca_cert': not a PEM certificate"
            )
            assert ca_file.read_text().strip() == (renewed or "").strip()
        elif trusted == "system":
            assert ca_cert == "" and not ca_file.exists()
            assert out.unit_status == testing.ActiveStatus()
        else:
            assert ca_cert == str(ca_file)
            assert ca_file.read_text().strip() == (ca or "").strip()
            assert out.unit_status == testing.ActiveStatus()


# -- the service -------------------------------------------------------------------------------


def test_falco_stopped_behind_the_charms_back_is_started_by_the_next_hook(
    ctx: testing.Context[FalcoCharm], machine: FakeMachine, in_service: testing.State
) -> None:
    """arrange: in service. act: an administrator (or an attacker) stops Falco; hooks run.

    assert: the first hook, whatever it is, starts Falco once with the files it had; the
    hooks after it do nothing but forget the count of starts.
    """
    machine.stop_by_hand()
    before = rendered(machine)

    hook = dispatch(ctx, machine, ctx.on.update_status(), in_service)

    assert (hook.restarts, hook.reloads) == (1, 0)
    assert hook.changed == ["var/lib/juju-falco/start-attempts.json"]
    assert rendered(machine) == before
    assert machine.unit()["active"] is True
    assert hook.out.unit_status == testing.ActiveStatus()
    forget = dispatch(ctx, machine, ctx.on.config_changed(), hook.out)
    assert (forget.restarts, forget.changed) == (0, ["var/lib/juju-falco/start-attempts.json"])
    assert dispatch(ctx, machine, ctx.on.update_status(), forget.out).idle


def test_falco_failing_by_itself_is_started_again_with_a_bounded_back_off(
    ctx: testing.Context[FalcoCharm],
    machine: FakeMachine,
    in_service: testing.State,
    clock: FakeClock,
) -> None:
    """arrange: in service; Falco now exits at every start. act: hooks, a change, a fix.

    12 update-status 5 minutes apart (systemd gives up on Falco between them), then a config
    change, then the cause goes away. assert: started at hooks 1, 2, 3, then 5 and 9 (after
    10 and 20 minutes), each time clearing systemd's failed state; the status says failed,
    how many starts and when the next comes; a config change starts it at once; once it
    runs the count is forgotten.
    """
    machine.set_knob("systemd", "fail_start", True)
    machine.crash()
    out, starts = in_service, []
    for _ in range(12):
        clock.advance(5)
        hook = dispatch(ctx, machine, ctx.on.update_status(), out)
        out = hook.out
        starts.append((hook.restarts, machine.systemctl_verbs().count("reset-failed")))
        assert blocked(hook).startswith("Falco is ")
        machine.crash()  # systemd's own restarts until its start limit, within 5 minutes

    started = [(1, 1), (1, 1), (1, 1), (0, 0), (1, 1), (0, 0), (0, 0), (0, 0), (1, 1)]
    assert starts == [*started, (0, 0), (0, 0), (0, 0)]
    next_start = time.strftime("%H:%M UTC", time.gmtime(clock.now - 15 * 60 + 40 * 60))
    assert blocked(hook) == (
        f"Falco is failed after 5 starts, next start at {next_start} or on a config change: "
        f"{JOURNAL}"
    )

    forced = dispatch(ctx, machine, ctx.on.config_changed(), out)
    assert forced.restarts == 1
    assert machine.systemctl_verbs()[:3] == ["show", "reset-failed", "restart"]

    machine.set_knob("systemd", "fail_start", False)
    machine.crash()
    healed = dispatch(ctx, machine, ctx.on.config_changed(), forced.out)
    assert healed.restarts == 1
    assert machine.unit()["active"] is True
    assert healed.out.unit_status == testing.ActiveStatus()
    quiet = dispatch(ctx, machine, ctx.on.update_status(), healed.out)
    assert (quiet.restarts, quiet.changed) == (0, ["var/lib/juju-falco/start-attempts.json"])
    assert dispatch(ctx, machine, ctx.on.update_status(), quiet.out).idle


# -- files deleted behind the charm's back -----------------------------------------------------


@pytest.mark.parametrize(
    ("lost", "restarts", "reloads"),
    [
        (CONFIG, 1, 0),
        (UNIT_FILE, 1, 0),
        (CA_FILE, 1, 0),
        (LOGROTATE, 0, 0),
        ("etc/juju-falco/rules", 0, 1),
        ("opt/juju-falco", 0, 0),
        ("var/lib/juju-falco", 0, 0),
    ],
)
def test_deleted_files_are_restored_by_the_next_hook(
    ctx: testing.Context[FalcoCharm],
    machine: FakeMachine,
    in_service: testing.State,
    lost: str,
    restarts: int,
    reloads: int,
) -> None:
    """arrange: in service and idle; someone deletes a file of the charm's. act: update-status.

    assert: the first hook puts it back with the restart or reload it needs and nothing
    more; the second does nothing. Deleted rules come back in a new directory that
    falco.yaml then names (rule_store: Falco does not see a file recreated where it
    watched one), so only that path differs. The unit is idle first (idle_hooks: its
    update-status looks at the machine, not at every input).
    """
    settled = dispatch(ctx, machine, ctx.on.update_status(), in_service)
    in_service = settled.out
    assert dispatch(ctx, machine, ctx.on.update_status(), in_service).idle
    before = rendered(machine)
    target = machine.root / lost
    if target.is_dir():
        for child in sorted(target.rglob("*"), reverse=True):
            child.rmdir() if child.is_dir() and not child.is_symlink() else child.unlink()
        target.rmdir()
    else:
        target.unlink()

    hook = dispatch(ctx, machine, ctx.on.update_status(), in_service)

    assert target.exists()
    assert (hook.restarts, hook.reloads) == (restarts, reloads)
    after = rendered(machine)
    assert after["rules_files"][0] == before["rules_files"][0]
    assert {**after, "rules_files": None} == {**before, "rules_files": None}
    assert loaded_rules(machine) == ["Inline rule"]
    assert hook.out.unit_status == testing.ActiveStatus()
    assert dispatch(ctx, machine, ctx.on.update_status(), hook.out).idle


def test_config_edited_by_hand_on_an_idle_unit_is_put_back_by_the_next_hook(
    ctx: testing.Context[FalcoCharm], machine: FakeMachine, in_service: testing.State
) -> None:
    """arrange: in service and idle; falco.yaml edited in place. act: update-status twice.

    assert: the first hook writes the charm's falco.yaml back; the second does nothing.
    """
    settled = dispatch(ctx, machine, ctx.on.update_status(), in_service).out
    assert dispatch(ctx, machine, ctx.on.update_status(), settled).idle
    config = machine.root / CONFIG
    good = config.read_text()
    with config.open("a") as edited:
        edited.write("# edited by hand\n")

    hook = dispatch(ctx, machine, ctx.on.update_status(), settled)

    assert config.read_text() == good
    assert hook.out.unit_status == testing.ActiveStatus()
    assert dispatch(ctx, machine, ctx.on.update_status(), hook.out).idle


# -- the sidekick and the collector gone -------------------------------------------------------


def test_collector_and_sidekick_units_gone_change_nothing_but_the_app_gone_is_said(
    ctx: testing.Context[FalcoCharm], machine: FakeMachine, in_service: testing.State
) -> None:
    """arrange: in service, with a collector. act: the collector, the sidekick's units go.

    assert: losing the collector or the sidekick's units touches nothing (Falco keeps detecting and
    posting where it did); losing the sidekick application restarts Falco once to keep
    alerts on the host only, and the status says so.
    """
    collector = testing.Relation("cos-agent", remote_app_name="opentelemetry-collector")
    out = ctx.run(
        ctx.on.relation_joined(collector, remote_unit=0),
        dataclasses.replace(in_service, relations={*in_service.relations, collector}),
    )
    (collector,) = (r for r in out.relations if r.endpoint == "cos-agent")
    (sidekick,) = (r for r in out.relations if r.endpoint == "http-endpoint")

    gone = dispatch(ctx, machine, ctx.on.relation_broken(collector), out)
    assert gone.idle
    assert gone.out.unit_status == testing.ActiveStatus()
    without = dataclasses.replace(gone.out, relations={sidekick})
    departed = dispatch(
        ctx,
        machine,
        ctx.on.relation_departed(sidekick, remote_unit=0, departing_unit=0),
        without,
    )
    assert departed.idle
    assert departed.out.unit_status == testing.ActiveStatus()

    broken = dispatch(ctx, machine, ctx.on.relation_broken(sidekick), departed.out)

    assert (broken.restarts, broken.reloads) == (1, 0)
    assert rendered(machine)["http_output"] == {"enabled": False}
    assert rendered(machine)["file_output"]["enabled"] is True
    assert broken.out.unit_status == LOCAL_ONLY
