"""The certificate the charm deploys, served for real, checked the way Falco's libcurl does."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from pathlib import Path

import sidekick_states as states
from charm import FalcosidekickCharm
from ops import testing
from tls_material import Issued


def test_falco_can_verify_the_sidekick_with_what_is_published(
    ctx: testing.Context[FalcosidekickCharm], root: Path, ca: Issued
) -> None:
    """arrange: charm serves a certificate. act: TLS handshake with the published CA and host.

    assert: the handshake verifies chain and name, as Falco's http_output would.
    """
    state = states.state(
        root,
        leader=True,
        relations={states.certificates_relation(), testing.Relation("http-endpoint")},
    )
    out = states.with_certificate(ctx, state, ca)
    published = states.relation(out, "http-endpoint").local_app_data
    url, published_ca = json.loads(published["url"]), json.loads(published["ca_cert"])
    host = url.split("://", 1)[1].split(":", 1)[0]
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(root / "tls" / "server.crt", root / "tls" / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_one() -> None:
        conn, _ = listener.accept()
        try:
            with server_context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cadata=published_ca)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client_context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        peer = tls.getpeercert()
        tls.sendall(b"x")
    thread.join(5)
    listener.close()

    assert host == states.CLUSTER_IP  # what Falco hosts can reach, not a cluster DNS name
    assert ("IP Address", host) in peer["subjectAltName"]
