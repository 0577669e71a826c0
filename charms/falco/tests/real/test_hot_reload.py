"""Hot reload with the real Falco running: the charm changes rules, Falco reloads by itself.

One real Falco for the module, started on the unit's live falco.yaml with only the engine
changed (``nodriver``: no kernel access) and its webserver on the port the charm's
``metrics-port`` option gives it. The charm then changes its rules through hooks, as in
production: it only ever replaces falco.yaml atomically, and Falco's ``watch_config_files``
must notice, reload in the same process, and run the new rules (read back from /metrics).
A change Falco would refuse must never reach anything Falco watches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import reload_check
from charm import FalcoCharm
from fake_tools import falco_files
from git_repos import rule
from local_net import free_port, wait_for
from ops import testing
from real_falco import HOT_RESTART_FAILURE, NodriverFalco
from real_unit import RealUnit, real_unit

# How long the charm waits for Falco to run a replaced falco.yaml before sending SIGHUP.
CONFIRM_WAIT_S = 5.0
RULE_A = rule("Reload rule A", "/etc/reload-a")
RULE_B = rule("Reload rule B", "/etc/reload-b")
RULE_C = rule("Reload rule C", "/etc/reload-c")
REFUSED = rule("Refused rule", "/etc/refused").replace("fd.name =", "fd.nme =")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(name="unit", scope="module")
def unit_fixture(
    tmp_path_factory: pytest.TempPathFactory, real_charm_root: Path
) -> Iterator[RealUnit]:
    base = tmp_path_factory.mktemp("reload")
    # The charm confirms each reload on the real Falco's /metrics (reload_check).
    with (
        real_unit(base, real_charm_root, real_metrics=True) as unit,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr(FalcoCharm, "reload_wait_s", CONFIRM_WAIT_S)
        unit.install(**{"metrics-port": free_port(), "custom-rules": RULE_A})
        yield unit


@pytest.fixture(name="falco", scope="module")
def falco_fixture(unit: RealUnit) -> Iterator[NodriverFalco]:
    falco = NodriverFalco(unit.falco, unit.config_file, unit.machine.base / "falco.log")
    falco.start()
    # The fake systemd's ExecReload signals this Falco, as `kill -HUP $MAINPID` would.
    unit.machine.set_knob("systemd", "main_process", falco.pid)
    yield falco
    falco.stop()


def options(unit: RealUnit, **changes: object) -> dict[str, object]:
    return {**unit.state.config, **changes}


def running_rules(unit: RealUnit, inline: str) -> dict[str, str]:
    """The rules files Falco should report running: the defaults, the self-test's, ``inline``."""
    marker = unit.layout.self_test_rules_dir / "self-test-debug.yaml"
    return {
        "falco_rules.yaml": sha256(unit.payload.default_rules.read_text()),
        marker.name: sha256(marker.read_text()),
        "custom-rules.yaml": sha256(inline),
    }


def alert_log(unit: RealUnit) -> str:
    path = unit.layout.alert_log_file
    return path.read_text() if path.exists() else ""


def test_falco_runs_on_the_charms_config(unit: RealUnit, falco: NodriverFalco) -> None:
    """arrange: the unit installed. act: start the real Falco on it. assert: its rules."""
    assert falco.port == unit.state.config["metrics-port"]
    assert falco.rules_files_sha256() == running_rules(unit, RULE_A)
    assert falco.restarts() == 0


def test_what_falco_reports_running_is_what_the_charm_and_the_fake_expect(
    unit: RealUnit, falco: NodriverFalco
) -> None:
    """arrange: Falco on the live config. act: read its /metrics. assert: as the charm computes.

    The charm's expectation (reload_check.expected), the fake machine's Falco
    (fake_tools.falco_files) and the real Falco's /metrics must name the same files with
    the same digests: base names, sha256 of the bytes, each file of a folder.
    """
    running = reload_check.scrape(falco.port)
    fake = falco_files(unit.config_file)

    assert running is not None
    assert running == reload_check.expected(unit.layout, unit.live_config())
    assert fake is not None
    assert (fake["config"], fake["rules"]) == (
        [list(pair) for pair in running.config],
        [list(pair) for pair in running.rules],
    )
    assert fake["port"] == falco.port


