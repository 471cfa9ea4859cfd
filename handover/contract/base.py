"""What every playbook model shares: the strict pydantic base and located problems.

Separate from the section modules because all of them, the root `Playbook`
and the loader need it: a model raises `LocatedProblems` to report several
problems at once, each at its own field, and the loader turns each into a
`file:line: field.path: problem` line with `format_loc`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

Loc = tuple[str | int, ...]


def format_loc(loc: Sequence[str | int]) -> str:
    """`perimeter.hosts[1].name` from ('perimeter', 'hosts', 1, 'name'); `(top)` when empty."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top)"


class PlaybookModel(BaseModel):
    """Base of every playbook model: unknown keys are errors; error strings never show values."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class LocatedProblems(ValueError):
    """Several cross-field problems at once, each with a location relative to the model."""

    def __init__(self, items: list[tuple[Loc, str]]) -> None:
        self.items = items
        super().__init__("; ".join(f"{format_loc(loc)}: {msg}" for loc, msg in items))
