"""Whether Falco runs the files the charm wrote, from Falco's own metrics. No Ops.

A hot reload is Falco's: its watcher sees falco.yaml replaced and restarts inside the same
process. The watcher re-arms its watches only after a successful reload, so after one that
failed (a plugin that could not load at that moment) later replacements go unnoticed, and
Falco keeps running the old config while the charm believes it reloaded (seen with the real
Falco 0.44.1). Falco exports what it runs on /metrics:
``falcosecurity_falco_sha256_config_files_info`` and ``..._rules_files_info``, one series per
file with its base name (``file_name``) and the sha256 of the bytes it read (``sha256``).

So after each hot reload the charm reads /metrics on loopback, polling for at most
``WAIT_S``, until they show the digests of what it wrote; if they do not, it sends SIGHUP
(``systemctl reload``), on which Falco reloads whatever its watches missed, and waits again;
then, as a last resort, it restarts Falco. Hooks that did not reload poll nothing.
"""

from __future__ import annotations

import hashlib
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layout import Layout

WAIT_S = 10.0
POLL_S = 0.2
SCRAPE_TIMEOUT_S = 5.0
CONFIG_INFO = "falcosecurity_falco_sha256_config_files_info"
RULES_INFO = "falcosecurity_falco_sha256_rules_files_info"
RULES_SUFFIXES = (".yaml", ".yml")
_INFO = re.compile(
    rf"^({CONFIG_INFO}|{RULES_INFO})\{{(?=[^}}]*file_name=\"(?P<name>[^\"]*)\")"
    rf"(?=[^}}]*sha256=\"(?P<sha>[0-9a-f]{{64}})\")[^}}]*\}} "
)


@dataclass(frozen=True)
class Running:
    """The files a Falco runs: (base name, sha256) of its config files and rules files."""

    config: tuple[tuple[str, str], ...] = ()
    rules: tuple[tuple[str, str], ...] = ()


def parse(text: str) -> Running:
    """Return what the Prometheus text ``text`` of Falco's /metrics says it runs."""
    config: list[tuple[str, str]] = []
    rules: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _INFO.match(line)
        if match:
            found = config if match.group(1) == CONFIG_INFO else rules
            found.append((match.group("name"), match.group("sha")))
    return Running(tuple(sorted(config)), tuple(sorted(rules)))


def scrape(port: int) -> Running | None:
    """Return what the Falco serving on 127.0.0.1:``port`` runs; None if it does not answer."""
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        # Loopback only, to the port the charm configured; never another host.
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
            return parse(response.read().decode(errors="replace"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _loaded(entry: Path) -> list[Path]:
    """Return the files Falco loads for one ``rules_files`` entry (folders: by name)."""
    if entry.is_dir():
        return sorted(p for p in entry.iterdir() if p.name.endswith(RULES_SUFFIXES))
    return [entry] if entry.is_file() else []


def expected(layout: Layout, config: dict[str, Any]) -> Running:
    """Return what a Falco running the live falco.yaml (``config``, its data) reports."""
    rules = [path for entry in config.get("rules_files") or [] for path in _loaded(Path(entry))]
    return Running(
        config=((layout.config_file.name, _sha256(layout.config_file)),),
        rules=tuple(sorted((path.name, _sha256(path)) for path in rules)),
    )


def wait_until_running(
    read: Callable[[int], Running | None], port: int, wanted: Running, wait_s: float
) -> bool:
    """Poll ``read(port)`` until it is ``wanted``, for at most ``wait_s``; True if it was.

    Falco's webserver restarts with each reload, so a poll without an answer is no verdict.
    """
    deadline = time.monotonic() + wait_s
    while True:
        if read(port) == wanted:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
