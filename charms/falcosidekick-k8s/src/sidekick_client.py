"""Prove the path to Loki: post a test event through the running sidekick and watch its counters.

Falcosidekick answers a posted event before any output has run, so the HTTP reply says
nothing about Loki. Its ``falcosecurity_falcosidekick_outputs_total`` counter does: one sample
per delivery attempt, labelled with the output and ``ok`` or ``error``. Reading it before and
after a ``POST /test`` tells whether Loki took the event.
"""

from __future__ import annotations

import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

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
    """What the sidekick's counters say happened to the test event."""

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

    def results(self) -> dict[str, str]:
        """Return the counters before and after, as action results."""
        return {
            "loki-ok": f"{self.before.ok:g} -> {self.after.ok:g}",
            "loki-error": f"{self.before.error:g} -> {self.after.error:g}",
            **({"result": "Loki accepted the test alert"} if self.accepted else {}),
        }

    def problem(self, timeout_s: float) -> str | None:
        """Return why the test alert did not reach Loki, or None if it did."""
        if self.failed:
            return "Loki did not accept the test alert: see falcosidekick's logs"
        if not self.accepted:
            return f"falcosidekick recorded no delivery to Loki within {timeout_s:g} s"
        return None


def output_counts(metrics_text: str, destination: str) -> OutputCounts:
    """Return the delivery counters of ``destination`` from a Prometheus text exposition."""
    values = {"ok": 0.0, "error": 0.0}
    for line in metrics_text.splitlines():
        sample = _SAMPLE.match(line)
        if not sample:
            continue
        labels = dict(_LABEL.findall(sample["labels"]))
        if labels.get("destination") == destination and labels.get("status") in values:
            values[labels["status"]] += float(sample["value"])
    return OutputCounts(ok=values["ok"], error=values["error"])


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


def tls_context(ca_pem: str) -> ssl.SSLContext:
    """Return a client context that trusts only ``ca_pem``.

    The chain is verified, not the name: the sidekick is reached on the loopback address,
    which its certificate does not (and should not) name.
    """
    context = ssl.create_default_context(cadata=ca_pem)
    context.check_hostname = False
    return context


def deliver_test_event(
    alert_base: str,
    metrics_url: str,
    ca_pem: str | None = None,
    destination: str = "loki",
    timeout_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Post a test event to ``alert_base``/test, wait for ``destination`` to record it.

    ``ca_pem`` is the CA to verify the sidekick with when it serves TLS.
    Raises DeliveryCheckError when the sidekick cannot be reached.
    """
    context = tls_context(ca_pem) if ca_pem else None
    before = output_counts(_open(metrics_url, None).decode(), destination)
    # alert_base is built by the charm from its own config: always http(s) to loopback.
    request = urllib.request.Request(f"{alert_base}/test", data=b"", method="POST")  # noqa: S310
    _open(request, context)
    deadline = time.monotonic() + timeout_s
    while True:
        delivery = Delivery(before, output_counts(_open(metrics_url, None).decode(), destination))
        if delivery.accepted or delivery.failed or time.monotonic() >= deadline:
            return delivery
        sleep(0.2)
