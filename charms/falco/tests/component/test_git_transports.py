"""The repository sync against real servers: OpenSSH's sshd and git http-backend over TLS.

Nothing here is faked: real git and ssh clients talk to a real sshd on 127.0.0.1 with a host
key and a user key made for the test, and to ``git http-backend`` behind TLS with a test CA.
This is where the messages the charm turns into statuses are checked against the real tools.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import custom_rules
import git_sync
import pytest
import real_tools
import repository
from charm import FalcoCharm
from custom_rules import ContentError
from git_repos import RulesRepo, rule
from git_servers import HttpsGitServer, SshGitServer, keygen
from git_sync import Credentials, Settings, SyncError
from layout import Layout
from machine import FakeMachine, build_payload
from ops import testing

HOUR = 3600.0


@pytest.fixture(autouse=True)
def _real_sshd_as_root() -> None:
    real_tools.require("sshd", "openssh-server")
    real_tools.require_root("sshd runs as root and switches to the test's user")


@pytest.fixture(name="repo")
def repo_fixture(tmp_path: Path) -> RulesRepo:
    repo = RulesRepo(tmp_path / "repos")
    repo.commit({"rules.d/10-custom.yaml": rule("Custom one"), "README.md": "hello"})
    repo.tag("v1")
    repo.tag("v1-annotated", annotated=True)
    return repo


@pytest.fixture(name="sshd")
def sshd_fixture(tmp_path: Path) -> Iterator[SshGitServer]:
    server = SshGitServer(tmp_path / "sshd").start()
    yield server
    server.stop()


@pytest.fixture(name="layout")
def layout_fixture(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "machine")


def ssh_settings(server: SshGitServer, repo: RulesRepo, ref: str, **extra: str) -> Settings:
    url = server.url(repo.bare, ref)
    return Settings(
        repository=repository.parse_repository(url),
        known_hosts=extra.get("known_hosts", server.known_hosts_line),
        ssh_key_secret="secret:test",  # noqa: S106 - an id, the content comes below
        interval_s=900,
    )


def key_of(server: SshGitServer) -> object:
    return lambda _: Credentials(ssh_key=server.user_private_key)


def files_at(layout: Layout, commit: str) -> dict[str, str]:
    entries = git_sync.tree(layout, commit)
    rules, overrides = custom_rules.from_repository(entries, git_sync.Objects(layout))
    return {source.name: source.text for source in (*rules, *overrides)}


def ssh_home() -> Path:
    return Path(pwd.getpwuid(os.geteuid()).pw_dir) / ".ssh"


def snapshot(directory: Path) -> dict[str, tuple[int, int]] | None:
    if not directory.exists():
        return None
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.iterdir()}


@pytest.mark.parametrize("ref", ["v1", "v1-annotated"])
def test_clone_by_tag(layout: Layout, sshd: SshGitServer, repo: RulesRepo, ref: str) -> None:
    """arrange: a tag over ssh. act: sync. assert: the tag's commit, pinned, its files."""
    record = git_sync.sync(layout, ssh_settings(sshd, repo, ref), key_of(sshd), 0)

    assert record.error is None
    assert (record.kind, record.commit) == ("tag", repo.head())
    assert files_at(layout, repo.head()) == {"rules.d/10-custom.yaml": rule("Custom one")}
    assert not git_sync.is_due(record, ssh_settings(sshd, repo, ref), 365 * 24 * HOUR)


def test_clone_by_commit_id(layout: Layout, sshd: SshGitServer, repo: RulesRepo) -> None:
    """arrange: a full commit id. act: sync. assert: that commit, pinned."""
    commit = repo.head()
    repo.commit({"rules.d/10-custom.yaml": rule("Later")})

    record = git_sync.sync(layout, ssh_settings(sshd, repo, commit), key_of(sshd), 0)

    assert (record.kind, record.commit, record.error) == ("commit", commit, None)


