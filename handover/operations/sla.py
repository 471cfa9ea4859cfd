"""SLA figures of a period: availability per host, and incidents against their severity's times.

The SLA report renders these figures; they are computed here, apart from
any table, so the rules (what counts as a sample, when a host is "not
measured", when an incident is late) are stated once and can be checked on
plain values. Times are compared in UTC; a naive datetime is read as UTC,
which is how handover records facts and incidents. The operational run's
`incidents` item records the same incident times (`measure_incidents`), and
its SLA report covers the period `reporting_period` gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from handover.clock import as_utc
from handover.estate.health import HealthCheckResult, availability
from handover.operations.incidents import Incident

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook
    from handover.contract.services import ReportingPeriod, Severity

Verdict = Literal["met", "breached", "not measured"]

REPORTING_PERIOD_DAYS: dict[ReportingPeriod, int] = {"monthly": 30, "quarterly": 91}


def reporting_period(end: datetime, period: ReportingPeriod) -> tuple[datetime, datetime]:
    """The period a report made at `end` covers: the playbook's `sla.reporting_period` before it.

    A rolling window (30 days for monthly, 91 for quarterly) rather than the
    calendar month or quarter: each scheduled run reports what came before it.
    """
    return end - timedelta(days=REPORTING_PERIOD_DAYS[period]), end


def period_bounds(start: date | datetime, end: date | datetime) -> tuple[datetime, datetime]:
    """The period as [start, end) in UTC.

    A date bound covers the whole day (`end` inclusive: the period stops at
    the next midnight); a datetime bound is exact (`end` excluded).
    """
    return _bound(start, end=False), _bound(end, end=True)


def _bound(value: date | datetime, end: bool) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    moment = datetime.combine(value, time(0, 0), tzinfo=UTC)
    return moment + timedelta(days=1) if end else moment


@dataclass(frozen=True)
class HostAvailability:
    """One host's reachability samples in the period; `percent` is None when not measured."""

    host: str
    checks: int
    passed: int
    percent: float | None
    target: float

    @property
    def met(self) -> bool:
        """At or above the target; a host not measured never counts as available."""
        return self.percent is not None and self.percent >= self.target


@dataclass(frozen=True)
class IncidentTimes:
    """An incident with its response and resolution times, in minutes (None: not yet)."""

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
    target: float
    checks: tuple[HealthCheckResult, ...]  # those in the period
    hosts: tuple[HostAvailability, ...]  # the perimeter's hosts, then others seen in the period
    overall: float | None  # None: no reachability check in the period
    incidents: tuple[IncidentTimes, ...]  # by opening time

    @property
    def verdict(self) -> Verdict:
        """Met only when the overall figure and every host (each measured) reach the target."""
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


def sla_figures(
    playbook: Playbook,
    period_start: date | datetime,
    period_end: date | datetime,
    checks: Iterable[HealthCheckResult],
    incidents: Iterable[Incident] = (),
) -> SlaFigures:
    """Measure the period: availability is sampled from the `reachable` checks of each host.

    Checks outside the period are ignored; a host with no check in the
    period is "not measured", never counted as available.
    """
    start, end = period_bounds(period_start, period_end)
    in_period = tuple(c for c in checks if start <= as_utc(c.at) < end)
    target = playbook.sla.availability_percent
    hosts = [h.name for h in playbook.perimeter.hosts]
    hosts += sorted({c.host for c in in_period} - set(hosts))
    measured = any(c.check == "reachable" for c in in_period)
    return SlaFigures(
        start=start,
        end=end,
        target=target,
        checks=in_period,
        hosts=tuple(_host_availability(host, in_period, target) for host in hosts),
        overall=availability(in_period) if measured else None,
        incidents=incident_times(playbook, sorted(incidents, key=lambda i: i.opened_at)),
    )


def _host_availability(
    host: str, checks: Sequence[HealthCheckResult], target: float
) -> HostAvailability:
    reach = [c for c in checks if c.host == host and c.check == "reachable"]
    return HostAvailability(
        host=host,
        checks=len(reach),
        passed=sum(1 for c in reach if c.ok),
        percent=availability(reach) if reach else None,
        target=target,
    )


def incident_times(playbook: Playbook, incidents: Iterable[Incident]) -> tuple[IncidentTimes, ...]:
    """Each incident with its times and its severity in the SLA, in the order given."""
    levels = {s.level: s for s in playbook.sla.severities}
    return tuple(_incident_times(i, levels.get(i.severity)) for i in incidents)


def _incident_times(incident: Incident, severity: Severity | None) -> IncidentTimes:
    return IncidentTimes(
        incident=incident,
        severity=severity,
        response_minutes=_elapsed_minutes(incident.opened_at, incident.responded_at),
        resolution_minutes=_elapsed_minutes(incident.opened_at, incident.resolved_at),
    )


def _elapsed_minutes(start: datetime, end: datetime | None) -> float | None:
    if end is None:
        return None
    return (as_utc(end) - as_utc(start)).total_seconds() / 60


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


def measure_incidents(
    playbook: Playbook, incidents: Iterable[Incident], source: str
) -> IncidentsMeasured:
    """The incidents as recorded (file order), each against its severity's times.

    The rule is the SLA report's (`IncidentTimes.late`): an incident still
    waiting for its response or resolution has not met that target.
    """
    rows = [_measure(times) for times in incident_times(playbook, incidents)]
    return IncidentsMeasured(incidents=rows, count=len(rows), source=source)


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
