"""Availability maths: coverage, gaps, maintenance windows (across DST), services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handover.estate.health_checks import HealthSample
from handover.operations.availability import (
    CheckRef,
    check_availability,
    in_window,
    maintenance_calendar,
    service_availability,
)

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
WEB = CheckRef("web-http", "web", 300)


def sample(
    at: datetime, ok: bool = True, check: str = "web-http", service: str = "web"
) -> HealthSample:
    return HealthSample(
        at=at,
        check=check,
        service=service,
        host=None,
        kind="http",
        ok=ok,
        detail="",
        interval_s=300,
    )


def every(start: datetime, end: datetime, step: timedelta, **kw: object) -> list[HealthSample]:
    out, t = [], start
    while t < end:
        out.append(sample(t, **kw))  # type: ignore[arg-type]
        t += step
    return out


def test_full_coverage_counts_failures() -> None:
    end = START + timedelta(days=1)
    samples = every(START, end, timedelta(minutes=5))
    samples[10] = sample(samples[10].at, ok=False)
    figure = check_availability(WEB, samples, START, end)
    assert figure.samples == 288 and figure.expected == 288 and figure.passed == 287
    assert figure.percent == pytest.approx(100 * 287 / 288)
    assert figure.longest_gap == timedelta(minutes=5)
    assert figure.planned_downtime == timedelta(0)


def test_no_sample_is_not_measured_never_100() -> None:
    figure = check_availability(WEB, [], START, START + timedelta(days=30))
    assert figure.percent is None and not figure.measured
    assert figure.samples == 0 and figure.expected == 30 * 288
    assert "expected samples" in (figure.reason or "")


def test_a_single_sample_in_30_days_is_not_measured() -> None:
    """The issue's report: one reachability check in the run gave '100.00 % met'."""
    end = START + timedelta(days=30)
    figure = check_availability(WEB, [sample(end - timedelta(minutes=1))], START, end)
    assert figure.percent is None
    assert figure.samples == 1


def test_gap_over_an_hour_is_not_measured_even_with_coverage() -> None:
    end = START + timedelta(days=2)
    samples = [
        s
        for s in every(START, end, timedelta(minutes=5))
        if not (START + timedelta(hours=10) <= s.at < START + timedelta(hours=11, minutes=30))
    ]
    figure = check_availability(WEB, samples, START, end)
    assert figure.samples >= 0.9 * figure.expected  # coverage alone would pass
    assert figure.longest_gap == timedelta(hours=1, minutes=35)
    assert figure.percent is None and "no sample for 1 h 35 min" in (figure.reason or "")


def test_gap_from_period_start_counts() -> None:
    end = START + timedelta(days=1)
    samples = every(START + timedelta(hours=2), end, timedelta(minutes=5))
    figure = check_availability(WEB, samples, START, end)
    assert figure.longest_gap == timedelta(hours=2)
    assert figure.percent is None


def test_thin_coverage_under_90_percent() -> None:
    end = START + timedelta(days=1)
    samples = every(START, end, timedelta(minutes=6))  # 240 of 288, gaps of 6 min only
    figure = check_availability(WEB, samples, START, end)
    assert figure.samples == 240 and figure.percent is None
    assert "240 of 288" in (figure.reason or "")


def test_maintenance_window_is_planned_downtime() -> None:
    window = maintenance_calendar("Tue 20:00-23:00", PARIS)
    end = START + timedelta(days=7)
    samples = every(START, end, timedelta(minutes=5))
    # Down during the window only (Tue 3 Nov 2026, 20:00-23:00 Paris = 19:00-22:00 UTC).
    down = (datetime(2026, 11, 3, 19, tzinfo=UTC), datetime(2026, 11, 3, 22, tzinfo=UTC))
    samples = [sample(s.at, ok=not (down[0] <= s.at < down[1])) for s in samples]
    figure = check_availability(WEB, samples, START, end, window)
    assert figure.planned_downtime == timedelta(hours=3)
    assert figure.percent == 100.0
    assert figure.expected == 7 * 288 - 36 and figure.samples == 7 * 288 - 36
    without = check_availability(WEB, samples, START, end)
    assert without.percent == pytest.approx(100 * (7 * 288 - 36) / (7 * 288))


def test_no_samples_during_the_window_is_not_a_gap() -> None:
    window = maintenance_calendar("Tue 20:00-23:00", PARIS)
    end = START + timedelta(days=7)
    samples = [s for s in every(START, end, timedelta(minutes=5)) if not in_window(s.at, window)]
    figure = check_availability(WEB, samples, START, end, window)
    assert figure.longest_gap == timedelta(minutes=5)
    assert figure.percent == 100.0


def test_window_keeps_wall_clock_hours_across_dst() -> None:
    """Europe/Paris leaves summer time on Sun 25 Oct 2026: 20:00 local is 18:00 then 19:00 UTC."""
    window = maintenance_calendar("Tue 20:00-23:00", PARIS)
    summer = datetime(2026, 10, 20, 18, 30, tzinfo=UTC)  # Tue 20:30 CEST
    winter = datetime(2026, 10, 27, 18, 30, tzinfo=UTC)  # Tue 19:30 CET: before the window
    assert in_window(summer, window)
    assert not in_window(winter, window)
    assert in_window(winter + timedelta(hours=1), window)
    start, end = datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    figure = check_availability(WEB, [], start, end, window)
    assert figure.planned_downtime == timedelta(hours=6)


def test_window_text_errors_and_absence() -> None:
    assert maintenance_calendar(None, PARIS) is None
    with pytest.raises(ValueError, match="needs hours"):
        maintenance_calendar("24/7", PARIS)
    with pytest.raises(ValueError):
        maintenance_calendar("Someday 20:00", PARIS)


def test_service_is_its_weakest_check_and_measured_only_if_all_are() -> None:
    end = START + timedelta(days=1)
    http = every(START, end, timedelta(minutes=5))
    tcp = [sample(s.at, check="web-tcp", ok=i % 100 != 0) for i, s in enumerate(http)]
    checks = [WEB, CheckRef("web-tcp", "web", 300), CheckRef("db-pg", "db", 300)]
    web, db = service_availability(checks, http + tcp, START, end)
    assert web.service == "web" and web.checks == ("web-http", "web-tcp")
    assert web.samples == 576 and web.percent == pytest.approx(100 * 285 / 288)
    assert db.percent is None and db.samples == 0 and (db.reason or "").startswith("db-pg:")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 24 * 60 - 1), st.booleans()), max_size=400),
)
def test_percent_is_none_or_within_bounds(points: list[tuple[int, bool]]) -> None:
    """Whatever the samples, a percentage is measured with >= 90 % coverage and is in [0, 100]."""
    end = START + timedelta(days=1)
    samples = [sample(START + timedelta(minutes=m), ok=ok) for m, ok in points]
    figure = check_availability(WEB, samples, START, end)
    assert figure.longest_gap <= end - START
    if figure.percent is not None:
        assert 0.0 <= figure.percent <= 100.0
        assert figure.samples >= 0.9 * figure.expected
        assert figure.longest_gap <= timedelta(hours=1)
