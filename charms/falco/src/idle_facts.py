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
from collections.abc import Iterator
from pathlib import Path

from layout import Layout


def _entries(top: Path, files: bool) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (path, lstat) of ``top`` and of what is under it, in a stable order.

    Under it: directories, and files too if ``files``. Nothing when ``top`` does not exist.
    """
    try:
        yield str(top), top.lstat()
    except FileNotFoundError:
        return
    for directory, subdirs, names in os.walk(top):
        subdirs.sort()
        for name in [*subdirs, *(sorted(names) if files else ())]:
            path = os.path.join(directory, name)
            try:
                yield path, os.lstat(path)
            except FileNotFoundError:
                continue


def tree_fingerprint(layout: Layout) -> str:
    """Return a digest of the ``stat`` of what the charm owns on the machine (see above)."""
    digest = hashlib.sha256()
    trees = (
        (layout.unit_file, True),
        (layout.logrotate_file, True),
        (layout.config_dir, True),
        (layout.payload_parent, False),
        (layout.state_dir, False),
    )
    for top, files in trees:
        for path, st in _entries(top, files):
            line = f"{path}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n"
            digest.update(line.encode())
        digest.update(b"\0end\0")
    # The charm's records, edited in place, would not move their directory.
    for record in sorted(layout.state_dir.glob("*.json")):
        for path, st in _entries(record, False):
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
    return digest.hexdigest()
