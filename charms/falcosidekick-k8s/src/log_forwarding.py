"""Pebble log forwarding of the sidekick's own logs to every unit related on ``logging``.

Pure data: the Pebble layer for a set of Loki push URLs. One log target per remote unit,
named after it, labelled with this unit's topology. A target whose unit is gone is not
deleted (a layer cannot delete) but disabled: same name, no services. Log targets are not
services, so changing them never restarts the sidekick.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import ops
from topology import identifier

LAYER = "falcosidekick-log-forwarding"
REMOVED_LOCATION = "(removed)"


def labels(topology: Mapping[str, str]) -> dict[str, str]:
    """Return the stream labels of the sidekick's logs, as the COS log forwarders set them."""
    return {
        "product": "Juju",
        "charm": topology["charm_name"],
        "juju_model": topology["model"],
        "juju_model_uuid": topology["model_uuid"],
        "juju_application": topology["application"],
        "juju_unit": topology["unit"],
        "job": f"juju_{identifier(topology)}",
    }


def render_layer(
    urls: Mapping[str, str], existing: Iterable[str], target_labels: Mapping[str, str]
) -> ops.pebble.LayerDict:
    """Return the layer forwarding to ``urls`` (unit name -> push URL).

    Targets in ``existing`` (the plan's) that are not in ``urls`` are disabled.
    """
    targets: dict[str, ops.pebble.LogTargetDict] = {
        name: {
            "override": "replace",
            "type": "loki",
            "location": REMOVED_LOCATION,
            "services": ["-all"],
        }
        for name in existing
        if name not in urls
    }
    for name, url in urls.items():
        targets[name] = {
            "override": "replace",
            "type": "loki",
            "location": url,
            "services": ["all"],
            "labels": dict(target_labels),
        }
    return {"summary": "Falcosidekick log forwarding", "log-targets": targets}
