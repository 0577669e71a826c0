"""Child processes that end with the hook that started them. No Ops.

A hook can end in ways it does not see coming: Juju (or an operator) signals its process
group, the kernel's OOM killer or a ``kill -9`` ends the hook's process alone. A child
started here is covered both ways:

* it stays in the hook's process group (no new session), so whatever signals the group
  reaches the child and everything the child starts (git's ssh);
* the kernel sends it SIGKILL when the hook's process ends (``PR_SET_PDEATHSIG``), so it
  does not run on, orphaned, holding files the next hook wants to clean.

A grandchild (ssh under git) is not covered by the second: its parent is the child. When
the child dies, the grandchild's pipes to it close and it ends at its next read or write
(ssh also gives up connecting after its ConnectTimeout). When the hook itself ends a child
(a timeout), it ends the child's whole tree: each process is stopped first, so that none
can start another while the tree is collected, then killed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
_PROC = Path("/proc")


@functools.cache
def _prctl() -> Any:
    """Return libc's prctl, loaded once, in the hook's process.

    Not between fork and exec, where loading a library could wait forever on a lock another
    thread held at the fork; ctypes is imported here, not by every hook that never runs git.
    """
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl


def _die_with(parent: int, prctl: Any) -> None:
    """Run in the child between fork and exec: ask for SIGKILL when ``parent`` ends."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have ended between fork and prctl: then nobody would signal us.
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def start(argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` as a child that ends with this process (module doc).

    ``options`` are Popen's. Raises OSError when the program cannot be started.
    """
    parent, prctl = os.getpid(), _prctl()
    # An argument list, never a shell; callers pass absolute programs they resolved.
    return subprocess.Popen(  # noqa: S603
        argv, preexec_fn=lambda: _die_with(parent, prctl), **options
    )


def _children(pid: int) -> list[int]:
    """Return the processes whose parent is ``pid`` (from /proc: no ``children`` file needed)."""
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return found


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, number)


def end_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process under it; stopped first, so none escapes."""
    stopped = []
    pending = [pid]
    while pending:
        current = pending.pop()
        _signal(current, signal.SIGSTOP)
        stopped.append(current)
        pending.extend(child for child in _children(current) if child not in stopped)
    for current in stopped:
        _signal(current, signal.SIGKILL)
