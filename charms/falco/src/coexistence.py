"""Other programs on the machine that get in Falco's way. No Ops.

Falco's webserver (``metrics-port``: /metrics and /healthz) binds with SO_REUSEPORT, so a
second Falco on the same port, typically one installed from a package (upstream's default
port is also 8765), does not make the charm's fail: both run, the kernel spreads
connections between them, scrapes alternate, and /healthz still answers when the charm's
Falco is dead, so ``FalcoDown`` can never fire. Any other program on the port makes Falco
exit at start instead. Either way the port must be the charm's alone: before starting Falco,
and at every hook for the status, the charm looks for listening sockets on the port in
``/proc/net/tcp`` and ``tcp6`` and names the processes holding them (from their
``/proc/<pid>/fd``), its own Falco (systemd's MainPID) left out. It also names any other
process called ``falco`` (a package's or a snap's): it watches the machine too, with rules
and outputs the charm does not manage.

Everything is read under ``Layout.proc_root``, ``/proc`` in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from layout import Layout

FALCO = "falco"
# /proc/net/tcp "st" column: the socket listens.
_LISTEN = "0A"
_SOCKET = "socket:["


@dataclass(frozen=True)
class Process:
    """A process as /proc shows it."""

    pid: int
    name: str
    exe: str = ""

    def describe(self) -> str:
        """Return the process for a status: its name, pid and executable."""
        where = f", {self.exe}" if self.exe else ""
        return f"{self.name} (pid {self.pid}{where})"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def listening_inodes(proc: Path, port: int) -> set[str]:
    """Return the inodes of the TCP sockets listening on ``port``, IPv4 and IPv6."""
    inodes = set()
    for table in ("net/tcp", "net/tcp6"):
        for line in _read(proc / table).splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            _, _, local_port = fields[1].rpartition(":")
            try:
                if int(local_port, 16) == port:
                    inodes.add(fields[9])
            except ValueError:
                continue
    return inodes


def _pids(proc: Path) -> list[int]:
    try:
        return sorted(int(entry.name) for entry in proc.iterdir() if entry.name.isdigit())
    except OSError:
        return []


def _sockets(proc: Path, pid: int) -> set[str]:
    """Return the socket inodes process ``pid`` holds (none if it is gone or hidden)."""
    found = set()
    try:
        for fd in (proc / str(pid) / "fd").iterdir():
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if target.startswith(_SOCKET):
                found.add(target[len(_SOCKET) : -1])
    except OSError:
        return set()
    return found


def _process(proc: Path, pid: int) -> Process:
    try:
        exe = str((proc / str(pid) / "exe").readlink())
    except OSError:
        exe = ""
    return Process(pid, _read(proc / str(pid) / "comm").strip() or "?", exe)


def port_holders(layout: Layout, port: int, own_pid: int = 0) -> list[Process]:
    """Return the processes other than ``own_pid`` listening on TCP ``port``."""
    proc = layout.proc_root
    inodes = listening_inodes(proc, port)
    if own_pid:
        inodes -= _sockets(proc, own_pid)
    if not inodes:
        return []
    holders = [
        _process(proc, pid)
        for pid in _pids(proc)
        if pid != own_pid and _sockets(proc, pid) & inodes
    ]
    return holders or [Process(0, "a process this charm cannot see")]


def other_falcos(layout: Layout, own_pid: int = 0) -> list[Process]:
    """Return the processes named falco that are not the charm's (outside its payloads)."""
    proc, ours = layout.proc_root, str(layout.payload_parent) + "/"
    found = []
    for pid in _pids(proc):
        if pid == own_pid or _read(proc / str(pid) / "comm").strip() != FALCO:
            continue
        process = _process(proc, pid)
        if not process.exe.startswith(ours):
            found.append(process)
    return found


def port_problem(layout: Layout, port: int, own_pid: int = 0) -> str | None:
    """Return why Falco cannot have ``port`` to itself, if it cannot."""
    holders = port_holders(layout, port, own_pid)
    if not holders:
        return None
    named = ", ".join(holder.describe() for holder in holders[:2])
    return f"metrics-port {port} is also served by {named}: set metrics-port to a free port"


def other_falco_notice(layout: Layout, own_pid: int = 0) -> str | None:
    """Return what the operator should know about another Falco on the machine, if any."""
    others = other_falcos(layout, own_pid)
    if not others:
        return None
    return (
        f"another Falco runs on this machine: {others[0].describe()}; the charm runs its "
        "own (juju-falco.service) and leaves that one alone"
    )
