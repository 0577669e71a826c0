"""Fuzz the ``outputs`` option: whatever YAML comes in, a clear answer and nothing half done.

Properties:

* any text is either taken (as sections of offered outputs) or refused with a ValueError,
  never another exception, and the refusal never quotes a value;
* sections right by construction (any subset of the keys of any offered outputs, valid
  values) are rendered key for key;
* one key misspelt (by construction: the name is not a key of the section) is refused
  naming its path;
* in a sidekick in service, any option is survived; a refused one changes nothing.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import outputs
import yaml
from charm import FalcosidekickCharm
from garbage import JSON_VALUES, huge_text
from hypothesis import given
from hypothesis import strategies as st
from ops import testing
from outputs_examples import full_section, secret_content
from worlds import World, dispatch

CTX = testing.Context(FalcosidekickCharm)
SECTIONS = sorted(outputs.OFFERED)
# A value no message may quote: it stands for a credential put in the wrong place.
MARKER = "zq-credential-zq"

# Anything at all ---------------------------------------------------------------------------

yaml_documents = st.one_of(
    st.text(),
    huge_text(1_000, 100_000),
    JSON_VALUES.map(lambda value: yaml.safe_dump(value)),
    st.dictionaries(
        st.sampled_from([*SECTIONS, *outputs.NOT_OFFERED, "Slack", "slak"]),
        st.one_of(JSON_VALUES, st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=4)),
        max_size=4,
    ).map(yaml.safe_dump),
)


def with_marker(value: Any) -> Any:
    """Return ``value`` with every string leaf replaced by the marker."""
    if isinstance(value, dict):
        return {key: with_marker(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_marker(item) for item in value]
    return MARKER if isinstance(value, str) else value


@given(text=yaml_documents)
def test_any_text_is_taken_or_refused_with_a_reason(text: str) -> None:
    """arrange: any text. act: parse. assert: sections of offered outputs, or a ValueError."""
    try:
        spec = outputs.parse(text)
    except ValueError as exc:
        assert str(exc)
        return
    assert set(spec) <= set(outputs.OFFERED)


@given(
    sections=st.dictionaries(
        st.sampled_from(SECTIONS),
        st.dictionaries(st.text(max_size=16), JSON_VALUES, max_size=4),
        max_size=3,
    )
)
def test_no_refusal_quotes_a_value(sections: dict[str, dict[str, Any]]) -> None:
    """arrange: sections whose every text value is a marker. act: parse. assert: never quoted."""
    try:
        outputs.parse(yaml.safe_dump(with_marker(sections)))
    except ValueError as exc:
        assert MARKER not in str(exc)


# Right by construction -----------------------------------------------------------------------


@st.composite
def right_sections(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """Offered outputs with their enabling keys and any other of their keys, all valid."""
    chosen = draw(st.lists(st.sampled_from(SECTIONS), min_size=1, max_size=4, unique=True))
    sections = {}
    for section in chosen:
        full = full_section(section)
        required = set(outputs.OFFERED[section]) | ({"protocol"} if section == "syslog" else set())
        optional = draw(st.lists(st.sampled_from(sorted(full)), unique=True, max_size=len(full)))
        sections[section] = {key: full[key] for key in required | set(optional)}
    return sections


def expected(sections: dict[str, dict[str, Any]], secret: dict[str, str]) -> dict[str, Any]:
    def fill(value: Any) -> Any:
        if isinstance(value, dict) and list(value) == ["secret"]:
            return secret[value["secret"]]
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        return value

    filled = fill(sections)
    severities = filled.get("alertmanager", {}).get("customseveritymap")
    if severities:
        filled["alertmanager"]["customseveritymap"] = {
            outputs.SIDEKICK_PRIORITY[name.lower()]: value for name, value in severities.items()
        }
    if "alertmanager" in filled:
        filled["alertmanager"].setdefault("endpoint", outputs.ALERTMANAGER_ENDPOINT)
    return filled


@given(sections=right_sections())
def test_right_sections_are_rendered_key_for_key(sections: dict[str, dict[str, Any]]) -> None:
    """arrange: valid sections. act: parse, resolve. assert: as given, credentials read."""
    secret = secret_content(sections)

    resolved = outputs.resolve(outputs.parse(yaml.safe_dump(sections)), secret)

    assert resolved == expected(sections, secret)


# Wrong by construction ------------------------------------------------------------------------


@st.composite
def misspelt(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid section with one key renamed to a name the section does not have."""
    section = draw(st.sampled_from(SECTIONS))
    settings = full_section(section)
    key = draw(st.sampled_from(sorted(settings)))
    edit = draw(st.sampled_from(["drop", "double", "swap", "add"]))
    index = draw(st.integers(0, len(key) - 1))
    char = draw(st.sampled_from("aeiourstx_"))
    typo = {
        "drop": key[:index] + key[index + 1 :],
        "double": key[:index] + key[index] + key[index:],
        "swap": key[:index] + char + key[index + 1 :],
        "add": key[:index] + char + key[index:],
    }[edit]
    schema = outputs.SCHEMA[section]
    if not typo or typo in schema or not typo[0].isalpha():
        typo = f"{key}x"
    settings[typo] = settings.pop(key)
    return {section: settings}, f"{section}.{typo}: not a Falcosidekick 2.34.1 setting"


@given(case=misspelt())
def test_a_misspelt_key_is_refused_naming_its_path(case: tuple[dict[str, Any], str]) -> None:
    """arrange: one key of a valid section misspelt. act: parse. assert: refused, the path."""
    sections, problem = case

    try:
        outputs.parse(yaml.safe_dump(sections))
    except ValueError as exc:
        assert str(exc).startswith(problem)
    else:
        raise AssertionError(f"taken: {sections}")


# The charm in service ------------------------------------------------------------------------

any_option = st.one_of(
    yaml_documents,
    right_sections().map(yaml.safe_dump),
    misspelt().map(lambda case: yaml.safe_dump(case[0])),
)


@given(option=any_option)
def test_any_outputs_option_is_survived(plain_world: World, option: str) -> None:
    """arrange: sidekick in service. act: config-changed with any outputs. assert: properties.

    Refused (Blocked naming 'outputs', or 'outputs-secret' for the credentials it cannot
    have here): nothing changes. Taken: at most the one restart new files need.
    """
    with tempfile.TemporaryDirectory() as tmp, plain_world.copy(Path(tmp)) as (state, root):
        changed = dataclasses.replace(state, config={**state.config, "outputs": option})
        outcome = dispatch(CTX, changed, CTX.on.config_changed(), root)

    outcome.assert_sane()
    status = outcome.out.unit_status
    if isinstance(status, testing.BlockedStatus) and status.message.startswith(
        "invalid config 'outputs"
    ):
        outcome.assert_untouched(plain_world.state)
    else:
        outcome.assert_restarts_only_for_new_files()
