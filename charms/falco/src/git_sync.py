"""Fetch the custom config repository with git: pinned, private, shallow, incremental. No Ops.

This module is the only place the charm runs git, so it is also where network operations are
counted and bounded. What it guarantees:

* Trust is explicit. SSH runs with ``StrictHostKeyChecking=yes`` against the operator's pinned
  known_hosts lines only (no trust on first use, no system or user known_hosts), with only the
  deploy key (``IdentitiesOnly=yes``) and never prompts. Nothing is read from or written to any
  ``~/.ssh``: git gets a private, empty HOME and neither system nor global git config.
* Secrets stay private. The deploy key exists on disk (0600, in a 0700 directory of the
  charm's state) only while git runs; an https token travels in git's environment, never on a
  command line or in a URL, so it cannot show up in ``ps``, in git's messages or in a status.
  git runs in the hook's process group and is killed with the hook (``child_process``), and
  a key a killed hook left behind is deleted at the start of the next one (``remove_key``).
* The repository is never checked out. It is fetched into a bare repository and files are
  read from git's objects, so a symlink or a crafted path in the repository never reaches the
  disk; ``transfer.fsckObjects`` makes git refuse malformed trees while fetching.
* Reading a commit is bounded whatever it holds. Only the entries of the synced directories
  are listed (not what lies below them), as a stream, up to ``MAX_ENTRIES``; a name must be
  printable UTF-8 or the commit is refused with the name quoted safely; sizes come from
  ``git cat-file --batch-check`` before any content, so a file over ``MAX_FILE_BYTES`` (or
  files over ``MAX_TOTAL_BYTES`` in all) is never read; git itself streams blobs that large
  (``core.bigFileThreshold``) instead of holding them in memory while fetching.
* Tags and commit ids are fetched once; branches are fetched again (``--depth 1`` into the
  same repository, so only new objects travel) when the sync interval is due.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import child_process
import progress
import records
from layout import Layout
from messages import quote, shorten
from repository import SSH, Repository, pins_host

logger = logging.getLogger(__name__)

_FULL_COMMIT = re.compile(r"^[0-9a-f]{40}$")
DEFAULT_HTTPS_USER = "x-access-token"
GIT_TIMEOUT_S = 300
SSH_CONNECT_TIMEOUT_S = 20
LOCAL_GIT_TIMEOUT_S = 60
DEPLOY_KEY_FILE = "deploy_key"
# What this charm reads from the repository; everything else is never even listed.
SYNCED_DIRS = ("rules.d", "config.override.d")
# The most the charm reads from a commit (the custom-config-repository option says so): the
# entries of rules.d/ and config.override.d/ together, the size of one file it loads, and of
# all of them. Sizes are git's, read before any content; content is read up to these only.
MAX_ENTRIES = 5000
MAX_FILE_BYTES = 1 << 20
MAX_TOTAL_BYTES = 16 << 20


class SyncError(Exception):
    """A sync failed; ``str()`` says what failed and what to do, ready for a status."""


# ------------------------------------------------------------------------------ credentials
@dataclass(frozen=True)
class Credentials:
    """What git presents to the server; read from Juju secrets only when a fetch happens."""

    ssh_key: str | None = None
    token: str | None = None
    token_user: str = DEFAULT_HTTPS_USER


@dataclass(frozen=True)
class Settings:
    """Everything a sync depends on, besides the secrets' content."""

    repository: Repository
    known_hosts: str = ""
    # Juju secret ids, not content: a new revision of a secret arrives with secret-changed.
    ssh_key_secret: str = ""
    token_secret: str = ""
    interval_s: int = 900
    https_ca_file: Path | None = None

    @property
    def source(self) -> str:
        """Identity of what to fetch and how; a different source means a sync is due now."""
        pins = hashlib.sha256(self.known_hosts.encode()).hexdigest()[:16]
        return "|".join((self.repository.display, self.ssh_key_secret, self.token_secret, pins))


# ------------------------------------------------------------------------------ the record
@dataclass(frozen=True)
class SyncRecord:
    """The last sync attempt and the last commit fetched, as kept in the charm's state."""

    url: str
    source: str
    attempted_at: float
    commit: str | None = None
    kind: str | None = None
    synced_at: float | None = None
    error: str | None = None


