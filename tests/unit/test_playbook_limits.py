"""Playbooks are bounded: size, nesting depth, number of values, alias expansion (#12).

Each limit ends in one clear `file:line:` message (PlaybookError), quickly,
never in a RecursionError, a MemoryError or a hang.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from handover.contract.loader import load_playbook, read_contract_id, validate_playbook_text
from handover.contract.yaml_lines import (
    MAX_DEPTH,
    MAX_EXPANDED_NODES,
    MAX_NODES,
    MAX_PLAYBOOK_BYTES,
)
from handover.errors import PlaybookError

ACME = Path(__file__).resolve().parents[2] / "playbooks" / "examples" / "acme.yaml"


def refused(text: str) -> str:
    """The single problem of `text`, checked to come fast."""
    started = time.monotonic()
    with pytest.raises(PlaybookError) as caught:
        validate_playbook_text(text, "p.yaml")
    assert time.monotonic() - started < 5
    (problem,) = caught.value.problems
    assert "\n" not in problem
    return problem


def test_a_file_over_one_mib_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    valid = ACME.read_text(encoding="utf-8")
    path.write_text(valid + "#" * (MAX_PLAYBOOK_BYTES - len(valid.encode()) + 1) + "\n")
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: playbook too large (")
    assert "1 MiB" in problem
    assert read_contract_id(path) is None


def test_a_playbook_just_under_the_size_limit_is_read(tmp_path: Path) -> None:
    valid = ACME.read_text(encoding="utf-8")
    path = tmp_path / "padded.yaml"
    path.write_text(valid + "#" * (MAX_PLAYBOOK_BYTES - len(valid.encode()) - 1) + "\n")
    assert path.stat().st_size == MAX_PLAYBOOK_BYTES
    assert load_playbook(path).contract_id == "acme-2026"


def test_a_huge_scalar_counts_against_the_size() -> None:
    problem = refused("contract: {id: " + "a" * (MAX_PLAYBOOK_BYTES + 10) + "}\n")
    assert problem.startswith("p.yaml: playbook too large")


def test_deep_nesting_is_refused_at_its_line() -> None:
    block = "".join(f"{'  ' * level}k{level}:\n" for level in range(MAX_DEPTH + 5))
    problem = refused("contract:\n" + "".join("  " + line for line in block.splitlines(True)))
    assert problem.endswith(f"(top): nested deeper than {MAX_DEPTH} levels")
    assert problem.startswith(f"p.yaml:{MAX_DEPTH + 1}:")  # where level 33 opens


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 200_000])
def test_deep_flow_lists_never_reach_the_recursive_composer(depth: int) -> None:
    problem = refused("a: " + "[" * depth + "]" * depth + "\n")
    assert problem.startswith("p.yaml:1:")
    assert "nest" in problem  # ours, or libyaml's own "maximum nesting depth"


def test_nesting_at_the_limit_is_not_refused_for_its_depth() -> None:
    depth = MAX_DEPTH - 1  # the top mapping is one level
    problems = []
    try:
        validate_playbook_text("a: " + "[" * depth + "]" * depth + "\n", "p.yaml")
    except PlaybookError as error:
        problems = error.problems
    assert problems and not any("nested deeper" in p for p in problems)


def test_too_many_values_are_refused() -> None:
    problem = refused("contract:\n" + "".join(f"  - {i}\n" for i in range(MAX_NODES + 1)))
    assert problem.endswith(f"(top): more than {MAX_NODES} values")


def test_billion_laughs_is_refused_before_expansion() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        ref = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([ref] * 10)}]")
    problem = refused("\n".join(lines) + "\n")
    assert (
        problem
        == f"p.yaml:1: (top): more than {MAX_EXPANDED_NODES} values once YAML aliases are expanded"
    )


def test_a_recursive_alias_is_refused() -> None:
    problem = refused("a: &x\n  b: *x\n")
    assert "recursive YAML alias" in problem


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("2026-02-30", "not a valid date (day is out of range for month)"),
        ("2026-13-01", "not a valid date (month must be in 1..12)"),
        ("2026-02-01T25:00:00Z", "not a valid date (hour must be in 0..23)"),
        ("!!timestamp someday", "not a valid date"),
        ("!!int twelve", "not a valid integer"),
        ("!!float many", "not a valid number"),
    ],
)
def test_a_value_yaml_cannot_build_is_a_located_error_not_a_traceback(
    value: str, says: str
) -> None:
    """PyYAML raises a bare ValueError for these; the loader says where (found by the fuzz)."""
    text = ACME.read_text(encoding="utf-8")
    old = "signed: 2026-01-10"
    assert old in text
    line = text[: text.index(old)].count("\n") + 1
    problem = refused(text.replace(old, f"signed: {value}"))
    assert problem == f"p.yaml:{line}: YAML value error: {says}"


def test_a_problem_quoting_a_huge_value_is_cut_to_one_short_line() -> None:
    """A 5000-character host name, listed in 'unknown host' messages, is elided (fuzz finding)."""
    text = ACME.read_text(encoding="utf-8")
    assert "    - name: files01\n" in text
    huge = "x" * 5000
    with pytest.raises(PlaybookError) as caught:
        validate_playbook_text(
            text.replace("    - name: files01\n", f"    - name: {huge}\n"), "p.yaml"
        )
    problems = caught.value.problems
    assert any("unknown host 'files01'" in p for p in problems)
    assert all(len(p) <= 500 for p in problems)
    assert any(p.endswith(" more characters)") for p in problems)
