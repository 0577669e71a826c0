"""Destinations of Falcosidekick's outputs on 127.0.0.1 that answer like the real services.

Each fake keeps what it accepted and refuses what the real service refuses (as a 4xx, which
Falcosidekick counts as an error), so a test sees the bodies the real Falcosidekick sends,
not what its documentation says:

* ``slack``: an incoming webhook. POST JSON with ``text``, ``attachments`` or ``blocks``
  on the webhook's secret path; 200 ``ok``. Slack answers 400 ``no_text`` otherwise, 404
  ``no_service`` for another path.
* ``webhook``: any JSON on its path; 200.

``status`` makes a fake refuse everything with that code (a destination that fails).
Alertmanager is not faked: the tests run Debian's (real_alertmanager).
HTTPS is served with a context given by the test (a certificate of a test CA).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local_net import wait_for


def _slack(body: Any) -> str | None:
    if isinstance(body, dict) and any(body.get(k) for k in ("text", "attachments", "blocks")):
        return None
    return "no_text"


def _anything(_: Any) -> str | None:
    return None


# kind -> (what the service checks, its answer when it accepts)
KINDS: dict[str, tuple[Callable[[Any], str | None], bytes]] = {
    "slack": (_slack, b"ok"),
    "webhook": (_anything, b""),
}


@dataclass(frozen=True)
class Received:
    """One request the fake accepted."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeDestination:
    """What a fake accepted and refused, and how it answers the next requests."""

    kind: str
    path: str
    status: int | None = None  # refuse everything with this code
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
        """Return the status and body the real service answers this POST with."""
        check, accepted = KINDS[self.kind]
        if path != self.path:
            return 404, b"no_service" if self.kind == "slack" else b"404 page not found\n"
        try:
            body = json.loads(raw)
        except ValueError:
            problem: str | None = "invalid_payload"
        else:
            problem = check(body)
        if problem is None and self.status is not None:
            problem = f"refused by the test ({self.status})"
        with self._lock:
            if problem is not None:
                self.refused.append(problem)
                return self.status or 400, problem.encode()
            self.received.append(Received(path, headers, body))
        return 200, accepted

    def bodies(self) -> list[Any]:
        """Return the bodies accepted so far."""
        with self._lock:
            return [request.body for request in self.received]

    def wait_for(self, found: Callable[[list[Any]], bool], timeout_s: float = 30.0) -> list[Any]:
        """Return the accepted bodies once ``found`` holds for them; fail after ``timeout_s``."""

        def matching() -> list[Any] | None:
            bodies = self.bodies()
            return bodies if found(bodies) else None

        what = f"{self.kind} to get what was expected"
        return wait_for(what, matching, timeout_s, 0.05, self.bodies)


def _handler(fake: FakeDestination) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = fake.answer(self.path, dict(self.headers), raw)
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving(kind: str, path: str, tls: ssl.SSLContext | None = None) -> Iterator[FakeDestination]:
    """Serve a fake ``kind`` taking posts on ``path`` on a free loopback port."""
    fake = FakeDestination(kind, path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    fake.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
