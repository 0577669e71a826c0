"""Real git repositories of custom rules for tests: commits, tags, branches, links.

``RulesRepo`` keeps a bare repository (what a server serves) and a work tree to commit from,
both built with the real git in an environment isolated from the user's git config.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

# Resolved once at import, before any test puts a fake git first on PATH.
GIT = shutil.which("git") or "/usr/bin/git"
RULE = """\
- rule: {name}
  desc: a custom rule for tests
  condition: evt.type = openat and fd.name = {path}
  output: "custom rule fired (file=%fd.name command=%proc.cmdline)"
  priority: WARNING
  tags: [custom]
"""
# Overrides a default rule and adds an exception to it: what the README documents.
OVERRIDE_DEFAULT = """\
- rule: Read sensitive file untrusted
  exceptions:
    - name: backup_agent
      fields: [proc.name, fd.name]
      comps: [=, startswith]
      values:
        - [backup-agent, /etc/shadow]
  override:
    exceptions: append
"""
MISSING_OUTPUT = """\
- rule: Broken rule
  desc: no output
  condition: evt.type = openat
  priority: WARNING
"""


def rule(name: str, path: str = "/etc/custom-secret") -> str:
    """Return the YAML of one valid custom rule."""
    return RULE.format(name=name, path=path)


def _env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Rules Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Rules Author",
        "GIT_COMMITTER_EMAIL": "author@example.com",
        "LC_ALL": "C",
    }


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    """Run the real git in ``cwd`` and return its stdout; fail the test if it fails."""
    result = subprocess.run(
        [GIT, *args], cwd=cwd, env=_env(), input=stdin, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


class RulesRepo:
    """A served bare repository plus a work tree that commits and pushes to it."""

    def __init__(self, base: Path, name: str = "rules"):
        base.mkdir(parents=True, exist_ok=True)
        self.bare = base / f"{name}.git"
        self.work = base / f"{name}-work"
        git(base, "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare))
        git(base, "init", "--quiet", "--initial-branch=main", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.bare))

    def commit(
        self,
        files: dict[str, str | None],
        links: dict[str, str] | None = None,
        branch: str = "main",
        message: str = "update rules",
    ) -> str:
        """Write (or with None delete) files and symlinks, commit, push; return the commit."""
        for name, text in files.items():
            path = self.work / name
            if text is None:
                path.unlink(missing_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for name, target in (links or {}).items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            path.symlink_to(target)
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "--allow-empty", "-m", message)
        git(self.work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        return self.head()

    def commit_stream(
        self, name: str, chunks: Iterable[bytes], message: str = "a large file"
    ) -> str:
        """Commit ``chunks`` as the file ``name`` on main and push; return the commit.

        git reads the content as a stream and the file never exists in the work tree (a
        later ``commit`` records it as deleted): a test can commit hundreds of MiB without
        holding or writing them.
        """
        hasher = subprocess.Popen(
            [GIT, "hash-object", "-w", "--stdin"],
            cwd=self.work,
            env=_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert hasher.stdin is not None and hasher.stdout is not None
        for chunk in chunks:
            hasher.stdin.write(chunk)
        hasher.stdin.close()
        blob = hasher.stdout.read().decode().strip()
        assert hasher.wait() == 0
        git(self.work, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}")
        git(self.work, "commit", "--quiet", "-m", message)
        git(self.work, "push", "--quiet", "origin", "HEAD:refs/heads/main")
        return self.head()

    def checkout(self, branch: str, create: bool = False) -> None:
        """Switch the work tree to ``branch``."""
        git(self.work, "checkout", "--quiet", *(["-b"] if create else []), branch)

    def tag(self, name: str, annotated: bool = False, force: bool = False) -> None:
        """Tag the work tree's HEAD and push the tag (``force`` moves an existing one)."""
        options = (["-a", "-m", name] if annotated else []) + (["--force"] if force else [])
        git(self.work, "tag", *options, name)
        git(
            self.work,
            "push",
            "--quiet",
            *(["--force"] if force else []),
            "origin",
            f"refs/tags/{name}",
        )

    def head(self) -> str:
        """Return the work tree's HEAD commit."""
        return git(self.work, "rev-parse", "HEAD")

    def commit_tree_entry(self, entry: bytes, message: str = "crafted") -> str:
        """Push a commit whose rules.d holds ``entry`` verbatim (e.g. a '..' name)."""
        blob = git(self.work, "hash-object", "-w", "--stdin", stdin=b"- list: x\n  items: []\n")
        inner = entry.replace(b"@BLOB@", bytes.fromhex(blob))
        rules_d = git(
            self.work, "hash-object", "-t", "tree", "-w", "--literally", "--stdin", stdin=inner
        )
        top = b"40000 rules.d\0" + bytes.fromhex(rules_d)
        root = git(
            self.work, "hash-object", "-t", "tree", "-w", "--literally", "--stdin", stdin=top
        )
        commit = git(self.work, "commit-tree", root, "-p", "HEAD", "-m", message)
        git(self.work, "push", "--quiet", "--no-verify", "origin", f"{commit}:refs/heads/main")
        return commit
