"""Converge the Falco service on the machine to the wanted files. No Ops.

Render, compare with what is on disk, act only on a difference: nothing at all when nothing
changed; a hot reload when only what Falco reloads by itself changed; one restart when the
unit, the binary, the engine or the outputs changed.

What systemd reports is a difference too: a Falco that should run but is stopped or failed
(a start that failed, a hook killed between stop and start, systemd's start limit reached)
is started again, with the back-off of ``start_backoff``. A Falco that exited and that
systemd is about to restart by itself is left to systemd. The unit's state is read once per
hook (``systemd_facts.UnitProbe``) and again only after the charm started or stopped it.

A hot reload is Falco's own: with ``watch_config_files`` it notices the atomic replacement of
falco.yaml, validates the new file and restarts inside the same process (keeping the old
config if validation fails). Sending SIGHUP as well would reload twice, so the charm never
does. For a restart the service is stopped before the files change, so that the watcher does
not start a reload the restart would cut short.

Custom rules are a candidate until Falco accepts them (``-V`` on each file in load order,
then ``--dry-run`` on the whole config). A refused candidate is remembered by fingerprint and
the rest of the change goes ahead with the rules that run now (last known good).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import coexistence
import custom_rules
import falco_cli
import falco_config
import progress
import records
import reload_check
import rule_store
import self_test
import start_backoff
import steady
import systemd_unit
from alert_destination import Destination
from charmlibs import systemd
from client_tls import ClientMaterial
from layout import SERVICE_NAME, Layout
from payload import Payload
from rule_store import RuleSet, RulesFile
from systemd_facts import UnitFacts, UnitProbe

logger = logging.getLogger(__name__)
# How statuses name the payload's default rules file.
DEFAULT_RULES = "default rules"
SELF_TEST_RULE = "the self-test rule"

if TYPE_CHECKING:
    from config import FalcoConfig


class Action(enum.Enum):
    """What converging did to the running Falco."""

    NONE = "none"
    RELOAD = "reload"
    RESTART = "restart"


@dataclass(frozen=True)
class Desired:
    """The files Falco should run with."""

    falco_binary: Path
    config: dict[str, Any]
    config_text: str
    unit_text: str
    http_ca_pem: str | None = None
    # The client certificate chain and key Falco presents; None when it presents none.
    client: ClientMaterial | None = None
    rule_set: RuleSet = dataclasses.field(default_factory=RuleSet)
    # Rules files to check with `falco -V` before going live, in load order.
    checked_rules: tuple[RulesFile, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What converging did, and why it stopped short if it did."""

    action: Action = Action.NONE
    problem: str | None = None
    # Why the candidate custom rules were refused (the running ones stayed).
    rules_problem: str | None = None


@dataclass(frozen=True)
class Runtime:
    """What converging reads from the machine besides files, and when it runs."""

    unit: UnitProbe
    now: float = 0.0
    # An operator's change: a Falco that keeps failing is started at once, without back-off.
    operator_action: bool = False
    # What the Falco listening on a port runs (its /metrics), to confirm a hot reload.
    running_files: Callable[[int], reload_check.Running | None] = reload_check.scrape
    reload_wait_s: float = reload_check.WAIT_S
    # Announces a long step (progress).
    report: progress.Report = progress.silent


@dataclass(frozen=True)
class Inputs:
    """Everything besides the custom rules that falco.yaml and the unit depend on."""

    config: FalcoConfig
    payload: Payload
    engine_kind: str
    topology: falco_config.Topology
    destination: Destination
    # This unit's client certificate (client_certificate), presented where alerts go.
    client: ClientMaterial | None = None


