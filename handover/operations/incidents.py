"""The incident model, and its file: what the operations team records for each incident.

Incidents come from outside handover (the contract folder's `incidents.json`,
a list of {id, severity, summary, opened_at, responded_at, resolved_at}; a
ticketing connector would write the same file) and are measured against the
SLA's severities by `handover.operations.sla`; the model sits alone so the
loader, the SLA figures and the SLA report all read the same record.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter

from handover.errors import UsageError


class Incident(BaseModel):
    """An incident of the period, for the SLA report (times in UTC)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    severity: str  # P1..P9, as in sla.severities
    summary: str
    opened_at: datetime
    responded_at: datetime | None = None
    resolved_at: datetime | None = None


def load_incidents(path: Path) -> list[Incident]:
    """The incidents recorded in `path` (a JSON list); none when the file does not exist.

    UsageError names the file when it is not a list of incidents.
    """
    if not path.exists():
        return []
    try:
        return TypeAdapter(list[Incident]).validate_json(path.read_bytes())
    except ValueError as exc:
        raise UsageError(f"{path}: not a list of incidents: {exc}") from exc
