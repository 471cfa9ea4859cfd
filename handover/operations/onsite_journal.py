"""The contract's on-site journal: each intervention requested, dispatched, on site, closed.

`<contract>/onsite.jsonl` holds one JSON object per line, never rewritten:

    {"event": "requested", "id": "OS-1", "reason": "...", "host": "db01", "incident": "INC-3",
     "at": "2026-03-02T09:15:00+01:00", "actor": "...", "recorded_at": "..."}
    {"event": "dispatched", "id": "OS-1", "technician": "...", "at": "...", ...}
    {"event": "arrived", "id": "OS-1", "at": "...", ...}
    {"event": "closed", "id": "OS-1", "at": "...", ...}

As in the incident journal, `at` is when it happened (with its offset) and
`recorded_at` when it was written down; each step comes once, in order
(requested <= dispatched <= arrived <= closed; arriving without a dispatch
line is allowed: the technician may have been sent by phone). Appends take an
exclusive `flock`, check the change against the journal read under it, write
in one `write` and fsync (the folder too on creation). Each change also goes
to the contract's audit log (`onsite.<event>`, ids and times; never the
reason or the technician's name, which may name people).

`parse_lines` is shared with the visit journal; appends go through `handover.state.journal`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from handover.checklist.audit import AuditLog
from handover.errors import UsageError
from handover.operations.clauses import Intervention
from handover.state.journal import locked_append
from handover.state.shared_blob import journal_copy

JOURNAL_NAME = "onsite.jsonl"
FUTURE_SLACK = timedelta(minutes=5)

R = TypeVar("R", bound=BaseModel)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    at: AwareDatetime
    actor: str
    recorded_at: AwareDatetime


class Requested(_Record):
    event: Literal["requested"] = "requested"
    reason: str = Field(min_length=1)
    host: str | None = None
    incident: str | None = None


class Dispatched(_Record):
    event: Literal["dispatched"] = "dispatched"
    technician: str = Field(min_length=1)


class Arrived(_Record):
    event: Literal["arrived"] = "arrived"


class Closed(_Record):
    event: Literal["closed"] = "closed"


Record = Annotated[Requested | Dispatched | Arrived | Closed, Field(discriminator="event")]
_RECORD: TypeAdapter[Record] = TypeAdapter(Record)
Step = Literal["dispatched", "arrived", "closed"]
_STEPS: tuple[Step, ...] = ("dispatched", "arrived", "closed")
_ORDER: dict[str, str] = {
    "dispatched": "dispatched_at",
    "arrived": "arrived_at",
    "closed": "closed_at",
}


def journal_path(contract_root: Path) -> Path:
    """The on-site journal of the contract whose folder is `contract_root`."""
    return contract_root / JOURNAL_NAME


class OnsiteJournal:
    """The append-only on-site journal at `path`, with the audit log its changes also go to."""

    def __init__(self, path: Path, audit: AuditLog | None = None) -> None:
        self.path = Path(path)
        self.audit = audit

    def exists(self) -> bool:
        return journal_copy(self.path).exists()  # another worker's records too, when shared

    def records(self) -> list[Record]:
        if not journal_copy(self.path).exists():
            return []
        return parse_lines(self.path, self.path.read_bytes(), _RECORD, "an on-site journal record")

    def interventions(self) -> list[Intervention]:
        """The interventions the journal states, first requested first."""
        return list(replay(self.records(), str(self.path)).values())

    def request(
        self,
        intervention_id: str | None,
        reason: str,
        at: datetime,
        actor: str,
        host: str | None = None,
        incident: str | None = None,
    ) -> Requested:
        """Record a request for a technician on site (id `OS-<n>` unless given)."""
        check_time(at, "--at")
        if not reason.strip():
            raise UsageError("--reason: say why a technician is needed on site")

        def change(state: dict[str, Intervention]) -> list[Record]:
            chosen = intervention_id or _next_id(state)
            if chosen in state:
                raise UsageError(f"intervention {chosen} is already recorded")
            return [
                Requested(
                    id=chosen,
                    reason=" ".join(reason.split()),
                    host=host,
                    incident=incident,
                    at=at,
                    **stamp(actor),
                )
            ]

        (record,) = self._change(change)
        assert isinstance(record, Requested)
        return record

    def step(
        self, intervention_id: str, step: Step, at: datetime, actor: str, technician: str = ""
    ) -> Record:
        """Record the dispatch, arrival or closing of an intervention (each once, in order)."""
        check_time(at, "--at")

        def change(state: dict[str, Intervention]) -> list[Record]:
            if intervention_id not in state:
                known = ", ".join(list(state)[-5:]) or "none yet"
                raise UsageError(
                    f"no intervention {intervention_id} in the journal (latest: {known})"
                )
            current = state[intervention_id]
            position = _STEPS.index(step)
            for later in _STEPS[position:]:
                done = getattr(current, _ORDER[later])
                if done is not None:
                    raise UsageError(
                        f"intervention {intervention_id} was already {later} at "
                        f"{done.isoformat()}"
                        + ("" if later == step else f": too late to record it {step}")
                    )
            earlier = [("requested", current.requested_at)] + [
                (name, getattr(current, _ORDER[name])) for name in _STEPS[:position]
            ]
            for name, when in earlier:
                if when is not None and at < when:
                    raise UsageError(
                        f"intervention {intervention_id}: {step} at {at.isoformat()}, before "
                        f"it was {name} ({when.isoformat()})"
                    )
            base = {"id": intervention_id, "at": at, **stamp(actor)}
            if step == "dispatched":
                if not technician.strip():
                    raise UsageError("--technician: name who is sent")
                return [Dispatched(technician=" ".join(technician.split()), **base)]
            return [Arrived(**base) if step == "arrived" else Closed(**base)]

        (record,) = self._change(change)
        return record

    def _change(self, change: Callable[[dict[str, Intervention]], list[Record]]) -> list[Record]:
        def decide(data: bytes) -> list[Record]:
            state = replay(
                parse_lines(self.path, data, _RECORD, "an on-site record"), str(self.path)
            )
            records = change(state)
            replay(records, str(self.path), state)
            return records

        records = locked_append(self.path, decide)
        if self.audit is not None:
            for record in records:
                data = record.model_dump(
                    mode="json", exclude={"actor", "recorded_at", "event", "reason", "technician"}
                )
                self.audit.append(f"onsite.{record.event}", record.actor, **data)
        return records


def replay(
    records: Sequence[Record], where: str, state: dict[str, Intervention] | None = None
) -> dict[str, Intervention]:
    """The interventions the records state, by id; UsageError on a record out of place."""
    interventions = {} if state is None else state
    for number, record in enumerate(records, start=1):
        if isinstance(record, Requested):
            if record.id in interventions:
                raise UsageError(
                    f"{where}: record {number}: intervention {record.id} requested twice"
                )
            interventions[record.id] = Intervention(
                id=record.id,
                reason=record.reason,
                host=record.host,
                incident=record.incident,
                requested_at=record.at,
            )
            continue
        if record.id not in interventions:
            raise UsageError(
                f"{where}: record {number}: intervention {record.id} was never requested"
            )
        update: dict[str, Any] = {_ORDER[record.event]: record.at}
        if isinstance(record, Dispatched):
            update["technician"] = record.technician
        interventions[record.id] = interventions[record.id].model_copy(update=update)
    return interventions


# -- shared with the visit journal ------------------------------------------------------


def parse_lines(path: Path, data: bytes, adapter: TypeAdapter[R], what: str) -> list[R]:
    """Every non-blank line of a journal as a record; UsageError names the first bad line."""
    records: list[R] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(adapter.validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise UsageError(f"{path}:{number}: not {what} ({where}: {first['msg']})") from exc
    return records


def stamp(actor: str) -> dict[str, Any]:
    return {"actor": actor, "recorded_at": datetime.now(UTC)}


def check_time(at: datetime, option: str) -> None:
    """An aware time, not in the future (clocks drift a little; a typo in the year does not)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise UsageError(f"{option}: give the time zone, e.g. 2026-03-02T09:15+01:00")
    if at > datetime.now(UTC) + FUTURE_SLACK:
        raise UsageError(f"{option}: {at.isoformat()} is in the future")


def _next_id(state: dict[str, Intervention]) -> str:
    numbers = [int(i[3:]) for i in state if i.startswith("OS-") and i[3:].isdigit()]
    return f"OS-{max(numbers, default=0) + 1}"
