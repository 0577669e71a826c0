"""Prove the paths to the outputs: post a test event through the running sidekick, read counters.

Falcosidekick answers a posted event before any output has run, so the HTTP reply says
nothing about the outputs. Its ``falcosecurity_falcosidekick_outputs_total`` counter does:
one sample per delivery attempt, labelled with the output (``destination``) and ``ok`` or
``error``. Reading it before and after a ``POST /test`` tells what each output did with the
event. A destination's series do not exist before its first delivery (and then appear at
1), so a missing series counts as 0.

Falcosidekick sends its test event (priority Debug) to every enabled output whatever the
output's minimum priority, so every destination is expected to report.
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

OUTPUTS_METRIC = "falcosecurity_falcosidekick_outputs_total"
_SAMPLE = re.compile(rf"^{OUTPUTS_METRIC}\{{(?P<labels>[^}}]*)\}}\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_HTTP_TIMEOUT_S = 5.0


class DeliveryCheckError(Exception):
    """The test event could not be sent or its outcome could not be read."""


@dataclass(frozen=True)
class OutputCounts:
    """Delivery attempts of one output so far."""

    ok: float = 0.0
    error: float = 0.0


@dataclass(frozen=True)
class Delivery:
    """What the sidekick's counters say one output did with the test event."""

    destination: str
    before: OutputCounts
    after: OutputCounts

    @property
    def accepted(self) -> bool:
        """The output delivered at least one more event than before."""
        return self.after.ok > self.before.ok

    @property
    def failed(self) -> bool:
        """The output recorded at least one more failed delivery."""
        return self.after.error > self.before.error

    @property
    def outcome(self) -> str:
        """One word or three for the action's result."""
        if self.failed:
            return "failed"
        return "accepted" if self.accepted else "no delivery recorded"

    def results(self) -> dict[str, str]:
        """Return the counters before and after, and the outcome, as action results."""
        return {
            "ok": f"{self.before.ok:g} -> {self.after.ok:g}",
            "error": f"{self.before.error:g} -> {self.after.error:g}",
            "outcome": self.outcome,
        }

    def problem(self, timeout_s: float) -> str | None:
        """Return why the test alert did not reach the output, or None if it did."""
        if self.failed:
            return f"{self.destination} did not accept the test alert: see falcosidekick's logs"
        if not self.accepted:
            return (
                f"falcosidekick recorded no delivery to {self.destination} within {timeout_s:g} s"
            )
        return None


@dataclass(frozen=True)
class DeliveryReport:
    """What every output did with the test event."""

    deliveries: tuple[Delivery, ...]

    def of(self, destination: str) -> Delivery:
        """Return the delivery of ``destination``."""
        return next(d for d in self.deliveries if d.destination == destination)

    @property
    def settled(self) -> bool:
        """Every output has recorded an outcome."""
        return all(d.accepted or d.failed for d in self.deliveries)

    def results(self) -> dict[str, Any]:
        """Return every output's counters and outcome, and a summary when all accepted."""
        results: dict[str, Any] = {d.destination: d.results() for d in self.deliveries}
        if all(d.accepted and not d.failed for d in self.deliveries):
            names = ", ".join(d.destination for d in self.deliveries)
            results["result"] = f"every output accepted the test alert ({names})"
        return results

    def problem(self, timeout_s: float) -> str | None:
        """Return why the test alert did not reach every output, or None if it did."""
        problems = [p for d in self.deliveries if (p := d.problem(timeout_s))]
        return "; ".join(problems) or None


def output_counts(metrics_text: str, destination: str) -> OutputCounts:
    """Return the delivery counters of ``destination`` from a Prometheus text exposition."""
    return all_output_counts(metrics_text).get(destination, OutputCounts())


def all_output_counts(metrics_text: str) -> dict[str, OutputCounts]:
    """Return the delivery counters of every destination in a Prometheus text exposition."""
    values: dict[str, dict[str, float]] = {}
    for line in metrics_text.splitlines():
        sample = _SAMPLE.match(line)
        if not sample:
            continue
        labels = dict(_LABEL.findall(sample["labels"]))
        destination, status = labels.get("destination"), labels.get("status")
        if destination and status in ("ok", "error"):
            counts = values.setdefault(destination, {"ok": 0.0, "error": 0.0})
            counts[status] += float(sample["value"])
    return {name: OutputCounts(**counts) for name, counts in values.items()}


def _open(request: urllib.request.Request | str, context: ssl.SSLContext | None) -> bytes:
    # Only our own loopback URLs are opened here, never a URL from outside.
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=_HTTP_TIMEOUT_S, context=context
        ) as response:
            body: bytes = response.read()
    except (urllib.error.URLError, OSError) as exc:
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        raise DeliveryCheckError(f"cannot reach falcosidekick at {url}: {exc}") from exc
    return body


def tls_context(ca_pem: str, client_certificate: tuple[str, str] | None = None) -> ssl.SSLContext:
    """Return a client context that trusts only ``ca_pem``, presenting ``client_certificate``.

    The chain is verified, not the name: the sidekick is reached on the loopback address,
    which its certificate does not (and should not) name. ``client_certificate`` is
    (chain, key) as PEM, for a sidekick that requires client certificates.
    """
    context = ssl.create_default_context(cadata=ca_pem)
    context.check_hostname = False
    if client_certificate:
        chain, key = client_certificate
        # ssl loads a certificate and key from files only: a private directory, gone after.
        with tempfile.TemporaryDirectory(prefix="sidekick-client-") as scratch:
            chain_file, key_file = os.path.join(scratch, "c.pem"), os.path.join(scratch, "k.pem")
            for path, text in ((chain_file, chain), (key_file, key)):
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w") as file:
                    file.write(text)
            context.load_cert_chain(chain_file, key_file)
    return context


def deliver_test_event(
    alert_base: str,
    metrics_url: str,
    ca_pem: str | None = None,
    destinations: Sequence[str] = ("loki",),
    timeout_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    client_certificate: tuple[str, str] | None = None,
) -> DeliveryReport:
    """Post a test event to ``alert_base``/test, wait for each of ``destinations`` to record it.

    ``ca_pem`` is the CA to verify the sidekick with when it serves TLS, and
    ``client_certificate`` (chain, key) what to present when it requires one. Returns once
    every destination recorded an outcome, or after ``timeout_s``.
    Raises DeliveryCheckError when the sidekick cannot be reached.
    """
    context = tls_context(ca_pem, client_certificate) if ca_pem else None
    before = all_output_counts(_open(metrics_url, None).decode())
    # alert_base is built by the charm from its own config: always http(s) to loopback.
    request = urllib.request.Request(f"{alert_base}/test", data=b"", method="POST")  # noqa: S310
    _open(request, context)
    deadline = time.monotonic() + timeout_s
    while True:
        after = all_output_counts(_open(metrics_url, None).decode())
        report = DeliveryReport(
            tuple(
                Delivery(
                    name,
                    before.get(name, OutputCounts()),
                    after.get(name, OutputCounts()),
                )
                for name in destinations
            )
        )
        if report.settled or time.monotonic() >= deadline:
            return report
        sleep(0.2)