def test_branch_is_fetched_again_incrementally_only_when_due(
    layout: Layout, sshd: SshGitServer, repo: RulesRepo
) -> None:
    """arrange: branch synced. act: push, ask before and after the interval. assert."""
    settings = ssh_settings(sshd, repo, "main")
    first = git_sync.sync(layout, settings, key_of(sshd), 0)
    repository_config = (layout.repo_git_dir / "config").stat().st_ino
    new = repo.commit({"rules.d/10-custom.yaml": None, "rules.d/20-new.yml": rule("New")})

    assert first.kind == "branch"
    assert git_sync.ensure(layout, settings, key_of(sshd), 899) == first
    record = git_sync.ensure(layout, settings, key_of(sshd), 900)

    assert record is not None
    assert (record.commit, record.synced_at) == (new, 900)
    assert files_at(layout, new) == {"rules.d/20-new.yml": rule("New")}
    # The same repository, fetched into (not cloned again), and shallow.
    assert (layout.repo_git_dir / "config").stat().st_ino == repository_config
    assert (layout.repo_git_dir / "shallow").read_text().split() == [new]


def test_unknown_host_key_is_refused(
    layout: Layout, sshd: SshGitServer, repo: RulesRepo, tmp_path: Path
) -> None:
    """arrange: another key pinned for the server. act: sync. assert: refused, no login."""
    other = keygen(tmp_path / "impostor").split()
    pinned = f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}"
    settings = ssh_settings(sshd, repo, "v1", known_hosts=pinned)

    record = git_sync.sync(layout, settings, key_of(sshd), 0)

    assert record.error is not None
    assert record.error.startswith(
        f"the SSH host key of [127.0.0.1]:{sshd.port} is not the one pinned"
    )
    assert "Accepted publickey" not in sshd.log()


def test_wrong_user_key_is_refused(
    layout: Layout, sshd: SshGitServer, repo: RulesRepo, tmp_path: Path
) -> None:
    """arrange: a key the server does not know. act: sync. assert: refused, says so."""
    keygen(tmp_path / "stranger")
    stranger = (tmp_path / "stranger").read_text()

    record = git_sync.sync(
        layout, ssh_settings(sshd, repo, "v1"), lambda _: Credentials(ssh_key=stranger), 0
    )

    assert record.error == (
        f"127.0.0.1:{sshd.port} refused the key in custom-config-repo-ssh-key: add its public "
        "key to the repository (deploy key) or fix the secret"
    )
    assert not (layout.repo_ssh_dir / "deploy_key").exists()


def test_host_down_keeps_the_last_commit(
    layout: Layout, sshd: SshGitServer, repo: RulesRepo
) -> None:
    """arrange: branch synced, then the server stops. act: due sync. assert: kept, why."""
    settings = ssh_settings(sshd, repo, "main")
    first = git_sync.sync(layout, settings, key_of(sshd), 0)
    sshd.stop()

    record = git_sync.sync(layout, settings, key_of(sshd), 900)

    assert record.error == f"cannot reach 127.0.0.1:{sshd.port}: connection refused"
    assert (record.commit, record.synced_at) == (first.commit, 0)
    assert git_sync.is_due(record, settings, 900 + 899) is False


@pytest.mark.parametrize(
    ("path", "ref", "error"),
    [
        (None, "v9", "ref 'v9' not found: use an existing branch, tag or full commit id"),
        (Path("/nonexistent/rules.git"), "main", "no repository at ssh://"),
    ],
)
def test_missing_ref_or_repository(
    layout: Layout,
    sshd: SshGitServer,
    repo: RulesRepo,
    path: Path | None,
    ref: str,
    error: str,
) -> None:
    """arrange: a ref or path the server lacks. act: sync. assert: says which."""
    settings = ssh_settings(sshd, repo, ref)
    if path is not None:
        repository = dataclasses.replace(settings.repository, path=str(path))
        settings = dataclasses.replace(settings, repository=repository)

    record = git_sync.sync(layout, settings, key_of(sshd), 0)

    assert record.error is not None
    assert record.error.startswith(error)


