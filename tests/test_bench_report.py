"""bench/report.py fails exactly when a target is missed."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(name="report", scope="module")
def report_fixture() -> ModuleType:
    spec = importlib.util.spec_from_file_location("report", ROOT / "bench" / "report.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _results(**event: Any) -> dict[str, Any]:
    base = {"event": "update-status", "runs": 1, "median_s": 0.01, "max_s": 0.01, "counts": {}}
    return {
        "charm": "falco",
        "import_s": {"charm": 0.15, "ops": 0.13},
        "sequences": {"seq": [base | event]},
    }


def test_clean_results_pass(report: ModuleType) -> None:
    """arrange: a no-op that did nothing, a change with its one restart. assert: no failure."""
    results = _results(noop=True, counts={"restarts": 0, "file_writes": 0})
    results["sequences"]["seq"].append(
        {"event": "config-changed", "runs": 1, "median_s": 0.02, "max_s": 0.02,
         "expect": {"restarts": 1}, "counts": {"restarts": 1, "file_writes": 1}}
    )  # fmt: skip

    assert report.check(results) == []


@pytest.mark.parametrize("counter", ["restarts", "reloads", "file_writes", "relation_writes"])
def test_noop_that_did_work_fails(report: ModuleType, counter: str) -> None:
    """arrange: a no-op event with one write or restart. assert: reported."""
    failures = report.check(_results(noop=True, counts={counter: 1}))

    assert failures == [f"falco/seq/update-status: no-op event did work: {{'{counter}': 1}}"]


def test_expected_count_mismatch_fails(report: ModuleType) -> None:
    """arrange: two restarts where one is expected. assert: reported."""
    failures = report.check(_results(expect={"restarts": 1}, counts={"restarts": 2}))

    assert failures == ["falco/seq/update-status: restarts=2, target 1"]


def test_slow_import_fails_relative_to_ops(report: ModuleType) -> None:
    """arrange: a charm import twice as slow as ops. assert: reported against the ratio."""
    results = _results()
    results["import_s"] = {"charm": 0.8, "ops": 0.4}

    (failure,) = report.check(results)

    assert "2.00x `import ops`" in failure


def _cold(**figures: Any) -> dict[str, Any]:
    hook = {
        "rounds": 11,
        "cpu_s": 0.2,
        "wall_s": 0.3,
        "floor_cpu_s": 0.15,
        "floor_wall_s": 0.2,
        "cpu_ratio": 1.3,
        "hook_tool_calls": 2,
        "max_hook_tool_calls": 2,
        "hook_tools": {"is-leader": 1, "config-get": 1},
    }
    results = _results()
    results["cold_hooks"] = {"hooks": {"falco/0 config-changed": hook | figures}, "prior": "-"}
    return results


def test_cheap_cold_hooks_pass(report: ModuleType) -> None:
    """arrange: cold hooks within every budget. assert: no failure, one table row."""
    results = _cold()

    assert report.check(results) == []
    assert "falco/0 config-changed" in report.cold_table({"falco": results})


@pytest.mark.parametrize(
    ("figures", "missed"),
    [
        ({"cpu_ratio": 1.8}, "CPU 1.80x `import ops`"),
        ({"rounds": 9}, "9 rounds, at least 10"),
        ({"max_hook_tool_calls": 5}, "5 hook-tool calls"),
        ({"hook_tools": {"status-set": 1}}, "a no-op hook ran {'status-set': 1}"),
        ({"hook_tools": {"relation-set": 1}}, "a no-op hook ran {'relation-set': 1}"),
    ],
)
def test_costly_cold_hook_fails(report: ModuleType, figures: dict[str, Any], missed: str) -> None:
    """arrange: a cold hook over one budget. assert: exactly that one is reported."""
    (failure,) = report.check(_cold(**figures))

    assert failure.startswith("falco/cold falco/0 config-changed: ")
    assert missed in failure


def test_relation_hook_has_one_more_call_for_what_ops_reads_itself(report: ModuleType) -> None:
    """arrange: a relation hook with 5 calls, then 6. assert: only 6 is reported."""
    results = _cold(max_hook_tool_calls=5)
    hook = results["cold_hooks"]["hooks"].pop("falco/0 config-changed")
    results["cold_hooks"]["hooks"]["falco/0 db-relation-changed"] = hook
    assert report.check(results) == []

    hook["max_hook_tool_calls"] = 6
    (failure,) = report.check(results)

    assert "6 hook-tool calls" in failure and "budget 5" in failure


def test_import_gate_takes_the_median_of_per_round_ratios(report: ModuleType) -> None:
    """arrange: medians 1.8x apart, per-round ratios 1.2x. assert: the ratio gates, passes."""
    results = _results()
    results["import_s"] = {"charm": 0.18, "ops": 0.10, "ratio": 1.2, "runs": 11}

    assert report.check(results) == []


@pytest.mark.parametrize(("median_s", "failed"), [(0.015, False), (0.016, True)])
def test_an_event_slower_than_its_baseline_allows_fails(
    report: ModuleType, median_s: float, failed: bool
) -> None:
    """arrange: an idle hook on big inputs vs the same on empty ones (10 ms). assert: 1.5x."""
    within = {"baseline": "update-status (empty)", "baseline_median_s": 0.01, "max_ratio": 1.5}
    results = _results(median_s=median_s, within=within)

    failures = report.check(results)

    assert bool(failures) is failed
    if failed:
        assert "1.60x 'update-status (empty)'" in failures[0]


@pytest.mark.parametrize(("value", "failed"), [(99.0, False), (101.0, True)])
def test_a_limit_exceeded_fails(report: ModuleType, value: float, failed: bool) -> None:
    """arrange: a peak memory of a hook against its 100 MiB limit. assert: reported above."""
    results = _results()
    results["limits"] = [{"what": "peak RSS", "value": value, "max": 100.0, "unit": "MiB"}]

    failures = report.check(results)

    assert failures == (["falco: peak RSS is 101.0 MiB, limit 100.0 MiB"] if failed else [])
