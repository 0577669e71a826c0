"""The real Falco 0.44.1 in tests: run its CLI, run it on the charm's config, read what it did.

``Falco`` runs one binary's command line. ``NodriverFalco`` starts the real Falco as a
long-running process on a falco.yaml the charm rendered, changing nothing but the engine
(``nodriver``: no kernel access, no events), and reads its ``/metrics``, ``/healthz`` and
log. ``HttpsSink`` is an HTTPS server on 127.0.0.1 with a certificate from a test CA that
keeps every POST, where Falco's ``http_output`` delivers alerts. Everything binds to
127.0.0.1 on ports the kernel picks.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from local_net import wait_for
from tls_material import Issued, issue

# Falco's log lines start with a timestamp (log_stderr).
LOG_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}: ")
LOADED_FILE = re.compile(r"^ {3}(\S.*) \| schema validation: \w+$")
# What Falco logs when it restarts itself in the same process (a watched file or SIGHUP).
RESTARTING = "SIGHUP received, restarting..."
HOT_RESTART_FAILURE = "hot restart failure"
# How long a bounded poll waits for Falco before the test fails (generous: 2 shared cores).
WAIT_S = 30.0
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


# Set to a directory to keep what the real programs said, for the docs to quote.
SAMPLES_ENV = "FALCO_REAL_SAMPLES"


def keep_sample(name: str, text: str) -> None:
    """Write ``text`` to ``$FALCO_REAL_SAMPLES/<name>`` when that variable is set."""
    where = os.environ.get(SAMPLES_ENV)
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        (Path(where) / name).write_text(text)


def log_lines(text: str) -> list[str]:
    """Return Falco's log ``text`` line by line, without the timestamps."""
    return [LOG_TIME.sub("", line) for line in text.splitlines()]


def loaded_rules_files(stderr: str) -> list[str]:
    """Return the rules files Falco logged as loaded ("Loading rules from:"), in order."""
    found, listing = [], False
    for line in log_lines(stderr):
        match = LOADED_FILE.match(line)
        if line in ("Loading rules from:", "Falco initialized with configuration files:"):
            # The second one lists config files the same way.
            listing = line == "Loading rules from:"
        elif listing and match:
            found.append(match.group(1))
    return found


