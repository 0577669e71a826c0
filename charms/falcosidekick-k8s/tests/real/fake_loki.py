"""A Loki push API on 127.0.0.1 that answers like Loki and keeps what it was sent.

Only what Loki's ``POST /loki/api/v1/push`` does with a JSON body matters here: a body that
is a valid push (``{"streams": [{"stream": {label: value}, "values": [[ns, line], ...]}]}``)
gets 204 and no body; anything else on that path gets 400 with a reason, another path 404,
another method 405. The streams are parsed and kept, so that a test can read the labels and
lines the real Falcosidekick (or Pebble's log forwarding) pushed.

A test can make it refuse pushes (``status``: any code, as Loki answers when it is
overloaded or misconfigured) or hold them unanswered (``hold``), to play a Loki that fails.
"""

from __future__ import annotations

import gzip
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local_net import wait_for

PUSH_PATH = "/loki/api/v1/push"


@dataclass(frozen=True)
class Entry:
    """One log line Loki accepted, with the labels of its stream."""

    labels: dict[str, str]
    timestamp_ns: int
    line: str
    tenant: str | None

    def json(self) -> Any:
        """The line parsed as JSON (Falcosidekick's ``format: json`` sends the alert)."""
        return json.loads(self.line)


class PushError(ValueError):
    """A push body Loki would refuse."""


def parse_push(body: bytes, tenant: str | None) -> list[Entry]:
    """Return the entries of a JSON push body, or raise PushError saying why Loki refuses it."""
    try:
        push = json.loads(body)
    except ValueError as exc:
        raise PushError(f"malformed JSON: {exc}") from exc
    if not isinstance(push, dict) or not isinstance(push.get("streams"), list):
        raise PushError("expected an object with a 'streams' list")
    entries = []
    for stream in push["streams"]:
        labels = stream.get("stream") if isinstance(stream, dict) else None
        if not isinstance(labels, dict) or not labels:
            raise PushError("at least one label pair is required per stream")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise PushError("label names and values must be strings")
        for value in stream.get("values") or []:
            if not (isinstance(value, list) and len(value) in (2, 3)):
                raise PushError("each value is [timestamp, line] or [timestamp, line, metadata]")
            timestamp, line = value[0], value[1]
            if not (isinstance(timestamp, str) and timestamp.isdigit()):
                raise PushError(f"timestamp {timestamp!r} is not a string of nanoseconds")
            if not isinstance(line, str):
                raise PushError("a log line must be a string")
            entries.append(Entry(dict(labels), int(timestamp), line, tenant))
    return entries


@dataclass
class FakeLoki:
    """What was pushed, and how the next pushes are answered."""

    status: int = 204
    hold: threading.Event | None = None
    entries: list[Entry] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, body: bytes, tenant: str | None) -> tuple[int, str]:
        """Return the status and body Loki answers ``body`` with, keeping what it accepts."""
        if self.hold is not None:
            self.hold.wait()
        try:
            entries = parse_push(body, tenant)
        except PushError as exc:
            with self._lock:
                self.refused.append(str(exc))
            return 400, f"{exc}\n"
        if self.status != 204:
            return self.status, "refused by the test\n"
        with self._lock:
            self.entries.extend(entries)
        return 204, ""

    def wait_for(
        self, found: Callable[[list[Entry]], bool], timeout_s: float = 30.0
    ) -> list[Entry]:
        """Return the entries once ``found`` holds for them; fail after ``timeout_s``."""

        def entries() -> list[Entry]:
            with self._lock:
                return list(self.entries)

        def matching() -> list[Entry] | None:
            now = entries()
            return now if found(now) else None

        return wait_for("Loki to get what was expected", matching, timeout_s, 0.05, entries)

    def lines_of_rule(self, rule: str) -> list[Entry]:
        """Return the entries whose JSON line is an alert of ``rule``."""
        with self._lock:
            entries = list(self.entries)
        return [e for e in entries if e.line.startswith("{") and e.json().get("rule") == rule]


def _handler(loki: FakeLoki) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.split("?")[0] != PUSH_PATH:
                self._reply(404, "404 page not found\n")
                return
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            content_type = self.headers.get("Content-Type", "")
            if not content_type.startswith("application/json"):
                self._reply(415, f"unsupported Content-Type {content_type!r} in this fake\n")
                return
            self._reply(*loki.receive(body, self.headers.get("X-Scope-OrgID")))

        def do_GET(self) -> None:
            self._reply(405 if self.path == PUSH_PATH else 404, "")

        def _reply(self, code: int, text: str) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving(tls: ssl.SSLContext | None = None) -> Iterator[FakeLoki]:
    """Serve a FakeLoki on a free loopback port (HTTPS with ``tls``); ``url`` is where to push."""
    loki = FakeLoki()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(loki))
    server.daemon_threads = True
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    loki.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}{PUSH_PATH}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield loki
    finally:
        if loki.hold is not None:
            loki.hold.set()
        server.shutdown()
        server.server_close()
