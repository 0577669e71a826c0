"""Who listens on a port, read through the real /proc of this machine.

The unit tests present listeners in a fake machine's /proc laid out as the charm believes
Linux lays it out; here the same code reads the kernel's own ``/proc/net/tcp{,6}`` and
``/proc/<pid>/fd`` while this test process listens on a free port of 127.0.0.1 (and ::1).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import coexistence
import pytest
from layout import Layout


@pytest.fixture(name="layout")
def layout_fixture(tmp_path: Path) -> Layout:
    """The charm's layout with the machine's real /proc."""
    return Layout(tmp_path / "root", proc=Path("/proc"))


def listener(family: socket.AddressFamily, address: str) -> Iterator[int]:
    with socket.socket(family, socket.SOCK_STREAM) as server:
        server.bind((address, 0))
        server.listen()
        yield int(server.getsockname()[1])


@pytest.fixture(name="port", params=["IPv4", "IPv6"])
def port_fixture(request: pytest.FixtureRequest) -> Iterator[int]:
    """A port this process listens on, on the loopback address of each family."""
    if request.param == "IPv6":
        if not socket.has_ipv6 or not Path("/proc/net/tcp6").exists():
            pytest.skip("no IPv6 on this machine")
        yield from listener(socket.AF_INET6, "::1")
    else:
        yield from listener(socket.AF_INET, "127.0.0.1")


def test_the_process_listening_on_a_port_is_named(layout: Layout, port: int) -> None:
    """arrange: this process listens on a port. act: look for holders. assert: this process."""
    holders = coexistence.port_holders(layout, port)

    assert [holder.pid for holder in holders] == [os.getpid()]
    assert holders[0].exe == os.path.realpath(f"/proc/{os.getpid()}/exe")
    problem = coexistence.port_problem(layout, port)
    assert problem is not None
    assert f"metrics-port {port} is also served by " in problem
    assert f"(pid {os.getpid()}, " in problem


def test_its_own_falco_is_not_a_holder(layout: Layout, port: int) -> None:
    """arrange: this process listens, taken as Falco's MainPID. act: look. assert: nobody."""
    assert coexistence.port_holders(layout, port, own_pid=os.getpid()) == []


def test_a_closed_port_has_no_holder(layout: Layout) -> None:
    """arrange: a port bound then closed. act: look for holders. assert: nobody."""
    (port,) = list(listener(socket.AF_INET, "127.0.0.1"))

    assert coexistence.port_holders(layout, port) == []
