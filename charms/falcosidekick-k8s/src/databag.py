"""Relation databag writes that only happen when a value changes.

Every write to a databag wakes every unit on the other side of the relation, so the charm
never writes a value that is already there, and never clears keys it does not own (Juju keeps
its own keys in unit bags).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from urllib.parse import urlsplit


def update_changed(databag: MutableMapping[str, str], wanted: Mapping[str, str]) -> bool:
    """Write the keys of ``wanted`` whose value differs (``""`` deletes); True if any did."""
    changes = {key: value for key, value in wanted.items() if databag.get(key, "") != value}
    if changes:
        databag.update(changes)
    return bool(changes)


def read_url(databag: Mapping[str, str], key: str) -> str | None:
    """Return the ``url`` of the JSON object under ``key``; None if the key is not set yet.

    Raises ValueError, naming the key, when the value is not usable: remote data is never
    trusted to be well-formed.
    """
    raw = databag.get(key, "")
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{key!r} is not JSON text") from exc
    url = data.get("url") if isinstance(data, dict) else None
    if not isinstance(url, str):
        raise ValueError(f"{key!r} has no 'url' string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key!r} url is not an http(s) URL: {url!r}")
    return url
