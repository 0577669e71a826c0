"""The falco charm's Juju config, validated in one place.

Field names are the option names with ``-`` turned into ``_``; ``load_charm_config`` turns a
validation error back into a one-line status naming the option as the operator typed it.
"""

from __future__ import annotations

from typing import Literal

import pydantic

Driver = Literal["modern_ebpf", "kmod", "auto"]

# Falco's ring-buffer presets (engine.<kind>.buf_size_preset): 1 is 1 MiB per buffer and each
# step doubles, up to 10 = 512 MiB; 0 is reserved.
MIN_BUFFER_PRESET = 1
MAX_BUFFER_PRESET = 10


class FalcoConfig(pydantic.BaseModel):
    """Operator choices for this issue's scope: the engine and the output queue."""

    model_config = pydantic.ConfigDict(frozen=True, extra="ignore")

    driver: Driver = "modern_ebpf"
    buffer_size_preset: int = pydantic.Field(default=4, ge=MIN_BUFFER_PRESET, le=MAX_BUFFER_PRESET)
    outputs_queue_capacity: int = pydantic.Field(default=100_000, ge=1)