def test_a_rules_change_is_one_hot_reload_in_the_same_process(
    unit: RealUnit, falco: NodriverFalco
) -> None:
    """arrange: Falco running rules A. act: set rules B. assert: reloaded once, same PID."""
    pid, restarts, starts = falco.pid, falco.restarts(), unit.machine.restarts()

    unit.configure(**options(unit, **{"custom-rules": RULE_B}))

    falco.wait_for_rules(running_rules(unit, RULE_B), restarts + 1)
    assert (falco.pid, falco.alive()) == (pid, True)
    assert falco.restarts() == restarts + 1
    # The charm restarted nothing and sent no signal: Falco's own watcher did it all.
    assert unit.machine.restarts() == starts
    assert HOT_RESTART_FAILURE not in alert_log(unit)


def test_a_rule_selection_change_is_a_hot_reload(unit: RealUnit, falco: NodriverFalco) -> None:
    """arrange: Falco running. act: disable a tag. assert: new config sha, same PID."""
    pid, restarts = falco.pid, falco.restarts()
    before = falco.config_files_sha256()

    unit.configure(**options(unit, **{"disabled-rules": "tag:network"}))

    wanted = {"falco.yaml": sha256(unit.config_file.read_text())}
    assert wanted != before
    wait_for("Falco to run the new falco.yaml", lambda: falco.config_files_sha256() == wanted)
    assert (falco.pid, falco.restarts()) == (pid, restarts + 1)
    assert "Disabling rules with tag: network" in falco.log_text()


def test_a_refused_change_never_reaches_falco(unit: RealUnit, falco: NodriverFalco) -> None:
    """arrange: Falco running rules B. act: refused rules, then C. assert: one reload (C)."""
    unit.configure(**options(unit, **{"custom-rules": RULE_B}))
    falco.wait_for_rules(running_rules(unit, RULE_B), falco.restarts())
    pid, restarts = falco.pid, falco.restarts()

    unit.configure(**options(unit, **{"custom-rules": REFUSED}))
    assert isinstance(unit.status, testing.BlockedStatus)
    # Then a good change: once Falco runs it, any reload the refused one caused is over.
    unit.configure(**options(unit, **{"custom-rules": RULE_C}))

    falco.wait_for_rules(running_rules(unit, RULE_C), restarts + 1)
    assert (falco.pid, falco.restarts()) == (pid, restarts + 1)
    assert HOT_RESTART_FAILURE not in alert_log(unit)
    assert HOT_RESTART_FAILURE not in falco.log_text()


def test_changes_faster_than_falco_reloads_end_on_the_last(
    unit: RealUnit, falco: NodriverFalco
) -> None:
    """arrange: Falco running. act: three changes in a row. assert: last runs, no failure."""
    pid = falco.pid

    for inline in (RULE_A, RULE_B, RULE_C + RULE_A.replace("rule A", "rule D")):
        unit.configure(**options(unit, **{"custom-rules": inline}))

    wait_for(
        "Falco to run the last rules",
        lambda: falco.rules_files_sha256() == running_rules(unit, inline),
    )
    assert falco.pid == pid
    assert HOT_RESTART_FAILURE not in alert_log(unit)


