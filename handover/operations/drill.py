"""The reversibility drill's verdict: each sealed volume compared with its source now.

The drill (the operational run's `reversibility-drill` item) seals every
dataset, opens the bundle in a sandbox, then snapshots each source again;
this module compares the two file lists and sums the result, apart from
the I/O so the rule can be checked on plain records. A file whose mtime is
unchanged but whose hash differs is a problem; a file that changed in
between (new mtime) or is gone is only counted as changed: live systems move.
Problems name datasets only, never a client file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from handover.bundle.types import MemberRecord


@dataclass(frozen=True)
class Comparison:
    """One volume against its source now: files checked, changed meanwhile, real differences."""

    checked: int
    changed: int
    problems: list[str]


class DrillResult(BaseModel):
    """What a drill found: counts, and problems naming datasets only (never a client file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: int
    files_checked: int
    changed_meanwhile: int  # files changed (or gone) on the source since they were sealed
    problems: list[str]


def compare_with_source(
    dataset: str, sealed: Iterable[MemberRecord], current: Iterable[MemberRecord]
) -> Comparison:
    """Each sealed regular file against the source's snapshot taken after the seal."""
    now = {member.path: member for member in current}
    checked = changed = 0
    problems: list[str] = []
    for member in sealed:
        if member.type != "file":
            continue
        checked += 1
        again = now.get(member.path)
        if again is None:
            changed += 1
        elif again.sha256 != member.sha256:
            if again.mtime == member.mtime:
                problems.append(f"{dataset}: a file differs from its source (same mtime)")
            else:
                changed += 1
    return Comparison(checked, changed, problems)


def drill_result(datasets: int, comparisons: Sequence[Comparison]) -> DrillResult:
    """The drill's totals over its volumes."""
    return DrillResult(
        datasets=datasets,
        files_checked=sum(c.checked for c in comparisons),
        changed_meanwhile=sum(c.changed for c in comparisons),
        problems=[problem for c in comparisons for problem in c.problems],
    )
