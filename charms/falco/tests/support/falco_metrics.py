"""What Falco 0.44.1 exports, by engine and from when: the facts no scrape here can show.

A nodriver Falco (tests/real/test_metrics.py) shows what every engine exports and that those
series exist from the start. What only a kernel engine exports cannot be observed without
kernel privileges, so it is kept here as data, from ../shared/workloads/README.md and
WORKLOADS.md section 3; the real test fails if a scrape ever contradicts it. The charm runs
``modern_ebpf`` or ``kmod``.
"""

from __future__ import annotations

import re
from typing import Any

import promql

# Exported by both kernel engines (modern_ebpf and kmod), not by nodriver. Like every
# engine counter they exist from the start, at 0 (/metrics includes zeros, as the nodriver
# scrape shows for its own engine counters). Not listed: n_drops_buffer_total, which
# nodriver exports too, but only its deprecated dir="enter" series; the dir="exit" ones the
# dashboard reads come from a kernel engine.
KERNEL_ENGINES = frozenset(
    {
        "falcosecurity_scap_n_evts_total",
        "falcosecurity_scap_n_drops_total",
        "falcosecurity_scap_n_drops_scratch_map_total",
        "falcosecurity_scap_n_evts_cpu_total",
        "falcosecurity_scap_n_drops_cpu_total",
    }
)
# Exported by the kmod driver only: with modern_ebpf these series do not exist at all.
KMOD_ONLY = frozenset(
    {
        "falcosecurity_scap_n_drops_page_faults_total",
        "falcosecurity_scap_n_drops_bug_total",
        "falcosecurity_scap_n_preemptions_total",
    }
)
# Counters with no series until their first event, which is then already 1: Falco exports a
# rule's counter only once the rule matched (WORKLOADS.md: "Only rules with a count above
# 0 are emitted"). increase() and rate() over such a series miss that first event.
BORN_AT_FIRST_EVENT = frozenset({"falcosecurity_falco_rules_matches_total"})
# Prometheus's own series, not Falco's.
PROMETHEUS = frozenset({"up"})
# Where an engine is named in a panel's title or description.
KMOD_NAMED = re.compile(r"\bkmod\b")
_RATE_FUNCTIONS = re.compile(r"\b(?:increase|rate|irate|delta|idelta)\s*\(")


def rated_metrics(expr: str) -> set[str]:
    """Return the metrics ``expr`` reads through increase(), rate() and the like."""
    found = set()
    for match in _RATE_FUNCTIONS.finditer(expr):
        depth, start = 1, match.end()
        end = start
        while depth:
            depth += {"(": 1, ")": -1}.get(expr[end], 0)
            end += 1
        found |= promql.metric_names(expr[start : end - 1])
    return found


def counts_first_event(expr: str, metric: str) -> bool:
    """Return whether ``expr`` also counts a series of ``metric`` that was not there before.

    The shape FalcoCriticalAlert and the rule-match panels use next to the increase():
    ``<metric> unless <metric> offset <window>``, the first term possibly inside a
    ``*_over_time(...[window])``.
    """
    selector = rf"{metric}(\{{[^}}]*\}})?"
    pattern = rf"{selector}(\[[^\]]*\]\))?\s+unless\s+{selector}\s+offset\s"
    return re.search(pattern, expr) is not None


def panel_metrics(panel: dict[str, Any]) -> set[str]:
    """Return every metric a dashboard panel queries."""
    return {
        name for target in panel.get("targets", []) for name in promql.metric_names(target["expr"])
    }


def kmod_panels_not_saying_so(dashboard: dict[str, Any]) -> list[str]:
    """Return the titles of panels that query a kmod-only metric without naming kmod."""
    return [
        panel["title"]
        for panel in dashboard["panels"]
        if panel_metrics(panel) & KMOD_ONLY
        and not KMOD_NAMED.search(f"{panel['title']} {panel.get('description', '')}")
    ]
