"""The ``outputs`` option: the derived 2.34.1 schema, what it accepts, and what it refuses why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import derive_outputs_schema
import outputs
import pytest
import yaml
from outputs_examples import (
    EXAMPLE,
    example_key_paths,
    full_section,
    minimal_section,
    secret_content,
)
from sidekick import Settings, render_config


def schema_paths(schema: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths = set()
    for key, kind in schema.items():
        paths.add((*prefix, key))
        if isinstance(kind, dict):
            paths |= schema_paths(kind, (*prefix, key))
    return paths


def test_shipped_schema_is_what_the_script_derives_from_the_example(tmp_path: Path) -> None:
    """arrange: the vendored 2.34.1 example. act: derive the schema again. assert: as shipped."""
    derived = derive_outputs_schema.render(derive_outputs_schema.derive(EXAMPLE.read_text()))

    assert derived == outputs.SCHEMA_FILE.read_text()
    assert derive_outputs_schema.main([str(EXAMPLE), str(outputs.SCHEMA_FILE), "--check"]) == 0
    stale = tmp_path / "stale.json"
    stale.write_text("{}\n")
    assert derive_outputs_schema.main([str(EXAMPLE), str(stale), "--check"]) == 1


def test_schema_has_the_offered_sections_key_for_key_as_a_plain_reading_does() -> None:
    """arrange: the derived schema; a reading of its own. act: compare. assert: same keys.

    The two readings of the commented example agree on every offered output, but for the
    keys the example indents after the "#" ("  #   enabled: true" under "  # batching:"),
    which the plain reading does not see. Neither looks under free maps (customheaders).
    """
    plain = example_key_paths()
    indented_after_the_hash = {
        ("elasticsearch", "batching", key) for key in ("batchsize", "enabled", "flushinterval")
    }

    for section in outputs.OFFERED:
        derived = {(section, *path) for path in schema_paths(outputs.SCHEMA[section])}
        seen = {path for path in plain if path[0] == section and len(path) > 1}
        assert derived - indented_after_the_hash == seen, section


def test_schema_types_come_from_the_example_values() -> None:
    """arrange: keys whose example values are of each type. act: read the schema. assert."""
    schema = outputs.SCHEMA

    assert schema["slack"]["webhookurl"] == "string"
    assert schema["elasticsearch"]["numberofshards"] == "int"
    assert schema["elasticsearch"]["batching"] == {
        "batchsize": "int",
        "enabled": "bool",
        "flushinterval": "duration",  # corrected: "1s" in the example, Go reads a duration
    }
    assert schema["webhook"]["customheaders"] == "map"
    assert schema["customtags"] == "list"
    assert schema["tlsserver"]["notlspaths"] == "list"
    assert schema["alertmanager"]["dropeventthresholds"] == "string"  # '"" # ...'
    # Corrected where the real 2.34.1 reads another type than the example shows.
    assert schema["alertmanager"]["expiresafter"] == "int"  # '"" if set to ...' in prose
    assert schema["alertmanager"]["extralabels"] == "map"  # "comma separated" in the example
    assert schema["grafana"]["dashboardid"] == "int"  # no value in the example
    assert schema["aws"]["lambda"]["functionname"] == "string"  # 'functionname : ""'


def test_every_top_level_key_of_the_example_is_offered_or_refused_with_a_reason() -> None:
    """arrange: the schema's top level. act: classify. assert: each once, enabling keys real."""
    assert set(outputs.OFFERED) | set(outputs.NOT_OFFERED) == set(outputs.SCHEMA)
    assert not set(outputs.OFFERED) & set(outputs.NOT_OFFERED)
    for section, keys in outputs.OFFERED.items():
        assert set(keys) <= set(outputs.SCHEMA[section]), section


@pytest.mark.parametrize("section", sorted(outputs.OFFERED))
def test_every_offered_section_round_trips_key_for_key(section: str) -> None:
    """arrange: the section with every key of the example. act: parse, resolve, render.

    assert: rendered key for key as given (credentials read from the secret), each key a
    key of the example, nothing else added but Alertmanager's v2 endpoint.
    """
    given = {section: full_section(section)}
    secret = secret_content(given)

    spec = outputs.parse(yaml.safe_dump(given))
    rendered = render_config(Settings(2801, False, outputs=outputs.resolve(spec, secret)))

    expected = json.loads(
        json.dumps(given[section]),
        object_hook=lambda d: secret[d["secret"]] if list(d) == ["secret"] else d,
    )
    if section == "alertmanager":  # priority names become Falcosidekick's numbers
        expected["customseveritymap"] = {4: "sev-warning", 6: "page"}
    assert rendered[section] == expected
    known = example_key_paths()
    assert {(section, key) for key in rendered[section]} <= known


