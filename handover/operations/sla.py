"""SLA figures of a period: availability per host, and incidents against their severity's times.

The SLA report renders these figures; they are computed here, apart from
any table, so the rules (what counts as a sample, when a host is "not
measured", when an incident is late) are stated once and can be checked on
plain values. Times are compared in UTC; a naive datetime is read as UTC,
which is how handover records facts and incidents. The operational run's
`incidents` item records the same incident times (`measure_incidents`), and
its SLA report covers the period `reporting_period` gives.

The rules of the period and of the times:

- an incident belongs to the period it was opened in, [start, end), however
  long it lasts: each incident is measured in exactly one report of a series.
  One opened earlier and still open at the start is listed as carried over,
  for information, without being measured again;
- response and resolution times are business time on the contract's
  calendar (`handover.operations.business_calendar`: hotline hours, contract
  time zone, public holidays), the way the contract states them;
- without an `sla` section in the playbook there is no target: the figures
  are stated, nothing is met or breached ("not set in the contract").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from handover.clock import as_utc
from handover.estate.health import HealthCheckResult, availability
from handover.operations.business_calendar import (
    BusinessCalendar,
    business_seconds,
    contract_calendar,
)
from handover.operations.incidents import Incident

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook
    from handover.contract.services import ReportingPeriod, Severity

Verdict = Literal["met", "breached", "not measured", "no target"]
NOT_SET = "not set in the contract"

REPORTING_PERIOD_DAYS: dict[ReportingPeriod, int] = {"monthly": 30, "quarterly": 91}


def reporting_period(end: datetime, period: ReportingPeriod) -> tuple[datetime, datetime]:
    """The period a report made at `end` covers: the playbook's `sla.reporting_period` before it.

    A rolling window (30 days for monthly, 91 for quarterly) rather than the
    calendar month or quarter: each scheduled run reports what came before it.
    """
    return end - timedelta(days=REPORTING_PERIOD_DAYS[period]), end


def period_bounds(
    start: date | datetime, end: date | datetime, zone: tzinfo = UTC
) -> tuple[datetime, datetime]:
    """The period as [start, end) in UTC.

    A date bound covers the whole day of `zone` (the contract's time zone for
    the SLA report: its days are Paris days; `end` inclusive: the period
    stops at the next midnight there); a datetime bound is exact (`end`
    excluded; naive is read as UTC).
    """
    return _bound(start, zone, end=False), _bound(end, zone, end=True)


def _bound(value: date | datetime, zone: tzinfo, end: bool) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class HostAvailability:
    """One host's reachability samples in the period; `percent` is None when not measured."""

    host: str
    checks: int
    passed: int
    percent: float | None
    target: float | None  # None: not set in the contract

    @property
    def met(self) -> bool:
        """At or above the target; a host not measured never counts as available."""
        if self.target is None:
            return False
        return self.percent is not None and self.percent >= self.target

    @property
    def breached(self) -> bool:
        """Below the target, or not measured, against a target the contract sets."""
        return self.target is not None and not self.met


@dataclass(frozen=True)
class IncidentTimes:
    """An incident with its business response and resolution times, in minutes (None: not yet)."""

    incident: Incident
    severity: Severity | None  # None: a level the SLA does not define
    response_minutes: float | None
    resolution_minutes: float | None

    @property
    def late(self) -> tuple[str, ...]:
        """What went beyond the severity's times: `response`, `resolution` or `unresolved`.

        An incident still waiting for its response or resolution is late for
        it: the SLA promises a time, and no answer is not within it.
        """
        severity = self.severity
        if severity is None:
            return ()
        late: list[str] = []
        if self.response_minutes is None or self.response_minutes > severity.response_minutes:
            late.append("response")
        if (
            self.resolution_minutes is None
            or self.resolution_minutes > severity.resolution_hours * 60
        ):
            late.append("resolution" if self.incident.resolved_at else "unresolved")
        return tuple(late)


@dataclass(frozen=True)
class SlaFigures:
    """What the SLA report states for a period [start, end)."""

    start: datetime
    end: datetime
    target: float | None  # None: the playbook has no sla section
    checks: tuple[HealthCheckResult, ...]  # those in the period
    hosts: tuple[HostAvailability, ...]  # the perimeter's hosts, then others seen in the period
    overall: float | None  # None: no reachability check in the period
    incidents: tuple[IncidentTimes, ...]  # opened in the period, by opening time
    carried_over: tuple[IncidentTimes, ...] = ()  # opened before, still open at the start
    calendar: str = "around the clock (24/7)"  # what the times are counted on
    zone: tzinfo = UTC  # the contract's time zone: the report's days are its days

    @property
    def sla_set(self) -> bool:
        """Whether the contract sets service levels (the playbook has an sla section)."""
        return self.target is not None

    @property
    def verdict(self) -> Verdict:
        """Met only when the overall figure and every host (each measured) reach the target."""
        if self.target is None:
            return "no target"
        if self.overall is None:
            return "not measured"
        if self.overall >= self.target and all(host.met for host in self.hosts):
            return "met"
        return "breached"

    @property
    def findings(self) -> list[HealthCheckResult]:
        """Failed checks other than reachability (a full disk is a finding, not downtime)."""
        failed = [c for c in self.checks if c.check != "reachable" and not c.ok]
        return sorted(failed, key=lambda c: c.at)


def sla_set(playbook: Playbook) -> bool:
    """Whether the playbook has an `sla` section (its defaults are not the contract's word)."""
    return "sla" in playbook.model_fields_set


