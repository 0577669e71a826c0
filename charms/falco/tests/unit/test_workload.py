"""Pure tests of the Ops-free workload modules and of the fake falco's CLI contract."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import falco_cli
import falco_config
import kernel
import pytest
import systemd_unit
from layout import Layout
from machine import FakeMachine, reference_file


def test_fake_falco_validates_like_falco_0_44_1(fake_falco: Path, tmp_path: Path) -> None:
    """arrange: the default rules and a rule without output. act: falco -V. assert: contract."""
    good = reference_file("falco_rules.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- rule: Missing output\n  desc: d\n  condition: evt.type=open\n")
    want_ok = json.loads(reference_file("validate-output.json").read_text())
    want_bad = json.loads(reference_file("validate-output-invalid.json").read_text())
    want_error = want_bad["examples"]["missing-output"]["falco_load_results"][0]["errors"][0]

    ok = subprocess.run(
        [fake_falco, "-o", "json_output=true", "-V", str(good)], capture_output=True, text=True
    )
    failed = subprocess.run(
        [fake_falco, "-o", "json_output=true", "-V", str(bad)], capture_output=True, text=True
    )

    assert ok.returncode == 0
    result = json.loads(ok.stdout)["falco_load_results"][0]
    assert set(result) == set(want_ok["falco_load_results"][0])
    assert failed.returncode == 1
    error = json.loads(failed.stdout)["falco_load_results"][0]["errors"][0]
    assert (error["code"], error["message"]) == (want_error["code"], want_error["message"])


def test_version_of_a_binary_that_cannot_run(tmp_path: Path) -> None:
    """arrange: a non-executable file. act: ask its version. assert: FalcoCliError."""
    binary = tmp_path / "falco"
    binary.write_bytes(b"\x00\x01 not an executable")

    with pytest.raises(falco_cli.FalcoCliError, match="cannot run"):
        falco_cli.version(binary)


def test_version_output_without_a_version(tmp_path: Path) -> None:
    """arrange: a binary printing no JSON. act: ask its version. assert: FalcoCliError."""
    binary = tmp_path / "falco"
    binary.write_text("#!/bin/sh\necho hello\n")
    binary.chmod(0o755)

    with pytest.raises(falco_cli.FalcoCliError, match="printed no version"):
        falco_cli.version(binary)


def test_dry_run_reports_falcos_own_error_line(fake_falco: Path, tmp_path: Path) -> None:
    """arrange: a config path that does not exist. act: --dry-run. assert: Falco's message."""
    result = falco_cli.dry_run(fake_falco, tmp_path / "missing.yaml")

    assert result == falco_cli.CheckResult(
        ok=False, message=f"Could not find configuration file at {tmp_path / 'missing.yaml'}"
    )


# What the real Falco 0.44.1 prints (tests/real shows it doing so), shortened.
PLUGIN_PATH = "/opt/juju-falco/payload-0671b19efa83740d/usr/share/falco/plugins/libcontainer.so"
RUNTIME_ERROR = (
    "2026-12-05T11:06:56+0000: Falco version: 0.44.1 (x86_64)\n"
    f"2026-12-05T11:06:56+0000: Runtime error: cannot load plugin {PLUGIN_PATH}: can't load "
    f"plugin dynamic library: {PLUGIN_PATH}: cannot open shared object file: No such file or "
    "directory. Exiting.\n"
)
INVALID_RULES = (
    "2026-12-05T11:08:50+0000: Loading rules from:\n"
    "Error: /opt/juju-falco/p/etc/falco/falco_rules.yaml: Invalid\n1 Errors:\n"
    "In rules content: (/opt/juju-falco/p/etc/falco/falco_rules.yaml:0:0)\n------\n"
    "  output: Read monitored file\n          ^\n------\n"
    "LOAD_ERR_COMPILE_OUTPUT (Error compiling output): unknown filter: unexpected token\n"
)


@pytest.mark.parametrize(
    ("stderr", "message"),
    [
        (
            RUNTIME_ERROR,
            # 270 characters: cut in the middle, so that what failed and why both stay.
            f"cannot load plugin {PLUGIN_PATH[:79]}...{PLUGIN_PATH[-39:]}: cannot open shared "
            "object file: No such file or directory.",
        ),
        (
            INVALID_RULES,
            "/opt/juju-falco/p/etc/falco/falco_rules.yaml: Invalid: unknown filter: "
            "unexpected token",
        ),
        ("2026-12-05T11:08:50+0000: something went wrong\n", "something went wrong"),
        ("", "exit code 1"),
    ],
)
def test_dry_run_quotes_falcos_reason_without_its_log_noise(
    tmp_path: Path, stderr: str, message: str
) -> None:
    """arrange: a binary printing Falco's failures. act: --dry-run. assert: the reason."""
    (tmp_path / "stderr").write_text(stderr)
    binary = tmp_path / "falco"
    binary.write_text(f"#!/bin/sh\ncat {tmp_path / 'stderr'} >&2\nexit 1\n")
    binary.chmod(0o755)

    result = falco_cli.dry_run(binary, tmp_path / "falco.yaml")

    assert result == falco_cli.CheckResult(ok=False, message=message)
    assert len(result.message) <= 200


