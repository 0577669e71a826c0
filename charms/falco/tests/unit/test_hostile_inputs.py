"""Hostile and oversized inputs (issue 14): never a hook error, bounded memory, idle hooks idle.

Whatever comes in from outside (an option, a secret, relation data, a repository's file names,
sizes and content) is checked once where it comes in, with the validator the code after it
relies on. Operator input that cannot be used is Blocked naming the option; a repository
commit that cannot be used is refused as a whole with a status that quotes what is wrong
safely, and the last good rules stay; remote data is ignored and quoted by a short prefix.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import config
import falco_config
import git_sync
import pytest
from charm import FalcoCharm
from falco_rig import DEPLOY_KEY, KNOWN_HOSTS, SIDEKICK, Rig, sidekick_relation
from git_repos import MISSING_OUTPUT, rule
from hypothesis import given, settings
from hypothesis import strategies as st
from local_net import wait_for
from machine import FakeMachine, changed_files
from ops import testing
from ops_probes import record_calls
from test_custom_rules import CONFIG, LOCAL_ONLY, loaded, rendered, rule_set_dir

Ctx = testing.Context[FalcoCharm]
# A log record quotes a remote value by its first characters only: it stays under this.
MAX_LOGGED = 400
SRC = Path(__file__).resolve().parents[2] / "src"
LIB = SRC.parent / "lib"


def not_used(commit: str) -> str:
    return f"custom-config-repository commit {commit[:12]} not used: "


def blocked(out: testing.State) -> str:
    assert isinstance(out.unit_status, testing.BlockedStatus), out.unit_status
    return out.unit_status.message


def pushed_and_synced(rig: Rig, out: testing.State, files: dict[str, str | None]) -> Any:
    """Push ``files`` to main, let the sync interval pass, run update-status."""
    commit = rig.repo.commit(files)
    rig.clock.advance(15)
    rig.machine.clear_calls()
    return commit, rig.ctx.run(rig.ctx.on.update_status(), out)


# -- repository file names --------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_refused_not_a_hook_error(rig: Rig) -> None:
    """arrange: rules from main. act: push rules.d/<0xff>.yaml; update-status, config-changed.

    assert: no hook error on this or any later hook; the commit is refused with the name
    quoted byte by byte; the last good rules stay; an unrelated change still applies.
    """
    out = rig.install("main")
    good = loaded(rig.machine)

    commit, out = pushed_and_synced(rig, out, {"rules.d/\udcff.yaml": rule("Not UTF-8")})

    assert blocked(out) == (
        not_used(commit) + r"file name 'rules.d/\xff.yaml' is not printable UTF-8: rename it"
    )
    assert loaded(rig.machine) == good
    config = rig.config("main", **{"outputs-queue-capacity": 7})
    out = rig.ctx.run(rig.ctx.on.config_changed(), dataclasses.replace(out, config=config))
    assert rendered(rig.machine)["outputs_queue"] == {"capacity": 7}
    assert blocked(out).startswith(not_used(commit))
    rig.ctx.run(rig.ctx.on.update_status(), out)


def test_a_file_name_with_a_line_break_cannot_forge_a_log_line(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """arrange: rules from main. act: push refused rules under a name holding a newline.

    assert: the commit is refused for its name (the rules are never handed to Falco); the
    status and every log record show the newline escaped, never as a line of its own.
    """
    out = rig.install("main")
    caplog.set_level(logging.DEBUG)

    commit, out = pushed_and_synced(rig, out, {"rules.d/x\nERROR forged.yaml": MISSING_OUTPUT})

    assert blocked(out) == (
        not_used(commit) + r"file name 'rules.d/x\nERROR forged.yaml' is not printable UTF-8:"
        " rename it"
    )
    assert not any("\nERROR forged" in record.getMessage() for record in caplog.records)
    assert not [argv for argv in rig.machine.calls("falco") if "-V" in argv]


# -- repository sizes -------------------------------------------------------------------------


def test_an_oversized_file_is_refused_before_any_blob_is_read(rig: Rig) -> None:
    """arrange: rules from main. act: push a 2 MiB rules file. assert.

    The commit is refused from the sizes git reports (``cat-file --batch-check``): no blob
    is read at all (no ``cat-file --batch``); the last good rules stay.
    """
    out = rig.install("main")
    good = loaded(rig.machine)
    big = "# padding\n" * (2 * 1024 * 1024 // 10)

    commit, out = pushed_and_synced(rig, out, {"rules.d/20-big.yaml": big})

    assert blocked(out) == not_used(commit) + "rules.d/20-big.yaml is larger than 1024 KiB"
    cat_files = [argv for argv in rig.machine.calls("git") if "cat-file" in argv]
    assert cat_files and all("--batch-check" in argv for argv in cat_files)
    assert loaded(rig.machine) == good


@pytest.mark.parametrize(
    ("cap", "value", "files", "problem"),
    [
        (
            "MAX_ENTRIES",
            3,
            {f"rules.d/{n}.yaml": rule(f"R{n}") for n in range(3)},
            "rules.d/ and config.override.d/ hold more than 3 entries: keep at most 3",
        ),
        (
            "MAX_TOTAL_BYTES",
            2048,
            {f"rules.d/{n}.yaml": rule(f"R{n}") + "#" * 900 for n in range(2)},
            "the files of rules.d/ and config.override.d/ are larger than 2 KiB in all",
        ),
    ],
)
def test_too_many_files_or_too_much_content_refuse_the_commit(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, cap: str, value: int, files: Any, problem: str
) -> None:
    """arrange: rules from main, a cap made small. act: push more than it. assert: refused."""
    out = rig.install("main")
    good = loaded(rig.machine)
    monkeypatch.setattr(git_sync, cap, value)

    commit, out = pushed_and_synced(rig, out, files)

    assert blocked(out) == not_used(commit) + problem
    assert loaded(rig.machine) == good


# -- idle hooks -------------------------------------------------------------------------------


def test_an_idle_hook_neither_lists_the_repository_nor_renders_falco_yaml(rig: Rig) -> None:
    """arrange: rules from a tag, big selections. act: update-status twice. assert.

    Nothing derived is computed again: no git command at all (no tree listing, no blob
    read), falco.yaml is not rendered; nothing written.
    """
    selection = ",".join(f"rule {n}" for n in range(2000))
    out = rig.install("v1", **{"enabled-rules": selection})
    rig.machine.clear_calls()
    before = rig.machine.files()

    with record_calls(falco_config, ("render", "build")) as calls:
        for _ in range(2):
            out = rig.ctx.run(rig.ctx.on.update_status(), out)

    assert rig.machine.calls("git") == []
    assert calls.count("render", "build") == 0
    assert changed_files(before, rig.machine.files()) == 0
    assert out.unit_status == LOCAL_ONLY


def test_an_idle_hook_still_repairs_what_was_damaged(rig: Rig) -> None:
    """arrange: rules from a tag. act: falco.yaml edited by hand, a rules file edited in place.

    assert: the idle hook notices both (nothing cached is trusted over what is on disk):
    falco.yaml and the rules are what the charm wants again.
    """
    out = rig.install("v1")
    wanted = (rig.machine.root / CONFIG).read_text()
    good = loaded(rig.machine)
    (rig.machine.root / CONFIG).write_text(wanted + "# edited\n")
    rule_file = rule_set_dir(rig.machine) / "rules.d/10-custom.yaml"  # type: ignore[operator]
    with rule_file.open("r+") as stream:  # same size, same inode: only the content moves
        text = stream.read()
        stream.seek(0)
        stream.write(text.replace("WARNING", "WARNINg"))

    rig.ctx.run(rig.ctx.on.update_status(), out)

    assert loaded(rig.machine) == good
    assert (rig.machine.root / CONFIG).read_text().replace(
        str(rule_set_dir(rig.machine)), "<set>"
    ) == wanted.replace(str(rule_file.parent.parent), "<set>")


@pytest.mark.parametrize("damage", ["deleted", "edited"])
def test_an_idle_hook_puts_back_the_self_test_marker_rule(rig: Rig, damage: str) -> None:
    """arrange: an installed unit. act: its marker rule file deleted or edited, update-status.

    assert: the marker rule is back as the charm wrote it (Falco loads it like the others).
    """
    out = rig.install("v1")
    marker = rig.machine.root / "etc/juju-falco/self-test/self-test-debug.yaml"
    wanted = marker.read_text()
    if damage == "deleted":
        marker.unlink()
    else:
        marker.write_text(wanted.replace("priority:", "priority: EMERGENCY\n#"))

    rig.ctx.run(rig.ctx.on.update_status(), out)

    assert marker.read_text() == wanted


# -- private rules ----------------------------------------------------------------------------


def test_rules_from_a_private_repository_are_readable_by_root_only(rig: Rig) -> None:
    """arrange: a repository reached with a deploy key. act: install. assert: 0600 in 0700."""
    rig.install("v1", **{"custom-rules": rule("Inline")})

    base = rule_set_dir(rig.machine)
    assert base is not None
    for directory in (base.parent, base, base / "rules.d"):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
    for path in (base / "rules.d/10-custom.yaml", base / "custom-rules.yaml"):
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_rules_a_previous_charm_wrote_readable_by_all_are_written_again_at_the_upgrade(
    rig: Rig,
) -> None:
    """arrange: rules running, their files 0644 and dated as written (as before issue 14).

    act: upgrade-charm, then update-status. assert: the set is written again, private, with
    one hot reload; the next hook does nothing.
    """
    out = rig.install("v1")
    old = rule_set_dir(rig.machine)
    assert old is not None
    for path in (old, *old.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
        path.touch()
    rig.machine.clear_calls()
    inode = (rig.machine.root / CONFIG).stat().st_ino

    out = rig.ctx.run(rig.ctx.on.upgrade_charm(), out)

    new = rule_set_dir(rig.machine)
    assert new is not None and new.name == f"{old.name}-1"
    assert (new / "rules.d/10-custom.yaml").stat().st_mode & 0o777 == 0o600
    assert (rig.machine.root / CONFIG).stat().st_ino != inode
    assert rig.machine.restarts() == 0
    before = rig.machine.files()
    rig.ctx.run(rig.ctx.on.update_status(), out)
    assert changed_files(before, rig.machine.files()) == 0


# -- the deploy key and the git process -------------------------------------------------------


@pytest.mark.parametrize("config", [{}, {"driver": "no-such-driver"}])
def test_a_deploy_key_left_by_a_killed_hook_is_removed_by_the_next_hook(
    rig: Rig, config: dict[str, Any]
) -> None:
    """arrange: rules from a tag; the key on disk as a hook killed during fetch leaves it.

    act: update-status (no fetch is due), with valid options or not. assert: the key is gone.
    """
    out = rig.install("v1")
    key = rig.machine.root / "var/lib/juju-falco/custom-config-repo/ssh/deploy_key"
    key.write_text(DEPLOY_KEY)
    key.chmod(0o600)
    rig.machine.clear_calls()

    state = dataclasses.replace(out, config={**out.config, **config})
    rig.ctx.run(rig.ctx.on.update_status(), state)

    assert not key.exists()
    assert rig.machine.git_network_ops() == 0


_HOOK = """\
import sys
sys.path[:0] = {paths!r}
from pathlib import Path
import git_sync
from layout import Layout
git_sync._Git(Layout(Path({root!r}))).run("fetch", in_repository=False, timeout={timeout})
"""


def _sleeping_git(directory: Path, children: bool = False) -> Path:
    """A ``git`` that records its pid (and a child's) and sleeps: a fetch that never ends."""
    directory.mkdir()
    child = f'sleep 600 & echo $! > "{directory}/child.pid"\n' if children else ""
    script = directory / "git"
    script.write_text(f'#!/bin/sh\n{child}echo $$ > "{directory}/git.pid"\nexec sleep 600\n')
    script.chmod(0o755)
    return directory


def _pid(path: Path) -> int:
    wait_for(f"{path.name} written", lambda: path.is_file() and path.read_text().strip(), 30)
    return int(path.read_text())


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _process_group(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[2])


def _hook(tmp_path: Path, bin_dir: Path, timeout: int) -> subprocess.Popen[bytes]:
    code = _HOOK.format(paths=[str(SRC), str(LIB)], root=str(tmp_path / "root"), timeout=timeout)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    # Our own interpreter and code; the hook is the test's child.
    return subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)


