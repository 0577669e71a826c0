"""Falcosidekick in its container: config file, TLS files and Pebble layer, changed only on need.

The desired state is plain data (:class:`Settings`); the rendering functions are pure, and
:class:`Workload` is the only code that touches the container. Falcosidekick reads its config
only at start, so a changed file needs a restart: the Pebble service carries a digest of the
files it runs with, which makes "files changed" and "service definition changed" the same
thing and lets one ``replan`` do exactly one restart, whatever changed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import log_forwarding
import ops
import outputs
import yaml
from charmlibs import pathops

logger = logging.getLogger(__name__)

CONTAINER = "falcosidekick"
SERVICE = "falcosidekick"
CHECK = "falcosidekick-up"
# Pebble's health at level "ready" is the pod's readiness (Juju's probe of the workload
# container): while this check is down, the Service sends the unit nothing.
READY_CHECK = "falcosidekick-ready"
LAYER = "falcosidekick"
# The upstream image's WORKDIR is /app and its non-root user has uid 1234. Images built
# otherwise (a rock, a distribution package) put the binary on the PATH: the first of these
# that exists is run, so attaching such an image as the resource needs no other change.
BINARY_CANDIDATES = (
    "/app/falcosidekick",
    "/usr/local/bin/falcosidekick",
    "/usr/bin/falcosidekick",
    "/bin/falcosidekick",
)
MISSING_USER = (
    "the image has no user or group 'falcosidekick' to run as: "
    "attach falcosidekick 2.34.1 as resource 'falcosidekick-image'"
)
MISSING_BINARY = (
    "no falcosidekick binary in the image (looked in /app, /usr/local/bin, /usr/bin, /bin): "
    "attach falcosidekick 2.34.1 as resource 'falcosidekick-image'"
)
USER = "falcosidekick"
USER_ID = 1234
GROUP = "falcosidekick"

CONFIG_DIR = "/etc/falcosidekick"
CONFIG_FILE = f"{CONFIG_DIR}/falcosidekick.yaml"
TLS_DIR = f"{CONFIG_DIR}/tls"
CERT_FILE = f"{TLS_DIR}/server.crt"
KEY_FILE = f"{TLS_DIR}/server.key"
CA_FILE = f"{TLS_DIR}/ca.crt"
# The CAs a client certificate must chain to, when client certificates are required.
CLIENT_CA_FILE = f"{TLS_DIR}/client-ca.crt"
# What outputs trust besides the system pool when extra CAs are configured for them.
OUTPUTS_CA_FILE = f"{TLS_DIR}/outputs-ca.crt"

LOOPBACK = "127.0.0.1"
NO_TLS_PORT = 2810
# Served in plain HTTP on NO_TLS_PORT when TLS is on: probes and scrapers need no certificate,
# and the alert input (`/`, also the catch-all) stays on the TLS port only.
NO_TLS_PATHS = ("/healthz", "/metrics")
LOKI_PUSH_PATH = "/loki/api/v1/push"
# The topology fields the falco charm adds to every alert's output_fields. Low cardinality:
# they say where an alert came from, and are the same for every alert of a unit.
TOPOLOGY_LABELS = ("juju_model", "juju_model_uuid", "juju_application", "juju_unit", "juju_charm")


class MissingUserError(Exception):
    """The image has no user or group named as the sidekick's (see MISSING_USER)."""


@dataclass(frozen=True)
class TlsMaterial:
    """The server's certificate chain, private key and the CA that signed them, as PEM."""

    chain: str
    key: str
    ca: str


@dataclass(frozen=True)
class LokiOutput:
    """Where alerts are pushed, and how."""

    url: str
    tenant: str = ""
    minimum_priority: str = "debug"


