"""Relation databag helpers shared by our relation-interface modules.

Every write to a databag wakes every unit on the other side of the relation, so writes happen
only when a value changes, and never clear keys we do not own (Juju keeps its own keys in unit
bags). Remote data is never trusted to be well formed: readers raise ValueError naming the
key, and callers log it and keep their last good value.

Source of truth: ``libs/relation_data/`` in the falco-operators repository; the charms carry
generated copies under ``lib/`` (``make vendor``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping

from falcosidekick_http_endpoint import normalise_url, shown


def update_changed(databag: MutableMapping[str, str], wanted: Mapping[str, str]) -> bool:
    """Write the keys of ``wanted`` whose value differs (``""`` deletes); True if any did."""
    changes = {key: value for key, value in wanted.items() if databag.get(key, "") != value}
    if changes:
        databag.update(changes)
    return bool(changes)


def read_url(databag: Mapping[str, str], key: str) -> str | None:
    """Return the http(s) URL of the JSON object ``{"url": ...}`` under ``key``, normalised.

    This is the shape of the ``ingress`` (v2) and ``loki_push_api`` ``endpoint`` values. The
    URL is checked by the http-endpoint library's validator, the one it goes through when it
    is published to Falco, so that what passes here cannot fail later in the hook. None when
    ``key`` is unset. Raises ValueError, naming the key and quoting at most the start of the
    value (a remote application can write megabytes), when it is not usable.
    """
    raw = databag.get(key, "")
    if not raw:
        return None
    try:
        data = json.loads(raw)
    # RecursionError: JSON nested deeper than the parser's stack, from a hostile remote.
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{key!r} is not JSON text: {shown(raw)}") from exc
    url = data.get("url") if isinstance(data, dict) else None
    if not isinstance(url, str):
        raise ValueError(f"{key!r} has no 'url' string: {shown(raw)}")
    try:
        return normalise_url(url)
    except ValueError as exc:
        raise ValueError(f"{key!r} url: {exc}") from None