def desired(layout: Layout, inputs: Inputs, rule_set: RuleSet) -> Desired:
    """Return the files Falco should run with for ``inputs`` and ``rule_set``."""
    config, current = inputs.config, inputs.payload
    http = inputs.destination.http
    # Written only where it is presented: with no destination, no key on disk.
    client = inputs.client if http is not None else None
    if http is not None and client is not None:
        http = dataclasses.replace(
            http, client_cert=layout.client_cert_file, client_key=layout.client_key_file
        )
    marker_rule = self_test.rules_file(layout, config.minimum_priority)
    rules = falco_config.RuleInputs(
        extra_rules=tuple(rule_store.load_paths(layout, rule_set)),
        charm_rules=(marker_rule,),
        # The self-test works whatever disabled-rules says: its rule matches only the
        # charm's own marker files (self_test).
        always_enabled=(self_test.RULE_NAME,),
        selection=config.rule_selection,
        minimum_priority=config.minimum_priority,
        overrides=tuple(custom_rules.override_documents(rule_set)),
    )
    checked = rule_store.rules_files(layout, rule_set)
    if not rule_set.empty:
        # The defaults come first so that overrides of default rules resolve; checked even
        # with config overrides alone, which can break them (append_output fields). The
        # custom rules may override the marker rule, so it comes before them too.
        checked[:0] = [
            RulesFile(DEFAULT_RULES, current.default_rules),
            RulesFile(SELF_TEST_RULE, marker_rule),
        ]
    data = falco_config.build(
        falco_config.ConfigInputs(
            payload=current,
            engine_kind=inputs.engine_kind,
            buffer_size_preset=config.buffer_size_preset,
            outputs_queue_capacity=config.outputs_queue_capacity,
            topology=inputs.topology,
            http=http,
            rules=rules,
            metrics_port=config.metrics_port,
            alert_log=layout.alert_log_file if config.alert_log else None,
        )
    )
    unit = systemd_unit.render(
        systemd_unit.UnitInputs(
            falco_binary=current.falco_binary,
            config_file=layout.config_file,
            kill_binary=layout.kill_binary,
            engine_kind=inputs.engine_kind,
            modprobe_binary=layout.modprobe_binary,
            hidden_trust_store=layout.system_ca_dir if inputs.destination.ca_pem else None,
        )
    )
    return Desired(
        falco_binary=current.falco_binary,
        config=data,
        config_text=falco_config.render(data),
        unit_text=unit,
        http_ca_pem=inputs.destination.ca_pem,
        client=client,
        rule_set=rule_set,
        checked_rules=tuple(checked),
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` atomically, so no reader (Falco's watcher) sees half a file.

    The scratch file is created with ``mode``: a private key is never readable by others,
    not even for the moment between writing and renaming.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.unlink(missing_ok=True)
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    scratch.chmod(mode)  # os.open's mode is filtered by the umask
    os.replace(scratch, path)


def _sync(path: Path, text: str | None, mode: int = 0o644) -> None:
    """Make ``path`` hold ``text`` (absent for None), touching it only if it differs."""
    if _read(path) == text:
        return
    if text is None:
        path.unlink(missing_ok=True)
    else:
        _write(path, text, mode)


def _client_files(layout: Layout, desired: Desired) -> dict[Path, tuple[str | None, int]]:
    """Return the client certificate files: path -> (content, None for absent; mode)."""
    client = desired.client
    return {
        layout.client_cert_file: (client.chain if client else None, 0o644),
        layout.client_key_file: (client.key if client else None, 0o600),
    }


def _client_differs(layout: Layout, desired: Desired) -> bool:
    return any(_read(path) != text for path, (text, _) in _client_files(layout, desired).items())


def _reset_failed() -> None:
    """Clear systemd's start limit so a fixed config can start a unit that gave up."""
    systemctl = shutil.which("systemctl")
    if systemctl is not None:
        # Fixed arguments, absolute path; no shell.
        subprocess.run(  # noqa: S603
            [systemctl, "reset-failed", SERVICE_NAME], capture_output=True, check=False
        )


def _start(facts: UnitFacts) -> None:
    """Start the service now, whatever state systemd holds it in; raise SystemdError."""
    if facts.failed:
        _reset_failed()
    # `restart`, not `start`: a Falco that exited is waiting for its restart timer
    # (RestartSec=) and `start` would block the hook until the timer fires; `restart` starts
    # it now. Type=simple: success means Falco was started, not that it stays up; the next
    # hook reads what systemd saw.
    systemd.service_restart(SERVICE_NAME)


def _port_problem(layout: Layout, port: int, facts: UnitFacts) -> str | None:
    """Return why Falco must not be started: another process on its port (coexistence)."""
    return coexistence.port_problem(layout, port, facts.main_pid)


def _port(desired: Desired) -> int:
    return int(desired.config["webserver"]["listen_port"])


def _restart(layout: Layout, desired: Desired, unit_changed: bool, runtime: Runtime) -> Outcome:
    facts = runtime.unit.facts()
    taken = _port_problem(layout, _port(desired), facts)
    if taken is not None:
        layout.staged_config_file.unlink(missing_ok=True)
        return Outcome(problem=taken)
    try:
        if facts.running:
            systemd.service_stop(SERVICE_NAME)
        _sync(layout.http_ca_file, desired.http_ca_pem)
        for path, (text, mode) in _client_files(layout, desired).items():
            _sync(path, text, mode)
        os.replace(layout.staged_config_file, layout.config_file)
        _sync(layout.unit_file, desired.unit_text)
        if unit_changed:
            systemd.daemon_reload()
            systemd.service_enable(SERVICE_NAME)
        _start(facts)
    except systemd.SystemdError as exc:
        return Outcome(Action.RESTART, problem=f"systemd could not start Falco: {exc}")
    finally:
        runtime.unit.forget()
    return Outcome(Action.RESTART)


def _recover(layout: Layout, port: int, runtime: Runtime) -> Outcome:
    """Start a Falco that should run and that nothing else will start (module doc)."""
    facts = runtime.unit.facts()
    if facts.running:
        start_backoff.forget(layout)
        return Outcome()
    if not facts.stopped or not layout.unit_file.exists():
        return Outcome()
    taken = _port_problem(layout, port, facts)
    if taken is not None:
        return Outcome(problem=taken)
    if not start_backoff.due(layout, runtime.now, runtime.operator_action):
        return Outcome()
    attempts = start_backoff.record_start(layout, runtime.now)
    logger.warning(
        "Falco is %s (%s, %s): starting it (start %d since it last ran)",
        facts.state,
        facts.active_state,
        facts.result or "no result",
        attempts.count,
    )
    try:
        _start(facts)
    except systemd.SystemdError as exc:
        return Outcome(Action.RESTART, problem=f"systemd could not start Falco: {exc}")
    finally:
        runtime.unit.forget()
    return Outcome(Action.RESTART)


def _rejection_path(layout: Layout) -> Path:
    return layout.state_dir / "config-rejected.json"


def config_rejection(layout: Layout) -> str | None:
    """Return why Falco refused the config the charm last wanted, if it did."""
    return records.field(_rejection_path(layout), "reason")


def _rules_problem(layout: Layout, desired: Desired) -> str | None:
    """Return Falco's verdict on the rules to check, naming the operator's file at fault.

    Falco reports an error on the file it was loading, which is not always where the
    operator must look: the rule it names may come from an earlier file, and when the
    default rules or the config itself fail, only the repository's config overrides
    (merged into the staged falco.yaml) can be the cause.
    """
    staged = layout.staged_config_file
    verdict = falco_cli.validate_rules(
        desired.falco_binary, staged, [rules.path for rules in desired.checked_rules]
    )
    if verdict.ok:
        return None
    names = {str(rules.path): rules.name for rules in desired.checked_rules}
    names[str(staged)] = "falco.yaml"
    culprit_file = verdict.file
    culprit = names.get(culprit_file or "", culprit_file or "rules")
    overrides = [source.name for source in desired.rule_set.overrides]
    if overrides and culprit in (DEFAULT_RULES, SELF_TEST_RULE, "falco.yaml"):
        culprit, culprit_file = ", ".join(overrides), None
    item = verdict.item
    if item and verdict.item_file and verdict.item_file != culprit_file:
        item += f" in {names.get(verdict.item_file, Path(verdict.item_file).name)}"
    return f"{culprit}: {verdict.message}" + (f" ({item})" if item else "")


def _check(layout: Layout, desired: Desired, record: Path, runtime: Runtime) -> str | None:
    """Stage ``desired`` and check it with its binary; return the problem, if any.

    Validation happens before anything goes live, so the running Falco keeps its files when
    it fails. A refusal is remembered in ``record`` by content digest: the same config is not
    staged and checked again on every hook, which would write files on hooks that change
    nothing.
    """
    fingerprint = hashlib.sha256(
        f"{desired.falco_binary}\0{desired.config_text}".encode()
    ).hexdigest()
    recorded = records.read(record) or {}
    if recorded.get("sha256") == fingerprint:
        return str(recorded.get("reason"))
    rule_store.ensure_written(layout, desired.rule_set)
    _write(layout.staged_config_file, desired.config_text)
    checked = "the custom rules and falco.yaml" if desired.checked_rules else "falco.yaml"
    with progress.step(runtime.report, f"validating {checked} with Falco"):
        problem = _rules_problem(layout, desired) if desired.checked_rules else None
        if problem is None:
            check = falco_cli.dry_run(desired.falco_binary, layout.staged_config_file)
            if check.ok:
                record.unlink(missing_ok=True)
                return None
            problem = f"falco --dry-run rejected the rendered falco.yaml: {check.message}"
    layout.staged_config_file.unlink(missing_ok=True)
    records.write(record, {"sha256": fingerprint, "reason": problem})
    return problem


def _apply(layout: Layout, desired: Desired, runtime: Runtime) -> Outcome:
    """Put the checked, staged config live with the least disruption."""
    current_config = _read(layout.config_file)
    unit_changed = _read(layout.unit_file) != desired.unit_text
    # Falco reads the CA and the client certificate when it starts only.
    ca_changed = _read(layout.http_ca_file) != desired.http_ca_pem
    ca_changed = ca_changed or _client_differs(layout, desired)
    running = runtime.unit.facts().running
    current = falco_config.parse(current_config) if current_config is not None else None
    if (
        unit_changed
        or ca_changed
        or not running
        or falco_config.needs_restart(current, desired.config)
    ):
        return _restart(layout, desired, unit_changed, runtime)
    os.replace(layout.staged_config_file, layout.config_file)
    return _confirm_reload(layout, desired, runtime)


def _confirm_reload(layout: Layout, desired: Desired, runtime: Runtime) -> Outcome:
    """Make sure Falco runs the falco.yaml just replaced: SIGHUP, then restart if not.

    Falco reports what it runs on /metrics (reload_check explains why it may not run it).
    """
    port = int(desired.config["webserver"]["listen_port"])
    wanted = reload_check.expected(layout, desired.config)

    def confirmed() -> bool:
        return reload_check.wait_until_running(
            runtime.running_files, port, wanted, runtime.reload_wait_s
        )

    if confirmed():
        return Outcome(Action.RELOAD)
    logger.warning(
        "Falco does not run the new falco.yaml %.0f s after it was replaced (after a failed "
        "reload its file watches are lost): sending it SIGHUP",
        runtime.reload_wait_s,
    )
    try:
        systemd.service_reload(SERVICE_NAME)
        if confirmed():
            logger.warning("Falco runs the new falco.yaml after SIGHUP")
            return Outcome(Action.RELOAD)
    except systemd.SystemdError as exc:
        logger.warning("systemctl reload %s failed: %s", SERVICE_NAME, exc)
    logger.warning("Falco still does not run the new falco.yaml: restarting it")
    try:
        _start(runtime.unit.facts())
    except systemd.SystemdError as exc:
        return Outcome(Action.RESTART, problem=f"systemd could not restart Falco: {exc}")
    finally:
        runtime.unit.forget()
    return Outcome(Action.RESTART)


def _differs(layout: Layout, desired: Desired) -> bool:
    return (
        _read(layout.config_file) != desired.config_text
        or _read(layout.unit_file) != desired.unit_text
        or _read(layout.http_ca_file) != desired.http_ca_pem
        or _client_differs(layout, desired)
    )


def converge(
    layout: Layout, desired: Desired, runtime: Runtime, fallback: Desired | None = None
) -> Outcome:
    """Bring the service to ``desired`` with the least disruption; see the module doc.

    ``fallback`` is the same wanted state with the custom rules that run now: when the rules
    of ``desired`` are new and Falco refuses them, the service converges to ``fallback``.
    """
    if fallback is not None and fallback.config_text != desired.config_text:
        problem = _check(layout, desired, layout.rules_rejection, runtime)
        if problem is None:
            outcome = _apply(layout, desired, runtime)
            if outcome.problem is None:
                # The set Falco watched until now stays until the next change (module doc
                # of rule_store); anything older is no longer watched by anyone.
                keep = {desired.rule_set, fallback.rule_set}
                rule_store.prune(layout, {rule_store.directory(layout, s) for s in keep})
            return outcome
        return dataclasses.replace(_converge(layout, fallback, runtime), rules_problem=problem)
    # No new rules are pending, so an earlier refusal of rules is no longer current.
    layout.rules_rejection.unlink(missing_ok=True)
    return _converge(layout, desired, runtime)


def _converge(layout: Layout, desired: Desired, runtime: Runtime) -> Outcome:
    if not _differs(layout, desired):
        # What runs is what is wanted, so an earlier refusal is no longer current.
        _rejection_path(layout).unlink(missing_ok=True)
        return _recover(layout, _port(desired), runtime)
    problem = _check(layout, desired, _rejection_path(layout), runtime)
    if problem is not None:
        return dataclasses.replace(_recover(layout, _port(desired), runtime), problem=problem)
    return _apply(layout, desired, runtime)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _identity(layout: Layout, inputs: Inputs, sources: custom_rules.Sources) -> str:
    """Return the digest of everything ``desired`` renders from (steady.py)."""
    destination = inputs.destination
    ca_pem = destination.ca_pem
    client = inputs.client
    return steady.digest(
        {
            "client": _sha256(f"{client.chain}\0{client.key}") if client else None,
            "root": str(layout.root),
            "options": inputs.config.model_dump_json(),
            "payload": dataclasses.asdict(inputs.payload),
            "engine": inputs.engine_kind,
            "topology": dataclasses.asdict(inputs.topology),
            "http": dataclasses.asdict(destination.http) if destination.http else None,
            "ca": _sha256(ca_pem) if ca_pem else None,
            "rules": sources.identity(),
        }
    )


def _remember(
    layout: Layout, identity: str, outcome: Outcome, live: Desired, marker: Path
) -> None:
    """Record what the inputs converged to, or nothing when converging stopped short.

    The self-test's marker rule file and the client certificate files are checked like the
    others: Falco reads them too.
    """
    if outcome.problem is not None:
        steady.forget(layout)
        return
    wanted = {
        layout.config_file: live.config_text,
        layout.unit_file: live.unit_text,
        layout.http_ca_file: live.http_ca_pem,
        **{path: text for path, (text, _) in _client_files(layout, live).items()},
    }
    files = {str(path): None if text is None else _sha256(text) for path, text in wanted.items()}
    files[str(marker)] = steady.file_digest(marker)
    rule_set = None if live.rule_set.empty else rule_store.directory(layout, live.rule_set).name
    manifest = live.rule_set.manifest() if rule_set else {}
    steady.remember(layout, steady.Steady(identity, files, rule_set, manifest))


def apply(
    layout: Layout,
    inputs: Inputs,
    sources: custom_rules.Sources,
    runtime: Runtime,
    trust_steady: bool = True,
) -> tuple[Outcome, custom_rules.Report]:
    """Converge to the planned rules, or to the running ones if Falco refuses them.

    Returns what converging did and the custom rules' report, which is also recorded for
    the status and the refresh-rules action. When the inputs are those the machine last
    converged to and it still holds what they produced (steady.py; not ``trust_steady``
    after new charm code), only systemd's view is acted on.
    """
    identity = _identity(layout, inputs, sources)
    if trust_steady and steady.holds(layout, identity):
        outcome = _recover(layout, inputs.config.metrics_port, runtime)
        return outcome, custom_rules.read_report(layout)
    plan = custom_rules.plan(layout, sources)
    # The running set is put back whole first if its files were damaged (rule_store).
    rule_store.ensure_written(layout, plan.live)
    # The marker rule is there before any falco.yaml names it (written only if it is not).
    marker = self_test.ensure_rule(layout, inputs.config.minimum_priority)
    wanted = desired(layout, inputs, plan.candidate)
    same = plan.candidate == plan.live
    fallback = wanted if same else desired(layout, inputs, plan.live)
    outcome = converge(layout, wanted, runtime, fallback)
    previous = custom_rules.read_report(layout)
    report = custom_rules.report(layout, plan, outcome.rules_problem, previous)
    if custom_rules.write_report(layout, report) and report.problem:
        # Once per new problem, not on every hook while it lasts (the status keeps it).
        logger.error("%s", report.problem)
    live = wanted if outcome.rules_problem is None else fallback
    _remember(layout, identity, outcome, live, marker)
    return outcome, report


def purge(layout: Layout) -> None:
    """Delete every file and directory the charm created (the unit must be gone already)."""
    for path in layout.owned_paths():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def stop_and_forget(layout: Layout) -> None:
    """Stop and disable the service and delete its unit; safe to call more than once."""
    if layout.unit_file.exists():
        for step in (systemd.service_stop, systemd.service_disable):
            try:
                step(SERVICE_NAME)
            except systemd.SystemdError:
                continue
        layout.unit_file.unlink(missing_ok=True)
        systemd.daemon_reload()