@dataclass(frozen=True)
class Settings:
    """Everything Falcosidekick's configuration depends on."""

    port: int
    listen_on_network: bool
    tls: TlsMaterial | None = None
    loki: LokiOutput | None = None
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    # The pod's own address: the readiness check connects there, as the Service does.
    pod_address: str = LOOPBACK
    # The CA of our certificates provider when its certificate is not served (an ingress
    # with a plain backend): outputs still trust it (see render_config).
    client_ca: str | None = None
    # Output sections as Falcosidekick's config has them (outputs.resolve): credentials in.
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # CA certificates (PEM) the outputs' servers may be signed by (outputs-ca-certs).
    outputs_ca: str = ""
    # CA certificates (PEM) a client's certificate must chain to: set, Falcosidekick
    # refuses every TLS connection without one (mutual TLS). Only with ``tls``.
    client_auth_ca: str | None = None

    @property
    def mutual_tls(self) -> bool:
        """Whether the alert input requires client certificates."""
        return self.tls is not None and bool(self.client_auth_ca)

    @property
    def trusted_ca(self) -> str | None:
        """The CA file's content: the served certificate's CA, else client_ca if Loki needs it."""
        if self.tls:
            return self.tls.ca
        https_loki = self.loki is not None and self.loki.url.startswith("https://")
        return self.client_ca if https_loki else None

    @property
    def outputs_trust(self) -> str | None:
        """The CA bundle outputs trust besides the system pool; None without outputs_ca.

        Falcosidekick takes a single file for every output (tlsclient.cacertfile): the extra
        CAs, after the CA an https Loki is trusted with (see render_config).
        """
        if not self.outputs_ca:
            return None
        https_loki = self.loki is not None and self.loki.url.startswith("https://")
        ours = self.trusted_ca if https_loki and self.trusted_ca else ""
        return ours + self.outputs_ca

    @property
    def metrics_port(self) -> int | None:
        """The port ``/metrics`` answers on from outside the pod; None when on loopback only."""
        if self.tls:
            return NO_TLS_PORT
        return self.port if self.listen_on_network else None

    @property
    def health_url(self) -> str:
        """An endpoint that answers in plain HTTP in the current TLS mode."""
        port = NO_TLS_PORT if self.tls else self.port
        return f"http://{LOOPBACK}:{port}/healthz"


@dataclass(frozen=True)
class LocalEndpoints:
    """How the running sidekick is reached from inside the pod, read from its config."""

    alert_base: str
    metrics_url: str
    ca: str | None = None
    # The outputs it delivers to, by the destination label of its delivery counters.
    destinations: tuple[str, ...] = ()
    # (chain, key) to present when it requires client certificates: its own certificate,
    # which chains to the CA it requires them to chain to.
    client_certificate: tuple[str, str] | None = None


def _split_url(url: str) -> tuple[str, str]:
    """Return ``(scheme://host:port, path)``: sidekick wants them as two settings."""
    scheme, _, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc}", (slash + path if path else LOKI_PUSH_PATH)


def render_config(settings: Settings) -> dict[str, Any]:
    """Return Falcosidekick's configuration as data (key names as in its config_example)."""
    config: dict[str, Any] = {
        "listenaddress": "" if settings.listen_on_network else LOOPBACK,
        "listenport": settings.port,
        "debug": False,
        "tlsserver": {"deploy": False},
    }
    if settings.custom_fields:
        config["customfields"] = dict(settings.custom_fields)
    if settings.tls:
        config["tlsserver"] = {
            "deploy": True,
            "certfile": CERT_FILE,
            "keyfile": KEY_FILE,
            "notlsport": NO_TLS_PORT,
            "notlspaths": list(NO_TLS_PATHS),
        }
        if settings.mutual_tls:
            config["tlsserver"] |= {"mutualtls": True, "cacertfile": CLIENT_CA_FILE}
    if settings.loki:
        hostport, endpoint = _split_url(settings.loki.url)
        loki: dict[str, Any] = {
            "hostport": hostport,
            "endpoint": endpoint,
            "format": "json",
            "extralabels": ",".join(TOPOLOGY_LABELS),
            "minimumpriority": settings.loki.minimum_priority,
            "checkcert": True,
        }
        if settings.loki.tenant:
            loki["tenant"] = settings.loki.tenant
        config["loki"] = loki
        if settings.trusted_ca and hostport.startswith("https://"):
            # Appended to the system pool: a Loki signed by the same CA as our own certificate
            # (one certificates provider for the model) is trusted, public CAs still are.
            config["tlsclient"] = {"cacertfile": CA_FILE}
    # Checked by outputs.parse: no section or key here is one the charm sets above.
    config.update({section: dict(keys) for section, keys in settings.outputs.items()})
    if settings.outputs_trust:
        config["tlsclient"] = {"cacertfile": OUTPUTS_CA_FILE}
    return config


