"""The real Pebble running the real Falcosidekick in a minimal container root.

The root holds what the upstream image gives the workload and nothing else: the static
``falcosidekick`` binary where the image has it (``/app``), its user ``falcosidekick``
(uid/gid 1234) next to root in ``/etc/passwd`` and ``/etc/group``, a CA bundle (the image
has Alpine's ca-certificates), ``/tmp`` and ``/dev/null``. Pebble sits where Juju mounts it,
``/charm/bin/pebble``, and runs chrooted into the root (we are root, so chroot works; the
network is shared, so the sidekick's ports are reachable on 127.0.0.1 from the tests).

Two facts the real Pebble showed about such a root: it refuses to start without
``/proc/sys/kernel/random/boot_id`` (it tells reboots apart with it: a regular file with an
id is enough), and it cannot start a service without ``/dev/null``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import ops
import real_tools
import workloads

PEBBLE_DIR = "/var/lib/pebble/default"
PEBBLE_BINARY = "/charm/bin/pebble"
SIDEKICK_BINARY = "/app/falcosidekick"
SIDEKICK_UID = 1234
_HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_LISTEN = "0A"  # the TCP state LISTEN in /proc/net/tcp


def build_root(root: Path, with_sidekick_user: bool = True) -> None:
    """Lay out the container's filesystem under ``root`` (see the module docstring)."""
    root.chmod(0o755)  # the sidekick runs as uid 1234 and must traverse it
    for directory in ("app", "charm/bin", "etc/ssl/certs", "dev", "proc/sys/kernel/random"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(mode=0o1777)
    (root / "tmp").chmod(0o1777)
    shutil.copy(workloads.require(workloads.PEBBLE), root / PEBBLE_BINARY.lstrip("/"))
    shutil.copy(workloads.require(workloads.FALCOSIDEKICK), root / SIDEKICK_BINARY.lstrip("/"))
    users = ["root:x:0:0:root:/root:/bin/sh"]
    groups = ["root:x:0:"]
    if with_sidekick_user:
        users.append(f"falcosidekick:x:{SIDEKICK_UID}:{SIDEKICK_UID}::/app:/sbin/nologin")
        groups.append(f"falcosidekick:x:{SIDEKICK_UID}:")
    (root / "etc/passwd").write_text("\n".join(users) + "\n")
    (root / "etc/group").write_text("\n".join(groups) + "\n")
    if _HOST_CA_BUNDLE.is_file():
        shutil.copy(_HOST_CA_BUNDLE, root / "etc/ssl/certs/ca-certificates.crt")
    (root / "proc/sys/kernel/random/boot_id").write_text(f"{uuid.uuid4()}\n")
    os.mknod(root / "dev/null", 0o666 | 0o020000, os.makedev(1, 3))
    (root / "dev/null").chmod(0o666)


class RealPebble:
    """A running ``pebble run`` chrooted into a container root of its own."""

    def __init__(self, with_sidekick_user: bool = True):
        real_tools.require_root("the real Pebble runs chrooted in a container root")
        self._chroot = real_tools.require("chroot", "coreutils")
        # Short on purpose: the socket path must fit in a sockaddr_un (108 bytes).
        self.root = Path(tempfile.mkdtemp(prefix="sk-pebble-"))
        build_root(self.root, with_sidekick_user)
        self.log_path = self.root.with_name(self.root.name + ".log")
        self.socket_path = str(self.root / PEBBLE_DIR.lstrip("/") / ".pebble.socket")
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [self._chroot, str(self.root), PEBBLE_BINARY, "run", "--create-dirs"],
                env={"PEBBLE": PEBBLE_DIR, "PATH": "/usr/bin:/bin"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"pebble exited {self._process.returncode}: {self.log()}")
            try:
                self.client().get_system_info()
                return
            except (ops.pebble.ConnectionError, FileNotFoundError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pebble did not answer: {self.log()}") from None
                time.sleep(0.05)

    def client(self) -> ops.pebble.Client:
        """Return a new client of this Pebble's API, as the charm's container has."""
        return ops.pebble.Client(socket_path=self.socket_path)

    def cli(self, *args: str) -> str:
        """Run the real ``pebble`` command line against this Pebble; return its stdout."""
        result = subprocess.run(
            [str(self.root / PEBBLE_BINARY.lstrip("/")), *args],
            env={"PEBBLE": str(self.root / PEBBLE_DIR.lstrip("/"))},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"pebble {' '.join(args)}: {result.stderr}")
        return result.stdout

    def health(self, level: str) -> bool:
        """Return whether the real `pebble health --level=<level>` says healthy.

        Level ``ready`` is what Juju's readiness probe of the workload container asks.
        """
        result = subprocess.run(
            [str(self.root / PEBBLE_BINARY.lstrip("/")), "health", f"--level={level}"],
            env={"PEBBLE": str(self.root / PEBBLE_DIR.lstrip("/"))},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in (0, 1):
            raise AssertionError(f"pebble health: {result.stderr}")
        return result.returncode == 0

    def log(self) -> str:
        """Return what Pebble printed, its services' output included."""
        return self.log_path.read_text(errors="replace")

    def service_pids(self) -> list[int]:
        """Return the PIDs of the processes Pebble runs (its children)."""
        pids: list[int] = []
        for task in Path(f"/proc/{self._process.pid}/task").iterdir():
            children = (task / "children").read_text().split()
            pids += [int(pid) for pid in children]
        return sorted(pids)

    def sidekick_pid(self) -> int:
        """Return the PID of the one falcosidekick process Pebble runs; fail if not one."""
        pids = [pid for pid in self.service_pids() if _comm(pid) == "falcosidekick"]
        assert len(pids) == 1, f"falcosidekick processes: {pids}\n{self.log()}"
        return pids[0]

    def stop(self) -> None:
        """Stop Pebble (which stops its services), then anything it left behind."""
        leftovers = self.service_pids() if self._process.poll() is None else []
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def listening(pid: int) -> set[tuple[str, int]]:
    """Return the (address, port) pairs process ``pid`` listens on for TCP.

    Read from /proc: the sockets the process holds, looked up in its network namespace's
    TCP tables. An address of ``::`` or ``0.0.0.0`` means every interface.
    """
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and inode in inodes:
                found.add(_address(local))
    return found


def _address(hex_address: str) -> tuple[str, int]:
    """Decode ``/proc/net/tcp*``'s ``ADDR:PORT`` (address in host-order 32-bit words)."""
    address, port = hex_address.split(":")
    words = [bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8)]
    return str(ipaddress.ip_address(b"".join(words))), int(port, 16)
