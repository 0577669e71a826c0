"""The self-test: prove on one unit that an event is detected and can be delivered. No Ops.

The charm ships a marker rule, always loaded right after the default rules, that matches a
read of a file in a directory only the charm writes (``/var/lib/juju-falco/self-test/``).
The ``self-test`` action creates such a file named by a fresh random nonce, reads it, and
waits for the alert naming that file in the local copy Falco keeps of every alert: the
alert log when ``alert-log`` is on, else the unit's journal (Falco's stdout). That proves
driver, rules and outputs on this host without restarting or reloading anything: the rule
is part of the normal rule set.

Delivery is checked without sending anything fake: the running falco.yaml must have
``http_output`` on; the charm then makes a TLS handshake with the sidekick's address,
verified exactly as Falco's libcurl verifies it (the related CA file alone, or the machine's
trust store when none is related), presenting the unit's client certificate when Falco
presents one (``http_output.mtls``), connecting directly as Falco does (its systemd unit sets
no proxy variables); and Falco must not have logged a delivery error ("libcurl failed to
perform call") in its journal since the marker was read. The final proof is in Loki: the
result carries the LogQL query that finds the alert by its nonce.

The rule's priority is the ``minimum-priority`` option itself: Falco drops rules below that
level when it loads them, and the lowest level it keeps is the least alarming one at which
the marker still fires. At Critical and above the marker would look like an intrusion, so
the shipped alert rules and the dashboards' detection panels leave ``RULE_NAME`` out.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from layout import SERVICE_NAME, Layout
from messages import shorten

logger = logging.getLogger(__name__)

RULE_NAME = "Juju Falco self-test"
TAGS = ("juju", "self_test")
DEFAULT_TIMEOUT_S = 10.0
# How often the alert log is read while waiting; the latency is measured to this grain.
LOG_POLL_S = 0.05
# Each journal read runs journalctl: polled less often.
JOURNAL_POLL_S = 0.25
# How long after the alert Falco gets to report a failed POST (it posts right after it
# writes its local outputs; a refused connection or certificate fails in milliseconds).
DELIVERY_SETTLE_S = 2.0
HANDSHAKE_TIMEOUT_S = 5.0
DELIVERY_ERROR = "libcurl failed to perform call"
# Falco's rule priorities, by the names the minimum-priority option takes.
_RULE_PRIORITY = {"info": "INFORMATIONAL"}


# ------------------------------------------------------------------------------ the rule
def rule_priority(minimum_priority: str) -> str:
    """Return the marker rule's priority for ``minimum-priority``: the lowest Falco keeps."""
    name = minimum_priority.lower()
    return _RULE_PRIORITY.get(name, name.upper())


def marker_rule(marker_prefix: str, priority: str) -> str:
    """Return the marker rule matching reads of files whose path starts with ``marker_prefix``.

    The condition uses no macro of the default rules, so custom rules that redefine those
    macros cannot change what it matches. The file name is the nonce (``%fd.filename``).
    """
    if any(char in marker_prefix for char in '"\\\n'):
        raise ValueError(f"unusable marker path {marker_prefix!r}")
    rule = {
        "rule": RULE_NAME,
        "desc": (
            "The falco charm's self-test action read its marker file: proves that an event "
            "on this host reaches Falco's rules and outputs. Not an intrusion."
        ),
        "condition": (
            "evt.type in (open, openat, openat2) and evt.is_open_read=true "
            f"and fd.typechar='f' and fd.num>=0 and fd.name startswith \"{marker_prefix}\""
        ),
        "output": (
            "Juju Falco self-test marker read (nonce=%fd.filename file=%fd.name "
            "command=%proc.cmdline pid=%proc.pid user=%user.name)"
        ),
        "priority": priority,
        "tags": list(TAGS),
    }
    header = "# Rendered by the falco Juju charm: the self-test action's marker rule.\n"
    return header + yaml.safe_dump([rule], sort_keys=False, width=1000)


def rules_file(layout: Layout, minimum_priority: str) -> Path:
    """Return where the marker rule for ``minimum_priority`` lives.

    One file per priority: a new priority is a new file, written before falco.yaml names it,
    so Falco reloads once (for falco.yaml); a file it watches is never rewritten.
    """
    # Falco's /metrics names rules files by base name: this one says what it is.
    level = rule_priority(minimum_priority).lower()
    return layout.self_test_rules_dir / f"self-test-{level}.yaml"


def ensure_rule(layout: Layout, minimum_priority: str) -> Path:
    """Write the marker rule for ``minimum_priority`` if it is not there as it should be."""
    path = rules_file(layout, minimum_priority)
    wanted = marker_rule(f"{layout.self_test_dir}/", rule_priority(minimum_priority))
    try:
        current: str | None = path.read_text()
    except OSError:
        current = None
    if current != wanted:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.tmp")
        scratch.write_text(wanted)
        scratch.chmod(0o644)
        os.replace(scratch, path)
    layout.self_test_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


# ------------------------------------------------------------------------------ sources
JournalReader = Callable[[float], list[str]]


