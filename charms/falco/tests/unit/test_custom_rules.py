"""Custom rules from the repository and the options: validated, hot-reloaded, never lost."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from charm import FalcoCharm
from falco_rig import REPO_HOST, Rig
from git_repos import MISSING_OUTPUT, OVERRIDE_DEFAULT, rule
from machine import FakeMachine, changed_files
from ops import testing

CONFIG = Path("etc/juju-falco/falco.yaml")
LOCAL_ONLY = testing.ActiveStatus("alerts stay on this host: integrate http-endpoint")
INLINE = rule("Inline rule", "/etc/inline-secret")


def rendered(machine: FakeMachine) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((machine.root / CONFIG).read_text())
    return data


def rule_set_dir(machine: FakeMachine) -> Path | None:
    """Return the custom rule set falco.yaml loads, if any."""
    # After the default rules and the self-test rule.
    for entry in rendered(machine)["rules_files"][2:]:
        return Path(entry).parent
    return None


def loaded(machine: FakeMachine) -> dict[str, str]:
    """Return the custom rules files Falco loads, by name, in load order."""
    base = rule_set_dir(machine)
    if base is None:
        return {}
    found = {f"rules.d/{p.name}": p.read_text() for p in sorted((base / "rules.d").iterdir())}
    if (base / "custom-rules.yaml").exists():
        found["custom-rules"] = (base / "custom-rules.yaml").read_text()
    return found


def running(
    ctx: testing.Context[FalcoCharm], state: testing.State, **config: Any
) -> testing.State:
    """Install Falco with ``config`` and return the state after it."""
    return ctx.run(ctx.on.install(), dataclasses.replace(state, config=config))


def reconfigure(
    ctx: testing.Context[FalcoCharm], state: testing.State, **config: Any
) -> testing.State:
    return ctx.run(ctx.on.config_changed(), dataclasses.replace(state, config=config))


def reloaded_once(machine: FakeMachine, inode_before: int) -> bool:
    """Whether the change went live as one atomic falco.yaml swap, with no restart."""
    return (
        (machine.root / CONFIG).stat().st_ino != inode_before
        and machine.restarts() == 0
        and "stop" not in machine.systemctl_verbs()
        and machine.unit()["active"]
    )


@pytest.fixture(name="with_repo")
def with_repo_fixture(state: testing.State, deploy_key: testing.Secret) -> testing.State:
    return dataclasses.replace(state, secrets={deploy_key})


# ------------------------------------------------------------------------------ inline
def test_inline_rules_load_after_the_defaults_with_a_hot_reload(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco running. act: set custom-rules. assert: loaded last, one reload."""
    out = running(ctx, state)
    machine.clear_calls()
    inode = (machine.root / CONFIG).stat().st_ino

    out = reconfigure(ctx, out, **{"custom-rules": INLINE})

    assert loaded(machine) == {"custom-rules": INLINE}
    files = rendered(machine)["rules_files"]
    assert files[0].endswith("etc/falco/falco_rules.yaml")
    assert files[1].endswith("etc/juju-falco/self-test/self-test-debug.yaml")
    assert files[-1].endswith("custom-rules.yaml")
    assert reloaded_once(machine, inode)
    validate = next(argv for argv in machine.calls("falco") if "-V" in argv)
    checked = [validate[i + 1] for i, arg in enumerate(validate) if arg == "-V"]
    # In load order: the custom rules may override the self-test rule too.
    assert checked == [files[0], files[1], files[-1]]
    assert out.unit_status == LOCAL_ONLY


