"""Playbook YAML parsed with the line of every value, refusing what YAML allows but hurts.

Messages point at `file:line`, so the loader needs the line of every
location, which only the node tree knows. Composing first also lets the
loader refuse recursive aliases and alias bombs before anything expands them,
and report duplicate keys, which a plain `yaml.safe_load` silently merges.

A playbook is bounded before it is composed (`check_limits`): the text in
size, the document in nesting depth and in number of values, counted on the
parser's flat event stream. The composer and the constructor recurse once
per level of nesting, so a document of a million `[` would otherwise end in
a RecursionError (or worse, in the C composer) instead of a message; and no
real playbook comes near these bounds (about 10 levels and a few thousand
values for a large estate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from handover.contract.base import Loc, format_loc
from handover.errors import PlaybookError

# libyaml when present: composing is most of the time spent on a playbook.
FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_EXPANDED_NODES = 100_000
#: Largest playbook accepted, in bytes of UTF-8 text.
MAX_PLAYBOOK_BYTES = 1024 * 1024
#: Deepest nesting of mappings and lists accepted.
MAX_DEPTH = 32
#: Most values (scalars, aliases, mappings, lists) in the document as written.
MAX_NODES = 50_000


@dataclass
class ComposedYaml:
    """The data of a document, the line of each location, and its duplicate keys."""

    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    duplicate_keys: list[tuple[int, str]] = field(default_factory=list)
    """(line, message) per key given twice in one mapping; the first one wins."""

    def line_of(self, loc: Loc) -> int:
        """Line of the longest known prefix of `loc` (a missing field gets its parent's line)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return 1


def _check_aliases(root: yaml.Node, file: str) -> None:
    """Refuse recursive aliases and alias bombs before anything walks the tree.

    Sizes are memoized per node, so this is linear in the document even when
    aliases make the expanded tree exponential.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            line = node.start_mark.line + 1
            raise PlaybookError(file, [f"{file}:{line}: recursive YAML alias"])
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        active.discard(key)
        sizes[key] = min(total, MAX_EXPANDED_NODES + 1)
        return sizes[key]

    if size(root) > MAX_EXPANDED_NODES:
        raise PlaybookError(
            file,
            [
                f"{file}:1: (top): more than {MAX_EXPANDED_NODES} values "
                "once YAML aliases are expanded"
            ],
        )


def size_problem(size: int, file: str) -> str | None:
    """The message for a playbook of `size` bytes when it is over the limit, else None."""
    if size <= MAX_PLAYBOOK_BYTES:
        return None
    return (
        f"{file}: playbook too large ({size} bytes; at most {MAX_PLAYBOOK_BYTES} bytes, 1 MiB): "
        "a playbook describes a contract, it does not carry data"
    )


def check_limits(text: str, file: str) -> None:
    """Refuse text over MAX_PLAYBOOK_BYTES, deeper than MAX_DEPTH, or over MAX_NODES values.

    Walks the parser's events (no recursion, nothing built), so it is safe
    on any input; YAML syntax errors are left to `compose`, which reports
    them with their line.
    """
    too_big = size_problem(len(text.encode("utf-8", "surrogatepass")), file)
    if too_big:
        raise PlaybookError(file, [too_big])
    depth = 0
    nodes = 0
    try:
        for event in yaml.parse(text, Loader=FAST_LOADER):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    line = _line(event)
                    raise PlaybookError(
                        file,
                        [f"{file}:{line}: (top): nested deeper than {MAX_DEPTH} levels"],
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    line = _line(event)
                    raise PlaybookError(
                        file, [f"{file}:{line}: (top): more than {MAX_NODES} values"]
                    )
    except yaml.YAMLError:
        return  # compose reports it, with its line


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else 1


def _syntax_error(exc: yaml.YAMLError, file: str) -> PlaybookError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = f"{mark.line + 1}:" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{context}, {problem}" if context else problem
    return PlaybookError(file, [f"{file}:{line} YAML syntax error: {detail}"])


def _record_lines(root: yaml.Node, composed: ComposedYaml, file: str) -> None:
    """Fill `composed.lines` from the node tree, noting keys given twice in a mapping."""

    def walk(node: yaml.Node, loc: Loc) -> None:
        composed.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = key_node.value
                key_line = key_node.start_mark.line + 1
                if key in seen and key != "<<":
                    composed.duplicate_keys.append(
                        (
                            key_line,
                            f"{file}:{key_line}: {format_loc((*loc, key))}: duplicate key "
                            f"{key!r} (first at line {seen[key]})",
                        )
                    )
                    continue
                seen[key] = key_line
                composed.lines[(*loc, key)] = key_line
                walk(value_node, (*loc, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*loc, index))

    walk(root, ())


def compose(text: str, file: str) -> ComposedYaml:
    """Parse YAML text; `file` names it in messages.

    Raises PlaybookError for bad YAML and for text over the limits (`check_limits`).
    """
    check_limits(text, file)
    try:
        node = yaml.compose(text, Loader=FAST_LOADER)
        if node is None:
            return ComposedYaml(None)
        _check_aliases(node, file)
        data = yaml.SafeLoader("").construct_document(node)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, file) from exc
    composed = ComposedYaml(data)
    _record_lines(node, composed, file)
    return composed
