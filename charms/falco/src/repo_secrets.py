"""Read the custom config repository's credentials from Juju secrets.

The options hold secret ids (``type: secret``); the content is read only right before git
needs it, with ``refresh`` so that a new revision arrives as ``secret-changed``. Every
problem becomes a SyncError whose message says which command fixes it. No message ever
contains secret content.
"""

from __future__ import annotations

import functools
import re

import git_sync
import ops
import progress
from git_sync import DEFAULT_HTTPS_USER, Credentials, Settings, SyncError, SyncRecord
from layout import Layout
from repository import SSH

SSH_KEY_OPTION = "custom-config-repo-ssh-key"
TOKEN_OPTION = "custom-config-repo-token"  # noqa: S105 - an option name, not a token
# Git forges' tokens are tens to a few hundred characters (JWTs a few KiB). git receives
# the token in its environment, where one value may not exceed 128 KiB (execve): a longer
# one is not a token, and would stop git from starting at all.
MAX_TOKEN_CHARS = 16 * 1024
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\s.+\s-----END [A-Z0-9 ]*PRIVATE KEY-----", re.S
)


def _content(model: ops.Model, secret_id: str, option: str, app: str) -> dict[str, str]:
    try:
        return model.get_secret(id=secret_id).get_content(refresh=True)
    except (ops.SecretNotFoundError, ops.ModelError) as exc:
        # The exception text may quote Juju's answer; it never holds the content.
        raise SyncError(
            f"cannot read secret {secret_id} ({option}): check that it exists and run "
            f"`juju grant-secret {secret_id} {app}`"
        ) from exc


def _ssh_key(model: ops.Model, secret_id: str, app: str) -> str:
    if not secret_id:
        raise SyncError(
            f'{SSH_KEY_OPTION} is not set: `juju add-secret <name> value="$(cat <key file>)"`'
            f", `juju grant-secret <name> {app}`, then set {SSH_KEY_OPTION} to the secret id"
        )
    key = _content(model, secret_id, SSH_KEY_OPTION, app).get("value", "")
    if not _PRIVATE_KEY.search(key):
        raise SyncError(
            f"secret {secret_id} ({SSH_KEY_OPTION}) has no private key under 'value': "
            f'`juju update-secret {secret_id} value="$(cat <key file>)"`'
        )
    return key.replace("\r\n", "\n")


def credentials(model: ops.Model, app: str, settings: Settings) -> Credentials:
    """Return what git presents for ``settings``; raise SyncError with the fix if unusable."""
    if settings.repository.transport == SSH:
        return Credentials(ssh_key=_ssh_key(model, settings.ssh_key_secret, app))
    if not settings.token_secret:
        return Credentials()
    content = _content(model, settings.token_secret, TOKEN_OPTION, app)
    token = content.get("value", "").strip()
    if not token or len(token) > MAX_TOKEN_CHARS:
        what = "no token" if not token else f"{len(token)} characters, not a token,"
        raise SyncError(
            f"secret {settings.token_secret} ({TOKEN_OPTION}) has {what} under 'value': "
            f"`juju update-secret {settings.token_secret} value=<token>`"
        )
    return Credentials(token=token, token_user=content.get("username") or DEFAULT_HTTPS_USER)


def sync_if_due(
    layout: Layout,
    settings: Settings | None,
    model: ops.Model,
    app: str,
    now: float,
    force: bool = False,
    report: progress.Report = progress.silent,
) -> SyncRecord | None:
    """Fetch the repository if due (or ``force``); return its sync state, None without one.

    The secrets are read only if a fetch actually happens.
    """
    read_secrets = functools.partial(credentials, model, app)
    return git_sync.ensure(layout, settings, read_secrets, now, force=force, report=report)
