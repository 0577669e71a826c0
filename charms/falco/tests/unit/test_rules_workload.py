"""Pure tests of repository URLs, pinned host keys, the sync schedule and content policy."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import shutil
from pathlib import Path

import custom_rules
import falco_cli
import falco_config
import git_sync
import pytest
import repository
import rule_store
from custom_rules import ContentError, SourceFile
from git_sync import Settings, SyncRecord, TreeEntry
from layout import Layout
from repository import Repository

KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIHVGzeGMZzHOPJ5vM/OGWcs7ZOf9U9BB36Zi5S5Xx4nD"


# ------------------------------------------------------------------------------ URLs
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "git+ssh://git@github.com/org/rules.git@v1.2",
            Repository("ssh", "github.com", "/org/rules.git", "v1.2", "git", None),
        ),
        (
            "ssh://deploy@10.0.0.5:2222/srv/git/rules.git",
            Repository("ssh", "10.0.0.5", "/srv/git/rules.git", "", "deploy", 2222),
        ),
        (
            "https://gitlab.example.com/sec/falco-rules@release/2025.11",
            Repository("https", "gitlab.example.com", "/sec/falco-rules", "release/2025.11"),
        ),
        (
            "git+ssh://git@[fd00::1]:22/rules.git@" + "a" * 40,
            Repository("ssh", "[fd00::1]", "/rules.git", "a" * 40, "git", 22),
        ),
    ],
)
def test_repository_urls_the_charm_accepts(url: str, expected: Repository) -> None:
    """arrange: a supported URL. act: parse. assert: the parts."""
    assert repository.parse_repository(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("git@github.com:org/rules.git", "use the URL form git+ssh://"),
        ("http://example.com/rules.git", "expected git+ssh://"),
        ("file:///srv/rules.git", "expected git+ssh://"),
        ("https://user:token@example.com/rules.git", "credentials do not belong in the URL"),
        ("ssh://example.com/rules.git", "needs a user"),
        ("ssh://git:hunter2@example.com/rules.git", "credentials do not belong in the URL"),
        ("git+ssh://git@example.com:70000/rules.git", "port 70000 is not between"),
        ("git+ssh://git@example.com/rules.git@-upload-pack=evil", "is not a branch, tag"),
        ("git+ssh://git@example.com/rules.git@a..b", "is not a branch, tag"),
        ("git+ssh://git@-oProxyCommand=evil/rules.git", "expected git+ssh://"),
        ("git+ssh://git@example.com/../rules.git", "must not contain '..'"),
        # Found by fuzzing: user and path let any character through, and a NUL in git's
        # arguments made the hook crash instead of blocking.
        ("git+ssh://g\x00it@example.com/rules.git", "contains control characters"),
        ("git+ssh://git@example.com/ru\x1bles.git@v1", "contains control characters"),
        ("https://example.com/rules\x7f.git", "contains control characters"),
    ],
)
def test_repository_urls_the_charm_refuses(url: str, problem: str) -> None:
    """arrange: an unusable or unsafe URL. act: parse. assert: ValueError saying why."""
    with pytest.raises(ValueError, match=problem.replace(".", r"\.").replace("+", r"\+")):
        repository.parse_repository(url)


def test_a_long_wrong_ref_is_quoted_short() -> None:
    """arrange: a wrong ref of 500 characters. act: parse. assert: the message stays short."""
    with pytest.raises(ValueError, match="is not a branch, tag or commit name") as refused:
        repository.parse_repository("git+ssh://git@example.com/rules.git@" + "x" * 500 + ":")

    assert len(str(refused.value)) < 120


def test_repository_names_for_known_hosts_and_messages() -> None:
    """arrange: default and custom ports. act: read names. assert: ssh's own spelling."""
    default = repository.parse_repository("git+ssh://git@h.example/r.git@main")
    custom = repository.parse_repository("ssh://git@h.example:2222/r.git")
    https = repository.parse_repository("https://h.example/r.git")

    assert (default.known_hosts_name, default.address) == ("h.example", "h.example:22")
    assert (custom.known_hosts_name, custom.address) == ("[h.example]:2222", "h.example:2222")
    assert https.address == "h.example:443"
    assert default.display == "ssh://git@h.example/r.git@main"
    assert custom.fetch_url == "ssh://git@h.example:2222/r.git"


