"""Business time: the seconds between two moments that fall within the hotline's hours.

A contract promises "a response within 30 minutes" on its hotline's hours
("Mon-Fri 08:00-18:00", Paris time, public holidays excluded), not on the
calendar: a P2 opened on Friday at 17:50 and answered on Monday at 08:20 was
answered in 30 minutes. These pure functions count that time, so response
and resolution times are measured the way the contract states them.

- The hours are `services.hotline.hours`: days (`Mon-Fri`, `Mon,Wed,Fri`,
  `Lun-Ven`) then one or more windows (`08:00-12:00, 14:00-18:00`);
  `24/7` or no hours at all means every second counts.
- The hours are local to the contract's time zone (`contract.timezone`,
  default Europe/Paris): a window is taken in local wall-clock time on each
  day, so it keeps its meaning across the DST changes.
- Public holidays (`operations.calendar.holidays`, default FR, from the
  `holidays` library) are closed all day.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handover.clock import as_utc
from handover.errors import UsageError

if TYPE_CHECKING:
    from holidays import HolidayBase

    from handover.contract.playbook import Playbook

DEFAULT_TIMEZONE = "Europe/Paris"

_DAYS = {
    **{name: i for i, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))},
    **{name: i for i, name in enumerate(("lun", "mar", "mer", "jeu", "ven", "sam", "dim"))},
}
_DASH = r"\s*[-–]\s*"
_WINDOW = re.compile(rf"^(\d{{1,2}}):(\d{{2}}){_DASH}(\d{{1,2}}):(\d{{2}})$")

Window = tuple[time, time | None]  # None: until midnight (24:00)


@dataclass(frozen=True)
class BusinessCalendar:
    """When the hotline is open: days of the week, daily windows, zone, closed holidays."""

    zone: ZoneInfo
    days: frozenset[int] = frozenset(range(7))  # date.weekday() numbers
    windows: tuple[Window, ...] = ()  # empty: open around the clock
    is_holiday: Callable[[date], bool] = field(default=lambda _day: False, compare=False)
    description: str = "around the clock (24/7)"

    @property
    def always_open(self) -> bool:
        return not self.windows


def business_seconds(start: datetime, end: datetime, calendar: BusinessCalendar) -> float:
    """Seconds of [start, end) that fall within the calendar's open hours (0 if end <= start).

    Both moments must be aware (a naive one is read as UTC, as handover
    records times). Each day's windows are built in local time, then compared
    in UTC, so a day of 23 or 25 hours counts what the clock on the wall says.
    """
    begin, finish = as_utc(start), as_utc(end)
    if finish <= begin:
        return 0.0
    if calendar.always_open:
        return (finish - begin).total_seconds()
    zone = calendar.zone
    day = begin.astimezone(zone).date()
    last = finish.astimezone(zone).date()
    total = 0.0
    while day <= last:
        if day.weekday() in calendar.days and not calendar.is_holiday(day):
            for opens, closes in calendar.windows:
                w_start = datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)
                w_end = _window_end(day, closes, zone)
                overlap = min(finish, w_end) - max(begin, w_start)
                total += max(overlap.total_seconds(), 0.0)
        day += timedelta(days=1)
    return total


def _window_end(day: date, closes: time | None, zone: ZoneInfo) -> datetime:
    if closes is None:  # 24:00: the next local midnight
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return datetime.combine(day, closes, tzinfo=zone).astimezone(UTC)


def parse_hours(hours: str | None) -> tuple[frozenset[int], tuple[Window, ...]]:
    """The days and windows of a hotline's hours text; ValueError says what is wrong.

    `None`, empty or `24/7`: every day, no window (open around the clock).
    """
    text = (hours or "").strip()
    if not text or text.replace(" ", "") in ("24/7", "24x7", "7/7-24/24"):
        return frozenset(range(7)), ()
    match = re.match(r"^(?P<days>[^\d]+?)\s+(?P<windows>\d.*)$", text)
    if match is None:
        raise ValueError(f"{text!r}: expected days then hours, e.g. 'Mon-Fri 08:00-18:00'")
    days = _parse_days(match["days"])
    windows = tuple(
        _parse_window(part) for part in re.split(r"\s*[,;]\s*|\s+et\s+", match["windows"])
    )
    return days, windows


def _parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in re.split(r"\s*,\s*", text.strip()):
        bounds = re.split(_DASH, part)
        numbers = [_DAYS.get(b.strip().lower()[:3]) for b in bounds]
        if len(numbers) not in (1, 2) or any(n is None for n in numbers):
            raise ValueError(f"{part!r}: not a day or a range of days (Mon..Sun, Lun..Dim)")
        first, last = numbers[0], numbers[-1]
        assert first is not None and last is not None
        day = first
        days.add(day)
        while day != last:
            day = (day + 1) % 7
            days.add(day)
    return frozenset(days)


def _parse_window(text: str) -> Window:
    match = _WINDOW.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r}: not a window of hours such as 08:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"{text!r}: not a time of day")
    opens = time(h1, m1)
    closes = None if h2 == 24 else time(h2, m2)
    if closes is not None and closes <= opens:
        raise ValueError(f"{text!r}: closes before it opens (windows across midnight: split them)")
    return opens, closes


@lru_cache(maxsize=16)
def _holiday_table(country: str, subdivision: str | None) -> HolidayBase:
    import holidays  # lazily: the command line starts without it

    return holidays.country_holidays(country, subdiv=subdivision)


def holiday_checker(country: str | None, subdivision: str | None = None) -> Callable[[date], bool]:
    """Whether a date is a public holiday of `country` (None: no holiday); ValueError if unknown."""
    if country is None:
        return lambda _day: False
    try:
        table = _holiday_table(country, subdivision)
    except NotImplementedError as exc:
        raise ValueError(f"unknown holidays country or subdivision: {exc}") from exc
    return lambda day: day in table


def contract_zone(playbook: Playbook) -> ZoneInfo:
    """The contract's time zone: `contract.timezone` when the playbook has it, else Europe/Paris."""
    name = getattr(playbook.contract, "timezone", None) or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"contract.timezone: unknown time zone {name!r}") from exc


def contract_calendar(playbook: Playbook) -> BusinessCalendar:
    """The business calendar the contract's response and resolution times run on.

    UsageError names the playbook field when the hours or the holidays cannot be read.
    """
    zone = contract_zone(playbook)
    hours = playbook.services.hotline.hours
    try:
        days, windows = parse_hours(hours)
    except ValueError as exc:
        raise UsageError(f"services.hotline.hours: {exc}") from exc
    settings = playbook.operations.calendar
    try:
        is_holiday = holiday_checker(settings.holidays, settings.subdivision)
    except ValueError as exc:
        raise UsageError(f"operations.calendar: {exc}") from exc
    if not windows:
        return BusinessCalendar(zone=zone, description="around the clock (24/7)")
    closed = f", {settings.holidays} public holidays excluded" if settings.holidays else ""
    return BusinessCalendar(
        zone=zone,
        days=days,
        windows=windows,
        is_holiday=is_holiday,
        description=f"hotline hours {hours} ({zone.key}){closed}",
    )