@pytest.mark.parametrize("section", sorted(outputs.NOT_OFFERED))
def test_every_other_section_of_the_example_is_refused_naming_it(section: str) -> None:
    """arrange: a section the charm does not offer. act: parse. assert: refused, with why."""
    with pytest.raises(ValueError, match=rf"^{section}: ") as refused:
        outputs.parse(yaml.safe_dump({section: {"x": "y"}}))

    assert refused.value.args[0] == f"{section}: {outputs.NOT_OFFERED[section]}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "slack: {webhhokurl: {secret: slack-hook}}",
            "slack.webhhokurl: not a Falcosidekick 2.34.1 setting of 'slack' "
            "(did you mean 'webhookurl'?)",
        ),
        ("slak: {}", "slak: not a Falcosidekick 2.34.1 output (did you mean 'slack'?)"),
        (
            "elasticsearch: {hostport: h, batching: {enable: true}}",
            "elasticsearch.batching.enable: not a Falcosidekick 2.34.1 setting of "
            "'elasticsearch.batching' (did you mean 'enabled'?)",
        ),
        ("slack: yes", "slack: expected a mapping of its settings"),
        ("slack:", "slack: expected a mapping of its settings"),
        ("[slack]", "expected a mapping of Falcosidekick output sections, such as 'slack:'"),
        ("slack: {webhookurl: [a]}", "slack.webhookurl: expected text or {secret: <key of"),
        ("slack: {webhookurl: true}", "slack.webhookurl: expected text or {secret: <key of"),
        ("elasticsearch: {numberofshards: '3'}", "elasticsearch.numberofshards: expected a nu"),
        ("elasticsearch: {numberofshards: true}", "elasticsearch.numberofshards: expected a nu"),
        ("elasticsearch: {flattenfields: 'yes'}", "elasticsearch.flattenfields: expected true"),
        ("webhook: {customheaders: [a]}", "webhook.customheaders: expected a mapping of names"),
        ("webhook: {customheaders: {X: [1]}}", "webhook.customheaders.X: expected text or"),
        (
            "slack: {webhookurl: https://hooks.slack.com/services/T/B/C}",
            "slack.webhookurl: a credential, must come from 'outputs-secret': write "
            "{secret: <key of 'outputs-secret'>}",
        ),
        ("elasticsearch: {hostport: h, password: pw}", "elasticsearch.password: a credential"),
        (
            "webhook: {address: 'https://bob:pw@soc.example/hook'}",
            "webhook.address: a URL with a user or password must come from 'outputs-secret'",
        ),
        (
            "webhook: {customheaders: {Authorization: Bearer abc}}",
            "webhook.customheaders.Authorization: a credential, must be {secret: <key of",
        ),
        ("slack: {webhookurl: {secret: AB}}", "slack.webhookurl: 'AB' is not a secret content"),
        ("slack: {webhookurl: {secret: 3}}", "slack.webhookurl: a mapping here must be {secre"),
        ("slack: {webhookurl: {vault: a-b-c}}", "slack.webhookurl: a mapping here must be {sec"),
        (
            "webhook: {address: x, minimumpriority: info}",
            "webhook.minimumpriority: expected one of emergency, alert, critical, error, "
            "warning, notice, informational, debug (Falcosidekick would send every alert for "
            "any other value)",
        ),
        ("webhook: {address: x, minimumpriority: 4}", "webhook.minimumpriority: expected one"),
        (
            "webhook: {address: x, checkcert: false}",
            "webhook.checkcert: certificate checks stay on; add the output's CA to "
            "'outputs-ca-certs'",
        ),
        (
            "webhook: {address: x, mutualtls: true}",
            "webhook.mutualtls: not offered: the charm has no client certificate for outputs",
        ),
        (
            "syslog: {host: h, port: '514'}",
            "syslog.protocol: required, tcp or udp (Falcosidekick 2.34.1 crashes at start "
            "without it, whatever its documentation says)",
        ),
        ("syslog: {host: h, protocol: tls}", "syslog.protocol: required, tcp or udp"),
        (
            "quickwit: {hostport: h, autocreateindex: true}",
            "quickwit.autocreateindex: not offered: when Quickwit cannot be reached at start",
        ),
        ("Slack: {}\nslack: {}", "slack: given twice (Falcosidekick ignores the case of keys)"),
        ("webhook: {Address: a, address: b}", "webhook.address: given twice (Falcosidekick ig"),
        (
            "alertmanager: {extralabels: 'team:security'}",
            "alertmanager.extralabels: expected a mapping of names to values",
        ),
        (
            "alertmanager: {extralabels: {team-name: security}}",
            "alertmanager.extralabels.team-name: not a label name (letters, digits and "
            "underscores): Alertmanager would refuse every alert",
        ),
        (
            "alertmanager: {customseveritymap: {high: page}}",
            "alertmanager.customseveritymap.high: expected a priority name (emergency, alert,",
        ),
        (
            "alertmanager: {dropeventthresholds: '100:critical; 10:warning'}",
            "alertmanager.dropeventthresholds: expected 'count:priority' pairs separated by",
        ),
        ("alertmanager: {dropeventthresholds: '10:loud'}", "alertmanager.dropeventthresholds:"),
        ("alertmanager: {expiresafter: soon}", "alertmanager.expiresafter: expected a number"),
        (
            "elasticsearch: {hostport: h, batching: {flushinterval: 1}}",
            "elasticsearch.batching.flushinterval: expected a duration such as 1s or 500ms",
        ),
        ("slack: {webhookurl: [1", "not valid YAML (line 1, column 23)"),
        ("1: {}", "1: keys must be names"),
        ("x" * (64 * 1024 + 1), "longer than 64 KiB"),
    ],
)
def test_mistakes_are_refused_naming_the_path(text: str, problem: str) -> None:
    """arrange: an outputs option with one mistake. act: parse. assert: the path and why."""
    with pytest.raises(ValueError) as refused:
        outputs.parse(text)

    assert str(refused.value).startswith(problem)


