"""The docs' Python examples run: every fenced ``python`` block of ``docs/**/*.md`` and
``README.md`` is executed, one test per page, the blocks of a page in order in one shared
namespace, in a temporary working directory. A block that raises fails its page's test, with a
traceback that points at the Markdown file's own line numbers. Shell commands go in ``bash``
blocks, which are not run."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?:python|py)[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def pages() -> list[Path]:
    """README.md and every page under docs/, in a stable order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ``python`` blocks of a Markdown text: (line of the block's first code line, code)."""
    blocks = []
    for match in FENCE.finditer(text):
        first_line = text.count("\n", 0, match.start("body")) + 1
        blocks.append((first_line, textwrap.dedent(match.group("body"))))
    return blocks


LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")


def pages_with_examples() -> list[Path]:
    return [page for page in pages() if python_blocks(page.read_text(encoding="utf-8"))]


def test_blocks_are_found():
    """The collector sees fenced blocks, indented ones too, and nothing else."""
    text = (
        "x\n```python\na = 1\n```\n```bash\nls\n```\n- item\n\n    ```python\n    b = 2\n    ```\n"
    )
    assert python_blocks(text) == [(3, "a = 1\n"), (11, "b = 2\n")]
    names = {page.relative_to(ROOT).as_posix() for page in pages_with_examples()}
    assert {"README.md", "docs/weighting-api.md"} <= names


@pytest.mark.parametrize(
    "page", pages_with_examples(), ids=lambda page: page.relative_to(ROOT).as_posix()
)
def test_examples_run(page, tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    name = page.relative_to(ROOT).as_posix()
    for first_line, code in python_blocks(page.read_text(encoding="utf-8")):
        # Padded so that tracebacks give the line numbers of the Markdown file; running the
        # project's own documented examples is the point of this test
        exec(compile("\n" * (first_line - 1) + code, name, "exec"), namespace)  # noqa: S102


def test_readme_links_exist():
    """README.md's relative links (to docs/ pages, CHANGELOG.md) name files that exist; the docs'
    own links and anchors are checked by ``mkdocs build --strict`` (``make docs``)."""
    targets = [m.group("target") for m in LINK.finditer((ROOT / "README.md").read_text("utf-8"))]
    relative = [t for t in targets if "://" not in t]
    assert relative, "README.md links to no docs page"
    assert [t for t in relative if not (ROOT / t).exists()] == []
