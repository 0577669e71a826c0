"""Custom rule sets on disk, kept whole by the charm. No Ops.

A rule set (the repository's rules and overrides, the ``custom-rules`` option) lives in a
directory under ``/etc/juju-falco/rules`` named by its content digest, and is never modified;
falco.yaml lists its files after the default rules. Switching rule sets is thus one atomic
replacement of falco.yaml, which Falco's watcher turns into exactly one reload. The previous
rule set stays on disk until the next change, because Falco may still be watching its files
while it reloads, and deleting them then would start a second reload.

Files on disk can be deleted or edited by anyone with root on the machine, so they are not
where the charm keeps what it wrote: the content of each rule set is also recorded in the
charm's state (``/var/lib/juju-falco/rule-sets/<digest>.json``, 0600). The rules that run
(the last known good) are read from there, never from what is left on disk. Each hook
compares the running set's files with the record, byte for byte: they are a handful of
small files, and a digest would have to read them all the same; a file Falco would load
that is missing, altered or added counts. A damaged set is written again whole, to a new
directory (``<digest>-<n>``), and falco.yaml switched to it: Falco re-reads a replaced
falco.yaml, but a file recreated where it watched one that was deleted goes unnoticed (its
watch went with the file; seen with the real Falco 0.44.1), so repairing in place would
leave it running without the rules.

Rules may come from a private repository, and Falco runs as root: a set's directories are
0700 and its files 0600, and a mode that differs counts as damage. Every file is dated
``WRITTEN_MTIME_NS`` (2000-01-01) when written, so that any later write (which dates the file
now) shows in ``stat`` without reading it: ``intact`` checks a set that way, against the
names and sizes of what was written, for idle hooks (steady.py); it is never enough to keep
a set, only to tell that it needs no byte-for-byte check on this hook.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import falco_config
import records
from layout import Layout

RULES_DIR = "rules.d"
OVERRIDES_DIR = "config.override.d"
SUFFIXES = (".yaml", ".yml")
INLINE_FILE = "custom-rules.yaml"
INLINE_NAME = "custom-rules option"
_DIGEST_CHARS = 16
FILE_MODE = 0o600
DIR_MODE = 0o700
# 2000-01-01T00:00:00Z: no write made now can date a file then.
WRITTEN_MTIME_NS = 946_684_800 * 10**9
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceFile:
    """One file of a rule set, named as the operator knows it (``rules.d/x.yaml``)."""

    name: str
    text: str


@dataclass(frozen=True)
class RuleSet:
    """Everything custom that Falco runs with: repository rules, overrides, inline rules."""

    repo_rules: tuple[SourceFile, ...] = ()
    overrides: tuple[SourceFile, ...] = ()
    inline: str = ""

    def files(self) -> list[SourceFile]:
        """Every file of the set, inline rules last."""
        inline = [SourceFile(INLINE_FILE, self.inline)] if self.inline.strip() else []
        return [*self.repo_rules, *self.overrides, *inline]

    @property
    def empty(self) -> bool:
        """Whether there is nothing custom at all."""
        return not self.files()

    def manifest(self) -> dict[str, int]:
        """The size of each file of the set, by name, as ``intact`` checks it."""
        return {source.name: len(source.text.encode()) for source in self.files()}

    @property
    def digest(self) -> str:
        """The content digest that names the set's directory."""
        sha = hashlib.sha256()
        for source in self.files():
            sha.update(f"{source.name}\0{len(source.text)}\0{source.text}".encode())
        return sha.hexdigest()


@dataclass(frozen=True)
class RulesFile:
    """A rules file Falco loads: where it is, and the name to show the operator."""

    name: str
    path: Path


# ------------------------------------------------------------------------------ the record
def _record_path(layout: Layout, digest: str) -> Path:
    return layout.rule_sets_dir / f"{digest[:_DIGEST_CHARS]}.json"


def _encode(rule_set: RuleSet, name: str) -> dict[str, object]:
    return {
        "directory": name,
        "repo_rules": [[source.name, source.text] for source in rule_set.repo_rules],
        "overrides": [[source.name, source.text] for source in rule_set.overrides],
        "inline": rule_set.inline,
    }


def _sources(value: object) -> tuple[SourceFile, ...]:
    if not isinstance(value, list):
        raise TypeError("not a list of files")
    return tuple(SourceFile(str(name), str(text)) for name, text in value)


