"""The Markdown form of a document: blocks rendered with every piece of input escaped.

Text from client hosts can hold anything, so ordinary text has Markdown
punctuation escaped and line starts that would turn into a heading, list or
quote neutralised; code spans are literal by nature and only need a fence
longer than the backticks they hold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from handover.documents.blocks import Block, Bullets, Fields, Heading, Inline, Para, Span, Table
from handover.i18n import Texts

_MD_SPECIAL = re.compile(r"[\\`*\[\]<>|]|(?<!\w)_|_(?!\w)")
_MD_LINE_START = re.compile(r"^(\s*)(?:([#+\-=>])|(\d+)([.)]))")


def escape_text(text: str) -> str:
    """Escape Markdown punctuation inside a line (intra-word underscores stay as they are)."""
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), " ".join(text.splitlines()))


def escape_line_start(text: str) -> str:
    """Escape what would turn the start of a line into a heading, list or quote."""

    def fix(m: re.Match[str]) -> str:
        if m.group(2):
            return m.group(1) + "\\" + m.group(2)
        return m.group(1) + m.group(3) + "\\" + m.group(4)

    return _MD_LINE_START.sub(fix, text, count=1)


def _inline(content: Inline, in_table: bool = False) -> str:
    if isinstance(content, str):
        return escape_text(content)
    if isinstance(content, Span):
        text = " ".join(content.text.splitlines())
        if content.kind == "code":
            if in_table:
                text = text.replace("|", "\\|")
            fence = "``" if "`" in text else "`"
            pad = " " if "`" in text else ""
            return f"{fence}{pad}{text}{pad}{fence}" if text else ""
        if content.kind == "em":
            return f"*{escape_text(text)}*"
        return f"**{escape_text(text)}**" if text else ""
    return "".join(_inline(part, in_table) for part in content)


def _table(block: Table) -> list[str]:
    if not block.rows:
        return [f"*{escape_text(block.empty)}*", ""]
    lines = [
        "| " + " | ".join(escape_text(h) for h in block.headers) + " |",
        "|" + "|".join("---" for _ in block.headers) + "|",
    ]
    for row in block.rows:
        lines.append("| " + " | ".join(_inline(c, in_table=True) for c in row) + " |")
    return [*lines, ""]


def _field(t: Texts, label: str, value: Inline) -> str:
    """`- **Contract:** …`; the colon as the language sets it (`Contrat :` in French)."""
    text = t._("{label}:", label=label)
    return f"- **{escape_text(text)}** {_inline(value)}"


def _block(block: Block, warning: str, t: Texts) -> list[str]:
    """The lines of one block, followed by the blank line that separates it from the next."""
    if isinstance(block, Heading):
        return [f"{'#' * min(block.level, 6)} {escape_text(block.text)}", ""]
    if isinstance(block, Para):
        prefix = {"normal": "", "note": "> ", "warning": f"> **{warning}** "}[block.kind]
        return [prefix + escape_line_start(_inline(block.content)), ""]
    if isinstance(block, Bullets):
        lines: list[str] = []
        for index, item in enumerate(block.items, start=1):
            marker = f"{index}." if block.ordered else "-"
            lines.append(f"{marker} {escape_line_start(_inline(item))}")
        return [*lines, ""]
    if isinstance(block, Fields):
        return [*(_field(t, label, value) for label, value in block.pairs), ""]
    if isinstance(block, Table):
        return _table(block)
    fence = "````" if "```" in block.text else "```"
    return [fence, block.text.rstrip("\n"), fence, ""]


def render_markdown(title: str, blocks: Sequence[Block], texts: Texts | None = None) -> str:
    """The whole document as Markdown, its title as the only level-1 heading."""
    t = texts or Texts.of()
    warning = escape_text(t._("Warning:"))
    out: list[str] = [f"# {escape_text(title)}", ""]
    for block in blocks:
        out += _block(block, warning, t)
    return "\n".join(out).rstrip("\n") + "\n"
