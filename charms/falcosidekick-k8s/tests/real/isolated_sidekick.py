"""The real Falcosidekick in a network namespace of its own, where only its loopback exists.

Some outputs post to fixed public hosts (Telegram, Opsgenie) or, left to their defaults, to
their vendor's API; a test that starts every output and sends an event must not let a
single packet or name lookup leave the machine. ``unshare --net`` gives the process a
network namespace with nothing but a loopback (brought up with ``ip``): a lookup or a
connection to anything else fails at once, inside.

The namespace holds this module run as a script (``python isolated_sidekick.py <request>``):
it starts the binary with the config given, waits until it answers or exits, optionally
posts to ``/test`` or ``/`` and waits for the delivery counters, then prints what happened as
JSON. :func:`run` is the side the tests call.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ENABLED = re.compile(r"Enabled Outputs: \[(?P<names>[^\]]*)\]")
_OUTPUT_SAMPLE = re.compile(
    r'^falcosecurity_falcosidekick_outputs_total\{destination="(?P<destination>[^"]+)",'
    r'status="(?P<status>[^"]+)"\} (?P<value>\S+)$'
)


@dataclass(frozen=True)
class Outcome:
    """What the real sidekick did with a config in its own namespace."""

    exit_code: int | None  # None: still running when stopped
    log: str
    counters: dict[str, dict[str, float]]  # destination -> status -> value

    @property
    def enabled(self) -> set[str]:
        """The outputs it says it enabled, lower-cased (its log names them capitalised)."""
        match = _ENABLED.search(self.log)
        return {name.lower() for name in match["names"].split()} if match else set()


def run(
    binary: Path,
    config: dict[str, Any],
    *,
    post: str | None = None,
    body: bytes = b"",
    wait_for: set[str] = frozenset(),
    unshare: str,
    ip: str,
) -> Outcome:
    """Run ``binary`` with ``config`` (listen address and port are set here) in a new netns.

    ``post`` is a path to POST ``body`` to once it answers; the counters are then read until
    every destination in ``wait_for`` has one (at most 30 s).
    """
    request = {
        "binary": str(binary),
        "config": config,
        "post": post,
        "body": body.decode(),
        "wait_for": sorted(wait_for),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(request, file)
        file.flush()
        script = 'ip link set lo up && exec "$@"'.replace("ip ", f"{ip} ", 1)
        result = subprocess.run(
            [unshare, "--net", "sh", "-c", script, "sh", sys.executable, __file__, file.name],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    if result.returncode != 0:
        raise AssertionError(f"isolated run failed: {result.stdout}{result.stderr}")
    answer = json.loads(result.stdout)
    return Outcome(answer["exit_code"], answer["log"], answer["counters"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _counters(port: int) -> dict[str, dict[str, float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if sample := _OUTPUT_SAMPLE.match(line):
            statuses = found.setdefault(sample["destination"], {})
            statuses[sample["status"]] = float(sample["value"])
    return found


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except OSError:
        return False


def _inside(request: dict[str, Any]) -> dict[str, Any]:
    """Run the request in this (isolated) process; return the outcome as data."""
    import yaml

    port = _free_port()
    config = {**request["config"], "listenaddress": "127.0.0.1", "listenport": port}
    with tempfile.TemporaryDirectory() as directory:
        config_file = Path(directory) / "falcosidekick.yaml"
        config_file.write_text(yaml.safe_dump(config))
        log_file = Path(directory) / "falcosidekick.log"
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [request["binary"], "-c", str(config_file)], stdout=log, stderr=log
            )
        try:
            deadline = time.monotonic() + 30
            while process.poll() is None and not _answers(port) and time.monotonic() < deadline:
                time.sleep(0.02)
            counters: dict[str, dict[str, float]] = {}
            if process.poll() is None and request["post"]:
                post = urllib.request.Request(
                    f"http://127.0.0.1:{port}{request['post']}",
                    data=request["body"].encode(),
                    method="POST",
                )
                urllib.request.urlopen(post, timeout=5).close()  # noqa: S310
                while time.monotonic() < deadline:
                    counters = _counters(port)
                    if set(request["wait_for"]) <= set(counters):
                        break
                    time.sleep(0.05)
            exit_code = process.poll()
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        return {"exit_code": exit_code, "log": log_file.read_text(), "counters": counters}


if __name__ == "__main__":
    print(json.dumps(_inside(json.loads(Path(sys.argv[1]).read_text()))))
