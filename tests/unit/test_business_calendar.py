"""Business time on the hotline's hours: weekends, public holidays, DST, out-of-hours openings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handover.contract.playbook import Playbook
from handover.errors import UsageError
from handover.operations.business_calendar import (
    BusinessCalendar,
    business_seconds,
    contract_calendar,
    holiday_checker,
    parse_hours,
)
from tests.unit.documents_fixtures import load_test_playbook

PARIS = ZoneInfo("Europe/Paris")
WEEKDAYS, WINDOWS = parse_hours("Mon-Fri 08:00-18:00")
HOTLINE = BusinessCalendar(
    zone=PARIS, days=WEEKDAYS, windows=WINDOWS, is_holiday=holiday_checker("FR")
)


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def minutes(start: datetime, end: datetime, calendar: BusinessCalendar = HOTLINE) -> float:
    return business_seconds(start, end, calendar) / 60


def test_time_within_the_hours_counts_as_on_the_clock() -> None:
    assert minutes(paris(2026, 2, 3, 10, 0), paris(2026, 2, 3, 11, 30)) == 90


def test_a_weekend_does_not_count() -> None:
    # Friday 17:50 to Monday 08:20: 10 minutes on Friday, 20 on Monday
    assert minutes(paris(2026, 2, 6, 17, 50), paris(2026, 2, 9, 8, 20)) == 30


def test_an_incident_opened_outside_the_hours_starts_counting_at_the_opening() -> None:
    assert minutes(paris(2026, 2, 3, 20, 0), paris(2026, 2, 4, 8, 30)) == 30
    assert minutes(paris(2026, 2, 7, 11, 0), paris(2026, 2, 8, 15, 0)) == 0  # all weekend


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # 1 May 2026 is a Friday: Thursday 17:00 -> Monday 09:00 is 1 h + 1 h
        (paris(2026, 4, 30, 17, 0), paris(2026, 5, 4, 9, 0), 120),
        # 14 July 2026 is a Tuesday
        (paris(2026, 7, 13, 17, 0), paris(2026, 7, 15, 9, 0), 120),
        # Ascension 2026: Thursday 14 May
        (paris(2026, 5, 13, 17, 30), paris(2026, 5, 15, 8, 30), 60),
    ],
)
def test_french_public_holidays_are_closed(start: datetime, end: datetime, expected: int) -> None:
    assert minutes(start, end) == expected


def test_dst_changes_keep_the_windows_on_the_wall_clock() -> None:
    # Spring forward on Sunday 29 March 2026: Friday 17:00 CET to Monday 09:00 CEST
    start, end = paris(2026, 3, 27, 17, 0), paris(2026, 3, 30, 9, 0)
    assert end - start == timedelta(hours=64)  # same-zone arithmetic is wall-clock...
    assert (end.astimezone(UTC) - start.astimezone(UTC)) == timedelta(hours=63)  # ...UTC is not
    assert minutes(start, end) == 120
    # Monday 30 March opens at 08:00 CEST = 06:00 UTC
    assert (
        minutes(datetime(2026, 3, 30, 5, 0, tzinfo=UTC), datetime(2026, 3, 30, 7, tzinfo=UTC)) == 60
    )
    # Fall back on Sunday 25 October 2026: Monday opens at 08:00 CET = 07:00 UTC
    assert (
        minutes(
            datetime(2026, 10, 26, 6, 30, tzinfo=UTC), datetime(2026, 10, 26, 7, 30, tzinfo=UTC)
        )
        == 30
    )
    # across the change, Friday 17:00 CEST to Monday 09:00 CET
    assert minutes(paris(2026, 10, 23, 17, 0), paris(2026, 10, 26, 9, 0)) == 120


def test_several_windows_a_day_and_a_window_to_midnight() -> None:
    days, windows = parse_hours("Lun-Ven 08:00-12:00, 14:00-18:00")
    split = BusinessCalendar(zone=PARIS, days=days, windows=windows)
    assert minutes(paris(2026, 2, 3, 11, 0), paris(2026, 2, 3, 15, 0), split) == 120
    days, windows = parse_hours("Sat,Sun 20:00-24:00")
    evenings = BusinessCalendar(zone=PARIS, days=days, windows=windows)
    assert minutes(paris(2026, 2, 7, 23, 0), paris(2026, 2, 8, 21, 0), evenings) == 120


def test_no_hours_or_24_7_is_calendar_time() -> None:
    assert parse_hours(None) == parse_hours("24/7") == (frozenset(range(7)), ())
    always = BusinessCalendar(zone=PARIS)
    start = paris(2026, 2, 6, 17, 50)
    assert minutes(start, start + timedelta(days=3), always) == 3 * 24 * 60
    assert minutes(start, start - timedelta(hours=1)) == 0  # an end before the start: nothing


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ("Mon-Fri 18:00-08:00", "closes before it opens"),
        ("Someday 08:00-18:00", "not a day"),
        ("Mon-Fri 8h-18h", "not a window"),
        ("Mon-Fri", "expected days then hours"),
        ("Mon-Fri 08:00-25:00", "not a time of day"),
    ],
)
def test_unreadable_hours_say_what_is_wrong(hours: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hours(hours)


def test_the_contract_calendar_reads_the_hotline_hours_and_names_them(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    playbook: Playbook = load_test_playbook(tmp_path_factory)
    calendar = contract_calendar(playbook)
    assert calendar.zone.key == "Europe/Paris"  # the default: no contract.timezone
    assert calendar.description == (
        "hotline hours Mon-Fri 08:00-18:00 (Europe/Paris), FR public holidays excluded"
    )
    assert calendar.is_holiday(paris(2026, 7, 14).date())
    services = playbook.services.model_copy(
        update={"hotline": playbook.services.hotline.model_copy(update={"hours": "whenever"})}
    )
    broken = playbook.model_copy(update={"services": services})
    with pytest.raises(UsageError, match=r"^services\.hotline\.hours: 'whenever'"):
        contract_calendar(broken)


MOMENTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@given(MOMENTS, MOMENTS, MOMENTS)
def test_business_time_adds_up_and_never_exceeds_calendar_time(
    a: datetime, b: datetime, c: datetime
) -> None:
    first, middle, last = sorted((a, b, c))
    whole = business_seconds(first, last, HOTLINE)
    parts = business_seconds(first, middle, HOTLINE) + business_seconds(middle, last, HOTLINE)
    assert whole == pytest.approx(parts, abs=1e-6)
    assert 0 <= whole <= (last - first).total_seconds()
    # at most 10 hours of any calendar day are business time
    assert whole <= ((last - first).days + 2) * 10 * 3600
