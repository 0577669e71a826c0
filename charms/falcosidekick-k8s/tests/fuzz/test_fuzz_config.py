"""Fuzz every config option of a sidekick in service.

Juju checks only the type of an option: any string reaches a string option, any 64-bit
integer an int option. Properties:

* whatever the values, no hook fails, the status is Active, Blocked, Waiting or Maintenance
  and says why when not Active, and at most one restart happens (exactly one when the files
  the sidekick reads changed);
* a value wrong by construction gives Blocked naming the option, and changes nothing at all:
  no container write, no relation data, the running config stays;
* a value right by construction is what the sidekick runs with.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import typing
from pathlib import Path
from typing import Any

import config
import sidekick_states as states
import yaml
from charm import FalcosidekickCharm
from garbage import huge_text
from hypothesis import given
from hypothesis import strategies as st
from ops import testing
from worlds import Outcome, World, dispatch

CTX = testing.Context(FalcosidekickCharm)
PRIORITIES = typing.get_args(config.Priority)
INT64 = {"min_value": -(2**63), "max_value": 2**63 - 1}
TENANT_ALPHABET = r"A-Za-z0-9!._*'()-"

# Right by construction ---------------------------------------------------------------------

valid_ports = st.integers(1, 65535).filter(lambda port: port != 2810)
field_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True).filter(
    lambda name: (
        not name.lower().startswith("juju_")
        and name.lower() not in config.RESERVED_FIELD_NAMES
        and not name.startswith("__")
    )
)
# A value is a short line of printable text (no control, format, unassigned or private-use
# character, no separator but the plain space inside).
field_values = st.text(
    st.characters(exclude_characters=",", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=20,
).filter(
    lambda value: value.strip() == value and not value.startswith("%") and value.isprintable()
)
# Falcosidekick ignores the case of names: two that differ only in case are one field to it.
valid_custom_fields = st.lists(
    st.tuples(field_names, field_values), max_size=4, unique_by=lambda pair: pair[0].lower()
)
valid_tenants = st.from_regex(rf"[{TENANT_ALPHABET}]{{0,150}}", fullmatch=True).filter(
    lambda tenant: tenant not in (".", "..")
)
dns_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
valid_hostnames = st.one_of(
    st.just(""),
    st.ip_addresses().filter(lambda ip: not (ip.is_unspecified or ip.is_multicast)).map(str),
    st.lists(dns_labels, min_size=1, max_size=4).map(".".join),
)

# Wrong by construction, one option at a time -------------------------------------------------

invalid_values: dict[str, st.SearchStrategy[Any]] = {
    "port": st.one_of(
        st.integers(min_value=INT64["min_value"], max_value=0),
        st.integers(min_value=65536, max_value=INT64["max_value"]),
        st.just(2810),
    ),
    "minimum-priority": st.one_of(st.text(), huge_text()).filter(lambda p: p not in PRIORITIES),
    "custom-fields": st.builds(
        lambda good, bad: ",".join([*(f"{n}:{v}" for n, v in good), bad]),
        valid_custom_fields,
        st.one_of(
            st.text(min_size=1).filter(lambda t: ":" not in t and "," not in t and t.strip()),
            field_names.map(lambda n: f"{n}:"),
            field_names.map(lambda n: f"{n}-x:value"),
            field_names.map(lambda n: f"9{n}:value"),
            field_names.map(lambda n: f"juju_{n}:value"),
            field_names.map(lambda n: f"JUJU_{n}:value"),
            st.sampled_from(sorted(config.RESERVED_FIELD_NAMES)).map(lambda n: f"{n.title()}:v"),
            field_names.map(lambda n: f"__{n}:value"),
            field_names.map(lambda n: f"{n}:a,{n.swapcase()}:b"),
            field_names.map(lambda n: f"{n}:%HOME"),
            # A value that is not a short line of printable text (issue 14).
            st.builds(
                lambda n, before, char, after: f"{n}:{before}{char}{after}",
                field_names,
                st.text("abc", min_size=1, max_size=5),
                st.sampled_from(["\n", "\r", "\t", "\x00", "\x1b", "\u2028", "\u200b"]),
                st.text("abc", min_size=1, max_size=5),
            ),
            st.builds(lambda n, size: f"{n}:{'v' * size}", field_names, st.integers(257, 2**20)),
        ),
    ),
    "loki-tenant": st.one_of(
        st.text(min_size=1).filter(lambda t: any(c.isspace() or c in "/,:@#$" for c in t)),
        st.from_regex(rf"[{TENANT_ALPHABET}]{{151,400}}", fullmatch=True),
        st.sampled_from((".", "..")),
        huge_text().map(lambda t: t + " "),
    ),
    "ingress-backend-scheme": st.one_of(st.text(), huge_text()).filter(
        lambda scheme: scheme not in ("http", "https")
    ),
    "external-hostname": st.one_of(
        st.builds(
            lambda a, sep, b: f"{a}{sep}{b}", dns_labels, st.sampled_from("/_@? "), dns_labels
        ),
        st.builds(lambda host: f"https://{host}", dns_labels),
        st.builds(lambda host: f"{host}:8443", dns_labels.filter(lambda h: not h.isdigit())),
        st.from_regex(r"[a-z]{64,80}", fullmatch=True),
        st.lists(st.from_regex(r"[a-z]{60}", fullmatch=True), min_size=5, max_size=6).map(
            ".".join
        ),
        dns_labels.map(lambda h: f"-{h}"),
        # Addresses no client connects to, or that no certificate can name (issue 14).
        st.sampled_from(["0.0.0.0", "::", "0:0::0", "224.0.0.1", "ff02::1"]),  # noqa: S104
        st.builds(
            lambda ip, zone: f"{ip}%{zone}",
            st.ip_addresses(v=6).filter(lambda ip: ip.is_link_local).map(str),
            st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True),
        ),
    ),
}

# Anything at all --------------------------------------------------------------------------------

any_string = st.one_of(st.text(), huge_text(), st.sampled_from(PRIORITIES))
any_config = st.fixed_dictionaries(
    {},
    optional={
        "port": st.one_of(
            st.integers(**INT64), st.sampled_from((0, -1, 1, 2801, 2810, 65535, 70000))
        ),
        "minimum-priority": any_string,
        "custom-fields": st.one_of(any_string, invalid_values["custom-fields"]),
        "loki-tenant": any_string,
        "external-hostname": st.one_of(any_string, valid_hostnames),
        "ingress-backend-scheme": st.one_of(any_string, st.sampled_from(("http", "https"))),
    },
)


def configured(world: World, config: dict[str, Any], tmp: Path) -> tuple[Outcome, Path]:
    """Dispatch config-changed with ``config`` on a copy of ``world``."""
    with world.copy(tmp) as (state, root):
        changed = dataclasses.replace(state, config=config)
        return dispatch(CTX, changed, CTX.on.config_changed(), root), root


@given(config=any_config)
def test_any_config_is_survived(tls_world: World, config: dict[str, Any]) -> None:
    """arrange: sidekick in service. act: config-changed with any values. assert: properties."""
    with tempfile.TemporaryDirectory() as tmp:
        outcome, _ = configured(tls_world, config, Path(tmp))

    outcome.assert_sane()
    status = outcome.out.unit_status
    if isinstance(status, testing.BlockedStatus) and status.message.startswith("invalid config"):
        outcome.assert_untouched(tls_world.state)
    else:
        outcome.assert_restarts_only_for_new_files()


@given(data=st.data(), option=st.sampled_from(sorted(invalid_values)))
def test_wrong_value_is_blocked_and_changes_nothing(
    tls_world: World, data: st.DataObject, option: str
) -> None:
    """arrange: in service. act: one option wrong, the others right. assert: Blocked, nothing.

    The message names the wrong option; the container, the relation data and the running
    config are exactly as before.
    """
    config = data.draw(right_config())
    config[option] = data.draw(invalid_values[option], label=option)

    with tempfile.TemporaryDirectory() as tmp:
        outcome, _ = configured(tls_world, config, Path(tmp))

    outcome.assert_sane()
    assert isinstance(outcome.out.unit_status, testing.BlockedStatus)
    assert outcome.out.unit_status.message.startswith(f"invalid config '{option}'")
    outcome.assert_untouched(tls_world.state)


def right_config() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "port": valid_ports,
            "minimum-priority": st.sampled_from(PRIORITIES),
            "custom-fields": valid_custom_fields.map(
                lambda pairs: ",".join(f"{n}:{v}" for n, v in pairs)
            ),
            "loki-tenant": valid_tenants,
            "external-hostname": valid_hostnames,
            "ingress-backend-scheme": st.sampled_from(("http", "https")),
        },
    )


@given(
    port=valid_ports,
    priority=st.sampled_from(PRIORITIES),
    fields=valid_custom_fields,
    tenant=valid_tenants,
    hostname=valid_hostnames,
    scheme=st.sampled_from(("http", "https")),
)
def test_right_values_are_what_the_sidekick_runs_with(
    tls_world: World,
    port: int,
    priority: str,
    fields: list[tuple[str, str]],
    tenant: str,
    hostname: str,
    scheme: str,
) -> None:
    """arrange: in service. act: every option right. assert: rendered as given, not Blocked."""
    config = {
        "port": port,
        "minimum-priority": priority,
        "custom-fields": " , ".join(f"{n}:{v}" for n, v in fields),
        "loki-tenant": tenant,
        "external-hostname": hostname,
        "ingress-backend-scheme": scheme,
    }

    with tempfile.TemporaryDirectory() as tmp:
        outcome, root = configured(tls_world, config, Path(tmp))
        rendered = yaml.safe_load((root / "falcosidekick.yaml").read_text())
    ingress = states.relation(outcome.out, "ingress").local_app_data

    outcome.assert_sane()
    outcome.assert_restarts_only_for_new_files()
    assert not isinstance(outcome.out.unit_status, testing.BlockedStatus)
    assert rendered["listenport"] == port
    assert rendered["loki"]["minimumpriority"] == priority
    assert rendered["loki"].get("tenant", "") == tenant
    assert rendered.get("customfields", {}) == dict(fields)
    assert json.loads(ingress.get("scheme", '"http"')) == scheme
    assert rendered["tlsserver"]["deploy"] is (scheme == "https")