def test_problems_never_quote_a_value() -> None:
    """arrange: credentials in the wrong places. act: parse. assert: no message quotes them.

    (Key names are quoted: they are names, and a misspelt one must be shown.)
    """
    leaked = "hunter2-do-not-show"
    texts = [
        f"slack: {{webhookurl: {leaked}}}",
        f"webhook: {{address: 'https://u:{leaked}@h/'}}",
        f"webhook: {{customheaders: {{X-Api-Key: {leaked}}}}}",
        f"webhook: {{address: x, minimumpriority: {leaked}}}",
        f"slack: [{leaked}",
        f"slack: {{channel: {leaked}, x: 1}}",
        f"elasticsearch: {{numberofshards: {leaked}}}",
    ]

    for text in texts:
        with pytest.raises(ValueError) as refused:
            outputs.parse(text)
        assert leaked not in str(refused.value), text


def test_keys_and_priorities_are_read_as_falcosidekick_reads_them() -> None:
    """arrange: mixed-case keys and priority. act: parse. assert: lower-cased, numbers kept."""
    spec = outputs.parse(
        "Slack:\n  WebhookURL: {secret: slack-hook}\n  MinimumPriority: Critical\n"
        "syslog: {host: h, port: 514, protocol: UDP}\n"
    )

    assert spec == {
        "slack": {"webhookurl": outputs.SecretRef("slack-hook"), "minimumpriority": "critical"},
        "syslog": {"host": "h", "port": 514, "protocol": "udp"},
    }
    assert outputs.secret_keys(spec) == {"slack-hook"}
    assert outputs.parse("") == {} == outputs.parse("# nothing yet\n")


def test_resolve_reads_credentials_from_the_secret_only() -> None:
    """arrange: a reference. act: resolve with and without the secret and the key. assert."""
    spec = outputs.parse("slack: {webhookurl: {secret: slack-hook}, channel: sec}")

    with pytest.raises(outputs.OutputsError) as unset:
        outputs.resolve(spec, None)
    with pytest.raises(outputs.OutputsError) as missing:
        outputs.resolve(spec, {"other": "x"})
    with pytest.raises(outputs.OutputsError) as empty:
        outputs.resolve(spec, {"slack-hook": " "})
    resolved = outputs.resolve(spec, {"slack-hook": "https://hooks.example/T/B/C"})

    assert str(unset.value) == (
        "invalid config 'outputs': slack.webhookurl refers to a secret, but 'outputs-secret' "
        "is not set"
    )
    assert str(missing.value) == (
        "invalid config 'outputs-secret': the secret has no key 'slack-hook' "
        "(used by slack.webhookurl)"
    )
    assert str(empty.value) == (
        "invalid config 'outputs-secret': key 'slack-hook' is empty (used by slack.webhookurl)"
    )
    assert resolved == {"slack": {"webhookurl": "https://hooks.example/T/B/C", "channel": "sec"}}


@pytest.mark.parametrize("section", sorted(outputs.OFFERED))
def test_a_section_without_what_turns_it_on_is_a_problem(section: str) -> None:
    """arrange: each output with one enabling key left out. act: resolve. assert: refused."""
    for key in outputs.OFFERED[section]:
        settings = {k: v for k, v in minimal_section(section).items() if k != key}
        given = {section: settings}
        spec = outputs.parse(yaml.safe_dump(given))

        with pytest.raises(outputs.OutputsError) as refused:
            outputs.resolve(spec, secret_content(given))

        assert refused.value.option == "outputs"
        assert refused.value.problem.startswith(
            f"{section}.{key} is needed: without it Falcosidekick leaves {section} off"
        )


