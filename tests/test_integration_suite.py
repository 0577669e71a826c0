"""The end-to-end Juju tests are complete enough to collect, and fail loudly without Juju.

The falco charm's own integration suite is checked the same way by the charm's tests, in
its own environment (charms/falco/tests/unit/test_integration_suite.py).
"""

from __future__ import annotations

from pathlib import Path

from integration_suites import assert_collects, assert_fails_loudly_without_juju

ROOT = Path(__file__).resolve().parent.parent


def test_integration_tests_collect() -> None:
    """arrange: the end-to-end suite. act: collect it. assert: tests found, no errors."""
    assert_collects(ROOT, "tests/integration")


def test_end_to_end_suite_fails_loudly_without_juju(tmp_path: Path) -> None:
    """arrange: no juju on PATH. act: run the suite. assert: non-zero, says what it needs."""
    assert_fails_loudly_without_juju(
        ROOT, "tests/integration", tmp_path, FALCO_CHARM="", FALCOSIDEKICK_CHARM=""
    )
