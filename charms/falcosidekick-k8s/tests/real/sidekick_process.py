"""The real Falcosidekick run directly (no Pebble) with a config the charm renders.

For what needs no container: which configs it starts with, what its client and counters do.
Paths in the config are the container's, so only settings without TLS run this way (the TLS
modes run under the real Pebble, see real_unit).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import workloads
import yaml
from real_unit import get
from sidekick import Settings, render_config


@dataclass(frozen=True)
class Outcome:
    """How a real sidekick started with some config ended up."""

    exit_code: int | None  # None: it is running and answers /healthz
    output: str


@contextmanager
def real_sidekick(settings: Settings, directory: Path) -> Iterator[Outcome]:
    """Run the real binary with the config the charm renders for ``settings`` (no TLS).

    Yields once it answers /healthz on 127.0.0.1, or once it exited (code and output); it is
    stopped on exit.
    """
    assert settings.tls is None, "TLS files live at the container's paths: use RealPebble"
    config_file = directory / "falcosidekick.yaml"
    config_file.write_text(yaml.safe_dump(render_config(settings)))
    log = directory / "falcosidekick.log"
    binary = workloads.require(workloads.FALCOSIDEKICK)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(binary), "-c", str(config_file)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if get(f"http://127.0.0.1:{settings.port}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.02)
        yield Outcome(process.poll(), log.read_text())
    finally:
        process.terminate()
        process.wait(timeout=30)
