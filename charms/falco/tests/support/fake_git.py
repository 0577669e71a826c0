"""A recording ``git`` with a fake network in front of the real git.

Installed as ``git`` on the fake machine's PATH. Every call is appended to the machine's
``calls.jsonl`` with its argv, the git environment the charm set, and what
the deploy key file looked like while git ran. Local commands run the real git unchanged.

Commands that reach a remote (``fetch``, ``clone``, ``ls-remote``, ``pull``, ``push``) are
the network. The remote is looked up in the machine's ``network.json``::

    {"remotes": {"<url>": "<bare repository>"},   # what answers at each URL
     "down": ["<host>"],                           # connection refused
     "host_keys": {"<host>": "<key type> <base64>"},  # the ssh server's host key
     "deploy_keys": {"<host>": "<private key text>"},  # the one key the server accepts
     "tokens": {"<host>": "<user>:<token>"}}       # https basic auth the server wants

and answered the way ssh and git answer (the component tests check those messages against a
real sshd): an unpinned or changed host key, a refused key, a host that is down. A reachable
remote is served by the real git from the local bare repository.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Baked in when the script is installed: the charm runs git with a clean environment.
REAL_GIT = "@REAL_GIT@"
STATE_DIR = Path("@STATE_DIR@")
NETWORK = ("fetch", "clone", "ls-remote", "pull", "push")
RECORDED_ENV = (
    "HOME",
    "GIT_SSH_COMMAND",
    "GIT_ALLOW_PROTOCOL",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_GLOBAL",
    "GIT_TERMINAL_PROMPT",
    "https_proxy",
    "no_proxy",
)
CANNOT_READ = (
    "fatal: Could not read from remote repository.\n\n"
    "Please make sure you have the correct access rights\nand the repository exists.\n"
)


def _subcommand(argv: list[str]) -> str:
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in ("-C", "-c") else 1
    return argv[i] if i < len(argv) else ""


def _ssh_option(name: str) -> str | None:
    words = os.environ.get("GIT_SSH_COMMAND", "").split()
    prefix = f"{name}="
    return next((w[len(prefix) :] for w in words if w.startswith(prefix)), None)


def _key_file() -> dict[str, Any] | None:
    path = _ssh_option("IdentityFile")
    if path is None or not Path(path).exists():
        return None
    return {"mode": oct(Path(path).stat().st_mode & 0o777), "text": Path(path).read_text()}


def _config_values(key: str) -> list[str]:
    count = int(os.environ.get("GIT_CONFIG_COUNT", "0"))
    return [
        os.environ.get(f"GIT_CONFIG_VALUE_{i}", "")
        for i in range(count)
        if os.environ.get(f"GIT_CONFIG_KEY_{i}") == key
    ]


def _record(argv: list[str], key: dict[str, Any] | None) -> None:
    entry = {
        "tool": "git",
        "argv": argv,
        "env": {name: os.environ[name] for name in RECORDED_ENV if name in os.environ},
        "key_mode": key["mode"] if key else None,
        # Whether a secret travelled where it must not: on the command line.
        "secret_in_argv": any("PRIVATE KEY" in a or "Authorization" in a for a in argv),
    }
    with (STATE_DIR / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps(entry) + "\n")


def _refuse(message: str) -> int:
    sys.stderr.write(message)
    return 128


def _pinned(host_name: str, key: str) -> str:
    """Return "ok", "unknown" or "changed" for the server key against our known_hosts."""
    path = _ssh_option("UserKnownHostsFile")
    lines = Path(path).read_text().splitlines() if path and Path(path).exists() else []
    keys = [line.split()[1:3] for line in lines if line.split() and line.split()[0] == host_name]
    if not keys:
        return "unknown"
    return "ok" if key.split() in keys else "changed"


def _ssh_checks(url: Any, network: dict[str, Any], key: dict[str, Any] | None) -> int | None:
    host, port = url.hostname, url.port or 22
    name = host if port == 22 else f"[{host}]:{port}"
    if _ssh_option("StrictHostKeyChecking") != "yes":
        return _refuse("fake git: refusing to run ssh without StrictHostKeyChecking=yes\n")
    verdict = _pinned(name, network.get("host_keys", {}).get(host, ""))
    if verdict == "unknown":
        return _refuse(
            f"No ED25519 host key is known for {name} and you have requested strict "
            f"checking.\nHost key verification failed.\n{CANNOT_READ}"
        )
    if verdict == "changed":
        return _refuse(
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
            f"Host key for {name} has changed and you have requested strict checking.\n"
            f"Host key verification failed.\n{CANNOT_READ}"
        )
    accepted = network.get("deploy_keys", {}).get(host)
    if key is None or key["text"].strip() != (accepted or "").strip():
        return _refuse(f"{url.username}@{host}: Permission denied (publickey).\n{CANNOT_READ}")
    return None


def _https_checks(url: Any, network: dict[str, Any], raw_url: str) -> int | None:
    wanted = network.get("tokens", {}).get(url.hostname)
    if wanted is None:
        return None
    expected = f"Authorization: Basic {base64.b64encode(wanted.encode()).decode()}"
    if expected not in _config_values("http.extraHeader"):
        return _refuse(
            f"remote: Invalid username or token.\nfatal: Authentication failed for '{raw_url}/'\n"
        )
    return None


def _network(argv: list[str], key: dict[str, Any] | None) -> list[str] | int:
    """Answer for the remote, or return the argv that fetches from its local stand-in."""
    path = STATE_DIR / "network.json"
    network: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    index, raw = next((i, a) for i, a in enumerate(argv) if "://" in a)
    url = urlsplit(raw)
    if url.hostname in network.get("down", []):
        if url.scheme == "https":
            return _refuse(
                f"fatal: unable to access '{raw}/': Failed to connect to {url.hostname} port "
                f"{url.port or 443} after 0 ms: Couldn't connect to server\n"
            )
        return _refuse(
            f"ssh: connect to host {url.hostname} port {url.port or 22}: Connection refused\r\n"
            f"{CANNOT_READ}"
        )
    problem = (
        _ssh_checks(url, network, key) if url.scheme == "ssh" else _https_checks(url, network, raw)
    )
    if problem is not None:
        return problem
    local = network.get("remotes", {}).get(raw)
    if local is None:
        if url.scheme == "https":
            return _refuse(
                f"remote: Repository not found.\nfatal: repository '{raw}/' not found\n"
            )
        return _refuse(
            f"fatal: '{url.path}' does not appear to be a git repository\n{CANNOT_READ}"
        )
    os.environ["GIT_ALLOW_PROTOCOL"] = "file"
    return [*argv[:index], f"file://{local}", *argv[index + 1 :]]


def main(argv: list[str]) -> int:
    key = _key_file()
    _record(argv, key)
    if _subcommand(argv) in NETWORK:
        routed = _network(argv, key)
        if isinstance(routed, int):
            return routed
        argv = routed
    os.execv(REAL_GIT, [REAL_GIT, *argv])  # noqa: S606 - becomes the real git, no shell
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