def test_dry_run_of_a_binary_that_cannot_run(tmp_path: Path) -> None:
    """arrange: a missing binary. act: --dry-run. assert: a failed check, not an exception."""
    result = falco_cli.dry_run(tmp_path / "nope", tmp_path / "falco.yaml")

    assert not result.ok
    assert "cannot run" in result.message


@pytest.mark.parametrize(
    ("change", "restart"),
    [
        ({"outputs_queue": {"capacity": 1}}, False),
        ({"priority": "warning"}, False),
        ({"http_output": {"enabled": True, "url": "https://x/"}}, True),
        ({"engine": {"kind": "kmod"}}, True),
        ({"plugins": []}, True),
        ({"webserver": {"enabled": True, "listen_port": 9100}}, True),
        ({"file_output": {"enabled": False}}, True),
        ({"stdout_output": {"enabled": True}}, True),
        ({"metrics": {"enabled": True, "state_counters_enabled": False}}, False),
    ],
)
def test_which_changes_restart(change: dict[str, object], restart: bool) -> None:
    """arrange: a rendered config. act: change one section. assert: restart or reload."""
    current = {
        "engine": {"kind": "modern_ebpf"},
        "plugins": [{"name": "container"}],
        "http_output": {"enabled": False},
        "outputs_queue": {"capacity": 100},
        "priority": "debug",
        "webserver": {"enabled": True, "listen_port": 8765},
        "file_output": {"enabled": True},
        "stdout_output": {"enabled": False},
        "metrics": {"enabled": True},
    }

    assert falco_config.needs_restart(current, current | change) is restart


def test_unreadable_current_config_means_restart() -> None:
    """arrange: a falco.yaml that is not YAML. act: parse, compare. assert: restart."""
    assert falco_config.parse("{ not yaml") is None
    assert falco_config.parse("- a list") is None
    assert falco_config.needs_restart(None, {}) is True


def rendered_units(layout: Layout) -> list[str]:
    """Return the unit rendered for each engine, with a fake binary path."""
    return [
        systemd_unit.render(
            systemd_unit.UnitInputs(
                falco_binary=layout.root / "falco",
                config_file=layout.config_file,
                kill_binary=layout.kill_binary,
                engine_kind=kind,
                modprobe_binary=layout.modprobe_binary,
            )
        )
        for kind in ("modern_ebpf", "kmod")
    ]


def test_unit_uses_absolute_paths_only(tmp_path: Path) -> None:
    """arrange: a layout. act: render both units. assert: every Exec line is absolute."""
    for text in rendered_units(Layout(tmp_path)):
        commands = [
            line.split("=", 1)[1].lstrip("+")
            for line in text.splitlines()
            if line.startswith("Exec")
        ]
        assert commands
        assert all(command.startswith("/") for command in commands)


def test_unknown_kernel_release_is_judged_on_btf_alone(tmp_path: Path) -> None:
    """arrange: no osrelease, BTF present. act: choose modern_ebpf. assert: allowed."""
    machine = FakeMachine(tmp_path)
    (machine.root / "proc/sys/kernel/osrelease").unlink()
    layout = Layout(machine.root)

    assert kernel.choose("modern_ebpf", layout, has_driver_sources=True).engine_kind == (
        "modern_ebpf"
    )


def test_the_alert_log_directory_is_the_only_writable_exception(tmp_path: Path) -> None:
    """arrange: a layout. act: render both units. assert: strict, one logs directory."""
    layout = Layout(tmp_path)
    for text in rendered_units(layout):
        directives = [line for line in text.splitlines() if line and not line.startswith("#")]

        assert "ProtectSystem=strict" in directives
        assert "LogsDirectory=falco" in directives
        assert "LogsDirectoryMode=0750" in directives
        writable = ("ReadWritePaths", "ReadWriteDirectories", "StateDirectory", "CacheDirectory")
        assert not [line for line in directives if line.startswith(writable)]
        # /var/log/falco is where the alert log is, as layout and falco.yaml say.
        assert layout.alert_log_dir.name == "falco"
        assert layout.alert_log_dir.parent == layout.root / "var/log"