class AlertLogTail:
    """The lines Falco appends to its alert log from now on (rotation: a new file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"the alert log {path}"
        self._inode, self._offset = self._position()
        self._partial = b""

    def _position(self) -> tuple[int, int]:
        try:
            stat = self.path.stat()
        except OSError:
            return 0, 0
        return stat.st_ino, stat.st_size

    def new_lines(self) -> list[str]:
        """Return the whole lines written since the last call."""
        inode, size = self._position()
        if inode != self._inode or size < self._offset:
            self._inode, self._offset, self._partial = inode, 0, b""
        if size == self._offset:
            return []
        try:
            with self.path.open("rb") as log:
                log.seek(self._offset)
                data = log.read(size - self._offset)
        except OSError:
            return []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [line.decode(errors="replace") for line in lines]


class JournalTail:
    """Falco's stdout in its unit's journal, from a second before now on."""

    poll_s = JOURNAL_POLL_S

    def __init__(self, read: JournalReader, since: float) -> None:
        self.name = f"the journal of {SERVICE_NAME} (alert-log is off)"
        self._read = read
        self._since = since

    def new_lines(self) -> list[str]:
        """Return every line since the start, again: only the nonce's alert is looked for."""
        return self._read(self._since)


# ------------------------------------------------------------------------------ the run
def new_nonce() -> str:
    """Return a fresh nonce: 16 hex digits, the marker file's name."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Request:
    """One run of the self-test on this unit."""

    unit: str
    falco_running: bool
    read_journal: JournalReader
    timeout_s: float = DEFAULT_TIMEOUT_S
    settle_s: float = DELIVERY_SETTLE_S
    nonce: str = field(default_factory=lambda: new_nonce())


@dataclass(frozen=True)
class Outcome:
    """What the self-test found, and the first broken link if there is one."""

    nonce: str
    unit: str
    detected: bool = False
    latency_ms: int | None = None
    source: str = "none"
    rule: str = "none"
    delivered: str = "not checked"
    failure: str | None = None

    def results(self) -> dict[str, str]:
        """Return the action's results (Juju keys: lower case and hyphens)."""
        return {
            "nonce": self.nonce,
            "detected": "yes" if self.detected else "no",
            "latency-ms": str(self.latency_ms) if self.latency_ms is not None else "none",
            "source": self.source,
            "rule": self.rule,
            "delivered": self.delivered,
            "logql": f'{{juju_unit="{self.unit}"}} |= "{self.nonce}"',
        }