def render_files(settings: Settings) -> dict[str, tuple[str, int]]:
    """Return every file the sidekick needs: path -> (content, mode)."""
    files = {CONFIG_FILE: (yaml.safe_dump(render_config(settings), sort_keys=True), 0o600)}
    if settings.tls:
        files[CERT_FILE] = (settings.tls.chain, 0o644)
        files[KEY_FILE] = (settings.tls.key, 0o600)
    if settings.trusted_ca:
        files[CA_FILE] = (settings.trusted_ca, 0o644)
    if settings.outputs_trust:
        files[OUTPUTS_CA_FILE] = (settings.outputs_trust, 0o644)
    if settings.mutual_tls and settings.client_auth_ca:
        files[CLIENT_CA_FILE] = (settings.client_auth_ca, 0o644)
    return files


def files_digest(files: Mapping[str, tuple[str, int]]) -> str:
    """Return a digest of the files the service runs with (the private key is not hashed)."""
    digest = hashlib.sha256()
    for path in sorted(files):
        if path != KEY_FILE:
            digest.update(f"{path}\0{files[path][0]}\0".encode())
    return digest.hexdigest()[:16]


def render_layer(
    settings: Settings, digest: str, binary: str = BINARY_CANDIDATES[0]
) -> ops.pebble.LayerDict:
    """Return the Pebble layer: the service as the image's user, and its checks.

    The alive check restarts a sidekick that stops answering; the ready check says whether
    alerts sent to the pod's address are taken: it fails while the sidekick listens on the
    loopback only (no ingress or certificate yet, waiting for its certificate), which
    takes the unit out of the Service until it serves. A new check counts as up until it
    first runs, so it runs often and one failure is enough.
    """
    return {
        "summary": "Falcosidekick",
        "services": {
            SERVICE: {
                "override": "replace",
                "summary": "Falcosidekick: receives Falco alerts, forwards them to outputs",
                "command": f"{binary} -c {CONFIG_FILE}",
                "startup": "enabled",
                "user": USER,
                "user-id": USER_ID,
                "group": GROUP,
                # Not read by the sidekick: changes whenever a file it reads at start changes.
                "environment": {"CHARM_FILES_DIGEST": digest},
                "on-check-failure": {CHECK: "restart"},
            }
        },
        "checks": {
            CHECK: {
                "override": "replace",
                "level": "alive",
                "period": "10s",
                "timeout": "3s",
                "threshold": 3,
                "http": {"url": settings.health_url},
            },
            READY_CHECK: {
                "override": "replace",
                "level": "ready",
                "period": "5s",
                "timeout": "3s",
                "threshold": 1,
                "tcp": {"host": settings.pod_address, "port": settings.port},
            },
        },
    }


