"""A fake machine for the falco charm: a temporary root, fake tools on PATH, payloads.

``FakeMachine`` lays out what the charm reads on a real Ubuntu machine (kernel release, BTF,
the systemd unit directory), installs the fake tools of ``fake_tools.py`` under their real
names in a bin directory put first on PATH, and reads back what they recorded. ``git`` is
``fake_git.py``: the real git behind a fake network of local repositories. Payload tarballs
are built in the release layout with ``fake_falco.py`` as ``usr/bin/falco``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import reload_check
from fake_tools import WANTS, FakeSystemd, falco_files

SUPPORT = Path(__file__).resolve().parent
FIXTURES = Path(__file__).resolve().parent.parent / "reference"
TOOL_NAMES = ("systemctl", "journalctl", "dkms", "modprobe", "dpkg", "apt-get", "apt-cache")
FALCO_VERSION = "0.44.1"
DRIVER_VERSION = "10.2.0+driver"


def reference_file(name: str) -> Path:
    """Return an upstream Falco 0.44.1 file kept under tests/reference."""
    return FIXTURES / name


def _script(source: Path, replacements: dict[str, str] | None = None) -> bytes:
    text = source.read_text()
    for key, value in (replacements or {}).items():
        text = text.replace(key, value)
    # The interpreter of this test run, so the fake needs nothing from the host.
    return f"#!{sys.executable}\n{text}".encode()


def _real_git() -> str:
    """Return the real git on PATH, skipping the fakes of other machines put there first."""
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which("git", path=directory)
        if candidate and b"REAL_GIT = " not in Path(candidate).read_bytes()[:4096]:
            return candidate
    raise AssertionError("the tests need git (make deps installs it)")


def build_payload(
    directory: Path,
    *,
    version: str = FALCO_VERSION,
    behaviour: str = "ok",
    arch: str = "x86_64",
    driver_sources: bool = True,
    omit: tuple[str, ...] = (),
    name: str = "falco.tar.gz",
) -> Path:
    """Build a release-layout tarball around the fake falco and return its path."""
    top = f"falco-{version}-{arch}"
    falco = _script(
        SUPPORT / "fake_falco.py",
        {
            "@FALCO_VERSION@": version,
            "@DRIVER_VERSION@": DRIVER_VERSION,
            "@BEHAVIOUR@": behaviour,
        },
    )
    members: dict[str, tuple[bytes, int]] = {
        "usr/bin/falco": (falco, 0o755),
        "usr/share/falco/plugins/libcontainer.so": (b"\x7fELF fake container plugin", 0o644),
        "etc/falco/falco_rules.yaml": (reference_file("falco_rules.yaml").read_bytes(), 0o644),
        "etc/falco/falco.yaml": (b"# upstream default config, unused by the charm\n", 0o644),
    }
    if driver_sources:
        src = f"usr/src/falco-{DRIVER_VERSION}"
        members[f"{src}/dkms.conf"] = (b'PACKAGE_NAME="falco"\n', 0o644)
        members[f"{src}/main.c"] = (b"/* fake driver source */\n", 0o644)
    directory.mkdir(parents=True, exist_ok=True)
    tarball = directory / name
    with tarfile.open(tarball, "w:gz") as archive:
        for member, (data, mode) in members.items():
            if member in omit:
                continue
            info = tarfile.TarInfo(f"{top}/{member}")
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    return tarball


def unpacked_payload(directory: Path) -> Path:
    """Build a payload tarball, unpack it under ``directory``; return its top directory."""
    with tarfile.open(build_payload(directory / "tarball")) as archive:
        archive.extractall(directory, filter="data")
    return directory / f"falco-{FALCO_VERSION}-x86_64"


@dataclass
class FakeMachine:
    """A machine root plus the fake tools' state, under one temporary directory."""

    base: Path
    kernel_release: str = "6.8.0-45-generic"
    btf: bool = True
    root: Path = field(init=False)
    bin: Path = field(init=False)
    state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.base / "root"
        self.bin = self.base / "bin"
        self.state = self.base / "state"
        for directory in (self.bin, self.state):
            directory.mkdir(parents=True, exist_ok=True)
        # What a real machine has before the charm arrives.
        (self.root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True)
        for directory in ("usr/src", "opt", "var/lib", "var/log", "run", "etc/logrotate.d"):
            (self.root / directory).mkdir(parents=True)
        for tool in ("usr/bin/kill", "usr/sbin/modprobe"):
            (self.root / tool).parent.mkdir(parents=True, exist_ok=True)
            (self.root / tool).write_bytes(b"#!/bin/sh\nexit 0\n")
            (self.root / tool).chmod(0o755)
        self.set_kernel(self.kernel_release, btf=self.btf)
        # Juju's agent directory of the unit the tests run (ownership.py reads it).
        self.deploy_unit("falco/0")
        script = _script(SUPPORT / "fake_tools.py")
        for name in TOOL_NAMES:
            (self.bin / name).write_bytes(script)
            (self.bin / name).chmod(0o755)
        real_git = _real_git()
        (self.bin / "git").write_bytes(
            _script(
                SUPPORT / "fake_git.py", {"@REAL_GIT@": real_git, "@STATE_DIR@": str(self.state)}
            )
        )
        (self.bin / "git").chmod(0o755)

    def set_kernel(self, release: str, *, btf: bool = True, lockdown: str = "") -> None:
        """Make the machine run kernel ``release``, with or without BTF and lockdown."""
        osrelease = self.root / "proc/sys/kernel/osrelease"
        osrelease.parent.mkdir(parents=True, exist_ok=True)
        osrelease.write_text(release + "\n")
        vmlinux = self.root / "sys/kernel/btf/vmlinux"
        if btf:
            vmlinux.parent.mkdir(parents=True, exist_ok=True)
            vmlinux.write_bytes(b"BTF")
        else:
            vmlinux.unlink(missing_ok=True)
        if lockdown:
            path = self.root / "sys/kernel/security/lockdown"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(lockdown + "\n")

    def agent_dir(self, unit: str) -> Path:
        """Return where Juju keeps the agent directory of ``unit`` on this machine."""
        return self.root / "var/lib/juju/agents" / f"unit-{unit.replace('/', '-')}"

    def deploy_unit(self, unit: str) -> None:
        """Make ``unit`` deployed on this machine, as Juju's agent directory shows it."""
        (self.agent_dir(unit) / "charm").mkdir(parents=True, exist_ok=True)

    def undeploy_unit(self, unit: str) -> None:
        """Make ``unit`` gone from this machine, as when Juju removed it (hooks or not)."""
        shutil.rmtree(self.agent_dir(unit))

    def add_process(
        self, pid: int, name: str, exe: str, listen_port: int | None = None, ipv6: bool = False
    ) -> None:
        """Show a process in the machine's /proc, listening on ``listen_port`` if given.

        As Linux shows it: ``comm``, the ``exe`` link, a ``socket:[<inode>]`` link in ``fd``,
        and the listening socket's line in ``net/tcp`` (``net/tcp6`` with ``ipv6``).
        """
        base = self.root / "proc" / str(pid)
        (base / "fd").mkdir(parents=True)
        (base / "comm").write_text(name + "\n")
        (base / "exe").symlink_to(exe)
        (base / "fd/0").symlink_to("/dev/null")
        if listen_port is None:
            return
        inode = 900_000 + pid
        (base / "fd/3").symlink_to(f"socket:[{inode}]")
        table = self.root / "proc/net" / ("tcp6" if ipv6 else "tcp")
        table.parent.mkdir(parents=True, exist_ok=True)
        if not table.exists():
            table.write_text(
                "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
                "   uid  timeout inode\n"
            )
        address = "00000000000000000000000001000000" if ipv6 else "0100007F"
        rows = len(table.read_text().splitlines()) - 1
        with table.open("a") as lines:
            lines.write(
                f"{rows:4}: {address}:{listen_port:04X} {'0' * len(address)}:0000 0A "
                f"00000000:00000000 00:00000000 00000000     0        0 {inode} 1 "
                "0000000000000000 100 0 0 10 0\n"
            )

    def make_container(self, kind: str = "lxc") -> None:
        """Make the machine look like an LXD container, as systemd records it."""
        marker = self.root / "run/systemd/container"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(kind + "\n")

    def environ(self) -> dict[str, str]:
        """Return the environment variables that put the fakes in charge."""
        return {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_STATE_DIR": str(self.state),
            "FAKE_ROOT": str(self.root),
        }

    # --- what the tools recorded ---
    def calls(self, tool: str | None = None) -> list[list[str]]:
        """Return the argv of every recorded call (of ``tool`` only, if given)."""
        path = self.state / "calls.jsonl"
        if not path.exists():
            return []
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        return [e["argv"] for e in entries if tool is None or e["tool"] == tool]

    def clear_calls(self) -> None:
        """Forget the calls recorded so far."""
        (self.state / "calls.jsonl").unlink(missing_ok=True)

    def tool_state(self, tool: str) -> dict[str, Any]:
        """Return a fake tool's state."""
        path = self.state / f"{tool}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def set_knob(self, tool: str, key: str, value: Any) -> None:
        """Make a fake tool misbehave, e.g. ``set_knob("systemd", "fail_start", True)``."""
        state = self.tool_state(tool)
        state.setdefault("knobs", {})[key] = value
        if tool == "apt" and key == "missing":
            state["missing"] = value
        (self.state / f"{tool}.json").write_text(json.dumps(state))

    def systemd(self) -> FakeSystemd:
        """Return the fake systemd, to act on units as something other than the charm."""
        return FakeSystemd(self.state, self.root)

    def stop_by_hand(self, name: str = "juju-falco.service") -> None:
        """Stop a unit behind the charm's back, as an administrator would."""
        systemd = self.systemd()
        systemd.stop(name)
        systemd.save()

    def crash(self, name: str = "juju-falco.service") -> None:
        """Make a running unit crash until systemd gives up restarting it (start limit)."""
        systemd = self.systemd()
        systemd.give_up(name)
        systemd.save()

    def start_by_hand(self, name: str = "juju-falco.service") -> None:
        """Start a unit behind the charm's back, as an administrator would after a fix."""
        systemd = self.systemd()
        if systemd.unit(name)["active"] == "failed":
            systemd.reset_failed(name)
        systemd.start(name)
        systemd.save()

    def unit(self, name: str = "juju-falco.service") -> dict[str, Any]:
        """Return systemd's view of a unit: active, enabled, failed, and the digest loaded."""
        held = self.tool_state("systemd").get("units", {}).get(name, {})
        return {
            "active": held.get("active") == "active",
            "enabled": (self.root / "etc/systemd/system" / WANTS / name).is_symlink(),
            "failed": held.get("active") == "failed",
            "loaded": held.get("loaded"),
        }

    def show(self, *properties: str, name: str = "juju-falco.service") -> dict[str, str]:
        """Return systemd's properties of a unit, as ``systemctl show -p`` gives them."""
        values = self.systemd().properties(name)
        return {key: values[key] for key in properties}

    def falco_metrics(self, port: int) -> reload_check.Running | None:
        """Return what the machine's Falco reports running on its /metrics at ``port``.

        None while no Falco runs or listens there. A Falco whose file watches work runs what
        is on disk (it reloads on every replacement); with the systemd knob
        ``falco_watch_lost`` it runs what it read at its last start or SIGHUP.
        """
        systemd = self.tool_state("systemd")
        unit = systemd.get("units", {}).get("juju-falco.service")
        if not unit or unit["active"] != "active" or not unit.get("falco_config"):
            return None
        if systemd.get("knobs", {}).get("falco_watch_lost"):
            files = unit.get("falco_files")
        else:
            files = falco_files(Path(unit["falco_config"]))
        if not files or files["port"] != port:
            return None
        return reload_check.Running(
            config=tuple(sorted((name, sha) for name, sha in files["config"])),
            rules=tuple(sorted((name, sha) for name, sha in files["rules"])),
        )

    def systemctl_verbs(self) -> list[str]:
        """Return the systemctl verbs called, in order (queries included)."""
        return [
            next(a for a in argv if not a.startswith("--")) for argv in self.calls("systemctl")
        ]

    def restarts(self) -> int:
        """Return how many times the service was (re)started."""
        return sum(verb in ("start", "restart") for verb in self.systemctl_verbs())

    # --- the fake network git talks to ---
    def network(self) -> dict[str, Any]:
        """Return the fake network's description (see fake_git.py)."""
        path = self.state / "network.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def set_network(self, **changes: Any) -> None:
        """Change the fake network, e.g. ``set_network(down=["git.example"])``."""
        (self.state / "network.json").write_text(json.dumps(self.network() | changes))

    def serve(self, url: str, bare: Path) -> None:
        """Make ``url`` answer with the bare repository ``bare``."""
        remotes = self.network().get("remotes", {})
        self.set_network(remotes=remotes | {url: str(bare)})

    def git_calls(self) -> list[dict[str, Any]]:
        """Return every recorded git call (argv, env, key_mode)."""
        path = self.state / "calls.jsonl"
        if not path.exists():
            return []
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        return [entry for entry in entries if entry["tool"] == "git"]

    def git_network_ops(self) -> int:
        """Return how many git calls reached the (fake) network."""
        return sum(
            any(verb in call["argv"] for verb in ("fetch", "clone", "ls-remote", "pull"))
            for call in self.git_calls()
        )

    def files(self) -> dict[str, tuple[int, int, int]]:
        """Return every path under the root, files with (inode, mtime_ns, size), for diffing.

        Directories count by existence only: their mtime moves whenever an entry changes.
        """
        found = {}
        for path in self._walk(self.root):
            stat = path.lstat()
            key = str(path.relative_to(self.root))
            found[key] = (
                (0, 0, 0) if path.is_dir() else (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            )
        return found

    @staticmethod
    def _walk(top: Path) -> Iterator[Path]:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [*dirnames, *filenames]:
                yield Path(dirpath) / name


def changed_files(before: dict[str, Any], after: dict[str, Any]) -> int:
    """Return how many paths were created, modified or removed between two snapshots."""
    keys = set(before) | set(after)
    return sum(before.get(key) != after.get(key) for key in keys)
