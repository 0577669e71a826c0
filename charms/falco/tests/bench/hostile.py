"""The bench's measures of issue 14: idle hooks on large inputs, and a hook meeting a huge blob.

* Idle hooks that do not grow with the input. Three units, each on its own fake machine,
  take turns at update-status, so that a slow spell of the shared machine lands on all
  three: one with empty inputs, one with 50,000 ``enabled-rules`` items, one whose rules come
  from a 3,000-file repository at a tag. Each hook is a no-op, and each large one must cost
  at most ``MAX_RATIO`` times the empty one (median of ``ROUNDS``).
* The peak memory of a hook that syncs a commit holding a 400 MiB rules file (a couple of
  MiB in the pack: it is one line repeated). The hook runs in a fresh interpreter, as a Juju
  hook does, and reports its own peak RSS and the largest of the processes it ran (git,
  ssh); the same hook on a commit without the file is the reference. Linux hands a process
  the high-water mark of the memory it replaced at exec, so a child's ``ru_maxrss`` is never
  below its parent's size when it started: the hook reads its own memory's mark (``VmHWM``
  in /proc/self/status) instead, or it would report the bench's size (270 MiB after the
  200-unit fleet); the children's figure (``RUSAGE_CHILDREN``) includes the hook's size when
  it forked git, so "git" reads "at most this much". The limit holds for both. The served
  repository is packed beforehand, as a git server keeps its repositories: the server side then
  streams the blob, and the git figures are the client's (a real server is elsewhere).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_support import EventStats, Limit
from git_repos import RulesRepo, git, rule

ROUNDS = 25
MAX_RATIO = 1.5
SELECTION_ITEMS = 50_000
REPOSITORY_FILES = 3_000
HUGE_MIB = 400
MAX_HOOK_RSS_MIB = 100.0
_LINE = b"# one line of a rules file that someone made very, very long\n"


def idle_sequences(
    make_bench: Callable[[str], Any], with_repository: Callable[..., Any]
) -> list[EventStats]:
    """Install the three units, then time their update-status hooks in turns."""
    empty = make_bench("idle-empty")
    selection = make_bench("idle-selection")
    items = ",".join(f"rule number {n}" for n in range(SELECTION_ITEMS))
    selection.state = dataclasses.replace(selection.state, config={"enabled-rules": items})
    repository = make_bench("idle-repository")
    files = {f"rules.d/{n:05}.yaml": rule(f"Repository rule {n}") for n in range(REPOSITORY_FILES)}
    _, repository.state = with_repository(repository, "v1", files)
    units = {
        empty: EventStats("update-status (empty inputs)", noop=True),
        selection: EventStats(f"update-status ({SELECTION_ITEMS} enabled-rules items)", noop=True),
        repository: EventStats(
            f"update-status (repository of {REPOSITORY_FILES} files at a tag)", noop=True
        ),
    }
    for bench in units:
        bench.dispatch(EventStats("install"), bench.ctx.on.install, bench.state)
        # The first hook after install: not timed (it may find the charm's records new).
        bench.dispatch(EventStats("warm-up"), bench.ctx.on.update_status, bench.state)
    for _ in range(ROUNDS):
        for bench, stats in units.items():
            bench.clock.now += 5 * 60
            bench.dispatch(stats, bench.ctx.on.update_status, bench.state)
    baseline, *large = units.values()
    for stats in large:
        stats.within(baseline, MAX_RATIO)
    return list(units.values())


# ------------------------------------------------------------------------------ peak memory
def huge_blob_repository(base: Path) -> tuple[RulesRepo, str, str]:
    """Return a repository with a tag ``small`` and a tag ``huge`` (a 400 MiB rules file)."""
    repo = RulesRepo(base)
    repo.commit({"rules.d/10-custom.yaml": rule("Bench rule")})
    repo.tag("small")
    chunk = (_LINE * ((1 << 20) // len(_LINE) + 1))[: 1 << 20]
    repo.commit_stream("rules.d/20-huge.yaml", (chunk for _ in range(HUGE_MIB)))
    repo.tag("huge")
    git(repo.bare, "-c", "core.bigFileThreshold=1m", "repack", "-a", "-d", "-q")
    return repo, "small", "huge"


_HOOK = """\
import json, re, resource, sys
from pathlib import Path
sys.path[:0] = {paths!r}
import bench
base = Path({base!r})
unit = bench.Bench(base / "unit")
_, state = bench._with_repository(unit, {ref!r}, bare=Path({bare!r}))
unit.dispatch(bench.EventStats("install"), unit.ctx.on.install, state)
print(json.dumps({{
    "status": str(unit.state.unit_status),
    "hook_kib": int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())[1]),
    "git_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}}))
"""


def hook_peak_rss(bench_dir: Path, base: Path, bare: Path, ref: str) -> dict[str, Any]:
    """Install a unit whose repository is at ``ref``, in a fresh interpreter; its peak RSS."""
    code = _HOOK.format(paths=[str(bench_dir)], base=str(base), ref=ref, bare=str(bare))
    base.mkdir(parents=True)
    # Our own interpreter and code.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"the hook on {ref} failed:\n{result.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return found


def peak_memory(bench_dir: Path, base: Path) -> tuple[dict[str, Any], list[Limit]]:
    """Measure the hook on the small and the huge commit; return the figures and the limit."""
    repo, small, huge = huge_blob_repository(base / "server")
    figures = {ref: hook_peak_rss(bench_dir, base / ref, repo.bare, ref) for ref in (small, huge)}
    if "larger than 1024 KiB" not in figures[huge]["status"]:
        raise RuntimeError(f"the huge commit was not refused: {figures[huge]['status']}")
    mib = {
        ref: {"hook": found["hook_kib"] / 1024, "git": found["git_kib"] / 1024}
        for ref, found in figures.items()
    }
    limit = Limit(
        f"peak RSS of a hook syncing a commit with a {HUGE_MIB} MiB rules file, or of its git",
        max(mib[huge].values()),
        MAX_HOOK_RSS_MIB,
        "MiB",
    )
    return mib, [limit]
