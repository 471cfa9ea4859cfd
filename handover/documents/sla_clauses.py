"""The SLA report's clause sections: hotline quota, on-site interventions, maintenance visits.

What the contract sells besides incident times, counted by
`handover.operations.clauses` and laid out here; `sla_report` calls
`clause_sections` before its breaches and lists the misses returned. Each
section names what it read, and says "not read" when a journal is missing,
so an empty table is a fact, never a missing file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from handover.clock import as_utc
from handover.documents.blocks import Inline, badge, code
from handover.documents.builder import DocumentBuilder
from handover.documents.formatting import datetime_text, hours_text
from handover.operations.business_calendar import contract_calendar
from handover.operations.clauses import (
    QUOTA_ALERT_PERCENT,
    ClauseRecords,
    HotlineUsage,
    OnsiteTimes,
    VisitCount,
    hotline_usage,
    onsite_clock_text,
    onsite_times,
    visit_count,
)
from handover.operations.incidents import Incident

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook


def clause_sections(
    b: DocumentBuilder,
    playbook: Playbook,
    start: datetime,
    end: datetime,
    incidents: Sequence[Incident],
    incident_source: str | None,
    clauses: ClauseRecords | None,
) -> list[Inline]:
    """Write the three clause sections for [start, end); return their breaches."""
    records = clauses or ClauseRecords()
    calendar = contract_calendar(playbook)
    breaches: list[Inline] = []
    usage = hotline_usage(playbook, incidents, end, calendar)
    breaches += _hotline(b, usage, incident_source, calendar.zone)
    rows = onsite_times(playbook, records.interventions, start, end, calendar)
    breaches += _onsite(
        b, playbook, rows, records.onsite_source, onsite_clock_text(playbook, calendar)
    )
    count = visit_count(playbook, records.visits, start, end, calendar.zone)
    breaches += _visits(b, count, records, start, end, playbook)
    return breaches


def _amount(usage: HotlineUsage, value: float) -> str:
    return f"{value:.1f} h" if usage.mode == "hours" else f"{value:g} ticket(s)"


def _hotline(
    b: DocumentBuilder, usage: HotlineUsage, source: str | None, zone: tzinfo
) -> list[Inline]:
    b.h(2, "Hotline quota")
    first, end = (t.astimezone(zone).date().isoformat() for t in (usage.year_start, usage.year_end))
    year = f"{first} to {end} (end excluded; counted up to {datetime_text(usage.as_of)})"
    if source is None:
        b.fields([("Contract year", year), ("Used", "not measured: no incident source was read")])
        return []
    if usage.quota is None:
        b.fields(
            [
                ("Hotline", "unlimited"),
                ("Contract year", year),
                ("Tickets in the contract year", str(usage.tickets)),
            ]
        )
        return []
    quota = f"{usage.quota} h" if usage.mode == "hours" else f"{usage.quota} ticket(s)"
    percent = usage.percent or 0.0
    state = (
        badge("exceeded", "breach")
        if usage.exceeded
        else badge(f"{QUOTA_ALERT_PERCENT:g} % reached", "unknown")
        if percent >= QUOTA_ALERT_PERCENT
        else badge("within quota", "met")
    )
    remaining = usage.remaining or 0.0
    b.fields(
        [
            ("Quota", f"{quota} per contract year"),
            ("Contract year", year),
            ("Used", f"{_amount(usage, usage.used)} ({usage.tickets} incident(s))"),
            ("Remaining", _amount(usage, remaining)),
            ("Share used", [f"{percent:.0f}% ", state]),
        ]
    )
    how = (
        "each incident's business time from opening to resolution (to the end of the period "
        "while open)"
        if usage.mode == "hours"
        else "one ticket per incident"
    )
    b.p(f"Incidents of the journal ({source}) opened in the contract year count: {how}.", "note")
    if usage.exceeded:
        return [f"hotline quota exceeded: {_amount(usage, usage.used)} used of {quota}"]
    return []


def _onsite(
    b: DocumentBuilder,
    playbook: Playbook,
    rows: list[OnsiteTimes],
    source: str | None,
    clock: str,
) -> list[Inline]:
    b.h(2, "On-site interventions")
    onsite = playbook.services.onsite
    empty = (
        "No on-site journal was read for this report: on-site interventions are not reported."
        if source is None
        else f"No on-site intervention requested in the period ({source})."
    )
    b.table(
        ["Intervention", "Host", "Requested", "Dispatched", "On site", "Delay", "SLA"],
        [_onsite_row(row) for row in rows],
        empty,
    )
    target = f"{onsite.delay_hours:g} h" if onsite else "not set in the contract"
    b.p(
        f"Delay from the request to the technician's arrival (target {target}), counted in "
        f"{clock}; one still waiting is measured to the end of the period.",
        "note",
    )
    return [
        [code(r.intervention.id), f": on site after {hours_text(r.hours)}, beyond {target}"]
        if r.arrived
        else [code(r.intervention.id), f": no technician on site after {hours_text(r.hours)}"]
        for r in rows
        if r.late
    ]


def _onsite_row(row: OnsiteTimes) -> list[Inline]:
    i = row.intervention
    if row.target_hours is None:
        state = badge("no target: not set in the contract", "unknown")
    elif row.late:
        state = badge("breach", "breach")
    elif not row.arrived:
        state = badge("closed" if i.closed_at else "waiting", "unknown")
    else:
        state = badge("met", "met")
    delay = hours_text(row.hours)
    if not row.arrived:
        delay += " (closed, no one on site)" if i.closed_at else " (waiting)"
    return [
        code(i.id),
        code(i.host) if i.host else "—",
        datetime_text(i.requested_at),
        datetime_text(i.dispatched_at),
        datetime_text(i.arrived_at),
        delay,
        state,
    ]


def _visits(
    b: DocumentBuilder,
    count: VisitCount,
    records: ClauseRecords,
    start: datetime,
    end: datetime,
    playbook: Playbook,
) -> list[Inline]:
    b.h(2, "Maintenance visits")
    if records.visit_source is None:
        b.p(
            "No visit journal was read for this report: maintenance visits are not reported "
            f"({count.per_year} per year in the contract).",
        )
        return []
    b.fields(
        [
            ("Visits per year", str(count.per_year)),
            (
                "Contract year",
                f"{count.year_start.isoformat()} to {count.year_end.isoformat()} (end excluded)",
            ),
            ("Visits in the contract year", f"{count.in_year} ({count.due_to_date} due by now)"),
            (
                "Visits in the period",
                f"{count.in_period} (pro rata {count.expected_in_period:.1f})",
            ),
        ]
    )
    zone = contract_calendar(playbook).zone
    first = as_utc(start).astimezone(zone).date()
    last = (as_utc(end) - timedelta(microseconds=1)).astimezone(zone).date()
    b.table(
        ["Visit", "Day", "Technician", "Work"],
        [
            [code(v.id), v.on.isoformat(), v.technician, v.work]
            for v in sorted(records.visits, key=lambda v: v.on)
            if first <= v.on <= last
        ],
        f"No visit logged in the period ({records.visit_source}).",
    )
    if count.behind:
        return [
            f"maintenance visits: {count.in_year} in the contract year, "
            f"{count.due_to_date} due by now ({count.per_year} per year)"
        ]
    return []
