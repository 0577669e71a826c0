"""Custom rules and config overrides: collect, vet, plan and report. No Ops.

Falco loads, in this order: its default rules, the repository's ``rules.d/*.yaml|yml`` (by
name), then the ``custom-rules`` option, so a later file can override or extend anything
before it. The repository's ``config.override.d/*.yaml|yml`` are not handed to Falco: the
charm merges them into the one falco.yaml it renders, after checking that they only touch
keys an override may change (``OVERRIDABLE``). Outputs and their CA, listeners, the engine,
plugins and which files are loaded stay the charm's. How rule sets are kept on disk is
``rule_store``'s.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

import falco_config
import git_sync
import records
import yaml
from git_sync import ContentError, SyncRecord, TreeEntry
from layout import Layout
from rule_store import OVERRIDES_DIR, RULES_DIR, SUFFIXES, RuleSet, SourceFile, live, rules_files

# File names become names on this machine's disk; keep well inside NAME_MAX (255 bytes).
MAX_NAME_BYTES = 200
_REGULAR_FILE_MODES = ("100644", "100755")
_SYMLINK_MODE = "120000"
_TREE_MODE = "040000"

# Keys a config override may set. Everything else is either the charm's (outputs and their
# CA, listeners, engine, plugins, the files Falco loads and watches, the JSON alert format
# Falcosidekick parses) or has an option of its own.
OVERRIDABLE = frozenset(
    {
        "rule_matching",
        "base_syscalls",
        "falco_libs",
        "syscall_event_drops",
        "syscall_event_timeouts",
        "output_timeout",
        "append_output",
        "static_fields",
        "log_level",
        "libs_logger",
    }
)
OPTION_FOR = {
    "priority": "the minimum-priority option",
    "rules": "the enabled-rules and disabled-rules options",
    "outputs_queue": "the outputs-queue-capacity option",
    "engine": "the driver and buffer-size-preset options",
    "http_output": "the http-endpoint relation",
}


class Blobs(Protocol):
    """A commit's objects: their sizes first (cheap), then their content (``git_sync.Objects``)."""

    def sizes(self, oids: list[str]) -> dict[str, int]:
        """Return the size of each blob of ``oids``."""

    def read(self, wanted: dict[str, int]) -> dict[str, bytes]:
        """Return the content of each blob of ``wanted`` (oid to size)."""


# ------------------------------------------------------------------------------ collecting
def _unsafe(path: str) -> bool:
    # Split by hand: PurePosixPath would quietly drop "." and empty components.
    return any(part in ("", ".", "..") for part in path.split("/"))


def _check_directories(entries: list[TreeEntry]) -> None:
    by_path = {entry.path: entry for entry in entries}
    for directory in (RULES_DIR, OVERRIDES_DIR):
        entry = by_path.get(directory)
        if entry is not None and entry.mode != _TREE_MODE:
            kind = "a symbolic link" if entry.mode == _SYMLINK_MODE else "not a directory"
            raise ContentError(f"{directory} is {kind}: commit a real directory")
    if RULES_DIR not in by_path:
        raise ContentError(
            f"the repository has no {RULES_DIR}/ directory: add {RULES_DIR}/*.yaml "
            f"({RULES_DIR}/.gitkeep for none)"
        )


def _wanted(entries: list[TreeEntry]) -> list[TreeEntry]:
    """Return the files to load; refuse links and paths that could leave the repository."""
    files = []
    for entry in entries:
        if _unsafe(entry.path):
            raise ContentError(f"{entry.path!r} is not a plain path inside the repository")
        if entry.mode == _SYMLINK_MODE:
            raise ContentError(f"{entry.path} is a symbolic link: commit the file itself")
        _, _, name = entry.path.partition("/")
        if "/" in name or not name.endswith(SUFFIXES):
            continue  # subdirectories and other files are not Falco's
        if entry.mode not in _REGULAR_FILE_MODES:
            raise ContentError(f"{entry.path} is not a regular file")
        if len(name.encode()) > MAX_NAME_BYTES:
            raise ContentError(
                f"{entry.path[:60]}... has a name longer than {MAX_NAME_BYTES} bytes"
            )
        files.append(entry)
    return sorted(files, key=lambda entry: entry.path)


