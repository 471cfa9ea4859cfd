"""The contract's maintenance-visit journal: each preventive visit, logged once.

`<contract>/visits.jsonl` holds one JSON object per line, never rewritten:

    {"event": "logged", "id": "V-1", "on": "2026-03-10", "technician": "...",
     "work": "...", "actor": "...", "recorded_at": "..."}

A visit is a day's work, so it carries a date (the contract's days), not a
time. Visits count against `services.maintenance.visits_per_year`
(`handover.operations.clauses.visit_count`). Appends are locked, checked,
written in one `write` and fsynced, as the on-site journal's are; each is
also in the audit log (`visit.logged`: id and date; never the technician's
name or the work, which may name people).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from handover.checklist.audit import AuditLog
from handover.errors import UsageError
from handover.operations.clauses import Visit
from handover.operations.onsite_journal import parse_lines, stamp
from handover.state.journal import locked_append
from handover.state.shared_blob import journal_copy

JOURNAL_NAME = "visits.jsonl"


class Logged(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event: Literal["logged"] = "logged"
    id: str = Field(min_length=1)
    on: date
    technician: str = Field(min_length=1)
    work: str = Field(min_length=1)
    actor: str
    recorded_at: AwareDatetime


_RECORD: TypeAdapter[Logged] = TypeAdapter(Logged)


def journal_path(contract_root: Path) -> Path:
    """The visit journal of the contract whose folder is `contract_root`."""
    return contract_root / JOURNAL_NAME


class VisitJournal:
    """The append-only visit journal at `path`, with the audit log its changes also go to."""

    def __init__(self, path: Path, audit: AuditLog | None = None) -> None:
        self.path = Path(path)
        self.audit = audit

    def exists(self) -> bool:
        return journal_copy(self.path).exists()  # another worker's records too, when shared

    def records(self) -> list[Logged]:
        if not journal_copy(self.path).exists():
            return []
        return parse_lines(self.path, self.path.read_bytes(), _RECORD, "a visit journal record")

    def visits(self) -> list[Visit]:
        """The visits, in the order they were logged."""
        return [_visit(r) for r in _unique(self.records(), str(self.path))]

    def log(
        self,
        on: date,
        technician: str,
        work: str,
        actor: str,
        today: date,
        visit_id: str | None = None,
    ) -> Logged:
        """Log a visit made on `on` (not after `today`); id `V-<n>` unless given."""
        if on > today + timedelta(days=1):
            raise UsageError(f"--date: {on.isoformat()} is in the future")
        if not technician.strip():
            raise UsageError("--technician: name who made the visit")
        if not work.strip():
            raise UsageError("--work: say what was done")

        def decide(data: bytes) -> list[Logged]:
            known = _unique(parse_lines(self.path, data, _RECORD, "a visit record"), str(self.path))
            ids = {r.id for r in known}
            chosen = visit_id or _next_id(ids)
            if chosen in ids:
                raise UsageError(f"visit {chosen} is already logged")
            return [
                Logged(
                    id=chosen,
                    on=on,
                    technician=" ".join(technician.split()),
                    work=" ".join(work.split()),
                    **stamp(actor),
                )
            ]

        (record,) = locked_append(self.path, decide)
        assert isinstance(record, Logged)
        if self.audit is not None:
            self.audit.append("visit.logged", actor, id=record.id, on=record.on.isoformat())
        return record


def _unique(records: list[Logged], where: str) -> list[Logged]:
    seen: set[str] = set()
    for number, record in enumerate(records, start=1):
        if record.id in seen:
            raise UsageError(f"{where}: record {number}: visit {record.id} logged twice")
        seen.add(record.id)
    return records


def _visit(record: Logged) -> Visit:
    return Visit(id=record.id, on=record.on, technician=record.technician, work=record.work)


def _next_id(ids: set[str]) -> str:
    numbers = [int(i[2:]) for i in ids if i.startswith("V-") and i[2:].isdigit()]
    return f"V-{max(numbers, default=0) + 1}"
