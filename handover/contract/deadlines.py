"""The exit calendar: the dates of an exit, from the notice date and the playbook's deadlines.

The playbook states delays (months of notice, days of transition, retrieval
and erasure); the reversibility flow records the dates they give for an
actual notice, and the reversibility plan shows them for an example one.
Both read them here, so the plan and the exit never disagree on a date.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from handover.contract.reversibility import Deadlines


class ExitDeadlines(BaseModel):
    """The dates of an exit, computed from the notice date and the playbook's deadlines."""

    model_config = ConfigDict(frozen=True)

    notice_date: date
    switching_starts: date  # end of the notice period
    transition_ends: date
    retrieval_ends: date
    erasure_by: date


def exit_deadlines(deadlines: Deadlines, notice_date: date) -> ExitDeadlines:
    """Compute exit dates: notice → (+notice_months) switching → (+transition_days)
    transition end → (+retrieval_days) retrieval end → (+erasure_days) erasure.

    Month arithmetic keeps the day of the month, clamped to the month's last
    day (notice on 31 December + 2 months = 28 or 29 February).
    """
    switching = _add_months(notice_date, deadlines.notice_months)
    transition = switching + timedelta(days=deadlines.transition_days)
    retrieval = transition + timedelta(days=deadlines.retrieval_days)
    return ExitDeadlines(
        notice_date=notice_date,
        switching_starts=switching,
        transition_ends=transition,
        retrieval_ends=retrieval,
        erasure_by=retrieval + timedelta(days=deadlines.erasure_days),
    )


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
