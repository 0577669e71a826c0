"""Falco's real /metrics, scraped where the charm tells the collector to scrape.

One real Falco (``nodriver``) on the unit's live falco.yaml, the unit related to a collector
over cos-agent. The scrape job is read from what the charm wrote on that relation, and
every metric the shipped dashboard and alert rules use must be there, unless it belongs to a
kernel engine that cannot run here (falco_metrics.py keeps those facts, and this test fails
if the scrape contradicts them). The first scrape also tells which counters exist from the
start, at 0, and which have no series until their first event: an increase() or rate()
over one of the latter must count that first event too (prometheus rules and panels).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import coexistence
import cos_content
import falco_metrics
import promql
import pytest
import yaml
from layout import Layout
from local_net import free_port
from ops import testing
from real_falco import NodriverFalco, Sample, http_get, keep_sample, parse_metrics
from real_unit import RealUnit, real_unit

DASHBOARD = json.loads((cos_content.DASHBOARDS_DIR / "falco-host-health.json").read_text())
RULES = yaml.safe_load((cos_content.PROMETHEUS_RULES_DIR / "falco.rules").read_text())


def dashboard_exprs() -> list[str]:
    return [t["expr"] for panel in DASHBOARD["panels"] for t in panel.get("targets", [])]


def rule_exprs() -> list[str]:
    return [rule["expr"] for group in RULES["groups"] for rule in group["rules"]]


@pytest.fixture(name="unit", scope="module")
def unit_fixture(
    tmp_path_factory: pytest.TempPathFactory, real_charm_root: Path
) -> Iterator[RealUnit]:
    with real_unit(tmp_path_factory.mktemp("metrics"), real_charm_root) as unit:
        unit.install(**{"metrics-port": free_port()})
        collector = testing.Relation(
            "cos-agent", remote_app_name="opentelemetry-collector", remote_units_data={0: {}}
        )
        unit.state = dataclasses.replace(unit.state, relations={collector})
        unit.run(unit.ctx.on.relation_joined(collector, remote_unit=0))
        yield unit


@pytest.fixture(name="falco", scope="module")
def falco_fixture(unit: RealUnit) -> Iterator[NodriverFalco]:
    falco = NodriverFalco(unit.falco, unit.config_file, unit.machine.base / "falco.log")
    falco.start()
    yield falco
    falco.stop()


@pytest.fixture(name="scrape", scope="module")
def scrape_fixture(unit: RealUnit, falco: NodriverFalco) -> list[Sample]:
    """The first scrape of Falco, as the collector does it: the job the charm published."""
    (relation,) = unit.state.relations
    (job,) = json.loads(relation.local_unit_data["config"])["metrics_scrape_jobs"]
    (target,) = job["static_configs"][0]["targets"]
    status, body = http_get(f"http://{target}{job['metrics_path']}")
    assert status == 200, body
    keep_sample("metrics-nodriver.txt", body)
    return parse_metrics(body)


def names(samples: list[Sample]) -> set[str]:
    return {sample.name for sample in samples}


def used_metrics() -> set[str]:
    return {
        name for expr in dashboard_exprs() + rule_exprs() for name in promql.metric_names(expr)
    }


def test_the_published_scrape_job_reaches_falcos_metrics(
    unit: RealUnit, scrape: list[Sample]
) -> None:
    """arrange: Falco on the charm's config. act: scrape the published job. assert: Falco."""
    (relation,) = unit.state.relations
    (job,) = json.loads(relation.local_unit_data["config"])["metrics_scrape_jobs"]
    assert job["static_configs"] == [
        {"targets": [f"localhost:{unit.state.config['metrics-port']}"]}
    ]
    assert ("falcosecurity_falco_version_info", {"version": "0.44.1"}) in [
        (sample.name, sample.labels) for sample in scrape
    ]
    engines = [s.labels for s in scrape if s.name == "falcosecurity_scap_engine_name_info"]
    assert engines == [{"engine_name": "nodriver", "evt_source": "syscall"}]


