"""The custom-fields the charm accepts and refuses, against the real Falcosidekick.

Falcosidekick lower-cases custom field names (viper) and makes them labels of its
``falco_events`` counter next to its own: a clash panics it at start, and a name that differs
from another only in case silently replaces it. The boundary the charm draws must be the real
one: every refused name (its reason being a clash) really breaks the real sidekick, and
every accepted name really runs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import config
import fake_loki
import pytest
from deployment import Deployed, deploy
from local_net import free_port
from ops import testing
from real_unit import FALCO_TOPOLOGY, falco_alert, post
from sidekick import LokiOutput, Settings
from sidekick_process import real_sidekick
from tls_material import Issued

# Reserved names in several spellings: Falcosidekick ignores case.
REFUSED_BY_CLASH = [
    "priority",
    "Rule",
    "HOSTNAME",
    "Source",
    "priority_raw",
    "K8s_Ns_Name",
    "k8s_pod_name",
    "__meta",
    "__",
]
# Close to the reserved names, but not them: the charm takes these, all at once.
ACCEPTED = {
    "environment": "prod",
    "Team": "security",
    "_x": "1",
    "rules": "r",
    "host": "h",
    "priority2": "p",
    "_priority": "q",
    "k8s_ns": "n",
    "tags": "t",
    "uuid": "u",
    "time": "t",
    "juju": "j",
    "a__b": "c",
    "sources": "s",
}
EVENTS = "falcosecurity_falcosidekick_falco_events_total"


@pytest.mark.parametrize("name", REFUSED_BY_CLASH)
def test_a_refused_name_really_panics_the_real_sidekick(name: str, tmp_path: Path) -> None:
    """arrange: a reserved name. act: the charm parses it; the real binary runs it.

    assert: the charm refuses it, naming it; the real sidekick panics at start.
    """
    with pytest.raises(ValueError, match=f"field name '{name}' "):
        config.parse_custom_fields(f"{name}:value")

    settings = Settings(free_port(), False, custom_fields={name: "value"})
    with real_sidekick(settings, tmp_path) as outcome:
        pass

    assert outcome.exit_code == 2, outcome.output
    assert "panic:" in outcome.output


def test_names_equal_but_for_case_or_juju_lose_data_in_the_real_sidekick(
    tmp_path: Path,
) -> None:
    """arrange: Team and team, and Juju_unit. act: the charm parses; the real binary runs them.

    assert: the charm refuses both; the real sidekick keeps one of Team/team, and labels a
    Falco unit's alert in Loki with the custom Juju_unit instead of the unit that raised it.
    """
    refusals = {
        "Team:a,team:b": "field names 'Team' and 'team' are the same to Falcosidekick",
        "Juju_unit:impostor": "field name 'Juju_unit' is reserved: Falco sets the juju_",
    }
    for text, reason in refusals.items():
        with pytest.raises(ValueError, match=reason):
            config.parse_custom_fields(text)

    fields = {"Team": "a", "team": "b", "Juju_unit": "impostor"}
    with fake_loki.serving() as loki:
        settings = Settings(free_port(), False, loki=LokiOutput(loki.url), custom_fields=fields)
        with real_sidekick(settings, tmp_path) as outcome:
            assert outcome.exit_code is None, outcome.output
            base = f"http://127.0.0.1:{settings.port}/"
            assert post(base, json.dumps(falco_alert("Clash")).encode())[0] == 200
            (entry,) = loki.wait_for(lambda found: bool(found))

    assert entry.labels["juju_unit"] == "impostor" != FALCO_TOPOLOGY["juju_unit"]
    assert entry.labels["team"] in ("a", "b")  # one of the two values is lost


@pytest.fixture(name="deployed", scope="module")
def deployed_fixture(ca: Issued, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    with ExitStack() as stack:
        yield deploy("gateway", ca, stack, tmp_path_factory.mktemp("fields"))


def test_every_accepted_name_runs_in_the_real_sidekick(deployed: Deployed) -> None:
    """arrange: in service. act: custom-fields with names near the reserved ones, all at once.

    assert: Active; a new real process passes its health check; an alert reaches Loki and
    the event counter with every field, under its lower-cased name.
    """
    unit = deployed.unit
    pid = deployed.pebble.sidekick_pid()
    text = ",".join(f"{name}:{value}" for name, value in ACCEPTED.items())
    assert config.parse_custom_fields(text) == ACCEPTED
    state = dataclasses.replace(unit.state, config={**unit.state.config, "custom-fields": text})

    out = unit.run(unit.ctx.on.config_changed(), state)

    assert out.unit_status == testing.ActiveStatus()
    assert deployed.pebble.sidekick_pid() != pid
    checked = json.loads(
        deployed.pebble.cli("check", "--refresh", "falcosidekick-up", "--format", "json")
    )
    assert checked["status"] == "up"
    url, ca = deployed.alert_url_and_ca()
    assert post(url, json.dumps(falco_alert("Custom fields")).encode(), ca)[0] == 200
    deployed.loki.wait_for(lambda _: bool(deployed.loki.lines_of_rule("Custom fields")))
    (entry,) = deployed.loki.lines_of_rule("Custom fields")
    lowered = {name.lower(): value for name, value in ACCEPTED.items()}
    # Loki's "tags" label stays Falco's own tags; the field is in the alert and the counter.
    assert {k: v for k, v in lowered.items() if k != "tags"}.items() <= entry.labels.items()
    assert entry.json()["output_fields"]["tags"] == "t"
    (series,) = [
        line
        for line in unit.metrics().splitlines()
        if line.startswith(EVENTS + "{") and 'rule="Custom fields"' in line
    ]
    assert all(f'{name}="{value}"' in series for name, value in lowered.items())