def test_git_runs_in_the_hooks_process_group_and_dies_with_the_hook(tmp_path: Path) -> None:
    """arrange: a hook running a git that never ends. act: the hook is killed (SIGKILL).

    assert: git ran in the hook's process group, and ends with the hook instead of
    running on (holding the deploy key's directory and the repository's lock).
    """
    bin_dir = _sleeping_git(tmp_path / "bin")
    hook = _hook(tmp_path, bin_dir, timeout=600)
    git = _pid(bin_dir / "git.pid")
    try:
        assert _process_group(git) == _process_group(hook.pid)

        hook.send_signal(signal.SIGKILL)
        hook.wait()

        wait_for("git to end with the hook", lambda: not _alive(git), 15)
    finally:
        if _alive(git):
            os.kill(git, signal.SIGKILL)


def test_a_git_that_hangs_is_ended_with_its_children_at_the_timeout(tmp_path: Path) -> None:
    """arrange: a git that never ends and has a child (ssh). act: a 1 s timeout. assert.

    The hook gets a SyncError naming the timeout, and neither git nor its child runs on.
    """
    bin_dir = _sleeping_git(tmp_path / "bin", children=True)

    hook = _hook(tmp_path, bin_dir, timeout=1)
    _, stderr = hook.communicate(timeout=60)
    pids = [_pid(bin_dir / "git.pid"), _pid(bin_dir / "child.pid")]

    assert b"SyncError: git fetch took longer than 1s" in stderr
    for pid in pids:
        wait_for(f"process {pid} to end", lambda pid=pid: not _alive(pid), 15)


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        # ssh would read the user part as an option; git refuses it, the charm now does too.
        ("custom-config-repository", "git+ssh://-oProxyCommand=touch@git.example/org/r.git"),
        ("custom-config-repository", "git+ssh://git@git.example/" + "r" * 3000 + ".git"),
        ("enabled-rules", "Read sensitive file untrusted,\x00"),
        ("disabled-rules", "tag:network\x1b[2J"),
        # Python reads \x1c as a line break, ssh does not: what the charm checks must be
        # what ssh reads.
        (
            "custom-config-repo-known-hosts",
            f"evil.example ssh-ed25519 AAAA\x1c{KNOWN_HOSTS}",
        ),
        ("custom-rules", "- list: big\n  items: [" + "a, " * 400_000 + "b]\n"),
        # str.strip() takes these for blanks: at an end of the URL they were dropped
        # silently, and alone they read as "no repository" (found by the fuzz profile).
        ("custom-config-repository", "https://git.example/org/rules.git@v1\x0b"),
        ("custom-config-repository", "\x1chttps://git.example/org/rules.git@v1"),
        ("custom-config-repository", "https://git.example/org/rules.git@v1\u2028"),
        ("custom-config-repository", "\x85"),
    ],
)
def test_option_values_that_cannot_be_used_are_blocked_naming_the_option(
    ctx: Ctx, state: testing.State, machine: FakeMachine, option: str, value: str
) -> None:
    """arrange: Falco running. act: one option gets the value. assert: Blocked, nothing moves."""
    out = ctx.run(ctx.on.install(), state)
    before = machine.files()
    machine.clear_calls()

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={option: value}))

    assert blocked(out).startswith(f"invalid config '{option}': ")
    assert len(blocked(out)) <= 300
    assert changed_files(before, machine.files()) == 0
    assert machine.restarts() == 0


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(["tag:", "tag", ":", ",", "\n", " ", "\t", "a", "\u3000", "\r"])
    ).map("".join)
)
def test_the_light_selection_check_refuses_exactly_what_rendering_would(text: str) -> None:
    """arrange: any selection text. act: validate, build the selectors. assert: same verdict.

    The option is checked on every hook without building its selectors (idle hooks stay
    light); the check must refuse exactly what building them refuses.
    """
    try:
        config._selectors(text)
        builds = True
    except ValueError:
        builds = False
    try:
        config._check_selection(text)
        passes = True
    except ValueError:
        passes = False

    assert passes == builds


