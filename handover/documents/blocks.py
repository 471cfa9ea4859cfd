"""The block model of a document: headings, paragraphs, lists, tables, fields, code blocks.

Every document is built once as a list of these blocks and rendered twice
from that structure (`render_markdown`, `render_html`), so the Markdown and
the HTML always say the same thing. Blocks hold plain text and styled spans
only, never markup: escaping is the renderers' job, so a hostile host name
or cron line cannot inject anything into either form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Span:
    """A piece of inline text with a style: code, strong, em, or a status badge."""

    kind: Literal["code", "strong", "em", "status"]
    text: str
    status: str = ""  # for kind == "status": css suffix (done, failed, breach, ok, ...)


Inline = str | Span | Sequence["str | Span"]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    content: Inline
    kind: Literal["normal", "note", "warning"] = "normal"


@dataclass(frozen=True)
class Bullets:
    items: Sequence[Inline]
    ordered: bool = False


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[Inline]]
    empty: str = "None."


@dataclass(frozen=True)
class Fields:
    """Label/value pairs: a definition table in HTML, a bullet list in Markdown."""

    pairs: Sequence[tuple[str, Inline]]


@dataclass(frozen=True)
class CodeBlock:
    text: str


Block = Heading | Para | Bullets | Table | Fields | CodeBlock


def code(text: object) -> Span:
    return Span("code", str(text))


def strong(text: object) -> Span:
    return Span("strong", str(text))


def badge(text: str, status: str) -> Span:
    return Span("status", text, status)


def join_codes(names: Sequence[str]) -> list[str | Span]:
    """`a`, `b`, `c`: names as code spans separated by commas."""
    parts: list[str | Span] = []
    for index, name in enumerate(names):
        if index:
            parts.append(", ")
        parts.append(code(name))
    return parts
