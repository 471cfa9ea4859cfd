"""The incident model: what the operations team records for each incident.

Incidents are kept in the contract's incident journal
(`handover.operations.incident_journal`, written by `handover incident
open|ack|resolve|import`) and measured against the SLA's severities on the
contract's business calendar by `handover.operations.sla`; the model sits
alone so the journal, the importers, the SLA figures and the SLA report all
read the same record.

`load_incidents` reads the older hand-written `incidents.json` (a JSON list of
{id, severity, summary, opened_at, responded_at, resolved_at}); `handover
incident import CONTRACT incidents.json --format json` moves such a file
into the journal, which is the only source the operational run reads.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter

from handover.clock import as_utc
from handover.errors import UsageError


class Incident(BaseModel):
    """An incident as recorded: its severity, title and times (aware; naive is read as UTC)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    severity: str  # P1..P9, as in sla.severities
    summary: str
    opened_at: datetime
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    source: str = "manual"  # manual, or the export it was imported from (csv, glpi, json)

    def in_period(self, start: datetime, end: datetime) -> bool:
        """Opened within [start, end): the period an incident is reported (and measured) in.

        Each incident belongs to exactly one period of a series of reports, the
        one it was opened in, however long it lasts.
        """
        return as_utc(start) <= as_utc(self.opened_at) < as_utc(end)

    def open_at(self, moment: datetime) -> bool:
        """Opened before `moment` and not yet resolved then (carried over into a later period)."""
        opened = as_utc(self.opened_at) < as_utc(moment)
        return opened and (self.resolved_at is None or as_utc(self.resolved_at) >= as_utc(moment))


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
