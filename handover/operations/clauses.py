"""What the contract sells, counted: the hotline quota, on-site interventions, maintenance visits.

A managed-services contract names three clauses besides the incident times,
and each is a count the client can check:

- the hotline (`services.hotline`): unlimited, or a quota of tickets or of
  hours per contract year. Each incident of the journal opened in the
  contract year uses one ticket, or its business-time duration (opened to
  resolved, or to the end of the period while still open) on the contract's
  business calendar. At 80 % of the quota the operational run emits
  `handover.hotline.quota-80`, once per contract year;
- on-site intervention (`services.onsite.delay_hours`): the delay from the
  request to the technician's arrival, in business hours by default (the
  contract usually says "8 business hours"; `services.onsite.clock: wall`
  counts the wall clock). A request still waiting past the delay is a breach
  already;
- maintenance visits (`services.maintenance.visits_per_year`): visits
  logged in the contract year against the yearly number, due pro rata.

The contract year runs from `contract.dates.effective` to its anniversary,
in the contract's time zone. These are pure functions on plain values: the
journals (`onsite_journal`, `visit_journal`) read the records, the SLA
report (`handover.documents.sla_clauses`) renders the figures, and
`tasks/clauses.py` emits the event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from handover.clock import as_utc
from handover.operations.business_calendar import BusinessCalendar, business_seconds
from handover.operations.incidents import Incident

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook

#: The share of the hotline quota that raises `handover.hotline.quota-80`.
QUOTA_ALERT_PERCENT = 80.0
QUOTA_EVENT = "handover.hotline.quota-80"
#: The audit event that records the alert, so it fires once per contract year.
QUOTA_AUDIT_EVENT = "hotline.quota-80"


class Intervention(BaseModel):
    """An on-site intervention: why, where, when requested, dispatched, on site, closed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    reason: str
    host: str | None = None
    incident: str | None = None
    requested_at: datetime
    dispatched_at: datetime | None = None
    technician: str | None = None
    arrived_at: datetime | None = None
    closed_at: datetime | None = None