def test_a_deleted_rules_file_is_put_back_and_falco_runs_it_again(
    unit: RealUnit, falco: NodriverFalco
) -> None:
    """arrange: Falco running custom rules. act: delete the live file; update-status.

    assert: Falco drops the rules on its own (its watch fires) and does not see a file
    recreated in place; the charm's next hook writes the set again to a new directory and
    replaces falco.yaml: one more reload, and Falco runs the custom rules again.
    """
    inline = str(unit.state.config["custom-rules"])
    falco.wait_for_rules(running_rules(unit, inline), falco.restarts())
    pid, restarts = falco.pid, falco.restarts()
    watched = Path(unit.live_config()["rules_files"][-1])

    watched.unlink()
    # The default rules and the charm's self-test rule stay.
    without_custom = running_rules(unit, inline)
    del without_custom["custom-rules.yaml"]
    falco.wait_for_rules(without_custom, restarts + 1)
    unit.run(unit.ctx.on.update_status())

    falco.wait_for_rules(running_rules(unit, inline), restarts + 2)
    assert (falco.pid, falco.restarts()) == (pid, restarts + 2)
    assert Path(unit.live_config()["rules_files"][-1]).parent.name.endswith("-1")
    assert HOT_RESTART_FAILURE not in alert_log(unit)


def test_the_checks_above_see_a_refusal_that_reaches_falco(
    unit: RealUnit, falco: NodriverFalco
) -> None:
    """arrange: Falco running. act: break a watched file by hand. assert: Falco says so."""
    pid, running = falco.pid, falco.rules_files_sha256()
    watched = Path(unit.live_config()["rules_files"][-1])
    bad = watched.with_name(".bad.tmp")
    bad.write_text(REFUSED)

    bad.replace(watched)  # what the charm must never do: a refused file where Falco watches

    wait_for("the hot restart failure alert", lambda: HOT_RESTART_FAILURE in alert_log(unit))
    assert falco.pid == pid
    assert falco.rules_files_sha256() == running


def test_a_refused_file_put_there_by_hand_is_repaired_by_the_next_hook(
    unit: RealUnit, falco: NodriverFalco
) -> None:
    """arrange: a refused file put where Falco watches. act: update-status. assert: mended.

    The test above left it there: Falco's reload failed and the old rules run. The next hook
    writes the set again, and Falco runs it after one reload.
    """
    inline = str(unit.state.config["custom-rules"])
    pid, restarts = falco.pid, falco.restarts()

    unit.run(unit.ctx.on.update_status())

    falco.wait_for_rules(running_rules(unit, inline), restarts + 1)
    assert falco.pid == pid


def test_a_reload_falco_missed_after_a_failed_one_is_completed_by_sighup(
    unit: RealUnit, falco: NodriverFalco
) -> None:
    """arrange: Falco's file watches lost after a failed reload. act: a rules change.

    A falco.yaml naming a plugin library that does not exist is put in place by hand: the
    reload fails and Falco keeps its config, and its watches; the charm's own file put back
    is not seen. Then the charm applies new rules with a hot reload. assert: Falco does not
    see the new falco.yaml; the charm finds the old digests on /metrics, sends one SIGHUP
    (systemctl reload), and Falco runs the new rules in the same process; no restart.
    """
    falco.wait_until_settled()
    pid, failures = falco.pid, alert_log(unit).count(HOT_RESTART_FAILURE)
    charms = unit.config_file.read_text()
    for text in (charms.replace("libcontainer.so", "libnowhere.so"), charms):
        scratch = unit.config_file.with_name(".by-hand")
        scratch.write_text(text)
        scratch.replace(unit.config_file)
        if text != charms:  # Falco's watcher reloads, and fails on the plugin
            wait_for(
                "the failed reload",
                lambda: alert_log(unit).count(HOT_RESTART_FAILURE) > failures,
            )
    falco.wait_until_settled()
    unit.machine.clear_calls()
    inline = RULE_A.replace("rule A", "rule E")

    unit.configure(**options(unit, **{"custom-rules": inline}))

    falco.wait_for_rules(running_rules(unit, inline), falco.restarts())
    assert unit.machine.systemctl_verbs().count("reload") == 1
    assert unit.machine.restarts() == 0
    assert falco.pid == pid
