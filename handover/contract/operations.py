"""The `operations` section: where incidents come from and the calendar their times run on.

Optional: a playbook without it imports CSV only when it declares its columns,
maps GLPI priorities with GLPI's own scale (6 major .. 1 very low) and
measures response and resolution times on French public holidays. The hotline
hours themselves are `services.hotline.hours`, and the time zone is
`contract.timezone` (default Europe/Paris): see
`handover.operations.business_calendar`.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from handover.contract.base import PlaybookModel
from handover.contract.cron import CronExpression
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


#: What an alert is about (`handover.operations.alerts`); the Prefect event is `handover.<kind>`.
AlertKind = Literal[
    "sla-breach",
    "cert-expiring",
    "disk-threshold",
    "backup-failed",
    "backup-missed",
    "drill-failed",
    "exit-deadline",
    "patch-failed",
    "hotline.quota-80",  # emitted by tasks.clauses (once per contract year), routed like the rest
]
#: A Prefect block document, by its type's slug and its name: `custom-webhook/ops-hook`.
BLOCK_REFERENCE = r"^[a-z0-9][a-z0-9-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$"


class Notifications(PlaybookModel):
    """Where alerts go: a notification block the provider registered in Prefect (by name).

    The block (custom-webhook, slack-webhook, sendgrid-email, ...) holds the
    address and any token; the playbook names it only, so no secret is here.
    """

    block: str = Field(
        pattern=BLOCK_REFERENCE,
        description="Block type slug and block document name, e.g. 'custom-webhook/ops-hook'.",
    )
    kinds: list[AlertKind] = Field(
        default_factory=lambda: list(get_args(AlertKind)),
        min_length=1,
        description="The alert kinds sent to the block (default: all).",
    )
    repeat_hours: float = Field(
        default=24, gt=0, description="The same fact (kind and subject) is sent again after this."
    )
    exit_warning_days: int = Field(
        default=14, ge=0, description="Warn when an exit deadline comes within this many days."
    )
    backup_max_age_hours: float = Field(
        default=36, gt=0, description="A dataset whose newest backup is older is a missed backup."
    )


class Patching(PlaybookModel):
    """Applying pending security updates, in the maintenance window only (MCO)."""

    approval: Literal["auto", "ask", "report"] = Field(
        default="report",
        description="auto: apply in the window; ask: a person approves in a Prefect form; "
        "report: list only (the default: nothing changes on a host unless the contract says so).",
    )
    security_only: bool = Field(
        default=True, description="Apply security updates only (apt: from *-security origins)."
    )
    timeout_minutes: int = Field(default=30, ge=1, le=600)


class TaskSchedules(PlaybookModel):
    """Cron overrides of the operational tasks' clocks, in the contract's time zone.

    Unset: health every 5 minutes, security updates daily at 06:00, the SLA
    report at 06:00 on the first day after each reporting period, the drill
    quarterly (15 February, May, August, November at 03:00), the technology
    watch weekly (Monday 07:00). The backups follow `backups.schedule`.
    """

    health: CronExpression | None = Field(default=None, description="Health samples.")
    updates: CronExpression | None = Field(default=None, description="Pending security updates.")
    sla_report: CronExpression | None = Field(
        default=None, description="The SLA report of the period just ended."
    )
    drill: CronExpression | None = Field(default=None, description="The reversibility drill.")
    technology_watch: CronExpression | None = Field(
        default=None, description="End-of-life and certificates."
    )


class Operations(PlaybookModel):
    """Incidents' sources, the business calendar and the tasks' schedules (optional)."""

    incidents: IncidentSources = Field(default_factory=IncidentSources)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    schedules: TaskSchedules = Field(default_factory=TaskSchedules)
    notifications: Notifications | None = Field(
        default=None, description="Where alerts are sent (flows.notifications); none: events only."
    )
    patching: Patching = Field(default_factory=Patching)
