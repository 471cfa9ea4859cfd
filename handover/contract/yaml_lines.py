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


# What a tagged scalar should have been, for the message of one that is not.
_TAG_WORDS = {
    "tag:yaml.org,2002:timestamp": "date",
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
    "tag:yaml.org,2002:bool": "boolean",
}


def _construct(root: yaml.Node, file: str) -> Any:
    """The Python data of the node tree; PlaybookError at the line of a value YAML cannot build.

    PyYAML resolves `2026-02-30` as a date and `!!int zz` as an integer, then
    fails building them with a bare ValueError (or TypeError, AttributeError)
    that names no line: such a failure is located here by building the
    scalars one at a time. The value itself is never quoted (it may be a
    secret); a date's message says what is wrong with it.
    """
    try:
        return yaml.SafeLoader("").construct_document(root)
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        bad = _failing_scalar(root)
        line = bad.start_mark.line + 1 if bad is not None and bad.start_mark else 1
        what = _TAG_WORDS.get(bad.tag, "value") if bad is not None else "value"
        detail = str(exc).splitlines()[0][:80] if str(exc) else ""
        why = f" ({detail})" if what == "date" and isinstance(exc, ValueError) and detail else ""
        raise PlaybookError(
            file, [f"{file}:{line}: YAML value error: not a valid {what}{why}"]
        ) from exc


def _failing_scalar(root: yaml.Node) -> yaml.ScalarNode | None:
    """The first scalar (in document order) that PyYAML's safe constructor cannot build."""
    seen: set[int] = set()
    stack = [root]
    scalars: list[yaml.ScalarNode] = []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            scalars.append(node)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(part for pair in node.value for part in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    scalars.sort(key=lambda n: n.start_mark.index if n.start_mark else 0)
    for scalar in scalars:
        try:
            yaml.SafeLoader("").construct_object(scalar)
        except (ValueError, TypeError, AttributeError, OverflowError, yaml.YAMLError):
            return scalar
    return None


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
        data = _construct(node, file)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, file) from exc
    composed = ComposedYaml(data)
    _record_lines(node, composed, file)
    return composed
