"""The `services` and `sla` sections: what the provider owes and how fast.

The operational phase measures the SLA (severities, availability, disk and
certificate thresholds) and reports against it.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from handover.contract.base import LocatedProblems, PlaybookModel
from handover.contract.fields import Email, NonEmpty
from handover.contract.health_checks import HealthChecks


class Maintenance(PlaybookModel):
    """Preventive maintenance (MCO) visits."""

    visits_per_year: int = Field(default=0, ge=0)
    window: str | None = Field(
        default=None, description="Maintenance window, e.g. 'Tue 20:00-23:00'."
    )


class Hotline(PlaybookModel):
    """Hotline (support) terms."""

    mode: Literal["unlimited", "tickets", "hours"] = Field(
        default="unlimited", description="unlimited, a ticket quota, or an hours quota."
    )
    hours: str | None = Field(
        default=None, description="Opening hours, e.g. 'Mon-Fri 08:00-18:00'."
    )
    channels: list[Literal["phone", "email", "portal", "chat"]] = Field(default_factory=list)
    phone: str | None = None
    email: Email | None = None
    quota: int | None = Field(
        default=None,
        ge=0,
        description="Tickets or hours per contract year (mode tickets/hours); each incident "
        "of the journal uses one ticket, or its business-time duration.",
    )

    @model_validator(mode="after")
    def _quota(self) -> Self:
        if self.mode != "unlimited" and self.quota is None:
            raise LocatedProblems([(("quota",), f"required when mode is {self.mode!r}")])
        return self


class Onsite(PlaybookModel):
    """On-site intervention (intervention sur site)."""

    delay_hours: float = Field(gt=0, description="Maximum delay before a technician is on site.")
    clock: Literal["business", "wall"] = Field(
        default="business",
        description="What the delay counts: business hours (the hotline's hours, holidays "
        "closed) or wall-clock hours.",
    )


class Services(PlaybookModel):
    """Services owed by the provider."""

    maintenance: Maintenance = Field(default_factory=Maintenance)
    hotline: Hotline = Field(default_factory=Hotline)
    onsite: Onsite | None = None
    technology_watch: bool = Field(
        default=False, description="Technology watch (veille technologique)."
    )
    health_checks: HealthChecks = Field(
        default_factory=list,
        description="What the health flow samples (handover.contract.health_checks); none: "
        "a reachable check per host.",
    )


class Severity(PlaybookModel):
    """Response and resolution times for one incident severity."""

    level: str = Field(pattern=r"^P[1-9]$", description="P1 (critical) .. P4.")
    description: NonEmpty
    response_minutes: int = Field(
        gt=0, description="Time to first response (délai d'intervention)."
    )
    resolution_hours: float = Field(
        gt=0, description="Time to resolution (délai de rétablissement)."
    )


#: How often the SLA report covers: a 30-day or a 91-day period (`handover.operations.sla`).
ReportingPeriod = Literal["monthly", "quarterly"]


class Sla(PlaybookModel):
    """Service levels (niveaux de service) measured by the operational phase."""

    availability_percent: float = Field(default=99.0, gt=0, le=100)
    severities: list[Severity] = Field(default_factory=list)
    reporting_period: ReportingPeriod = "monthly"
    disk_threshold_percent: int = Field(
        default=90, ge=1, le=100, description="Disk use that raises an alert."
    )
    cert_warning_days: int = Field(
        default=30, ge=0, description="Warn when a certificate expires within this."
    )

    @field_validator("severities")
    @classmethod
    def _unique_levels(cls, severities: list[Severity]) -> list[Severity]:
        levels = [s.level for s in severities]
        if len(set(levels)) != len(levels):
            raise ValueError(f"severity levels must be unique (got {', '.join(levels)})")
        return severities