# ------------------------------------------------------------------------------ known_hosts
def _hashed(name: str) -> str:
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"# pinned 2025-11\n\ngit.example ssh-ed25519 {KEY}\n", None),
        (f"@cert-authority *.example ssh-ed25519 {KEY}", None),
        (f"[git.example]:2222,10.0.0.5 ecdsa-sha2-nistp256 {KEY} comment", None),
        ("git.example ssh-ed25519", "line 1 is not '<host> <key type> <base64 key>'"),
        (f"git.example ssh-foo {KEY}", "line 1 is not '<host> <key type> <base64 key>'"),
        ("git.example ssh-ed25519 not!base64", "line 1: the key is not base64"),
        (f"@trusted git.example ssh-ed25519 {KEY}", "line 1: unknown marker @trusted"),
        (f"@{'x' * 500} h ssh-ed25519 {KEY}", f"line 1: unknown marker @{'x' * 36}..."),
    ],
)
def test_known_hosts_lines_are_checked(text: str, problem: str | None) -> None:
    """arrange: known_hosts text. act: check. assert: the problem, or none."""
    assert repository.known_hosts_problem(text) == problem


@pytest.mark.parametrize(
    ("line", "name", "pinned"),
    [
        (f"git.example ssh-ed25519 {KEY}", "git.example", True),
        (f"git.example ssh-ed25519 {KEY}", "[git.example]:2222", False),
        (f"[git.example]:2222 ssh-ed25519 {KEY}", "[git.example]:2222", True),
        (f"*.example,!evil.example ssh-ed25519 {KEY}", "git.example", True),
        (f"*.example,!evil.example ssh-ed25519 {KEY}", "evil.example", False),
        (f"{_hashed('git.example')} ssh-ed25519 {KEY}", "git.example", True),
        (f"{_hashed('git.example')} ssh-ed25519 {KEY}", "other.example", False),
        (f"|1|broken ssh-ed25519 {KEY}", "git.example", False),
        (f"@revoked git.example ssh-ed25519 {KEY}", "git.example", False),
        (f"@cert-authority *.example ssh-ed25519 {KEY}", "git.example", True),
    ],
)
def test_which_host_a_known_hosts_line_pins(line: str, name: str, pinned: bool) -> None:
    """arrange: one line. act: ask for a host. assert: ssh's matching rules."""
    assert repository.pins_host(line, name) is pinned


# ------------------------------------------------------------------------------ schedule
SETTINGS = Settings(repository.parse_repository("ssh://git@h/r.git@main"), interval_s=900)


@pytest.mark.parametrize(
    ("record", "now", "due"),
    [
        (None, 0, True),
        (SyncRecord("u", "other source", 0, "c", "branch", 0), 1, True),
        (SyncRecord("u", SETTINGS.source, 0, "c", "branch", 0), 899, False),
        (SyncRecord("u", SETTINGS.source, 0, "c", "branch", 0), 900, True),
        (SyncRecord("u", SETTINGS.source, 0, "c", "tag", 0), 10**9, False),
        (SyncRecord("u", SETTINGS.source, 0, "c", "commit", 0), 10**9, False),
        (SyncRecord("u", SETTINGS.source, 100, "c", "tag", 0, "down"), 500, False),
        (SyncRecord("u", SETTINGS.source, 100, "c", "tag", 0, "down"), 1000, True),
        (SyncRecord("u", SETTINGS.source, 1000, "c", "branch", 1000), 10, True),
    ],
)
def test_when_a_sync_is_due(record: SyncRecord | None, now: float, due: bool) -> None:
    """arrange: the last sync. act: ask at ``now``. assert: due or not."""
    assert git_sync.is_due(record, SETTINGS, now) is due


def test_the_source_changes_with_what_a_fetch_depends_on() -> None:
    """arrange: settings. act: change key id, pins, ref, interval. assert: source or not."""
    base = SETTINGS
    changed = [
        Settings(base.repository, known_hosts="h ssh-ed25519 AAAA"),
        Settings(base.repository, ssh_key_secret="secret:new"),  # noqa: S106 - an id
        Settings(repository.parse_repository("ssh://git@h/r.git@v2")),
    ]
    assert all(s.source != base.source for s in changed)
    assert Settings(base.repository, interval_s=60).source == base.source