# -- http-endpoint ----------------------------------------------------------------------------


def test_a_plain_http_destination_delivers_and_says_it_is_not_encrypted(
    ctx: Ctx, state: testing.State, machine: FakeMachine
) -> None:
    """arrange: nothing. act: the sidekick publishes an http:// URL (the prior charm does).

    assert: Falco posts there; the status, Active, says the alerts are not encrypted.
    """
    relation = sidekick_relation("http://Sidekick.Example:2801/")

    out = ctx.run(ctx.on.install(), dataclasses.replace(state, relations={relation}))

    assert rendered(machine)["http_output"]["url"] == "http://sidekick.example:2801/"
    assert out.unit_status == testing.ActiveStatus(
        "alerts to sidekick.example are not encrypted (http): give the sidekick TLS"
        " (docs: production TLS)"
    )


@pytest.mark.parametrize(
    "tail",
    [
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        "junk after the certificate\n",
        "A" * (20 * 1024 * 1024),
    ],
)
def test_a_ca_with_anything_after_the_certificate_is_ignored(
    ctx: Ctx, state: testing.State, machine: FakeMachine, ca_pem: str, tail: str
) -> None:
    """arrange: alerts go to the sidekick with its CA. act: the CA gains a tail. assert.

    Nothing is written (not even the certificate part), no restart; the status says the
    data is ignored.
    """
    relation = sidekick_relation(ca_pem=ca_pem)
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, relations={relation}))
    before = machine.files()
    machine.clear_calls()
    tailed = sidekick_relation(ca_pem=ca_pem + tail)

    out = ctx.run(ctx.on.relation_changed(tailed), dataclasses.replace(out, relations={tailed}))

    assert blocked(out).startswith(
        f"http-endpoint data ignored (keeping the previous destination): {SIDEKICK}: 'ca_cert'"
    )
    assert changed_files(before, machine.files()) == 0
    assert machine.restarts() == 0


