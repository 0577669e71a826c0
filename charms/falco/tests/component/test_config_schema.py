"""Every falco.yaml variant the charm can render validates against Falco 0.44.1's schema.

The schema (``falco --config-schema``, kept in tests/reference) has ``additionalProperties:
false`` at the top level, so a misspelt or removed key fails here rather than being a warning
in Falco's log on a production machine.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import falco_config
import jsonschema
import pytest
import yaml
from falco_config import ConfigInputs, HttpDestination, Topology
from machine import reference_file
from payload import Payload

PAYLOAD = Payload(
    sha256="ab" * 32,
    directory=Path("/opt/juju-falco/payload-abababababababab"),
    falco_version="0.44.1",
    driver_version="10.2.0+driver",
)
TOPOLOGY = Topology(
    model="prod",
    model_uuid="00000000-0000-4000-8000-000000000001",
    application="falco",
    unit="falco/0",
    charm_name="falco",
)
DESTINATIONS = [
    None,
    HttpDestination(url="https://sidekick.example:2801/"),
    HttpDestination(
        url="https://10.1.2.3:2801/", ca_file=Path("/etc/juju-falco/http-endpoint-ca.pem")
    ),
]


@pytest.fixture(name="validator", scope="module")
def validator_fixture() -> jsonschema.protocols.Validator:
    schema = json.loads(reference_file("config-schema.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


@pytest.mark.parametrize(
    ("engine_kind", "http", "preset", "capacity"),
    list(itertools.product(["modern_ebpf", "kmod"], DESTINATIONS, [1, 4, 10], [1, 100_000])),
)
def test_rendered_config_validates_against_the_falco_schema(
    validator: jsonschema.protocols.Validator,
    engine_kind: str,
    http: HttpDestination | None,
    preset: int,
    capacity: int,
) -> None:
    """arrange: one combination of inputs. act: build and render. assert: schema-valid."""
    inputs = ConfigInputs(
        payload=PAYLOAD,
        engine_kind=engine_kind,
        buffer_size_preset=preset,
        outputs_queue_capacity=capacity,
        topology=TOPOLOGY,
        http=http,
    )

    document: Any = yaml.safe_load(falco_config.render(falco_config.build(inputs)))

    errors = sorted(validator.iter_errors(document), key=str)
    assert errors == []


@pytest.mark.parametrize(
    ("alert_log", "metrics_port"),
    [(None, 8765), (Path("/var/log/falco/falco-alerts.log"), 8765), (None, 1), (None, 65535)],
)
def test_outputs_and_metrics_variants_validate(
    validator: jsonschema.protocols.Validator, alert_log: Path | None, metrics_port: int
) -> None:
    """arrange: alert log on or off, a metrics port. act: build and render. assert: valid."""
    inputs = ConfigInputs(
        PAYLOAD, "modern_ebpf", 4, 100, TOPOLOGY, alert_log=alert_log, metrics_port=metrics_port
    )

    document: Any = yaml.safe_load(falco_config.render(falco_config.build(inputs)))

    assert sorted(validator.iter_errors(document), key=str) == []
    assert document["webserver"]["listen_port"] == metrics_port
    assert document["file_output"]["enabled"] is (alert_log is not None)
    assert document["stdout_output"]["enabled"] is (alert_log is None)


def test_schema_rejects_what_the_charm_must_never_render(
    validator: jsonschema.protocols.Validator,
) -> None:
    """arrange: a config with an unknown top-level key. act: validate. assert: rejected."""
    inputs = ConfigInputs(PAYLOAD, "modern_ebpf", 4, 100, TOPOLOGY)
    document = falco_config.build(inputs) | {"grpc_output": {"enabled": False}}

    assert not validator.is_valid(document)
