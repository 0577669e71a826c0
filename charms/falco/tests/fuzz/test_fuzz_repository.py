"""Fuzz what a rules repository holds: its file names as bytes, and its files' sizes.

Anyone who can push to the rules repository writes these, through a real git repository
served over the fake ssh. Properties, on a unit whose rules come from a branch:

* a file name that is printable UTF-8 is used like any other; any other name (bytes that
  are not UTF-8, a newline, an escape, a right-to-left override) refuses the whole commit,
  with a status of one printable line quoting it escaped; Falco keeps the rules it ran;
* a file up to the 1 MiB cap is used; one over it, up to 24 MiB (streamed into the
  repository, never held whole), refuses the commit naming the file and the cap, and Falco
  keeps the rules it ran. No hook fails either way.
"""

from __future__ import annotations

from collections.abc import Iterator

import git_sync
from conftest import BranchWorld
from git_repos import rule
from hypothesis import example, given
from hypothesis import strategies as st
from ops import testing
from worlds import Outcome, examples

NOT_USED = "custom-config-repository commit "
# Bytes of one name in rules.d/ (no "/" and no NUL, which no file name holds).
NAME_BYTES = st.binary(min_size=1, max_size=40).filter(
    lambda raw: b"/" not in raw and b"\0" not in raw
)
NAMES = st.one_of(
    NAME_BYTES,
    st.text(min_size=1, max_size=20)
    .map(lambda text: text.encode())
    .filter(lambda raw: b"/" not in raw and b"\0" not in raw),
)
MIB = 1 << 20
_LINE = b"# a rules file grown by one comment line after another, again and again\n"


def pushed_and_synced(branch: BranchWorld, push: Iterator[str]) -> tuple[str, Outcome]:
    """Push with ``push`` (yields the commit, then cleans up), let the sync interval pass."""
    world = branch.world
    commit = next(push)
    try:
        world.clock.advance(24 * 60)
        return commit, world.dispatch(world.ctx.on.update_status(), world.state)
    finally:
        next(push, None)


def _readable(raw: bytes) -> bool:
    try:
        return raw.decode().isprintable()
    except UnicodeDecodeError:
        return False


def _named(branch: BranchWorld, name: str) -> Iterator[str]:
    yield branch.repo.commit({name: rule("Fuzz named rule")})
    branch.repo.commit({name: None})


def assert_refused(outcome: Outcome, commit: str) -> str:
    """The commit is refused, one printable line says so; Falco runs what it ran."""
    outcome.assert_sane()
    outcome.assert_falco_untouched()
    status = outcome.out.unit_status
    assert isinstance(status, testing.BlockedStatus), status
    assert status.message.startswith(f"{NOT_USED}{commit[:12]} not used: "), status.message
    assert status.message.isprintable(), status.message
    return status.message


@examples(0.3)
@given(raw=NAMES)
@example(raw=b"\xff")
@example(raw=b"x\nERROR forged")
@example(raw=b"\xe2\x80\xae\x6c\x6d\x61\x79")
@example(raw="règles".encode())
def test_any_file_name_is_used_or_refuses_the_commit_quoted(
    branch_world: BranchWorld, raw: bytes
) -> None:
    """arrange: rules from a branch. act: push rules.d/<any bytes>.yaml; update-status."""
    name = "rules.d/" + (raw + b".yaml").decode(errors="surrogateescape")

    commit, outcome = pushed_and_synced(branch_world, _named(branch_world, name))

    if _readable(raw):
        outcome.assert_sane()
        assert outcome.out.unit_status == branch_world.world.state.unit_status
        assert any(path.endswith("/" + name) for path in outcome.after), name
        outcome.assert_at_most_one_action()
    else:
        message = assert_refused(outcome, commit)
        assert "is not printable UTF-8: rename it" in message, message


def _sized(branch: BranchWorld, size: int) -> Iterator[str]:
    """A valid rules file of exactly ``size`` bytes (comment lines after a rule)."""
    head = rule("Fuzz sized rule").encode()
    if size <= git_sync.MAX_FILE_BYTES:
        pad = size - len(head)
        text = (head + (_LINE * (pad // len(_LINE) + 1))[:pad]).decode()
        yield branch.repo.commit({"rules.d/20-sized.yaml": text})
        branch.repo.commit({"rules.d/20-sized.yaml": None})
        return

    def chunks() -> Iterator[bytes]:
        yield head
        left = size - len(head)
        block = (_LINE * (MIB // len(_LINE) + 1))[:MIB]
        while left > 0:
            yield block[: min(left, MIB)]
            left -= MIB

    yield branch.repo.commit_stream("rules.d/20-sized.yaml", chunks())
    # The streamed file is in no work tree: the next commit records it as deleted.
    branch.repo.commit({})


@examples(0.3)
@given(
    size=st.one_of(
        st.integers(git_sync.MAX_FILE_BYTES - 64, git_sync.MAX_FILE_BYTES + 64),
        st.integers(git_sync.MAX_FILE_BYTES + 1, 24 * MIB),
        st.integers(600, git_sync.MAX_FILE_BYTES),
    )
)
@example(size=git_sync.MAX_FILE_BYTES)
@example(size=git_sync.MAX_FILE_BYTES + 1)
def test_any_file_size_is_used_up_to_the_cap_or_refuses_the_commit(
    branch_world: BranchWorld, size: int
) -> None:
    """arrange: rules from a branch. act: push a rules file of ``size`` bytes; update-status."""
    commit, outcome = pushed_and_synced(branch_world, _sized(branch_world, size))

    if size <= git_sync.MAX_FILE_BYTES:
        outcome.assert_sane()
        assert outcome.out.unit_status == branch_world.world.state.unit_status
        outcome.assert_at_most_one_action()
    else:
        message = assert_refused(outcome, commit)
        assert message.endswith("rules.d/20-sized.yaml is larger than 1024 KiB"), message
