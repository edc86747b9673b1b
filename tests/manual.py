"""The README and the manual's pages (docs/) as the tests read them: their text and their
fenced code blocks. The components reference is not here: it is written from the
registry when the manual is built."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: every page written by hand, README first
PAGES = [README, *sorted(DOCS.rglob("*.md"))]


def page(name: str) -> str:
    """The text of one page of the manual, by its path under docs/."""
    return (DOCS / name).read_text()


def text() -> str:
    """The README and every page of the manual, one after the other."""
    return "\n".join(path.read_text() for path in PAGES)


def code_blocks(language: str, pages: list[Path] | None = None) -> list[tuple[Path, str]]:
    """``(page, code)`` for every fenced block of ``language`` in ``pages`` (all of them
    by default), in page order."""
    found = []
    for path in pages or PAGES:
        for code in re.findall(rf"^```{language}\n(.*?)^```", path.read_text(),
                               flags=re.S | re.M):
            found.append((path, code))
    return found


def python_block(first_line: str, name: str = "plugins.md") -> str:
    """The one Python block of page ``name`` that starts with ``first_line``."""
    blocks = [code for _, code in code_blocks("python", [DOCS / name])
              if code.startswith(first_line)]
    assert len(blocks) == 1, f"one Python block of docs/{name} starting with {first_line!r}"
    return blocks[0]
