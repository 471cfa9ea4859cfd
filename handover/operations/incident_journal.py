"""The contract's incident journal: every opening, response, resolution and import, appended.

`<contract>/incidents.jsonl` holds one JSON object per line, never rewritten:

    {"event": "opened", "id": "INC-1", "severity": "P1", "title": "...",
     "at": "2026-03-02T09:15:00+01:00", "actor": "...", "recorded_at": "...", "source": "manual"}
    {"event": "acknowledged", "id": "INC-1", "at": "...", "actor": "...", "recorded_at": "..."}
    {"event": "resolved", "id": "INC-1", "at": "...", "actor": "...", "recorded_at": "..."}
    {"event": "imported", "id": "GLPI-42", "severity": "P2", "title": "...", "opened_at": "...",
     "acknowledged_at": "...", "resolved_at": null, "source": "glpi", "source_id": "42",
     "file": "tickets.json", "actor": "...", "recorded_at": "..."}
    {"event": "import", "format": "glpi", "file": "tickets.json", "sha256": "...",
     "added": 3, "updated": 1, "unchanged": 0, "rejected": 1, "actor": "...", "recorded_at": "..."}

`at` is when it happened (given with its offset), `recorded_at` when it was
written down: a backdated acknowledgement shows as such. An `imported` line
states a ticket's facts as the ticketing tool exported them and replaces
what an earlier import said; the `import` line records the run itself, so a
journal exists (and says where it came from) even when the export held no
ticket. A resolution without an acknowledgement counts as the response too.

Appends take an exclusive `flock` on the file, check the change against the
journal read under that lock, write the lines in one `write`, and fsync (the
folder too when the file is created), as the audit log does. Each change is
also appended to the contract's audit log (`incident.<event>`, with ids,
severities and times: never titles, which may name people).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from handover.checklist.audit import AuditLog
from handover.errors import UsageError
from handover.operations.incidents import Incident
from handover.state.journal import locked_append
from handover.state.shared_blob import journal_copy

JOURNAL_NAME = "incidents.jsonl"
#: How far in the future a recorded time may be (clocks drift; a typo in the year does not).
FUTURE_SLACK = timedelta(minutes=5)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    actor: str
    recorded_at: AwareDatetime


class Opened(_Record):
    event: Literal["opened"] = "opened"
    id: str = Field(min_length=1)
    severity: str
    title: str
    at: AwareDatetime
    source: str = "manual"


class Acknowledged(_Record):
    event: Literal["acknowledged"] = "acknowledged"
    id: str
    at: AwareDatetime


class Resolved(_Record):
    event: Literal["resolved"] = "resolved"
    id: str
    at: AwareDatetime


class Imported(_Record):
    event: Literal["imported"] = "imported"
    id: str = Field(min_length=1)
    severity: str
    title: str
    opened_at: AwareDatetime
    acknowledged_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    source: str
    source_id: str
    file: str


class ImportRun(_Record):
    event: Literal["import"] = "import"
    format: str
    file: str
    sha256: str
    added: int
    updated: int
    unchanged: int
    rejected: int


Record = Annotated[
    Opened | Acknowledged | Resolved | Imported | ImportRun, Field(discriminator="event")
]
_RECORD: TypeAdapter[Record] = TypeAdapter(Record)


@dataclass(frozen=True)
class Ticket:
    """One ticket of a ticketing export, as the importers read it (times aware)."""

    id: str  # the incident id in the journal, e.g. GLPI-42
    source_id: str  # the ticket number in the tool
    severity: str
    title: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class ImportSummary:
    """What an import did; `run` is the `import` line it appended."""

    added: int
    updated: int
    unchanged: int
    run: ImportRun


def journal_path(contract_root: Path) -> Path:
    """The incident journal of the contract whose folder is `contract_root`."""
    return contract_root / JOURNAL_NAME


class IncidentJournal:
    """The append-only incident journal at `path`, with the audit log its changes also go to."""

    def __init__(self, path: Path, audit: AuditLog | None = None) -> None:
        self.path = Path(path)
        self.audit = audit

    def exists(self) -> bool:
        return journal_copy(self.path).exists()  # another worker's records too, when shared

    def records(self) -> list[Record]:
        """Every line, in order; UsageError names the line that is not a record."""
        if not journal_copy(self.path).exists():
            return []
        with self.path.open("rb") as handle:
            return _parse(self.path, handle.read())

    def incidents(self) -> list[Incident]:
        """The incidents the journal states, in the order they were first recorded."""
        return list(replay(self.records(), str(self.path)).values())

    # -- changes -----------------------------------------------------------------------

    def open(
        self, incident_id: str | None, severity: str, title: str, at: datetime, actor: str
    ) -> Opened:
        """Record a new incident (id `INC-<n>` unless given); UsageError if the id is taken."""
        _check_time(at, "--at")
        if not title.strip():
            raise UsageError("--title: say what happened")

        def change(state: dict[str, Incident]) -> list[Record]:
            chosen = incident_id or _next_id(state)
            if chosen in state:
                raise UsageError(f"incident {chosen} is already recorded")
            return [
                Opened(id=chosen, severity=severity, title=title.strip(), at=at, **_stamp(actor))
            ]

        (record,) = self._change(change)
        assert isinstance(record, Opened)
        return record

    def acknowledge(self, incident_id: str, at: datetime, actor: str) -> Acknowledged:
        """Record the first response to an open incident (once)."""
        _check_time(at, "--at")

        def change(state: dict[str, Incident]) -> list[Record]:
            incident = _known(state, incident_id)
            if incident.responded_at is not None:
                raise UsageError(
                    f"incident {incident_id} was already acknowledged at "
                    f"{incident.responded_at.isoformat()}"
                )
            _not_before(incident, at, "acknowledged")
            return [Acknowledged(id=incident_id, at=at, **_stamp(actor))]

        (record,) = self._change(change)
        assert isinstance(record, Acknowledged)
        return record

    def resolve(self, incident_id: str, at: datetime, actor: str) -> Resolved:
        """Record the resolution of an open incident (its response too, when none was recorded)."""
        _check_time(at, "--at")

        def change(state: dict[str, Incident]) -> list[Record]:
            incident = _known(state, incident_id)
            if incident.resolved_at is not None:
                raise UsageError(
                    f"incident {incident_id} was already resolved at "
                    f"{incident.resolved_at.isoformat()}"
                )
            _not_before(incident, at, "resolved")
            if incident.responded_at is not None and at < incident.responded_at:
                raise UsageError(
                    f"incident {incident_id}: resolved at {at.isoformat()}, before its "
                    f"acknowledgement at {incident.responded_at.isoformat()}"
                )
            return [Resolved(id=incident_id, at=at, **_stamp(actor))]

        (record,) = self._change(change)
        assert isinstance(record, Resolved)
        return record

    def import_tickets(
        self, tickets: Sequence[Ticket], fmt: str, file: Path, rejected: int, actor: str
    ) -> ImportSummary:
        """Record the tickets of an export: new ones added, changed ones restated, others skipped.

        Idempotent: importing the same export again adds only the `import` line.
        A ticket whose id names an incident recorded by hand is refused.
        """
        digest = _sha256(file)
        counts = {"added": 0, "updated": 0, "unchanged": 0}

        def change(state: dict[str, Incident]) -> list[Record]:
            records: list[Record] = []
            for ticket in tickets:
                known = state.get(ticket.id)
                if known is not None and known.source == "manual":
                    raise UsageError(
                        f"{file}: ticket {ticket.source_id} would be incident {ticket.id}, "
                        "which was recorded by hand"
                    )
                fresh = _ticket_incident(ticket, fmt)
                if known is not None and _same(known, fresh):
                    counts["unchanged"] += 1
                    continue
                counts["updated" if known is not None else "added"] += 1
                records.append(
                    Imported(
                        id=ticket.id,
                        severity=ticket.severity,
                        title=ticket.title,
                        opened_at=ticket.opened_at,
                        acknowledged_at=ticket.acknowledged_at,
                        resolved_at=ticket.resolved_at,
                        source=fmt,
                        source_id=ticket.source_id,
                        file=file.name,
                        **_stamp(actor),
                    )
                )
            records.append(
                ImportRun(
                    format=fmt,
                    file=file.name,
                    sha256=digest,
                    added=counts["added"],
                    updated=counts["updated"],
                    unchanged=counts["unchanged"],
                    rejected=rejected,
                    **_stamp(actor),
                )
            )
            return records

        written = self._change(change)
        run = written[-1]
        assert isinstance(run, ImportRun)
        return ImportSummary(counts["added"], counts["updated"], counts["unchanged"], run)

    def _change(self, change: Callable[[dict[str, Incident]], list[Record]]) -> list[Record]:
        """Read the journal under its lock, let `change` decide, append its records, audit them."""

        def decide(data: bytes) -> list[Record]:
            state = replay(_parse(self.path, data), str(self.path))
            records = change(state)
            replay(records, str(self.path), state)  # the change must replay on the journal
            return records

        records = locked_append(self.path, decide)
        if self.audit is not None:
            for record in records:
                self.audit.append(f"incident.{record.event}", record.actor, **_audit_data(record))
        return records


def replay(
    records: Sequence[Record], where: str, state: dict[str, Incident] | None = None
) -> dict[str, Incident]:
    """The incidents the records state, by id, first recorded first; UsageError on a clash."""
    incidents = {} if state is None else state
    for number, record in enumerate(records, start=1):
        match record:
            case Opened():
                if record.id in incidents:
                    raise UsageError(f"{where}: record {number}: incident {record.id} opened twice")
                incidents[record.id] = Incident(
                    id=record.id,
                    severity=record.severity,
                    summary=record.title,
                    opened_at=record.at,
                    source=record.source,
                )
            case Acknowledged():
                incident = _replayed(incidents, record.id, where, number)
                incidents[record.id] = incident.model_copy(update={"responded_at": record.at})
            case Resolved():
                incident = _replayed(incidents, record.id, where, number)
                responded = incident.responded_at or record.at
                incidents[record.id] = incident.model_copy(
                    update={"resolved_at": record.at, "responded_at": responded}
                )
            case Imported():
                incidents[record.id] = Incident(
                    id=record.id,
                    severity=record.severity,
                    summary=record.title,
                    opened_at=record.opened_at,
                    responded_at=record.acknowledged_at or record.resolved_at,
                    resolved_at=record.resolved_at,
                    source=record.source,
                )
            case ImportRun():
                pass
    return incidents


# -- helpers ----------------------------------------------------------------------------


def _parse(path: Path, data: bytes) -> list[Record]:
    records: list[Record] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(_RECORD.validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise UsageError(
                f"{path}:{number}: not an incident journal record ({where}: {first['msg']})"
            ) from exc
    return records


def _stamp(actor: str) -> dict[str, Any]:
    return {"actor": actor, "recorded_at": datetime.now(UTC)}


def _next_id(state: dict[str, Incident]) -> str:
    numbers = [int(i[4:]) for i in state if i.startswith("INC-") and i[4:].isdigit()]
    return f"INC-{max(numbers, default=0) + 1}"


def _known(state: dict[str, Incident], incident_id: str) -> Incident:
    if incident_id not in state:
        known = ", ".join(list(state)[-5:]) or "none yet"
        raise UsageError(f"no incident {incident_id} in the journal (latest: {known})")
    return state[incident_id]


def _replayed(state: dict[str, Incident], incident_id: str, where: str, number: int) -> Incident:
    if incident_id not in state:
        raise UsageError(f"{where}: record {number}: incident {incident_id} was never opened")
    return state[incident_id]


def _not_before(incident: Incident, at: datetime, what: str) -> None:
    if at < incident.opened_at:
        raise UsageError(
            f"incident {incident.id}: {what} at {at.isoformat()}, before it was opened "
            f"({incident.opened_at.isoformat()})"
        )


def _check_time(at: datetime, option: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise UsageError(f"{option}: give the time zone, e.g. 2026-03-02T09:15+01:00")
    if at > datetime.now(UTC) + FUTURE_SLACK:
        raise UsageError(f"{option}: {at.isoformat()} is in the future")


def _ticket_incident(ticket: Ticket, fmt: str) -> Incident:
    return Incident(
        id=ticket.id,
        severity=ticket.severity,
        summary=ticket.title,
        opened_at=ticket.opened_at,
        responded_at=ticket.acknowledged_at or ticket.resolved_at,
        resolved_at=ticket.resolved_at,
        source=fmt,
    )


def _same(a: Incident, b: Incident) -> bool:
    """Same facts, whatever the offsets the times were written with."""

    def key(i: Incident) -> tuple[Any, ...]:
        times = (i.opened_at, i.responded_at, i.resolved_at)
        return (i.severity, i.summary, i.source, *(t and t.astimezone(UTC) for t in times))

    return key(a) == key(b)


def _audit_data(record: Record) -> dict[str, Any]:
    """What the audit log keeps of a record: ids, severities, times and files, never titles."""
    data = record.model_dump(mode="json", exclude={"actor", "recorded_at", "event", "title"})
    return data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()
