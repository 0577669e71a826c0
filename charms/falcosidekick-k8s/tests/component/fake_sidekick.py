"""A small stand-in for a running Falcosidekick: its inputs, its /metrics counters.

Held to the real 2.34.1 by tests/real/test_conformance.py (same requests, same status codes,
same counter moves). Like the real one it answers a posted alert at once and counts the Loki
delivery a moment later (``ok``, ``error``, or nothing when Loki never answers); a counter
series exists only from its first event. With TLS, alerts, /test and /ping are on the HTTPS
port, where any other path or a GET is a rejected input (400), and /healthz and /metrics are
only on the plain port, where anything else is 404.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Outcome = Literal["ok", "error", "silent"]
NOT_POST = "Please send with post http method\n"
INVALID = "Please send a valid request body\n"
NOT_FOUND = "404 page not found\n"


@dataclass
class FakeSidekick:
    """Counters and the outcome of the next deliveries."""

    outcome: Outcome = "ok"
    delay_s: float = 0.3
    loki: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, int] = field(default_factory=dict)
    posts: list[str] = field(default_factory=list)

    def metrics(self) -> str:
        lines = []
        if self.inputs:
            lines += [
                f'falcosecurity_falcosidekick_inputs_total{{source="requests",status="{s}"}} {n}'
                for s, n in sorted(self.inputs.items())
            ]
        if self.loki:
            lines += [
                "# TYPE falcosecurity_falcosidekick_outputs_total counter",
                *(
                    "falcosecurity_falcosidekick_outputs_total"
                    f'{{destination="loki",status="{s}"}} {n}'
                    for s, n in sorted(self.loki.items())
                ),
            ]
        return "\n".join(lines) + "\n"

    def count_input(self, status: str) -> None:
        self.inputs[status] = self.inputs.get(status, 0) + 1

    def deliver(self) -> None:
        if self.outcome != "silent":
            self.loki[self.outcome] = self.loki.get(self.outcome, 0) + 1


def is_alert(body: bytes) -> bool:
    """Tell whether ``body`` is an alert the real sidekick accepts (its types.Check)."""
    try:
        alert = json.loads(body or b"null")
    except ValueError:
        return False
    return isinstance(alert, dict) and all(
        alert.get(key) for key in ("priority", "rule", "time", "output_fields")
    )


def _handler(fake: FakeSidekick, role: Literal["alerts", "plain", "both"]) -> type:  # noqa: C901
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._route(b"", post=False)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._route(body, post=True)

        def _route(self, body: bytes, post: bool) -> None:
            path = self.path.split("?")[0]
            if role != "alerts" and path in ("/healthz", "/metrics"):
                text = '{"status": "ok"}' if path == "/healthz" else fake.metrics()
                self._reply(200, text)
            elif role == "plain":
                self._reply(404, NOT_FOUND)
            elif path == "/ping":
                self._reply(200, "pong\n")
            else:  # "/" is also the catch-all; /test shares its handler
                self._alert(path, body, post)

        def _alert(self, path: str, body: bytes, post: bool) -> None:
            fake.posts.append(path)
            if not post:
                fake.count_input("rejected")
                self._reply(400, NOT_POST)
            elif path == "/test" or is_alert(body):
                fake.count_input("accepted")
                threading.Timer(fake.delay_s, fake.deliver).start()
                self._reply(200, "")
            else:
                fake.count_input("rejected")
                self._reply(400, INVALID)

        def _reply(self, code: int, body: str) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def free_port() -> int:
    """Return a loopback TCP port nothing listens on right now."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


@contextmanager
def serving(
    fake: FakeSidekick, tls: ssl.SSLContext | None = None, ports: tuple[int, int] = (0, 0)
) -> Iterator[tuple[str, str]]:
    """Serve ``fake`` on loopback; yield (alert base URL, metrics URL).

    With ``tls``, alerts are on an HTTPS port and metrics on a second, plain one, as the
    real sidekick does with ``tlsserver.notlspaths``. ``ports`` picks them (0: any free one).
    """
    if tls:
        servers = [
            ThreadingHTTPServer(("127.0.0.1", ports[0]), _handler(fake, "alerts")),
            ThreadingHTTPServer(("127.0.0.1", ports[1]), _handler(fake, "plain")),
        ]
        servers[0].socket = tls.wrap_socket(servers[0].socket, server_side=True)
    else:
        servers = [ThreadingHTTPServer(("127.0.0.1", ports[0]), _handler(fake, "both"))]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    alert_port, metrics_port = servers[0].server_port, servers[-1].server_port
    try:
        yield (
            f"{'https' if tls else 'http'}://127.0.0.1:{alert_port}",
            f"http://127.0.0.1:{metrics_port}/metrics",
        )
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
