"""Measured availability of each service over a period, from the stored health samples.

The figure an SLA report states must be measured, not assumed: these pure
functions count, for each check, the samples taken in the period and the
share that passed, with what tells how much to trust it.

- Planned downtime: samples taken in the maintenance window
  (`services.maintenance.window`, e.g. "Tue 20:00-23:00", wall-clock time
  of the contract's zone, so the window keeps its hours across DST) are
  not counted, and the window's time is neither expected to hold samples
  nor counted in gaps.
- Coverage rule: a check is "not measured" (no percentage at all) when it
  has fewer than 90 % of the samples its interval expects outside the
  window, or when the longest time without a sample (from the period's
  start to the first sample, between samples, and from the last to the
  end; maintenance time excluded) exceeds one hour, or two intervals for
  checks sampled less often than every 30 minutes.
- A service with several checks (say tcp and http) has the availability of
  its weakest check, its samples and expected samples summed, its longest
  gap the longest of its checks; it is measured only if every check is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from handover.estate.health_checks import HealthSample
from handover.operations.business_calendar import BusinessCalendar, business_seconds, parse_hours

__all__ = [
    "MAX_GAP",
    "MIN_COVERAGE",
    "CheckRef",
    "ServiceAvailability",
    "Tally",
    "check_availability",
    "in_window",
    "maintenance_calendar",
    "service_availability",
]

MIN_COVERAGE = 0.9
MAX_GAP = timedelta(hours=1)


@dataclass(frozen=True)
class CheckRef:
    """A check the playbook defines: its name, the service it counts for, its interval."""

    name: str
    service: str
    interval_s: int


@dataclass(frozen=True)
class ServiceAvailability:
    """One service (or check) over a period; `percent` is None when not measured (`reason`)."""

    service: str
    checks: tuple[str, ...]
    samples: int  # counted: taken in the period, outside the maintenance window
    expected: int
    passed: int
    longest_gap: timedelta
    planned_downtime: timedelta
    percent: float | None
    reason: str | None

    @property
    def measured(self) -> bool:
        return self.percent is not None


def maintenance_calendar(window: str | None, zone: ZoneInfo) -> BusinessCalendar | None:
    """The maintenance window as a calendar of its open hours; None without a window.

    ValueError says what is wrong with the text (the caller names the field).
    """
    if window is None or not window.strip():
        return None
    days, windows = parse_hours(window)
    if not windows:  # "24/7" would make every moment planned downtime: not a window
        raise ValueError(f"{window!r}: a maintenance window needs hours, e.g. 'Tue 20:00-23:00'")
    return BusinessCalendar(zone=zone, days=days, windows=windows, description=window)


def in_window(moment: datetime, calendar: BusinessCalendar | None) -> bool:
    """Whether the moment falls in the window (wall-clock time of the window's zone)."""
    if calendar is None:
        return False
    local = moment.astimezone(calendar.zone)
    if local.weekday() not in calendar.days:
        return False
    now = local.time().replace(tzinfo=None)
    return any(opens <= now < (closes or time.max) for opens, closes in calendar.windows)


def _planned(start: datetime, end: datetime, calendar: BusinessCalendar | None) -> float:
    return business_seconds(start, end, calendar) if calendar is not None else 0.0


class Tally:
    """One check's running count over [start, end), fed its samples in time order.

    Holds three numbers and the last sample's time, so a month of samples
    is measured while it is read, never held in memory. A sample out of
    order (two runs sampling at once) counts, and its negative gap is none.
    """

    def __init__(
        self,
        check: CheckRef,
        start: datetime,
        end: datetime,
        maintenance: BusinessCalendar | None = None,
    ) -> None:
        self.check, self.start, self.end, self.maintenance = check, start, end, maintenance
        self.counted = 0
        self.passed = 0
        self.last = start
        self.longest = 0.0

    def add(self, sample: HealthSample) -> None:
        if sample.check != self.check.name or not (self.start <= sample.at < self.end):
            return
        self._gap_to(sample.at)
        if not in_window(sample.at, self.maintenance):
            self.counted += 1
            self.passed += sample.ok

    def _gap_to(self, moment: datetime) -> None:
        if moment > self.last:
            gap = (moment - self.last).total_seconds() - _planned(
                self.last, moment, self.maintenance
            )
            self.longest = max(self.longest, gap)
            self.last = moment

    def result(self) -> ServiceAvailability:
        """The figure once every sample was added (the gap to the period's end included)."""
        self._gap_to(self.end)
        check = self.check
        planned = _planned(self.start, self.end, self.maintenance)
        open_seconds = max((self.end - self.start).total_seconds() - planned, 0.0)
        expected = math.floor(open_seconds / check.interval_s + 1e-9)
        longest = timedelta(seconds=max(self.longest, 0.0))
        max_gap = max(MAX_GAP, timedelta(seconds=2 * check.interval_s))
        counted = self.counted
        reason: str | None = None
        if expected == 0:
            reason = "the period holds no time outside the maintenance window"
        elif counted < MIN_COVERAGE * expected:
            reason = f"{counted} of {expected} expected samples (under {MIN_COVERAGE:.0%})"
        elif longest > max_gap:
            reason = f"no sample for {_duration(longest)} (over {_duration(max_gap)})"
        percent = 100.0 * self.passed / counted if reason is None and counted else None
        if percent is None and reason is None:
            reason = "no sample"
        return ServiceAvailability(
            service=check.service,
            checks=(check.name,),
            samples=counted,
            expected=expected,
            passed=self.passed,
            longest_gap=longest,
            planned_downtime=timedelta(seconds=planned),
            percent=percent,
            reason=reason,
        )


def check_availability(
    check: CheckRef,
    samples: Iterable[HealthSample],
    start: datetime,
    end: datetime,
    maintenance: BusinessCalendar | None = None,
) -> ServiceAvailability:
    """One check over [start, end): samples of other checks or outside the period are ignored."""
    tally = Tally(check, start, end, maintenance)
    for sample in sorted(samples, key=lambda s: s.at):
        tally.add(sample)
    return tally.result()


def service_availability(
    checks: Sequence[CheckRef],
    samples: Iterable[HealthSample],
    start: datetime,
    end: datetime,
    maintenance: BusinessCalendar | None = None,
) -> list[ServiceAvailability]:
    """Each service of the checks, in the order it first appears: its weakest check's figure.

    `samples` is read once, in the order given: the store's order (append
    order, which is time order) lets a month be measured as it is read.
    """
    tallies = {c.name: Tally(c, start, end, maintenance) for c in checks}
    for sample in samples:
        tally = tallies.get(sample.check)
        if tally is not None:
            tally.add(sample)
    per_check = [tally.result() for tally in tallies.values()]
    services: dict[str, list[ServiceAvailability]] = {}
    for figure in per_check:
        services.setdefault(figure.service, []).append(figure)
    result = []
    for service, figures in services.items():
        unmeasured = [f for f in figures if f.percent is None]
        percents = [f.percent for f in figures if f.percent is not None]
        reason = None
        if unmeasured:
            first = unmeasured[0]
            reason = f"{first.checks[0]}: {first.reason}"
        result.append(
            ServiceAvailability(
                service=service,
                checks=tuple(f.checks[0] for f in figures),
                samples=sum(f.samples for f in figures),
                expected=sum(f.expected for f in figures),
                passed=sum(f.passed for f in figures),
                longest_gap=max(f.longest_gap for f in figures),
                planned_downtime=figures[0].planned_downtime,
                percent=min(percents) if not unmeasured else None,
                reason=reason,
            )
        )
    return result


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h {minutes:02d} min"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
