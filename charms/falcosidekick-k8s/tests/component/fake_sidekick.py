"""A small stand-in for a running Falcosidekick: its /test input and its /metrics counters.

Like the real one, it answers a posted test event at once and counts the Loki delivery a
moment later (``ok``, ``error``, or nothing when Loki never answers).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Outcome = Literal["ok", "error", "silent"]


@dataclass
class FakeSidekick:
    """Counters and the outcome of the next deliveries."""

    outcome: Outcome = "ok"
    delay_s: float = 0.3
    loki: dict[str, int] = field(default_factory=lambda: {"ok": 2, "error": 1})
    posts: list[str] = field(default_factory=list)

    def metrics(self) -> str:
        lines = [
            "# HELP falcosecurity_falcosidekick_outputs_total Outputs",
            "# TYPE falcosecurity_falcosidekick_outputs_total counter",
            'falcosecurity_falcosidekick_outputs_total{destination="slack",status="ok"} 7',
        ]
        lines += [
            f'falcosecurity_falcosidekick_outputs_total{{destination="loki",status="{s}"}} {n}'
            for s, n in self.loki.items()
        ]
        return "\n".join(lines) + "\n"

    def deliver(self) -> None:
        if self.outcome != "silent":
            self.loki[self.outcome] += 1


def _handler(fake: FakeSidekick) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, fake.metrics())
            else:
                self._reply(400, "please send with post http method")

        def do_POST(self) -> None:
            fake.posts.append(self.path)
            if self.path == "/test":
                threading.Timer(fake.delay_s, fake.deliver).start()
            self._reply(200, "")

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
    servers = [ThreadingHTTPServer(("127.0.0.1", ports[0]), _handler(fake))]
    if tls:
        servers[0].socket = tls.wrap_socket(servers[0].socket, server_side=True)
        servers.append(ThreadingHTTPServer(("127.0.0.1", ports[1]), _handler(fake)))
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