def test_an_unreadable_record_counts_as_none(tmp_path: Path) -> None:
    """arrange: a record with unknown fields. act: read it. assert: None (sync again)."""
    layout = Layout(tmp_path)
    layout.state_dir.mkdir(parents=True)
    layout.repo_record.write_text(json.dumps({"url": "u", "surprise": 1}))

    assert git_sync.read_record(layout) is None


# ------------------------------------------------------------------------------ content
def entry(path: str, mode: str = "100644", kind: str = "blob") -> TreeEntry:
    return TreeEntry(mode, kind, hashlib.sha256(path.encode()).hexdigest()[:40], path)


@dataclasses.dataclass(frozen=True)
class Contents:
    """A commit's objects, every blob holding ``text``, as git's object store answers."""

    text: bytes

    def sizes(self, oids: list[str]) -> dict[str, int]:
        return dict.fromkeys(oids, len(self.text))

    def read(self, wanted: dict[str, int]) -> dict[str, bytes]:
        assert all(size == len(self.text) for size in wanted.values())
        return dict.fromkeys(wanted, self.text)


def contents(entries: list[TreeEntry], text: bytes = b"- list: a\n  items: []\n") -> Contents:
    return Contents(text)


RULES_DIR = entry("rules.d", "040000", "tree")


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([entry("other.yaml")], "the repository has no rules.d/ directory"),
        ([entry("rules.d", "120000")], "rules.d is a symbolic link"),
        ([entry("rules.d", "160000", "commit")], "rules.d is not a directory"),
        ([RULES_DIR, entry("rules.d/x.yaml", "120000")], "rules.d/x.yaml is a symbolic link"),
        ([RULES_DIR, entry("rules.d/../../etc/x.yaml")], "is not a plain path"),
        ([RULES_DIR, entry("rules.d/./x.yaml")], "is not a plain path"),
        ([RULES_DIR, entry("/rules.d/x.yaml")], "is not a plain path"),
        ([RULES_DIR, entry("rules.d/sub.yaml", "160000", "commit")], "not a regular file"),
        ([RULES_DIR, entry("rules.d/" + "x" * 200 + ".yaml")], "name longer than 200 bytes"),
        (
            [RULES_DIR, entry("config.override.d", "120000")],
            "config.override.d is a symbolic link",
        ),
    ],
)
def test_content_that_is_refused(entries: list[TreeEntry], problem: str) -> None:
    """arrange: a repository tree. act: collect. assert: ContentError naming the path."""
    with pytest.raises(ContentError, match=problem.replace(".", r"\.")):
        custom_rules.from_repository(entries, contents(entries))


def test_content_that_is_ignored_or_loaded_in_name_order() -> None:
    """arrange: rules, overrides and other files. act: collect. assert: what is kept."""
    entries = [
        RULES_DIR,
        entry("rules.d/b.yml"),
        entry("rules.d/a.yaml"),
        entry("rules.d/README.md"),
        entry("rules.d/nested/c.yaml"),
        entry("rules.d/nested", "040000", "tree"),
        entry("config.override.d", "040000", "tree"),
        entry("config.override.d/10.yaml"),
        entry("config.override.d/link.txt", "120000"),
    ]

    with pytest.raises(ContentError, match=r"link\.txt is a symbolic link"):
        custom_rules.from_repository(entries, contents(entries, b"rule_matching: all\n"))
    rules, overrides = custom_rules.from_repository(
        entries[:-1], contents(entries, b"rule_matching: all\n")
    )
    assert [r.name for r in rules] == ["rules.d/a.yaml", "rules.d/b.yml"]
    assert [o.name for o in overrides] == ["config.override.d/10.yaml"]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff\xfe not utf-8", "rules.d/a.yaml is not UTF-8 text"),
        (b"x" * (git_sync.MAX_FILE_BYTES + 1), "rules.d/a.yaml is larger than 1024 KiB"),
    ],
)
def test_files_that_cannot_be_rules(data: bytes, problem: str) -> None:
    """arrange: binary or huge content. act: collect. assert: refused."""
    entries = [RULES_DIR, entry("rules.d/a.yaml")]

    with pytest.raises(ContentError, match=problem):
        custom_rules.from_repository(entries, contents(entries, data))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rule_matching: all\nbase_syscalls: {repair: true}\n", None),
        ("", None),
        ("log_level: debug\nlibs_logger: {severity: info}\n", None),
        ("syscall_event_drops: {threshold: 0.2, actions: [log]}\n", None),
        ("priority: error\n", "'priority' is set by the minimum-priority option"),
        ("rules: []\n", "'rules' is set by the enabled-rules and disabled-rules options"),
        ("engine: {kind: kmod}\n", "'engine' is set by the driver and buffer-size-preset"),
        ("outputs_queue: {capacity: 0}\n", "'outputs_queue' is set by the outputs-queue"),
        ("webserver: {enabled: true}\n", "'webserver' is managed by the charm"),
        ("plugins: []\n", "'plugins' is managed by the charm"),
        ("rules_files: [/tmp/x]\n", "'rules_files' is managed by the charm"),
        ("config_files: [/tmp/x]\n", "'config_files' is managed by the charm"),
        ("json_output: false\n", "'json_output' is managed by the charm"),
        ("syscall_event_drops: {actions: [exit]}\n", "action 'exit' would stop detection"),
        ("syscall_event_drops: {simulate_drops: true}\n", "simulate_drops is for testing"),
        (
            "append_output:\n  - extra_fields: [{juju_unit: spoofed}]\n",
            "juju_\\* alert fields are set by the charm",
        ),
        ("- a list\n", "must be a mapping of falco.yaml keys"),
        ("key: [unclosed\n", "is not valid YAML"),
        ("log_level: \ud800\n", "is not valid YAML"),
    ],
)
def test_config_override_keys(text: str, problem: str | None) -> None:
    """arrange: an override file. act: vet it. assert: allowed, or refused with why."""
    source = SourceFile("config.override.d/x.yaml", text)
    if problem is None:
        assert isinstance(custom_rules.override_document(source), dict)
    else:
        with pytest.raises(ContentError, match=problem):
            custom_rules.override_document(source)


