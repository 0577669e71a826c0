"""What the last complete reconcile converged to, so that an idle hook stays idle. No Ops.

Rendering falco.yaml, listing the repository's commit and collecting its files take time in
proportion to the inputs (50,000 ``enabled-rules`` items, a repository of thousands of
files), and none of it can come out different while the inputs stay the same. So after a
reconcile that converged, the charm records a digest of every input it rendered from (the
options, the payload, the engine, the topology, where alerts go, the synced commit) with
what it converged to: the sha256 of each file it writes and the manifest of the rule set
Falco loads. A later hook whose inputs hash to the same digest checks only that the machine
still holds exactly that: each file by its digest, the rule set with ``rule_store.intact``
(names, sizes, modes, dates: no content read). Then nothing needs rendering, listing or
comparing, and the hook only looks at what systemd says.

Anything else takes the full path, which renders, compares and repairs as before: another
input, a file edited or deleted, the record missing or unreadable, and every install and
upgrade-charm (new charm code may render differently). The record never stands in for what
Falco runs: it only says what the inputs produced, and the files are checked every time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import records
import rule_store
from layout import Layout

_VERSION = 1


def digest(inputs: dict[str, Any]) -> str:
    """Return the digest of ``inputs`` (JSON-able; paths and dataclasses as text)."""
    text = json.dumps([_VERSION, inputs], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: Path) -> str | None:
    """Return the sha256 of the file at ``path``, None when there is none."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass(frozen=True)
class Steady:
    """A converged state: the inputs' digest, the files' digests, the live rule set."""

    inputs: str
    # Path of each file the charm writes -> its sha256, None when it must not exist.
    files: dict[str, str | None] = field(default_factory=dict)
    # The live rule set's directory under rules_root, and its files' sizes by name.
    rule_set: str | None = None
    manifest: dict[str, int] = field(default_factory=dict)


def _path(layout: Layout) -> Path:
    return layout.state_dir / "steady.json"


def read(layout: Layout) -> Steady | None:
    """Return the recorded converged state, None if there is none or it is unreadable."""
    data = records.read(_path(layout))
    if data is None:
        return None
    try:
        return Steady(**data)
    except TypeError:
        return None


def holds(layout: Layout, inputs: str) -> bool:
    """Return whether the machine is as the last reconcile left it, for these inputs."""
    steady = read(layout)
    if steady is None or steady.inputs != inputs:
        return False
    if any(file_digest(Path(path)) != sha for path, sha in steady.files.items()):
        return False
    if steady.rule_set is None:
        return True
    return rule_store.intact(layout.rules_root / steady.rule_set, steady.manifest)


def remember(layout: Layout, steady: Steady) -> bool:
    """Record ``steady`` (only if it differs from the record); return True if written."""
    return records.write(_path(layout), asdict(steady))


def forget(layout: Layout) -> None:
    """Drop the record: the next hook takes the full path."""
    _path(layout).unlink(missing_ok=True)
