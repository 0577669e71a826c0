"""Which CAs a Falco client certificate must chain to (``client-authentication=required``).

By default, the CA of the sidekick's own ``certificates`` provider: the common deployment
relates every Falco application and the sidekick to the same CA application (cross-model for
Falco), so that CA signs both the server and the client certificates. Falco units whose
certificates come from another CA are added with ``client-ca-secret``: a Juju secret whose
``ca-certs`` key holds their CA certificates as PEM. It is a secret, not a plain option, so
that who may widen the set of trusted clients is whoever may grant that secret.
"""

from __future__ import annotations

import ops

OPTION = "client-ca-secret"
CONTENT_KEY = "ca-certs"


class ClientCaError(Exception):
    """``client-ca-secret`` cannot be used; ``str()`` is a status-ready message."""


def extra_cas(model: ops.Model, app_name: str, secret_id: str) -> str:
    """Return the CA certificates of ``client-ca-secret`` ("" when unset), checked.

    Always the latest revision: secret-changed then re-renders once. Raises ClientCaError
    naming the option and the fix; the message never quotes the content.
    """
    if not secret_id:
        return ""
    try:
        content = model.get_secret(id=secret_id).get_content(refresh=True)
    except (ops.SecretNotFoundError, ops.ModelError):
        raise ClientCaError(
            f"invalid config '{OPTION}': cannot read the secret: grant it to this "
            f"application (juju grant-secret <secret> {app_name})"
        ) from None
    pem = content.get(CONTENT_KEY, "")
    if not pem.strip():
        raise ClientCaError(f"invalid config '{OPTION}': the secret has no '{CONTENT_KEY}' key")
    from falcosidekick_http_endpoint import check_pem_certificates

    try:
        return check_pem_certificates(pem)
    except ValueError as exc:
        raise ClientCaError(f"invalid config '{OPTION}': '{CONTENT_KEY}' is {exc}") from None


def bundle(provider_ca: str, extra: str) -> str:
    """Return the CAs client certificates may chain to: the provider's, then the extra ones."""
    return provider_ca.strip() + "\n" + extra if extra else provider_ca
