"""State-transition tests of the falcosidekick_http_endpoint library, both sides."""

from __future__ import annotations

import json

import pytest
from endpoint_charms import (
    REQUIRER_META,
    PriorRequirerCharm,
    RequirerCharm,
    app_bag,
)
from falcosidekick_http_endpoint import (
    EndpointReading,
    HttpEndpoint,
    InvalidEndpointError,
    check_pem_certificates,
    normalise_url,
    parse_endpoint,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from ops import testing
from ops_probes import Calls
from tls_material import Issued

URL = "https://falcosidekick-k8s.fmodel.svc.cluster.local:2801/"


def _relation(remote_app: str = "falco", **kwargs: object) -> testing.Relation:
    return testing.Relation("http-endpoint", remote_app_name=remote_app, **kwargs)  # type: ignore[arg-type]


# --- provider ---------------------------------------------------------------------------


def test_leader_publishes_url_as_json_string(provider_ctx: testing.Context) -> None:
    """arrange: a leader with one Falco relation. act: publish. assert: url is JSON text."""
    relation = _relation()
    state = testing.State(leader=True, relations={relation}, config={"url": URL})

    out = provider_ctx.run(provider_ctx.on.config_changed(), state)

    assert out.get_relation(relation.id).local_app_data == {"url": json.dumps(URL)}


def test_leader_publishes_ca_next_to_url(provider_ctx: testing.Context, ca: Issued) -> None:
    """arrange: a leader with a CA. act: publish. assert: ca_cert carries the PEM."""
    relation = _relation()
    state = testing.State(
        leader=True, relations={relation}, config={"url": URL, "ca-cert": ca.cert_pem}
    )

    out = provider_ctx.run(provider_ctx.on.config_changed(), state)

    data = out.get_relation(relation.id).local_app_data
    assert json.loads(data["url"]) == URL
    assert json.loads(data["ca_cert"]) == ca.cert_pem


def test_url_is_normalised_like_the_prior_provider(provider_ctx: testing.Context) -> None:
    """arrange: a URL with the scheme's default port. act: publish. assert: pydantic's form."""
    relation = _relation()
    state = testing.State(
        leader=True, relations={relation}, config={"url": "https://h.example:443"}
    )

    out = provider_ctx.run(provider_ctx.on.config_changed(), state)

    assert out.get_relation(relation.id).local_app_data["url"] == json.dumps("https://h.example/")


def test_non_leader_writes_nothing(provider_ctx: testing.Context, relation_writes: Calls) -> None:
    """arrange: a non-leader unit. act: publish. assert: no relation-set, publish says False."""
    relation = _relation()
    state = testing.State(leader=False, relations={relation}, config={"url": URL})

    with provider_ctx(provider_ctx.on.config_changed(), state) as manager:
        out = manager.run()
        assert manager.charm.published is False

    assert out.get_relation(relation.id).local_app_data == {}
    assert relation_writes.count("relation_set") == 0


def test_every_relation_gets_the_endpoint(provider_ctx: testing.Context) -> None:
    """arrange: three Falco applications related. act: publish. assert: all three bags set."""
    relations = [_relation(f"falco-{n}") for n in range(3)]
    state = testing.State(leader=True, relations=set(relations), config={"url": URL})

    out = provider_ctx.run(provider_ctx.on.config_changed(), state)

    for relation in relations:
        assert out.get_relation(relation.id).local_app_data == {"url": json.dumps(URL)}


def test_republishing_the_same_data_writes_nothing(
    provider_ctx: testing.Context, relation_writes: Calls, ca: Issued
) -> None:
    """arrange: bags already hold the endpoint. act: publish again. assert: no relation-set."""
    relations = {
        _relation("falco-a", local_app_data=app_bag(URL, ca.cert_pem)),
        _relation("falco-b", local_app_data=app_bag(URL, ca.cert_pem)),
    }
    state = testing.State(
        leader=True, relations=relations, config={"url": URL, "ca-cert": ca.cert_pem}
    )

    with provider_ctx(provider_ctx.on.config_changed(), state) as manager:
        out = manager.run()
        assert manager.charm.published is False

    assert relation_writes.count("relation_set") == 0
    for relation in relations:
        assert out.get_relation(relation.id).local_app_data == relation.local_app_data


def test_only_the_changed_key_is_written(
    provider_ctx: testing.Context, relation_writes: Calls, ca: Issued
) -> None:
    """arrange: the URL is current, the CA is new. act: publish. assert: one write of ca_cert."""
    relation = _relation(local_app_data=app_bag(URL))
    state = testing.State(
        leader=True, relations={relation}, config={"url": URL, "ca-cert": ca.cert_pem}
    )

    provider_ctx.run(provider_ctx.on.config_changed(), state)

    assert relation_writes.by_method["relation_set"] == [
        (
            (),
            {
                "relation_id": relation.id,
                "data": {"ca_cert": json.dumps(ca.cert_pem)},
                "is_app": True,
                "relation_name": "http-endpoint",
            },
        )
    ]


def test_dropping_the_ca_deletes_the_key(provider_ctx: testing.Context, ca: Issued) -> None:
    """arrange: a CA was published. act: publish without one. assert: the key is gone."""
    relation = _relation(local_app_data=app_bag(URL, ca.cert_pem))
    state = testing.State(leader=True, relations={relation}, config={"url": URL})

    out = provider_ctx.run(provider_ctx.on.config_changed(), state)

    assert out.get_relation(relation.id).local_app_data == {"url": json.dumps(URL)}


def test_client_auth_is_announced_and_dropped(provider_ctx: testing.Context, ca: Issued) -> None:
    """arrange: a URL published. act: require client certs, then not. assert: key set, gone."""
    relation = _relation(local_app_data=app_bag(URL, ca.cert_pem))
    config = {"url": URL, "ca-cert": ca.cert_pem, "client-certificate-required": True}
    state = testing.State(leader=True, relations={relation}, config=config)

    out = provider_ctx.run(provider_ctx.on.config_changed(), state)
    required = out.get_relation(relation.id).local_app_data
    config["client-certificate-required"] = False
    relation = out.get_relation(relation.id)
    out = provider_ctx.run(
        provider_ctx.on.config_changed(),
        testing.State(leader=True, relations={relation}, config=config),
    )

    assert required == app_bag(URL, ca.cert_pem, client_auth=True)
    assert required["client_auth"] == '"required"'
    assert out.get_relation(relation.id).local_app_data == app_bag(URL, ca.cert_pem)


def test_republishing_client_auth_writes_nothing(
    provider_ctx: testing.Context, relation_writes: Calls, ca: Issued
) -> None:
    """arrange: client_auth already announced. act: publish the same. assert: no relation-set."""
    relation = _relation(local_app_data=app_bag(URL, ca.cert_pem, client_auth=True))
    config = {"url": URL, "ca-cert": ca.cert_pem, "client-certificate-required": True}

    provider_ctx.run(
        provider_ctx.on.config_changed(),
        testing.State(leader=True, relations={relation}, config=config),
    )

    assert relation_writes.count("relation_set") == 0


def test_withdraw_removes_url_and_ca(
    provider_ctx: testing.Context, relation_writes: Calls, ca: Issued
) -> None:
    """arrange: two relations with an endpoint. act: withdraw. assert: bags emptied, 2 writes."""
    relations = {
        _relation("falco-a", local_app_data=app_bag(URL, ca.cert_pem)),
        _relation("falco-b", local_app_data=app_bag(URL, client_auth=True)),
    }
    state = testing.State(leader=True, relations=relations, config={"url": "withdraw"})

    with provider_ctx(provider_ctx.on.config_changed(), state) as manager:
        out = manager.run()
        assert manager.charm.published is True

    assert relation_writes.count("relation_set") == 2
    for relation in relations:
        assert out.get_relation(relation.id).local_app_data == {}


@pytest.mark.parametrize("leader", [True, False])
def test_withdraw_with_nothing_published_writes_nothing(
    provider_ctx: testing.Context, relation_writes: Calls, leader: bool
) -> None:
    """arrange: no endpoint published (or not leader). act: withdraw. assert: no write."""
    state = testing.State(leader=leader, relations={_relation()}, config={"url": "withdraw"})

    with provider_ctx(provider_ctx.on.config_changed(), state) as manager:
        manager.run()
        assert manager.charm.published is False

    assert relation_writes.count("relation_set") == 0


@pytest.mark.parametrize(
    ("url", "ca_cert"),
    [
        ("", None),
        ("ftp://h.example/", None),
        ("not a url", None),
        (URL, "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"),
    ],
)
def test_provider_refuses_to_publish_garbage(
    provider_ctx: testing.Context, url: str, ca_cert: str | None
) -> None:
    """arrange: a malformed URL or CA. act: publish. assert: InvalidEndpointError, nothing out."""
    relation = _relation()
    config = {"url": url} | ({"ca-cert": ca_cert} if ca_cert else {})
    state = testing.State(leader=True, relations={relation}, config=config)

    with pytest.raises(testing.errors.UncaughtCharmError) as raised:
        provider_ctx.run(provider_ctx.on.config_changed(), state)

    assert isinstance(raised.value.__cause__, InvalidEndpointError)


# --- requirer ---------------------------------------------------------------------------


def _read(ctx: testing.Context, *relations: testing.Relation) -> EndpointReading:
    state = testing.State(relations=set(relations))
    with ctx(ctx.on.update_status(), state) as manager:
        manager.run()
        charm = manager.charm
        assert isinstance(charm, RequirerCharm)
        assert charm.reading is not None
        return charm.reading


def test_requirer_reads_url_and_ca(requirer_ctx: testing.Context, ca: Issued) -> None:
    """arrange: a provider published URL and CA. act: read. assert: typed endpoint."""
    relation = _relation("falcosidekick-k8s", remote_app_data=app_bag(URL, ca.cert_pem))

    reading = _read(requirer_ctx, relation)

    assert reading.endpoints == {"falcosidekick-k8s": HttpEndpoint(url=URL, ca_cert=ca.cert_pem)}
    assert reading.rejected == {}
    assert reading.pending == []


def test_requirer_reads_an_older_provider(requirer_ctx: testing.Context) -> None:
    """arrange: the prior provider's bag, url only. act: read. assert: endpoint without CA."""
    relation = _relation("sidekick", remote_app_data={"url": '"http://10.0.0.1:8080/"'})

    reading = _read(requirer_ctx, relation)

    assert reading.endpoints == {"sidekick": HttpEndpoint(url="http://10.0.0.1:8080/")}


def test_requirer_ignores_unknown_keys(requirer_ctx: testing.Context) -> None:
    """arrange: a newer provider adds keys. act: read. assert: the URL is still read."""
    data = app_bag(URL) | {"schema": '"v9"', "rate_limit": "{}"}
    reading = _read(requirer_ctx, _relation("sidekick", remote_app_data=data))

    assert reading.endpoints == {"sidekick": HttpEndpoint(url=URL)}


def test_requirer_reads_that_a_client_certificate_is_required(
    requirer_ctx: testing.Context, ca: Issued
) -> None:
    """arrange: client_auth "required". act: read. assert: the endpoint says so."""
    data = app_bag(URL, ca.cert_pem, client_auth=True)
    reading = _read(requirer_ctx, _relation("sidekick", remote_app_data=data))

    assert reading.endpoints == {
        "sidekick": HttpEndpoint(URL, ca.cert_pem, client_certificate_required=True)
    }


@pytest.mark.parametrize("value", ['"optional"', '"REQUIRED"', "true", "required", '""x'])
def test_requirer_refuses_a_client_auth_it_does_not_know(
    requirer_ctx: testing.Context, value: str
) -> None:
    """arrange: client_auth other than "required". act: read. assert: rejected, not guessed."""
    data = app_bag(URL) | {"client_auth": value}
    reading = _read(requirer_ctx, _relation("sidekick", remote_app_data=data))

    assert reading.endpoints == {}
    assert "'client_auth'" in reading.rejected["sidekick"]


@pytest.mark.parametrize("client_auth", [False, True])
def test_prior_requirer_still_reads_the_url(
    provider_ctx: testing.Context, ca: Issued, client_auth: bool
) -> None:
    """arrange: this provider's bag (CA, client_auth). act: prior requirer. assert: URL read."""
    relation = _relation()
    config = {"url": URL, "ca-cert": ca.cert_pem, "client-certificate-required": client_auth}
    out = provider_ctx.run(
        provider_ctx.on.config_changed(),
        testing.State(leader=True, relations={relation}, config=config),
    )
    published = out.get_relation(relation.id).local_app_data
    prior = testing.Context(PriorRequirerCharm, meta=REQUIRER_META)
    seen = _relation("falcosidekick-k8s", remote_app_data=published)

    with prior(prior.on.relation_changed(seen), testing.State(relations={seen})) as manager:
        manager.run()
        assert manager.charm.urls == {"falcosidekick-k8s": URL}
    assert ("client_auth" in published) is client_auth


def test_requirer_reports_a_pending_provider(requirer_ctx: testing.Context) -> None:
    """arrange: a related provider that published nothing yet. act: read. assert: pending."""
    reading = _read(requirer_ctx, _relation("sidekick"))

    assert reading == EndpointReading(pending=["sidekick"])


def test_requirer_reads_several_relations(requirer_ctx: testing.Context, ca: Issued) -> None:
    """arrange: one good, one pending, one broken provider. act: read. assert: sorted out."""
    good = _relation("good", remote_app_data=app_bag(URL, ca.cert_pem))
    pending = _relation("pending")
    broken = _relation("broken", remote_app_data={"url": "http://no-json/"})

    reading = _read(requirer_ctx, good, pending, broken)

    assert set(reading.endpoints) == {"good"}
    assert reading.pending == ["pending"]
    assert set(reading.rejected) == {"broken"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"url": "http://10.0.0.1:8080/"}, "'url' is not JSON text"),
        ({"url": "42"}, "'url' is not a JSON string"),
        ({"url": '{"url": "http://h/"}'}, "'url' is not a JSON string"),
        ({"url": '"ftp://h.example/"'}, "not an http(s) URL"),
        ({"url": '"h.example:2801"'}, "not an http(s) URL"),
        ({"url": '"https://"'}, "not an http(s) URL"),
        ({"url": json.dumps(URL), "ca_cert": '"not a pem"'}, "'ca_cert': not a PEM certificate"),
        ({"url": json.dumps(URL), "ca_cert": "-----BEGIN"}, "'ca_cert' is not JSON text"),
        ({"url": json.dumps(URL), "ca_cert": "[]"}, "'ca_cert' is not a JSON string"),
        ({"url": "[" * 100_000 + "]" * 100_000}, "'url' is not JSON text"),
        (
            {
                "url": json.dumps(URL),
                "ca_cert": json.dumps(
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                ),
            },
            "'ca_cert': not a PEM certificate",
        ),
    ],
)
def test_requirer_rejects_malformed_data_without_raising(
    requirer_ctx: testing.Context, data: dict[str, str], reason: str
) -> None:
    """arrange: malformed provider data. act: read. assert: rejected with a reason, logged."""
    reading = _read(requirer_ctx, _relation("sidekick", remote_app_data=data))

    assert reading.endpoints == {}
    assert reason in reading.rejected["sidekick"]


