"""How Falco's alerts reach the sidekick: the exposure mode, decided from plain data.

Falco posts to one URL, and everything between it and the sidekick must agree on how that
post travels. The charm cannot see which ingress it is related to (traefik-k8s and
gateway-api-integrator write the same ingress v2 data), so the operator says how the ingress
talks to the pods with ``ingress-backend-scheme``. From that, the ``certificates`` and
``ingress`` relations and the ingress URL, one of four modes follows:

================  ==================  ===========================  ======================
mode              listener            URL published                CA published
================  ==================  ===========================  ======================
CLOSED            127.0.0.1, plain    none                         none
DIRECT_TLS        pod, HTTPS          ``https://<host>:<port>/``   the sidekick's CA(s)
INGRESS_PLAIN     pod, plain HTTP     the ingress URL              none (its own cert)
INGRESS_TLS       pod, HTTPS          the ingress URL              none (its own cert)
================  ==================  ===========================  ======================

* (a) DIRECT_TLS: ``certificates`` without a usable ingress URL. Falco verifies exactly
  the sidekick's CA. While the ingress has not given its URL yet, this stays the mode, so
  that a sidekick being put behind an ingress keeps taking alerts meanwhile.
* (b), (d) INGRESS_PLAIN: an ingress URL, ``ingress-backend-scheme=http`` (the default;
  gateway-api-integrator only speaks plain HTTP to pods, traefik can). The ingress
  terminates TLS. With ``certificates`` related too (d), the certificate is not used for
  alerts: Falcosidekick cannot take ``/`` on both its TLS and its plain port, and a
  second plain listener next to the TLS one would only serve the ingress anyway.
* (c) INGRESS_TLS: an ingress URL, ``ingress-backend-scheme=https`` and ``certificates``:
  traefik re-encrypts to the sidekick's certificate (it must trust the sidekick's CA).
* ``ingress-backend-scheme=https`` without ``certificates`` cannot deliver: CLOSED, and
  Blocked naming both fixes.

Client certificates (``client-authentication=required``, mutual TLS) only work in
DIRECT_TLS: an ingress ends Falco's TLS connection, and the one it opens to the pods carries
no certificate of Falco's (traefik's own, if any, says nothing about which Falco posts). With
an ingress, ``required`` is CLOSED and Blocked: an operator who asked that only
authenticated Falco units post must not get an input that takes anyone's alerts.

A TLS mode listens on the network only once there is a certificate to serve; until then the
sidekick runs on the loopback and the unit is out of rotation. An ingress that gives a plain
``http://`` URL still gets alerts (the prior sidekick charm published such URLs too), but the
status says that they travel unencrypted, and how to get TLS.

The published URL is the leader's to write, and only while some unit serves what the mode
needs (:class:`Served`, reported by each unit): a URL that nothing answers would make Falco
drop every alert without a word, while no URL makes Falco say that alerts stay local.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

BackendScheme = Literal["http", "https"]
StatusLevel = Literal["active", "blocked", "waiting"]

NO_TLS = "no TLS: integrate with 'certificates' or 'ingress'"
HTTPS_BACKEND_WITHOUT_CERTIFICATES = (
    "ingress-backend-scheme is 'https' but 'certificates' is not integrated: integrate "
    "'certificates', or set ingress-backend-scheme=http"
)
CERTIFICATES_UNUSED = (
    "'certificates' is not used: the ingress reaches the pods over plain HTTP "
    "(ingress-backend-scheme=http); for TLS up to the pods use an ingress that verifies "
    "HTTPS backends (traefik) with ingress-backend-scheme=https"
)
CLIENT_AUTH_BEHIND_INGRESS = (
    "client-authentication=required is impossible with 'ingress': it ends Falco's TLS, so no "
    "client certificate reaches Falcosidekick; remove the ingress relation (Falco then "
    "connects directly) or set client-authentication=none"
)
WAITING_FOR_INGRESS = "waiting for the URL of 'ingress'"
UNENCRYPTED = (
    "alerts reach {host} unencrypted: the ingress gives a plain http URL; give the ingress a "
    "TLS certificate (gateway-api-integrator: certificates from lego; traefik: its "
    "'certificates') so that it publishes https"
)
_SHOWN_HOST = 60
# A report bigger than this is not one our units write (a CA bundle is a few KiB).
MAX_REPORT_SIZE = 64 * 1024
_MAX_HOSTS = 8


class Mode(enum.Enum):
    """How the alert input is exposed; see the module docstring."""

    CLOSED = "closed"
    DIRECT_TLS = "direct-tls"
    INGRESS_PLAIN = "ingress-plain"
    INGRESS_TLS = "ingress-tls"


@dataclass(frozen=True)
class Inputs:
    """What the exposure depends on, as the charm reads it from config and relations."""

    port: int
    backend_scheme: BackendScheme = "http"
    certificates: bool = False
    ingress: bool = False
    ingress_url: str | None = None
    # client-authentication=required: only Falco units with a client certificate may post.
    client_auth: bool = False


@dataclass(frozen=True)
class Note:
    """A status the exposure asks for: its level and the message."""

    level: StatusLevel
    message: str


@dataclass(frozen=True)
class Listener:
    """Where the sidekick listens for alerts: on the pod's addresses or the loopback only."""

    network: bool
    tls: bool