@dataclass(frozen=True)
class Falco:
    """One Falco binary, run through its command line."""

    binary: Path

    def run(
        self, *args: str, env: dict[str, str] | None = None, wrapper: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        """Run ``falco args`` (under ``wrapper``, a command line that ends by running it)."""
        return subprocess.run(
            [*wrapper, str(self.binary), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env=env,
        )

    def rules(self, config: Path) -> dict[str, Any]:
        """Return ``-L`` in JSON: every rule, macro and list ``config`` loads."""
        result = self.run("-c", str(config), "-o", "json_output=true", "-L")
        assert result.returncode == 0, result.stderr
        listing: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
        return listing


# ------------------------------------------------------------------------------ metrics
@dataclass(frozen=True)
class Sample:
    """One line of Prometheus text: a series and its value."""

    name: str
    labels: dict[str, str]
    value: float


def parse_metrics(text: str) -> list[Sample]:
    """Return the samples of a Prometheus text exposition (format 0.0.4)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        name, labels, value = match.groups()
        samples.append(Sample(name, dict(_LABEL.findall(labels or "")), float(value)))
    return samples


def http_get(url: str) -> tuple[int, str]:
    """Return the status and body of a GET of ``url`` (a loopback address)."""
    try:
        # Only ever a URL on this machine that the test built itself.
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except OSError as exc:
        return 0, str(exc)


# ------------------------------------------------------------------------------ nodriver
@dataclass
class NodriverFalco:
    """The real Falco running on ``config`` with the nodriver engine, until stopped."""

    falco: Falco
    config: Path
    log: Path
    extra_options: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The webserver port of the config Falco started with."""
        data = yaml.safe_load(self.config.read_text())
        return int(data["webserver"]["listen_port"])

    @property
    def pid(self) -> int:
        """The process id (a hot restart keeps it)."""
        assert self.process is not None
        return self.process.pid

    def start(self) -> NodriverFalco:
        """Start Falco and wait until its webserver answers /healthz."""
        options = ["-o", "engine.kind=nodriver", *self.extra_options]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.falco.binary), "-c", str(self.config), *options],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(f"Falco's /healthz on port {self.port}", self._healthy)
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"Falco exited ({self.process.returncode}):\n{self.log_text()}")
        return http_get(f"http://127.0.0.1:{self.port}/healthz")[0] == 200

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop Falco (SIGTERM, then SIGKILL if it does not go)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=WAIT_S)

    def log_text(self) -> str:
        """Everything Falco printed so far (its log and its stdout)."""
        return self.log.read_text(errors="replace")

    def restarts(self) -> int:
        """How many times Falco restarted itself in this process (hot reloads)."""
        return self.log_text().count(RESTARTING)

    def wait_until_settled(self, quiet_s: float = 1.5) -> None:
        """Wait until Falco has not restarted itself for ``quiet_s`` (a reload is over).

        File events that arrive while Falco reloads are lost: its watches are re-armed only
        once a reload is done.
        """
        seen = {"restarts": self.restarts(), "since": time.monotonic()}

        def settled() -> bool:
            now = self.restarts()
            if now != seen["restarts"]:
                seen.update(restarts=now, since=time.monotonic())
            return time.monotonic() - seen["since"] >= quiet_s and self._healthy()

        wait_for("Falco to be done reloading", settled)

    def scrape(self, path: str = "/metrics", port: int | None = None) -> list[Sample]:
        """Return the samples Falco serves at ``path``."""
        status, body = http_get(f"http://127.0.0.1:{port or self.port}{path}")
        assert status == 200, body
        return parse_metrics(body)

    def scrape_between_reloads(self) -> list[Sample]:
        """Return /metrics, or nothing while Falco reloads (its webserver restarts too)."""
        status, body = http_get(f"http://127.0.0.1:{self.port}/metrics")
        return parse_metrics(body) if status == 200 else []

    def info_labels(self, name: str, key: str) -> dict[str, str]:
        """Return one ``*_info`` metric as {file_name: ``key`` label}; {} while reloading."""
        return {
            sample.labels["file_name"]: sample.labels[key]
            for sample in self.scrape_between_reloads()
            if sample.name == name
        }

    def rules_files_sha256(self) -> dict[str, str]:
        """Return the rules files Falco runs with now, by file name, from /metrics."""
        return self.info_labels("falcosecurity_falco_sha256_rules_files_info", "sha256")

    def config_files_sha256(self) -> dict[str, str]:
        """Return the config files Falco runs with now, by file name, from /metrics."""
        return self.info_labels("falcosecurity_falco_sha256_config_files_info", "sha256")

    def wait_for_rules(self, wanted: dict[str, str], restarts: int) -> None:
        """Wait until Falco restarted ``restarts`` times in all and runs ``wanted`` rules."""

        def reached() -> bool:
            return self.restarts() >= restarts and self.rules_files_sha256() == wanted

        wait_for(f"Falco to run {wanted} after {restarts} restart(s)", reached)


@dataclass
class _SinkState:
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


class _SinkHandler(http.server.BaseHTTPRequestHandler):
    server: _SinkServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.state.posts.append((dict(self.headers), self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _SinkServer(http.server.ThreadingHTTPServer):
    state: _SinkState


class HttpsSink:
    """An HTTPS server on 127.0.0.1:<free port> that keeps what is POSTed to it."""

    def __init__(self, base: Path, ca: Issued, client_ca: Issued | None = None):
        """Serve a certificate of ``ca``; with ``client_ca``, require a client's of it.

        The latter is what Falcosidekick's ``tlsserver.mutualtls`` does.
        """
        base.mkdir(parents=True, exist_ok=True)
        issued = issue(ca, "127.0.0.1", ip_addresses=("127.0.0.1",))
        (base / "server.pem").write_text(issued.cert_pem + issued.key_pem)
        self.server = _SinkServer(("127.0.0.1", 0), _SinkHandler)
        self.server.state = _SinkState()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(base / "server.pem")
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=client_ca.cert_pem)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"https://127.0.0.1:{self.port}/"

    def alerts(self) -> list[dict[str, Any]]:
        """Return every JSON body received, in order."""
        return [json.loads(body) for _, body in self.server.state.posts]

    def headers(self) -> list[dict[str, str]]:
        """Return the headers of every POST, in order."""
        return [headers for headers, _ in self.server.state.posts]

    def __enter__(self) -> HttpsSink:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def expected_alerts(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the alerts of a ``.expected.jsonl`` file of the workloads."""
    for line in path.read_text().splitlines():
        if line.strip():
            yield json.loads(line)
