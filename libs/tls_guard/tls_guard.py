"""Guards around the tls-certificates library (charmlibs), shared by both charms' requirers.

The library fails on every certificates hook, before the charm can act, on provider data it
cannot decode and on a private key secret it cannot load; these checks run first so that
such data is logged and left out instead. Source of truth: ``libs/tls_guard/`` in the
falco-operators repository; the charms carry generated copies under ``lib/``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the library pulls in cryptography and pydantic
    from charmlibs.interfaces.tls_certificates import TLSCertificatesRequiresV4

logger = logging.getLogger(__name__)

# The provider bag's keys the library decodes, and in their entries the fields it parses as
# PEM: field -> whether it is a CSR (else a certificate, or a list of them).
_PROVIDER_KEYS = ("certificates", "request_errors", "capabilities")
_PEM_FIELDS: dict[str, dict[str, bool]] = {
    "certificates": {
        "certificate": False,
        "ca": False,
        "chain": False,
        "certificate_signing_request": True,
    },
    "request_errors": {"csr": True},
}


def provider_data_problem(databag: Mapping[str, str]) -> str | None:
    """Return why the library would fail on the provider's bag, None when it would not.

    The library ignores JSON of the wrong shape, but it fails (on every certificates hook,
    before the charm can act) on JSON it cannot decode at all, and on a certificate or CSR
    that is not PEM; text that is not JSON it ignores after logging the whole bag as an
    error, every time it reads it (a provider can write megabytes). Such a bag must not
    reach it.
    """
    for key in _PROVIDER_KEYS:
        try:
            decoded = json.loads(databag.get(key) or "null")
        except json.JSONDecodeError:
            return f"{key!r} is not JSON"
        except (ValueError, RecursionError):
            return f"{key!r} cannot be decoded"
        for field, text, is_csr in _pem_texts(decoded, _PEM_FIELDS.get(key, {})):
            if not _is_pem(text, is_csr):
                return f"{key!r} has a {field!r} that is not PEM"
    return None


def _pem_texts(entries: Any, fields: Mapping[str, bool]) -> Iterator[tuple[str, str, bool]]:
    """Yield (field, text, is a CSR) for every PEM the library would parse in ``entries``."""
    for entry in entries if isinstance(entries, list) else ():
        for field, is_csr in fields.items():
            value = entry.get(field) if isinstance(entry, dict) else None
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str):
                    yield field, text, is_csr


def _is_pem(text: str, is_csr: bool) -> bool:
    from cryptography import x509

    try:
        data = text.encode()
        if is_csr:
            x509.load_pem_x509_csr(data)
        else:
            x509.load_pem_x509_certificate(data)
    except ValueError:  # UnicodeEncodeError included
        return False
    return True


def replace_unusable_private_key(certificates: TLSCertificatesRequiresV4) -> None:
    """Generate a new private key when the library's secret holds none that can be read.

    The library only generates a key when its secret does not exist: with unreadable content
    it would fail on every certificates event, or never get a certificate again. Call it
    before anything loads the key; the library caches the key it loads, so where the key is
    needed anyway this costs nothing more (an RSA key takes tens of milliseconds to load).
    """
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        usable = certificates.private_key is not None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        logger.error("the private key secret cannot be loaded (%s)", type(exc).__name__)
        usable = False
    if not usable and certificates.get_private_key_secret_id() is not None:
        logger.warning("replacing the unusable private key: a new certificate will be requested")
        certificates.regenerate_private_key()