def test_alertmanager_address_comes_from_the_relation_or_the_option_not_both() -> None:
    """arrange: alertmanager settings; relation URLs. act: resolve. assert: filled, v2 API."""
    settings = outputs.parse("alertmanager: {minimumpriority: error, extralabels: {team: sec}}")
    addressed = outputs.parse("alertmanager: {hostport: 'http://am:9093'}")
    urls = ["http://am-0.am:9093/", "https://am.example/cos-alertmanager/"]

    from_relation = outputs.resolve(settings, None, urls)
    only_relation = outputs.resolve({}, None, urls[:1])
    from_option = outputs.resolve(addressed, None)
    with pytest.raises(outputs.OutputsError) as both:
        outputs.resolve(addressed, None, urls)
    with pytest.raises(outputs.OutputsError) as neither:
        outputs.resolve(settings, None)

    assert from_relation == {
        "alertmanager": {
            "minimumpriority": "error",
            "extralabels": {"team": "sec"},
            "hostport": "http://am-0.am:9093,https://am.example/cos-alertmanager",
            "endpoint": "/api/v2/alerts",
        }
    }
    assert only_relation["alertmanager"]["hostport"] == "http://am-0.am:9093"
    assert from_option["alertmanager"]["endpoint"] == "/api/v2/alerts"
    assert both.value.problem == (
        "alertmanager.hostport is given and 'alertmanager' is integrated: remove one"
    )
    assert neither.value.problem.endswith("(or integrate 'alertmanager')")


def test_destinations_are_the_rendered_outputs_by_their_metric_label() -> None:
    """arrange: rendered configs. act: destinations. assert: loki first, then the outputs."""
    assert outputs.destinations({"loki": {"hostport": "http://l"}, "slack": {}}) == [
        "loki",
        "slack",
    ]
    assert outputs.destinations({"tlsserver": {}, "webhook": {}, "alertmanager": {}}) == [
        "alertmanager",
        "webhook",
    ]
    assert outputs.destinations({"listenport": 1}) == []


@pytest.mark.parametrize(
    ("text", "secret", "problem"),
    [
        (
            "webhook: {address: soc.example/falco}",
            {},
            "invalid config 'outputs': webhook.address: expected an http(s) URL",
        ),
        (
            "datadog: {apikey: {secret: dd-key}, host: api.datadoghq.eu}",
            {"dd-key": "k"},
            "invalid config 'outputs': datadog.host: expected an http(s) URL",
        ),
        (
            "alertmanager: {hostport: 'http://am-0:9093, am-1:9093'}",
            {},
            "invalid config 'outputs': alertmanager.hostport: expected comma-separated "
            "http(s) URLs",
        ),
        (
            "slack: {webhookurl: {secret: slack-hook}}",
            {"slack-hook": "hooks.slack.com/services/T/B/C"},
            "invalid config 'outputs-secret': key 'slack-hook' (used by slack.webhookurl) is "
            "not an http(s) URL",
        ),
        (
            "slack: {webhookurl: {secret: slack-hook}}",
            {"slack-hook": "https://hooks.slack.com/services/T/B/C\n"},
            "invalid config 'outputs-secret': key 'slack-hook' (used by slack.webhookurl) is "
            "not an http(s) URL",
        ),
    ],
)
def test_an_address_falcosidekick_cannot_post_to_is_a_problem(
    text: str, secret: dict[str, str], problem: str
) -> None:
    """arrange: an output's URL that is none. act: resolve. assert: refused (it would be off).

    Falcosidekick 2.34.1 logs "Bad Endpoint" for such an address and leaves the output off.
    """
    with pytest.raises(outputs.OutputsError) as refused:
        outputs.resolve(outputs.parse(text), secret)

    assert str(refused.value) == problem


def test_syslog_host_is_a_host_and_addresses_may_be_lists() -> None:
    """arrange: syslog's host, two Alertmanagers. act: resolve. assert: accepted as given."""
    spec = outputs.parse(
        "syslog: {host: syslog.example, port: 514, protocol: tcp}\n"
        "alertmanager: {hostport: 'http://am-0:9093, https://am-1:9093'}"
    )

    resolved = outputs.resolve(spec, None)

    assert resolved["syslog"]["host"] == "syslog.example"
    assert resolved["alertmanager"]["hostport"] == "http://am-0:9093, https://am-1:9093"