def _in_units(size: int) -> str:
    mib = 1 << 20
    return f"{size // mib} MiB" if size % mib == 0 else f"{size // 1024} KiB"


def _check_sizes(wanted: list[TreeEntry], sizes: dict[str, int]) -> dict[str, int]:
    """Refuse a file or all files larger than git_sync's caps; return the sizes to read."""
    per_file, in_all = git_sync.MAX_FILE_BYTES, git_sync.MAX_TOTAL_BYTES
    for entry in wanted:
        if sizes[entry.oid] > per_file:
            raise ContentError(f"{entry.path} is larger than {per_file // 1024} KiB")
    if sum(sizes[entry.oid] for entry in wanted) > in_all:
        raise ContentError(
            f"the files of {RULES_DIR}/ and {OVERRIDES_DIR}/ are larger than "
            f"{_in_units(in_all)} in all"
        )
    return {entry.oid: sizes[entry.oid] for entry in wanted}


def from_repository(
    entries: list[TreeEntry], objects: Blobs
) -> tuple[tuple[SourceFile, ...], tuple[SourceFile, ...]]:
    """Return the repository's rules and overrides; raise ContentError if any is unusable.

    Sizes are checked before any content is read: a file too large is never read at all.
    """
    _check_directories(entries)
    wanted = _wanted(entries)
    blobs = objects.read(_check_sizes(wanted, objects.sizes([entry.oid for entry in wanted])))
    rules, overrides = [], []
    for entry in wanted:
        data = blobs[entry.oid]
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            raise ContentError(f"{entry.path} is not UTF-8 text") from exc
        source = SourceFile(entry.path, text)
        if entry.path.startswith(f"{RULES_DIR}/"):
            rules.append(source)
        else:
            override_document(source)
            overrides.append(source)
    return tuple(rules), tuple(overrides)


# ------------------------------------------------------------------------------ overrides
def _check_drops(name: str, value: Any) -> None:
    if not isinstance(value, dict):
        return
    if "exit" in (value.get("actions") or []):
        raise ContentError(f"{name}: syscall_event_drops action 'exit' would stop detection")
    if value.get("simulate_drops"):
        raise ContentError(f"{name}: syscall_event_drops.simulate_drops is for testing only")


def _check_append_output(name: str, value: Any) -> None:
    for item in value if isinstance(value, list) else []:
        fields = item.get("extra_fields") if isinstance(item, dict) else None
        for field in fields if isinstance(fields, list) else []:
            names = field.keys() if isinstance(field, dict) else [field]
            if any(str(key).startswith("juju_") for key in names):
                raise ContentError(f"{name}: juju_* alert fields are set by the charm")


