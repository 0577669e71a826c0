"""The charm's Juju integration tests collect here and fail loudly where there is no Juju.

They run only on a Juju host (`make integration`); this keeps them importable and honest
in every `make test`, in the charm's own environment (they share its conftest).
"""

from __future__ import annotations

from pathlib import Path

from integration_suites import assert_collects, assert_fails_loudly_without_juju

CHARM_DIR = Path(__file__).resolve().parents[2]


def test_integration_tests_collect() -> None:
    """arrange: the integration suite. act: collect it. assert: tests found, no errors."""
    assert_collects(CHARM_DIR, "tests/integration")


def test_integration_tests_fail_loudly_without_juju(tmp_path: Path) -> None:
    """arrange: no juju on PATH. act: run the suite. assert: non-zero, says what it needs."""
    assert_fails_loudly_without_juju(
        CHARM_DIR, "tests/integration", tmp_path, CHARM_PATH=str(tmp_path / "falco.charm")
    )
