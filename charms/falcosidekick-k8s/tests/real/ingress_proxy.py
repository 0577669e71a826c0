"""An ingress on 127.0.0.1 that routes to the unit the way the real providers do.

It reads what the charm asked for on the ``ingress`` relation, as a provider reads it: the
``port`` and ``scheme`` of our application bag, the ``ip`` (where to connect) and ``host``
(the name the backend's certificate is checked against) of our unit bag. Clients talk HTTPS
to it, with its own certificate (signed by a CA of its own, as a public CA would sign the
real one); it strips the ``/<model>-<app>`` prefix (``strip-prefix``) and forwards:

* ``gateway``: gateway-api-integrator's HTTPRoute. It ignores ``scheme`` and always talks
  plain HTTP to the pod's port;
* ``traefik``: traefik-k8s. It honours ``scheme``: with ``https`` it talks HTTPS to the pod
  and verifies the certificate with the CA it was given (the sidekick's, over
  ``receive-ca-cert`` in production) for the unit's ``host``.

What the backend answers is passed back; a backend it cannot reach or verify is a 502, as
both real ones answer. Every forward is recorded, so a test sees what reached the pod.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ops import testing
from tls_material import Issued, issue

KINDS = ("gateway", "traefik")


@dataclass
class Route:
    """Where the ingress sends requests: what the charm published on the relation."""

    scheme: str
    address: str
    port: int
    host: str


@dataclass
class IngressProxy:
    """A running ingress: its URL prefix, its route (set from relation data) and its log."""

    kind: str
    prefix: str
    backend_ca: str | None = None
    route: Route | None = None
    url: str = ""
    forwarded: list[tuple[str, str, int]] = field(default_factory=list)  # scheme, path, status

    def route_from(self, relation: testing.Relation) -> Route:
        """Set the route from our bags on ``relation`` as the real provider reads them."""
        app, unit = relation.local_app_data, relation.local_unit_data
        scheme = json.loads(app.get("scheme") or '"http"')
        if self.kind == "gateway":
            scheme = "http"  # gateway-api-integrator's HTTPRoute never reads it
        self.route = Route(
            scheme, json.loads(unit["ip"]), json.loads(app["port"]), json.loads(unit["host"])
        )
        return self.route

    def forward(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """Send one request to the backend; return its status and body (502 if unreachable)."""
        route = self.route
        if route is None or not (path == self.prefix or path.startswith(self.prefix + "/")):
            return 404, b"no route\n"
        backend_path = path[len(self.prefix) :] or "/"
        connection: http.client.HTTPConnection
        if route.scheme == "https":
            context = ssl.create_default_context(cadata=self.backend_ca)
            connection = _VerifiedHTTPSConnection(
                route.address, route.port, context=context, server_name=route.host
            )
        else:
            connection = http.client.HTTPConnection(route.address, route.port, timeout=10)
        try:
            connection.request(method, backend_path, body=body or None)
            response = connection.getresponse()
            answer = response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            answer = 502, f"bad gateway: {exc}\n".encode()
        finally:
            connection.close()
        self.forwarded.append((route.scheme, backend_path, answer[0]))
        return answer


class _VerifiedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address, with the certificate checked for a name (the unit's host)."""

    def __init__(self, address: str, port: int, context: ssl.SSLContext, server_name: str):
        super().__init__(address, port, timeout=10, context=context)
        self._context = context
        self._server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)


def _handler(proxy: IngressProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = proxy.forward(self.command, self.path, body)
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def do_GET(self) -> None:
            self._relay()

        def do_POST(self) -> None:
            self._relay()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def certificate(ca: Issued, directory: Path) -> ssl.SSLContext:
    """Return the server context of the ingress: its own certificate for 127.0.0.1."""
    served = issue(ca, "ingress", ip_addresses=("127.0.0.1",))
    (directory / "ingress.crt").write_text(served.cert_pem)
    (directory / "ingress.key").write_text(served.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "ingress.crt", directory / "ingress.key")
    return context


@contextmanager
def serving(
    kind: str, public_ca: Issued, directory: Path, prefix: str, backend_ca: str | None = None
) -> Iterator[IngressProxy]:
    """Serve an ingress of ``kind`` on a free loopback port; its ``url`` is the public URL."""
    assert kind in KINDS, kind
    proxy = IngressProxy(kind, prefix, backend_ca)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    server.socket = certificate(public_ca, directory).wrap_socket(server.socket, server_side=True)
    proxy.url = f"https://127.0.0.1:{server.server_port}{prefix}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