def test_symlinks_in_the_repository_are_refused(
    layout: Layout, sshd: SshGitServer, repo: RulesRepo
) -> None:
    """arrange: a symlinked rules file and a symlinked folder. act: sync, collect."""
    repo.commit({}, links={"rules.d/20-shadow.yaml": "/etc/shadow"})
    record = git_sync.sync(layout, ssh_settings(sshd, repo, "main"), key_of(sshd), 0)
    assert record.commit is not None

    with pytest.raises(ContentError, match=r"rules\.d/20-shadow\.yaml is a symbolic link"):
        files_at(layout, record.commit)

    repo.commit({"rules.d/20-shadow.yaml": None, "rules.d/10-custom.yaml": None})
    (repo.work / "rules.d").rmdir()
    repo.commit({}, links={"rules.d": "/etc"})
    record = git_sync.sync(layout, ssh_settings(sshd, repo, "main"), key_of(sshd), 900)
    assert record.commit is not None
    with pytest.raises(ContentError, match=r"rules\.d is a symbolic link"):
        files_at(layout, record.commit)
    # Never checked out: nothing of the repository exists as files on this machine.
    assert not list(layout.root.rglob("*shadow*"))


def test_a_tree_with_a_path_leaving_the_repository_is_refused(
    layout: Layout, sshd: SshGitServer, repo: RulesRepo
) -> None:
    """arrange: a crafted tree with a '..' entry. act: sync. assert: git refuses it."""
    repo.commit_tree_entry(b"100644 ..\0@BLOB@")

    record = git_sync.sync(layout, ssh_settings(sshd, repo, "main"), key_of(sshd), 0)

    assert record.error is not None
    assert record.error.startswith("git fetch failed:")
    assert record.commit is None


def test_nothing_is_written_to_any_ssh_directory(
    layout: Layout, sshd: SshGitServer, repo: RulesRepo, tmp_path: Path
) -> None:
    """arrange: the user's ~/.ssh. act: syncs that succeed and fail. assert: untouched."""
    before = snapshot(ssh_home())

    git_sync.sync(layout, ssh_settings(sshd, repo, "v1"), key_of(sshd), 0)
    other = keygen(tmp_path / "impostor").split()
    unknown = f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}"
    git_sync.sync(layout, ssh_settings(sshd, repo, "v1", known_hosts=unknown), key_of(sshd), 1)

    assert snapshot(ssh_home()) == before
    assert list(layout.repo_home.iterdir()) == []


