"""The fake sidekick of the fast tests, held to the real one: same requests, same answers.

Both run in the modes the charm uses: TLS (alerts on an HTTPS port, /healthz and /metrics on
a plain one) and plain HTTP behind an ingress (one port). Status codes must match request by
request, and the counters the fake keeps must move as the real ones do.
"""

from __future__ import annotations

import json
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import Deployed
from real_unit import falco_alert, get, post
from sidekick_client import output_counts
from tls_material import issue

sys.path.insert(0, str(Path(__file__).parent.parent / "component"))
from fake_sidekick import FakeSidekick, serving

# (port, method, path, body): "alert" is the port Falco posts to, "plain" the no-TLS one.
REQUESTS = [
    ("alert", "POST", "/", "valid alert"),
    ("alert", "POST", "/", "{}"),
    ("alert", "POST", "/test", ""),
    ("alert", "GET", "/healthz", None),
    ("alert", "GET", "/metrics", None),
    ("alert", "GET", "/ping", None),
    ("plain", "POST", "/", "valid alert"),
    ("plain", "POST", "/test", ""),
    ("plain", "GET", "/healthz", None),
    ("plain", "GET", "/metrics", None),
    ("plain", "GET", "/ping", None),
]
INPUTS = "falcosecurity_falcosidekick_inputs_total"


def inputs(metrics: str) -> dict[str, float]:
    """Return the input counters by status from a text exposition."""
    found = {"accepted": 0.0, "rejected": 0.0}
    for line in metrics.splitlines():
        if line.startswith(INPUTS + "{"):
            status = line.split('status="')[1].split('"')[0]
            found[status] += float(line.rsplit(" ", 1)[1])
    return found


def answers(
    alert_base: str, plain_base: str, ca: str | None, metrics_url: str
) -> tuple[dict[str, int], dict[str, float], float]:
    """Send every request; return the status codes and how the counters moved."""
    before_inputs = inputs(get(metrics_url)[1])
    before_ok = output_counts(get(metrics_url)[1], "loki").ok
    codes = {}
    for port, method, path, body in REQUESTS:
        base = alert_base if port == "alert" else plain_base
        verify = ca if port == "alert" else None
        if body is None:
            code = get(f"{base}{path}", verify)[0]
        else:
            data = json.dumps(falco_alert("Conformance")) if body == "valid alert" else body
            code = post(f"{base}{path}", data.encode(), verify)[0]
        codes[f"{method} {port}{path} {body or ''}".strip()] = code
    # Every accepted input is delivered to Loki, a moment after its answer.
    deadline = time.monotonic() + 30
    while True:
        metrics = get(metrics_url)[1]
        moved = {
            status: inputs(metrics)[status] - before_inputs[status] for status in before_inputs
        }
        delivered = output_counts(metrics, "loki").ok - before_ok
        if delivered >= moved["accepted"] or time.monotonic() > deadline:
            return codes, moved, delivered
        time.sleep(0.05)


@contextmanager
def fake_in_mode(deployed: Deployed, directory: Path) -> Iterator[tuple[str, str, str | None]]:
    """Serve the fake as the charm's sidekick runs in ``deployed``'s mode; yield its URLs."""
    tls = None
    if deployed.tls:
        served = issue(deployed.ca, "fake", ip_addresses=("127.0.0.1",))
        (directory / "crt").write_text(served.cert_pem)
        (directory / "key").write_text(served.key_pem)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(directory / "crt", directory / "key")
    with serving(FakeSidekick(), tls=tls) as (alert_base, metrics_url):
        plain_base = metrics_url.removesuffix("/metrics")
        yield alert_base, plain_base, deployed.ca.cert_pem if tls else None


@pytest.mark.parametrize("mode", ["certificates", "ingress"])
def test_fake_sidekick_answers_as_the_real_one(
    mode: str, deployments: Callable[[str], Deployed], tmp_path: Path
) -> None:
    """arrange: real and fake sidekick in a mode. act: the same requests. assert: same answers."""
    deployed = deployments(mode)
    unit = deployed.unit
    alert_url, ca = deployed.alert_url_and_ca()
    real_plain = f"http://127.0.0.1:{unit.scrape_port()}"
    real = answers(alert_url.rstrip("/"), real_plain, ca, f"{real_plain}/metrics")

    with fake_in_mode(deployed, tmp_path) as (fake_alert, fake_plain, fake_ca):
        fake = answers(fake_alert, fake_plain, fake_ca, f"{fake_plain}/metrics")

    assert fake == real
