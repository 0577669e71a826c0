"""The Juju topology the cos-agent tests run under, and the labels it gives alert rules."""

from __future__ import annotations

MODEL_NAME = "prod"
MODEL_UUID = "00000000-0000-4000-8000-000000000001"
TOPOLOGY = {
    "model": MODEL_NAME,
    "model_uuid": MODEL_UUID,
    "application": "falco",
    "unit": "falco/0",
    "charm_name": "falco",
}
# What cosl adds to every rule built for TOPOLOGY; the receiver scopes rules by the first three.
RULE_LABELS = {
    "juju_model": MODEL_NAME,
    "juju_model_uuid": MODEL_UUID,
    "juju_application": "falco",
    "juju_charm": "falco",
}