@dataclass(frozen=True)
class Served:
    """What one unit serves right now: the scheme and port of its alert input.

    For HTTPS, ``hosts`` are the hosts Falco can reach that the served certificate names
    (best first) and ``ca`` the CA that signed it. Units write it into their peer bag; the
    leader publishes a URL from what they serve, never from what they are meant to serve.
    """

    scheme: BackendScheme
    port: int
    hosts: tuple[str, ...] = ()
    ca: str | None = None

    def to_json(self) -> str:
        """Return the report as peer relation data (keys sorted: equal reports, equal text)."""
        data: dict[str, object] = {"scheme": self.scheme, "port": self.port}
        if self.hosts:
            data["hosts"] = list(self.hosts)
        if self.ca:
            data["ca"] = self.ca
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Served:
        """Return the report in ``text``; raise ValueError when it is not one.

        Peer data comes from other units (maybe of another revision): it is checked here,
        once, and only a report of the right shape gets through.
        """
        if len(text) > MAX_REPORT_SIZE:
            raise ValueError(f"report larger than {MAX_REPORT_SIZE} bytes")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ValueError("report is not JSON") from exc
        if not isinstance(data, dict):
            raise ValueError("report is not a JSON object")
        scheme, port = data.get("scheme"), data.get("port")
        hosts, ca = data.get("hosts", []), data.get("ca")
        if scheme not in ("http", "https"):
            raise ValueError("report has no scheme 'http' or 'https'")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ValueError("report has no port number")
        if not (
            isinstance(hosts, list)
            and len(hosts) <= _MAX_HOSTS
            and all(isinstance(host, str) and 0 < len(host) <= 253 for host in hosts)
        ):
            raise ValueError("report hosts are not a short list of host names")
        if ca is not None and not isinstance(ca, str):
            raise ValueError("report ca is not text")
        return cls(scheme, port, tuple(hosts), ca or None)


@dataclass(frozen=True)
class Endpoint:
    """What Falco is told: where to post, and the CA to verify with (None: system store)."""

    url: str
    ca: str | None = None
    client_certificate_required: bool = False


def decide(inputs: Inputs) -> Mode:
    """Return the exposure mode of ``inputs`` (see the module docstring)."""
    if inputs.ingress and inputs.backend_scheme == "https" and not inputs.certificates:
        return Mode.CLOSED
    if inputs.ingress and inputs.client_auth:
        return Mode.CLOSED
    if inputs.ingress and inputs.ingress_url:
        return Mode.INGRESS_TLS if inputs.backend_scheme == "https" else Mode.INGRESS_PLAIN
    if inputs.certificates:
        return Mode.DIRECT_TLS
    return Mode.CLOSED


