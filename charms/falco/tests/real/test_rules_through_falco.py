"""Custom rules through the real Falco: valid ones go live, refused ones say Falco's own words.

One unit for the module, with the real tarball, reaching a real sshd on 127.0.0.1 with the
real git for its custom-config-repository. Each refusal is checked three ways: the unit
status and the ``refresh-rules`` action carry the real Falco's error text and name the file
the operator wrote, and the last good rule set is still what the live falco.yaml loads (and
what the real Falco accepts).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import real_tools
import workloads
from git_repos import RulesRepo, rule
from git_servers import SshGitServer
from ops import testing
from real_falco import keep_sample, loaded_rules_files
from real_unit import RealUnit, real_unit

LOCAL_ONLY = testing.ActiveStatus("alerts stay on this host: integrate http-endpoint")
REFUSED = "custom rules refused, the last good set runs: "
GOOD_INLINE = rule("Inline rule", "/etc/inline-secret")


def broken(condition: str, name: str = "Broken rule") -> str:
    return (
        f"- rule: {name}\n  desc: d\n  condition: {condition}\n"
        '  output: "broken (file=%fd.name)"\n  priority: WARNING\n'
    )


# What the real Falco 0.44.1 says about each, word for word.
INLINE_REFUSALS = {
    "an invalid condition": (
        broken("evt.type = openat and and fd.name = /x"),
        "custom-rules option: unexpected token after 'and', expecting 'or', 'and' "
        "(rule 'Broken rule')",
    ),
    "an unknown field": (
        broken("evt.type = openat and fd.nme = /x"),
        "custom-rules option: filter_check called with nonexistent field fd.nme "
        "(rule 'Broken rule')",
    ),
    "a missing macro": (
        broken("evt.type = openat and no_such_macro"),
        "custom-rules option: Undefined macro 'no_such_macro' used in filter. "
        "(rule 'Broken rule')",
    ),
}


@pytest.fixture(name="sshd", scope="module")
def sshd_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshGitServer]:
    real_tools.require("sshd", "openssh-server")
    real_tools.require_root("sshd runs as root and switches to the test's user")
    server = SshGitServer(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture(name="repo", scope="module")
def repo_fixture(tmp_path_factory: pytest.TempPathFactory) -> RulesRepo:
    repo = RulesRepo(tmp_path_factory.mktemp("repos"))
    repo.commit({"rules.d/10-custom.yaml": rule("Repository rule")})
    return repo


@pytest.fixture(name="unit", scope="module")
def unit_fixture(
    tmp_path_factory: pytest.TempPathFactory, real_charm_root: Path
) -> Iterator[RealUnit]:
    with real_unit(tmp_path_factory.mktemp("rules"), real_charm_root, real_git=True) as unit:
        unit.install()
        yield unit


def live_rules(unit: RealUnit) -> dict[str, str]:
    """Return the custom rules files the live falco.yaml makes Falco load, by name."""
    found = {}
    # After the default rules and the self-test rule.
    for entry in unit.live_config()["rules_files"][2:]:
        path = Path(entry)
        if path.is_dir():
            found.update({f"rules.d/{p.name}": p.read_text() for p in sorted(path.iterdir())})
        else:
            found["custom-rules"] = path.read_text()
    return found


# What Falco loads before any custom rules: the default rules, then the charm's self-test
# marker rule (at the default minimum-priority, debug).
CHARM_BASE = ["falco_rules.yaml", "self-test-debug.yaml"]


def falco_loads(unit: RealUnit) -> list[str]:
    """Return the rules files the real Falco loads from the live falco.yaml (dry run)."""
    result = unit.falco.run("-c", str(unit.config_file), "--dry-run")
    assert result.returncode == 0, result.stderr
    return [Path(path).name for path in loaded_rules_files(result.stderr)]


def repo_options(sshd: SshGitServer, repo: RulesRepo, **extra: Any) -> dict[str, Any]:
    """Return the options of the repository's main branch with the deploy key secret."""
    return {
        "custom-config-repository": sshd.url(repo.bare, "main"),
        "custom-config-repo-ssh-key": "@deploy-key",  # replaced by the secret's id
        "custom-config-repo-known-hosts": sshd.known_hosts_line,
        **extra,
    }


def with_deploy_key(unit: RealUnit, sshd: SshGitServer, options: dict[str, Any]) -> None:
    """Configure ``options``, the deploy key given to the unit as a Juju secret."""
    secret = testing.Secret(tracked_content={"value": sshd.user_private_key})
    options = dict(options, **{"custom-config-repo-ssh-key": secret.id})
    unit.state = dataclasses.replace(unit.state, secrets={secret})
    unit.configure(**options)


def test_valid_inline_rules_go_live(unit: RealUnit) -> None:
    """arrange: installed. act: set valid custom-rules. assert: live, Falco loads them."""
    unit.configure(**{"custom-rules": GOOD_INLINE})

    assert unit.status == LOCAL_ONLY
    assert live_rules(unit) == {"custom-rules": GOOD_INLINE}
    assert falco_loads(unit) == [*CHARM_BASE, "custom-rules.yaml"]