def test_remote_values_are_logged_by_a_short_prefix(
    ctx: Ctx, state: testing.State, caplog: pytest.LogCaptureFixture
) -> None:
    """arrange: alerts go to the sidekick. act: it publishes a 2 MiB URL; two hooks. assert."""
    caplog.set_level(logging.DEBUG)
    huge = sidekick_relation("https://sidekick.example/" + "a" * (2 * 1024 * 1024))
    out = ctx.run(ctx.on.install(), dataclasses.replace(state, relations={huge}))

    ctx.run(ctx.on.update_status(), out)

    long = [r.getMessage()[:80] for r in caplog.records if len(r.getMessage()) > MAX_LOGGED]
    assert long == []


def test_a_url_the_loose_parser_reads_otherwise_is_used_as_the_strict_one_reads_it(
    ctx: Ctx, state: testing.State, machine: FakeMachine
) -> None:
    """arrange: nothing. act: a URL where a backslash hides a host from a loose parser.

    assert: Falco gets the normalised URL (no backslash left for libcurl to read its own
    way), and the status names the host alerts really go to.
    """
    relation = sidekick_relation("http://sidekick.example:2801\\@elsewhere.example/")

    out = ctx.run(ctx.on.install(), dataclasses.replace(state, relations={relation}))

    url = rendered(machine)["http_output"]["url"]
    assert "\\" not in url
    assert url.startswith("http://sidekick.example:2801/")
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert out.unit_status.message.startswith("alerts to sidekick.example are not encrypted")


def test_the_repository_options_are_documented_with_their_caps() -> None:
    """arrange: charmcraft.yaml. act: read the repository option. assert: caps stated."""
    import yaml

    charmcraft = yaml.safe_load((SRC.parent / "charmcraft.yaml").read_text())
    description = charmcraft["config"]["options"]["custom-config-repository"]["description"]
    flat = " ".join(description.split())
    for cap in (
        f"{git_sync.MAX_ENTRIES} entries",
        f"{git_sync.MAX_FILE_BYTES // 1024} KiB",
        f"{git_sync.MAX_TOTAL_BYTES // (1024 * 1024)} MiB",
    ):
        assert cap in flat, cap
