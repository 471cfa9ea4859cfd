"""The incident model: what the operations team records for each incident of the period.

Incidents come from outside handover (the contract folder's `incidents.json`,
a ticketing connector) and are measured against the SLA's severities by
`handover.operations.sla`; the model sits alone so the loaders, the SLA
figures and the SLA report all read the same record.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class Incident(BaseModel):
    """An incident of the period, for the SLA report (times in UTC)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    severity: str  # P1..P9, as in sla.severities
    summary: str
    opened_at: datetime
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
