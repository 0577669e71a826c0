"""Why Falco is down, read from the end of its unit's journal. No Ops.

``falco --dry-run`` does not open the engine, so a probe the kernel refuses, a kernel module
that is not loaded or a plugin that fails at start passes every check the charm makes and
only shows as a unit that exits. Falco says why on stderr, which systemd keeps in the unit's
journal together with what the unit's ``ExecStartPre`` (modprobe) printed. The charm reads
the last lines only when systemd reports Falco down, and turns the last failure into one
status line: a known cause (``KNOWN_CAUSES``, matched on lines the real Falco 0.44.1 and
systemd print) in the charm's words with Falco's line quoted, else Falco's last ``Error:``
line as it is.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass

from falco_cli import FATAL, LOG_TIME
from kernel import KMOD, MODERN_EBPF
from layout import SERVICE_NAME
from messages import shorten_middle
from systemd_facts import UnitFacts, UnitProbe

JOURNAL_LINES = 50
SINCE_LINES = 10000
JOURNAL_TIMEOUT_S = 60
# How far before Falco's last fatal line its cause may be (the libs log it first).
CAUSE_WINDOW = 25
QUOTED = 150
# A cause that condemns whichever engine was opening (the engine is not in the line).
ANY_ENGINE = "*"
_NOISE = re.compile(r"^(?:\[libs\]: |Error: |Runtime error: )+")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cause:
    """A failure Falco or systemd names in the journal, and how the status says it."""

    pattern: re.Pattern[str]
    text: str
    # The engine that cannot run when this is the cause (for driver=auto), if any.
    engine: str | None = None


# Most specific first: when several match one failure, the first one here names it.
KNOWN_CAUSES = (
    Cause(
        re.compile(r"BPF program is too large|processed \d+ insns|BPF program load failed"),
        "the kernel's BPF verifier refused the modern_ebpf probe",
        MODERN_EBPF,
    ),
    Cause(
        re.compile(r"unable to bump RLIMIT_MEMLOCK"),
        "the modern_ebpf probe cannot raise its locked-memory limit (RLIMIT_MEMLOCK)",
        MODERN_EBPF,
    ),
    Cause(
        re.compile(r"unable to configure the libpman state|libpman: "),
        "the modern_ebpf probe cannot be set up",
        MODERN_EBPF,
    ),
    Cause(
        re.compile(r"modprobe: (?:FATAL|ERROR): "),
        "the Falco kernel module cannot be loaded",
        KMOD,
    ),
    Cause(
        re.compile(r"error opening device /dev/falco"),
        "the Falco kernel module is not loaded",
        KMOD,
    ),
    Cause(
        re.compile(r"Initialization issues during scap_init"),
        "Falco's driver failed to open (scap_init)",
        ANY_ENGINE,
    ),
    Cause(re.compile(r"cannot load plugin "), "a plugin failed to load"),
    Cause(
        re.compile(r"an error occurred while starting webserver"),
        "Falco's webserver cannot listen on metrics-port (is the port taken?)",
    ),
    Cause(
        re.compile(r"(?:Error reading|Cannot read) config file"),
        "Falco refused its falco.yaml",
    ),
)


@dataclass(frozen=True)
class Diagnosis:
    """Why Falco stopped: one line for the status, Falco's own lines for the charm's log."""

    summary: str
    lines: tuple[str, ...]
    engine: str | None = None


def _journalctl(*args: str) -> list[str]:
    """Return the messages ``journalctl args -o cat`` prints ([] if it cannot be read)."""
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        return []
    try:
        # Fixed arguments, absolute path; no shell.
        result = subprocess.run(  # noqa: S603
            [journalctl, *args, "-o", "cat", "--no-pager"],
            capture_output=True,
            text=True,
            timeout=JOURNAL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return result.stdout.splitlines() if result.returncode == 0 else []


def read_lines(unit: str = SERVICE_NAME, count: int = JOURNAL_LINES) -> list[str]:
    """Return the last ``count`` messages of ``unit``'s journal ([] if it cannot be read)."""
    return _journalctl("-u", unit, "-n", str(count))


def read_since(since: float, unit: str = SERVICE_NAME) -> list[str]:
    """Return the messages of ``unit``'s journal from the second of ``since`` on.

    At most ``SINCE_LINES``, the last ones: enough for the seconds a self-test waits even
    when alerts go to the journal on a busy machine.
    """
    return _journalctl("-u", unit, f"--since=@{int(since)}", "-n", str(SINCE_LINES))


def _clean(line: str) -> str:
    """Return ``line`` without Falco's timestamp, its prefixes and its "Exiting." tail."""
    text = _NOISE.sub("", LOG_TIME.sub("", line).strip())
    return text.removesuffix(" Exiting.").rstrip(".")


def _known(lines: list[str]) -> tuple[int, Cause] | None:
    """Return the line that best names the last failure, and its cause."""
    fatal = [index for index, line in enumerate(lines) if LOG_TIME.sub("", line).startswith(FATAL)]
    window = range(max(0, fatal[-1] - CAUSE_WINDOW), fatal[-1] + 1) if fatal else None
    best: tuple[int, int, Cause] | None = None
    for index, line in enumerate(lines):
        if window is not None and index not in window:
            continue
        for rank, cause in enumerate(KNOWN_CAUSES):
            if cause.pattern.search(line) and (best is None or (rank, -index) < best[:2]):
                best = (rank, -index, cause)
    return (-best[1], best[2]) if best else None


def diagnose(lines: list[str]) -> Diagnosis | None:
    """Return why Falco stopped according to the journal ``lines``, None if they do not say."""
    fatal = [line for line in lines if LOG_TIME.sub("", line).startswith(FATAL)]
    known = _known(lines)
    if known is not None:
        index, cause = known
        quoted = shorten_middle(_clean(lines[index]), QUOTED)
        kept = tuple(dict.fromkeys([lines[index], *fatal[-1:]]))
        return Diagnosis(f"{cause.text}: {quoted}", kept, cause.engine)
    if fatal:
        return Diagnosis(shorten_middle(_clean(fatal[-1]), QUOTED), (fatal[-1],))
    return None


class WhyDown:
    """Why the unit's Falco is down, for one hook: the journal is read only when it is.

    Read again only when systemd's state was read again (the hook started Falco in between);
    Falco's own lines go to the charm's log each time they are read.
    """

    def __init__(self, unit: UnitProbe) -> None:
        self._unit = unit
        self._read: tuple[UnitFacts, Diagnosis | None] | None = None

    def diagnosis(self) -> Diagnosis | None:
        """Return why Falco is down; None while it runs or when the journal does not say."""
        facts = self._unit.facts()
        if facts.running:
            return None
        if self._read is None or self._read[0] is not facts:
            why = diagnose(read_lines())
            if why is not None:
                logger.warning("Falco is %s: %s", facts.state, "\n".join(why.lines))
            self._read = (facts, why)
        return self._read[1]
