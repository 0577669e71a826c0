"""Decide where Falco sends alerts from what http-endpoint says. No Ops calls.

The falcosidekick_http_endpoint library reads and checks the relation data (the URL in the
form both sides agree on, the CA as PEM certificates only); this module turns its reading
into Falco's http_output. Data the library rejected is never used: the charm keeps the
destination it already had on disk (last known good) and says why. A plain http URL is
used, as the prior sidekick charm publishes one, and the status says alerts travel in
clear text.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import falco_config
from falco_config import HttpDestination
from falcosidekick_http_endpoint import EndpointReading
from layout import Layout
from messages import shorten

RELATION = "http-endpoint"


@dataclass(frozen=True)
class Destination:
    """Where alerts go, the CA to write for it, and what the operator should know."""

    http: HttpDestination | None = None
    ca_pem: str | None = None
    pending: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()


def _last_known_good(layout: Layout) -> tuple[HttpDestination | None, str | None]:
    """Return the http destination and CA the running config already uses."""
    try:
        current = falco_config.parse(layout.config_file.read_text()) or {}
    except OSError:
        return None, None
    http = current.get("http_output")
    if not isinstance(http, dict) or not http.get("enabled") or not http.get("url"):
        return None, None
    ca_pem = None
    if http.get("ca_cert"):
        try:
            ca_pem = layout.http_ca_file.read_text()
        except OSError:
            ca_pem = None
    ca_file = layout.http_ca_file if ca_pem is not None else None
    destination = HttpDestination(str(http["url"]), ca_file, layout.system_ca_dir)
    return destination, ca_pem


def choose(reading: EndpointReading, layout: Layout) -> Destination:
    """Return where alerts go for ``reading`` (the endpoint has ``limit: 1``)."""
    rejected = tuple(f"{app}: {why}" for app, why in sorted(reading.rejected.items()))
    pending = tuple(sorted(reading.pending))
    if reading.endpoints:
        _, endpoint = sorted(reading.endpoints.items())[0]
        ca_file = layout.http_ca_file if endpoint.ca_cert else None
        return Destination(
            http=HttpDestination(endpoint.url, ca_file, layout.system_ca_dir),
            ca_pem=endpoint.ca_cert,
            pending=pending,
            rejected=rejected,
        )
    if rejected:
        http, ca_pem = _last_known_good(layout)
        return Destination(http=http, ca_pem=ca_pem, pending=pending, rejected=rejected)
    return Destination(pending=pending)


def concern(destination: Destination) -> tuple[str, str] | None:
    """Return the status (name, message) the operator should see about alerts, if any."""
    if destination.rejected:
        kept = "keeping the previous destination" if destination.http else "alerts stay local"
        # The reason may quote the remote data, which can be anything.
        why = shorten(destination.rejected[0])
        return "blocked", f"http-endpoint data ignored ({kept}): {why}"
    if destination.pending:
        return "waiting", f"waiting for {destination.pending[0]} to publish its URL"
    if destination.http is None:
        return "active", "alerts stay on this host: integrate http-endpoint"
    url = urlsplit(destination.http.url)
    if url.scheme == "http":
        # Still delivered (the prior sidekick charm publishes http), but never silently.
        return "active", (
            f"alerts to {url.hostname} are not encrypted (http): give the sidekick TLS"
            " (docs: production TLS)"
        )
    return None
