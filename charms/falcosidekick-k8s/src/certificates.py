"""The sidekick's server certificate over ``certificates`` (tls-certificates, one per unit).

This module imports the tls-certificates library, which pulls in cryptography and many
pydantic models; the charm imports it only on hooks where a certificate can matter.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import ops
from charmlibs.interfaces.tls_certificates import (
    CertificateRequestAttributes,
    Mode,
    TLSCertificatesRequiresV4,
)
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from sidekick import TlsMaterial

logger = logging.getLogger(__name__)

RELATION = "certificates"
# X.509 limits the common name to 64 characters; the SANs carry every name anyway.
_MAX_COMMON_NAME = 64
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


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def provider_data_problem(databag: Mapping[str, str]) -> str | None:
    """Return why the library would fail on the provider's bag, None when it would not.

    The library ignores a bag that is not JSON of the right shape, but it fails (on every
    certificates hook, before the charm can act) on JSON it cannot decode at all, and on a
    certificate or CSR that is not PEM. Such a bag must not reach it.
    """
    for key in _PROVIDER_KEYS:
        try:
            decoded = json.loads(databag.get(key) or "null")
        except json.JSONDecodeError:
            continue  # the library ignores it
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
    try:
        data = text.encode()
        if is_csr:
            x509.load_pem_x509_csr(data)
        else:
            x509.load_pem_x509_certificate(data)
    except ValueError:  # UnicodeEncodeError included
        return False
    return True


def certificate_request(names: Sequence[str]) -> CertificateRequestAttributes:
    """Return the request for a server certificate valid for every name in ``names``.

    The first name is the preferred one (the Service name Falco uses); an ingress address
    that is an IP goes in the IP SANs, where clients look for it.
    """
    dns = [name for name in names if not _is_ip(name)]
    ips = [name for name in names if _is_ip(name)]
    common_name = next((name for name in dns if len(name) <= _MAX_COMMON_NAME), None)
    return CertificateRequestAttributes(
        common_name=common_name, sans_dns=dns or None, sans_ip=ips or None
    )


def requirer(
    charm: ops.CharmBase, request: CertificateRequestAttributes, refresh: list[ops.BoundEvent]
) -> TLSCertificatesRequiresV4:
    """Return the library object that keeps this unit's key, CSR and certificate in sync."""
    return TLSCertificatesRequiresV4(
        charm, RELATION, certificate_requests=[request], mode=Mode.UNIT, refresh_events=refresh
    )


def replace_unusable_private_key(certificates: TLSCertificatesRequiresV4) -> None:
    """Generate a new private key when the library's secret holds none that can be read.

    The library only generates a key when its secret does not exist: with unreadable content
    it would fail on every certificates event, or never get a certificate again. Call it
    before anything loads the key; the library caches the key it loads, so where the key is
    needed anyway this costs nothing more (an RSA key takes tens of milliseconds to load).
    """
    try:
        usable = certificates.private_key is not None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        logger.error("the private key secret cannot be loaded (%s)", type(exc).__name__)
        usable = False
    if not usable and certificates.get_private_key_secret_id() is not None:
        logger.warning("replacing the unusable private key: a new certificate will be requested")
        certificates.regenerate_private_key()


def assigned_material(
    certificates: TLSCertificatesRequiresV4, request: CertificateRequestAttributes
) -> TlsMaterial | None:
    """Return the certificate issued for ``request`` with its key and CA, or None yet.

    A certificate the provider marked revoked is not one to (start to) serve: None.
    """
    provider_certificate, private_key = certificates.get_assigned_certificate(request)
    if provider_certificate is None or private_key is None or provider_certificate.revoked:
        return None
    leaf, ca = provider_certificate.certificate, provider_certificate.ca
    # Serve the intermediates too: Falco is given only the CA and must build the path.
    intermediates = [c for c in provider_certificate.chain if c not in (leaf, ca)]
    chain = "".join(f"{str(cert).strip()}\n" for cert in (leaf, *intermediates))
    return TlsMaterial(chain=chain, key=f"{str(private_key).strip()}\n", ca=f"{str(ca).strip()}\n")


def served_standing(
    certificates: TLSCertificatesRequiresV4, request: CertificateRequestAttributes, chain_pem: str
) -> str:
    """Say whether the served certificate is the provider's answer to our current request.

    ``"current"``; ``"revoked"`` when the provider lists it as revoked; ``"stale"`` otherwise
    (a renewal, new names or a new key pending). Read from relation data only, without the
    private key: loading an RSA key takes tens of milliseconds, too much for every status.
    """
    leaf = x509.load_pem_x509_certificate(chain_pem.encode())
    current = [
        requested.certificate_signing_request
        for requested in certificates.get_csrs_from_requirer_relation_data()
        if request
        == CertificateRequestAttributes.from_csr(
            requested.certificate_signing_request, requested.is_ca
        )
    ]
    standing = "stale"
    for issued in certificates.get_provider_certificates():
        if x509.load_pem_x509_certificate(str(issued.certificate).encode()) != leaf:
            continue
        if issued.revoked:
            return "revoked"
        if issued.certificate_signing_request in current:
            standing = "current"
    return standing


def first_named(chain_pem: str, hosts: Sequence[str]) -> str | None:
    """Return the first of ``hosts`` the leaf certificate of ``chain_pem`` is valid for.

    Names are compared exactly (the certificate request never holds wildcards), addresses as
    addresses, the way Falco's libcurl checks the URL host.
    """
    leaf = x509.load_pem_x509_certificate(chain_pem.encode())
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    dns = {name.lower() for name in sans.get_values_for_type(x509.DNSName)}
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    for host in hosts:
        if (str(ipaddress.ip_address(host)) in ips) if _is_ip(host) else (host.lower() in dns):
            return host
    return None
