"""The reversibility drill's comparison of sealed files with their source, and its totals."""

from __future__ import annotations

from handover.bundle.types import MemberRecord
from handover.operations.drill import compare_with_source, drill_result


def _file(path: str, sha: str, mtime: float = 1.0, kind: str = "file") -> MemberRecord:
    return MemberRecord(path=path, type=kind, size=1, sha256=sha, mode=0o644, mtime=mtime)


def test_same_mtime_with_another_hash_is_a_problem_naming_the_dataset_only() -> None:
    sealed = [
        _file("same", "a"),
        _file("moved-on", "b"),
        _file("corrupt-secret-name", "c"),
        _file("gone", "d"),
        _file("folder", "", kind="dir"),
    ]
    now = [_file("same", "a"), _file("moved-on", "B", mtime=2.0), _file("corrupt-secret-name", "X")]
    comparison = compare_with_source("www", sealed, now)
    assert (comparison.checked, comparison.changed) == (4, 2)
    assert comparison.problems == ["www: a file differs from its source (same mtime)"]


def test_the_result_sums_every_volume() -> None:
    first = compare_with_source("www", [_file("a", "1")], [_file("a", "1")])
    second = compare_with_source("db", [_file("b", "1"), _file("c", "1")], [_file("b", "2")])
    result = drill_result(2, [first, second])
    assert (result.datasets, result.files_checked, result.changed_meanwhile) == (2, 3, 1)
    assert result.problems == ["db: a file differs from its source (same mtime)"]
