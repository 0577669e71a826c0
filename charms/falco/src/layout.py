"""Every path the charm reads or writes on the machine, in one place.

The charm shares the machine with its principal, so everything it creates lives under names
it owns (``juju-falco``) and nothing of the principal's (``/etc/falco``, ``/root/.ssh``, a
``falco`` package the operator may have installed) is ever touched. ``remove`` deletes
exactly the paths listed here.

All paths hang off ``root`` so that tests run the real code against a temporary directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SERVICE_NAME = "juju-falco"


@dataclass(frozen=True)
class Layout:
    """The charm's files on one machine, rooted at ``root`` ("/" in production)."""

    root: Path = Path("/")
    # Where /proc is, when it is not under ``root`` (a test reading the real one).
    proc: Path | None = None

    def _path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def proc_root(self) -> Path:
        """The processes and sockets of the machine (/proc)."""
        return self.proc or self._path("/proc")

    # --- payload: extracted release tarballs, one directory per tarball digest ---
    @property
    def payload_parent(self) -> Path:
        """Where extracted payloads live; several only while one replaces another."""
        return self._path("/opt/juju-falco")

    def payload_dir(self, sha256: str) -> Path:
        """Return the directory holding the extracted tarball with digest ``sha256``.

        Naming it by digest makes a new payload a new path: the rendered config and unit
        change with it, so "new binary" falls out of the ordinary compare-and-restart.
        """
        return self.payload_parent / f"payload-{sha256[:16]}"

    # --- configuration Falco reads ---
    @property
    def config_dir(self) -> Path:
        """Charm-owned configuration directory (not /etc/falco, which a package may own)."""
        return self._path("/etc/juju-falco")

    @property
    def config_file(self) -> Path:
        """The one falco.yaml the charm renders."""
        return self.config_dir / "falco.yaml"

    @property
    def staged_config_file(self) -> Path:
        """A candidate falco.yaml, checked with ``falco --dry-run`` before it goes live.

        It sits next to the live file so that going live is an atomic rename; Falco watches
        the live file only, not the directory.
        """
        return self.config_dir / ".falco.yaml.staged"

    @property
    def http_ca_file(self) -> Path:
        """The CA that signed the sidekick's certificate, as published on http-endpoint."""
        return self.config_dir / "http-endpoint-ca.pem"

    @property
    def client_cert_file(self) -> Path:
        """This unit's client certificate chain (certificates), which Falco presents."""
        return self.config_dir / "http-client.crt"

    @property
    def client_key_file(self) -> Path:
        """The client certificate's private key: 0600, root only."""
        return self.config_dir / "http-client.key"

    @property
    def system_ca_dir(self) -> Path:
        """The machine's trust store (OpenSSL's hashed directory), which the charm only reads."""
        return self._path("/etc/ssl/certs")

    @property
    def rules_root(self) -> Path:
        """Custom rule sets, one directory per content digest (see custom_rules)."""
        return self.config_dir / "rules"

    @property
    def self_test_rules_dir(self) -> Path:
        """The self-test's marker rule, one file per priority (self_test)."""
        return self.config_dir / "self-test"

    # --- charm state ---
    @property
    def state_dir(self) -> Path:
        """Charm-private records: the payload in use, a refused resource, the kmod build."""
        return self._path("/var/lib/juju-falco")

    @property
    def payload_record(self) -> Path:
        """Which extracted payload the charm uses, with its versions."""
        return self.state_dir / "payload.json"

    @property
    def payload_rejection(self) -> Path:
        """Why the last candidate payload was refused, so the status can keep saying it."""
        return self.state_dir / "payload-rejected.json"

    @property
    def rules_record(self) -> Path:
        """What the custom rules last came to: commit, files loaded, the current problem."""
        return self.state_dir / "custom-rules.json"

    @property
    def rule_sets_dir(self) -> Path:
        """The content of each custom rule set written, kept whole (rule_store)."""
        return self.state_dir / "rule-sets"

    @property
    def rules_rejection(self) -> Path:
        """The candidate rule set Falco refused, by fingerprint, so it is not re-checked."""
        return self.state_dir / "rules-rejected.json"

    @property
    def self_test_dir(self) -> Path:
        """Where the self-test action creates its marker files (root only, 0700).

        The marker rule matches reads of files in here and nowhere else.
        """
        return self.state_dir / "self-test"

    # --- the custom config repository (git) ---
    @property
    def repo_dir(self) -> Path:
        """Everything git needs, private to root (0700): the repository, HOME, ssh files."""
        return self.state_dir / "custom-config-repo"

    @property
    def repo_git_dir(self) -> Path:
        """A bare repository: fetched objects only, never a checkout."""
        return self.repo_dir / "git"

    @property
    def repo_home(self) -> Path:
        """An empty HOME for git and ssh, so no user's ~/.ssh or ~/.gitconfig is involved."""
        return self.repo_dir / "home"

    @property
    def repo_ssh_dir(self) -> Path:
        """The pinned known_hosts, and the deploy key while git runs (0600 files)."""
        return self.repo_dir / "ssh"

    @property
    def repo_record(self) -> Path:
        """The last sync: URL, commit, kind of ref, when, and the error if it failed."""
        return self.state_dir / "custom-config-repo.json"

    # --- which falco unit of this machine runs Falco (ownership) ---
    @property
    def owner_record(self) -> Path:
        """The unit that runs Falco on this machine, and the options it applies."""
        return self.state_dir / "owner.json"

    @property
    def units_dir(self) -> Path:
        """One file per falco unit deployed on this machine, created by its first hook."""
        return self.state_dir / "units"

    @property
    def juju_agents_dir(self) -> Path:
        """Juju's unit agent directories: one per unit deployed on the machine, while it is."""
        return self._path("/var/lib/juju/agents")

    def agent_dir(self, unit: str) -> Path:
        """Return the agent directory of ``unit`` ("falco/3": .../unit-falco-3)."""
        return self.juju_agents_dir / f"unit-{unit.replace('/', '-')}"

    @property
    def cos_agent_record(self) -> Path:
        """The last build of the alert rules and dashboards sent on cos-agent, by digest."""
        return self.state_dir / "cos-agent-content.json"

    # --- the local alert log ---
    @property
    def alert_log_dir(self) -> Path:
        """Falco's own log directory, which systemd creates (``LogsDirectory=``).

        Its name ends the way the COS collectors' ``/var/log/**/*log`` tailing expects, so
        the alert file is shipped without any configuration on their side.
        """
        return self._path("/var/log/falco")

    @property
    def alert_log_file(self) -> Path:
        """Alerts as JSON lines (Falco's ``file_output``), rotated by logrotate."""
        return self.alert_log_dir / "falco-alerts.log"

    @property
    def logrotate_file(self) -> Path:
        """The charm's logrotate policy for the alert log."""
        return self._path("/etc/logrotate.d/juju-falco")

    # --- systemd ---
    @property
    def unit_file(self) -> Path:
        """The systemd unit the charm renders."""
        return self._path(f"/etc/systemd/system/{SERVICE_NAME}.service")

    # --- kernel and tools the charm inspects or the unit calls ---
    @property
    def btf_vmlinux(self) -> Path:
        """Kernel BTF, which the modern eBPF probe needs (CO-RE relocations)."""
        return self._path("/sys/kernel/btf/vmlinux")

    @property
    def kernel_release_file(self) -> Path:
        """The running kernel's release string, as `uname -r` prints it."""
        return self._path("/proc/sys/kernel/osrelease")

    @property
    def lockdown_file(self) -> Path:
        """Kernel lockdown mode; "integrity" or stricter refuses unsigned modules."""
        return self._path("/sys/kernel/security/lockdown")

    @property
    def container_marker(self) -> Path:
        """Inside a container, systemd writes the container manager's name here."""
        return self._path("/run/systemd/container")

    @property
    def dkms_source_parent(self) -> Path:
        """DKMS builds modules from /usr/src/<module>-<version>."""
        return self._path("/usr/src")

    @property
    def kill_binary(self) -> Path:
        """Absolute path of kill(1) for ExecReload (systemd does not search PATH reliably)."""
        return self._path("/usr/bin/kill")

    @property
    def modprobe_binary(self) -> Path:
        """Absolute path of modprobe(8), which loads the DKMS-built module before Falco."""
        return self._path("/usr/sbin/modprobe")

    @property
    def systemctl_binary(self) -> Path:
        """Absolute path of systemctl(1), which logrotate calls to signal Falco."""
        return self._path("/usr/bin/systemctl")

    def owned_paths(self) -> tuple[Path, ...]:
        """Every top-level path the charm creates, for ``remove`` to delete.

        The alert log directory is not one of them: alerts are forensic records, kept for
        the operator after the charm is gone (README, "Logs").
        """
        return (
            self.unit_file,
            self.logrotate_file,
            self.config_dir,
            self.payload_parent,
            self.state_dir,
        )
