"""How Falcosidekick's counters come into being, as the real 2.34.1 shows them.

A counter series (one per label set: an input status, an output and its status, a rule and
priority of ``falco_events``) does not exist until its first event, and then appears at 1:
Prometheus never sees it at 0. ``increase()`` and ``rate()`` only count what changes between
samples, so over such a series they miss the first event, and every event when there is only
one. ``tests/real/test_counters.py`` proves the shape on the real binary; the promtool tests
build their input series with :func:`minutely`, so both rest on the same assumption.
"""

from __future__ import annotations

from collections.abc import Sequence

BORN_AT = 1  # the value a series has when it first appears


def minutely(minutes: int, events_at: Sequence[int], already: int | None = None) -> str:
    """Return promtool ``values`` for one sample per minute over ``minutes`` minutes.

    ``events_at`` are the minutes at which one event each happens. Without ``already`` the
    series is absent (``_``) until the first event, where it appears at :data:`BORN_AT`;
    with ``already`` it exists from minute 0 at that value.
    """
    values: list[str] = []
    count = already
    for minute in range(minutes + 1):
        happened = events_at.count(minute)
        if happened:
            # A new series holds BORN_AT after its first event, one more per event after it.
            count = (BORN_AT - 1 if count is None else count) + happened
        values.append("_" if count is None else str(count))
    return " ".join(values)