@dataclass(frozen=True)
class Exposure:
    """The decision for one set of inputs, and what follows from it."""

    mode: Mode
    inputs: Inputs

    @classmethod
    def of(cls, inputs: Inputs) -> Exposure:
        """Return the exposure of ``inputs``."""
        return cls(decide(inputs), inputs)

    @property
    def tls(self) -> bool:
        """Whether the alert input is HTTPS (served with the sidekick's certificate)."""
        return self.mode in (Mode.DIRECT_TLS, Mode.INGRESS_TLS)

    @property
    def direct(self) -> bool:
        """Whether Falco talks to the sidekick itself (with its certificate), no ingress."""
        return self.mode is Mode.DIRECT_TLS

    @property
    def mutual_tls(self) -> bool:
        """Whether the alert input requires client certificates (only ever direct)."""
        return self.direct and self.inputs.client_auth

    @property
    def ingress_scheme(self) -> BackendScheme:
        """The scheme the ingress is asked to use towards the pods."""
        return self.inputs.backend_scheme

    def listener(self, has_certificate: bool) -> Listener:
        """Return where to listen, given whether a certificate can be served now.

        A TLS mode without a certificate stays on the loopback: nothing outside the pod
        should reach a sidekick that cannot yet serve what Falco was told.
        """
        if self.mode is Mode.INGRESS_PLAIN:
            return Listener(network=True, tls=False)
        if self.tls and has_certificate:
            return Listener(network=True, tls=True)
        return Listener(network=False, tls=False)

    def wanted(self) -> tuple[BackendScheme, int] | None:
        """Return the scheme and port a unit must serve to be in rotation; None if none."""
        if self.mode is Mode.CLOSED:
            return None
        return ("https" if self.tls else "http"), self.inputs.port

    def notes(self) -> list[Note]:
        """Return what the status must say about the exposure, most urgent first."""
        inputs = self.inputs
        notes = []
        if self.mode is Mode.CLOSED:
            if inputs.ingress and inputs.backend_scheme == "https" and not inputs.certificates:
                notes.append(Note("blocked", HTTPS_BACKEND_WITHOUT_CERTIFICATES))
            elif inputs.ingress and inputs.client_auth:
                notes.append(Note("blocked", CLIENT_AUTH_BEHIND_INGRESS))
            elif not inputs.ingress:
                notes.append(Note("blocked", NO_TLS))
        if inputs.ingress and not inputs.ingress_url:
            notes.append(Note("waiting", WAITING_FOR_INGRESS))
        if self.mode in (Mode.INGRESS_PLAIN, Mode.INGRESS_TLS):
            url = urlsplit(inputs.ingress_url or "")
            if url.scheme == "http":
                host = (url.hostname or "")[:_SHOWN_HOST]
                notes.append(Note("active", UNENCRYPTED.format(host=host)))
        if self.mode is Mode.INGRESS_PLAIN and inputs.certificates:
            notes.append(Note("active", CERTIFICATES_UNUSED))
        return notes

    def endpoint(
        self, serving: Iterable[Served], reachable_hosts: Sequence[str]
    ) -> Endpoint | None:
        """Return what Falco is told, from what the units serve; None when none serves it.

        Behind an ingress, Falco verifies the ingress's certificate (system store): no CA.
        Directly, the host is the best of ``reachable_hosts`` that every serving unit's
        certificate names (the Service takes Falco to any of them), and the CA is every
        serving unit's CA, so that a CA rotation half-way through the units loses nothing.
        """
        wanted = self.wanted()
        matching = [served for served in serving if (served.scheme, served.port) == wanted]
        if wanted is None or not matching:
            return None
        if self.mode is not Mode.DIRECT_TLS:
            return Endpoint(self.inputs.ingress_url) if self.inputs.ingress_url else None
        host = _common_host(reachable_hosts, [served.hosts for served in matching])
        bracketed = f"[{host}]" if ":" in host else host
        cas = sorted({served.ca.strip() + "\n" for served in matching if served.ca})
        url = f"https://{bracketed}:{self.inputs.port}/"
        return Endpoint(url, "".join(cas) or None, self.mutual_tls)


def _common_host(candidates: Sequence[str], named: Sequence[Sequence[str]]) -> str:
    """Return the first candidate every unit's certificate names, else the best any names.

    Every certificate names the Service FQDN (the last candidate), so in practice the
    first rule always finds one; the fallbacks only keep the URL well formed.
    """
    for host in candidates:
        if all(host in hosts for hosts in named):
            return host
    for host in candidates:
        if any(host in hosts for hosts in named):
            return host
    return candidates[-1]