class Workload:
    """The falcosidekick container. Pebble errors propagate: the caller decides to wait."""

    def __init__(self, container: ops.Container):
        self._container = container

    def _path(self, path: str) -> pathops.ContainerPath:
        return pathops.ContainerPath(path, container=self._container)

    def _read(self, path: str) -> str | None:
        try:
            return self._path(path).read_text()
        except FileNotFoundError:
            return None

    def facts(self) -> str:
        """Return a digest of what the unit's status and convergence read from Pebble.

        The plan, whether the service runs, whether its health check is down, and the
        content of every file the charm may write (an edit behind its back is put right).
        Raises ops.pebble.ConnectionError.
        """
        digest = hashlib.sha256(self._container.get_plan().to_yaml().encode())
        digest.update(f"\0{self.is_running()}\0{self.is_healthy()}".encode())
        for path in (CONFIG_FILE, CERT_FILE, KEY_FILE, CA_FILE, OUTPUTS_CA_FILE, CLIENT_CA_FILE):
            content = self._read(path)
            digest.update(b"\0-" if content is None else f"\0+{content}".encode())
        return digest.hexdigest()

    def deployed_tls(self) -> TlsMaterial | None:
        """Return the TLS material the sidekick currently serves, if any."""
        chain, key, ca = (self._read(path) for path in (CERT_FILE, KEY_FILE, CA_FILE))
        return TlsMaterial(chain, key, ca) if chain and key and ca else None

    def serving_endpoints(self) -> LocalEndpoints | None:
        """Return how the running sidekick is reached from inside the pod; None if not running.

        Read from the deployed config, not from the charm's inputs: it is what runs.
        """
        text = self._read(CONFIG_FILE)
        if text is None or not self.is_running():
            return None
        config = yaml.safe_load(text)
        port = config["listenport"]
        destinations = tuple(outputs.destinations(config))
        if not config["tlsserver"]["deploy"]:
            metrics_url = f"http://{LOOPBACK}:{port}/metrics"
            return LocalEndpoints(
                f"http://{LOOPBACK}:{port}", metrics_url, destinations=destinations
            )
        tls = self.deployed_tls()
        if tls is None:
            return None
        metrics_url = f"http://{LOOPBACK}:{config['tlsserver']['notlsport']}/metrics"
        mutual = (tls.chain, tls.key) if config["tlsserver"].get("mutualtls") else None
        return LocalEndpoints(
            f"https://{LOOPBACK}:{port}", metrics_url, tls.ca, destinations, mutual
        )

    def find_binary(self) -> str | None:
        """Return where the image keeps the falcosidekick binary; None if it has none."""
        return next((path for path in BINARY_CANDIDATES if self._path(path).exists()), None)

    def is_running(self) -> bool:
        """Return whether Pebble reports the service as running."""
        service = self._container.get_services(SERVICE).get(SERVICE)
        return service is not None and service.is_running()

    def is_healthy(self) -> bool:
        """Return False only when Pebble's health check reports the sidekick down."""
        checks = self._container.get_checks(CHECK)
        return all(check.status != ops.pebble.CheckStatus.DOWN for check in checks.values())

    def apply(self, settings: Settings) -> bool:
        """Converge the container on ``settings``; return True if the service was (re)started.

        Raises ops.pebble.ChangeError when Pebble cannot start the service, and
        MissingUserError when the image lacks the user or group the files belong to. An
        image without the binary gets nothing: the status says so (see MISSING_BINARY).
        """
        binary = self.find_binary()
        if binary is None:
            logger.error(MISSING_BINARY)
            return False
        files = render_files(settings)
        try:
            self._ensure_dirs()
            for path, (content, mode) in files.items():
                if self._read(path) != content:
                    self._path(path).write_text(content, mode=mode, user=USER, group=GROUP)
        except LookupError as exc:  # pathops: the owner's name is unknown in the container
            raise MissingUserError(MISSING_USER) from exc
        # A key that is no longer served should not stay around.
        for path in (CERT_FILE, KEY_FILE, CA_FILE, OUTPUTS_CA_FILE, CLIENT_CA_FILE):
            stale = self._path(path)
            if path not in files and stale.exists():
                stale.unlink()
        layer = render_layer(settings, files_digest(files), binary)
        plan = self._container.get_plan()
        wanted = ops.pebble.Layer(layer)
        if plan.services.get(SERVICE) == wanted.services[SERVICE] and all(
            plan.checks.get(name) == check for name, check in wanted.checks.items()
        ):
            if self.is_running():
                return False
        else:
            self._container.add_layer(LAYER, layer, combine=True)
        logger.info("(re)starting falcosidekick with its new configuration")
        self._container.replan()
        return True

    def forward_logs(self, urls: Mapping[str, str], labels: Mapping[str, str]) -> bool:
        """Make Pebble forward the service's logs to ``urls`` only; True if the plan changed.

        Log targets are not services: the sidekick keeps running, nothing is restarted.
        """
        current = self._container.get_plan().log_targets
        layer = log_forwarding.render_layer(urls, current, labels)
        wanted = ops.pebble.Layer(layer).log_targets
        if all(
            name in current and current[name].to_dict() == target.to_dict()
            for name, target in wanted.items()
        ):
            return False
        self._container.add_layer(log_forwarding.LAYER, layer, combine=True)
        return True

    def _ensure_dirs(self) -> None:
        for path, mode in ((CONFIG_DIR, 0o750), (TLS_DIR, 0o700)):
            directory = self._path(path)
            if not directory.exists():
                directory.mkdir(mode=mode, parents=True, user=USER, group=GROUP)
