"""Find the real Falco, Falcosidekick and Pebble that tests run the charms' output through.

Fakes say what we believe a program does; these are the programs (see
``../shared/workloads/README.md``). They live in the directory named by
``$FALCO_OPERATORS_WORKLOADS`` or else in ``shared/workloads`` beside the repository (the
first ancestor of this file that has one), so the same lookup serves the repository and the
copies vendored into each charm.

Outside CI a test that needs a missing program is skipped, with one line saying how to
provide it; with ``CI=true`` it fails: CI must prove the charms against the real programs.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

ENV = "FALCO_OPERATORS_WORKLOADS"
FALCO_VERSION = "0.44.1"
FALCO_TARBALL = f"falco-{FALCO_VERSION}-x86_64.tar.gz"
FALCOSIDEKICK = "falcosidekick-2.34.1"
PEBBLE = "pebble-1.32.1"
# A syscall capture Falco's replay engine reads without privileges, the JSON alerts it gives
# with the default rules plus the marker rule, and that rule (README of the workloads).
SELFTEST_CAPTURE = f"falco-{FALCO_VERSION}-selftest.scap"
SELFTEST_EXPECTED = f"falco-{FALCO_VERSION}-selftest.expected.jsonl"
SELFTEST_MARKER_RULE = f"falco-{FALCO_VERSION}-selftest-marker.yaml"
SELFTEST_MARKER_PATH = "/tmp/juju-falco-selftest-marker"  # noqa: S108 - a path in the capture
SELFTEST_HOSTNAME = "fixture-host"
# The Debian 12 libraries this Falco build links against (`make deps` installs them as root).
FALCO_RUNTIME_PACKAGES = (
    "libcurl4",
    "zlib1g",
    "libelf1",
    "libjsoncpp25",
    "libre2-9",
    "libtbb12",
    "libssl3",
)


def directory() -> Path | None:
    """Return the directory holding the workloads, or None if there is none."""
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured)
    for ancestor in Path(__file__).resolve().parents:
        candidate = ancestor / "shared" / "workloads"
        if (candidate / "SHA256SUMS").is_file():
            return candidate
    return None


def missing(message: str) -> None:
    """Fail under CI, else skip, with ``message`` saying what is missing and how to get it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: the real-workload tests must run)")
    pytest.skip(message)


def require(name: str) -> Path:
    """Return the path of workload file ``name``; skip or fail (see ``missing``) without it."""
    where = directory()
    if where is not None and (where / name).is_file():
        return where / name
    looked = str(where) if where else "no shared/workloads beside the repository"
    missing(f"{name} not found ({looked}): set {ENV} to a directory holding it")
    raise AssertionError("unreachable")  # pragma: no cover - missing() raises


def unpack_falco(destination: Path) -> Path:
    """Unpack the real Falco tarball under ``destination``; return its top directory.

    Fails or skips, naming the Debian packages, when the binary cannot run here.
    """
    with tarfile.open(require(FALCO_TARBALL)) as archive:
        archive.extractall(destination, filter="data")
    top = destination / FALCO_TARBALL.removesuffix(".tar.gz")
    result = subprocess.run(
        [str(top / "usr/bin/falco"), "--version"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        missing(
            f"the real falco cannot run here ({result.stderr.strip()[:200]}): install "
            f"{' '.join(FALCO_RUNTIME_PACKAGES)} (`make deps` does, as root)"
        )
    return top
