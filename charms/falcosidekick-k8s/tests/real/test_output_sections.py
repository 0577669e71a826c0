"""Every output the charm offers, as it renders it, started by the real Falcosidekick 2.34.1.

The charm's table of outputs (outputs.OFFERED) says which keys turn each output on and, by
its section name, which ``destination`` label its deliveries are counted under: test-alert
and the output-errors alert rule rely on both. The real binary is the judge: it runs in a
network namespace of its own (isolated_sidekick), every output pointed at a closed
loopback port, so that the test event it sends everywhere reaches nothing.

The same runs prove the facts behind the charm's refusals (outputs._output_rules,
NOT_OFFERED): if a later Falcosidekick fixes one, its test fails and says what to offer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import derive_outputs_schema
import outputs
import pytest
import real_tools
import workloads
import yaml
from isolated_sidekick import Outcome, run
from outputs_examples import CLOSED, full_section, minimal_section, secret_content
from real_unit import falco_alert
from sidekick import Settings, render_config

Run = Callable[..., Outcome]


@pytest.fixture(name="isolated", scope="module")
def isolated_fixture() -> Run:
    """Return a runner of the real sidekick in its own network namespace."""
    real_tools.require_root("a network namespace of its own needs CAP_SYS_ADMIN")
    unshare = real_tools.require("unshare", "util-linux")
    ip = real_tools.require("ip", "iproute2")
    binary = workloads.require(workloads.FALCOSIDEKICK)

    def isolated(config: dict[str, Any], **kwargs: Any) -> Outcome:
        return run(binary, config, unshare=unshare, ip=ip, **kwargs)

    return isolated


def rendered(given: dict[str, Any]) -> dict[str, Any]:
    """Return the config the charm renders for the ``outputs`` option ``given``."""
    spec = outputs.parse(yaml.safe_dump(given))
    resolved = outputs.resolve(spec, secret_content(given))
    return render_config(Settings(2801, False, outputs=resolved))


def without(section: str, key: str) -> dict[str, Any]:
    """Return ``section`` as the charm would render it, but for the enabling ``key``."""
    given = {section: minimal_section(section)}
    settings = rendered(given)[section]
    settings.pop(key)
    settings.setdefault("minimumpriority", "warning")  # the section is there, not empty
    return settings


@pytest.fixture(name="everything", scope="module")
def everything_fixture(isolated: Run) -> Outcome:
    """The real sidekick with every offered output on, after its test event."""
    config = rendered({section: minimal_section(section) for section in outputs.OFFERED})
    return isolated(config, post="/test", wait_for=set(outputs.OFFERED))


def test_every_offered_output_is_turned_on_by_what_the_charm_renders(everything: Outcome) -> None:
    """arrange: every offered output with its enabling keys. act: start. assert: all on."""
    assert everything.exit_code is None, everything.log
    assert everything.enabled == set(outputs.OFFERED)


def test_every_offered_output_counts_its_deliveries_under_its_section_name(
    everything: Outcome,
) -> None:
    """arrange: every output on. act: POST /test. assert: one attempt each, by section name.

    Every destination is a closed port (an error), but syslog over UDP, which cannot tell.
    """
    attempts = {
        destination: sum(statuses.values())
        for destination, statuses in everything.counters.items()
    }

    assert attempts == dict.fromkeys(outputs.OFFERED, 1.0)
    assert everything.counters["syslog"] == {"ok": 1.0}


@pytest.mark.parametrize("position", [0, 1])
def test_an_output_missing_any_enabling_key_is_off_without_a_word(
    isolated: Run, position: int
) -> None:
    """arrange: each output without its first (then second) enabling key. act: start.

    assert: none is on, and nothing says so but the list: the charm must refuse these.
    """
    sections = {
        section: without(section, keys[position])
        for section, keys in outputs.OFFERED.items()
        if len(keys) > position
    }

    outcome = isolated(sections)

    assert outcome.exit_code is None, outcome.log
    assert outcome.enabled == set()
    assert "[ERROR]" not in outcome.log and "[WARN" not in outcome.log


@pytest.mark.parametrize(
    ("section", "settings"),
    [
        pytest.param("syslog", {"host": "127.0.0.1", "port": "9"}, id="syslog-without-protocol"),
        pytest.param("syslog", {"host": "127.0.0.1", "port": "9", "protocol": "tls"}, id="tls"),
        pytest.param(
            "spyderbat",
            {"orguid": "o", "apikey": "k", "apiurl": f"http://{CLOSED}"},
            id="spyderbat-unreachable",
        ),
    ],
)
def test_what_the_charm_refuses_because_it_crashes_the_real_sidekick(
    isolated: Run, section: str, settings: dict[str, str]
) -> None:
    """arrange: a setting outputs.py refuses. act: start the real sidekick. assert: it dies.

    A crash at start stops every output, Loki included: hence the refusal.
    """
    outcome = isolated({section: settings})

    assert outcome.exit_code not in (None, 0), outcome.log
    assert "panic: runtime error: invalid memory address or nil pointer dereference" in (
        outcome.log
    )
    with pytest.raises(ValueError, match=rf"^{section}(\.protocol)?: "):
        outputs.parse(yaml.safe_dump({section: settings}))


def test_quickwit_index_creation_switches_the_output_off_silently(isolated: Run) -> None:
    """arrange: autocreateindex, Quickwit unreachable. act: start. assert: off, running."""
    settings = {"hostport": f"http://{CLOSED}", "autocreateindex": True}

    outcome = isolated({"quickwit": settings})

    assert outcome.exit_code is None
    assert outcome.enabled == set()
    with pytest.raises(ValueError, match=r"^quickwit\.autocreateindex: not offered"):
        outputs.parse(yaml.safe_dump({"quickwit": settings}))


@pytest.mark.parametrize("minimum", ["info", "bogus", "", "debug"])
def test_minimum_priority_names_falcosidekick_does_not_know_send_everything(
    isolated: Run, minimum: str
) -> None:
    """arrange: a webhook with a minimum priority. act: post a Debug alert. assert: sent.

    "info" (which Falco itself accepts) is not a name Falcosidekick knows: like any other
    unknown name it means "send every alert", which is why the charm refuses every name but
    its eight (and "", which means the same on purpose). That the eight do filter is shown
    with real deliveries in test_fan_out.
    """
    webhook = {"address": f"http://{CLOSED}/", "minimumpriority": minimum}
    alert = json.dumps(falco_alert("Priority probe", "Debug")).encode()

    outcome = isolated({"webhook": webhook}, post="/", body=alert, wait_for={"webhook"})

    assert outcome.counters["webhook"] == {"error": 1.0}
    refused = minimum in ("info", "bogus")
    assert (minimum.lower() not in (*outputs.PRIORITIES, "")) is refused


def test_every_key_of_every_offered_output_is_read_by_the_real_sidekick(isolated: Run) -> None:
    """arrange: every offered output with every key the charm takes, each a valid value.

    act: start the real sidekick. assert: all on, and not one error while it reads them.
    Falcosidekick logs a value it cannot read ("Error unmarshalling config", "Bad
    Endpoint") and goes on without it: the charm's schema and checks must stop such values.
    """
    config = rendered({section: full_section(section) for section in outputs.OFFERED})

    outcome = isolated(config)

    assert outcome.exit_code is None, outcome.log
    assert "[ERROR]" not in outcome.log and "[WARN" not in outcome.log, outcome.log
    assert outcome.enabled == set(outputs.OFFERED)


def test_the_types_the_schema_corrects_are_what_the_real_sidekick_reads(isolated: Run) -> None:
    """arrange: text where the schema corrects the example's type. act: start. assert.

    Each corrected key is one the real sidekick cannot read as text: it logs it and drops
    it (derive_outputs_schema.TYPE_CORRECTIONS; the example documents them as text).
    """
    text = {
        ("alertmanager", "customseveritymap"): "debug:page",
        ("alertmanager", "expiresafter"): "five minutes",
        ("alertmanager", "extraannotations"): "runbook:https://runbooks.example/falco",
        ("alertmanager", "extralabels"): "team:security",
        ("elasticsearch", "batching", "flushinterval"): "one second",
        ("grafana", "dashboardid"): "main",
        ("grafana", "panelid"): "alerts",
    }
    assert set(text) == set(derive_outputs_schema.TYPE_CORRECTIONS)
    config: dict[str, Any] = {
        "alertmanager": {"hostport": f"http://{CLOSED}"},
        "elasticsearch": {"hostport": f"http://{CLOSED}", "batching": {}},
        "grafana": {"hostport": f"http://{CLOSED}", "apikey": "k"},
    }
    for (*parents, key), value in text.items():
        section = config
        for parent in parents:
            section = section[parent]
        section[key] = value

    outcome = isolated(config)

    assert outcome.exit_code is None, outcome.log
    unread = {
        line.split("'")[1].lower()
        for line in outcome.log.splitlines()
        if line.startswith("* ") and "'" in line
    }
    assert unread == {".".join(path) for path in text}
    assert "[ERROR] : Error unmarshalling config : 7 error(s) decoding" in outcome.log
