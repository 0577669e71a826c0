"""The alert rules this charm ships, as the rule files COS receivers expect. No Ops here.

* Prometheus (``src/prometheus_alert_rules/``, sent on ``metrics-endpoint``): rules on the
  sidekick's own metrics. They carry this application's topology labels and group names, so
  the receiver scopes their expressions to this application. The generic ``HostHealth``
  group other COS providers add is left out on purpose: its ``HostDown`` and
  ``HostMetricsMissing`` fire on the same expressions as our ``FalcosidekickTargetDown`` and
  ``FalcosidekickTargetAbsent``, so one outage would page twice, and ours tell the person on
  call what a lost sidekick means for Falco alerts.
* Loki (``src/loki_alert_rules/``, sent on ``send-loki-logs``): rules on the Falco alerts the
  sidekick stores. They must NOT carry topology labels: a receiver that finds ``juju_model``,
  ``juju_model_uuid`` and ``juju_application`` on a rule injects matchers for them, i.e. for
  this application, into the expression, and the Falco units' streams would never match.
  Without them the receiver leaves the expression alone and names the rule file after the
  ``metadata`` we publish next to it. Group names still get our topology prefix, so that two
  sidekick applications' groups do not collide.

cosl does the renaming and labelling; it is imported on use, since it takes a while to load.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from topology import identifier

PROMETHEUS_RULES_DIR = Path(__file__).parent / "prometheus_alert_rules"
LOKI_RULES_DIR = Path(__file__).parent / "loki_alert_rules"
_RULE_FILE_SUFFIXES = (".rule", ".rules", ".yml", ".yaml")


def rule_files(directory: Path) -> list[Path]:
    """Return the rule files of ``directory``, sorted, as the COS libraries find them."""
    return sorted(p for p in directory.iterdir() if p.suffix in _RULE_FILE_SUFFIXES)


def prometheus_rules(topology: Mapping[str, str]) -> dict[str, Any]:
    """Return the PromQL rule file for ``metrics-endpoint``, labelled with our topology."""
    from cosl import JujuTopology
    from cosl.rules import Rules

    rules = Rules(query_type="promql", topology=JujuTopology.from_dict(dict(topology)))
    rules.add_path(PROMETHEUS_RULES_DIR)
    return rules.as_dict()


def falco_loki_rules(topology: Mapping[str, str]) -> dict[str, Any]:
    """Return the LogQL rule file on Falco alerts for ``send-loki-logs``, without labels."""
    from cosl.rules import Rules

    rules = Rules(query_type="logql", topology=None)
    for path in rule_files(LOKI_RULES_DIR):
        rules.add(yaml.safe_load(path.read_text()), group_name_prefix=identifier(topology))
    return rules.as_dict()
