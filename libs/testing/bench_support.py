"""Helpers shared by the charms' ``tests/bench/bench.py`` scripts (``make bench``).

The result format is read by ``bench/report.py`` at the repository root, which checks the
targets; see the README section "Benchmarks".
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_IMPORT_PROBE = (
    "import sys, time\n"
    "sys.path[:0] = {paths!r}\n"
    "start = time.perf_counter()\n"
    "import {module}\n"
    "print(time.perf_counter() - start)\n"
)


_PYCACHE = tempfile.mkdtemp(prefix="bench-pycache-")


def bytecode_env() -> dict[str, str]:
    """Return this environment with bytecode caching on, in a private cache directory.

    A unit compiles each module once, at its first hook, and every later hook loads the
    bytecode. A shell with PYTHONDONTWRITEBYTECODE set (as some CI images have) would make
    each fresh interpreter compile everything again, measuring the compiler instead.
    """
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    return env


def _import_seconds(module: str, paths: Sequence[str]) -> float:
    probe = _IMPORT_PROBE.format(paths=list(paths), module=module)
    # The probe is built from our own module name and paths, not from input.
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, check=True, env=bytecode_env(),
    )  # fmt: skip
    return float(out.stdout.strip())


def import_times(charm_paths: Sequence[str], runs: int = 11) -> dict[str, float]:
    """Return the median cold import time of ``charm`` and of ``ops``, and of their ratio.

    Each run is a fresh interpreter. The two are measured in turns, so that a slow spell
    of a shared machine lands on both; ``ratio`` is the median of the per-round ratios, which
    one slow spell cannot move. A first round, not counted, fills the bytecode cache (see
    ``bytecode_env``).
    """
    charm: list[float] = []
    ops: list[float] = []
    for run in range(runs + 1):
        charm_s = _import_seconds("charm", charm_paths)
        ops_s = _import_seconds("ops", ())
        if run:
            charm.append(charm_s)
            ops.append(ops_s)
    return {
        "charm": statistics.median(charm),
        "ops": statistics.median(ops),
        "ratio": statistics.median(c / o for c, o in zip(charm, ops, strict=True)),
        "runs": runs,
    }


def timed(action: Callable[[], T]) -> tuple[T, float]:
    """Run ``action`` and return its result with the wall time it took."""
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


@dataclass
class EventStats:
    """Timings and counts of one event type within a scripted sequence."""

    event: str
    noop: bool = False
    expect: dict[str, int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    # A time target relative to another event of the same run (``within``).
    relative: dict[str, Any] = field(default_factory=dict)

    def add(self, seconds: float, counts: dict[str, int]) -> None:
        """Record one dispatch of the event and what it did."""
        self.durations.append(seconds)
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value

    def within(self, baseline: EventStats, max_ratio: float) -> None:
        """Require this event's median time to be at most ``max_ratio`` times ``baseline``'s.

        For "costs the same whatever the input size": both are timed in the same run (in
        turns, so that a slow spell of a shared machine lands on both).
        """
        self.relative = {
            "baseline": baseline.event,
            "baseline_median_s": statistics.median(baseline.durations),
            "max_ratio": max_ratio,
        }

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form bench/report.py reads."""
        data = {
            "event": self.event,
            "noop": self.noop,
            "expect": self.expect,
            "runs": len(self.durations),
            "median_s": statistics.median(self.durations),
            "max_s": max(self.durations),
            "counts": self.counts,
        }
        if self.relative:
            data["within"] = self.relative
        return data


@dataclass(frozen=True)
class Limit:
    """A measured quantity and the most it may be (peak memory, ...)."""

    what: str
    value: float
    maximum: float
    unit: str

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form bench/report.py reads."""
        return {"what": self.what, "value": self.value, "max": self.maximum, "unit": self.unit}


def write_results(
    path: Path,
    charm: str,
    sequences: dict[str, list[EventStats]],
    imports: dict[str, float],
    limits: Sequence[Limit] = (),
    *,
    cold_hooks: dict[str, Any] | None = None,
) -> None:
    """Write one charm's results where bench/report.py expects them.

    ``cold_hooks`` are the figures of ``cold_hooks.measure`` (hooks in fresh interpreters).
    """
    data: dict[str, Any] = {
        "charm": charm,
        "import_s": imports,
        "sequences": {name: [e.as_dict() for e in events] for name, events in sequences.items()},
    }
    if limits:
        data["limits"] = [limit.as_dict() for limit in limits]
    if cold_hooks is not None:
        data["cold_hooks"] = cold_hooks
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
