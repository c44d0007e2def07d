"""mkdocs hook (``hooks:`` in mkdocs.yml): fills the config reference page, ``config.md``, with the
table of every ``TrainConfig`` key, generated from the code at build time
(``auxbench.experiment.schema.settings_markdown``), so the page cannot drift from the config. The
page holds ``MARKER`` exactly once where the table goes; a missing or repeated marker fails the
build."""

from __future__ import annotations

import re

from mkdocs.exceptions import PluginError

from auxbench.experiment.schema import settings_markdown

PAGE = "config.md"
MARKER = "<!-- TRAIN-CONFIG-TABLE -->"
CODE_SPAN = re.compile(r"`[^`\n]*`")


def table() -> str:
    """``settings_markdown()`` for Python-Markdown: its table escapes the pipes of types such as
    ``int | None`` (GitHub's table syntax), but Python-Markdown splits no cell inside a code span
    and would show the backslash there, so code spans get their pipes back unescaped."""
    return CODE_SPAN.sub(lambda span: span.group().replace("\\|", "|"), settings_markdown())


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    """The config page's Markdown with its marker replaced by the generated table."""
    if page.file.src_uri != PAGE:
        return markdown
    if markdown.count(MARKER) != 1:
        raise PluginError(f"docs/{PAGE} must hold the marker {MARKER} exactly once")
    return markdown.replace(MARKER, table().rstrip("\n"))
