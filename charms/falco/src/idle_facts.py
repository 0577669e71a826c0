"""What an idle hook looks at on the machine to know nothing moved behind the charm's back.

A hook that Juju's events say changed nothing (lib/idle_hooks.py) still has the machine to
look at: a file of the charm's deleted or edited by hand, Falco's unit stopped, another
program on the metrics port. :func:`tree_fingerprint` stands in for reading and rendering
every file the charm owns: the ``stat`` of each entry (type, size, modification time, inode)
of the live configuration Falco reads (falco.yaml, the CA, the rule sets), of the unit and
logrotate files, and of every directory of the payloads and of the charm's state, whose
modification times move when an entry in them is added, removed or renamed. A file edited
in place keeps its inode but not its size or modification time. Nothing is read: the cost
is one ``stat`` per entry, not one read and digest per byte. No Ops.
"""

from __future__ import annotations

import hashlib
import os

from layout import Layout


def _walk(top: str, files: bool, into: list[tuple[str, int, int, int, int]]) -> None:
    """Append the lstat of what is under directory ``top`` to ``into``, in a stable order.

    Directories always, files too if ``files``; symbolic links are not followed.
    """
    try:
        entries = sorted(os.scandir(top), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            if not (is_dir or files):
                continue
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        into.append((entry.path, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino))
        if is_dir:
            _walk(entry.path, files, into)


def tree_fingerprint(layout: Layout) -> str:
    """Return a digest of the ``stat`` of what the charm owns on the machine (see above)."""
    seen: list[tuple[str, int, int, int, int]] = []
    trees = (
        (layout.unit_file, True),
        (layout.logrotate_file, True),
        (layout.config_dir, True),
        (layout.payload_parent, False),
        (layout.state_dir, False),
    )
    for top, files in trees:
        try:
            st = top.lstat()
        except FileNotFoundError:
            seen.append((str(top), 0, 0, 0, 0))
            continue
        seen.append((str(top), st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino))
        _walk(str(top), files, seen)
    # The charm's records, edited in place, would not move their directory.
    for record in sorted(layout.state_dir.glob("*.json")):
        try:
            st = record.lstat()
        except FileNotFoundError:
            continue
        seen.append((str(record), st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino))
    return hashlib.sha256(repr(seen).encode()).hexdigest()