def test_requirer_rejects_a_private_key_posing_as_ca(
    requirer_ctx: testing.Context, server_cert: Issued
) -> None:
    """arrange: the provider leaks a key instead of a CA. act: read. assert: rejected."""
    data = {"url": json.dumps(URL), "ca_cert": json.dumps(server_cert.key_pem)}

    reading = _read(requirer_ctx, _relation("sidekick", remote_app_data=data))

    assert "sidekick" in reading.rejected


def test_requirer_accepts_a_ca_bundle(
    requirer_ctx: testing.Context, ca: Issued, server_cert: Issued
) -> None:
    """arrange: a CA bundle of two certificates. act: read. assert: both kept."""
    bundle = server_cert.cert_pem + ca.cert_pem
    reading = _read(requirer_ctx, _relation("sidekick", remote_app_data=app_bag(URL, bundle)))

    assert reading.endpoints["sidekick"].ca_cert == bundle


def test_relation_broken_drops_the_endpoint(requirer_ctx: testing.Context) -> None:
    """arrange: the only relation is being broken. act: read. assert: nothing left."""
    relation = _relation("sidekick", remote_app_data=app_bag(URL))
    state = testing.State(relations={relation})

    with requirer_ctx(requirer_ctx.on.relation_broken(relation), state) as manager:
        manager.run()
        assert manager.charm.reading == EndpointReading()


