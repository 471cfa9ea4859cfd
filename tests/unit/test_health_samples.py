"""The sample store: appended by month, never rewritten, bounded lines, torn lines skipped."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handover.estate.health_checks import HealthSample
from handover.operations.health_samples import MAX_LINE, SampleStore


def sample(at: datetime, ok: bool = True, detail: str = "answered") -> HealthSample:
    return HealthSample(
        at=at,
        check="web01-reachable",
        service="web01",
        host="web01",
        kind="reachable",
        ok=ok,
        detail=detail,
        interval_s=300,
    )


END_OF_NOV = datetime(2026, 11, 30, 23, 58, tzinfo=UTC)


def test_append_by_month_and_read_a_period(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "health")
    first = [sample(END_OF_NOV), sample(END_OF_NOV + timedelta(minutes=5), ok=False)]
    assert store.append(first) == 2
    assert store.append([sample(END_OF_NOV + timedelta(minutes=10))]) == 1
    names = sorted(p.name for p in (tmp_path / "health").iterdir())
    assert names == ["samples-2026-11.jsonl", "samples-2026-12.jsonl"]
    assert stat.S_IMODE(os.stat(store.path("2026-12")).st_mode) == 0o600
    read = store.read(END_OF_NOV, END_OF_NOV + timedelta(hours=1))
    assert [s.ok for s in read.samples] == [True, False, True] and read.unreadable_lines == 0
    only_dec = store.read(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert len(only_dec.samples) == 2


def test_appends_never_rewrite_earlier_lines(tmp_path: Path) -> None:
    store = SampleStore(tmp_path)
    store.append([sample(END_OF_NOV)])
    before = store.path("2026-11").read_bytes()
    store.append([sample(END_OF_NOV + timedelta(minutes=1))])
    after = store.path("2026-11").read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 2


def test_torn_and_oversized_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    store = SampleStore(tmp_path)
    store.append([sample(END_OF_NOV - timedelta(minutes=5))])
    with store.path("2026-11").open("ab") as handle:
        handle.write(b"x" * (3 * MAX_LINE) + b"\n")  # oversized
        handle.write(b'{"not": "a sample"}\n')
    store.append([sample(END_OF_NOV)])
    with store.path("2026-11").open("ab") as handle:
        handle.write(b'{"at": "2026-11-30T23:59')  # torn by a crash
    read = store.read(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    assert len(read.samples) == 2 and read.unreadable_lines == 3


def test_a_sample_too_large_for_a_line_is_refused(tmp_path: Path) -> None:
    big = HealthSample.model_construct(
        **{**sample(END_OF_NOV).model_dump(), "detail": "y" * MAX_LINE}
    )
    with pytest.raises(ValueError, match="max 4096"):
        SampleStore(tmp_path).append([big])
    assert not SampleStore(tmp_path).path("2026-11").exists()


def test_reading_missing_months_is_empty(tmp_path: Path) -> None:
    read = SampleStore(tmp_path / "none").read(END_OF_NOV - timedelta(days=60), END_OF_NOV)
    assert read.samples == [] and read.unreadable_lines == 0


def test_streamed_figures_equal_the_sorted_ones(tmp_path: Path) -> None:
    from handover.operations.availability import CheckRef, check_availability, service_availability

    store = SampleStore(tmp_path)
    start = datetime(2026, 11, 30, 22, tzinfo=UTC)
    rounds = [sample(start + timedelta(minutes=5 * i), ok=i % 7 != 0) for i in range(48)]
    for one in rounds:
        store.append([one])
    end = start + timedelta(hours=4)
    check = CheckRef("web01-reachable", "web01", 300)
    bad: list[int] = []
    (streamed,) = service_availability([check], store.iter(start, end, bad), start, end)
    assert streamed == check_availability(check, rounds, start, end)
    assert streamed.samples == 48 and streamed.passed == 41 and bad == []
