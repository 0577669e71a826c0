"""Fuzz every remote databag the charm can see: the sidekick's and the collector's.

Remote applications are not trusted to write well-formed data. Properties:

* whatever is written, no hook fails, the status is one of the four kinds, one line with a
  reason when not Active, Falco is restarted once at most, and the charm writes no relation
  data it did not write before;
* a sidekick bag wrong by construction (a URL that is not JSON, not a string, not http(s);
  a CA that is not JSON or not a PEM certificate; huge values) changes nothing: Falco keeps
  posting where it did, with the CA it had, and the status says the data was ignored;
* a CA's ``certificates`` bag of garbage changes nothing: Falco keeps presenting the client
  certificate it has;
* bags the charm never reads (the collector's, the sidekick units') change nothing at all;
* a URL that a loose parser (urllib) and a strict one read differently is refused, or Falco
  gets it in a form both read alike: one host, no backslash, blank or control character
  left for libcurl to read its own way; a plain http one says so in the status, naming
  that host.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any
from urllib.parse import urlsplit

import pydantic
import yaml
from conftest import SIDEKICK_CA
from garbage import (
    ANY_BAG,
    PARSER_SPLIT_URLS,
    any_endpoint_bags,
    certificates_provider_bags,
    invalid_endpoint_bags,
)
from hypothesis import given
from hypothesis import strategies as st
from ops import testing
from tls_material import make_ca
from worlds import Outcome, World, examples

UNIT_IDS = st.integers(0, 20)


def changed(world: World, relation: testing.Relation, hook: str = "changed") -> Outcome:
    """Dispatch ``hook`` on ``relation`` (in place of the world's) from its first unit."""
    units = sorted(relation.remote_units_data) or [0]
    event = getattr(world.ctx.on, f"relation_{hook}")(relation, remote_unit=units[0])
    return world.dispatch(event, world.with_relation(relation))


@examples(1.2)
@given(bag=invalid_endpoint_bags(SIDEKICK_CA))
def test_sidekick_garbage_changes_nothing(related_world: World, bag: dict[str, str]) -> None:
    """arrange: alerts go to the sidekick. act: its bag becomes garbage. assert: nothing.

    Falco keeps its destination and CA (no file, no restart); the status says why.
    """
    relation = dataclasses.replace(related_world.relation("http-endpoint"), remote_app_data=bag)

    outcome = changed(related_world, relation)

    outcome.assert_sane()
    outcome.assert_untouched()
    status = outcome.out.unit_status
    assert isinstance(status, testing.BlockedStatus)
    assert status.message.startswith(
        "http-endpoint data ignored (keeping the previous destination): "
    )


@examples(0.6)
@given(bag=any_endpoint_bags(SIDEKICK_CA))
def test_any_sidekick_data_is_survived(related_world: World, bag: dict[str, str]) -> None:
    """arrange: alerts go to the sidekick. act: it writes anything. assert: sane, one restart."""
    relation = dataclasses.replace(related_world.relation("http-endpoint"), remote_app_data=bag)

    outcome = changed(related_world, relation)

    outcome.assert_sane()
    outcome.assert_no_relation_writes()
    outcome.assert_at_most_one_action()
    assert outcome.reloads == 0  # where alerts go is always applied with a restart


@examples(0.6)
@given(
    units=st.dictionaries(UNIT_IDS, ANY_BAG, min_size=1, max_size=3),
    app=ANY_BAG,
    hook=st.sampled_from(["joined", "changed"]),
)
def test_collector_data_changes_nothing(
    related_world: World, units: dict[int, dict[str, str]], app: dict[str, str], hook: str
) -> None:
    """arrange: related to a collector. act: it writes anything. assert: nothing at all."""
    relation = dataclasses.replace(
        related_world.relation("cos-agent"), remote_units_data=units, remote_app_data=app
    )

    outcome = changed(related_world, relation, hook)

    outcome.assert_sane()
    outcome.assert_untouched()


@examples(0.5)
@given(units=st.dictionaries(UNIT_IDS, ANY_BAG, min_size=1, max_size=3))
def test_sidekick_unit_bags_change_nothing(
    related_world: World, units: dict[int, dict[str, Any]]
) -> None:
    """arrange: alerts go to the sidekick. act: its units write anything. assert: nothing."""
    relation = dataclasses.replace(
        related_world.relation("http-endpoint"), remote_units_data=units
    )

    outcome = changed(related_world, relation)

    outcome.assert_sane()
    outcome.assert_untouched()
    assert outcome.out.unit_status == testing.ActiveStatus()


IGNORED = "http-endpoint data ignored (keeping the previous destination): "


def _strict_host(url: str) -> str:
    """The host a WHATWG-style parser reads in ``url`` (pydantic's, as libcurl would)."""
    host = pydantic.TypeAdapter(pydantic.HttpUrl).validate_python(url).host
    return (host or "").strip("[]")


@examples(0.75)
@given(url=PARSER_SPLIT_URLS)
def test_a_url_parsers_read_differently_is_refused_or_given_as_one_host(
    related_world: World, url: str
) -> None:
    """arrange: alerts go to the sidekick. act: it publishes a URL parsers split on. assert.

    Ignored (nothing changes), or what Falco posts to names the same host to a loose and a
    strict parser and holds nothing they read apart (no blank or control character, no
    backslash before the query or fragment); an http status names that host.
    """
    relation = dataclasses.replace(
        related_world.relation("http-endpoint"),
        remote_app_data={"url": json.dumps(url), "ca_cert": json.dumps(SIDEKICK_CA)},
    )

    outcome = changed(related_world, relation)

    outcome.assert_sane()
    status = outcome.out.unit_status
    if status.message.startswith(IGNORED):
        outcome.assert_untouched()
        return
    used = yaml.safe_load(outcome.rendered)["http_output"]["url"]
    assert not any(c.isspace() or not c.isprintable() for c in used), used
    # After "?" or "#" every parser reads the query or the fragment, whatever comes: a
    # backslash there cannot move the host.
    assert "\\" not in re.split(r"[?#]", used, maxsplit=1)[0], used
    loose = urlsplit(used).hostname
    assert loose == _strict_host(used), (url, used)
    outcome.assert_at_most_one_action()
    if urlsplit(used).scheme == "http":
        assert status.message.startswith(f"alerts to {loose} are not encrypted"), status


_OTHER_CA = make_ca("Someone else's CA").cert_pem


@examples(0.6)
@given(data=st.data())
def test_certificates_garbage_changes_nothing(mtls_world: World, data: st.DataObject) -> None:
    """arrange: presenting a client certificate. act: the CA's bag becomes garbage. assert.

    No hook fails; Falco keeps the certificate it presents (no file, no restart).
    """
    relation = mtls_world.relation("certificates")
    (ours,) = json.loads(relation.local_unit_data["certificate_signing_requests"])
    garbage = data.draw(
        certificates_provider_bags(ours["certificate_signing_request"], _OTHER_CA), label="bag"
    )
    extra = data.draw(ANY_BAG, label="extra keys")
    broken = dataclasses.replace(relation, remote_app_data={**extra, **garbage})

    outcome = changed(mtls_world, broken)

    outcome.assert_sane()
    outcome.assert_falco_untouched()
