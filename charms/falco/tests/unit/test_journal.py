"""Why Falco is down, from journal lines the real Falco 0.44.1 and systemd 252 printed."""

from __future__ import annotations

import journal
import pytest

UNIT = "juju-falco.service"
STARTED = f"Started {UNIT} - Falco runtime security detection (managed by the falco Juju charm)."
EXITED = [
    f"{UNIT}: Main process exited, code=exited, status=1/FAILURE",
    f"{UNIT}: Failed with result 'exit-code'.",
]
# Falco 0.44.1 with modern_ebpf where it may not raise RLIMIT_MEMLOCK (this build machine).
MEMLOCK = [
    "2026-12-05T11:47:45+0000: Opening 'syscall' source with modern BPF probe.",
    "2026-12-05T11:47:45+0000: One ring buffer every '2' CPUs.",
    "2026-12-05T11:47:45+0000: [libs]: libpman: unable to bump RLIMIT_MEMLOCK to RLIM_INFINITY "
    "(errno: 1 | message: Operation not permitted)",
    "2026-12-05T11:47:45+0000: An error occurred in an event source, forcing termination...",
    "Error: unable to configure the libpman state.",
    "Events detected: 0",
]
# The same under systemd 252 with the charm's unit (tests/component/test_unit_under_systemd.py).
UNDER_SYSTEMD = [
    "2026-12-05T11:59:22+0000: Opening 'syscall' source with modern BPF probe.",
    "2026-12-05T11:59:22+0000: One ring buffer every '2' CPUs.",
    "libpman: ring buffer map type is not supported (errno: 1 | message: Operation not permitted)",
    "2026-12-05T11:59:22+0000: An error occurred in an event source, forcing termination...",
    "Error: Initialization issues during scap_init",
    "Events detected: 0",
    "Rule counts by severity:",
    "Triggered rules by rule name:",
]
# The report of the real 0.44.1 on a kernel whose verifier refuses a program.
VERIFIER = [
    "2026-12-05T10:00:01+0000: Opening 'syscall' source with modern BPF probe.",
    "2026-12-05T10:00:01+0000: [libs]: libbpf: prog 'sys_enter': BPF program is too large. "
    "Processed 1000001 insn",
    "2026-12-05T10:00:01+0000: [libs]: libpman: failed to load BPF object (errno: 7 | message: "
    "Argument list too long)",
    "2026-12-05T10:00:01+0000: An error occurred in an event source, forcing termination...",
    "Error: Initialization issues during scap_init",
]
KMOD_DEVICE = [
    "2026-12-05T11:47:45+0000: An error occurred in an event source, forcing termination...",
    "Error: error opening device /dev/falco0. Make sure you have root credentials and that the "
    "falco module is loaded: No such file or directory",
]
# ExecStartPre=+modprobe falco failing: systemd's lines, no Falco at all.
MODPROBE = [
    f"Starting {UNIT} - Falco runtime security detection (managed by the falco Juju charm)...",
    "modprobe: FATAL: Module falco not found in directory /lib/modules/6.8.0-45-generic",
    f"{UNIT}: Control process exited, code=exited, status=1/FAILURE",
    f"{UNIT}: Failed with result 'exit-code'.",
]
PLUGIN = [
    "2026-12-05T11:47:45+0000: Runtime error: cannot load plugin /nonexistent/lib.so: can't "
    "load plugin dynamic library: /nonexistent/lib.so: cannot open shared object file: No such "
    "file or directory. Exiting.",
]
CONFIG = ["Error: Error reading config file (falco.yaml): engine.kind 'foo' is not a valid kind."]
WEBSERVER = [
    "2026-12-05T11:48:20+0000: Starting health webserver with threadiness 1, listening on "
    "127.0.0.1:18799",
    "2026-12-05T11:48:20+0000: Runtime error: an error occurred while starting webserver. "
    "Exiting.",
]


@pytest.mark.parametrize(
    ("lines", "summary", "engine"),
    [
        (
            MEMLOCK,
            "the modern_ebpf probe cannot raise its locked-memory limit (RLIMIT_MEMLOCK): "
            "libpman: unable to bump RLIMIT_MEMLOCK to RLIM_INFINITY (errno: 1 | message: "
            "Operation not permitted)",
            "modern_ebpf",
        ),
        (
            UNDER_SYSTEMD,
            "the modern_ebpf probe cannot be set up: libpman: ring buffer map type is not "
            "supported (errno: 1 | message: Operation not permitted)",
            "modern_ebpf",
        ),
        (
            ["Error: Initialization issues during scap_init"],
            "Falco's driver failed to open (scap_init): Initialization issues during scap_init",
            "*",
        ),
        (
            VERIFIER,
            "the kernel's BPF verifier refused the modern_ebpf probe: libbpf: prog 'sys_enter': "
            "BPF program is too large. Processed 1000001 insn",
            "modern_ebpf",
        ),
        (
            KMOD_DEVICE,
            "the Falco kernel module is not loaded: error opening device /dev/falco0. Make sure "
            "you have root credentials and that the falco module is loaded: No such file or "
            "directory",
            "kmod",
        ),
        (
            MODPROBE,
            "the Falco kernel module cannot be loaded: modprobe: FATAL: Module falco not found "
            "in directory /lib/modules/6.8.0-45-generic",
            "kmod",
        ),
        (
            PLUGIN,
            # Cut in the middle: what failed and why both stay.
            "a plugin failed to load: cannot load plugin /nonexistent/lib.so: can't load plugin "
            "dynamic library...existent/lib.so: cannot open shared object file: No such file or "
            "directory",
            None,
        ),
        (
            CONFIG,
            "Falco refused its falco.yaml: Error reading config file (falco.yaml): engine.kind "
            "'foo' is not a valid kind",
            None,
        ),
        (
            WEBSERVER,
            "Falco's webserver cannot listen on metrics-port (is the port taken?): an error "
            "occurred while starting webserver",
            None,
        ),
        (["Error: something nobody foresaw"], "something nobody foresaw", None),
    ],
)
def test_the_last_failure_is_named_by_its_cause(
    lines: list[str], summary: str, engine: str | None
) -> None:
    """arrange: a unit's journal, Falco's failure after its start. act: diagnose. assert."""
    why = journal.diagnose([STARTED, *lines, *EXITED])

    assert why is not None
    assert (why.summary, why.engine) == (summary, engine)
    assert all(line in lines for line in why.lines)


def test_the_latest_run_names_the_cause() -> None:
    """arrange: a plugin failure, then a later kmod failure. act: diagnose. assert: kmod."""
    why = journal.diagnose([STARTED, *PLUGIN, *EXITED, STARTED, *KMOD_DEVICE, *EXITED])

    assert why is not None
    assert why.engine == "kmod"


def test_systemds_lines_alone_name_no_cause() -> None:
    """arrange: only systemd's lines (a process that printed nothing). act: diagnose."""
    lines = [
        STARTED,
        *EXITED,
        f"{UNIT}: Scheduled restart job, restart counter is at 1.",
        f"{UNIT}: Start request repeated too quickly.",
    ]

    assert journal.diagnose(lines) is None
    assert journal.diagnose([]) is None
