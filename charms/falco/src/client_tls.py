"""This unit's client certificate on disk, and what the status says about it. No Ops.

client_certificate.py gets the certificate over ``certificates``; this module holds what the
workload side needs: the material, its name, the files on disk and the status when the
sidekick requires a certificate this unit does not have.
"""

from __future__ import annotations

from dataclasses import dataclass

from falcosidekick_http_endpoint import EndpointReading
from layout import Layout

# X.509 limits the common name to 64 characters.
_MAX_COMMON_NAME = 64
WAITING = "waiting for a client certificate on 'certificates' (Falcosidekick requires one)"


@dataclass(frozen=True)
class ClientMaterial:
    """The certificate chain (leaf first) and private key Falco presents, as PEM."""

    chain: str
    key: str


def client_name(unit: str, model: str) -> str:
    """Return the name the certificate gives this unit: ``falco-0.<model>``.

    Unit names hold a ``/``, which is no DNS character; the model makes the name unique
    across the models one CA serves. Shortened to the unit alone when too long.
    """
    name = f"{unit.replace('/', '-')}.{model}"
    return name if len(name) <= _MAX_COMMON_NAME else unit.replace("/", "-")[:_MAX_COMMON_NAME]


def deployed(layout: Layout) -> ClientMaterial | None:
    """Return the client certificate and key on disk, if both are there."""
    try:
        chain, key = layout.client_cert_file.read_text(), layout.client_key_file.read_text()
    except OSError:
        return None
    return ClientMaterial(chain, key) if chain and key else None


def concern(reading: EndpointReading, related: bool, layout: Layout) -> tuple[str, str] | None:
    """Return the status (name, message) about the client certificate, if any.

    Only when the sidekick announces that it requires one: without a certificate every post
    fails (Falco keeps the alerts on this host).
    """
    required = [
        app for app, end in sorted(reading.endpoints.items()) if end.client_certificate_required
    ]
    if not required or deployed(layout) is not None:
        return None
    if not related:
        return (
            "blocked",
            f"{required[0]} requires a client certificate: integrate 'certificates' with the "
            "CA that signs Falcosidekick's (juju integrate <falco app>:certificates <ca app>)",
        )
    return "waiting", WAITING