def test_every_metric_the_dashboard_and_rules_use_is_exported(scrape: list[Sample]) -> None:
    """arrange: a nodriver scrape. act: check each metric used. assert: there, or known."""
    exported = names(scrape)
    unobservable = (
        falco_metrics.KERNEL_ENGINES
        | falco_metrics.KMOD_ONLY
        | falco_metrics.BORN_AT_FIRST_EVENT
        | falco_metrics.PROMETHEUS
    )

    assert used_metrics() - exported - unobservable == set()
    # The facts kept as data hold: none of those series is here without a kernel or a match.
    assert exported & unobservable == set()
    for needed in (
        "falcosecurity_falco_outputs_queue_num_drops_total",
        "falcosecurity_falco_cpu_usage_ratio",
    ):
        assert needed in exported


def test_which_counters_exist_from_the_start(scrape: list[Sample]) -> None:
    """arrange: the first scrape. act: read the counters at 0. assert: as the rules assume."""
    nonzero = {sample.name for sample in scrape if sample.value != 0}
    at_zero = {sample.name for sample in scrape if sample.name not in nonzero}
    rated = {
        name
        for expr in dashboard_exprs() + rule_exprs()
        for name in falco_metrics.rated_metrics(expr)
    }
    observed = rated & at_zero
    assert observed == {
        "falcosecurity_falco_outputs_queue_num_drops_total",
        "falcosecurity_scap_n_drops_buffer_total",
        "falcosecurity_scap_n_drops_full_threadtable_total",
    }
    # The rest is either a kernel engine's (from the start, by the data) or born at 1.
    assert rated - observed - falco_metrics.KERNEL_ENGINES - falco_metrics.KMOD_ONLY == (
        falco_metrics.BORN_AT_FIRST_EVENT
    )


QUERIES = {
    **{
        f"panel {panel['title']} {target['refId']}": target["expr"]
        for panel in DASHBOARD["panels"]
        for target in panel.get("targets", [])
    },
    **{
        f"alert {rule['alert']}": rule["expr"]
        for group in RULES["groups"]
        for rule in group["rules"]
    },
}


@pytest.mark.parametrize("query", list(QUERIES))
def test_increase_over_a_counter_born_at_one_counts_its_first_event(query: str) -> None:
    """arrange: a query. act: find counters born at 1 it rates. assert: birth counted too."""
    expr = QUERIES[query]
    for metric in falco_metrics.rated_metrics(expr) & falco_metrics.BORN_AT_FIRST_EVENT:
        assert falco_metrics.counts_first_event(expr, metric), expr


def test_rule_matches_have_no_series_before_the_first_match(scrape: list[Sample]) -> None:
    """arrange: no event at all (nodriver). act: the first scrape. assert: no rule counter."""
    assert not names(scrape) & falco_metrics.BORN_AT_FIRST_EVENT


def test_the_guard_check_sees_an_unguarded_increase() -> None:
    """arrange: increase() alone over rule matches. act: check. assert: not counted."""
    expr = "sum by (priority) (increase(falcosecurity_falco_rules_matches_total[5m]))"

    assert falco_metrics.rated_metrics(expr) == {"falcosecurity_falco_rules_matches_total"}
    assert not falco_metrics.counts_first_event(expr, "falcosecurity_falco_rules_matches_total")


def test_the_real_falco_is_seen_as_another_falco_and_as_its_ports_holder(
    unit: RealUnit, falco: NodriverFalco, tmp_path: Path
) -> None:
    """arrange: the real Falco running outside any payload directory of a second machine.

    act: look through the real /proc as that machine's charm would. assert: it holds its
    metrics port and it is another Falco; as the charm's own (its MainPID), neither.
    """
    elsewhere = Layout(tmp_path / "other-machine", proc=Path("/proc"))
    port = int(unit.state.config["metrics-port"])

    holders = coexistence.port_holders(elsewhere, port)
    others = coexistence.other_falcos(elsewhere)

    assert [(holder.pid, holder.name) for holder in holders] == [(falco.pid, "falco")]
    assert falco.pid in [other.pid for other in others]
    assert coexistence.port_holders(elsewhere, port, own_pid=falco.pid) == []
    assert falco.pid not in [p.pid for p in coexistence.other_falcos(elsewhere, falco.pid)]
    # On its own machine, its executable is under the charm's payloads: not another Falco.
    own = Layout(unit.machine.root, proc=Path("/proc"))
    assert falco.pid not in [p.pid for p in coexistence.other_falcos(own)]
