"""The periodic SLA report (rapport de niveau de service): the period's figures, rendered.

The figures (availability per host, incidents against their severity's
times, the verdict) come from `handover.operations.sla`; this module only
lays them out as tables and lists the breaches, so a reader finds every
miss in one place at the end. What the report covers is stated, not
implied: the period, the incident source that was read (a period without
incident says so, naming the source), the calendar the times run on, and
targets the contract does not set are "not set in the contract".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from handover.documents.blocks import Inline, Span, badge, code
from handover.documents.builder import DocumentBuilder
from handover.documents.document import Document
from handover.documents.formatting import scrub
from handover.documents.sections import header_fields
from handover.documents.sla_availability import (
    availability_section,
    service_breaches,
    with_services,
)
from handover.documents.sla_clauses import clause_sections
from handover.documents.sla_words import calendar_text, not_set
from handover.estate.health import HealthCheckResult
from handover.i18n import Texts
from handover.operations.availability import ServiceAvailability
from handover.operations.clauses import ClauseRecords
from handover.operations.incidents import Incident
from handover.operations.sla import (
    HostAvailability,
    IncidentTimes,
    SlaFigures,
    sla_figures,
)

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook


def sla_report(
    playbook: Playbook,
    period_start: date | datetime,
    period_end: date | datetime,
    checks: Sequence[HealthCheckResult],
    incidents: Sequence[Incident] = (),
    generated_at: datetime | None = None,
    incident_source: str | None = None,
    clauses: ClauseRecords | None = None,
    services: Sequence[ServiceAvailability] | None = None,
) -> Document:
    """The periodic SLA report: availability against the target, findings, incidents, breaches.

    Availability is sampled: per host, the share of `reachable` checks that
    passed during the period (a full disk or an expiring certificate is a
    finding, not downtime). A date bound covers the whole day (`period_end`
    inclusive); a datetime bound is exact (end exclusive). Checks outside the
    period are ignored; a host with no check in the period is "not measured",
    which is itself reported, never counted as available.

    `incident_source` names where the incidents were read (the incident
    journal); None means none was read, and the report says so rather than
    "no incident". Incidents are those opened in the period, timed on the
    contract's business calendar. The hotline quota, on-site interventions
    and maintenance visits follow (`sla_clauses`; `clauses` holds the on-site
    and visit journals read, None when none was).

    `services` (the period's figures from the stored health samples) replaces
    the per-host count of reachability checks (`sla_availability`).
    """
    figures = sla_figures(playbook, period_start, period_end, checks, incidents)
    if services is not None:
        figures = with_services(figures, services)
    b = DocumentBuilder(Texts.for_contract(playbook.contract))
    t = b.t
    _summary_fields(b, playbook, figures, generated_at, incident_source)
    if services is not None:
        availability_section(b, services, figures.target)
    else:
        b.h(2, t._("Availability per host"))
        b.table(
            [
                t._("Host"),
                t._("Reachability checks"),
                t._("Passed"),
                t._("Availability"),
                t._("Against target"),
            ],
            [_host_row(t, host) for host in figures.hosts],
        )
        b.p(
            t._(
                "Availability is the share of reachability checks that passed in the period; "
                "each scheduled health-check run takes one sample per host."
            ),
            "note",
        )
    b.h(2, t._("Findings (disk, certificates, other checks)"))
    b.table(
        [t._("When"), t._("Host"), t._("Check"), t._("Detail")],
        [
            [t.datetime(c.at), code(c.host), code(c.check), scrub(c.detail)]
            for c in figures.findings
        ],
        t._("No failed check in the period."),
    )
    b.h(2, t._("Incidents"))
    b.table(
        _incident_headers(t),
        [_incident_row(t, times, figures.sla_set) for times in figures.incidents],
        _no_incident(t, figures, incident_source),
    )
    b.p(
        t._(
            "Incidents opened in the period; response and resolution times are counted on "
            "{calendar}.",
            calendar=calendar_text(t, figures.calendar),
        ),
        "note",
    )
    if figures.carried_over:
        b.h(3, t._("Opened before the period, still open at its start"))
        b.table(
            _incident_headers(t),
            [_incident_row(t, times, figures.sla_set) for times in figures.carried_over],
        )
        b.p(t._("Measured in the report of the period they were opened in."), "note")
    clause_breaches = clause_sections(
        b, playbook, figures.start, figures.end, incidents, incident_source, clauses
    )
    b.h(2, t._("Breaches"))
    availability_breaches = service_breaches(t, services or (), figures.target)
    b.bullets(
        availability_breaches + _breaches(t, figures) + clause_breaches,
        empty=t._("No breach of the service levels in the period."),
    )
    first, last = _days(t, figures)
    title = t._(
        "SLA report {first} to {last}: {title}",
        first=first,
        last=last,
        title=playbook.contract.title,
    )
    return b.document("sla-report", title)


def _incident_headers(t: Texts) -> list[str]:
    return [
        t._("Incident"),
        t._("Severity"),
        t._("Summary"),
        t._("Opened"),
        t._("Response"),
        t._("Resolution"),
        "SLA",
    ]


def _verdict_badge(t: Texts, verdict: str) -> Span:
    if verdict == "no target":
        return badge(t._("no target: {why}", why=not_set(t)), "unknown")
    if verdict == "not measured":
        return badge(t._("not measured"), "unknown")
    if verdict == "met":
        return badge(t._("met"), "met")
    return badge(t._("breached"), "breach")


def _days(t: Texts, figures: SlaFigures) -> tuple[str, str]:
    """The first and last day of the period, as days of the contract's time zone."""
    last = figures.end - timedelta(microseconds=1)
    return (
        t.date(figures.start.astimezone(figures.zone).date()),
        t.date(last.astimezone(figures.zone).date()),
    )


def _no_incident(t: Texts, figures: SlaFigures, source: str | None) -> str:
    """The fact an empty incidents table states: which source was read, for which period."""
    if source is None:
        return t._("No incident source was read for this report: incidents are not reported.")
    first, last = _days(t, figures)
    return t._(
        "No incident recorded in the incident journal ({source}) between {first} and {last}.",
        source=source,
        first=first,
        last=last,
    )


def _summary_fields(
    b: DocumentBuilder,
    playbook: Playbook,
    figures: SlaFigures,
    generated_at: datetime | None,
    incident_source: str | None,
) -> None:
    overall = figures.overall
    target = figures.target
    t = b.t
    header_fields(
        b,
        playbook,
        generated_at,
        [
            (
                t._("Period"),
                t._(
                    "{start} to {end} (end excluded)",
                    start=t.datetime(figures.start),
                    end=t.datetime(figures.end),
                ),
            ),
            (
                t._("Availability target"),
                t.percent(target) if target is not None else not_set(t),
            ),
            (
                t._("Measured availability"),
                t.percent(overall, 2) if overall is not None else t._("not measured"),
            ),
            (t._("Verdict"), _verdict_badge(t, figures.verdict)),
            (t._("Checks in the period"), str(len(figures.checks))),
            (t._("Incidents read from"), incident_source or t._("no incident source")),
            (
                t._("Response and resolution times counted on"),
                calendar_text(t, figures.calendar),
            ),
        ],
    )


def _host_row(t: Texts, host: HostAvailability) -> list[Inline]:
    if host.percent is None:
        return [code(host.host), "0", "—", "—", badge(t._("not measured"), "unknown")]
    if host.target is None:
        return [
            code(host.host),
            str(host.checks),
            str(host.passed),
            t.percent(host.percent, 2),
            badge(t._("no target: {why}", why=not_set(t)), "unknown"),
        ]
    state = badge(t._("met"), "met") if host.met else badge(t._("breach"), "breach")
    return [code(host.host), str(host.checks), str(host.passed), t.percent(host.percent, 2), state]


def _versus(t: Texts, actual: float | None, target: float | None) -> str:
    """`45 min (target 30 min)`; `open` while the incident waits for it."""
    shown = t.minutes(actual) if actual is not None else t._("open")
    if target is None:
        return shown
    return t._("{actual} (target {target})", actual=shown, target=t.minutes(target))


def _late_text(t: Texts, late: Sequence[str]) -> str:
    words = {
        "response": t._("response"),
        "resolution": t._("resolution"),
        "unresolved": t._("unresolved"),
    }
    return ", ".join(words.get(what, what) for what in late)


def _incident_row(t: Texts, times: IncidentTimes, sla_set: bool) -> list[Inline]:
    incident, severity, late = times.incident, times.severity, times.late
    if not sla_set:
        state = badge(t._("no target: {why}", why=not_set(t)), "unknown")
    elif severity is None:
        state = badge(t._("unknown severity {level}", level=incident.severity), "unknown")
    elif late:
        state = badge(t._("breach: {late}", late=_late_text(t, late)), "breach")
    else:
        state = badge(t._("met"), "met")
    return [
        code(incident.id),
        incident.severity,
        incident.summary,
        t.datetime(incident.opened_at),
        _versus(t, times.response_minutes, severity.response_minutes if severity else None),
        _versus(t, times.resolution_minutes, severity.resolution_hours * 60 if severity else None),
        state,
    ]


def _breaches(t: Texts, figures: SlaFigures) -> list[Inline]:
    """Every miss of the period: hosts first (not measured or below target), then incidents."""
    breaches: list[Inline] = []
    for host in figures.hosts:
        if host.target is None:
            continue
        if host.percent is None:
            breaches.append(
                [
                    code(host.host),
                    ": " + t._("availability not measured (no reachability check in the period)"),
                ]
            )
        elif not host.met:
            breaches.append(
                [
                    code(host.host),
                    ": "
                    + t._(
                        "availability {percent}% below the {target}% target",
                        percent=t.number(host.percent, 2),
                        target=t.number(host.target),
                    ),
                ]
            )
    for times in figures.incidents:
        if times.late:
            incident = times.incident
            breaches.append(
                t._(
                    "incident {id} ({severity}): {late} beyond the SLA",
                    id=incident.id,
                    severity=incident.severity,
                    late=_late_text(t, times.late),
                )
            )
    return breaches
