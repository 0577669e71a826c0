"""URLs other applications publish (ingress v2, loki_push_api), checked once where they come in.

A URL is taken only once the interface library's validator accepts it, the same one the URL
goes through when we publish it to Falco, so that what passes here cannot fail later in the
hook. Errors and logs quote the start of a remote value only: a provider can write megabytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from falcosidekick_http_endpoint import normalise_url, shown

__all__ = ["read_url", "shown"]


def read_url(databag: Mapping[str, str], key: str) -> str | None:
    """Return the http(s) URL of the JSON object ``{"url": ...}`` under ``key``, normalised.

    None when ``key`` is unset. Raises ValueError, naming the key and quoting at most the
    start of the value, when it is not usable.
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
