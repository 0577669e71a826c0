"""Syncing the custom config repository: trust, secrets, schedule, faults, refresh-rules."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shlex
from pathlib import Path
from typing import Any

import pytest
from charm import FalcoCharm
from falco_rig import DEPLOY_KEY, HOST_KEY, REPO_HOST, FakeClock, Rig, repo_config
from git_repos import MISSING_OUTPUT, RulesRepo, rule
from machine import FakeMachine, changed_files
from ops import testing
from test_custom_rules import CONFIG, LOCAL_ONLY, loaded

OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOZ+2qGzSgZqJ3rWl1DcL1bDkDE9kfD5HPfrm6wHiV+m"
HTTPS_URL = f"https://{REPO_HOST}/org/falco-rules.git"


def start(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    config: dict[str, Any],
    secrets: tuple[testing.Secret, ...] = (),
) -> testing.State:
    return ctx.run(
        ctx.on.install(), dataclasses.replace(state, config=config, secrets=set(secrets))
    )


def running_payload(charm_root: Path) -> dict[str, str]:
    """What refresh-rules says runs: the Falco version, the bundled tarball's digest."""
    tarball = (charm_root / "payload/falco.tar.gz").read_bytes()
    return {"falco-version": "0.44.1", "payload-sha256": hashlib.sha256(tarball).hexdigest()}


def blocked(out: testing.State) -> str:
    assert isinstance(out.unit_status, testing.BlockedStatus), out.unit_status
    return out.unit_status.message


def test_a_tag_is_fetched_once_then_never_again(rig: Rig) -> None:
    """arrange: a tag synced at install. act: a day of update-status. assert: no network."""
    out = rig.install("v1")
    assert rig.machine.git_network_ops() == 1
    rig.machine.clear_calls()
    before = rig.machine.files()

    for _ in range(20):
        rig.clock.advance(60)
        out = rig.ctx.run(rig.ctx.on.update_status(), out)

    assert rig.machine.git_network_ops() == 0
    assert changed_files(before, rig.machine.files()) == 0
    assert out.unit_status == LOCAL_ONLY


def test_a_full_commit_id_is_pinned_like_a_tag(rig: Rig) -> None:
    """arrange: a commit id. act: install, an hour later update-status. assert: one fetch."""
    commit = rig.repo.head()
    rig.repo.commit({"rules.d/10-custom.yaml": rule("Later")})

    out = rig.install(commit)
    rig.clock.advance(60)
    rig.ctx.run(rig.ctx.on.update_status(), out)

    assert rig.machine.git_network_ops() == 1
    assert "Custom rule one" in loaded(rig.machine)["rules.d/10-custom.yaml"]