def override_document(source: SourceFile) -> dict[str, Any]:
    """Return the config override in ``source``; raise ContentError if it may not apply."""
    try:
        data = falco_config.load_yaml(source.text)
    except yaml.YAMLError as exc:
        raise ContentError(f"{source.name} is not valid YAML: {exc}".splitlines()[0]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ContentError(f"{source.name} must be a mapping of falco.yaml keys")
    for key in data:
        if key in OPTION_FOR:
            raise ContentError(f"{source.name}: '{key}' is set by {OPTION_FOR[key]}")
        if key not in OVERRIDABLE:
            raise ContentError(
                f"{source.name}: '{key}' is managed by the charm (overridable: "
                f"{', '.join(sorted(OVERRIDABLE))})"
            )
    _check_drops(source.name, data.get("syscall_event_drops"))
    _check_append_output(source.name, data.get("append_output"))
    return data


def override_documents(rule_set: RuleSet) -> list[dict[str, Any]]:
    """Return the overrides of ``rule_set`` in merge order (vetted when collected)."""
    return [override_document(source) for source in rule_set.overrides]


# ------------------------------------------------------------------------------ planning
@dataclass(frozen=True)
class Plan:
    """The rule set to try, the one running now, and why the repository could not be used."""

    candidate: RuleSet
    live: RuleSet
    # The commit the candidate's repository part comes from; None when it is not fresh.
    commit: str | None = None
    problem: str | None = None
    repository: bool = False


@dataclass(frozen=True)
class Sources:
    """Where the custom rules come from: the custom-rules option, the repository's sync.

    ``synced`` is None without a repository.
    """

    inline: str
    synced: SyncRecord | None = None

    def identity(self) -> dict[str, Any]:
        """Everything the plan depends on, for steady.py (the commit stands for its files)."""
        synced = self.synced
        return {
            "inline": hashlib.sha256(self.inline.encode()).hexdigest(),
            "repository": None if synced is None else [synced.commit, synced.error],
        }


def plan(layout: Layout, sources: Sources) -> Plan:
    """Return what to run from ``sources``.

    When the repository cannot be used (never fetched, unusable content), its part of the
    candidate is the one running now: the inline rules still move on, nothing is lost.
    """
    inline, synced = sources.inline, sources.synced
    current = live(layout)
    if synced is None:
        return Plan(RuleSet(inline=inline), current)
    keep_repo = RuleSet(current.repo_rules, current.overrides, inline)
    problem = f"custom-config-repository not synced: {synced.error}" if synced.error else None
    if synced.commit is None:
        return Plan(keep_repo, current, problem=problem, repository=True)
    try:
        entries = git_sync.tree(layout, synced.commit)
        repo_rules, overrides = from_repository(entries, git_sync.Objects(layout))
    except (ContentError, git_sync.SyncError) as exc:
        problem = f"custom-config-repository commit {synced.commit[:12]} not used: {exc}"
        return Plan(keep_repo, current, problem=problem, repository=True)
    candidate = RuleSet(repo_rules, overrides, inline)
    return Plan(candidate, current, synced.commit, problem, repository=True)


# ------------------------------------------------------------------------------ record
@dataclass(frozen=True)
class Report:
    """What the custom rules came to, for the status and the refresh-rules action."""

    files: tuple[str, ...] = ()
    commit: str | None = None
    problem: str | None = None

    def action_results(self) -> dict[str, str]:
        """Return the refresh-rules action's results: what runs, from where, the verdict."""
        return {
            "commit": self.commit or "none",
            "files": "\n".join(self.files) or "none (default rules only)",
            "validation": self.problem or "ok",
        }


def read_report(layout: Layout) -> Report:
    """Return the recorded report (empty when there are no custom rules)."""
    data = records.read(layout.rules_record) or {}
    return Report(
        files=tuple(str(name) for name in data.get("files") or ()),
        commit=data.get("commit"),
        problem=data.get("problem"),
    )


def write_report(layout: Layout, report: Report) -> bool:
    """Record ``report`` (change-driven); delete the record when there is nothing to say."""
    if report == Report():
        existed = layout.rules_record.exists()
        layout.rules_record.unlink(missing_ok=True)
        return existed
    data = {"files": list(report.files), "commit": report.commit, "problem": report.problem}
    return records.write(layout.rules_record, data)


def report(layout: Layout, planned: Plan, rules_problem: str | None, previous: Report) -> Report:
    """Return the report after converging: what runs, from which commit, what went wrong."""
    accepted = rules_problem is None
    running = planned.candidate if accepted else planned.live
    files = tuple(rules.name for rules in rules_files(layout, running))
    files += tuple(source.name for source in running.overrides)
    commit = planned.commit if accepted and planned.commit else previous.commit
    if not planned.repository:
        commit = None
    if rules_problem is not None:
        problem: str | None = f"custom rules refused, the last good set runs: {rules_problem}"
    else:
        problem = planned.problem
    return Report(files=files, commit=commit, problem=problem)