def test_invalid_inline_yaml_is_an_invalid_option(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco running. act: custom-rules that is not a rules list. assert: Blocked."""
    out = running(ctx, state)
    before = machine.files()

    out = reconfigure(ctx, out, **{"custom-rules": "rule: [not, a, list"})

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("invalid config 'custom-rules': not valid YAML")
    assert changed_files(before, machine.files()) == 0
    out = reconfigure(ctx, out, **{"custom-rules": "just: a mapping"})
    assert out.unit_status == testing.BlockedStatus(
        "invalid config 'custom-rules': expected a YAML list of Falco rules, macros and lists"
    )


def test_rules_falco_refuses_keep_the_last_good_set_running(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: inline rules running. act: set rules Falco refuses. assert: old set stays."""
    out = running(ctx, state, **{"custom-rules": INLINE})
    good = (machine.root / CONFIG).read_text()
    machine.clear_calls()

    out = reconfigure(ctx, out, **{"custom-rules": MISSING_OUTPUT})

    assert (machine.root / CONFIG).read_text() == good
    assert machine.restarts() == 0
    assert out.unit_status == testing.BlockedStatus(
        "custom rules refused, the last good set runs: custom-rules option: "
        "Item has no mapping for key 'output' (rule 'Broken rule')"
    )


def test_refused_rules_are_not_checked_again_on_idle_hooks(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: refused inline rules. act: update-status twice. assert: no work at all."""
    out = running(ctx, state, **{"custom-rules": MISSING_OUTPUT})
    machine.clear_calls()
    before = machine.files()

    for _ in range(2):
        out = ctx.run(ctx.on.update_status(), out)

    assert machine.calls("falco") == []
    assert changed_files(before, machine.files()) == 0
    assert isinstance(out.unit_status, testing.BlockedStatus)


def test_fixed_rules_apply_and_clear_the_refusal(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: refused inline rules. act: fix them. assert: loaded, status clean."""
    out = running(ctx, state, **{"custom-rules": MISSING_OUTPUT})

    out = reconfigure(ctx, out, **{"custom-rules": INLINE})

    assert loaded(machine) == {"custom-rules": INLINE}
    assert out.unit_status == LOCAL_ONLY


def test_other_changes_go_live_while_rules_are_refused(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: good inline rules. act: bad rules + a queue change. assert: queue applies."""
    out = running(ctx, state, **{"custom-rules": INLINE})

    reconfigure(ctx, out, **{"custom-rules": MISSING_OUTPUT, "outputs-queue-capacity": 7})

    assert rendered(machine)["outputs_queue"] == {"capacity": 7}
    assert loaded(machine) == {"custom-rules": INLINE}


def test_selection_and_minimum_priority_are_falcos_own_settings(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine
) -> None:
    """arrange: Falco running. act: disable/enable rules, raise priority. assert: reload."""
    out = running(ctx, state)
    machine.clear_calls()
    inode = (machine.root / CONFIG).stat().st_ino

    reconfigure(
        ctx,
        out,
        **{
            "disabled-rules": "*\n tag:network, ",
            "enabled-rules": "tag:T1059, Read sensitive file untrusted",
            "minimum-priority": "warning",
        },
    )

    config = rendered(machine)
    assert config["rules"] == [
        {"disable": {"rule": "*"}},
        {"disable": {"tag": "network"}},
        {"enable": {"tag": "T1059"}},
        {"enable": {"rule": "Read sensitive file untrusted"}},
        # Last, so no selection disables the self-test (its rule matches only its markers).
        {"enable": {"rule": "Juju Falco self-test"}},
    ]
    assert config["priority"] == "warning"
    # The self-test rule follows the minimum priority: a new file, named before it is used.
    assert config["rules_files"][1] == str(
        machine.root / "etc/juju-falco/self-test/self-test-warning.yaml"
    )
    assert "priority: WARNING" in Path(config["rules_files"][1]).read_text()
    assert reloaded_once(machine, inode)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("minimum-priority", "loud", "invalid config 'minimum-priority'"),
        ("disabled-rules", "tag:", "invalid config 'disabled-rules': 'tag:' needs a tag name"),
    ],
)
def test_invalid_selection_options_block(
    ctx: testing.Context[FalcoCharm], state: testing.State, option: str, value: str, message: str
) -> None:
    """arrange: nothing. act: install with a bad value. assert: Blocked naming the option."""
    out = running(ctx, state, **{option: value})

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(message)


# ------------------------------------------------------------------------------ repository
def test_repository_rules_load_between_defaults_and_inline_rules(rig: Rig) -> None:
    """arrange: a tag with a rules file. act: install with it and inline rules. assert."""
    rig.repo.commit({"rules.d/05-override.yaml": OVERRIDE_DEFAULT, "README.md": "ignored"})
    rig.repo.tag("v2")

    out = rig.install("v2", **{"custom-rules": INLINE})

    assert list(loaded(rig.machine)) == [
        "rules.d/05-override.yaml",
        "rules.d/10-custom.yaml",
        "custom-rules",
    ]
    assert out.unit_status == LOCAL_ONLY


def test_a_new_branch_commit_is_picked_up_at_the_next_due_sync_and_not_before(rig: Rig) -> None:
    """arrange: branch main synced. act: push, update-status before/after the interval."""
    config = rig.config("main", **{"custom-config-repo-sync-interval": 15})
    out = running(rig.ctx, rig.state, **config)
    rig.repo.commit({"rules.d/20-more.yaml": rule("Another rule"), "rules.d/10-custom.yaml": None})
    rig.machine.clear_calls()

    rig.clock.advance(10)
    out = rig.ctx.run(rig.ctx.on.update_status(), out)
    assert rig.machine.git_network_ops() == 0
    assert list(loaded(rig.machine)) == ["rules.d/10-custom.yaml"]

    inode = (rig.machine.root / CONFIG).stat().st_ino
    rig.clock.advance(6)
    out = rig.ctx.run(rig.ctx.on.update_status(), out)
    assert rig.machine.git_network_ops() == 1
    assert list(loaded(rig.machine)) == ["rules.d/20-more.yaml"]
    assert reloaded_once(rig.machine, inode)
    assert out.unit_status == LOCAL_ONLY


def test_a_fetch_without_rule_changes_does_not_reload(rig: Rig) -> None:
    """arrange: branch synced. act: push a README change, sync. assert: no reload."""
    out = rig.install("main")
    rig.repo.commit({"README.md": "documentation only"})
    config_before = rig.machine.files()[str(CONFIG)]
    rig.machine.clear_calls()

    rig.clock.advance(15)
    rig.ctx.run(rig.ctx.on.update_status(), out)

    assert rig.machine.git_network_ops() == 1
    assert rig.machine.files()[str(CONFIG)] == config_before
    assert rig.machine.calls("falco") == []


def test_each_change_is_one_reload_and_old_sets_are_pruned(rig: Rig) -> None:
    """arrange: branch synced. act: two rule changes. assert: current and previous kept."""
    out = rig.install("main")
    first = rule_set_dir(rig.machine)
    for name in ("Second", "Third"):
        rig.repo.commit({"rules.d/10-custom.yaml": rule(name)})
        rig.clock.advance(15)
        previous = rule_set_dir(rig.machine)
        rig.machine.clear_calls()
        inode = (rig.machine.root / CONFIG).stat().st_ino
        out = rig.ctx.run(rig.ctx.on.update_status(), out)
        assert reloaded_once(rig.machine, inode)

    sets = sorted(p.name for p in (rig.machine.root / "etc/juju-falco/rules").iterdir())
    assert first is not None and previous is not None
    assert first.name not in sets
    assert sets == sorted([previous.name, rule_set_dir(rig.machine).name])  # type: ignore[union-attr]


def test_invalid_rules_in_the_repository_keep_the_last_good_set(rig: Rig) -> None:
    """arrange: branch synced. act: push a broken rule, then fix it. assert."""
    out = rig.install("main")
    good = (rig.machine.root / CONFIG).read_text()
    rig.repo.commit({"rules.d/20-bad.yaml": MISSING_OUTPUT})
    rig.clock.advance(15)
    rig.machine.clear_calls()

    out = rig.ctx.run(rig.ctx.on.update_status(), out)

    assert (rig.machine.root / CONFIG).read_text() == good
    assert rig.machine.restarts() == 0
    assert out.unit_status == testing.BlockedStatus(
        "custom rules refused, the last good set runs: rules.d/20-bad.yaml: "
        "Item has no mapping for key 'output' (rule 'Broken rule')"
    )
    rig.repo.commit({"rules.d/20-bad.yaml": rule("Repaired")})
    rig.clock.advance(15)
    out = rig.ctx.run(rig.ctx.on.update_status(), out)
    assert list(loaded(rig.machine)) == ["rules.d/10-custom.yaml", "rules.d/20-bad.yaml"]
    assert out.unit_status == LOCAL_ONLY


@pytest.mark.parametrize(
    ("files", "links", "message"),
    [
        (
            {"rules.d/10-custom.yaml": None, "other/x.yaml": "- list: a\n  items: []\n"},
            {},
            "the repository has no rules.d/ directory: add rules.d/*.yaml "
            "(rules.d/.gitkeep for none)",
        ),
        ({}, {"rules.d/20-link.yaml": "/etc/shadow"}, "rules.d/20-link.yaml is a symbolic link"),
        (
            {"config.override.d/10-out.yaml": "http_output:\n  enabled: false\n"},
            {},
            "config.override.d/10-out.yaml: 'http_output' is set by the http-endpoint relation",
        ),
        (
            {"config.override.d/10-web.yaml": "webserver:\n  enabled: true\n"},
            {},
            "config.override.d/10-web.yaml: 'webserver' is managed by the charm",
        ),
    ],
)
def test_unusable_repository_content_keeps_the_last_good_set(
    rig: Rig,
    files: dict[str, str | None],
    links: dict[str, str],
    message: str,
) -> None:
    """arrange: branch synced. act: push unusable content. assert: Blocked, rules stay."""
    out = rig.install("main")
    good = (rig.machine.root / CONFIG).read_text()
    commit = rig.repo.commit(files, links)
    rig.clock.advance(15)

    out = rig.ctx.run(rig.ctx.on.update_status(), out)

    assert (rig.machine.root / CONFIG).read_text() == good
    assert isinstance(out.unit_status, testing.BlockedStatus)
    prefix = f"custom-config-repository commit {commit[:12]} not used: "
    assert out.unit_status.message.startswith(prefix + message)


def test_config_overrides_merge_into_falco_yaml(rig: Rig) -> None:
    """arrange: overrides in the repository. act: install. assert: merged, Falco's way."""
    rig.repo.commit(
        {
            "config.override.d/10-matching.yaml": "rule_matching: all\n",
            "config.override.d/20-fields.yml": (
                "append_output:\n  - match: {source: syscall}\n    extra_fields: [proc.cmdline]\n"
                "base_syscalls:\n  repair: true\n"
            ),
            "config.override.d/notes.txt": "not yaml, ignored",
        }
    )
    rig.repo.tag("v2")

    out = rig.install("v2")

    config = rendered(rig.machine)
    assert config["rule_matching"] == "all"
    assert config["base_syscalls"] == {"repair": True}
    assert config["append_output"][-1] == {
        "match": {"source": "syscall"},
        "extra_fields": ["proc.cmdline"],
    }
    assert config["append_output"][1]["extra_fields"][0] == {"juju_unit": "falco/0"}
    assert config["http_output"] == {"enabled": False}
    assert out.unit_status == LOCAL_ONLY


def test_removing_the_repository_unloads_its_rules_and_forgets_it(rig: Rig) -> None:
    """arrange: repository rules running. act: unset the option. assert: reload, cleanup."""
    out = rig.install()
    inode = (rig.machine.root / CONFIG).stat().st_ino
    rig.machine.clear_calls()

    out = reconfigure(rig.ctx, out)

    assert loaded(rig.machine) == {}
    assert reloaded_once(rig.machine, inode)
    assert not (rig.machine.root / "var/lib/juju-falco/custom-config-repo").exists()
    assert not (rig.machine.root / "var/lib/juju-falco/custom-config-repo.json").exists()
    assert out.unit_status == LOCAL_ONLY
    assert REPO_HOST not in (rig.machine.root / CONFIG).read_text()


# ------------------------------------------------------------------------------ damage
DAMAGE = {
    "inline rules deleted": lambda base: (base / "custom-rules.yaml").unlink(),
    "inline rules emptied": lambda base: (base / "custom-rules.yaml").write_text(""),
    "a repository file deleted": lambda base: (base / "rules.d/10-custom.yaml").unlink(),
    "a repository file altered": lambda base: (base / "rules.d/10-custom.yaml").write_text(
        rule("Custom rule one").replace("WARNING", "DEBUG")
    ),
    "a file added": lambda base: (base / "rules.d/99-planted.yaml").write_text("[]\n"),
    # Rules may come from a private repository: readable by root only, or written again.
    "a file made readable by all": lambda base: (base / "rules.d/10-custom.yaml").chmod(0o644),
    "a folder opened to all": lambda base: (base / "rules.d").chmod(0o755),
    # Same bytes written again: only its date shows it (what lets idle hooks skip reading).
    "a file written with the same bytes": lambda base: (
        base / "rules.d/10-custom.yaml"
    ).write_text((base / "rules.d/10-custom.yaml").read_text()),
    "the whole set deleted": lambda base: __import__("shutil").rmtree(base),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_live_rule_set_is_written_again_whole(rig: Rig, damage: str) -> None:
    """arrange: repository and inline rules running. act: damage the set; update-status twice.

    assert: the first hook writes the recorded content again, whole, to a new directory
    that falco.yaml then names (one reload, no restart); the damaged one stays until the
    next change; the second hook does nothing.
    """
    out = rig.install("v1", **{"custom-rules": INLINE})
    before = loaded(rig.machine)
    damaged = rule_set_dir(rig.machine)
    assert damaged is not None
    DAMAGE[damage](damaged)
    rig.machine.clear_calls()
    inode = (rig.machine.root / CONFIG).stat().st_ino

    out = rig.ctx.run(rig.ctx.on.update_status(), out)

    assert reloaded_once(rig.machine, inode)
    repaired = rule_set_dir(rig.machine)
    assert repaired is not None and repaired.name == f"{damaged.name}-1"
    assert loaded(rig.machine) == before
    assert sorted(p.name for p in repaired.rglob("*")) == sorted(
        ["rules.d", "10-custom.yaml", "custom-rules.yaml"]
    )
    assert out.unit_status == LOCAL_ONLY
    rig.machine.clear_calls()
    files = rig.machine.files()
    rig.ctx.run(rig.ctx.on.update_status(), out)
    assert changed_files(files, rig.machine.files()) == 0
    assert rig.machine.calls("falco") == []


def test_damage_never_shrinks_the_last_good_set(rig: Rig) -> None:
    """arrange: rules running; a file of the live set deleted. act: new rules Falco refuses.

    assert: the refusal keeps the last good set whole (as recorded, not as left on disk).
    """
    out = rig.install("main", **{"custom-rules": INLINE})
    before = loaded(rig.machine)
    live = rule_set_dir(rig.machine)
    assert live is not None
    (live / "rules.d/10-custom.yaml").unlink()
    rig.repo.commit({"rules.d/20-bad.yaml": MISSING_OUTPUT})
    rig.clock.advance(15)

    out = rig.ctx.run(rig.ctx.on.update_status(), out)

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("custom rules refused, the last good set runs")
    assert loaded(rig.machine) == before


def test_the_rule_set_record_is_private_to_root(rig: Rig) -> None:
    """arrange: rules running. act: look at the record. assert: 0600 in a 0700 directory."""
    rig.install("v1", **{"custom-rules": INLINE})

    (record,) = (rig.machine.root / "var/lib/juju-falco/rule-sets").iterdir()

    assert record.stat().st_mode & 0o777 == 0o600
    assert record.parent.stat().st_mode & 0o777 == 0o700


def test_the_first_fetch_and_the_validation_are_said_in_the_status(rig: Rig) -> None:
    """arrange: a branch. act: install, then a due sync with new rules. assert: statuses.

    The first fetch (a clone: it may be long) is said, a later incremental one is not; the
    validation of new rules is said each time.
    """
    out = rig.install("main")
    steps = [s.message for s in rig.ctx.unit_status_history if s.name == "maintenance"]
    assert f"fetching custom-config-repository ssh://git@{REPO_HOST}/org/falco-rules.git" in (
        steps
    )
    assert steps[-1] == "validating the custom rules and falco.yaml with Falco"
    rig.ctx.unit_status_history.clear()
    rig.repo.commit({"rules.d/20-more.yaml": rule("More")})
    rig.clock.advance(15)

    rig.ctx.run(rig.ctx.on.update_status(), out)

    steps = [s.message for s in rig.ctx.unit_status_history if s.name == "maintenance"]
    assert steps == ["validating the custom rules and falco.yaml with Falco"]
