"""The `operations` section: where incidents come from and the calendar their times run on.

Optional: a playbook without it imports CSV only when it declares its columns,
maps GLPI priorities with GLPI's own scale (6 major .. 1 very low) and
measures response and resolution times on French public holidays. The hotline
hours themselves are `services.hotline.hours`, and the time zone is
`contract.timezone` (default Europe/Paris): see
`handover.operations.business_calendar`.
"""

from __future__ import annotations

from pydantic import Field

from handover.contract.base import PlaybookModel
from handover.contract.fields import NonEmpty

#: GLPI's priority (1 very low .. 5 very high, 6 major) to the contract's severities.
DEFAULT_GLPI_PRIORITIES: dict[int, str] = {6: "P1", 5: "P1", 4: "P2", 3: "P3", 2: "P4", 1: "P4"}


class CsvColumns(PlaybookModel):
    """The header of each column of a ticketing CSV export (as written in its first line)."""

    id: NonEmpty = Field(description="The ticket number in the ticketing tool.")
    opened: NonEmpty = Field(description="When the ticket was opened.")
    acknowledged: str | None = Field(
        default=None, description="When it was taken into account (first response)."
    )
    resolved: str | None = Field(default=None, description="When it was resolved.")
    severity: NonEmpty = Field(description="Its priority or severity.")
    title: NonEmpty = Field(description="Its title.")


class IncidentCsv(PlaybookModel):
    """How to read a CSV export of the ticketing tool (`handover incident import --format csv`)."""

    columns: CsvColumns
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    datetime_format: str | None = Field(
        default=None,
        description=(
            "strptime format of the dates, e.g. '%d/%m/%Y %H:%M'; default ISO 8601. "
            "Dates without an offset are read in the contract's time zone."
        ),
    )
    severities: dict[str, str] = Field(
        default_factory=dict,
        description="Export value to severity, e.g. {'Très haute': P1}; default: values as is.",
    )


class IncidentSources(PlaybookModel):
    """The ticketing exports the incident journal imports."""

    csv: IncidentCsv | None = None
    glpi_priorities: dict[int, str] = Field(
        default_factory=lambda: dict(DEFAULT_GLPI_PRIORITIES),
        description="GLPI priority (1..6) to severity.",
    )


class CalendarSettings(PlaybookModel):
    """The public holidays on which the hotline is closed."""

    holidays: str | None = Field(
        default="FR", description="Country code of the public holidays; null for none."
    )
    subdivision: str | None = Field(
        default=None, description="Region with its own holidays, e.g. '57' (Moselle)."
    )


class Operations(PlaybookModel):
    """Incidents' sources and the business calendar of the run (optional)."""

    incidents: IncidentSources = Field(default_factory=IncidentSources)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
