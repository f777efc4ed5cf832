"""The documentation's links hold: the README is short and sends the reader to pages under docs/,
so a page renamed or a heading reworded must not leave a link pointing nowhere. Every relative
link in README.md, docs/*.md and the folders' READMEs names an existing file, and its #anchor a
heading of that file (GitHub's slugs); every page under docs/ is reachable from the README."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:


def pages() -> list[Path]:
    folders = [p for p in ROOT.glob("*/README.md") if not p.parent.name.startswith(".")]
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(folders)]


def prose(path: Path) -> str:
    """The page without code blocks: a `[x](y)` in a shell example is not a link."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def links(path: Path) -> list[str]:
    return LINK.findall(CODE.sub("x", prose(path)))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(prose(path)):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken(page: Path) -> list[str]:
    wrong = []
    for target in links(page):
        if EXTERNAL.match(target):
            continue
        name, _, anchor = target.partition("#")
        dest = (page.parent / unquote(name)).resolve() if name else page
        if not dest.exists():
            wrong.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            wrong.append(f"{target} (no such heading in {dest.name})")
    return wrong


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken(page) == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md")
              if not EXTERNAL.match(t)}
    pages_ = sorted((ROOT / "docs").glob("*.md"))
    assert pages_, "no pages under docs/"
    assert [p.name for p in pages_ if p.resolve() not in linked] == []


def test_the_checker_sees_a_broken_link_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Who can move a device: the PIN\n\n## A person behind `0`\n")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md#who-can-move-a-device-the-pin) [ok](a.md#a-person-behind-0)\n"
                    "[gone](c.md) [bad](a.md#nowhere) `[code](c.md)` [web](https://x.org/y)\n"
                    "```\n[fenced](c.md)\n```\n")
    assert broken(page) == ["c.md (no such file)", "a.md#nowhere (no such heading in a.md)"]