def sla_figures(
    playbook: Playbook,
    period_start: date | datetime,
    period_end: date | datetime,
    checks: Iterable[HealthCheckResult],
    incidents: Iterable[Incident] = (),
    calendar: BusinessCalendar | None = None,
) -> SlaFigures:
    """Measure the period: availability is sampled from the `reachable` checks of each host.

    Checks outside the period are ignored; a host with no check in the
    period is "not measured", never counted as available. Incidents are
    those opened in the period (see the module's rules), timed on `calendar`
    (default: the contract's).
    """
    cal = calendar or contract_calendar(playbook)
    start, end = period_bounds(period_start, period_end, cal.zone)
    in_period = tuple(c for c in checks if start <= as_utc(c.at) < end)
    target = playbook.sla.availability_percent if sla_set(playbook) else None
    hosts = [h.name for h in playbook.perimeter.hosts]
    hosts += sorted({c.host for c in in_period} - set(hosts))
    measured = any(c.check == "reachable" for c in in_period)
    ordered = sorted(incidents, key=lambda i: as_utc(i.opened_at))
    return SlaFigures(
        start=start,
        end=end,
        target=target,
        checks=in_period,
        hosts=tuple(_host_availability(host, in_period, target) for host in hosts),
        overall=availability(in_period) if measured else None,
        incidents=incident_times(playbook, [i for i in ordered if i.in_period(start, end)], cal),
        carried_over=incident_times(playbook, [i for i in ordered if i.open_at(start)], cal),
        calendar=cal.description,
        zone=cal.zone,
    )


def _host_availability(
    host: str, checks: Sequence[HealthCheckResult], target: float | None
) -> HostAvailability:
    reach = [c for c in checks if c.host == host and c.check == "reachable"]
    return HostAvailability(
        host=host,
        checks=len(reach),
        passed=sum(1 for c in reach if c.ok),
        percent=availability(reach) if reach else None,
        target=target,
    )


def incident_times(
    playbook: Playbook, incidents: Iterable[Incident], calendar: BusinessCalendar | None = None
) -> tuple[IncidentTimes, ...]:
    """Each incident with its business times and its severity in the SLA, in the order given."""
    cal = calendar or contract_calendar(playbook)
    levels = {s.level: s for s in playbook.sla.severities} if sla_set(playbook) else {}
    return tuple(_incident_times(i, levels.get(i.severity), cal) for i in incidents)


def _incident_times(
    incident: Incident, severity: Severity | None, calendar: BusinessCalendar
) -> IncidentTimes:
    return IncidentTimes(
        incident=incident,
        severity=severity,
        response_minutes=_elapsed_minutes(incident.opened_at, incident.responded_at, calendar),
        resolution_minutes=_elapsed_minutes(incident.opened_at, incident.resolved_at, calendar),
    )


def _elapsed_minutes(
    start: datetime, end: datetime | None, calendar: BusinessCalendar
) -> float | None:
    if end is None:
        return None
    return business_seconds(start, end, calendar) / 60


class IncidentMeasure(BaseModel):
    """One incident's times, and whether each met its severity's target (None: not measurable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    severity: str
    response_minutes: float | None
    resolution_hours: float | None
    response_met: bool | None  # None only for a severity the SLA does not define
    resolution_met: bool | None


class IncidentsMeasured(BaseModel):
    """The contract's recorded incidents, measured (item incidents of the operational run)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    incidents: list[IncidentMeasure]
    count: int
    source: str  # the file the incidents were read from, relative to the contract folder
    period_start: datetime | None = None  # the period read: incidents opened in [start, end)
    period_end: datetime | None = None
    calendar: str | None = None  # what the times are counted on
    statement: str = ""  # what was read, in a sentence (says so when there was no incident)


def measure_incidents(
    playbook: Playbook,
    incidents: Iterable[Incident],
    source: str,
    period: tuple[datetime, datetime] | None = None,
    calendar: BusinessCalendar | None = None,
) -> IncidentsMeasured:
    """The incidents as recorded (file order), each against its severity's times.

    With a `period`, only the incidents opened in it (the SLA report's rule).
    The rule is the SLA report's (`IncidentTimes.late`): an incident still
    waiting for its response or resolution has not met that target.
    """
    cal = calendar or contract_calendar(playbook)
    chosen = list(incidents)
    if period is not None:
        chosen = [i for i in chosen if i.in_period(*period)]
    rows = [_measure(times) for times in incident_times(playbook, chosen, cal)]
    return IncidentsMeasured(
        incidents=rows,
        count=len(rows),
        source=source,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
        calendar=cal.description,
        statement=incidents_statement(len(rows), source, period),
    )


def incidents_statement(count: int, source: str, period: tuple[datetime, datetime] | None) -> str:
    """`No incident recorded in ... (<source>) between <start> and <end>`, or the count."""
    when = (
        f" between {as_utc(period[0]).isoformat()} and {as_utc(period[1]).isoformat()} "
        "(end excluded)"
        if period
        else ""
    )
    if count == 0:
        return f"No incident recorded in the incident journal ({source}){when}."
    return f"{count} incident(s) recorded in the incident journal ({source}){when}."


def _measure(times: IncidentTimes) -> IncidentMeasure:
    late = times.late
    measurable = times.severity is not None
    resolution = times.resolution_minutes
    return IncidentMeasure(
        id=times.incident.id,
        severity=times.incident.severity,
        response_minutes=times.response_minutes,
        resolution_hours=None if resolution is None else resolution / 60,
        response_met=("response" not in late) if measurable else None,
        resolution_met=("resolution" not in late and "unresolved" not in late)
        if measurable
        else None,
    )
