"""Ask a Falco binary questions through its command line; no Ops, no side effects.

Falco's CLI contract (0.44): ``--version`` prints one JSON object when ``json_output`` is
true; ``-c <file> --dry-run`` loads the config, plugins and rules and exits 0 when they all
load; on failure Falco exits 1 and prints ``Error: <why>`` on stderr, or, for what fails
while it runs (a plugin library that cannot load), logs ``Runtime error: <why>. Exiting.``
after its timestamp. ``-V <file>`` (repeatable) loads the files in order into one engine
and, with ``json_output``, prints one ``{"falco_load_results": [...]}`` line with each
file's errors; it exits 1 if any file fails, or without that line if the config itself
cannot be read.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from messages import shorten, shorten_middle

VERSION_TIMEOUT_S = 60
# Loading the default ruleset and the container plugin takes about a second; a slow or
# overloaded machine gets ample margin before we call the binary unusable.
DRY_RUN_TIMEOUT_S = 180
VALIDATE_TIMEOUT_S = 180
# Falco's log lines (log_stderr) start with a timestamp; a status does not need it.
LOG_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}: ")
FATAL = ("Error:", "Runtime error:")
# After "Error: <file>: Invalid", Falco prints where, a snippet, then the reason as
# "LOAD_ERR_<CODE> (<description>): <message>".
_LOAD_ERROR = re.compile(r"^LOAD_ERR_\w+ \(.+?\): (.+)$")


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


@dataclass(frozen=True)
class RulesVerdict:
    """Falco's verdict on rules files: the first file that failed and its first error.

    ``file`` is the config file when Falco refused the config before loading any rules.
    ``item`` is what the error is about ("rule 'X'") and ``item_file`` the file that
    defines it, which may be an earlier one: a file overriding a macro can break a rule
    another file defines, and Falco reports it on the later file.
    """

    ok: bool
    file: str | None = None
    message: str = ""
    item: str = ""
    item_file: str | None = None


def _error_line(stderr: str, returncode: int, config_file: Path | None = None) -> str:
    """Return Falco's own one-line explanation of a failure, shortened for a status.

    The path of ``config_file`` is left out: the charm's staged config means nothing to
    an operator.
    """
    lines = [LOG_TIME.sub("", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    fatal = [index for index, line in enumerate(lines) if line.startswith(FATAL)]
    if not fatal:
        return shorten_middle(lines[-1] if lines else f"exit code {returncode}")
    chosen = lines[fatal[-1]]
    for prefix in FATAL:
        chosen = chosen.removeprefix(prefix)
    chosen = chosen.strip().removesuffix(" Exiting.")
    if chosen.endswith(": Invalid"):
        reasons = [match for line in lines[fatal[-1] :] if (match := _LOAD_ERROR.match(line))]
        if reasons:
            chosen += f": {reasons[0].group(1)}"
    if config_file is not None:
        chosen = chosen.replace(f" ({config_file})", "")
    return shorten_middle(chosen)


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
    message = _error_line(result.stderr, result.returncode, config_file)
    return CheckResult(ok=False, message=message)


def _refusal(file: str | None, result: dict[str, Any]) -> RulesVerdict:
    """Return the verdict on the file ``result`` is about, from its first error."""
    errors = result.get("errors") or [{}]
    error = errors[0] if isinstance(errors[0], dict) else {}
    message = shorten(str(error.get("message") or error.get("codedesc") or "invalid"))
    locations = (error.get("context") or {}).get("locations") or []
    named = [loc for loc in locations if isinstance(loc, dict) and loc.get("item_name")]
    if not named:
        return RulesVerdict(ok=False, file=file, message=message)
    item = f"{named[-1].get('item_type', 'item')} '{shorten(str(named[-1]['item_name']), 80)}'"
    position = named[-1].get("position")
    item_file = position.get("name") if isinstance(position, dict) else None
    return RulesVerdict(ok=False, file=file, message=message, item=item, item_file=item_file)


def _load_results(stdout: str) -> list[dict[str, Any]] | None:
    for line in reversed(stdout.splitlines()):
        try:
            document = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(document, dict) and isinstance(document.get("falco_load_results"), list):
            return [r for r in document["falco_load_results"] if isinstance(r, dict)]
    return None


def validate_rules(binary: Path, config_file: Path, files: list[Path]) -> RulesVerdict:
    """Return Falco's verdict on ``files``, loaded in this order with ``config_file``."""
    args = [str(binary), "-c", str(config_file), "-o", "json_output=true"]
    for path in files:
        args += ["-V", str(path)]
    try:
        result = _run(args, VALIDATE_TIMEOUT_S)
    except FalcoCliError as exc:
        return RulesVerdict(ok=False, message=str(exc))
    for loaded in _load_results(result.stdout) or []:
        if not loaded.get("successful", False):
            return _refusal(loaded.get("name"), loaded)
    if result.returncode == 0:
        return RulesVerdict(ok=True)
    # Without a failed file, Falco refused what it read before any rules: the config.
    message = _error_line(result.stderr, result.returncode, config_file)
    return RulesVerdict(ok=False, file=str(config_file), message=message)