def _live_config(layout: Layout) -> dict[str, Any] | None:
    try:
        data = yaml.safe_load(layout.config_file.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _loads_marker(layout: Layout, config: dict[str, Any]) -> bool:
    loaded = [Path(str(entry)) for entry in config.get("rules_files") or []]
    return any(p.parent == layout.self_test_rules_dir and p.is_file() for p in loaded)


def _source(config: dict[str, Any], request: Request) -> AlertLogTail | JournalTail | None:
    file_output = config.get("file_output") or {}
    if file_output.get("enabled") and file_output.get("filename"):
        return AlertLogTail(Path(str(file_output["filename"])))
    if (config.get("stdout_output") or {}).get("enabled"):
        # A second early: the journal's --since has a second's grain in practice.
        return JournalTail(request.read_journal, time.time() - 1)
    return None


def alert_about(line: str, marker: Path) -> dict[str, Any] | None:
    """Return the alert in ``line`` if it is about ``marker``."""
    if marker.name not in line:
        return None
    try:
        alert = json.loads(line)
    except ValueError:
        return None
    if not isinstance(alert, dict):
        return None
    fields = alert.get("output_fields")
    if isinstance(fields, dict) and fields.get("fd.name") == str(marker):
        return alert
    return None


def _touch_and_read(marker: Path) -> None:
    """Create ``marker`` (never an existing file or a link) and read it: the event."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    os.close(os.open(marker, flags, 0o600))
    with marker.open("rb") as opened:
        opened.read(1)


def _wait_for_alert(
    source: AlertLogTail | JournalTail, marker: Path, request: Request
) -> tuple[dict[str, Any] | None, float]:
    """Make the event and wait for its alert; return it and the seconds it took."""
    poll = getattr(source, "poll_s", LOG_POLL_S)
    start = time.monotonic()
    deadline = start + request.timeout_s
    try:
        _touch_and_read(marker)
        while True:
            for line in source.new_lines():
                alert = alert_about(line, marker)
                if alert is not None:
                    return alert, time.monotonic() - start
            if time.monotonic() >= deadline:
                return None, time.monotonic() - start
            time.sleep(poll)
    finally:
        marker.unlink(missing_ok=True)


def run(layout: Layout, request: Request) -> Outcome:
    """Run the self-test; the outcome names the first broken link, if any."""
    outcome = Outcome(request.nonce, request.unit)
    config = _live_config(layout)
    if config is None:
        return _failed(outcome, "falco", "the charm has not configured Falco yet")
    if not request.falco_running:
        return _failed(outcome, "falco", "Falco is not running: see `juju status`")
    if not _loads_marker(layout, config):
        why = "the running falco.yaml does not load the self-test rule (run it after the hook)"
        return _failed(outcome, "rule", why)
    source = _source(config, request)
    if source is None:
        return _failed(outcome, "detection", "Falco keeps no local copy of its alerts")
    outcome = Outcome(request.nonce, request.unit, source=source.name)
    layout.self_test_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    marker = layout.self_test_dir / request.nonce
    read_at = time.time()
    alert, took = _wait_for_alert(source, marker, request)
    if alert is None:
        why = (
            f"no alert for {marker} in {source.name} within {request.timeout_s:g} s: is the "
            f"rule '{RULE_NAME}' overridden by custom rules, or Falco dropping events?"
        )
        return _failed(outcome, "detection", why)
    detected = Outcome(
        request.nonce,
        request.unit,
        detected=True,
        latency_ms=round(took * 1000),
        source=source.name,
        rule=f"{alert.get('rule')} ({alert.get('priority')})",
    )
    delivered, problem = check_delivery(config, read_at, request)
    result = dataclasses.replace(detected, delivered=delivered)
    return _failed(result, "delivery", problem) if problem else result


def _failed(outcome: Outcome, link: str, why: str) -> Outcome:
    logger.warning("self-test %s failed at %s: %s", outcome.nonce, link, why)
    return dataclasses.replace(outcome, failure=f"{link}: {why}")


# ------------------------------------------------------------------------------ delivery
def check_delivery(
    config: dict[str, Any], since: float, request: Request
) -> tuple[str, str | None]:
    """Return the ``delivered`` result and the problem, if delivery is broken."""
    http = config.get("http_output") or {}
    if not http.get("enabled") or not http.get("url"):
        return "not configured: alerts stay on this host (integrate http-endpoint)", None
    client = (
        (str(http.get("client_cert") or ""), str(http.get("client_key") or ""))
        if http.get("mtls")
        else None
    )
    problem = handshake_problem(
        str(http["url"]), str(http.get("ca_cert") or ""), str(http.get("ca_path") or ""), client
    )
    if problem is None:
        problem = falco_delivery_error(request.read_journal, since, request.settle_s)
    if problem is not None:
        return f"no: {problem}", problem
    return "yes", None


def _address(url: str) -> tuple[str, str, int]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname or "", port


def _tls_context(
    ca_file: str, ca_path: str, client: tuple[str, str] | None = None
) -> ssl.SSLContext:
    """Trust what Falco's libcurl trusts: the related CA alone, else the machine's store.

    With ``client`` (certificate and key files), present it as Falco does. TLS 1.2 at most
    then: in TLS 1.3 the server checks the client's certificate after the client has
    finished its handshake, so a refused certificate would only show on the first read;
    in TLS 1.2 the server refuses it within the handshake, which is what is checked here.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    elif ca_path:
        context.load_verify_locations(capath=ca_path)
    if client:
        context.load_cert_chain(*client)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def handshake_problem(
    url: str, ca_file: str, ca_path: str, client: tuple[str, str] | None = None
) -> str | None:
    """Return why Falco could not reach ``url`` over verified TLS; None if it can.

    ``client``: the client certificate and key files Falco presents, if it presents one.
    """
    scheme, host, port = _address(url)
    where = f"{host}:{port}"
    try:
        context = _tls_context(ca_file, ca_path, client) if scheme == "https" else None
    except (OSError, ssl.SSLError) as exc:
        what = f"the CA file {ca_file or ca_path}"
        if client:
            what += f" or the client certificate {client[0]}"
        return f"{what} cannot be read: {exc}"
    try:
        # Only the address the http-endpoint relation published, on the port it named.
        with socket.create_connection((host, port), timeout=HANDSHAKE_TIMEOUT_S) as plain:
            if context is None:
                return None
            with context.wrap_socket(plain, server_hostname=host):
                return None
    except ssl.SSLCertVerificationError as exc:
        trusted = "the related CA" if ca_file else "the machine's trust store"
        return f"{where} presents a certificate {trusted} does not verify ({exc.verify_message})"
    except ssl.SSLError as exc:
        why = shorten(exc.reason or str(exc), 120)
        # The server's alerts: bad certificate, unknown CA (Falcosidekick's for a client
        # certificate from a CA it does not trust), certificate required.
        if client and ("CERTIFICATE" in why.upper() or "UNKNOWN_CA" in why.upper()):
            return f"{where} refused this unit's client certificate ({why})"
        return f"TLS handshake with {where} failed: {why}"
    except TimeoutError:
        return f"{where} did not answer within {HANDSHAKE_TIMEOUT_S:g} s"
    except OSError as exc:
        return f"cannot connect to {where}: {exc.strerror or exc}"


def falco_delivery_error(read_journal: JournalReader, since: float, settle_s: float) -> str | None:
    """Return the delivery error Falco logged since ``since``, waiting up to ``settle_s``."""
    deadline = time.monotonic() + settle_s
    while True:
        errors = [line for line in read_journal(since) if DELIVERY_ERROR in line]
        if errors:
            said = errors[-1][errors[-1].index(DELIVERY_ERROR) :]
            return f"Falco could not post the alert: {shorten(said, 160)}"
        if time.monotonic() >= deadline:
            return None
        time.sleep(JOURNAL_POLL_S)