def test_requirer_writes_nothing(requirer_ctx: testing.Context, relation_writes: Calls) -> None:
    """arrange: a provider with data. act: relation-changed. assert: no relation-set at all."""
    relation = _relation("sidekick", remote_app_data=app_bag(URL))

    requirer_ctx.run(
        requirer_ctx.on.relation_changed(relation), testing.State(relations={relation})
    )

    assert relation_writes.count("relation_set") == 0


def test_provider_output_is_what_the_requirer_reads(ca: Issued) -> None:
    """arrange: a provider bag built by the provider side. act: parse it. assert: same values."""
    from falcosidekick_http_endpoint import render_databag

    endpoint = HttpEndpoint(url=URL, ca_cert=ca.cert_pem, client_certificate_required=True)
    bag = {key: value for key, value in render_databag(endpoint).items() if value}

    assert parse_endpoint(bag) == endpoint


# --- garbage in, never an exception out ------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)
_raw_values = st.one_of(
    st.text(),
    _json_values.map(json.dumps),
    st.sampled_from(
        ['"https://h.example:2801/"', '"http://[::1]:80/"', '"https://"', '""', '"required"']
    ),
    st.text(alphabet="-BEGIN CERTIFICATE-\nAZaz09+/=", max_size=200).map(json.dumps),
)
_databags = st.dictionaries(
    st.sampled_from(["url", "ca_cert", "client_auth", "other"]) | st.text(min_size=1, max_size=8),
    _raw_values,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(databag=_databags)
def test_parse_endpoint_only_ever_raises_value_error(databag: dict[str, str]) -> None:
    """arrange: any databag at all. act: parse. assert: an endpoint, None, or ValueError."""
    try:
        result = parse_endpoint(databag)
    except ValueError:
        return
    assert result is None or result.url.startswith(("http://", "https://"))


@settings(max_examples=60, deadline=None)
@given(databag=_databags)
def test_requirer_charm_never_raises_on_garbage(databag: dict[str, str]) -> None:
    """arrange: a provider publishing anything. act: relation-changed. assert: no exception."""
    relation = _relation("sidekick", remote_app_data=databag)

    reading = _read(testing.Context(RequirerCharm, meta=REQUIRER_META), relation)

    assert set(reading.endpoints) | set(reading.pending) | set(reading.rejected) == {"sidekick"}


# --- the validators every reader of a URL or a CA uses (issue 14) -------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://side kick.example/",  # a space in the host
        "https://sidekick.example/" + "a" * 2100,  # longer than 2083 characters
        "https://sidekick.example/a\nb",  # a raw newline, which a URL parser would drop
        "https://sidekick.example/a\tb",
        "https://sidekick.example/\x00",
        " https://sidekick.example/",
        "https:///sidekick.example/",  # no host: pydantic would take the path for one
        "http://:2801/",
    ],
)
def test_url_a_parser_would_clean_up_or_refuse_is_refused(url: str) -> None:
    """arrange: a URL with whitespace, a control character, or too long. act: normalise.

    assert: ValueError, whose message quotes only the start of the value.
    """
    with pytest.raises(ValueError) as refused:
        normalise_url(url)

    assert len(str(refused.value)) < 120


@pytest.mark.parametrize(
    "tail",
    [
        "junk\n",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "key",
    ],
)
def test_ca_with_anything_but_certificates_is_refused(
    ca: Issued, server_cert: Issued, tail: str
) -> None:
    """arrange: a CA certificate followed by junk or a private key. act: check. assert."""
    text = ca.cert_pem + (server_cert.key_pem if tail == "key" else tail)

    with pytest.raises(ValueError, match="not a PEM certificate"):
        check_pem_certificates(text)


def test_ca_bundle_larger_than_the_cap_is_refused(ca: Issued) -> None:
    """arrange: a bundle of many copies of a CA, over 64 KiB. act: check. assert: refused."""
    with pytest.raises(ValueError, match="larger than"):
        check_pem_certificates(ca.cert_pem * 200)


def test_ca_bundle_is_returned_as_its_certificates(ca: Issued, server_cert: Issued) -> None:
    """arrange: two certificates with blank lines around. act: check. assert: just them."""
    bundle = "\n\n" + ca.cert_pem + "\n" + server_cert.cert_pem + "\n\n"

    assert check_pem_certificates(bundle) == ca.cert_pem + server_cert.cert_pem
