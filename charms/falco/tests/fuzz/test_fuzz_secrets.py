"""Fuzz the custom config repository's inputs: its secrets' content and its options.

Secrets hold what the operator put there: a public key instead of the private one, an empty
value, binary junk, a megabyte. Properties, on a unit whose rules come from a repository:

* a secret with wrong content (missing ``value``, empty, binary-ish, huge, a public key, a
  key the server refuses) makes the sync fail and changes nothing Falco runs with: the rules
  that run stay, no restart, no reload; only the charm's record of the sync changes;
* the status says the sync failed, and never quotes the secret; the secret is in no file
  the hook left behind (the deploy key exists only while git runs);
* whatever the repository options say (URL, pinned host keys, secret ids), no hook fails,
  the status is sane, and Falco keeps its rules unless a sync brings new ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from garbage import (
    ANY_KNOWN_HOSTS,
    ANY_REPOSITORY_URL,
    WRONG_SSH_KEYS,
    WRONG_TOKENS,
    secret_contents,
)
from hypothesis import example, given
from hypothesis import strategies as st
from ops import testing
from worlds import Outcome, World, examples

DEPLOY_KEY_FILE = "var/lib/juju-falco/custom-config-repo/ssh/deploy_key"
NOT_SYNCED = "custom-config-repository not synced: "
# Juju accepts only secret URIs in a secret option; these name no secret the unit can read.
SECRET_IDS = st.from_regex(r"secret:[0-9a-z]{20}", fullmatch=True)
# Short values are in a status by chance ("a" is in most words): only longer ones count.
MIN_LEAK_LENGTH = 12


def rotated(world: World, content: dict[str, str]) -> Outcome:
    """Give the world's only secret a new revision with ``content``; dispatch secret-changed."""
    (secret,) = world.state.secrets
    new = dataclasses.replace(secret, tracked_content=content, latest_content=content)
    state = dataclasses.replace(world.state, secrets={new})
    return world.dispatch(world.ctx.on.secret_changed(new), state)


def assert_not_leaked(outcome: Outcome, content: dict[str, str]) -> None:
    """No value of ``content`` shows in the status or in a file the hook wrote."""
    for value in content.values():
        secret = value.strip()
        if len(secret) < MIN_LEAK_LENGTH:
            continue
        assert secret not in outcome.out.unit_status.message
        for path, data in outcome.written.items():
            assert secret.encode(errors="surrogateescape") not in data, path


def assert_sync_failed_and_nothing_lost(outcome: Outcome, content: dict[str, str]) -> None:
    outcome.assert_sane()
    outcome.assert_falco_untouched()
    assert DEPLOY_KEY_FILE not in outcome.after
    status = outcome.out.unit_status
    assert isinstance(status, testing.BlockedStatus)
    assert status.message.startswith(NOT_SYNCED), status.message
    assert_not_leaked(outcome, content)


@examples(0.75)
@given(content=secret_contents(WRONG_SSH_KEYS))
def test_wrong_deploy_key_keeps_the_running_rules(
    ssh_world: World, content: dict[str, str]
) -> None:
    """arrange: rules from a repository over ssh. act: the key secret gets wrong content."""
    outcome = rotated(ssh_world, content)

    assert_sync_failed_and_nothing_lost(outcome, content)


@examples(0.5)
@given(content=secret_contents(WRONG_TOKENS))
# Found by the ci profile: a token this long made the environment git gets too big for
# execve (E2BIG) and the hook crashed.
@example(content={"value": "0" * 200_000})
def test_wrong_token_keeps_the_running_rules(https_world: World, content: dict[str, str]) -> None:
    """arrange: rules from a repository over https. act: the token secret gets wrong content."""
    outcome = rotated(https_world, content)

    assert_sync_failed_and_nothing_lost(outcome, content)


@examples(0.75)
@given(
    options=st.fixed_dictionaries(
        {},
        optional={
            "custom-config-repository": ANY_REPOSITORY_URL,
            "custom-config-repo-known-hosts": ANY_KNOWN_HOSTS,
            "custom-config-repo-ssh-key": SECRET_IDS,
            "custom-config-repo-token": SECRET_IDS,
        },
    )
)
def test_any_repository_options_are_survived(ssh_world: World, options: dict[str, Any]) -> None:
    """arrange: rules from a repository. act: its options become anything. assert.

    No crash, a sane status; invalid options change nothing at all; otherwise the rules
    Falco runs stay (none of these repositories has other rules to offer).
    """
    config = {**ssh_world.state.config, **options}
    state = dataclasses.replace(ssh_world.state, config=config)

    outcome = ssh_world.dispatch(ssh_world.ctx.on.config_changed(), state)

    outcome.assert_sane()
    if outcome.refused_as_invalid_config:
        outcome.assert_untouched()
    else:
        outcome.assert_falco_untouched()
        assert DEPLOY_KEY_FILE not in outcome.after
