"""The charm's Juju config options as a validated model.

Every rule here exists so that a bad value becomes a Blocked status naming the option,
instead of a sidekick that starts with a config it silently misreads.
"""

from __future__ import annotations

import ipaddress
import re
import reprlib
from typing import Any, Literal

import outputs
import pydantic
from sidekick import NO_TLS_PORT

BackendScheme = Literal["http", "https"]
ClientAuthentication = Literal["none", "required"]
Priority = Literal[
    "emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"
]

# Custom fields become Loki and Prometheus label names, so they must be valid label names.
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The labels Falcosidekick 2.34.1 puts on falcosecurity_falcosidekick_falco_events_total next
# to the custom fields: a custom field of the same name (in any case) makes it panic at start
# with "duplicate label names", and nothing is received until the option is fixed.
RESERVED_FIELD_NAMES = frozenset(
    ("hostname", "rule", "priority", "priority_raw", "source", "k8s_ns_name", "k8s_pod_name")
)
# Custom field values become Loki and Prometheus label values and go into every alert: a
# short line of text. (Falcosidekick writes them to its YAML config, so a newline would
# turn a value into config of its own.)
MAX_FIELD_VALUE = 256
# Loki's documented tenant ID alphabet.
_TENANT = re.compile(r"[A-Za-z0-9!._*'()-]{0,150}")
# A DNS name as certificates carry it: letters, digits and hyphens, dot-separated labels.
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _shown(value: str) -> str:
    """Quote ``value`` for a status message, shortened: an option can be any size."""
    return reprlib.repr(value)


def _field_name_problem(name: str) -> str | None:
    """Return why Falcosidekick cannot take ``name`` as a custom field, or None if it can.

    Falcosidekick reads its config with viper, which lower-cases every key, so these checks
    ignore case as it does.
    """
    if not _FIELD_NAME.fullmatch(name):
        return f"field name {_shown(name)} must be letters, digits and underscores"
    folded = name.lower()
    if folded.startswith("juju_"):
        # Falco sets the juju_* topology fields; a custom field would overwrite them and
        # every alert would claim to come from the wrong unit.
        return (
            f"field name {_shown(name)} is reserved: Falco sets the juju_* fields "
            "(names are not case-sensitive)"
        )
    if folded in RESERVED_FIELD_NAMES:
        return (
            f"field name {_shown(name)} is reserved: Falcosidekick labels its metrics with "
            f"{_shown(folded)} itself (names are not case-sensitive); rename the field"
        )
    if name.startswith("__"):
        return (
            f"field name {_shown(name)} must not start with '__' (Prometheus keeps such label "
            "names for itself); rename the field"
        )
    return None


def parse_custom_fields(text: str) -> dict[str, str]:
    """Return ``key:value,key2:value2`` as a dict, or raise ValueError saying what is wrong."""
    fields: dict[str, str] = {}
    seen: dict[str, str] = {}  # lower-cased name -> the name as given
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = (part.strip() for part in item.partition(":"))
        if not sep or not value:
            raise ValueError(
                f"expected 'name:value' pairs separated by commas, got {_shown(item)}"
            )
        if problem := _field_name_problem(name):
            raise ValueError(problem)
        earlier = seen.setdefault(name.lower(), name)
        if name in fields:
            raise ValueError(f"field name {_shown(name)} is given twice: keep one")
        if earlier != name:
            # Falcosidekick would keep one of the two values, silently.
            raise ValueError(
                f"field names {_shown(earlier)} and {_shown(name)} are the same to "
                "Falcosidekick (it ignores case): keep one"
            )
        if value.startswith("%"):
            # Falcosidekick would replace it with one of its environment variables.
            raise ValueError(f"value of {_shown(name)} must not start with '%'")
        if len(value) > MAX_FIELD_VALUE or not value.isprintable():
            raise ValueError(
                f"value of {_shown(name)} must be at most {MAX_FIELD_VALUE} printable "
                "characters (no newline, tab or other control character)"
            )
        fields[name] = value
    return fields


