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
from handover.documents.sla_words import calendar_text
from handover.i18n import Texts
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


def _amount(t: Texts, usage: HotlineUsage, value: float) -> str:
    if usage.mode == "hours":
        return t._("{hours} h", hours=t.number(value, 1))
    return t._("{count} ticket(s)", count=t.number(value))


def _hotline(
    b: DocumentBuilder, usage: HotlineUsage, source: str | None, zone: tzinfo
) -> list[Inline]:
    t = b.t
    b.h(2, t._("Hotline quota"))
    first, end = (t.date(m.astimezone(zone).date()) for m in (usage.year_start, usage.year_end))
    year = t._(
        "{first} to {end} (end excluded; counted up to {as_of})",
        first=first,
        end=end,
        as_of=t.datetime(usage.as_of),
    )
    if source is None:
        b.fields(
            [
                (t._("Contract year"), year),
                (t._("Used"), t._("not measured: no incident source was read")),
            ]
        )
        return []
    if usage.quota is None:
        b.fields(
            [
                (t._("Hotline"), t._("unlimited")),
                (t._("Contract year"), year),
                (t._("Tickets in the contract year"), str(usage.tickets)),
            ]
        )
        return []
    quota = _amount(t, usage, usage.quota)
    percent = usage.percent or 0.0
    state = (
        badge(t._("exceeded"), "breach")
        if usage.exceeded
        else badge(t._("{percent} % reached", percent=t.number(QUOTA_ALERT_PERCENT)), "unknown")
        if percent >= QUOTA_ALERT_PERCENT
        else badge(t._("within quota"), "met")
    )
    remaining = usage.remaining or 0.0
    b.fields(
        [
            (t._("Quota"), t._("{quota} per contract year", quota=quota)),
            (t._("Contract year"), year),
            (
                t._("Used"),
                t._(
                    "{amount} ({count} incident(s))",
                    amount=_amount(t, usage, usage.used),
                    count=usage.tickets,
                ),
            ),
            (t._("Remaining"), _amount(t, usage, remaining)),
            (t._("Share used"), [t.percent(percent, 0) + " ", state]),
        ]
    )
    how = (
        t._(
            "each incident's business time from opening to resolution (to the end of the "
            "period while open)"
        )
        if usage.mode == "hours"
        else t._("one ticket per incident")
    )
    b.p(
        t._(
            "Incidents of the journal ({source}) opened in the contract year count: {how}.",
            source=source,
            how=how,
        ),
        "note",
    )
    if usage.exceeded:
        return [
            t._(
                "hotline quota exceeded: {used} used of {quota}",
                used=_amount(t, usage, usage.used),
                quota=quota,
            )
        ]
    return []


def _onsite(
    b: DocumentBuilder,
    playbook: Playbook,
    rows: list[OnsiteTimes],
    source: str | None,
    clock: str,
) -> list[Inline]:
    t = b.t
    b.h(2, t._("On-site interventions"))
    onsite = playbook.services.onsite
    empty = (
        t._("No on-site journal was read for this report: on-site interventions are not reported.")
        if source is None
        else t._("No on-site intervention requested in the period ({source}).", source=source)
    )
    b.table(
        [
            t._("Intervention"),
            t._("Host"),
            t._("Requested"),
            t._("Dispatched"),
            t._("On site"),
            t._("Delay"),
            "SLA",
        ],
        [_onsite_row(t, row) for row in rows],
        empty,
    )
    target = (
        t._("{hours} h", hours=t.number(onsite.delay_hours))
        if onsite
        else t._("not set in the contract")
    )
    b.p(
        t._(
            "Delay from the request to the technician's arrival (target {target}), counted "
            "in {clock}; one still waiting is measured to the end of the period.",
            target=target,
            clock=calendar_text(t, clock),
        ),
        "note",
    )
    return [
        [
            code(r.intervention.id),
            ": "
            + t._("on site after {delay}, beyond {target}", delay=t.hours(r.hours), target=target),
        ]
        if r.arrived
        else [
            code(r.intervention.id),
            ": " + t._("no technician on site after {delay}", delay=t.hours(r.hours)),
        ]
        for r in rows
        if r.late
    ]


def _onsite_row(t: Texts, row: OnsiteTimes) -> list[Inline]:
    i = row.intervention
    if row.target_hours is None:
        state = badge(t._("no target: {why}", why=t._("not set in the contract")), "unknown")
    elif row.late:
        state = badge(t._("breach"), "breach")
    elif not row.arrived:
        state = badge(t._("closed") if i.closed_at else t._("waiting"), "unknown")
    else:
        state = badge(t._("met"), "met")
    delay = t.hours(row.hours)
    if not row.arrived:
        delay += " " + (t._("(closed, no one on site)") if i.closed_at else t._("(waiting)"))
    return [
        code(i.id),
        code(i.host) if i.host else "—",
        t.datetime(i.requested_at),
        t.datetime(i.dispatched_at),
        t.datetime(i.arrived_at),
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
    t = b.t
    b.h(2, t._("Maintenance visits"))
    if records.visit_source is None:
        b.p(
            t._(
                "No visit journal was read for this report: maintenance visits are not "
                "reported ({count} per year in the contract).",
                count=count.per_year,
            ),
        )
        return []
    b.fields(
        [
            (t._("Visits per year"), str(count.per_year)),
            (
                t._("Contract year"),
                t._(
                    "{first} to {end} (end excluded)",
                    first=t.date(count.year_start),
                    end=t.date(count.year_end),
                ),
            ),
            (
                t._("Visits in the contract year"),
                t._("{count} ({due} due by now)", count=count.in_year, due=count.due_to_date),
            ),
            (
                t._("Visits in the period"),
                t._(
                    "{count} (pro rata {expected})",
                    count=count.in_period,
                    expected=t.number(count.expected_in_period, 1),
                ),
            ),
        ]
    )
    zone = contract_calendar(playbook).zone
    first = as_utc(start).astimezone(zone).date()
    last = (as_utc(end) - timedelta(microseconds=1)).astimezone(zone).date()
    b.table(
        [t._("Visit"), t._("Day"), t._("Technician"), t._("Work")],
        [
            [code(v.id), t.date(v.on), v.technician, v.work]
            for v in sorted(records.visits, key=lambda v: v.on)
            if first <= v.on <= last
        ],
        t._("No visit logged in the period ({source}).", source=records.visit_source),
    )
    if count.behind:
        return [
            t._(
                "maintenance visits: {count} in the contract year, {due} due by now "
                "({per_year} per year)",
                count=count.in_year,
                due=count.due_to_date,
                per_year=count.per_year,
            )
        ]
    return []
