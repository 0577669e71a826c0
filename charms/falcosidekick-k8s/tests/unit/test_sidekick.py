"""The sidekick's rendered config and Pebble layer, as pure data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from outputs_examples import example_key_paths
from sidekick import (
    CA_FILE,
    CERT_FILE,
    CONFIG_FILE,
    KEY_FILE,
    LokiOutput,
    Settings,
    TlsMaterial,
    files_digest,
    render_config,
    render_files,
    render_layer,
)

TLS = TlsMaterial(chain="CHAIN\n", key="KEY\n", ca="CA\n")
LOKI = LokiOutput("https://loki.example:3100/loki/api/v1/push", "tenant-a", "warning")


def key_paths(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in data.items():
        path = (*prefix, key.lower())
        yield path
        # customfields holds the operator's own names, not sidekick settings.
        if isinstance(value, dict) and key != "customfields":
            yield from key_paths(value, path)


@pytest.mark.parametrize(
    "settings",
    [
        Settings(2801, listen_on_network=False),
        Settings(2801, True, tls=TLS, loki=LOKI, custom_fields={"env": "prod"}),
        Settings(4443, True, loki=LokiOutput("http://loki:3100/loki/api/v1/push")),
    ],
    ids=["loopback", "tls-loki", "ingress-only"],
)
def test_every_rendered_key_is_a_falcosidekick_key(settings: Settings) -> None:
    """arrange: settings of each mode. act: render. assert: every key path is in the example."""
    known = example_key_paths()

    unknown = set(key_paths(render_config(settings))) - known

    assert ("loki", "hostport") in known  # the parser sees the commented-out keys
    assert unknown == set()


def test_loopback_when_nothing_secures_the_network() -> None:
    """arrange: no TLS, no ingress. act: render. assert: bound to loopback, plain HTTP."""
    config = render_config(Settings(2801, listen_on_network=False))

    assert config == {
        "listenaddress": "127.0.0.1",
        "listenport": 2801,
        "debug": False,
        "tlsserver": {"deploy": False},
    }


def test_tls_keeps_alert_input_off_the_plain_port() -> None:
    """arrange: TLS. act: render. assert: only /healthz and /metrics on the plain port."""
    config = render_config(Settings(2801, True, tls=TLS))

    assert config["listenaddress"] == ""
    assert config["tlsserver"] == {
        "deploy": True,
        "certfile": CERT_FILE,
        "keyfile": KEY_FILE,
        "notlsport": 2810,
        "notlspaths": ["/healthz", "/metrics"],
    }
    assert "/" not in config["tlsserver"]["notlspaths"]
    assert "/test" not in config["tlsserver"]["notlspaths"]


def test_loki_output_key_by_key() -> None:
    """arrange: TLS and an https Loki. act: render. assert: every Loki setting, CA trusted."""
    config = render_config(Settings(2801, True, tls=TLS, loki=LOKI, custom_fields={"a": "b"}))

    assert config["loki"] == {
        "hostport": "https://loki.example:3100",
        "endpoint": "/loki/api/v1/push",
        "format": "json",
        "extralabels": "juju_model,juju_model_uuid,juju_application,juju_unit,juju_charm",
        "minimumpriority": "warning",
        "tenant": "tenant-a",
        "checkcert": True,
    }
    assert config["tlsclient"] == {"cacertfile": CA_FILE}
    assert config["customfields"] == {"a": "b"}


def test_loki_without_path_uses_the_push_path_and_plain_http_needs_no_ca() -> None:
    """arrange: http Loki URL with no path. act: render. assert: default endpoint, no CA."""
    config = render_config(Settings(2801, True, tls=TLS, loki=LokiOutput("http://loki:3100")))

    assert config["loki"]["hostport"] == "http://loki:3100"
    assert config["loki"]["endpoint"] == "/loki/api/v1/push"
    assert "tenant" not in config["loki"]
    assert "tlsclient" not in config


def test_files_and_modes() -> None:
    """arrange: TLS. act: render files. assert: the key and config are private, YAML parses."""
    files = render_files(Settings(2801, True, tls=TLS))

    assert {path: mode for path, (_, mode) in files.items()} == {
        CONFIG_FILE: 0o600,
        CERT_FILE: 0o644,
        KEY_FILE: 0o600,
        CA_FILE: 0o644,
    }
    assert yaml.safe_load(files[CONFIG_FILE][0])["listenport"] == 2801


def test_digest_follows_files_but_not_the_key() -> None:
    """arrange: two file sets differing by key, then by cert. act: digest. assert: as said."""
    base = render_files(Settings(2801, True, tls=TLS))
    new_key = render_files(Settings(2801, True, tls=TlsMaterial("CHAIN\n", "KEY2\n", "CA\n")))
    new_cert = render_files(Settings(2801, True, tls=TlsMaterial("CHAIN2\n", "KEY\n", "CA\n")))

    assert files_digest(base) == files_digest(new_key)
    assert files_digest(base) != files_digest(new_cert)


@pytest.mark.parametrize(
    ("settings", "health_url"),
    [
        (Settings(2801, False), "http://127.0.0.1:2801/healthz"),
        (Settings(2801, True, tls=TLS), "http://127.0.0.1:2810/healthz"),
    ],
)
def test_layer_runs_as_image_user_with_a_check_that_answers(
    settings: Settings, health_url: str
) -> None:
    """arrange: each TLS mode. act: render layer. assert: command, user, check port."""
    layer = render_layer(settings, "abc")

    service = layer["services"]["falcosidekick"]
    assert service["command"] == f"/app/falcosidekick -c {CONFIG_FILE}"
    assert (service["user"], service["user-id"], service["group"]) == (
        "falcosidekick",
        1234,
        "falcosidekick",
    )
    assert service["on-check-failure"] == {"falcosidekick-up": "restart"}
    assert layer["checks"]["falcosidekick-up"]["http"] == {"url": health_url}