@pytest.mark.parametrize("case", list(INLINE_REFUSALS))
def test_inline_rules_falco_refuses_keep_the_last_good_set(unit: RealUnit, case: str) -> None:
    """arrange: good inline rules live. act: set refused ones. assert: Falco's words, kept."""
    unit.configure(**{"custom-rules": GOOD_INLINE})
    live = unit.config_file.read_text()
    text, error = INLINE_REFUSALS[case]

    unit.configure(**{"custom-rules": text})
    action = unit.refresh_rules()
    sample = {"status": repr(unit.status), "failure": action.failure, "results": action.results}
    keep_sample(f"refused-inline-{case.replace(' ', '-')}.json", json.dumps(sample, indent=2))

    assert unit.status == testing.BlockedStatus(REFUSED + error)
    assert action.failure == REFUSED + error
    assert action.results["validation"] == REFUSED + error
    assert action.results["files"] == "custom-rules option"
    assert unit.config_file.read_text() == live
    assert live_rules(unit) == {"custom-rules": GOOD_INLINE}
    assert falco_loads(unit) == [*CHARM_BASE, "custom-rules.yaml"]


REPOSITORY_REFUSALS = {
    "a rules file with an unknown field": (
        {"rules.d/20-bad.yaml": broken("evt.type = openat and fd.nme = /x")},
        "rules.d/20-bad.yaml: filter_check called with nonexistent field fd.nme "
        "(rule 'Broken rule')",
    ),
    "a macro override that breaks a default rule": (
        {
            "rules.d/30-macro.yaml": "- macro: open_read\n  condition: fd.nme = /x\n"
            "  override:\n    condition: replace\n"
        },
        "rules.d/30-macro.yaml: filter_check called with nonexistent field fd.nme "
        "(rule 'Directory traversal monitored file read' in default rules)",
    ),
    "an output field Falco cannot compile, in append_output": (
        {
            "config.override.d/10-output.yaml": "append_output:\n  - match: {source: syscall}\n"
            '    extra_output: "x=%nosuch.field"\n'
        },
        "config.override.d/10-output.yaml: unknown filter: unexpected token after ' "
        "(rule 'Directory traversal monitored file read' in default rules)",
    ),
    "an override value Falco refuses": (
        {"config.override.d/20-drops.yaml": "syscall_event_drops:\n  actions: [log, shout]\n"},
        "config.override.d/20-drops.yaml: Error reading config file: available actions for "
        'syscall event drops are "ignore", "log", "alert", and "exit"',
    ),
}


def test_valid_repository_rules_go_live(
    unit: RealUnit, sshd: SshGitServer, repo: RulesRepo
) -> None:
    """arrange: a repository over real ssh. act: configure it. assert: live, Falco loads it."""
    with_deploy_key(unit, sshd, repo_options(sshd, repo, **{"custom-rules": GOOD_INLINE}))

    assert unit.status == LOCAL_ONLY
    assert live_rules(unit) == {
        "rules.d/10-custom.yaml": rule("Repository rule"),
        "custom-rules": GOOD_INLINE,
    }
    assert falco_loads(unit) == [*CHARM_BASE, "10-custom.yaml", "custom-rules.yaml"]
    action = unit.refresh_rules()
    assert (action.failure, action.results["commit"]) == (None, repo.head())


@pytest.mark.parametrize("case", list(REPOSITORY_REFUSALS))
def test_repository_content_falco_refuses_keeps_the_last_good_set(
    unit: RealUnit, sshd: SshGitServer, repo: RulesRepo, case: str
) -> None:
    """arrange: repository rules live. act: push refused content, refresh. assert: kept."""
    with_deploy_key(unit, sshd, repo_options(sshd, repo, **{"custom-rules": GOOD_INLINE}))
    good = repo.head()
    live = unit.config_file.read_text()
    files, error = REPOSITORY_REFUSALS[case]
    repo.commit(dict(files))

    action = unit.refresh_rules()
    status = unit.status
    sample = {"status": repr(status), "failure": action.failure, "results": action.results}
    keep_sample(f"refused-repository-{case.replace(' ', '-')}.json", json.dumps(sample, indent=2))
    repo.commit(dict.fromkeys(files))
    fixed = unit.refresh_rules()

    assert action.failure == REFUSED + error
    assert status == testing.BlockedStatus(REFUSED + error)
    tarball = workloads.require(workloads.FALCO_TARBALL).read_bytes()
    assert action.results == {
        "commit": good,
        "files": "rules.d/10-custom.yaml\ncustom-rules option",
        "validation": REFUSED + error,
        # Which Falco runs: the real tarball, by its digest.
        "falco-version": workloads.FALCO_VERSION,
        "payload-sha256": hashlib.sha256(tarball).hexdigest(),
    }
    # Fixed in the repository: applied, as the real Falco accepts it.
    assert (fixed.failure, unit.status) == (None, LOCAL_ONLY)
    assert fixed.results["commit"] == repo.head()
    assert unit.config_file.read_text() == live
    assert falco_loads(unit) == [*CHARM_BASE, "10-custom.yaml", "custom-rules.yaml"]