def read_record(layout: Layout) -> SyncRecord | None:
    """Return the recorded sync state, if any."""
    data = records.read(layout.repo_record)
    if data is None:
        return None
    try:
        return SyncRecord(**data)
    except TypeError:
        return None


def is_due(record: SyncRecord | None, settings: Settings, now: float) -> bool:
    """Return whether a fetch is due: new source, failed attempt or branch interval elapsed."""
    if record is None or record.source != settings.source:
        return True
    since = record.attempted_at if record.error or record.synced_at is None else record.synced_at
    elapsed = now - since
    if record.error is None and record.kind in ("tag", "commit"):
        return False
    # A clock that went backwards must not postpone the next sync forever.
    return elapsed >= settings.interval_s or elapsed < 0


def next_due(record: SyncRecord | None, settings: Settings | None) -> float | None:
    """Return when a fetch falls due by the clock (now if it is), None if never by the clock.

    A tag or a commit, once fetched, is never due again by the clock; a new source is due
    at once (0).
    """
    if settings is None:
        return None
    if record is None or record.source != settings.source:
        return 0.0
    if record.error is None and record.kind in ("tag", "commit"):
        return None
    since = record.attempted_at if record.error or record.synced_at is None else record.synced_at
    return since + settings.interval_s


# ------------------------------------------------------------------------------ running git
class _Git:
    """Runs git in the charm's private environment; the one place git runs."""

    def __init__(self, layout: Layout, settings: Settings | None = None):
        self.layout = layout
        self.settings = settings
        self.env = self._environment(settings)

    def _environment(self, settings: Settings | None) -> dict[str, str]:
        home = self.layout.repo_home
        config = {
            # Refuse corrupt or malicious objects (e.g. tree entries named '..') on fetch.
            "transfer.fsckObjects": "true",
            # No background maintenance that would write after the hook ends.
            "gc.auto": "0",
            "maintenance.auto": "false",
            "core.hooksPath": os.devnull,
            "http.lowSpeedLimit": "1000",
            "http.lowSpeedTime": "30",
            # Blobs larger than this are streamed, never held whole in git's memory (a
            # 400 MiB file costs index-pack 400 MiB otherwise); the charm reads none of them.
            "core.bigFileThreshold": f"{MAX_FILE_BYTES}",
        }
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
        }
        # The model's proxy settings (juju-https-proxy...), which Juju hands to charms only.
        for variable in ("https_proxy", "http_proxy", "no_proxy"):
            value = os.environ.get(f"JUJU_CHARM_{variable.upper()}")
            if value:
                env[variable] = value
        if settings is not None:
            repository = settings.repository
            env["GIT_ALLOW_PROTOCOL"] = repository.transport
            if repository.transport == SSH:
                env["GIT_SSH_COMMAND"] = self._ssh_command()
            if settings.https_ca_file is not None:
                config["http.sslCAInfo"] = str(settings.https_ca_file)
        for index, (key, value) in enumerate(config.items()):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        env["GIT_CONFIG_COUNT"] = str(len(config))
        return env

    def _ssh_command(self) -> str:
        ssh_dir = self.layout.repo_ssh_dir
        options = {
            "BatchMode": "yes",
            "IdentitiesOnly": "yes",
            "IdentityFile": str(ssh_dir / DEPLOY_KEY_FILE),
            "StrictHostKeyChecking": "yes",
            "UserKnownHostsFile": str(ssh_dir / "known_hosts"),
            "GlobalKnownHostsFile": os.devnull,
            "UpdateHostKeys": "no",
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "ConnectTimeout": str(SSH_CONNECT_TIMEOUT_S),
            "ServerAliveInterval": "15",
            "ServerAliveCountMax": "2",
        }
        # -F /dev/null: no system or user ssh_config can add hosts, keys or proxies.
        parts = ["ssh", "-F", os.devnull]
        for key, value in options.items():
            parts += ["-o", f"{key}={value}"]
        return shlex.join(parts)

    def with_token(self, credentials: Credentials) -> None:
        """Send ``credentials.token`` as HTTP basic auth, through the environment only."""
        if not credentials.token:
            return
        pair = f"{credentials.token_user}:{credentials.token}".encode()
        index = int(self.env["GIT_CONFIG_COUNT"])
        self.env[f"GIT_CONFIG_KEY_{index}"] = "http.extraHeader"
        self.env[f"GIT_CONFIG_VALUE_{index}"] = (
            f"Authorization: Basic {base64.b64encode(pair).decode()}"
        )
        self.env["GIT_CONFIG_COUNT"] = str(index + 1)

    def _argv(self, args: tuple[str, ...], in_repository: bool) -> list[str]:
        binary = shutil.which("git", path=self.env["PATH"]) or _install_git(self.env["PATH"])
        where = ["-C", str(self.layout.repo_git_dir)] if in_repository else []
        return [binary, *where, *args]

    def _start(self, argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
        # In the hook's process group, and ended with the hook (child_process).
        try:
            return child_process.start(argv, env=self.env, stdout=subprocess.PIPE, **options)
        except OSError as exc:
            # E2BIG (an environment too large), ENOEXEC...: the message names no secret.
            raise SyncError(f"cannot run git: {exc.strerror}") from exc

    def run(
        self,
        *args: str,
        in_repository: bool = True,
        timeout: int = LOCAL_GIT_TIMEOUT_S,
        stdin: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``git args`` in the private environment; raise SyncError if it cannot run."""
        argv = self._argv(args, in_repository)
        process = self._start(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            stdout, stderr = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            # git and what it started (ssh, which would keep the pipes open).
            child_process.end_tree(process.pid)
            process.communicate()
            raise SyncError(f"git {args[0]} took longer than {timeout}s") from exc
        return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)

    @contextlib.contextmanager
    def reading(self, *args: str, stdin: bytes = b"") -> Iterator[IO[bytes]]:
        """Run a local git command and yield its output to read as it comes.

        For output that can be large (a tree listing, blobs): the caller reads what it
        needs and stops; git is ended if it has more to say. ``stdin`` comes from a file, so
        git never waits for the caller to write while the caller waits for git to read.
        Raises SyncError if git fails or takes longer than LOCAL_GIT_TIMEOUT_S.
        """
        argv = self._argv(args, in_repository=True)
        with tempfile.TemporaryFile() as feed, tempfile.TemporaryFile() as errors:
            feed.write(stdin)
            feed.seek(0)
            process = self._start(argv, stdin=feed, stderr=errors)
            assert process.stdout is not None  # noqa: S101 - stdout=PIPE above
            deadline = threading.Timer(LOCAL_GIT_TIMEOUT_S, child_process.end_tree, [process.pid])
            deadline.start()
            try:
                yield process.stdout
                process.stdout.read()  # what the caller left (nothing, normally)
            except BaseException:
                child_process.end_tree(process.pid)
                raise
            finally:
                process.stdout.close()
                returncode = process.wait()
                deadline.cancel()
                # No thread left behind: the next child is forked from a one-thread process.
                deadline.join()
            if returncode != 0:
                errors.seek(0)
                if returncode == -signal.SIGKILL:
                    raise SyncError(f"git {args[0]} took longer than {LOCAL_GIT_TIMEOUT_S}s")
                raise SyncError(f"git {args[0]} failed: {_last_line(errors.read(4096))}")

    def local(self, *args: str, stdin: bytes | None = None) -> bytes:
        """Run a git command that stays on this machine; raise SyncError if it fails."""
        result = self.run(*args, stdin=stdin)
        if result.returncode != 0:
            raise SyncError(f"git {args[0]} failed: {_last_line(result.stderr)}")
        return result.stdout


def _install_git(path: str) -> str:
    """Install git (Ubuntu images usually have it); return its path or raise SyncError."""
    # Imported here: only machines without git pay for charmlibs-apt.
    from charmlibs import apt

    try:
        apt.add_package("git")
    except (apt.PackageError, apt.PackageNotFoundError) as exc:
        raise SyncError(f"git is not installed and apt could not install it: {exc}") from exc
    binary = shutil.which("git", path=path)
    if binary is None:
        raise SyncError("git is not installed and installing it failed")
    return binary


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    text = lines[-1] if lines else "no output"
    return shorten(text)


def _explain(stderr: bytes, repository: Repository) -> str:
    """Turn git's and ssh's complaint into what failed and what to do."""
    text = stderr.decode(errors="replace")
    lowered = text.lower()
    host = repository.known_hosts_name
    if "host key verification failed" in lowered:
        return (
            f"the SSH host key of {host} is not the one pinned in custom-config-repo-known-hosts:"
            " check the server's key out-of-band and update the option"
        )
    if "permission denied" in lowered or "load key" in lowered:
        return (
            f"{repository.address} refused the key in custom-config-repo-ssh-key: add its"
            " public key to the repository (deploy key) or fix the secret"
        )
    if "couldn't find remote ref" in lowered:
        return f"ref '{repository.ref}' not found: use an existing branch, tag or full commit id"
    if any(
        marker in lowered
        for marker in ("authentication failed", "could not read username", " 401", " 403")
    ):
        return f"{repository.address} refused the credentials in custom-config-repo-token"
    if "does not appear to be a git repository" in lowered or "not found" in lowered:
        return f"no repository at {repository.fetch_url}: check custom-config-repository"
    if any(marker in lowered for marker in ("ssl certificate", "certificate verif")):
        return f"cannot verify the TLS certificate of {repository.address}"
    for marker in (
        "connection refused",
        "timed out",
        "could not resolve",
        "no route to host",
        "network is unreachable",
        "failed to connect",
        "connection reset",
        "connection closed",
    ):
        if marker in lowered:
            return f"cannot reach {repository.address}: {marker}"
    return f"git fetch failed: {_last_line(stderr)}"


# ------------------------------------------------------------------------------ sync
def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by root only from the first byte on."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(text)


def remove_key(layout: Layout) -> None:
    """Delete the deploy key a hook killed while git ran left on disk (one unlink if none)."""
    (layout.repo_ssh_dir / DEPLOY_KEY_FILE).unlink(missing_ok=True)


def _prepare(layout: Layout, fresh: bool) -> None:
    """Make the private directories, and a new bare repository unless one can be reused."""
    for directory in (layout.repo_dir, layout.repo_home, layout.repo_ssh_dir):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.chmod(0o700)
    git_dir = layout.repo_git_dir
    if fresh or not (git_dir / "HEAD").exists():
        shutil.rmtree(git_dir, ignore_errors=True)
        # No template: no sample hooks, nothing but what fetching needs.
        git = _Git(layout)
        result = git.run(
            "init", "--quiet", "--bare", "--template=", str(git_dir), in_repository=False
        )
        if result.returncode != 0:
            raise SyncError(f"git init failed: {_last_line(result.stderr)}")


def _kind(fetch_head: str) -> str:
    """Return what the fetched ref was, from git's description of it in FETCH_HEAD."""
    description = fetch_head.split("\t")[-1]
    if description.startswith("tag '"):
        return "tag"
    if description.startswith("'") and _FULL_COMMIT.match(description[1:41]):
        return "commit"
    # "branch 'main' of ...", or the bare URL when the remote HEAD was fetched.
    return "branch"


def _fetch(layout: Layout, settings: Settings, credentials: Credentials) -> tuple[str, str]:
    """Fetch the ref into the private repository; return its commit and kind."""
    repository = settings.repository
    git = _Git(layout, settings)
    key_file = layout.repo_ssh_dir / DEPLOY_KEY_FILE
    if repository.transport == SSH:
        _write_private(layout.repo_ssh_dir / "known_hosts", settings.known_hosts.strip() + "\n")
        _write_private(key_file, (credentials.ssh_key or "").strip() + "\n")
    else:
        git.with_token(credentials)
    try:
        result = git.run(
            "fetch",
            "--quiet",
            "--depth",
            "1",
            "--no-tags",
            repository.fetch_url,
            repository.ref or "HEAD",
            timeout=GIT_TIMEOUT_S,
        )
    finally:
        # The deploy key lives on disk only while git needs it.
        key_file.unlink(missing_ok=True)
    if result.returncode != 0:
        raise SyncError(_explain(result.stderr, repository))
    fetch_head = next(iter((layout.repo_git_dir / "FETCH_HEAD").read_text().splitlines()), "")
    commit = git.local("rev-parse", "--verify", "--quiet", "FETCH_HEAD^{commit}").decode().strip()
    git.local("update-ref", "refs/juju/synced", commit)
    return commit, _kind(fetch_head)


def _check_pins(settings: Settings) -> None:
    """Refuse to connect to an ssh server whose host key the operator has not pinned."""
    repository = settings.repository
    if repository.transport != SSH:
        return
    name = repository.known_hosts_name
    port = f"-p {repository.port} " if repository.port not in (None, 22) else ""
    how = (
        f"get it with `ssh-keyscan -t ed25519 {port}{repository.host.strip('[]')}`, check it"
        " out-of-band against the server's fingerprint, and add the line"
    )
    if not settings.known_hosts.strip():
        raise SyncError(f"custom-config-repo-known-hosts is empty: pin the key of {name}: {how}")
    if not pins_host(settings.known_hosts, name):
        raise SyncError(f"custom-config-repo-known-hosts pins no key for {name}: {how}")


def _forget_old_objects(layout: Layout) -> None:
    """Drop the objects of commits nobody will read again (local, only when HEAD moved)."""
    try:
        _Git(layout).local("gc", "--quiet", "--prune=now")
    except SyncError as exc:
        # Only disk space is at stake; the next change tries again.
        logger.warning("could not clean the fetched repository: %s", exc)


def sync(
    layout: Layout,
    settings: Settings,
    credentials: Callable[[Settings], Credentials],
    now: float,
    report: progress.Report = progress.silent,
) -> SyncRecord:
    """Fetch now and record the outcome; the previous commit stays when the fetch fails.

    ``credentials`` is called only here, right before the network is used, so hooks that
    do not fetch never read the secrets. It raises SyncError when a secret is unusable.
    """
    previous = read_record(layout)
    repository = settings.repository
    if previous is None or previous.url != repository.fetch_url:
        # A different repository: nothing fetched before belongs to it.
        previous = SyncRecord(url=repository.fetch_url, source="", attempted_at=now)
    try:
        _check_pins(settings)
        secrets = credentials(settings)
        # Only a repository that gave us a commit is worth fetching into incrementally.
        _prepare(layout, fresh=previous.commit is None)
        # Announced only the first time: a later fetch is incremental and shallow.
        announce = report if previous.commit is None else progress.silent
        what = f"fetching custom-config-repository {repository.fetch_url}"
        with progress.step(announce, what):
            commit, kind = _fetch(layout, settings, secrets)
    except SyncError as exc:
        outcome = dataclasses.replace(
            previous, source=settings.source, attempted_at=now, error=str(exc)
        )
    else:
        if previous.commit not in (None, commit):
            _forget_old_objects(layout)
        outcome = SyncRecord(
            url=repository.fetch_url,
            source=settings.source,
            attempted_at=now,
            commit=commit,
            kind=kind,
            synced_at=now,
        )
    records.write(layout.repo_record, asdict(outcome))
    return outcome


def ensure(
    layout: Layout,
    settings: Settings | None,
    credentials: Callable[[Settings], Credentials],
    now: float,
    force: bool = False,
    report: progress.Report = progress.silent,
) -> SyncRecord | None:
    """Sync if due (or ``force``); return the sync state, None without a repository."""
    if settings is None:
        forget(layout)
        return None
    record = read_record(layout)
    if force or is_due(record, settings, now):
        return sync(layout, settings, credentials, now, report)
    return record


def forget(layout: Layout) -> bool:
    """Delete the fetched repository, its credentials and its record; True if any existed."""
    existed = layout.repo_dir.exists() or layout.repo_record.exists()
    shutil.rmtree(layout.repo_dir, ignore_errors=True)
    layout.repo_record.unlink(missing_ok=True)
    return existed


# ------------------------------------------------------------------------------ reading
# One record of `git ls-tree -z`: mode, type, object id, a tab and the path. Git itself keeps
# paths far shorter (PATH_MAX); a record this long is refused before it is held whole.
_MAX_RECORD_BYTES = 16 * 1024
_CHUNK_BYTES = 64 * 1024
_MAX_HEADER_BYTES = 200


class ContentError(Exception):
    """The repository's content cannot be used; ``str()`` names the file and the problem."""


@dataclass(frozen=True)
class TreeEntry:
    """One path of the fetched commit, as git records it (mode 120000 is a symlink)."""

    mode: str
    kind: str
    oid: str
    path: str


def _records(output: IO[bytes], separator: bytes) -> Iterator[bytes]:
    """Yield ``separator``-terminated records from ``output``, none held beyond the cap."""
    pending = b""
    while chunk := output.read(_CHUNK_BYTES):
        pending += chunk
        *complete, pending = pending.split(separator)
        yield from complete
        if len(pending) > _MAX_RECORD_BYTES:
            raise ContentError(f"a path longer than {_MAX_RECORD_BYTES} bytes: shorten it")
    if pending:
        yield pending


def _path(raw: bytes) -> str:
    """Return the path git recorded, if it is printable UTF-8; raise ContentError if not.

    What is refused here never reaches a log line, a status or a file name on this machine
    unquoted: a byte that is not UTF-8 cannot be written as a name the operator could find,
    a line break would forge a line in the charm's log.
    """
    try:
        path = raw.decode()
    except UnicodeDecodeError:
        path = None
    if path is None or not path.isprintable():
        shown = quote(raw.decode(errors="surrogateescape"))
        raise ContentError(f"file name {shown} is not printable UTF-8: rename it")
    return path


def tree(layout: Layout, commit: str) -> list[TreeEntry]:
    """Return the synced directories of ``commit`` and their entries (not below those).

    Raises ContentError when the commit cannot be used (a name, more than MAX_ENTRIES), and
    SyncError when git fails.
    """
    pathspecs = [*SYNCED_DIRS, *(f"{directory}/" for directory in SYNCED_DIRS)]
    entries: list[TreeEntry] = []
    inside = 0
    listing = ("ls-tree", "-z", "-t", "--full-tree", commit, "--", *pathspecs)
    with _Git(layout).reading(*listing) as output:
        for record in _records(output, b"\0"):
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, oid = meta.decode("ascii", errors="replace").split()
            entries.append(TreeEntry(mode, kind, oid, _path(raw_path)))
            inside += "/" in entries[-1].path
            if inside > MAX_ENTRIES:
                dirs = " and ".join(f"{directory}/" for directory in SYNCED_DIRS)
                raise ContentError(
                    f"{dirs} hold more than {MAX_ENTRIES} entries: keep at most {MAX_ENTRIES}"
                )
    return entries


def sizes(layout: Layout, oids: list[str]) -> dict[str, int]:
    """Return the size git records for each blob of ``oids``, without reading any content."""
    if not oids:
        return {}
    output = _Git(layout).local(
        "cat-file", "--batch-check", stdin="\n".join(oids).encode() + b"\n"
    )
    found: dict[str, int] = {}
    for line in output.decode(errors="replace").splitlines():
        fields = line.split()
        if len(fields) != 3 or fields[1] != "blob":
            raise SyncError(f"git cat-file cannot read {shorten(line, 60)}")
        found[fields[0]] = int(fields[2])
    return found


@dataclass(frozen=True)
class Objects:
    """The fetched repository's objects: sizes first, then content (custom_rules.Blobs)."""

    layout: Layout

    def sizes(self, oids: list[str]) -> dict[str, int]:
        """Return the size of each blob of ``oids``."""
        return sizes(self.layout, oids)

    def read(self, wanted: dict[str, int]) -> dict[str, bytes]:
        """Return the content of each blob of ``wanted`` (oid to size)."""
        return read_blobs(self.layout, wanted)


def read_blobs(layout: Layout, wanted: dict[str, int]) -> dict[str, bytes]:
    """Return the content of each blob of ``wanted`` (oid to the size ``sizes`` gave).

    The content is read as git writes it, one blob at a time, and never beyond the sizes
    given: a caller that checked them holds at most what it allowed.
    """
    if not wanted:
        return {}
    contents: dict[str, bytes] = {}
    oids = list(wanted)
    with _Git(layout).reading(
        "cat-file", "--batch", stdin="\n".join(oids).encode() + b"\n"
    ) as output:
        for oid in oids:
            header = output.readline(_MAX_HEADER_BYTES).split()
            if header[:1] != [oid.encode()] or len(header) != 3 or int(header[2]) != wanted[oid]:
                raise SyncError(f"git cat-file --batch did not answer for {oid}")
            data = output.read(wanted[oid])
            if len(data) != wanted[oid] or output.read(1) != b"\n":
                raise SyncError(f"git cat-file --batch cut {oid} short")
            contents[oid] = data
    return contents
