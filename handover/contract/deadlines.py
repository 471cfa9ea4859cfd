"""The exit calendar: the dates of an exit, from the notice date and the playbook's deadlines.

The playbook states delays (months of notice, days of transition, retrieval
and erasure); the reversibility flow records the dates they give for an
actual notice, and the reversibility plan shows them for an example one.
Both read them here, so the plan and the exit never disagree on a date.

Each date that ends a period is the first day after it, the day the next
step may happen: the final export on `switch_over`, erasure from
`erasure_earliest`. The flow persists `ExitDeadlines` as JSON and reads it
back after a crash, so the calendar of an exit never moves once recorded,
even if the playbook is edited afterwards.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

if TYPE_CHECKING:
    from handover.contract.reversibility import Deadlines

# The names the first calendar used, still written (computed) so that readers of
# recorded calendars and of the exit report keep working.
_DERIVED = {"transition_ends": "switch_over", "retrieval_ends": "erasure_earliest"}
LEGACY_BASIS = "not recorded (calendar recorded before its legal basis was kept)"


class ExitDeadlines(BaseModel):
    """The dates of an exit, computed from the notice date and the playbook's deadlines."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    notice_date: date = Field(description="The day the client's exit notice was received.")
    switching_starts: date = Field(description="End of the notice period: the transition starts.")
    switch_over: date = Field(
        description="End of the transition: the final export is made on this day, not before."
    )
    erasure_earliest: date = Field(
        description="End of the retrieval period: provider copies are erased from this day, "
        "earlier only when the client's signed acceptance asks for it."
    )
    erasure_by: date = Field(description="Provider copies are erased by this day at the latest.")
    transition_basis: str = Field(
        min_length=1, description="The legal basis of the transition's length, in words."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def transition_ends(self) -> date:
        """The first calendar's name for `switch_over`."""
        return self.switch_over

    @computed_field  # type: ignore[prop-decorator]
    @property
    def retrieval_ends(self) -> date:
        """The first calendar's name for `erasure_earliest`."""
        return self.erasure_earliest

    @model_validator(mode="before")
    @classmethod
    def _derived_names_agree(cls, data: Any) -> Any:
        """A dump carries `transition_ends` and `retrieval_ends`: accepted back if they agree.

        A calendar recorded before `switch_over` existed holds only those two
        names and no legal basis: it is read with them as the stored dates,
        and its basis is said to be unrecorded rather than guessed.
        """
        if not isinstance(data, dict):
            return data
        data = dict(data)
        legacy = all(stored not in data for stored in _DERIVED.values())
        for derived, stored in _DERIVED.items():
            if derived not in data:
                continue
            value = data.pop(derived)
            if legacy:
                data[stored] = value
            elif _iso(value) != _iso(data.get(stored)):
                raise ValueError(
                    f"{derived} ({_iso(value)}) disagrees with {stored} ({_iso(data.get(stored))})"
                )
        if legacy and "switch_over" in data:
            data.setdefault("transition_basis", LEGACY_BASIS)
        return data

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        steps = [
            ("notice_date", self.notice_date),
            ("switching_starts", self.switching_starts),
            ("switch_over", self.switch_over),
            ("erasure_earliest", self.erasure_earliest),
            ("erasure_by", self.erasure_by),
        ]
        for (before, first), (after, second) in pairwise(steps):
            if second < first:
                raise ValueError(
                    f"exit dates out of order: {after} {second} is before {before} {first}"
                )
        return self

    def export_due(self, today: date) -> bool:
        """Whether the final export may run: the switch-over has come."""
        return today >= self.switch_over

    def erasure_due(self, today: date, early_requested: bool) -> bool:
        """Whether provider copies may be erased: retrieval is over, or the client asked earlier.

        `early_requested` is the client's signed request for early erasure
        (in its acceptance); without it, erasing before `erasure_earliest`
        would cut the client's retrieval period short.
        """
        return early_requested or today >= self.erasure_earliest

    def erasure_overdue(self, today: date) -> bool:
        """Whether `erasure_by` has passed (erasure still pending is then a breach)."""
        return today > self.erasure_by


class Due(BaseModel):
    """What the exit calendar allows on one day: the flow's waits, as data it may record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    today: date
    export: bool = Field(description="The final export may run (switch-over reached).")
    erasure: bool = Field(description="Erasure may run (retrieval over, or early erasure asked).")
    erasure_overdue: bool = Field(description="`erasure_by` has passed.")


def due(dates: ExitDeadlines, today: date, early_requested: bool = False) -> Due:
    """What `dates` allow on `today`; see `ExitDeadlines.export_due` and `erasure_due`."""
    return Due(
        today=today,
        export=dates.export_due(today),
        erasure=dates.erasure_due(today, early_requested),
        erasure_overdue=dates.erasure_overdue(today),
    )


def exit_deadlines(deadlines: Deadlines, notice_date: date) -> ExitDeadlines:
    """Compute exit dates: notice → (+notice_months) switching starts → (+transition_days)
    switch-over, final export → (+retrieval_days) retrieval end, erasure from →
    (+erasure_days) erasure by.

    Month arithmetic keeps the day of the month, clamped to the month's last
    day (notice on 31 December + 2 months = 28 or 29 February).
    """
    switching = _add_months(notice_date, deadlines.notice_months)
    switch_over = switching + timedelta(days=deadlines.transition_days)
    retrieval = switch_over + timedelta(days=deadlines.retrieval_days)
    return ExitDeadlines(
        notice_date=notice_date,
        switching_starts=switching,
        switch_over=switch_over,
        erasure_earliest=retrieval,
        erasure_by=retrieval + timedelta(days=deadlines.erasure_days),
        transition_basis=deadlines.transition_basis(),
    )


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
