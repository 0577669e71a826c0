#!/usr/bin/env python3
"""Print, as JSON, what this charm really sends about Falco alerts, for the cross-charm test.

Run from the charm directory in the charm's own environment (the repository's
``tests/test_alert_chain.py`` does): the charm runs under ``ops.testing`` as a leader behind
an ingress, related to Loki and Grafana, and this prints

* ``extralabels``: the stream labels of the rendered Falcosidekick Loki output;
* ``loki_rules``: the ``alert_rules`` it sends on ``send-loki-logs``;
* ``dashboards``: every dashboard sent on ``grafana-dashboard``, decoded.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

CHARM_DIR = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(CHARM_DIR / p) for p in ("src", "lib", "tests/shared", "tests")]

import addresses  # noqa: E402
import sidekick_states as states  # noqa: E402
from charm import FalcosidekickCharm  # noqa: E402
from cosl import LZMABase64  # noqa: E402
from ops import testing  # noqa: E402

LOKI_URL = "http://otelcol-0.otelcol-endpoints.cos.svc.cluster.local:3500/loki/api/v1/push"
INGRESS_URL = "https://ingress.example.com/cos-falcosidekick-k8s"


def main() -> None:
    """Run the charm once and print what it sent."""
    addresses.resolve = states.POD_DNS.get  # the pod's DNS, without real lookups
    ctx = testing.Context(FalcosidekickCharm)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        relations = {
            states.ingress_relation(INGRESS_URL),
            states.loki_relation(LOKI_URL),
            testing.Relation("grafana-dashboard", remote_app_name="grafana"),
        }
        state = states.state(root, leader=True, relations=relations)
        out = ctx.run(ctx.on.pebble_ready(states.container(root)), state)
        config = states.rendered_config(root)
    loki = states.relation(out, "send-loki-logs").local_app_data
    sent = json.loads(states.relation(out, "grafana-dashboard").local_app_data["dashboards"])
    print(
        json.dumps(
            {
                "extralabels": config["loki"]["extralabels"].split(","),
                "loki_rules": json.loads(loki["alert_rules"]),
                "dashboards": {
                    key: json.loads(LZMABase64.decompress(template["content"]))
                    for key, template in sent["templates"].items()
                },
            }
        )
    )


if __name__ == "__main__":
    main()