class Visit(BaseModel):
    """A maintenance visit: its day (contract time zone), the technician, the work done."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    on: date
    technician: str
    work: str


# -- the contract year ------------------------------------------------------------------


def _anniversary(effective: date, years: int) -> date:
    """`effective` plus `years` years; the 29th of February falls on the 28th when needed."""
    try:
        return effective.replace(year=effective.year + years)
    except ValueError:
        return effective.replace(year=effective.year + years, day=28)


def contract_year(effective: date, at: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The contract year [start, end) that holds `at`, in UTC; its days are days of `zone`.

    Before the effective date, the first contract year (nothing is counted before it).
    """
    day = as_utc(at).astimezone(zone).date()
    years = max(day.year - effective.year, 0)
    while years > 0 and _anniversary(effective, years) > day:
        years -= 1
    first, last = _anniversary(effective, years), _anniversary(effective, years + 1)
    return _midnight(first, zone), _midnight(last, zone)


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def playbook_year(playbook: Playbook, at: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The contract year of `playbook` that holds `at`."""
    return contract_year(playbook.contract.dates.effective, at, zone)


# -- hotline ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HotlineUsage:
    """What the hotline used in the contract year, up to `as_of`, against its quota."""

    mode: Literal["unlimited", "tickets", "hours"]
    quota: int | None
    used: float  # tickets, or hours of business time
    tickets: int
    year_start: datetime
    year_end: datetime
    as_of: datetime

    @property
    def remaining(self) -> float | None:
        return None if self.quota is None else max(self.quota - self.used, 0.0)

    @property
    def percent(self) -> float | None:
        """The share of the quota used (100 % for a zero quota as soon as anything is used)."""
        if self.quota is None:
            return None
        if self.quota == 0:
            return 100.0 if self.used > 0 else 0.0
        return 100.0 * self.used / self.quota

    @property
    def exceeded(self) -> bool:
        return self.quota is not None and self.used > self.quota

    @property
    def year_key(self) -> str:
        """The contract year, as the audit entry of the alert names it."""
        return self.year_start.isoformat()


def hotline_usage(
    playbook: Playbook,
    incidents: Iterable[Incident],
    as_of: datetime,
    calendar: BusinessCalendar,
) -> HotlineUsage:
    """The hotline's use in the contract year holding `as_of`, counted up to `as_of`.

    Incidents opened in [year start, as_of) count: one ticket each, or
    their business time from opening to resolution (to `as_of` while open).
    """
    hotline = playbook.services.hotline
    end = as_utc(as_of)
    start, year_end = playbook_year(playbook, end, calendar.zone)
    counted = [i for i in incidents if start <= as_utc(i.opened_at) < end]
    seconds = sum(
        business_seconds(i.opened_at, min(as_utc(i.resolved_at or end), end), calendar)
        for i in counted
    )
    used = seconds / 3600 if hotline.mode == "hours" else float(len(counted))
    quota = None if hotline.mode == "unlimited" else hotline.quota
    return HotlineUsage(hotline.mode, quota, used, len(counted), start, year_end, end)


def quota_alert_due(usage: HotlineUsage, alerted_years: Iterable[str]) -> bool:
    """Whether the 80 % alert must fire now: reached, and not yet raised for this contract year."""
    percent = usage.percent
    return (
        percent is not None
        and percent >= QUOTA_ALERT_PERCENT
        and usage.year_key not in set(alerted_years)
    )


def alerted_years(audit_entries: Iterable[dict[str, object]]) -> list[str]:
    """The contract years an 80 % alert was already recorded for, from the audit log's entries."""
    years: list[str] = []
    for entry in audit_entries:
        data = entry.get("data")
        if entry.get("event") == QUOTA_AUDIT_EVENT and isinstance(data, dict):
            year = data.get("year_start")
            if isinstance(year, str):
                years.append(year)
    return years


# -- on-site ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OnsiteTimes:
    """One intervention against the delay: hours to arrival (so far, while still waiting)."""

    intervention: Intervention
    hours: float
    arrived: bool
    target_hours: float | None

    @property
    def late(self) -> bool:
        return self.target_hours is not None and self.hours > self.target_hours


def onsite_delay_hours(
    intervention: Intervention, as_of: datetime, clock: str, calendar: BusinessCalendar
) -> float:
    """Hours from the request to the arrival, business or wall clock.

    Not arrived: to the closing (closed without anyone on site, e.g. fixed
    remotely), else to `as_of` (still waiting).
    """
    start = as_utc(intervention.requested_at)
    end = as_utc(intervention.arrived_at or intervention.closed_at or as_of)
    if clock == "wall":
        return max((end - start).total_seconds(), 0.0) / 3600
    return business_seconds(start, end, calendar) / 3600


def onsite_times(
    playbook: Playbook,
    interventions: Iterable[Intervention],
    start: datetime,
    end: datetime,
    calendar: BusinessCalendar,
) -> list[OnsiteTimes]:
    """The interventions requested in [start, end), each against `services.onsite.delay_hours`.

    Without an `onsite` clause the delays are stated with no target.
    """
    onsite = playbook.services.onsite
    clock = onsite.clock if onsite is not None else "business"
    target = onsite.delay_hours if onsite is not None else None
    rows = []
    for i in sorted(interventions, key=lambda i: as_utc(i.requested_at)):
        if as_utc(start) <= as_utc(i.requested_at) < as_utc(end):
            hours = onsite_delay_hours(i, end, clock, calendar)
            rows.append(OnsiteTimes(i, hours, i.arrived_at is not None, target))
    return rows


def onsite_clock_text(playbook: Playbook, calendar: BusinessCalendar) -> str:
    """What the on-site delay counts, in words, for the report."""
    onsite = playbook.services.onsite
    if onsite is not None and onsite.clock == "wall":
        return "wall-clock hours"
    return f"business hours ({calendar.description})"


# -- maintenance visits -----------------------------------------------------------------


@dataclass(frozen=True)
class VisitCount:
    """Visits of the contract year and of the period, against `visits_per_year` pro rata."""

    per_year: int
    year_start: date
    year_end: date  # excluded
    in_year: int  # logged in the year, up to the end of the period
    due_to_date: int  # whole visits due by the end of the period, pro rata
    in_period: int
    expected_in_period: float  # pro rata of the period's length

    @property
    def behind(self) -> bool:
        return self.in_year < self.due_to_date


def visit_count(
    playbook: Playbook, visits: Sequence[Visit], start: datetime, end: datetime, zone: tzinfo
) -> VisitCount:
    """Count the visits against `services.maintenance.visits_per_year` for [start, end).

    The year is the contract year holding the period's last moment; a visit
    counts by its day in the contract's time zone. Due to date is the whole
    number of visits the elapsed share of the year calls for (4 a year: one
    due after a quarter).
    """
    per_year = playbook.services.maintenance.visits_per_year
    last = as_utc(end) - timedelta(microseconds=1)
    year_start, year_end = playbook_year(playbook, last, zone)
    first_day = as_utc(start).astimezone(zone).date()
    last_day = last.astimezone(zone).date()
    y0, y1 = year_start.astimezone(zone).date(), year_end.astimezone(zone).date()
    in_year = sum(1 for v in visits if y0 <= v.on <= last_day and v.on < y1)
    in_period = sum(1 for v in visits if first_day <= v.on <= last_day)
    year_seconds = (year_end - year_start).total_seconds()
    elapsed = min(max((as_utc(end) - year_start).total_seconds(), 0.0), year_seconds)
    length = max((as_utc(end) - as_utc(start)).total_seconds(), 0.0)
    return VisitCount(
        per_year=per_year,
        year_start=y0,
        year_end=y1,
        in_year=in_year,
        due_to_date=math.floor(per_year * elapsed / year_seconds + 1e-9),
        in_period=in_period,
        expected_in_period=per_year * length / year_seconds,
    )


@dataclass(frozen=True)
class ClauseRecords:
    """What the SLA report reads for the on-site and visit clauses, and where from.

    A source of None means that journal does not exist: the report says it
    was not read, rather than "no intervention".
    """

    interventions: Sequence[Intervention] = ()
    onsite_source: str | None = None
    visits: Sequence[Visit] = ()
    visit_source: str | None = None
