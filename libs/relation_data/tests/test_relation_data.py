"""Tests of the shared databag helpers."""

from __future__ import annotations

import contextlib
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from relation_data import read_url, update_changed


class RecordingBag(dict[str, str]):
    """A databag that remembers every update() call, as relation-set would see them."""

    def __init__(self, *args: object, **kwargs: str) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.updates: list[dict[str, str]] = []

    def update(self, *args: object, **kwargs: str) -> None:  # type: ignore[override]
        changes = dict(*args, **kwargs)  # type: ignore[call-overload]
        self.updates.append(changes)
        for key, value in changes.items():
            if value == "":
                self.pop(key, None)
            else:
                self[key] = value


def test_only_changed_keys_are_written_in_one_update() -> None:
    """arrange: one key current, one new, one to delete. act: update. assert: one write."""
    bag = RecordingBag(keep='"a"', juju_key="10.0.0.1", gone='"x"')

    changed = update_changed(bag, {"keep": '"a"', "new": '"b"', "gone": ""})

    assert changed is True
    assert bag.updates == [{"new": '"b"', "gone": ""}]
    assert bag == {"keep": '"a"', "juju_key": "10.0.0.1", "new": '"b"'}


def test_nothing_changed_writes_nothing() -> None:
    """arrange: the bag already holds everything. act: update. assert: no write at all."""
    bag = RecordingBag(keep='"a"')

    assert update_changed(bag, {"keep": '"a"', "absent": ""}) is False
    assert bag.updates == []


def test_read_url() -> None:
    """arrange: an ingress-style value. act: read. assert: the URL."""
    bag = {"ingress": json.dumps({"url": "https://h.example/model-app"})}

    assert read_url(bag, "ingress") == "https://h.example/model-app"
    assert read_url({}, "ingress") is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{", "is not JSON text"),
        ('"https://h/"', "has no 'url' string"),
        ('{"url": 3}', "has no 'url' string"),
        ('{"url": "ftp://h/"}', "not an http(s) URL"),
        ('{"url": "https:///path"}', "not an http(s) URL"),
        ('{"url": "http://h:99999/"}', "not an http(s) URL"),
        ('{"url": "http://[::1/"}', "not an http(s) URL"),
        # What a loose parser lets through: it would reach the sidekick's config and Pebble.
        ('{"url": "https://h/\\npath"}', "url:"),
        ('{"url": "https://a host/"}', "url:"),
        (json.dumps({"url": "https://h/" + "x" * 3000}), "url:"),
    ],
)
def test_read_url_rejects(raw: str, reason: str) -> None:
    """arrange: a malformed value. act: read. assert: ValueError naming the key."""
    with pytest.raises(ValueError, match=re.escape(reason)) as raised:
        read_url({"endpoint": raw}, "endpoint")

    assert "'endpoint'" in str(raised.value)


@given(st.text())
def test_read_url_raises_nothing_but_value_error(raw: str) -> None:
    """arrange: any text. act: read. assert: a URL, None, or ValueError."""
    with contextlib.suppress(ValueError):
        read_url({"k": raw}, "k")


def test_read_url_quotes_only_the_start_of_a_huge_value() -> None:
    """arrange: megabytes of garbage. act: read. assert: the error quotes a short prefix."""
    with pytest.raises(ValueError) as raised:
        read_url({"k": "x" * (2 << 20)}, "k")

    assert len(str(raised.value)) < 200


def test_read_url_refuses_json_nested_too_deep() -> None:
    """arrange: a hostile value nested past the parser's stack. act: read. assert: ValueError."""
    with pytest.raises(ValueError, match="is not JSON text"):
        read_url({"k": "[" * 100_000 + "]" * 100_000}, "k")