def test_overrides_merge_like_falcos_append_strategy() -> None:
    """arrange: charm config and an override. act: merge. assert: maps, lists, scalars."""
    base = {"a": {"x": 1, "y": [1]}, "list": [1], "s": "old"}
    override = {"a": {"y": [2], "z": 3}, "list": [2], "s": "new", "n": {"k": 1}}

    assert falco_config.merge(base, override) == {
        "a": {"x": 1, "y": [1, 2], "z": 3},
        "list": [1, 2],
        "s": "new",
        "n": {"k": 1},
    }
    assert base["a"] == {"x": 1, "y": [1]}


def test_yaml_reads_comparison_operators_like_falco() -> None:
    """arrange: an exception with a bare '='. act: load. assert: a string, as in Falco."""
    assert falco_config.load_yaml("comps: [=, startswith]") == {"comps": ["=", "startswith"]}


# ------------------------------------------------------------------------------ falco -V
def test_validate_names_the_first_failing_file(fake_falco: Path, tmp_path: Path) -> None:
    """arrange: a good file then two bad ones. act: validate in order. assert: the first."""
    good, bad, worse = (tmp_path / f"{n}.yaml" for n in ("good", "bad", "worse"))
    good.write_text("- macro: m\n  condition: evt.type = open\n")
    bad.write_text(
        "- macro: m\n  condition: and proc.name = cat\n  override: {condition: append}\n"
        "- list: missing\n  items: [a]\n  override: {items: append}\n"
    )
    worse.write_text("{not: a list}\n")

    verdict = falco_cli.validate_rules(fake_falco, tmp_path / "none.yaml", [good, bad, worse])
    assert verdict.ok is False
    assert verdict.message.startswith("Could not find configuration file")

    config = tmp_path / "falco.yaml"
    config.write_text("json_output: false\n")
    verdict = falco_cli.validate_rules(fake_falco, config, [good, bad, worse])
    assert verdict == falco_cli.RulesVerdict(
        ok=False,
        file=str(bad),
        message="List uses 'append' or 'override.<key>: append' but no list by that name "
        "already exists",
        item="list 'missing'",
    )
    assert falco_cli.validate_rules(fake_falco, config, [good]).ok


