"""Fuzz every remote databag of every endpoint, and the tls library's private key secret.

Remote applications are not trusted to write well-formed data. Properties, for each
endpoint:

* whatever is written, no hook fails and the status is one of the four kinds, with a
  reason when not Active;
* data wrong by construction (not JSON, wrong JSON types, missing or invalid URLs, invalid
  PEM, certificates for someone else's key, huge values) changes nothing: no container
  write, no relation data of ours, the sidekick keeps running with its last good config;
* data we never read (Falco units coming and going, the scraper's and Grafana's bags)
  changes nothing, whatever it is.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

from charm import FalcosidekickCharm
from garbage import (
    ANY_BAG,
    ANY_URL_OBJECTS,
    GOOD_URLS,
    INVALID_URL_OBJECTS,
    INVALID_URLS,
    JSON_VALUES,
    NOT_JSON,
    huge_text,
)
from hypothesis import given
from hypothesis import strategies as st
from ops import testing
from tls_material import issue, make_ca
from worlds import Outcome, World, dispatch

CTX = testing.Context(FalcosidekickCharm)
UNIT_IDS = st.integers(0, 30)


def changed(world: World, relation: testing.RelationBase, event: Any = None) -> Outcome:
    """Dispatch ``event`` (default: relation-changed) with ``relation`` in place, on a copy."""
    with tempfile.TemporaryDirectory() as tmp, world.copy(Path(tmp)) as (state, root):
        others = {r for r in state.relations if r.id != relation.id}
        new = dataclasses.replace(state, relations={*others, relation})
        return dispatch(CTX, new, event or _unit_event(relation, "changed"), root)


# ingress: the provider's app bag -------------------------------------------------------------


@given(garbage=INVALID_URL_OBJECTS, extra=ANY_BAG)
def test_ingress_garbage_changes_nothing(
    tls_world: World, garbage: str, extra: dict[str, str]
) -> None:
    """arrange: in service behind an ingress. act: the URL becomes garbage. assert: nothing."""
    relation = dataclasses.replace(
        tls_world.relation("ingress"), remote_app_data={**extra, "ingress": garbage}
    )

    outcome = changed(tls_world, relation)

    outcome.assert_sane()
    outcome.assert_untouched(tls_world.state)


@given(data=st.one_of(ANY_BAG, st.fixed_dictionaries({"ingress": ANY_URL_OBJECTS})))
def test_any_ingress_data_is_survived(tls_world: World, data: dict[str, str]) -> None:
    """arrange: in service. act: the provider writes anything. assert: sane, one restart max."""
    relation = dataclasses.replace(tls_world.relation("ingress"), remote_app_data=data)

    outcome = changed(tls_world, relation)

    outcome.assert_sane()
    outcome.assert_restarts_only_for_new_files()


# certificates: the provider's app bag ----------------------------------------------------------

_OTHER_CA = make_ca("Someone else's CA")
_OTHER_SERVER = issue(_OTHER_CA, "someone-else")
_OTHER_CERT, _OTHER_KEY = _OTHER_SERVER.cert_pem, _OTHER_SERVER.key_pem
_BAD_PEM = st.one_of(
    st.text(max_size=200),
    huge_text(),
    st.binary(min_size=1, max_size=300).map(
        lambda raw: f"-----BEGIN CERTIFICATE-----\n{raw.hex()}\n-----END CERTIFICATE-----"
    ),
    st.just(_OTHER_CERT),
)


def _provider_bags(our_csr: str) -> st.SearchStrategy[dict[str, str]]:
    """Provider bags that are broken, or answer our CSR with a certificate not for us.

    Entries are complete (every field the library requires, of the right type, so that it
    goes on to parse the PEM) or partial; request errors and capabilities are garbage too.
    """
    csr = st.one_of(st.just(our_csr), _BAD_PEM)
    fields = {
        "certificate_signing_request": csr,
        "certificate": _BAD_PEM,
        "ca": st.one_of(_BAD_PEM, st.just(_OTHER_CA.cert_pem)),
    }
    optional = {
        "chain": st.one_of(st.lists(_BAD_PEM, max_size=3), JSON_VALUES),
        "revoked": st.one_of(st.booleans(), JSON_VALUES),
    }
    entry = st.one_of(
        st.fixed_dictionaries(fields, optional=optional),
        st.fixed_dictionaries({}, optional={**fields, **optional}),
    )
    error = st.fixed_dictionaries(
        {"csr": csr},
        optional={"error": JSON_VALUES | st.just({"code": 1, "name": "x", "message": "m"})},
    )
    as_json = st.one_of(
        NOT_JSON,
        JSON_VALUES.filter(lambda v: not isinstance(v, list)).map(json.dumps),
    )
    return st.fixed_dictionaries(
        {"certificates": st.one_of(as_json, st.lists(entry, max_size=3).map(json.dumps))},
        optional={
            "request_errors": st.one_of(as_json, st.lists(error, max_size=2).map(json.dumps)),
            "capabilities": st.one_of(as_json, JSON_VALUES.map(json.dumps)),
        },
    )


@given(data=st.data())
def test_certificates_garbage_changes_nothing(tls_world: World, data: st.DataObject) -> None:
    """arrange: serving a certificate. act: the provider's bag becomes garbage. assert.

    The served certificate stays (Falco keeps posting), nothing is written anywhere.
    """
    relation = tls_world.relation("certificates")
    (our_csr,) = json.loads(relation.local_unit_data["certificate_signing_requests"])
    garbage = data.draw(_provider_bags(our_csr["certificate_signing_request"]), label="bag")
    extra = data.draw(ANY_BAG, label="extra keys")
    broken = dataclasses.replace(relation, remote_app_data={**extra, **garbage})

    outcome = changed(tls_world, broken)

    outcome.assert_sane()
    outcome.assert_untouched(tls_world.state)


@given(
    content=st.dictionaries(
        st.sampled_from(["private-key", "key", "x"]),
        st.one_of(st.text(), huge_text(), _BAD_PEM),
        max_size=2,
    ),
    hook=st.sampled_from(["update_status", "config_changed", "leader_elected"]),
)
def test_private_key_secret_with_wrong_content_loses_nothing(
    tls_world: World, content: dict[str, str], hook: str
) -> None:
    """arrange: serving. act: the tls library's key secret holds anything. assert.

    No hook fails (also those where the library loads the key itself), the sidekick keeps
    serving what it has (no container write), and the status says a new certificate is
    awaited.
    """
    (secret,) = (s for s in tls_world.state.secrets if s.label and "private-key" in s.label)
    content = content or {"": ""}
    broken = dataclasses.replace(secret, tracked_content=content, latest_content=content)
    with tempfile.TemporaryDirectory() as tmp, tls_world.copy(Path(tmp)) as (state, root):
        secrets = {s for s in state.secrets if s.id != secret.id} | {broken}
        event = getattr(CTX.on, hook)()
        outcome = dispatch(CTX, dataclasses.replace(state, secrets=secrets), event, root)

    outcome.assert_sane()
    assert outcome.files_after == outcome.files_before
    assert outcome.restarts == 0
    assert outcome.out.unit_status == testing.WaitingStatus(
        "waiting for a new certificate on 'certificates' (serving the previous one)"
    )


# send-loki-logs and logging: the provider units' bags --------------------------------------------


def _broken_unit_bags() -> st.SearchStrategy[dict[int, dict[str, str]]]:
    """Provider units none of which publishes a usable endpoint (some publish nothing).

    At least one: with none left, log targets are rightly disabled (the units are gone).
    """
    bag = st.one_of(
        st.just({}),
        st.fixed_dictionaries({"endpoint": INVALID_URL_OBJECTS}),
        ANY_BAG.filter(lambda b: "endpoint" not in b),
    )
    return st.dictionaries(UNIT_IDS, bag, min_size=1, max_size=3)


@given(
    endpoint=st.sampled_from(["send-loki-logs", "logging"]), units=_broken_unit_bags(), app=ANY_BAG
)
def test_loki_units_without_a_usable_endpoint_change_nothing(
    plain_world: World, endpoint: str, units: dict[int, dict[str, str]], app: dict[str, str]
) -> None:
    """arrange: forwarding alerts and logs to Loki. act: no unit has a usable endpoint. assert.

    The last good Loki URL and log targets stay; nothing is written.
    """
    relation = dataclasses.replace(
        plain_world.relation(endpoint), remote_units_data=units, remote_app_data=app
    )

    outcome = changed(plain_world, relation)

    outcome.assert_sane()
    outcome.assert_untouched(plain_world.state)


@given(
    endpoint=st.sampled_from(["send-loki-logs", "logging"]),
    units=st.dictionaries(
        UNIT_IDS,
        st.one_of(ANY_BAG, st.fixed_dictionaries({"endpoint": ANY_URL_OBJECTS})),
        max_size=3,
    ),
)
def test_any_loki_unit_data_is_survived(
    plain_world: World, endpoint: str, units: dict[int, dict[str, str]]
) -> None:
    """arrange: forwarding to Loki. act: units publish anything, some valid. assert: sane."""
    relation = dataclasses.replace(plain_world.relation(endpoint), remote_units_data=units)

    outcome = changed(plain_world, relation)

    outcome.assert_sane()
    outcome.assert_restarts_only_for_new_files()
    assert outcome.out.get_container("falcosidekick").service_statuses


# alertmanager: each provider unit's raw url (v1) or scheme + public_address (v0) -------------

# Alertmanager unit bags that give no usable URL: wrong by construction.
ALERTMANAGER_GARBAGE = st.one_of(
    st.fixed_dictionaries({"url": INVALID_URLS}),
    st.fixed_dictionaries(
        {
            # "http://" + it is no URL either: a space, or a host too long.
            "public_address": st.one_of(
                st.text().map(lambda text: f"am {text}"), huge_text().map(lambda t: "a" + t)
            ),
            "scheme": st.sampled_from(["http", ""]),
        }
    ),
    ANY_BAG.filter(lambda bag: not ({"url", "public_address"} & set(bag))),
)


def alertmanager(units: dict[int, dict[str, str]]) -> testing.Relation:
    return testing.Relation(
        "alertmanager", remote_app_name="alertmanager", remote_units_data=units or {0: {}}
    )


@given(units=st.dictionaries(UNIT_IDS, ALERTMANAGER_GARBAGE, min_size=1, max_size=3))
def test_alertmanager_units_without_a_usable_url_change_nothing(
    plain_world: World, units: dict[int, dict[str, str]]
) -> None:
    """arrange: in service. act: an Alertmanager whose units give no usable URL. assert.

    No Alertmanager output is made from garbage: nothing is written or restarted.
    """
    relation = alertmanager(units)
    # What Juju puts in our unit bag of any relation is there before the data comes.
    joined = dataclasses.replace(relation, remote_units_data={})
    before = dataclasses.replace(
        plain_world.state, relations={*plain_world.state.relations, joined}
    )

    outcome = changed(plain_world, relation)

    outcome.assert_sane()
    outcome.assert_untouched(before)


@given(
    units=st.dictionaries(
        UNIT_IDS,
        st.one_of(
            ALERTMANAGER_GARBAGE,
            st.fixed_dictionaries({"url": GOOD_URLS}),
            st.fixed_dictionaries(
                {
                    "public_address": GOOD_URLS.map(lambda url: url.split("://", 1)[1]),
                    "scheme": st.sampled_from(["http", "https"]),
                }
            ),
        ),
        max_size=3,
    )
)
def test_any_alertmanager_unit_data_is_survived(
    plain_world: World, units: dict[int, dict[str, str]]
) -> None:
    """arrange: in service. act: Alertmanager units publish anything. assert: sane, 1 restart."""
    outcome = changed(plain_world, alertmanager(units))

    outcome.assert_sane()
    outcome.assert_restarts_only_for_new_files()
    assert outcome.out.get_container("falcosidekick").service_statuses


# sidekick-peers: the other units' reports ----------------------------------------------------

_BAD_REPORTS = st.one_of(
    NOT_JSON,
    JSON_VALUES.filter(lambda v: not isinstance(v, dict)).map(json.dumps),
    st.fixed_dictionaries(
        {
            "scheme": st.one_of(st.text(max_size=8), JSON_VALUES).filter(
                lambda v: v not in ("http", "https")
            ),
            "port": st.integers(1, 65535),
        }
    ).map(json.dumps),
    st.fixed_dictionaries(
        {
            "scheme": st.sampled_from(("http", "https")),
            "port": st.one_of(st.integers(max_value=0), st.integers(min_value=65536), st.text()),
        }
    ).map(json.dumps),
    st.fixed_dictionaries(
        {
            "scheme": st.just("https"),
            "port": st.just(2801),
            "ca": _BAD_PEM.filter(lambda pem: pem != _OTHER_CERT),
        }
    ).map(json.dumps),
    huge_text().map(lambda text: json.dumps({"scheme": "https", "port": 2801, "ca": text})),
    # A good certificate with anything after it (issue 14): junk, or a private key.
    st.one_of(st.text(min_size=1).filter(str.strip), st.just(_OTHER_KEY)).map(
        lambda tail: json.dumps(
            {"scheme": "https", "port": 2801, "hosts": ["x"], "ca": _OTHER_CA.cert_pem + tail}
        )
    ),
)


@given(
    units=st.dictionaries(
        st.integers(1, 30),
        st.one_of(ANY_BAG, st.fixed_dictionaries({"alert-input": _BAD_REPORTS})),
        min_size=1,
        max_size=3,
    ),
    hook=st.sampled_from(["changed", "departed"]),
)
def test_peer_reports_that_cannot_be_read_change_nothing(
    tls_world: World, units: dict[int, dict[str, str]], hook: str
) -> None:
    """arrange: the leader in service. act: other units report garbage, or leave. assert.

    No hook fails; the URL and CA the leader publishes (from what it serves itself) stay;
    nothing is written anywhere.
    """
    peers = tls_world.state.get_relations("sidekick-peers")[0]
    relation = dataclasses.replace(peers, peers_data=units)

    outcome = changed(tls_world, relation, _peer_event(relation, hook))

    outcome.assert_sane()
    outcome.assert_untouched(tls_world.state)


def _peer_event(relation: testing.PeerRelation, hook: str) -> Any:
    units = sorted(relation.peers_data)
    if hook == "departed":
        gone = max(units) + 1
        return CTX.on.relation_departed(relation, remote_unit=gone, departing_unit=gone)
    return CTX.on.relation_changed(relation, remote_unit=units[0])


# data we never read ------------------------------------------------------------------------------


@given(
    units=st.dictionaries(UNIT_IDS, ANY_BAG, max_size=5),
    app=ANY_BAG,
    hook=st.sampled_from(["joined", "changed", "departed"]),
)
def test_falco_units_coming_and_going_change_nothing(
    plain_world: World, units: dict[int, dict[str, str]], app: dict[str, str], hook: str
) -> None:
    """arrange: Falco related. act: its units join, change, depart, with any data. assert: 0."""
    relation = dataclasses.replace(
        plain_world.relation("http-endpoint"), remote_units_data=units, remote_app_data=app
    )
    event = _unit_event(relation, hook)

    outcome = changed(plain_world, relation, event)

    outcome.assert_sane()
    outcome.assert_untouched(plain_world.state)


@given(
    endpoint=st.sampled_from(["metrics-endpoint", "grafana-dashboard"]),
    units=st.dictionaries(UNIT_IDS, ANY_BAG, max_size=3),
    app=ANY_BAG,
    hook=st.sampled_from(["joined", "changed", "departed"]),
)
def test_scraper_and_grafana_bags_change_nothing(
    plain_world: World,
    endpoint: str,
    units: dict[int, dict[str, str]],
    app: dict[str, str],
    hook: str,
) -> None:
    """arrange: scraped, dashboards sent. act: the consumer writes anything. assert: 0."""
    relation = dataclasses.replace(
        plain_world.relation(endpoint), remote_units_data=units, remote_app_data=app
    )

    outcome = changed(plain_world, relation, _unit_event(relation, hook))

    outcome.assert_sane()
    outcome.assert_untouched(plain_world.state)


def _unit_event(relation: testing.Relation, hook: str) -> Any:
    """Return the ``hook`` event of the first remote unit; departed when there is none."""
    units = sorted(relation.remote_units_data)
    if hook == "departed" or not units:
        gone = max(units, default=0) + 1
        return CTX.on.relation_departed(relation, remote_unit=gone, departing_unit=gone)
    return getattr(CTX.on, f"relation_{hook}")(relation, remote_unit=units[0])
