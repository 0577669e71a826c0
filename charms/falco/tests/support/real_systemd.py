"""A real systemd to run the charm's unit under: a Debian 12 container booted with nspawn.

The build machine has no systemd as PID 1, and the fakes only say what we believe systemd
does. ``booted`` gives a container whose PID 1 is Debian 12's systemd, with the libraries the
real Falco links against and logrotate, sharing the host's network (so a port Falco listens
on inside answers on the host's 127.0.0.1).

The root filesystem is bootstrapped once from the Debian mirror with ``debootstrap`` and
cached outside the repository under a name derived from everything that went into it: a
build goes to a scratch directory that is renamed only when complete, so a killed build never
leaves a half cache. Each session boots a copy, so tests never dirty the cache, and the copy
is deleted afterwards. The container is always shut down when the session ends, and the
nspawn process gets SIGTERM (an orderly shutdown) if the test process dies first.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import real_tools
import workloads
from local_net import wait_for

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# systemd and what it boots with, kill(1) for ExecReload (procps), logrotate for the alert
# log's policy, and what the real Falco links against.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "procps",
    "logrotate",
    *workloads.FALCO_RUNTIME_PACKAGES,
)
# Bump when the way the root filesystem is made changes, so an old cache is not reused.
ROOTFS_FORMAT = 1
CACHE_ENV = "FALCO_OPERATORS_ROOTFS_CACHE"
DEFAULT_CACHE = Path("/var/cache/falco-operators-tests")
# Inside the container: a clean environment, not the test run's PATH and virtualenv.
CONTAINER_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}
BOOT_TIMEOUT_S = 120.0
SHUTDOWN_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


def rootfs_digest() -> str:
    """Return the digest naming a root filesystem built from today's inputs."""
    recipe = f"{ROOTFS_FORMAT}\n{SUITE}\n{MIRROR}\n{' '.join(sorted(PACKAGES))}\n"
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """Return where root filesystems are cached (``$FALCO_OPERATORS_ROOTFS_CACHE``)."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def cached_rootfs() -> Path:
    """Return the cached root filesystem, bootstrapping it first if there is none.

    A lock serialises concurrent test runs: the second waits and reuses the first's build.
    """
    real_tools.require_root("debootstrap and systemd-nspawn need root")
    target = cache_dir() / f"rootfs-{rootfs_digest()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_dir():
            _bootstrap(target)
    return target


def _bootstrap(target: Path) -> None:
    debootstrap = real_tools.require("debootstrap", "debootstrap")
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        result = subprocess.run(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(scratch / "root"),
                MIRROR,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-2000:]
            raise AssertionError(f"debootstrap failed ({result.returncode}):\n{tail}")
        os.rename(scratch / "root", target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Container:
    """A booted container: its root directory on the host and its PID 1 (systemd)."""

    root: Path
    init_pid: int
    nsenter: str

    def host_path(self, path: Path) -> Path:
        """Return where the container's absolute ``path`` is on the host."""
        return self.root / path.relative_to("/")

    def write(self, path: Path, text: str, mode: int = 0o644) -> None:
        """Write ``text`` to the container's ``path``, creating its directories."""
        target = self.host_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def run(self, *argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the container (all its namespaces); never raises on exit code."""
        return subprocess.run(
            [self.nsenter, "-t", str(self.init_pid), "-a", *argv],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=CONTAINER_ENV,
        )

    def systemctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run systemctl inside the container."""
        return self.run("systemctl", *args)

    def properties(self, unit: str, *names: str) -> dict[str, str]:
        """Return ``systemctl show -p`` properties of ``unit`` as a dict."""
        result = self.systemctl("show", "-p", ",".join(names), unit)
        assert result.returncode == 0, result.stderr
        return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)

    def systemctl_on_path(self, directory: Path) -> Path:
        """Write ``systemctl`` and ``journalctl`` into ``directory`` that run the container's.

        Put first on PATH, the directory lets the charm's own code (which finds these tools
        on PATH) ask the real systemd about the unit and read its real journal. Returns it.
        """
        directory.mkdir(parents=True, exist_ok=True)
        path = CONTAINER_ENV["PATH"]
        for tool in ("systemctl", "journalctl"):
            shim = directory / tool
            shim.write_text(
                "#!/bin/sh\n"
                f'exec {self.nsenter} -t {self.init_pid} -a env -i PATH={path} {tool} "$@"\n'
            )
            shim.chmod(0o755)
        return directory

    def journal(self, unit: str) -> str:
        """Return the journal of ``unit`` since boot, messages only."""
        self.run("journalctl", "--sync")
        return self.run("journalctl", "-b", "-u", unit, "-o", "cat", "--no-pager").stdout


def _die_with_parent() -> None:
    """Make the child get SIGTERM when the test process dies (an orderly container stop)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in children.read_text().split()]
    except OSError:
        return []


def _container_init(nspawn: subprocess.Popen[bytes], log: Path) -> int | None:
    """Return the container's PID 1 once it runs systemd.

    nspawn's children come and go while it sets the container up (one of them only forks
    the next); the one that stays is the one that executed systemd.
    """
    if nspawn.poll() is not None:
        raise AssertionError(f"systemd-nspawn exited ({nspawn.returncode}): {log.read_text()}")
    for child in _children(nspawn.pid):
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                return child
        except OSError:
            continue
    return None


@contextmanager
def booted(workdir: Path) -> Iterator[Container]:
    """Boot a copy of the cached root filesystem under ``workdir``; shut it down after."""
    nspawn_binary = real_tools.require("systemd-nspawn", "systemd-container")
    nsenter = real_tools.require("nsenter", "util-linux")
    source = cached_rootfs()
    root = workdir / "rootfs"
    subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(root)], check=True)
    log = workdir / "nspawn.log"
    with log.open("wb") as output:
        nspawn = subprocess.Popen(
            [
                nspawn_binary,
                f"--directory={root}",
                "--boot",
                "--register=no",
                "--keep-unit",
                f"--machine=falco-test-{os.getpid()}",
                "--console=read-only",
                "--quiet",
            ],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # no threads yet: preexec_fn is safe
        )
    try:
        pid = wait_for("the container's init", lambda: _container_init(nspawn, log))
        container = Container(root=root, init_pid=pid, nsenter=nsenter)
        wait_for(
            "the container to finish booting",
            lambda: _booted(container, nspawn, log),
            timeout=BOOT_TIMEOUT_S,
        )
        yield container
    finally:
        _shut_down(nspawn)
        shutil.rmtree(root, ignore_errors=True)


def _booted(container: Container, nspawn: subprocess.Popen[bytes], log: Path) -> bool | None:
    if nspawn.poll() is not None:
        raise AssertionError(f"systemd-nspawn exited ({nspawn.returncode}): {log.read_text()}")
    state = container.systemctl("is-system-running").stdout.strip()
    return True if state in ("running", "degraded") else None


def _shut_down(nspawn: subprocess.Popen[bytes]) -> None:
    """Stop the container in order (nspawn turns SIGTERM into a poweroff), else kill it."""
    pids = _children(nspawn.pid)
    nspawn.terminate()
    try:
        nspawn.wait(timeout=SHUTDOWN_TIMEOUT_S)
        return
    except subprocess.TimeoutExpired:
        pass
    # Killing the container's PID 1 ends its whole PID namespace; nspawn then exits.
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    try:
        nspawn.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        nspawn.kill()
        nspawn.wait()
