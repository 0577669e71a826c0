"""Count what a charm asks Juju and Pebble to do, at the boundary ``ops.testing`` mocks.

"Nothing written on a no-op hook" is only provable by counting the calls that would reach
Juju (``relation-set``) or Pebble (file pushes, layer changes, service restarts). These probes
wrap the ``ops.testing`` backends, record every call, and restore them on exit. Tests and
``make bench`` share them, so both count the same thing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from scenario.mocking import _MockModelBackend, _MockPebbleClient

# Pebble client calls, by what they do to the workload.
PEBBLE_FILE_WRITES = ("push", "make_dir", "remove_path")
PEBBLE_PLAN_CHANGES = ("add_layer",)
PEBBLE_SERVICE_CHANGES = ("replan_services", "restart_services", "start_services", "stop_services")


@dataclass
class Calls:
    """Calls recorded per method name, each as ``(args, kwargs)`` without ``self``."""

    by_method: dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]] = field(
        default_factory=dict
    )

    def count(self, *methods: str) -> int:
        """Return how many calls were made to any of ``methods``."""
        return sum(len(self.by_method.get(name, [])) for name in methods)

    def clear(self) -> None:
        """Forget the calls recorded so far."""
        self.by_method.clear()


@contextmanager
def record_calls(target: type | ModuleType, methods: tuple[str, ...]) -> Iterator[Calls]:
    """Record every call to ``methods`` of ``target`` (a class or a module) while open."""
    calls = Calls()
    originals = {name: getattr(target, name) for name in methods}
    inherited = {name for name in methods if name not in vars(target)}

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        if isinstance(target, ModuleType):
            # A module function: there is no `self` to pass along.
            def recording_function(*args: Any, **kwargs: Any) -> Any:
                calls.by_method.setdefault(name, []).append((args, kwargs))
                return original(*args, **kwargs)

            return functools.wraps(original)(recording_function)

        @functools.wraps(original)
        def recording(self: object, *args: Any, **kwargs: Any) -> Any:
            calls.by_method.setdefault(name, []).append((args, kwargs))
            return original(self, *args, **kwargs)

        return recording

    for name, original in originals.items():
        setattr(target, name, wrap(name, original))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            if name in inherited:
                delattr(target, name)
            else:
                setattr(target, name, original)


@contextmanager
def record_relation_writes() -> Iterator[Calls]:
    """Record ``relation-set`` hook commands (one per databag update that changed something)."""
    with record_calls(_MockModelBackend, ("relation_set",)) as calls:
        yield calls


@contextmanager
def record_pebble() -> Iterator[Calls]:
    """Record Pebble file writes, layer changes and service operations of every container."""
    methods = PEBBLE_FILE_WRITES + PEBBLE_PLAN_CHANGES + PEBBLE_SERVICE_CHANGES
    with record_calls(_MockPebbleClient, methods) as calls:
        yield calls
