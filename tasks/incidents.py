"""Incidents of the period, measured against the SLA's response and resolution times.

Incidents are recorded by the operations team in the contract folder
(`incidents.json`: a list of {id, severity, summary, opened_at,
responded_at, resolved_at}); a ticketing connector would write the same file.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, TypeAdapter

from handover.contract.playbook import Playbook
from handover.errors import UsageError
from handover.operations.incidents import Incident
from handover.state.home import contract_dir

INCIDENTS_FILE = "incidents.json"


def load_incidents(contract: str) -> list[Incident]:
    path = contract_dir(contract) / INCIDENTS_FILE
    if not path.exists():
        return []
    try:
        return TypeAdapter(list[Incident]).validate_json(path.read_bytes())
    except ValueError as exc:
        raise UsageError(f"{path}: not a list of incidents: {exc}") from exc


class IncidentMeasure(BaseModel):
    """One incident's times, and whether each met its severity's target (None: not measurable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    severity: str
    response_minutes: float | None
    resolution_hours: float | None
    response_met: bool | None
    resolution_met: bool | None


class IncidentsMeasured(BaseModel):
    """The contract's recorded incidents, measured (item incidents of the operational run)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    incidents: list[IncidentMeasure]
    count: int
    source: str  # the file the incidents were read from, relative to the contract folder


def measure(playbook: Playbook) -> IncidentsMeasured:
    """Each incident with its response/resolution time and whether it met its severity's target."""
    targets = {s.level: s for s in playbook.sla.severities}
    rows: list[IncidentMeasure] = []
    for incident in load_incidents(playbook.contract_id):
        target = targets.get(incident.severity)
        response_min = (
            (incident.responded_at - incident.opened_at).total_seconds() / 60
            if incident.responded_at
            else None
        )
        resolution_h = (
            (incident.resolved_at - incident.opened_at).total_seconds() / 3600
            if incident.resolved_at
            else None
        )
        rows.append(
            IncidentMeasure(
                id=incident.id,
                severity=incident.severity,
                response_minutes=response_min,
                resolution_hours=resolution_h,
                response_met=None
                if target is None or response_min is None
                else response_min <= target.response_minutes,
                resolution_met=None
                if target is None or resolution_h is None
                else resolution_h <= target.resolution_hours,
            )
        )
    return IncidentsMeasured(incidents=rows, count=len(rows), source=INCIDENTS_FILE)
