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
