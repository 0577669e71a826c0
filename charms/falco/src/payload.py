"""The Falco release tarball the charm runs: pick, unpack, check, record. No Ops here.

The charm ships the official tarball for its architecture and an operator may override it
with the ``falco`` resource. Either way the tarball has the release layout: one top-level
``falco-<version>-<arch>/`` directory holding ``usr/bin/falco``, the container plugin, the
default rules and the kmod driver sources. A candidate is unpacked next to the payload in
use, checked (layout, then ``falco --version``), and only then recorded as the one to run;
a refused candidate is deleted and its reason recorded, and the running Falco is left alone.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import falco_cli
import progress
import records
from layout import Layout

# The charm resource an operator may attach to replace the bundled tarball.
RESOURCE = "falco"
RESOURCE_ORIGIN = "resource"
# The tarball inside the charm itself (a refresh of the charm brings a new one).
BUNDLED_ORIGIN = "bundled"
FALCO_BINARY = "usr/bin/falco"
CONTAINER_PLUGIN = "usr/share/falco/plugins/libcontainer.so"
DEFAULT_RULES = "etc/falco/falco_rules.yaml"
REQUIRED_FILES = (FALCO_BINARY, CONTAINER_PLUGIN, DEFAULT_RULES)
DRIVER_SOURCES_GLOB = "usr/src/falco-*"
logger = logging.getLogger(__name__)
_CHUNK = 1 << 20


class PayloadError(Exception):
    """A candidate payload cannot be used; ``str()`` says why, ready for a status."""


@dataclass(frozen=True)
class Payload:
    """An unpacked, checked release tarball."""

    sha256: str
    directory: Path
    falco_version: str
    driver_version: str

    @property
    def falco_binary(self) -> Path:
        """The Falco executable."""
        return self.directory / FALCO_BINARY

    @property
    def container_plugin(self) -> Path:
        """The container plugin the default rules need."""
        return self.directory / CONTAINER_PLUGIN

    @property
    def default_rules(self) -> Path:
        """The default ruleset shipped with this Falco version."""
        return self.directory / DEFAULT_RULES

    @property
    def driver_sources(self) -> Path | None:
        """The kmod DKMS source tree (with dkms.conf), if the tarball has one."""
        for candidate in sorted(self.directory.glob(DRIVER_SOURCES_GLOB)):
            if (candidate / "dkms.conf").is_file():
                return candidate
        return None


@dataclass(frozen=True)
class Offer:
    """A candidate tarball and where it comes from, so that a refusal names the culprit."""

    tarball: Path
    origin: str = RESOURCE_ORIGIN


@dataclass(frozen=True)
class Rejection:
    """Why the payload with this digest was refused, and where it came from."""

    sha256: str
    reason: str
    origin: str = RESOURCE_ORIGIN

    @property
    def message(self) -> str:
        """The refusal as the status says it, naming what the operator can replace."""
        if self.origin == RESOURCE_ORIGIN:
            return f"'{RESOURCE}' resource refused: {self.reason}"
        return (
            f"the charm's bundled Falco tarball refused: {self.reason} "
            f"(attach a working '{RESOURCE}' resource)"
        )


def source(attached: Path | None, bundled: Path) -> Offer | None:
    """Return the attached resource if there is one, else the bundled tarball if present."""
    # Charmhub needs a resource revision to exist; an empty file means "none attached".
    if attached is not None and attached.stat().st_size > 0:
        return Offer(attached, RESOURCE_ORIGIN)
    return Offer(bundled, BUNDLED_ORIGIN) if bundled.is_file() else None


def digest(tarball: Path) -> str:
    """Return the sha256 of ``tarball``, reading it in chunks (it is tens of MB)."""
    sha = hashlib.sha256()
    with tarball.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def installed(layout: Layout) -> Payload | None:
    """Return the recorded payload if it is still on disk, else None."""
    data = records.read(layout.payload_record) or {}
    try:
        payload = Payload(
            sha256=data["sha256"],
            directory=layout.payload_dir(data["sha256"]),
            falco_version=data["falco_version"],
            driver_version=data["driver_version"],
        )
    except (KeyError, TypeError):
        return None
    return payload if payload.falco_binary.is_file() else None


def rejection(layout: Layout) -> Rejection | None:
    """Return the recorded refusal of a candidate payload, if any."""
    data = records.read(layout.payload_rejection) or {}
    if "sha256" not in data or "reason" not in data:
        return None
    origin = str(data.get("origin", RESOURCE_ORIGIN))
    return Rejection(sha256=str(data["sha256"]), reason=str(data["reason"]), origin=origin)


def _unpack(tarball: Path, destination: Path) -> None:
    """Unpack the release layout of ``tarball`` into ``destination`` (top dir stripped)."""
    # Imported here: only install and upgrade-charm unpack anything.
    import tarfile

    scratch = destination.with_name(destination.name + ".unpacking")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        with tarfile.open(tarball) as archive:
            # The "data" filter refuses absolute paths, "..", device files and links that
            # escape the destination: a resource is operator input, not trusted code.
            archive.extractall(scratch, filter="data")
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise PayloadError(f"not a readable tar archive: {exc}") from exc
    tops = list(scratch.iterdir())
    if len(tops) != 1 or not tops[0].is_dir():
        shutil.rmtree(scratch, ignore_errors=True)
        raise PayloadError("expected one top-level falco-<version>-<arch>/ directory")
    shutil.rmtree(destination, ignore_errors=True)
    tops[0].rename(destination)
    scratch.rmdir()


def _check(directory: Path, sha256: str) -> Payload:
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise PayloadError(f"missing {', '.join(missing)}")
    try:
        reported = falco_cli.version(directory / FALCO_BINARY)
    except falco_cli.FalcoCliError as exc:
        raise PayloadError(str(exc)) from exc
    return Payload(
        sha256=sha256,
        directory=directory,
        falco_version=reported.falco,
        driver_version=reported.default_driver,
    )


def stage(layout: Layout, tarball: Path, sha256: str) -> Payload:
    """Unpack and check ``tarball``; raise PayloadError (leaving nothing behind) if unusable."""
    directory = layout.payload_dir(sha256)
    # A directory with this digest is a complete earlier unpacking (it only gets its final
    # name once whole); it may be the payload Falco runs from, so it is not unpacked again.
    if not directory.is_dir():
        _unpack(tarball, directory)
    try:
        return _check(directory, sha256)
    except PayloadError:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def record(layout: Layout, payload: Payload) -> bool:
    """Record ``payload`` as the one to run and forget any refusal; return True if changed."""
    data = asdict(payload)
    data["directory"] = payload.directory.name
    changed = records.write(layout.payload_record, data)
    if layout.payload_rejection.exists():
        layout.payload_rejection.unlink()
        changed = True
    return changed


def record_rejection(layout: Layout, refused: Rejection) -> bool:
    """Remember that a payload was refused; return True if that is news."""
    return records.write(layout.payload_rejection, asdict(refused))


def ensure(
    layout: Layout, offer: Offer | None, report: progress.Report = progress.silent
) -> tuple[Payload | None, bool]:
    """Return the payload to run for the candidate ``offer``, and whether it is new.

    A candidate already in use or already refused costs a digest and nothing else; a new
    one is unpacked and checked, and either becomes the payload to run or is recorded as
    refused while the current payload stays.
    """
    current = installed(layout)
    if offer is None:
        return current, False
    tarball = offer.tarball
    sha256 = digest(tarball)
    if current is not None and current.sha256 == sha256:
        # The refused candidate, if any, is no longer offered: stop reporting it.
        layout.payload_rejection.unlink(missing_ok=True)
        return current, False
    refused = rejection(layout)
    if refused is not None and refused.sha256 == sha256:
        return current, False
    size_mb = tarball.stat().st_size / 1e6
    try:
        with progress.step(
            report, f"unpacking the Falco payload ({size_mb:.0f} MB, {offer.origin})"
        ):
            candidate = stage(layout, tarball, sha256)
    except PayloadError as exc:
        logger.error("refusing the Falco payload %s: %s", tarball, exc)
        record_rejection(layout, Rejection(sha256, str(exc), offer.origin))
        return current, False
    record(layout, candidate)
    return candidate, True


def select(
    layout: Layout,
    refresh: bool,
    offered: Callable[[], Offer | None],
    report: progress.Report = progress.silent,
) -> tuple[Payload | None, bool]:
    """Return the payload to run and whether it is new; look at ``offered()`` only on refresh.

    Only install and upgrade-charm (which `juju attach-resource` also triggers) can bring a
    new tarball; hashing tens of MB on every hook would be waste.
    """
    current = installed(layout)
    if current is not None and not refresh:
        return current, False
    return ensure(layout, offered(), report)


def prune(layout: Layout, keep: Payload) -> list[Path]:
    """Delete every unpacked payload but ``keep``; return what was deleted."""
    removed = []
    if layout.payload_parent.is_dir():
        for entry in sorted(layout.payload_parent.iterdir()):
            if entry != keep.directory:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def results(layout: Layout) -> dict[str, str]:
    """Return which Falco runs, down to its tarball's digest, for an action's results."""
    running = installed(layout)
    if running is None:
        return {}
    return {"falco-version": running.falco_version, "payload-sha256": running.sha256}
