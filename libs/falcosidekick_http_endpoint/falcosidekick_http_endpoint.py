"""The ``falcosidekick_http_endpoint`` relation interface: where Falco posts its alerts.

The provider (falcosidekick-k8s) tells every related Falco application the URL to POST
alerts to and, when the sidekick serves a certificate signed by a private CA, the PEM of that
CA so that Falco can verify the sidekick instead of trusting whatever answers.

Wire format, provider application databag (written by the leader only):

=============== ============================================ =====================
key             value                                        since
=============== ============================================ =====================
``url``         JSON string of an http(s) URL                the prior charms
``ca_cert``     JSON string of one or more PEM certificates  this library
``client_auth`` JSON string ``"required"``                   this library
=============== ============================================ =====================

``client_auth`` says that the server refuses a TLS connection without a client certificate
signed by a CA it trusts (mutual TLS): a Falco unit without one cannot deliver anything.
Absent: no client certificate is asked for (one presented anyway is harmless).

For example ``url`` holds the 28 characters ``"https://sidekick.local:2801/"``, quotes
included.

Readers ignore keys they do not know, so keys can be added without breaking deployed units.
``url`` stays JSON-encoded because deployed Falco charms decode it that way.

The requirer writes nothing. It never raises on remote data: a value it cannot use is
logged and the relation is reported in :attr:`EndpointReading.rejected`, so the charm can
keep its last good configuration and say why.

Source of truth: ``libs/falcosidekick_http_endpoint/`` in the falco-operators repository. The
charms carry generated copies under ``lib/``; edit the source and run ``make vendor``.
Python dependencies: ``ops``, ``pydantic`` 2, ``cryptography``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import ops

logger = logging.getLogger(__name__)

DEFAULT_RELATION_NAME = "http-endpoint"
URL_KEY = "url"
CA_CERT_KEY = "ca_cert"
CLIENT_AUTH_KEY = "client_auth"
# The only value of CLIENT_AUTH_KEY; any other is refused (a reader must not guess).
CLIENT_AUTH_REQUIRED = "required"
# The longest URL either side accepts (pydantic's HttpUrl has the same limit).
MAX_URL_LENGTH = 2083
# A CA bundle larger than this is not one a provider publishes (a certificate is ~2 KiB).
MAX_CA_SIZE = 64 * 1024
_SHOWN_CHARACTERS = 40
_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----"
)


class InvalidEndpointError(ValueError):
    """The provider was asked to publish something that no requirer could use."""


@dataclass(frozen=True)
class HttpEndpoint:
    """Where one related falcosidekick application accepts alerts.

    ``ca_cert`` is None when the provider does not publish a CA; the client then relies on
    its system trust store (an ingress with a publicly trusted certificate, for example).
    """

    url: str
    ca_cert: str | None = None
    # The server refuses clients without a certificate signed by a CA it trusts.
    client_certificate_required: bool = False


@dataclass(frozen=True)
class EndpointReading:
    """What the requirer found on every relation of the endpoint.

    ``endpoints`` maps a remote application name to its usable endpoint; ``pending`` lists
    applications that have not published a URL yet; ``rejected`` maps applications whose data
    is malformed to a human-readable reason.
    """

    endpoints: dict[str, HttpEndpoint] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


def shown(value: str) -> str:
    """Quote the start of ``value`` for a message or a log: a remote value can be any size."""
    if len(value) <= _SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:_SHOWN_CHARACTERS]!r}... ({len(value)} characters)"


@functools.cache
def _url_validator() -> Any:
    # Imported here: building the validator costs import time on every hook, and it is
    # only needed when there is a URL to look at. Built once per process.
    import pydantic

    return pydantic.TypeAdapter(pydantic.HttpUrl)


def normalise_url(url: str) -> str:
    """Return ``url`` in the canonical form both sides agree on, or raise ValueError.

    Only http and https are accepted, because Falco's http_output speaks nothing else. A URL
    longer than MAX_URL_LENGTH, or with whitespace or a control character anywhere, is
    refused outright: a URL parser would silently drop a newline or a tab, so the text that
    was checked would not be the text that is used.
    """
    import pydantic

    if len(url) > MAX_URL_LENGTH:
        raise ValueError(
            f"not an http(s) URL (longer than {MAX_URL_LENGTH} characters): {shown(url)}"
        )
    if any(char.isspace() or not char.isprintable() for char in url):
        raise ValueError(
            f"not an http(s) URL (whitespace or a control character in it): {shown(url)}"
        )
    try:
        # pydantic would read "https:///path" as the host "path": a URL must name its host.
        has_host = bool(urlsplit(url).hostname)
        if has_host:
            return str(_url_validator().validate_python(url))
    except (ValueError, pydantic.ValidationError) as exc:
        raise ValueError(f"not an http(s) URL: {shown(url)}") from exc
    raise ValueError(f"not an http(s) URL (no host): {shown(url)}")


def check_pem_certificates(pem: str) -> str:
    """Return the PEM certificates in ``pem`` if that is all it holds, else raise ValueError.

    A bundle (the CA plus intermediates) is accepted: Falco hands the file to libcurl,
    which reads every certificate in it. Anything else in the text (a private key, junk
    after the last certificate) is refused rather than passed on, and so is a text larger
    than MAX_CA_SIZE. The certificates are returned one after the other, each ending with
    a newline.
    """
    # Imported here: cryptography costs import time on every hook, and is only needed
    # when there is a certificate to look at.
    from cryptography import x509

    if len(pem) > MAX_CA_SIZE:
        raise ValueError(f"CA larger than {MAX_CA_SIZE} characters")
    blocks = _PEM_CERTIFICATE.findall(pem)
    if not blocks or _PEM_CERTIFICATE.sub("", pem).strip():
        raise ValueError("not a PEM certificate (or certificates only)")
    text = "".join(f"{block}\n" for block in blocks)
    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError as exc:
        raise ValueError("not a PEM certificate") from exc
    return text


def _decode_json_string(raw: str, key: str) -> str:
    try:
        value = json.loads(raw)
    # RecursionError: JSON nested deeper than the parser's stack, from a hostile remote.
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{key!r} is not JSON text") from exc
    if not isinstance(value, str):
        raise ValueError(f"{key!r} is not a JSON string")
    return value


def parse_endpoint(databag: Mapping[str, str]) -> HttpEndpoint | None:
    """Parse a provider application databag; None when no URL is published yet.

    Raises ValueError naming the offending key when the data is malformed.
    """
    raw_url = databag.get(URL_KEY, "")
    if not raw_url:
        return None
    url = normalise_url(_decode_json_string(raw_url, URL_KEY))
    raw_ca = databag.get(CA_CERT_KEY, "")
    ca_cert = None
    if raw_ca:
        try:
            ca_cert = check_pem_certificates(_decode_json_string(raw_ca, CA_CERT_KEY))
        except ValueError as exc:
            raise ValueError(f"{CA_CERT_KEY!r}: {exc}") from exc
    return HttpEndpoint(url, ca_cert, _client_auth_required(databag.get(CLIENT_AUTH_KEY, "")))


def _client_auth_required(raw: str) -> bool:
    """Return whether ``raw`` (the client_auth value) asks for a client certificate.

    Anything but the one known value is refused rather than read as "not required": a
    requirer that guessed wrong would only find out when every post failed.
    """
    if not raw:
        return False
    value = _decode_json_string(raw, CLIENT_AUTH_KEY)
    if value != CLIENT_AUTH_REQUIRED:
        raise ValueError(f"{CLIENT_AUTH_KEY!r} is not {CLIENT_AUTH_REQUIRED!r}: {shown(value)}")
    return True


def render_databag(endpoint: HttpEndpoint) -> dict[str, str]:
    """Return the provider application databag content for ``endpoint``.

    A key mapped to ``""`` is one to delete, which is how a relation data write removes it.
    """
    required = endpoint.client_certificate_required
    return {
        URL_KEY: json.dumps(endpoint.url),
        CA_CERT_KEY: json.dumps(endpoint.ca_cert) if endpoint.ca_cert else "",
        CLIENT_AUTH_KEY: json.dumps(CLIENT_AUTH_REQUIRED) if required else "",
    }


class HttpEndpointProvider(ops.Object):
    """Publishes the sidekick's alert endpoint to every related Falco application.

    The provider observes nothing: the charm calls :meth:`publish` from its reconcile, with
    the values it computed, and nothing is written when they did not change. Every write wakes
    every related Falco unit, so an unneeded write costs one hook per Falco unit.
    """

    def __init__(self, charm: ops.CharmBase, relation_name: str = DEFAULT_RELATION_NAME):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name

    def publish(
        self, url: str, ca_cert: str | None = None, client_certificate_required: bool = False
    ) -> bool:
        """Publish ``url`` (and ``ca_cert``) on every relation; return True if a bag changed.

        ``client_certificate_required``: the server refuses clients without a certificate
        (announced as ``client_auth``, so that Falco can say what it lacks).

        Only the leader can write the application databag; on other units this does nothing.
        Raises :class:`InvalidEndpointError` when ``url`` or ``ca_cert`` is malformed, since
        publishing it would break every Falco unit: that is a bug in the caller.
        """
        try:
            endpoint = HttpEndpoint(
                url=normalise_url(url),
                ca_cert=check_pem_certificates(ca_cert) if ca_cert else None,
                client_certificate_required=client_certificate_required,
            )
        except ValueError as exc:
            raise InvalidEndpointError(str(exc)) from exc
        if not self._charm.unit.is_leader():
            return False
        wanted = render_databag(endpoint)
        changed = False
        for relation in self._charm.model.relations[self._relation_name]:
            databag = relation.data[self._charm.app]
            changes = {
                key: value for key, value in wanted.items() if databag.get(key, "") != value
            }
            if changes:
                databag.update(changes)
                changed = True
        return changed

    def withdraw(self) -> bool:
        """Remove the endpoint from every relation; return True if a bag changed.

        For when the sidekick stops listening where it said it would: a stale URL would only
        make every Falco unit fail its posts, while no URL makes them say alerts stay local.
        """
        if not self._charm.unit.is_leader():
            return False
        changed = False
        for relation in self._charm.model.relations[self._relation_name]:
            databag = relation.data[self._charm.app]
            stale = {
                key: "" for key in (URL_KEY, CA_CERT_KEY, CLIENT_AUTH_KEY) if databag.get(key)
            }
            if stale:
                databag.update(stale)
                changed = True
        return changed


class HttpEndpointRequirer(ops.Object):
    """Reads where the related falcosidekick applications accept alerts.

    Tolerant by design: malformed remote data never raises, it is logged and reported.
    """

    def __init__(self, charm: ops.CharmBase, relation_name: str = DEFAULT_RELATION_NAME):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name

    def read(self) -> EndpointReading:
        """Return what every related application published, sorted into usable or not."""
        reading = EndpointReading()
        for relation in self._charm.model.relations[self._relation_name]:
            app = relation.app
            if app is None:  # pragma: no cover - Juju always sets it outside relation-broken
                continue
            try:
                endpoint = parse_endpoint(relation.data[app])
            except ValueError as exc:
                logger.warning("ignoring %s data from %s: %s", self._relation_name, app.name, exc)
                reading.rejected[app.name] = str(exc)
                continue
            if endpoint is None:
                reading.pending.append(app.name)
            else:
                reading.endpoints[app.name] = endpoint
        return reading
