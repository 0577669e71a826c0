"""What both charms' hypothesis fuzz tests share: the profiles, and what a sane outcome is.

Profiles, chosen with ``HYPOTHESIS_PROFILE``:

* ``ci`` (the default, what ``make test`` runs): a fixed number of examples, derandomized
  so that CI is reproducible and a failure shows up on every run;
* ``fuzz`` (``make fuzz``): many more random examples, with the example database, to look
  for new failures.

Dispatches take tens to hundreds of milliseconds, so there is no deadline (time is the
bench's business), and hypothesis's "explain" phase, which reruns a failing example hundreds
of times to point at lines, is left out.
"""

from __future__ import annotations

import json
import os

import ops
from hypothesis import HealthCheck, Phase, settings
from ops import testing

STATUSES = (
    testing.ActiveStatus,
    testing.BlockedStatus,
    testing.WaitingStatus,
    testing.MaintenanceStatus,
)
# A status is read in `juju status`: whatever the input, it stays one readable line.
MAX_STATUS_LENGTH = 400
_SLOW_IS_FINE = (HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example)


def load_profiles(ci_examples: int, fuzz_examples: int) -> None:
    """Register the ``ci`` and ``fuzz`` profiles and load the one HYPOTHESIS_PROFILE names."""
    common = settings(
        deadline=None,
        print_blob=True,
        suppress_health_check=_SLOW_IS_FINE,
        phases=[phase for phase in Phase if phase is not Phase.explain],
    )
    settings.register_profile(
        "ci", common, max_examples=ci_examples, derandomize=True, database=None
    )
    settings.register_profile("fuzz", common, max_examples=fuzz_examples)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def assert_sane_status(status: ops.StatusBase) -> None:
    """No crash got here; the status is one of four kinds, one line, and says why if not Active."""
    assert isinstance(status, STATUSES), status
    assert len(status.message) <= MAX_STATUS_LENGTH, status.message
    assert "\n" not in status.message, status.message
    if not isinstance(status, testing.ActiveStatus):
        assert status.message.strip(), status


def is_json(text: str) -> bool:
    """Whether ``text`` decodes as JSON (a nesting too deep for Python counts as not)."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True
