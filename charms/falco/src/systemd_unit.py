"""Render the hardened systemd unit that runs Falco. No Ops, no I/O.

A unit file is not structured data, so it is a text template. Every directive says why it is
there. The modern eBPF engine runs with four capabilities and a read-only, device-less view
of the machine; the kmod engine needs full privileges (Falco's documentation: the kernel
module "cannot run with Linux capabilities") and its character devices, and nothing more is
relaxed for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

_UNIT = Template("""\
# Rendered by the falco Juju charm; local edits are overwritten.
[Unit]
Description=Falco runtime security detection (managed by the falco Juju charm)
Documentation=https://falco.org/docs/
# Alerts are POSTed to Falcosidekick, so wait for the network to be configured.
After=network-online.target
Wants=network-online.target
# Falco that cannot start (e.g. its driver fails on this kernel) must not loop forever:
# after 5 failed starts in 10 minutes systemd gives up and the charm reports the failure.
StartLimitIntervalSec=600
StartLimitBurst=5

[Service]
Type=simple
${exec_start_pre}ExecStart=${falco} -c ${config}
# SIGHUP makes Falco re-validate and hot-restart itself with its current files.
ExecReload=${kill} -HUP $$MAINPID
Restart=on-failure
RestartSec=15s
TimeoutStopSec=30s
# Falco's own logs (stderr), and alerts on stdout when the alert log is off, land in the
# journal, which Ubuntu forwards to /var/log/syslog, where the COS collector reads them.
StandardOutput=journal
StandardError=journal
# Their lines there say juju-falco, not falco: distinct from a Falco the principal may run.
SyslogIdentifier=juju-falco
# Files Falco creates are private to root.
UMask=0077
${privileges}${trust}
# Falco never gains privileges through setuid binaries or file capabilities.
NoNewPrivileges=yes
# The whole OS tree is read-only: Falco reads its payload, rules and config, and writes
# nothing but the alert log.
ProtectSystem=strict
# The one writable exception: /var/log/falco, created by systemd at start, where file_output
# keeps the alert log (alert-log option). It stays when the option is off, so that the unit
# does not depend on it; Falco then writes nothing there.
LogsDirectory=falco
# Alerts name processes, users and files: root only (the collector reads as root).
LogsDirectoryMode=0750
# Home directories stay readable (the container plugin may query rootless runtimes) but
# are never writable.
ProtectHome=read-only
PrivateTmp=yes
${devices}
# Falco reads /proc/sys and cgroups to describe processes; it never changes them.
ProtectKernelTunables=yes
ProtectControlGroups=yes
# Falco never loads modules: with kmod, the "+" ExecStartPre loads the DKMS-built one.
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectClock=yes
ProtectHostname=yes
# Unix sockets for container runtimes and the journal, IP for http_output, netlink for
# name resolution; packet sockets and every exotic family are refused.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
# Falco and its plugins never need writable+executable memory (no JIT in userspace).
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
# Deny whole syscall groups Falco has no use for; an allow-list would break on new kernels
# and libc versions, which is worse for a detection tool than a slightly wider filter.
SystemCallFilter=~@clock @cpu-emulation @module @mount @obsolete @raw-io @reboot @swap
KeyringMode=private

[Install]
WantedBy=multi-user.target
""")

_MODERN_EBPF_PRIVILEGES = """\
# Runs as root with only what the modern eBPF probe needs (Falco's least-privileged set):
# load BPF programs and maps, attach to tracepoints, raise RLIMIT_MEMLOCK at start, and
# read other processes' /proc entries (environ, fds) to describe them.
CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYS_RESOURCE CAP_SYS_PTRACE
AmbientCapabilities="""

_KMOD_PRIVILEGES = """\
# The kmod engine needs root's full capability set (Falco documents no least-privileged
# mode for it), so the capability bounding set is not narrowed for this driver.
AmbientCapabilities="""

_HIDDEN_TRUST_STORE = """
# http-endpoint publishes the CA of the sidekick's certificate, and Falco must trust that CA
# alone. Falco hands libcurl that one file (http_output.ca_cert), but libcurl still reads its
# built-in CA directory, the machine's trust store: hidden here, it is an empty directory.
TemporaryFileSystem=${store}:ro"""

_MODERN_EBPF_DEVICES = """\
# No hardware devices: the probe talks to the kernel through bpf(2), not /dev.
PrivateDevices=yes"""

_KMOD_DEVICES = """\
# The kmod engine reads events from its /dev/falco<N> character devices.
PrivateDevices=no"""


@dataclass(frozen=True)
class UnitInputs:
    """Everything the unit depends on."""

    falco_binary: Path
    config_file: Path
    kill_binary: Path
    engine_kind: str
    modprobe_binary: Path
    # The machine's trust store, hidden from Falco when a CA was related (None: visible).
    hidden_trust_store: Path | None = None


def render(inputs: UnitInputs) -> str:
    """Return the unit file text for ``inputs``."""
    kmod = inputs.engine_kind == "kmod"
    # "+" runs modprobe with full privileges, outside the sandbox below, so that Falco
    # itself keeps ProtectKernelModules.
    exec_start_pre = f"ExecStartPre=+{inputs.modprobe_binary} falco\n" if kmod else ""
    privileges = _KMOD_PRIVILEGES if kmod else _MODERN_EBPF_PRIVILEGES
    devices = _KMOD_DEVICES if kmod else _MODERN_EBPF_DEVICES
    store = inputs.hidden_trust_store
    trust = Template(_HIDDEN_TRUST_STORE).substitute(store=store) if store else ""
    return _UNIT.substitute(
        exec_start_pre=exec_start_pre,
        falco=inputs.falco_binary,
        config=inputs.config_file,
        kill=inputs.kill_binary,
        privileges=privileges,
        trust=trust,
        devices=devices,
    )
