"""Real git servers on 127.0.0.1 for component tests: sshd, and git http-backend over TLS.

``SshGitServer`` runs the machine's own ``sshd`` (as root: privilege separation needs it)
with a host key and an authorized user key made for the test, so every answer the charm sees
comes from real OpenSSH. ``HttpsGitServer`` serves repositories through ``git http-backend``
(CGI) behind TLS with a certificate from a test CA, optionally demanding a token.
"""

from __future__ import annotations

import base64
import getpass
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from local_net import free_port
from tls_material import issue, make_ca

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
GIT = shutil.which("git")


def _wait_for(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read() if process.stderr else ''}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def keygen(path: Path) -> str:
    """Make an ed25519 key pair at ``path``; return the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True,
    )
    return Path(f"{path}.pub").read_text().strip()


class SshGitServer:
    """sshd on 127.0.0.1:<free port> letting the test user in with one key."""

    def __init__(self, base: Path):
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_public = keygen(base / "host_key")
        self.user_public = keygen(base / "user_key")
        (base / "authorized_keys").write_text(self.user_public + "\n")
        (base / "sshd_config").write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {base / 'host_key'}",
                    f"PidFile {base / 'sshd.pid'}",
                    f"AuthorizedKeysFile {base / 'authorized_keys'}",
                    # The keys live under /tmp, which sshd's ownership checks would refuse.
                    "StrictModes no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def user_private_key(self) -> str:
        """The deploy key the server accepts."""
        return (self.base / "user_key").read_text()

    @property
    def known_hosts_line(self) -> str:
        """The pinned host key, as ssh-keyscan would print it for this port."""
        key_type, key, *_ = self.host_public.split()
        return f"[127.0.0.1]:{self.port} {key_type} {key}"

    def url(self, path: Path, ref: str = "") -> str:
        """Return the charm's URL form for the repository at ``path``."""
        return f"git+ssh://{self.user}@127.0.0.1:{self.port}{path}" + (f"@{ref}" if ref else "")

    def start(self) -> SshGitServer:
        """Start sshd and wait until it accepts connections."""
        assert SSHD is not None
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.base / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=(self.base / "sshd.log").open("wb"),
        )
        _wait_for(self.port, self.process)
        return self

    def stop(self) -> None:
        """Stop sshd (the one this object started)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def log(self) -> str:
        """Return what sshd logged, for assertions on refused connections."""
        return (self.base / "sshd.log").read_text(errors="replace")


class _GitHandler(http.server.BaseHTTPRequestHandler):
    server: _GitHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        self.server.requests.append(self.path)

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _authorized(self) -> bool:
        wanted = self.server.token
        if wanted is None:
            return True
        expected = "Basic " + base64.b64encode(wanted.encode()).decode()
        return self.headers.get("Authorization") == expected

    def _cgi(self) -> None:
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "REMOTE_ADDR": "127.0.0.1",
        }
        assert GIT is not None
        result = subprocess.run(
            [GIT, "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        headers = [line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line]
        status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
        self.send_response(status)
        for key, value in headers:
            if key.lower() != "status":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _GitHttpServer(http.server.ThreadingHTTPServer):
    root: Path
    token: str | None
    requests: list[str]


class HttpsGitServer:
    """``git http-backend`` over TLS on 127.0.0.1, certificate from a test CA."""

    def __init__(self, base: Path, root: Path, token: str | None = None):
        base.mkdir(parents=True, exist_ok=True)
        self.ca = make_ca("Git Test CA")
        issued = issue(self.ca, "127.0.0.1", ip_addresses=("127.0.0.1",))
        self.ca_file = base / "ca.pem"
        self.ca_file.write_text(self.ca.cert_pem)
        (base / "server.pem").write_text(issued.cert_pem + issued.key_pem)
        self.server = _GitHttpServer(("127.0.0.1", 0), _GitHandler)
        self.server.root, self.server.token, self.server.requests = root, token, []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(base / "server.pem")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, name: str, ref: str = "") -> str:
        """Return the charm's URL form for the repository ``name`` under the root."""
        return f"https://127.0.0.1:{self.port}/{name}" + (f"@{ref}" if ref else "")

    def start(self) -> HttpsGitServer:
        """Serve in a background thread."""
        self.thread.start()
        _wait_for(self.port)
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
