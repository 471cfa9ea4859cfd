"""The builder the documents are written with: `h`, `p`, `table`... read like the document.

It collects blocks and renders them to both forms at the end; it sits apart
from the block model because it depends on both renderers, which themselves
depend on the blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from handover.documents.blocks import (
    Block,
    Bullets,
    CodeBlock,
    Fields,
    Heading,
    Inline,
    Para,
    Table,
)
from handover.documents.document import Document
from handover.documents.render_html import render_html
from handover.documents.render_markdown import render_markdown
from handover.i18n import Texts


@dataclass
class DocumentBuilder:
    """Collects blocks; `h`, `p`, `table`... read like the document they write.

    `t` is the document's language and time zone (English and UTC unless the
    document passes its contract's): the builder's own words use it too.
    """

    t: Texts = field(default_factory=Texts.of)
    blocks: list[Block] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(Heading(level, text))

    def p(self, content: Inline, kind: Literal["normal", "note", "warning"] = "normal") -> None:
        self.blocks.append(Para(content, kind))

    def bullets(self, items: Sequence[Inline], ordered: bool = False, empty: str = "") -> None:
        """A list; with no item, the `empty` sentence instead (nothing when it is blank)."""
        if items:
            self.blocks.append(Bullets(list(items), ordered))
        elif empty:
            self.blocks.append(Para(empty))

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[Inline]], empty: str = ""
    ) -> None:
        """A table; with no row, the `empty` sentence (`None.` when not given)."""
        text = empty or self.t._("None.")
        self.blocks.append(Table(list(headers), [list(r) for r in rows], text))

    def fields(self, pairs: Sequence[tuple[str, Inline | None]]) -> None:
        """Label/value pairs; a pair whose value is None, empty or [] is left out."""
        kept = [(k, v) for k, v in pairs if v is not None and v not in ("", [])]
        if kept:
            self.blocks.append(Fields(kept))

    def code(self, text: str) -> None:
        self.blocks.append(CodeBlock(text))

    def document(self, name: str, title: str) -> Document:
        return Document(
            name=name,
            title=title,
            markdown=render_markdown(title, self.blocks, self.t),
            html=render_html(title, self.blocks, self.t),
        )
