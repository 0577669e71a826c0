"""Ask a Falco binary questions through its command line; no Ops, no side effects.

Falco's CLI contract (0.44): ``--version`` prints one JSON object when ``json_output`` is
true; ``-c <file> --dry-run`` loads the config, plugins and rules and exits 0 when they all
load; on failure Falco exits 1 and prints ``Error: <why>`` on stderr. Rules validation with
``-V`` (issue 4) belongs here too.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

VERSION_TIMEOUT_S = 60
# Loading the default ruleset and the container plugin takes about a second; a slow or
# overloaded machine gets ample margin before we call the binary unusable.
DRY_RUN_TIMEOUT_S = 180
_MAX_MESSAGE = 200


class FalcoCliError(Exception):
    """The binary could not answer; ``str()`` says why in one status-ready line."""


@dataclass(frozen=True)
class FalcoVersion:
    """What a Falco binary reports about itself."""

    falco: str
    default_driver: str


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a check run with the Falco binary."""

    ok: bool
    message: str = ""


def _error_line(stderr: str, returncode: int) -> str:
    """Return Falco's own one-line explanation of a failure, shortened for a status."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    chosen = (errors or lines or [f"exit code {returncode}"])[-1]
    chosen = chosen.removeprefix("Error:").strip()
    return chosen if len(chosen) <= _MAX_MESSAGE else chosen[: _MAX_MESSAGE - 3] + "..."


def _run(args: list[str], timeout: int) -> subprocess.CompletedProcess[str]:
    try:
        # The binary is the charm's own payload, addressed by absolute path; no shell.
        return subprocess.run(  # noqa: S603
            args, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise FalcoCliError(f"{Path(args[0]).name} did not answer within {timeout}s") from exc
    except OSError as exc:
        # ENOEXEC (wrong architecture, not a binary) and EACCES (not executable) land here.
        raise FalcoCliError(f"cannot run {args[0]}: {exc.strerror}") from exc


def version(binary: Path) -> FalcoVersion:
    """Return the versions ``binary`` reports; raise FalcoCliError if it cannot say."""
    result = _run([str(binary), "--version", "-o", "json_output=true"], VERSION_TIMEOUT_S)
    if result.returncode != 0:
        raise FalcoCliError(f"falco --version failed: {_error_line(result.stderr, 1)}")
    for line in reversed(result.stdout.splitlines()):
        try:
            info = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(info, dict) and isinstance(info.get("falco_version"), str):
            return FalcoVersion(
                falco=info["falco_version"],
                default_driver=str(info.get("default_driver_version", "")),
            )
    raise FalcoCliError("falco --version printed no version")


def dry_run(binary: Path, config_file: Path) -> CheckResult:
    """Return whether ``binary`` loads ``config_file`` with its plugins and rules."""
    try:
        result = _run([str(binary), "-c", str(config_file), "--dry-run"], DRY_RUN_TIMEOUT_S)
    except FalcoCliError as exc:
        return CheckResult(ok=False, message=str(exc))
    if result.returncode == 0:
        return CheckResult(ok=True)
    return CheckResult(ok=False, message=_error_line(result.stderr, result.returncode))
