"""The health sample store: every sample kept, one JSON line each, one file per month.

Availability is computed from what was measured over the whole period, so
samples are appended and never rewritten: `health/samples-YYYY-MM.jsonl`
(UTC month of the sample) in the operational folder of the contract.
Appends take an exclusive `flock`, write a round in one `write` and fsync
(the folder too when the file is new), so the health flow and an operational
run never interleave lines and a crash loses at most the round being written.

A line is at most `MAX_LINE` bytes (a sample's detail is clipped before);
reading skips and counts lines that are not a valid sample (a torn last line
after a crash), rather than refusing the month.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from handover.estate.health_checks import HealthSample
from handover.state.atomic import ensure_private_dir

__all__ = ["MAX_LINE", "SampleRead", "SampleStore"]

MAX_LINE = 4096


@dataclass(frozen=True)
class SampleRead:
    """The samples of a period, and how many stored lines could not be read."""

    samples: list[HealthSample]
    unreadable_lines: int


def _month(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def _months(start: datetime, end: datetime) -> Iterator[str]:
    year, month = start.astimezone(UTC).year, start.astimezone(UTC).month
    last = end.astimezone(UTC)
    while (year, month) <= (last.year, last.month):
        yield f"{year:04d}-{month:02d}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _line(sample: HealthSample) -> bytes:
    data = json.dumps(sample.model_dump(mode="json"), separators=(",", ":")).encode() + b"\n"
    if len(data) > MAX_LINE:
        raise ValueError(f"health sample of {sample.check} is {len(data)} bytes (max {MAX_LINE})")
    return data


class SampleStore:
    """The append-only sample files of one contract (`folder` is its `health/` folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, month: str) -> Path:
        return self.folder / f"samples-{month}.jsonl"

    def append(self, samples: Iterable[HealthSample]) -> int:
        """Append a round of samples (grouped by month); returns how many were written."""
        by_month: dict[str, bytearray] = {}
        count = 0
        for sample in samples:
            by_month.setdefault(_month(sample.at), bytearray()).extend(_line(sample))
            count += 1
        if not by_month:
            return 0
        ensure_private_dir(self.folder)
        for month, data in by_month.items():
            self._append_file(self.path(month), bytes(data))
        return count

    def _append_file(self, path: Path, data: bytes) -> None:
        new = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        if new:
            dir_fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def last_taken(self, now: datetime, lookback: timedelta) -> dict[str, datetime]:
        """When each check was last sampled within `lookback` before `now`."""
        last: dict[str, datetime] = {}
        for sample in self.read(now - lookback, now + timedelta(minutes=1)).samples:
            last[sample.check] = sample.at
        return last

    def read(self, start: datetime, end: datetime) -> SampleRead:
        """The samples taken in [start, end), oldest first (small periods: tests, last rounds)."""
        bad: list[int] = []
        samples = sorted(self.iter(start, end, bad), key=lambda s: s.at)
        return SampleRead(samples, sum(bad))

    def iter(self, start: datetime, end: datetime, bad: list[int]) -> Iterator[HealthSample]:
        """The samples of [start, end) in stored (append, so time) order, one line in memory.

        Each line that is not a valid sample appends 1 to `bad`.
        """
        for month in _months(start, end):
            path = self.path(month)
            if not path.exists():
                continue
            with path.open("rb") as handle:
                while raw := handle.readline(MAX_LINE + 1):
                    if not raw.endswith(b"\n"):  # too long (skip the rest) or torn at the end
                        bad.append(1)
                        while raw and not raw.endswith(b"\n"):
                            raw = handle.readline(MAX_LINE + 1)
                        continue
                    try:
                        sample = HealthSample.model_validate(json.loads(raw))
                    except (ValueError, ValidationError):
                        bad.append(1)
                        continue
                    if start <= sample.at < end:
                        yield sample
