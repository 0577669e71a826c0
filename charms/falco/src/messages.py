"""Status-ready text from text the charm does not control. No Ops.

Statuses quote git's and Falco's errors, remote data and option values; whatever they
say, a status stays one line that `juju status` can show.
"""

from __future__ import annotations

MAX_QUOTED = 200
# A name (a file of the repository, a key) quoted in a status or a log: enough to find it.
MAX_QUOTED_NAME = 80
# What `juju status` shows well; a status quoting more is cut (its quotes are cut first).
MAX_STATUS = 300


def shorten(text: str, limit: int = MAX_QUOTED) -> str:
    """Return ``text`` on one line and at most ``limit`` characters long."""
    flat = " ".join(text.splitlines())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def shorten_middle(text: str, limit: int = MAX_QUOTED) -> str:
    """Return ``text`` on one line, at most ``limit`` long, cut in the middle if need be.

    For errors that name what failed first and why last ("cannot load plugin <path>: ...:
    No such file or directory"): the middle, usually a path said twice, is what can go.
    """
    flat = " ".join(text.splitlines())
    if len(flat) <= limit:
        return flat
    head = (limit - 3) // 2
    return flat[:head] + "..." + flat[len(flat) - (limit - 3 - head) :]


def status_line(text: str) -> str:
    """Return ``text`` fit for a status: one line, at most MAX_STATUS characters."""
    return shorten(text, MAX_STATUS)


def _escaped(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return char.encode("unicode_escape").decode("ascii")


def quote(text: str, limit: int = MAX_QUOTED_NAME) -> str:
    r"""Return ``text`` between quotes with everything unprintable escaped, cut at ``limit``.

    For names that come from outside (a repository's file names): a newline, a terminal
    escape or a right-to-left override shows as ``\n``, ``\x1b``, ``\u202e``, and a
    byte that is not UTF-8 (read with ``surrogateescape``) as ``\xff``, so the quote can
    neither forge a line in a log nor hide what the name really is.
    """
    escaped = "".join(_escaped(char) for char in text[:limit])
    if len(escaped) > limit or len(text) > limit:
        escaped = escaped[: limit - 3] + "..."
    return f"'{escaped}'"