@pytest.mark.parametrize(
    ("script", "verdict"),
    [
        ("echo 'Error: boom' >&2; exit 1", falco_cli.RulesVerdict(ok=False, message="boom")),
        ("exit 0", falco_cli.RulesVerdict(ok=True)),
        (
            "echo '{\"falco_load_results\": [{\"successful\": true}]}'; echo 'Error: x' >&2;"
            " exit 1",
            falco_cli.RulesVerdict(ok=False, message="x"),
        ),
        (
            "echo '2026-12-05T11:06:56+0000: Error reading config file ('$2'): no.' >&2;"
            "echo 'Error: Error reading config file ('$2'): bad value' >&2; exit 1",
            falco_cli.RulesVerdict(ok=False, message="Error reading config file: bad value"),
        ),
    ],
)
def test_validate_copes_with_what_a_binary_prints(
    tmp_path: Path, script: str, verdict: falco_cli.RulesVerdict
) -> None:
    """arrange: a binary without JSON output. act: validate. assert: its error line."""
    binary = tmp_path / "falco"
    binary.write_text(f"#!/bin/sh\n{script}\n")
    binary.chmod(0o755)
    config = tmp_path / "c.yaml"

    got = falco_cli.validate_rules(binary, config, [])

    # Failing without a file of its own, Falco refused the config it was given.
    assert got == dataclasses.replace(verdict, file=None if verdict.ok else str(config))


def test_validate_with_a_binary_that_cannot_run(tmp_path: Path) -> None:
    """arrange: no binary. act: validate. assert: a failed verdict, not an exception."""
    verdict = falco_cli.validate_rules(tmp_path / "nope", tmp_path / "c.yaml", [])

    assert verdict.ok is False
    assert "cannot run" in verdict.message


def test_report_is_not_kept_when_there_is_nothing_to_say(tmp_path: Path) -> None:
    """arrange: a report, then an empty one. act: write both. assert: record deleted."""
    layout = Layout(tmp_path)
    assert custom_rules.write_report(layout, custom_rules.Report(files=("a",))) is True
    assert custom_rules.write_report(layout, custom_rules.Report(files=("a",))) is False

    assert custom_rules.write_report(layout, custom_rules.Report()) is True
    assert not layout.rules_record.exists()
    assert custom_rules.write_report(layout, custom_rules.Report()) is False


# ------------------------------------------------------------------------------ rule store
def _damage_written_set(base: Path, how: str) -> None:
    """Damage the set written in ``base`` the way ``how`` says."""
    rules = base / "rules.d"
    if how == "file deleted":
        (rules / "10-a.yaml").unlink()
    elif how == "file added":
        (rules / "30-new.yml").write_text("- list: new\n  items: []\n")
    elif how == "file grown":
        with (rules / "10-a.yaml").open("a") as stream:
            stream.write("# more\n")
    elif how == "edited in place":
        with (rules / "10-a.yaml").open("r+") as stream:
            stream.write("#")
    elif how == "file mode":
        (rules / "10-a.yaml").chmod(0o644)
    elif how == "directory mode":
        rules.chmod(0o755)
    elif how == "override deleted":
        (base / "config.override.d/50-o.yaml").unlink()
    elif how == "inline deleted":
        (base / "custom-rules.yaml").unlink()
    elif how == "rules.d gone":
        shutil.rmtree(rules)


DAMAGE = [
    "file deleted",
    "file added",
    "file grown",
    "edited in place",
    "file mode",
    "directory mode",
    "override deleted",
    "inline deleted",
    "rules.d gone",
]


@pytest.mark.parametrize("how", [None, *DAMAGE])
def test_the_stat_only_check_passes_exactly_the_sets_byte_for_byte_equal(
    tmp_path: Path, how: str | None
) -> None:
    """arrange: a rule set written, then damaged (or not). act: intact, damage. assert: agree.

    ``intact`` (idle hooks, stat only) never passes a set that ``damage`` (bytes) refuses.
    """
    layout = Layout(tmp_path)
    rule_set = rule_store.RuleSet(
        repo_rules=tuple(
            SourceFile(f"rules.d/{n}0-{c}.yaml", f"- list: {c}\n  items: []\n")
            for n, c in ((1, "a"), (2, "b"))
        ),
        overrides=(SourceFile("config.override.d/50-o.yaml", "- list: o\n  items: []\n"),),
        inline="- list: inline\n  items: []\n",
    )
    base = rule_store.ensure_written(layout, rule_set)
    assert base is not None
    if how is not None:
        _damage_written_set(base, how)

    intact = rule_store.intact(base, rule_set.manifest())

    assert intact is (how is None)
    assert (rule_store.damage(base, rule_set) is None) is (how is None)
