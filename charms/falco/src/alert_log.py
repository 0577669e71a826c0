"""Rotation of the local alert log. No Ops.

With ``alert-log`` on, Falco's ``file_output`` appends every alert, one JSON object a line,
to ``/var/log/falco/falco-alerts.log``: a record on the machine that outlives a Falcosidekick
or network outage. Falco never rotates it, so the charm installs a logrotate policy.

Falco keeps the file open (``keep_alive``). After logrotate renames it, SIGUSR1 makes Falco
reopen its outputs, so new alerts go to a new file. ``copytruncate`` would avoid the
signal, but every alert written between its copy and its truncation would be lost, and these
are forensic records: the rename-and-signal way loses none. The signal goes through
systemctl to the service's main process only; when Falco is not running there is nothing to
reopen, which is not an error. Rotated files (``.1``, ``.2.gz``...) no longer end in
``log``, so the collector's ``/var/log/**/*log`` tailing does not ship them a second time.
"""

from __future__ import annotations

import os

from layout import SERVICE_NAME, Layout

# A day per file, two weeks kept: enough to investigate an incident after a weekend, with a
# size cap for a machine under attack (checked whenever logrotate runs).
KEEP_FILES = 14
MAX_SIZE = "100M"


def policy(layout: Layout) -> str:
    """Return the logrotate policy of the alert log."""
    reopen = (
        f"{layout.systemctl_binary} kill --signal=SIGUSR1 --kill-whom=main "
        f"{SERVICE_NAME}.service >/dev/null 2>&1 || true"
    )
    return (
        "# Rendered by the falco Juju charm; local edits are overwritten.\n"
        "# Falco's alert log, one JSON alert per line (the charm's alert-log option).\n"
        f"{layout.alert_log_file} {{\n"
        "    daily\n"
        f"    maxsize {MAX_SIZE}\n"
        f"    rotate {KEEP_FILES}\n"
        "    missingok\n"
        "    notifempty\n"
        "    compress\n"
        "    delaycompress\n"
        "    create 0600 root root\n"
        "    sharedscripts\n"
        "    postrotate\n"
        f"        {reopen}\n"
        "    endscript\n"
        "}\n"
    )


def ensure_rotation(layout: Layout, enabled: bool) -> bool:
    """Install the policy when the alert log is on, remove it when off; True if changed.

    Alert files already written stay either way: the charm never deletes alerts.
    """
    path = layout.logrotate_file
    wanted = policy(layout) if enabled else None
    try:
        current: str | None = path.read_text()
    except OSError:
        current = None
    if current == wanted:
        return False
    if wanted is None:
        path.unlink()
        return True
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(wanted)
    # logrotate refuses a policy that others can write, and ignores one it cannot read.
    scratch.chmod(0o644)
    os.replace(scratch, path)
    return True
