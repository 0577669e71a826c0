"""Find the real tools the component tests drive, or fail saying how to get them.

A component test that quietly skips when its tool is missing proves nothing in CI. `make
test` installs these tools (Debian packages) when it runs as root, so a missing tool is a
failure here; a developer without root can set SKIP_MISSING_TOOLS=1 to skip those tests
knowingly.
"""

from __future__ import annotations

import os
import shutil

import pytest

# Where Debian puts administrator tools, which a non-root PATH often leaves out.
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


def require(tool: str, package: str) -> str:
    """Return the path of ``tool``; fail (or skip, if allowed) naming the Debian ``package``."""
    found = shutil.which(tool) or shutil.which(tool, path=_SBIN)
    if found:
        return found
    message = f"{tool} not found: install Debian's {package} (`make test` does, as root)"
    if os.environ.get("SKIP_MISSING_TOOLS"):
        pytest.skip(message)
    pytest.fail(message)


def require_root(why: str) -> None:
    """Fail (or skip, if allowed) unless running as root, saying ``why`` root is needed."""
    if os.geteuid() == 0:
        return
    message = f"needs root: {why} (CI runs `make test` as root)"
    if os.environ.get("SKIP_MISSING_TOOLS"):
        pytest.skip(message)
    pytest.fail(message)
