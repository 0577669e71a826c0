"""Fixtures of the component tests: one real systemd (a booted container) per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import real_systemd


@pytest.fixture(name="container", scope="session")
def container_fixture(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[real_systemd.Container]:
    """A Debian 12 container booted with systemd as PID 1, shut down after the session."""
    with real_systemd.booted(tmp_path_factory.mktemp("systemd")) as container:
        yield container