def test_a_fetch_that_hangs_is_cut_off(
    layout: Layout, repo: RulesRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrange: a server that accepts and never answers, short timeouts. act: sync."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        monkeypatch.setattr(git_sync, "GIT_TIMEOUT_S", 3)
        settings = Settings(
            repository.parse_repository(f"ssh://git@127.0.0.1:{port}/r.git"),
            known_hosts=f"[127.0.0.1]:{port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==",
        )

        record = git_sync.sync(layout, settings, lambda _: Credentials(ssh_key="k"), 0)

    assert record.error == "git fetch took longer than 3s"


# ------------------------------------------------------------------------------ https
@pytest.fixture(name="https")
def https_fixture(tmp_path: Path, repo: RulesRepo) -> Iterator[HttpsGitServer]:
    server = HttpsGitServer(tmp_path / "https", repo.bare.parent).start()
    yield server
    server.stop()


def https_settings(server: HttpsGitServer, repo: RulesRepo, ca: bool = True) -> Settings:
    return Settings(
        repository=repository.parse_repository(server.url(repo.bare.name, "v1")),
        https_ca_file=server.ca_file if ca else None,
    )


def test_https_repository_with_a_test_ca(
    layout: Layout, https: HttpsGitServer, repo: RulesRepo
) -> None:
    """arrange: http-backend behind TLS. act: sync by tag. assert: fetched, smart HTTP."""
    record = git_sync.sync(layout, https_settings(https, repo), lambda _: Credentials(), 0)

    assert (record.error, record.kind, record.commit) == (None, "tag", repo.head())
    assert any("git-upload-pack" in request for request in https.server.requests)


def test_https_server_the_system_does_not_trust_is_refused(
    layout: Layout, https: HttpsGitServer, repo: RulesRepo
) -> None:
    """arrange: the test CA unknown to the client. act: sync. assert: TLS refused."""
    settings = https_settings(https, repo, ca=False)

    record = git_sync.sync(layout, settings, lambda _: Credentials(), 0)

    assert record.error == f"cannot verify the TLS certificate of 127.0.0.1:{https.port}"


def test_https_token_is_sent_as_basic_auth_from_the_environment(
    layout: Layout, tmp_path: Path, repo: RulesRepo
) -> None:
    """arrange: a server demanding a token. act: sync without, then with. assert."""
    wanted = "oauth2:t0k3n"
    server = HttpsGitServer(tmp_path / "private", repo.bare.parent, wanted).start()
    try:
        settings = https_settings(server, repo)
        refused = git_sync.sync(layout, settings, lambda _: Credentials(), 0)
        user, token = wanted.split(":")
        accepted = git_sync.sync(
            layout, settings, lambda _: Credentials(token=token, token_user=user), 1
        )
    finally:
        server.stop()

    assert refused.error == (
        f"127.0.0.1:{server.port} refused the credentials in custom-config-repo-token"
    )
    assert (accepted.error, accepted.commit) == (None, repo.head())


# ------------------------------------------------------------------------------ the charm
def test_charm_applies_rules_from_a_real_ssh_server(
    tmp_path: Path,
    sshd: SshGitServer,
    repo: RulesRepo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """arrange: the charm on a fake machine, real git and sshd. act: install. assert."""
    machine = FakeMachine(tmp_path / "machine")
    (machine.bin / "git").unlink()  # the real git, straight to the real sshd
    for key, value in machine.environ().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(FalcoCharm, "filesystem_root", machine.root)
    monkeypatch.setattr(FalcoCharm, "falco_metrics", staticmethod(machine.falco_metrics))
    build_payload(tmp_path / "charm" / "payload")
    ctx = testing.Context(FalcoCharm, charm_root=tmp_path / "charm")
    no_resource = tmp_path / "resource" / "falco.tar.gz"
    no_resource.parent.mkdir()
    no_resource.write_bytes(b"")
    secret = testing.Secret(tracked_content={"value": sshd.user_private_key})
    config = {
        "custom-config-repository": sshd.url(repo.bare, "v1"),
        "custom-config-repo-ssh-key": secret.id,
        "custom-config-repo-known-hosts": sshd.known_hosts_line,
    }

    state = testing.State(
        config=config,
        secrets={secret},
        resources={testing.Resource(name="falco", path=no_resource)},
    )

    out = ctx.run(ctx.on.install(), state)

    assert out.unit_status == testing.ActiveStatus(
        "alerts stay on this host: integrate http-endpoint"
    )
    config_text = (machine.root / "etc/juju-falco/falco.yaml").read_text()
    rules_dir = next(line for line in config_text.splitlines() if line.endswith("/rules.d"))
    loaded = Path(rules_dir.removeprefix("- ")) / "10-custom.yaml"
    assert loaded.read_text() == rule("Custom one")
    assert "Accepted publickey" in sshd.log()


def test_sync_errors_never_carry_the_key(
    layout: Layout, sshd: SshGitServer, repo: RulesRepo
) -> None:
    """arrange: a malformed key. act: sync. assert: the error holds no key material."""
    broken = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END"

    record = git_sync.sync(
        layout, ssh_settings(sshd, repo, "v1"), lambda _: Credentials(ssh_key=broken), 0
    )

    assert record.error is not None
    assert "c2VjcmV0" not in record.error
    assert "c2VjcmV0" not in layout.repo_record.read_text()


def test_credentials_problems_stop_before_the_network(
    layout: Layout, sshd: SshGitServer, repo: RulesRepo
) -> None:
    """arrange: credentials that cannot be read. act: sync. assert: recorded, no login."""

    def unreadable(_: Settings) -> Credentials:
        raise SyncError("cannot read secret secret:x")

    connections = sshd.log().count("Connection from")  # the start-up probe's
    record = git_sync.sync(layout, ssh_settings(sshd, repo, "v1"), unreadable, 0)

    assert record.error == "cannot read secret secret:x"
    assert sshd.log().count("Connection from") == connections