def _connectable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Return ``address`` as text if Falco hosts can connect to it, else raise ValueError.

    A certificate cannot carry a zone index (``%eth0``): the request would name another
    address than the URL, and no certificate would ever match it.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise ValueError(f"{_shown(str(address))} has a zone index, which no certificate can name")
    if address.is_unspecified or address.is_multicast:
        kind = "unspecified" if address.is_unspecified else "multicast"
        raise ValueError(f"{_shown(str(address))} is a {kind} address: no client connects to it")
    return str(address)


class CharmConfig(pydantic.BaseModel):
    """Options from charmcraft.yaml; field names are the option names with underscores."""

    model_config = pydantic.ConfigDict(frozen=True)

    port: int = pydantic.Field(2801, ge=1, le=65535)
    minimum_priority: Priority = "debug"
    custom_fields: dict[str, str] = pydantic.Field(default_factory=dict)
    loki_tenant: str = ""
    external_hostname: str = ""
    ingress_backend_scheme: BackendScheme = "http"
    # Checked sections, credentials still as outputs.SecretRef (see outputs.parse).
    outputs: dict[str, dict[str, Any]] = pydantic.Field(default_factory=dict)
    outputs_secret: str = ""
    outputs_ca_certs: str = ""
    client_authentication: ClientAuthentication = "none"
    client_ca_secret: str = ""

    @pydantic.field_validator("port")
    @classmethod
    def _port_is_free(cls, port: int) -> int:
        if port == NO_TLS_PORT:
            raise ValueError(f"{NO_TLS_PORT} is taken by the plain-HTTP health and metrics port")
        return port

    @pydantic.field_validator("custom_fields", mode="before")
    @classmethod
    def _parse_custom_fields(cls, value: object) -> object:
        return parse_custom_fields(value) if isinstance(value, str) else value

    @pydantic.field_validator("loki_tenant")
    @classmethod
    def _tenant_is_valid(cls, tenant: str) -> str:
        if not _TENANT.fullmatch(tenant) or tenant in (".", ".."):
            raise ValueError(
                "a Loki tenant is at most 150 letters, digits and !-_.*'() characters"
            )
        return tenant

    @pydantic.field_validator("external_hostname")
    @classmethod
    def _hostname_is_valid(cls, host: str) -> str:
        host = host.strip().lower()
        if not host:
            return host
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return _connectable(address)
        labels = host.split(".")
        if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
            raise ValueError(
                f"{_shown(host)} is neither an IP address nor a DNS name (no scheme, port or path)"
            )
        return host

    @pydantic.field_validator("outputs", mode="before")
    @classmethod
    def _parse_outputs(cls, value: object) -> object:
        return outputs.parse(value) if isinstance(value, str) else value

    @pydantic.field_validator("outputs_secret", mode="before")
    @classmethod
    def _secret_id(cls, value: object) -> object:
        # ops passes a `secret` option as an ops.Secret not read yet: the charm reads it
        # only when the outputs refer to it (see FalcosidekickCharm._outputs_secret).
        secret_id = getattr(value, "id", None)
        return secret_id if isinstance(secret_id, str) else value

    @pydantic.field_validator("client_authentication", mode="before")
    @classmethod
    def _client_authentication(cls, value: object) -> object:
        if value == "optional":
            # tlsserver.mutualtls is all or nothing in Falcosidekick 2.34.1: it cannot ask
            # for a certificate and take posts without one.
            raise ValueError(
                "'optional' is not possible: Falcosidekick either requires a client "
                "certificate or asks for none; use 'none' or 'required'"
            )
        if value not in ("none", "required"):
            raise ValueError(f"must be 'none' or 'required' (got {_shown(str(value))})")
        return value

    @pydantic.field_validator("client_ca_secret", mode="before")
    @classmethod
    def _client_ca_secret_id(cls, value: object) -> object:
        secret_id = getattr(value, "id", None)  # read when needed, as outputs-secret
        return secret_id if isinstance(secret_id, str) else value

    @pydantic.field_validator("outputs_ca_certs")
    @classmethod
    def _ca_certs_are_pem(cls, pem: str) -> str:
        if not pem.strip():
            return ""
        from falcosidekick_http_endpoint import check_pem_certificates

        # Its messages never quote the text (a mistaken paste could be a private key).
        return check_pem_certificates(pem)
