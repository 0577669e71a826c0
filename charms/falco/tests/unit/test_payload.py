"""The Falco payload: bundled tarball, `falco` resource override, upgrades, bad tarballs."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path

import pytest
from charm import FalcoCharm
from machine import FakeMachine, build_payload, changed_files
from ops import testing
from ops.model import ModelError
from scenario.mocking import _MockModelBackend


def payload_dirs(machine: FakeMachine) -> list[str]:
    return sorted(p.name for p in (machine.root / "opt/juju-falco").iterdir())


def test_upgrade_with_a_new_bundled_payload_restarts_exactly_once(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    charm_root: Path,
) -> None:
    """arrange: Falco 0.44.1 running. act: upgrade-charm bringing 0.44.2. assert."""
    out = ctx.run(ctx.on.install(), state)
    old = payload_dirs(machine)
    build_payload(charm_root / "payload", version="0.44.2")
    machine.clear_calls()

    out = ctx.run(ctx.on.upgrade_charm(), out)

    assert out.workload_version == "0.44.2"
    assert machine.restarts() == 1
    assert machine.systemctl_verbs().count("stop") == 1
    new = payload_dirs(machine)
    assert len(new) == 1
    assert new != old
    unit = (machine.root / "etc/systemd/system/juju-falco.service").read_text()
    assert f"ExecStart={machine.root}/opt/juju-falco/{new[0]}/usr/bin/falco" in unit


def test_attached_resource_overrides_the_bundled_payload(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, tmp_path: Path
) -> None:
    """arrange: a custom build as the falco resource. act: install. assert: it runs."""
    custom = build_payload(tmp_path / "resource", version="0.44.1-custom")
    resource = testing.Resource(name="falco", path=custom)

    out = ctx.run(ctx.on.install(), dataclasses.replace(state, resources={resource}))

    assert out.workload_version == "0.44.1-custom"
    assert out.unit_status.name == "active"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("version-fails", "falco --version failed: error while loading shared libraries"),
        ("missing-plugin", "missing usr/share/falco/plugins/libcontainer.so"),
        ("not-a-tarball", "not a readable tar archive"),
        ("two-top-dirs", "expected one top-level falco-<version>-<arch>/ directory"),
        ("escaping-path", "not a readable tar archive"),
    ],
)
def test_unusable_resource_blocks_and_leaves_running_falco_untouched(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    tmp_path: Path,
    kind: str,
    reason: str,
) -> None:
    """arrange: Falco running. act: attach an unusable resource (upgrade-charm). assert."""
    out = ctx.run(ctx.on.install(), state)
    machine.clear_calls()
    before = machine.files()
    bad = bad_tarball(tmp_path / "bad", kind)
    resource = testing.Resource(name="falco", path=bad)

    out = ctx.run(ctx.on.upgrade_charm(), dataclasses.replace(out, resources={resource}))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(f"'falco' resource refused: {reason}")
    assert machine.restarts() == 0
    assert machine.unit()["active"] is True
    # Only the charm's record of the refusal was written.
    assert changed_files(before, machine.files()) == 1
    assert (machine.root / "var/lib/juju-falco/payload-rejected.json").is_file()

    # The refusal is remembered: the next upgrade-charm with it does not unpack it again.
    machine.clear_calls()
    ctx.run(ctx.on.upgrade_charm(), out)
    assert machine.calls("falco") == []


def test_good_resource_after_a_bad_one_clears_the_refusal(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, tmp_path: Path
) -> None:
    """arrange: a refused resource. act: attach a good one. assert: Active, one restart."""
    out = ctx.run(ctx.on.install(), state)
    bad = testing.Resource(name="falco", path=bad_tarball(tmp_path / "bad", "version-fails"))
    out = ctx.run(ctx.on.upgrade_charm(), dataclasses.replace(out, resources={bad}))
    machine.clear_calls()
    good = build_payload(tmp_path / "good", version="0.44.2")

    out = ctx.run(
        ctx.on.upgrade_charm(),
        dataclasses.replace(out, resources={testing.Resource(name="falco", path=good)}),
    )

    assert out.unit_status.name == "active"
    assert out.workload_version == "0.44.2"
    assert machine.restarts() == 1


def test_payload_whose_falco_rejects_the_config_keeps_the_old_one_running(
    ctx: testing.Context[FalcoCharm], state: testing.State, machine: FakeMachine, tmp_path: Path
) -> None:
    """arrange: Falco running. act: a resource whose falco fails --dry-run. assert."""
    out = ctx.run(ctx.on.install(), state)
    old_unit = (machine.root / "etc/systemd/system/juju-falco.service").read_text()
    machine.clear_calls()
    refusing = build_payload(tmp_path / "r", version="0.44.9", behaviour="dry-run-fails")

    out = ctx.run(
        ctx.on.upgrade_charm(),
        dataclasses.replace(out, resources={testing.Resource(name="falco", path=refusing)}),
    )

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(
        "falco --dry-run rejected the rendered falco.yaml: Plugin requirement not satisfied"
    )
    assert machine.restarts() == 0
    assert (machine.root / "etc/systemd/system/juju-falco.service").read_text() == old_unit
    assert len(payload_dirs(machine)) == 2  # the running payload was not pruned

    # Idle hooks neither re-stage nor re-check the refused config.
    machine.clear_calls()
    before = machine.files()
    ctx.run(ctx.on.update_status(), out)
    assert machine.calls("falco") == []
    assert changed_files(before, machine.files()) == 0


def test_resource_get_failure_falls_back_to_the_bundled_payload(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """arrange: deployed from a local file without --resource. act: install. assert: bundled."""

    def no_resource(self: object, name: str) -> str:
        raise ModelError(f"resource {name} not found")

    monkeypatch.setattr(_MockModelBackend, "resource_get", no_resource)

    out = ctx.run(ctx.on.install(), dataclasses.replace(state, resources=frozenset()))

    assert out.workload_version == "0.44.1"
    assert out.unit_status.name == "active"


def bad_tarball(directory: Path, kind: str) -> Path:
    """Build an unusable resource of the given kind."""
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "version-fails":
        return build_payload(directory, behaviour="version-fails")
    if kind == "missing-plugin":
        return build_payload(directory, omit=("usr/share/falco/plugins/libcontainer.so",))
    path = directory / "falco.tar.gz"
    if kind == "not-a-tarball":
        path.write_bytes(b"this is not a tarball")
        return path
    with tarfile.open(path, "w:gz") as archive:
        names = {
            "two-top-dirs": ["a/usr/bin/falco", "b/usr/bin/falco"],
            "escaping-path": ["falco-0.44.1-x86_64/../../../etc/evil"],
        }[kind]
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 2
            archive.addfile(info, io.BytesIO(b"hi"))
    return path


def test_detaching_a_refused_resource_clears_the_refusal(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    tmp_path: Path,
    no_resource: testing.Resource,
) -> None:
    """arrange: a refused resource. act: attach the empty placeholder again. assert: Active."""
    out = ctx.run(ctx.on.install(), state)
    bad = testing.Resource(name="falco", path=bad_tarball(tmp_path / "bad", "version-fails"))
    out = ctx.run(ctx.on.upgrade_charm(), dataclasses.replace(out, resources={bad}))
    assert isinstance(out.unit_status, testing.BlockedStatus)

    out = ctx.run(ctx.on.upgrade_charm(), dataclasses.replace(out, resources={no_resource}))

    assert out.unit_status.name == "active"
    assert not (machine.root / "var/lib/juju-falco/payload-rejected.json").exists()


def test_going_back_to_the_running_payload_clears_a_config_refusal(
    ctx: testing.Context[FalcoCharm],
    state: testing.State,
    machine: FakeMachine,
    tmp_path: Path,
    no_resource: testing.Resource,
) -> None:
    """arrange: a payload whose falco refused the config. act: detach it. assert: Active."""
    out = ctx.run(ctx.on.install(), state)
    refusing = build_payload(tmp_path / "r", version="0.44.9", behaviour="dry-run-fails")
    resource = testing.Resource(name="falco", path=refusing)
    out = ctx.run(ctx.on.upgrade_charm(), dataclasses.replace(out, resources={resource}))
    assert isinstance(out.unit_status, testing.BlockedStatus)

    out = ctx.run(ctx.on.upgrade_charm(), dataclasses.replace(out, resources={no_resource}))

    assert out.unit_status.name == "active"
    assert out.workload_version == "0.44.1"
    assert machine.restarts() == 1
    assert len(payload_dirs(machine)) == 1
