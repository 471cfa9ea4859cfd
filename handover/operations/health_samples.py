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

With `HANDOVER_STATE_URL=postgresql://...` the health flow may run on any
worker and the SLA report on another, so a file per worker would split the
month: each month is then the store's journal `health-samples-YYYY-MM` of
the contract (one row a sample, appended by any number of workers at once,
read whole by every one), and no file is written. A month's file this worker
wrote before the store was shared is merged into that journal the first time
the month is read (lines the journal already holds are not added twice),
then renamed `samples-YYYY-MM.jsonl.in-store`: its samples count, once.
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
from handover.state.shared_blob import shared_contract
from handover.state.store import ContractStore, Journal

__all__ = ["MAX_LINE", "SampleRead", "SampleStore", "journal_name"]

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


def journal_name(month: str) -> str:
    """The store's journal of a month's samples: `health-samples-YYYY-MM`."""
    return f"health-samples-{month}"


class SampleStore:
    """The append-only samples of one contract (`folder` is its `operational/health/` folder).

    Files in `folder`, or the shared store's monthly journals when the state
    store is PostgreSQL and `folder` is a contract's own (see the docstring).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        shared = shared_contract(folder, "operational/health")
        self._shared: tuple[ContractStore, str] | None = shared

    def path(self, month: str) -> Path:
        return self.folder / f"samples-{month}.jsonl"

    def _journal(self, month: str) -> Journal | None:
        """The store's journal of `month`, or None when the month is its file."""
        if self._shared is None:
            return None
        store, contract = self._shared
        return store.journal(contract, journal_name(month))

    def append(self, samples: Iterable[HealthSample]) -> int:
        """Append a round of samples (grouped by month); returns how many were written."""
        by_month: dict[str, bytearray] = {}
        count = 0
        for sample in samples:
            by_month.setdefault(_month(sample.at), bytearray()).extend(_line(sample))
            count += 1
        if not by_month:
            return 0
        for month, data in by_month.items():
            journal = self._journal(month)
            if journal is not None:
                for line in bytes(data).splitlines():
                    journal.append(line)
                continue
            ensure_private_dir(self.folder)
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
            journal = self._journal(month)
            if journal is not None:
                self._merge_file(month, journal)
                for line in journal.iter_lines():
                    sample = _sample(line + b"\n", bad)
                    if sample is not None and start <= sample.at < end:
                        yield sample
                continue
            path = self.path(month)
            if not path.exists():
                continue
            for raw in _file_lines(path, bad):
                sample = _sample(raw, bad)
                if sample is not None and start <= sample.at < end:
                    yield sample

    def _merge_file(self, month: str, journal: Journal) -> None:
        """Merge this worker's pre-store file of `month` into the journal, then set it aside.

        Under the journal's lock (`append_decided`): lines already in the
        journal are left out, so a merge a crash interrupted before the rename
        adds nothing twice. Unreadable lines stay in the renamed file only.
        """
        path = self.path(month)
        if not path.exists():
            return
        bad: list[int] = []
        try:
            local = [raw[:-1] for raw in _file_lines(path, bad) if _sample(raw, bad) is not None]

            def decide(held: bytes) -> list[bytes]:
                seen = set(held.splitlines())
                return [line for line in local if line not in seen]

            if local:
                journal.append_decided(decide)
            os.replace(path, path.with_name(path.name + ".in-store"))
        except FileNotFoundError:
            return  # another process of this worker merged it first: its lines are in


def _file_lines(path: Path, bad: list[int]) -> Iterator[bytes]:
    """The complete lines of a sample file, one in memory; each too long or torn appends 1."""
    with path.open("rb") as handle:
        while raw := handle.readline(MAX_LINE + 1):
            if not raw.endswith(b"\n"):  # too long (skip the rest) or torn at the end
                bad.append(1)
                while raw and not raw.endswith(b"\n"):
                    raw = handle.readline(MAX_LINE + 1)
                continue
            yield raw


def _sample(raw: bytes, bad: list[int]) -> HealthSample | None:
    """The sample a stored line holds; None (and 1 appended to `bad`) when it holds none."""
    if len(raw) > MAX_LINE:
        bad.append(1)
        return None
    try:
        return HealthSample.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        bad.append(1)
        return None
