"""Where the custom config repository is and which SSH host keys are trusted. No Ops, no I/O.

The URL form is the prior charm's, ``git+ssh://user@host[:port]/path[@ref]``, plus ``ssh://``
and ``https://``. Parsing is strict on purpose: anything git or ssh could read as an option
(a host or ref starting with ``-``), credentials in the URL, and relative paths are refused
here, before any command line is built. Host keys are matched the way ssh matches
known_hosts lines (patterns, negations, hashed names), so a missing pin is reported without
connecting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from messages import quote, shorten

SSH = "ssh"
HTTPS = "https"
# The prior charm's form first: git+ssh://user@host[:port]/path[@ref].
_URL = re.compile(
    r"^(?P<scheme>git\+ssh|ssh|https)://"
    r"(?:(?P<user>[^@/\s]+)@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(?::(?P<port>\d{1,5}))?"
    r"(?P<path>/[^@\s]*)"
    r"(?:@(?P<ref>\S+))?$"
)
_SCP_LIKE = re.compile(r"^[^/:@\s]+@[^/:\s]+:")
# A login name as ssh passes it on: nothing ssh or git could read as an option ("-o...").
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")
# Far longer than any repository URL; a longer value is not one (and would be logged).
MAX_URL_CHARS = 2048
# What may surround a URL as typed or pasted, and is dropped. Not str.strip()'s set, which
# also takes \x0b, \x1c-\x1f, \x85 and U+2028 for blanks: those are refused, not dropped.
BLANKS = " \t\r\n"
# A conservative subset of `git check-ref-format`: no option-like or relative forms.
_REF = re.compile(r"^(?!-)(?!/)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/+-]+(?<![/.])$")
_KEY_TYPES = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com|[a-z0-9-]+-cert-v01@openssh\.com)$"
)


@dataclass(frozen=True)
class Repository:
    """A parsed ``custom-config-repository``: where to fetch from and which ref."""

    transport: str
    host: str
    path: str
    ref: str = ""
    user: str = ""
    port: int | None = None

    @property
    def fetch_url(self) -> str:
        """The URL git fetches from (``git+ssh`` is spelt ``ssh`` for git)."""
        port = f":{self.port}" if self.port else ""
        user = f"{self.user}@" if self.user else ""
        scheme = "ssh" if self.transport == SSH else "https"
        return f"{scheme}://{user}{self.host}{port}{self.path}"

    @property
    def known_hosts_name(self) -> str:
        """The host as ssh looks it up in known_hosts (``[host]:port`` off port 22)."""
        if self.port in (None, 22):
            return self.host
        return f"[{self.host.strip('[]')}]:{self.port}"

    @property
    def address(self) -> str:
        """``host:port``, for messages about reaching the server."""
        default = 22 if self.transport == SSH else 443
        return f"{self.host}:{self.port or default}"

    @property
    def display(self) -> str:
        """The repository as the operator wrote it (holds no secret: https userinfo is refused)."""
        return self.fetch_url + (f"@{self.ref}" if self.ref else "")


def _check_user(transport: str, user: str) -> None:
    if transport == SSH and not user:
        raise ValueError("an ssh repository URL needs a user: git+ssh://user@host/path")
    if (transport == HTTPS and user) or ":" in user:
        raise ValueError(
            "credentials do not belong in the URL: use the Juju secret options "
            "custom-config-repo-ssh-key (ssh) or custom-config-repo-token (https)"
        )
    if user and not _USER.match(user):
        raise ValueError(
            f"the user {quote(user, 40)} is not a login name (letters, digits, '.', '_', '-';"
            " not starting with '-')"
        )


def parse_repository(url: str) -> Repository:
    """Return the repository ``url`` names; raise ValueError saying what is wrong."""
    url = url.strip(BLANKS)
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"longer than {MAX_URL_CHARS} characters: not a repository URL")
    if not url.isprintable():
        # git and ssh take the URL as an argument: no NUL, no line breaks, no escapes, no
        # right-to-left override that would show the operator another URL than git reads.
        raise ValueError("the URL contains control characters")
    if _SCP_LIKE.match(url):
        raise ValueError(
            "use the URL form git+ssh://user@host/path[@ref] instead of user@host:path"
        )
    match = _URL.match(url)
    if match is None:
        raise ValueError(
            "expected git+ssh://user@host[:port]/path[@ref] or https://host[:port]/path[@ref]"
        )
    transport = HTTPS if match["scheme"] == "https" else SSH
    user = match["user"] or ""
    _check_user(transport, user)
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} is not between 1 and 65535")
    ref = match["ref"] or ""
    if ref and not _REF.match(ref):
        raise ValueError(f"'{shorten(ref, 60)}' is not a branch, tag or commit name")
    if ".." in match["path"].split("/"):
        raise ValueError("the repository path must not contain '..'")
    return Repository(transport, match["host"], match["path"], ref, user, port)


# ------------------------------------------------------------------------------ known_hosts
def _known_hosts_entries(text: str) -> list[tuple[int, list[str]]]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            entries.append((number, fields))
    return entries


def known_hosts_problem(text: str) -> str | None:
    """Return why ``text`` is not a list of known_hosts lines, or None if it is."""
    for number, fields in _known_hosts_entries(text):
        if fields[0].startswith("@"):
            if fields[0] not in ("@cert-authority", "@revoked"):
                return f"line {number}: unknown marker {shorten(fields[0], 40)}"
            fields = fields[1:]
        if len(fields) < 3 or not _KEY_TYPES.match(fields[1]):
            return f"line {number} is not '<host> <key type> <base64 key>'"
        try:
            base64.b64decode(fields[2], validate=True)
        except ValueError:
            return f"line {number}: the key is not base64"
    return None


def _wildcard(pattern: str) -> re.Pattern[str]:
    """Compile an ssh host pattern: only ``*`` and ``?`` are special (``[`` is literal)."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE)


def _pattern_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):
        # Hashed entry: |1|base64(salt)|base64(HMAC-SHA1(salt, name)), as ssh-keygen -H writes.
        try:
            _, _, salt, digest = pattern.split("|")
            expected = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(expected, base64.b64decode(digest))
        except ValueError:
            return False
    return _wildcard(pattern).fullmatch(name) is not None


def pins_host(text: str, name: str) -> bool:
    """Return whether some line of ``text`` pins a usable key for the known_hosts ``name``."""
    for _, fields in _known_hosts_entries(text):
        if fields[0] == "@revoked":
            continue
        patterns = (fields[1] if fields[0].startswith("@") else fields[0]).split(",")
        if any(p.startswith("!") and _pattern_matches(p[1:], name) for p in patterns):
            continue
        if any(not p.startswith("!") and _pattern_matches(p, name) for p in patterns):
            return True
    return False
