"""The charm's Juju config options as a validated model."""

from __future__ import annotations

import pydantic


class CharmConfig(pydantic.BaseModel):
    """Options from charmcraft.yaml; field names are the option names with underscores."""

    model_config = pydantic.ConfigDict(frozen=True)

    port: int = pydantic.Field(2801, ge=1, le=65535)