def test_git_runs_with_pinned_trust_a_private_home_and_a_short_lived_key(rig: Rig) -> None:
    """arrange: an ssh repository. act: install. assert: how git and ssh were run."""
    rig.install()

    fetch = next(call for call in rig.machine.git_calls() if "fetch" in call["argv"])
    assert fetch["argv"][-3:] == ["--no-tags", f"ssh://git@{REPO_HOST}/org/falco-rules.git", "v1"]
    assert fetch["argv"][fetch["argv"].index("--depth") :][:2] == ["--depth", "1"]
    ssh = shlex.split(fetch["env"]["GIT_SSH_COMMAND"])
    private = rig.machine.root / "var/lib/juju-falco/custom-config-repo"
    assert ssh[:3] == ["ssh", "-F", "/dev/null"]
    for option in (
        "StrictHostKeyChecking=yes",
        "IdentitiesOnly=yes",
        "BatchMode=yes",
        f"UserKnownHostsFile={private}/ssh/known_hosts",
        "GlobalKnownHostsFile=/dev/null",
        f"IdentityFile={private}/ssh/deploy_key",
    ):
        assert option in ssh
    assert fetch["env"]["HOME"] == str(private / "home")
    assert fetch["env"]["GIT_CONFIG_NOSYSTEM"] == "1"
    assert fetch["env"]["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert fetch["env"]["GIT_ALLOW_PROTOCOL"] == "ssh"
    # The key existed, private, while git ran; it is gone afterwards.
    assert fetch["key_mode"] == "0o600"
    assert not (private / "ssh/deploy_key").exists()
    assert (private / "ssh/known_hosts").read_text() == f"{REPO_HOST} {HOST_KEY}\n"
    assert (private / "ssh/known_hosts").stat().st_mode & 0o777 == 0o600
    for directory in (private, private / "ssh", private / "home"):
        assert directory.stat().st_mode & 0o777 == 0o700
    assert list((private / "home").iterdir()) == []
    assert not any(call["secret_in_argv"] for call in rig.machine.git_calls())


def test_the_key_never_shows_in_logs_status_or_action_output(
    rig: Rig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """arrange: debug logging. act: install, refresh-rules, a refused key. assert: no key."""
    caplog.set_level(logging.DEBUG)
    out = rig.install()
    out = rig.ctx.run(rig.ctx.on.action("refresh-rules"), out)
    results = dict(rig.ctx.action_results or {})
    rig.machine.set_network(deploy_keys={REPO_HOST: "another key"})
    with pytest.raises(testing.ActionFailed) as failure:
        rig.ctx.run(rig.ctx.on.action("refresh-rules"), out)

    key_material = DEPLOY_KEY.splitlines()[1]
    assert key_material in str(rig.deploy_key.tracked_content)  # the test could see it
    outputs = [
        caplog.text,
        str(results),
        failure.value.message,
        str(failure.value.state.unit_status),
        str(rig.ctx.action_results),
        *(str(path.read_bytes()) for path in rig.machine.root.rglob("*") if path.is_file()),
    ]
    assert all(key_material not in text for text in outputs)
    assert "refused the key" in failure.value.message


def test_ssh_without_a_pinned_host_key_is_refused_without_connecting(rig: Rig) -> None:
    """arrange: no known_hosts (e.g. upgraded from the prior charm). act: install. assert."""
    config = rig.config(**{"custom-config-repo-known-hosts": ""})

    out = rig.start(config)

    assert rig.machine.git_network_ops() == 0
    assert blocked(out) == (
        "custom-config-repository not synced: custom-config-repo-known-hosts is empty: pin the "
        f"key of {REPO_HOST}: get it with `ssh-keyscan -t ed25519 {REPO_HOST}`, check it "
        "out-of-band against the server's fingerprint, and add the line"
    )
    assert rig.machine.unit()["active"]


def test_known_hosts_for_another_host_names_the_missing_one(rig: Rig) -> None:
    """arrange: a line for another host and port. act: install. assert: Blocked, no fetch."""
    config = rig.config()
    config["custom-config-repository"] = f"git+ssh://git@{REPO_HOST}:2222/org/rules.git@v1"

    out = rig.start(config)

    assert rig.machine.git_network_ops() == 0
    assert f"pins no key for [{REPO_HOST}]:2222: get it with `ssh-keyscan -t ed25519 -p 2222 " in (
        blocked(out)
    )


@pytest.mark.parametrize(
    ("network", "message"),
    [
        ({"host_keys": {REPO_HOST: OTHER_KEY}}, "the SSH host key of git.example is not the one"),
        ({"deploy_keys": {REPO_HOST: "another key"}}, "git.example:22 refused the key in"),
        ({"down": [REPO_HOST]}, "cannot reach git.example:22: connection refused"),
        ({"remotes": {}}, "no repository at ssh://git@git.example/org/falco-rules.git"),
    ],
)
def test_sync_faults_keep_the_last_good_rules_and_say_what_to_do(
    rig: Rig,
    network: dict[str, Any],
    message: str,
) -> None:
    """arrange: rules from a branch running. act: fault, due sync. assert: rules stay."""
    out = rig.install("main")
    good = (rig.machine.root / CONFIG).read_text()
    rig.repo.commit({"rules.d/10-custom.yaml": rule("Never seen")})
    rig.machine.set_network(**network)
    rig.clock.advance(15)

    out = rig.ctx.run(rig.ctx.on.update_status(), out)

    assert (rig.machine.root / CONFIG).read_text() == good
    assert blocked(out).startswith(f"custom-config-repository not synced: {message}")
    assert rig.machine.restarts() == 1  # the install's start only


def test_a_missing_ref_says_which(rig: Rig) -> None:
    """arrange: a ref the repository lacks. act: install. assert: Blocked naming the ref."""
    out = rig.install("v9")

    assert blocked(out) == (
        "custom-config-repository not synced: ref 'v9' not found: use an existing branch, "
        "tag or full commit id"
    )
    assert loaded(rig.machine) == {}


def test_a_failed_sync_is_retried_when_due_or_when_its_options_change(rig: Rig) -> None:
    """arrange: host down at install. act: update-status, host up, later, fix. assert."""
    rig.machine.set_network(down=[REPO_HOST])
    out = rig.install("v1")
    rig.machine.set_network(down=[])
    rig.machine.clear_calls()

    rig.clock.advance(5)
    out = rig.ctx.run(rig.ctx.on.update_status(), out)
    assert rig.machine.git_network_ops() == 0
    rig.clock.advance(10)
    out = rig.ctx.run(rig.ctx.on.update_status(), out)
    assert rig.machine.git_network_ops() == 1
    assert list(loaded(rig.machine)) == ["rules.d/10-custom.yaml"]
    assert out.unit_status == LOCAL_ONLY


@pytest.mark.parametrize(
    ("secrets", "key_option", "message"),
    [
        (
            (),
            "",
            "custom-config-repo-ssh-key is not set: `juju add-secret <name> "
            'value="$(cat <key file>)"`, `juju grant-secret <name> falco`, then set '
            "custom-config-repo-ssh-key to the secret id",
        ),
        ((), "not granted", "run `juju grant-secret"),
        ((testing.Secret(tracked_content={"key": "x"}),), "own", "has no private key under"),
        ((testing.Secret(tracked_content={"value": "not a key"}),), "own", "`juju update-secret"),
    ],
)
def test_unusable_secrets_block_with_the_command_that_fixes_them(
    rig: Rig,
    secrets: tuple[testing.Secret, ...],
    key_option: str,
    message: str,
) -> None:
    """arrange: a missing, ungranted or malformed secret. act: install. assert: Blocked."""
    config = rig.config()
    del config["custom-config-repo-ssh-key"]
    if key_option:
        config["custom-config-repo-ssh-key"] = secrets[0].id if secrets else rig.deploy_key.id

    out = start(rig.ctx, rig.state, config, secrets)

    assert message in blocked(out)
    assert rig.machine.git_network_ops() == 0
    assert rig.machine.unit()["active"]


def test_secret_changed_syncs_again_with_the_new_key(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    repo: RulesRepo,
    clock: FakeClock,
) -> None:
    """arrange: a stale key refused. act: new revision, secret-changed. assert: synced."""
    secret = testing.Secret(tracked_content={"value": DEPLOY_KEY.replace("b3Bl", "AAAA")})
    out = start(ctx, state, repo_config(secret), (secret,))
    assert "refused the key" in blocked(out)
    machine.clear_calls()

    rotated = dataclasses.replace(secret, latest_content={"value": DEPLOY_KEY})
    out = ctx.run(ctx.on.secret_changed(rotated), dataclasses.replace(out, secrets={rotated}))

    assert machine.git_network_ops() == 1
    assert list(loaded(machine)) == ["rules.d/10-custom.yaml"]
    assert out.unit_status == LOCAL_ONLY


def test_refresh_rules_fetches_now_and_reports_what_runs(rig: Rig, charm_root: Path) -> None:
    """arrange: a tag synced, then moved. act: refresh-rules. assert: fetched, reported."""
    config = rig.config("v1", **{"custom-rules": rule("Inline")})
    out = rig.start(config)
    moved = rig.repo.commit({"rules.d/20-new.yaml": rule("New")})
    rig.repo.tag("v1", force=True)
    rig.machine.clear_calls()

    rig.ctx.run(rig.ctx.on.action("refresh-rules"), out)

    assert rig.machine.git_network_ops() == 1
    assert rig.ctx.action_results == {
        "commit": moved,
        "files": "rules.d/10-custom.yaml\nrules.d/20-new.yaml\ncustom-rules option",
        "validation": "ok",
        **running_payload(charm_root),
    }


def test_refresh_rules_fails_with_the_reason_when_rules_are_refused(rig: Rig) -> None:
    """arrange: tag synced. act: push broken rules on main, refresh on main. assert: fails."""
    out = rig.install("main")
    good = rig.repo.head()
    rig.repo.commit({"rules.d/20-bad.yaml": MISSING_OUTPUT})

    with pytest.raises(testing.ActionFailed) as failure:
        rig.ctx.run(rig.ctx.on.action("refresh-rules"), out)

    assert failure.value.message == (
        "custom rules refused, the last good set runs: rules.d/20-bad.yaml: Item has no "
        "mapping for key 'output' (rule 'Broken rule')"
    )
    assert rig.ctx.action_results is not None
    assert rig.ctx.action_results["commit"] == good
    assert rig.ctx.action_results["files"] == "rules.d/10-custom.yaml"


def test_refresh_rules_without_a_usable_config_fails(
    ctx: testing.Context[FalcoCharm], state: testing.State
) -> None:
    """arrange: an invalid option. act: refresh-rules. assert: fails naming the option."""
    out = start(ctx, state, {"custom-config-repository": "git@host:org/rules.git"})

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("refresh-rules"), out)

    assert failure.value.message.startswith(
        "rules not applied: invalid config 'custom-config-repository': use the URL form"
    )


def test_refresh_rules_without_custom_rules_reports_defaults_only(
    ctx: testing.Context[FalcoCharm], state: testing.State, charm_root: Path
) -> None:
    """arrange: no custom rules. act: refresh-rules. assert: says so."""
    out = start(ctx, state, {})

    ctx.run(ctx.on.action("refresh-rules"), out)

    assert ctx.action_results == {
        "commit": "none",
        "files": "none (default rules only)",
        "validation": "ok",
        **running_payload(charm_root),
    }


def test_https_goes_through_the_models_proxy(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    repo: RulesRepo,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """arrange: juju-https-proxy set on the model. act: install. assert: git uses it."""
    machine.serve(HTTPS_URL, repo.bare)
    monkeypatch.setenv("JUJU_CHARM_HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("JUJU_CHARM_NO_PROXY", "10.0.0.0/8")

    start(ctx, state, {"custom-config-repository": f"{HTTPS_URL}@v1"})

    fetch = next(call for call in machine.git_calls() if "fetch" in call["argv"])
    assert fetch["env"]["https_proxy"] == "http://proxy.internal:3128"
    assert fetch["env"]["no_proxy"] == "10.0.0.0/8"


def test_public_https_repository(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    repo: RulesRepo,
    clock: FakeClock,
) -> None:
    """arrange: an https repository without token. act: install. assert: synced, no ssh."""
    machine.serve(HTTPS_URL, repo.bare)

    out = start(ctx, state, {"custom-config-repository": f"{HTTPS_URL}@v1"})

    fetch = next(call for call in machine.git_calls() if "fetch" in call["argv"])
    assert "GIT_SSH_COMMAND" not in fetch["env"]
    assert fetch["env"]["GIT_ALLOW_PROTOCOL"] == "https"
    assert list(loaded(machine)) == ["rules.d/10-custom.yaml"]
    assert out.unit_status == LOCAL_ONLY


@pytest.mark.parametrize(
    ("content", "accepted"),
    [
        ({"value": "s3cr3t-t0ken"}, True),
        ({"value": "s3cr3t-t0ken", "username": "oauth2"}, False),
        ({"value": "wrong"}, False),
    ],
)
def test_private_https_repository_with_a_token_secret(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    repo: RulesRepo,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    content: dict[str, str],
    accepted: bool,
) -> None:
    """arrange: a server wanting a token. act: install with a token secret. assert."""
    machine.serve(HTTPS_URL, repo.bare)
    machine.set_network(tokens={REPO_HOST: "x-access-token:s3cr3t-t0ken"})
    token = testing.Secret(tracked_content=content)
    config = {"custom-config-repository": HTTPS_URL, "custom-config-repo-token": token.id}

    out = start(ctx, state, config, (token,))

    if accepted:
        assert list(loaded(machine)) == ["rules.d/10-custom.yaml"]
    else:
        assert "git.example:443 refused the credentials" in blocked(out)
    assert "s3cr3t" not in caplog.text + str(out.unit_status)
    assert not any(call["secret_in_argv"] for call in machine.git_calls())


def test_an_empty_token_secret_is_refused(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: a token secret without value. act: install. assert: Blocked with the fix."""
    token = testing.Secret(tracked_content={"username": "me"})
    config = {"custom-config-repository": HTTPS_URL, "custom-config-repo-token": token.id}

    out = start(ctx, state, config, (token,))

    assert f"`juju update-secret {token.id} value=<token>`" in blocked(out)


def test_a_new_url_starts_from_a_fresh_repository(rig: Rig, tmp_path: Path) -> None:
    """arrange: rules from one repository. act: point at another. assert: its rules only."""
    out = rig.install()
    other = RulesRepo(tmp_path / "other-server", "other")
    other.commit({"rules.d/50-other.yaml": rule("Other")})
    url = f"ssh://git@{REPO_HOST}/org/other.git"
    rig.machine.serve(url, other.bare)
    config = rig.config("main")
    config["custom-config-repository"] = f"git+ssh://git@{REPO_HOST}/org/other.git@main"

    rig.ctx.run(rig.ctx.on.config_changed(), dataclasses.replace(out, config=config))

    assert list(loaded(rig.machine)) == ["rules.d/50-other.yaml"]


def test_git_missing_from_the_machine_is_reported(
    rig: Rig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """arrange: a PATH without git. act: install. assert: Blocked, Falco runs defaults."""
    (rig.machine.bin / "git").unlink()
    monkeypatch.setenv("PATH", str(rig.machine.bin))

    out = rig.install()

    assert blocked(out) == (
        "custom-config-repository not synced: git is not installed and installing it failed"
    )
    assert rig.machine.calls("apt-get")[-1][-1].startswith("git=")
    assert rig.machine.unit()["active"]


def test_remove_deletes_the_repository_and_its_credentials(rig: Rig) -> None:
    """arrange: a fresh machine, then rules from a repository. act: stop, remove. assert."""
    pristine = rig.machine.files()
    out = rig.install()

    rig.ctx.run(rig.ctx.on.remove(), rig.ctx.run(rig.ctx.on.stop(), out))

    assert changed_files(pristine, rig.machine.files()) == 0


def test_a_lasting_problem_is_logged_once(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """arrange: the host is down. act: install, then update-status hooks. assert: one log."""
    rig.machine.set_network(down=[REPO_HOST])
    out = rig.install()
    for _ in range(3):
        rig.clock.advance(5)
        out = rig.ctx.run(rig.ctx.on.update_status(), out)

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "custom-config-repository not synced: cannot reach git.example:22: connection refused"
    ]
