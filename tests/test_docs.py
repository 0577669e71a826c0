"""The documentation builds as plain Markdown: links resolve, reference pages are current."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# Tools' caches (.pytest_cache, .venv, ...) carry READMEs of their own: not ours to check.
PAGES = sorted(
    page
    for page in [*DOCS.rglob("*.md"), ROOT / "README.md", *ROOT.glob("*/README.md"),
                 *ROOT.glob("charms/*/README.md"), *ROOT.glob("libs/*/README.md")]
    if not any(part.startswith(".") for part in page.relative_to(ROOT).parts)
)  # fmt: skip
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


@pytest.fixture(name="generator", scope="module")
def generator_fixture() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen", DOCS / "generate_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+)$", text, re.MULTILINE)}


def _links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    """arrange: a Markdown page. act: follow its relative links. assert: targets exist."""
    broken = []
    for target in _links(page):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert broken == []


def test_every_docs_page_is_reachable_from_the_index() -> None:
    """arrange: docs/index.md. act: follow links transitively. assert: no orphan page."""
    seen: set[Path] = set()
    todo = [DOCS / "index.md"]
    while todo:
        page = todo.pop()
        if page in seen or not page.is_file() or page.suffix != ".md":
            continue
        seen.add(page)
        for target in _links(page):
            path_part = target.partition("#")[0]
            if path_part and not re.match(r"^[a-z]+:", path_part):
                todo.append((page.parent / path_part).resolve())
    orphans = sorted(str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md") if p not in seen)
    assert orphans == []


def test_generated_reference_is_current(generator: ModuleType) -> None:
    """arrange: charmcraft.yaml files. act: regenerate in memory. assert: pages unchanged."""
    stale = [
        str(path.relative_to(ROOT))
        for path, text in generator.pages().items()
        if not path.is_file() or path.read_text() != text
    ]
    assert stale == [], "run `make docs`"


@pytest.mark.parametrize("charm", ["falco", "falcosidekick-k8s"])
def test_every_option_and_action_is_documented(charm: str) -> None:
    """arrange: charmcraft.yaml. act: read the reference. assert: each option/action named."""
    meta = yaml.safe_load((ROOT / "charms" / charm / "charmcraft.yaml").read_text())
    reference = "\n".join(p.read_text() for p in (DOCS / "reference").glob(f"{charm}-*.md"))
    options = (meta.get("config") or {}).get("options") or {}
    names = [*options, *(meta.get("actions") or {})]
    missing = [name for name in names if f"`{name}`" not in reference]
    assert missing == []