def _decode(data: dict[str, object]) -> RuleSet | None:
    try:
        return RuleSet(
            repo_rules=_sources(data["repo_rules"]),
            overrides=_sources(data["overrides"]),
            inline=str(data["inline"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _directory_name(layout: Layout, rule_set: RuleSet) -> str:
    recorded = records.field(_record_path(layout, rule_set.digest), "directory")
    return recorded or rule_set.digest[:_DIGEST_CHARS]


def directory(layout: Layout, rule_set: RuleSet) -> Path:
    """Return where ``rule_set`` lives (it may not exist yet)."""
    return layout.rules_root / _directory_name(layout, rule_set)


# ------------------------------------------------------------------------------ on disk
def _loaded_files(base: Path) -> set[str]:
    """Return the files under ``base`` the charm or Falco would read, as set names."""
    found = {INLINE_FILE} if (base / INLINE_FILE).is_file() else set()
    for folder in (RULES_DIR, OVERRIDES_DIR):
        if (base / folder).is_dir():
            found |= {
                f"{folder}/{path.name}"
                for path in (base / folder).iterdir()
                if path.name.endswith(SUFFIXES)
            }
    return found


def _metadata_problem(path: Path) -> str | None:
    """Return what ``stat`` shows changed on a set's file since it was written, if anything."""
    try:
        facts = path.stat()
    except OSError:
        return "is missing"
    if facts.st_mode & 0o777 != FILE_MODE:
        return f"has mode {facts.st_mode & 0o777:04o}, not {FILE_MODE:04o}"
    if facts.st_mtime_ns != WRITTEN_MTIME_NS:
        return "was written to"
    return None


def _directories_problem(base: Path) -> str | None:
    for folder in (base, base / RULES_DIR, base / OVERRIDES_DIR):
        if folder.is_dir() and folder.stat().st_mode & 0o777 != DIR_MODE:
            return f"{folder.name} has mode {folder.stat().st_mode & 0o777:04o}"
    return None


def damage(base: Path, rule_set: RuleSet) -> str | None:
    """Return what differs between the directory ``base`` and ``rule_set``, None if nothing."""
    if not (base / RULES_DIR).is_dir():
        return f"{base.name}/{RULES_DIR} is missing"
    wanted = {source.name: source.text for source in rule_set.files()}
    for name in sorted(_loaded_files(base) - set(wanted)):
        return f"{name} was added"
    problem = _directories_problem(base)
    if problem is not None:
        return problem
    for name, text in wanted.items():
        problem = _metadata_problem(base / name)
        if problem is None and (base / name).read_bytes() != text.encode():
            problem = "was altered"
        if problem is not None:
            return f"{name} {problem}"
    return None


def _loaded_stats(base: Path) -> dict[str, os.stat_result] | None:
    """Return the ``stat`` of each file Falco would load from ``base``, None if one is gone.

    The same files as ``_loaded_files``, read with one ``scandir`` per folder and plain
    strings: an idle hook runs this over every file of a set of thousands.
    """
    top = os.fspath(base)
    found: dict[str, os.stat_result] = {}
    try:
        inline = os.stat(os.path.join(top, INLINE_FILE))
        if stat.S_ISREG(inline.st_mode):
            found[INLINE_FILE] = inline
    except FileNotFoundError:
        pass
    try:
        for folder in (RULES_DIR, OVERRIDES_DIR):
            if folder == OVERRIDES_DIR and not os.path.isdir(os.path.join(top, folder)):
                continue
            with os.scandir(os.path.join(top, folder)) as entries:
                for entry in entries:
                    if entry.name.endswith(SUFFIXES):
                        found[f"{folder}/{entry.name}"] = entry.stat()
    except OSError:
        return None
    return found


def intact(base: Path, manifest: dict[str, int]) -> bool:
    """Return whether ``stat`` shows the set in ``base`` as written with ``manifest``.

    Without reading a file: the names Falco would load, each file's size, mode and
    written-at date (module doc). False means "check it byte for byte", not "damaged".
    """
    found = _loaded_stats(base)
    if found is None or found.keys() != manifest.keys():
        return False
    if _directories_problem(base) is not None:
        return False
    return all(
        found[name].st_mode & 0o777 == FILE_MODE
        and found[name].st_mtime_ns == WRITTEN_MTIME_NS
        and found[name].st_size == size
        for name, size in manifest.items()
    )


def _write(layout: Layout, rule_set: RuleSet, name: str) -> Path:
    final = layout.rules_root / name
    scratch = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(scratch, ignore_errors=True)
    layout.rules_root.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    layout.rules_root.chmod(DIR_MODE)
    # rules.d exists even when empty: falco.yaml always lists it, which is also how the
    # charm finds the running rule set again.
    folders = {scratch, scratch / RULES_DIR}
    folders |= {(scratch / source.name).parent for source in rule_set.files()}
    for folder in sorted(folders):  # a parent sorts before its children
        folder.mkdir(mode=DIR_MODE)
        folder.chmod(DIR_MODE)  # whatever the umask
    for source in rule_set.files():
        path = scratch / source.name
        # Private from the first byte on: the rules may come from a private repository.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(source.text.encode())
        os.utime(path, ns=(WRITTEN_MTIME_NS, WRITTEN_MTIME_NS))
    # Whole or absent: the directory only gets its name once every file is written.
    shutil.rmtree(final, ignore_errors=True)
    scratch.rename(final)
    return final


def _next_name(layout: Layout, rule_set: RuleSet) -> str:
    prefix = rule_set.digest[:_DIGEST_CHARS]
    root = layout.rules_root
    taken = {path.name for path in root.iterdir()} if root.is_dir() else set()
    generation = 1
    while f"{prefix}-{generation}" in taken:
        generation += 1
    return f"{prefix}-{generation}"


def ensure_written(layout: Layout, rule_set: RuleSet) -> Path | None:
    """Make ``rule_set`` whole on disk and recorded; return its directory (None if empty).

    Nothing is written when it already is. A damaged directory is left as it is (Falco may
    be reading it) and the set is written again under a new name (module doc); so is one
    written before and deleted since.
    """
    if rule_set.empty:
        return None
    record = _record_path(layout, rule_set.digest)
    final = directory(layout, rule_set)
    problem = damage(final, rule_set) if final.is_dir() else None
    if final.is_dir() and problem is None:
        # Sets written before the charm kept records are recorded once, as found.
        records.write(record, _encode(rule_set, final.name))
        return final
    name = final.name
    if problem is not None or record.exists():
        name = _next_name(layout, rule_set)
        why = problem or "its directory is missing"
        logger.warning("custom rule set %s damaged (%s): written again as %s", final, why, name)
    final = _write(layout, rule_set, name)
    records.write(record, _encode(rule_set, name))
    return final


def load_paths(layout: Layout, rule_set: RuleSet) -> list[Path]:
    """Return what falco.yaml lists after the default rules, in load order.

    The repository rules are listed as their folder, which Falco reads in name order (the
    order the charm validates them in); the folder never changes once written.
    """
    if rule_set.empty:
        return []
    base = directory(layout, rule_set)
    inline = [base / INLINE_FILE] if rule_set.inline.strip() else []
    return [base / RULES_DIR, *inline]


def rules_files(layout: Layout, rule_set: RuleSet) -> list[RulesFile]:
    """Return each rules file Falco loads from ``rule_set``, in load order."""
    base = directory(layout, rule_set)
    found = [RulesFile(source.name, base / source.name) for source in rule_set.repo_rules]
    if rule_set.inline.strip():
        found.append(RulesFile(INLINE_NAME, base / INLINE_FILE))
    return found


def _read_dir(base: Path, name: str) -> tuple[SourceFile, ...]:
    folder = base / name
    if not folder.is_dir():
        return ()
    return tuple(
        SourceFile(f"{name}/{path.name}", path.read_text())
        for path in sorted(folder.iterdir())
        if path.name.endswith(SUFFIXES)
    )


def _from_disk(base: Path) -> RuleSet:
    """Return the rule set in ``base`` as found: only for sets written without a record."""
    inline = base / INLINE_FILE
    return RuleSet(
        repo_rules=_read_dir(base, RULES_DIR),
        overrides=_read_dir(base, OVERRIDES_DIR),
        inline=inline.read_text() if inline.is_file() else "",
    )


def live(layout: Layout) -> RuleSet:
    """Return the rule set the running falco.yaml loads (last known good), or an empty one.

    Its content comes from the charm's record, whatever became of the files.
    """
    try:
        current = falco_config.parse(layout.config_file.read_text()) or {}
    except OSError:
        return RuleSet()
    for entry in current.get("rules_files") or []:
        try:
            relative = Path(str(entry)).relative_to(layout.rules_root)
        except ValueError:
            continue
        name = relative.parts[0]
        data = records.read(_record_path(layout, name.partition("-")[0])) or {}
        recorded = _decode(data) if data.get("directory") == name else None
        return recorded if recorded is not None else _from_disk(layout.rules_root / name)
    return RuleSet()


def prune(layout: Layout, keep: set[Path]) -> list[Path]:
    """Delete rule set directories, and the records of sets, not in ``keep``.

    Returns the directories deleted.
    """
    removed = []
    if layout.rules_root.is_dir():
        for entry in sorted(layout.rules_root.iterdir()):
            if entry not in keep:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    kept = {path.name for path in keep}
    if layout.rule_sets_dir.is_dir():
        for record in sorted(layout.rule_sets_dir.iterdir()):
            if records.field(record, "directory") not in kept:
                record.unlink()
    return removed
