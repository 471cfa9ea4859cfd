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
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from handover.documents.blocks import Inline, Span, badge, code
from handover.documents.builder import DocumentBuilder
from handover.documents.document import Document
from handover.documents.formatting import datetime_text, minutes_text, scrub
from handover.documents.sections import header_fields
from handover.documents.sla_availability import (
    availability_section,
    service_breaches,
    with_services,
)
from handover.documents.sla_clauses import clause_sections
from handover.estate.health import HealthCheckResult
from handover.operations.availability import ServiceAvailability
from handover.operations.clauses import ClauseRecords
from handover.operations.incidents import Incident
from handover.operations.sla import (
    NOT_SET,
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
    b = DocumentBuilder()
    _summary_fields(b, playbook, figures, generated_at, incident_source)
    if services is not None:
        availability_section(b, services, figures.target)
    else:
        b.h(2, "Availability per host")
        b.table(
            ["Host", "Reachability checks", "Passed", "Availability", "Against target"],
            [_host_row(host) for host in figures.hosts],
        )
        b.p(
            "Availability is the share of reachability checks that passed in the period; "
            "each scheduled health-check run takes one sample per host.",
            "note",
        )
    b.h(2, "Findings (disk, certificates, other checks)")
    b.table(
        ["When", "Host", "Check", "Detail"],
        [
            [datetime_text(c.at), code(c.host), code(c.check), scrub(c.detail)]
            for c in figures.findings
        ],
        "No failed check in the period.",
    )
    b.h(2, "Incidents")
    b.table(
        ["Incident", "Severity", "Summary", "Opened", "Response", "Resolution", "SLA"],
        [_incident_row(times, figures.sla_set) for times in figures.incidents],
        _no_incident(figures, incident_source),
    )
    b.p(
        f"Incidents opened in the period; response and resolution times are counted on "
        f"{figures.calendar}.",
        "note",
    )
    if figures.carried_over:
        b.h(3, "Opened before the period, still open at its start")
        b.table(
            ["Incident", "Severity", "Summary", "Opened", "Response", "Resolution", "SLA"],
            [_incident_row(times, figures.sla_set) for times in figures.carried_over],
        )
        b.p("Measured in the report of the period they were opened in.", "note")
    clause_breaches = clause_sections(
        b, playbook, figures.start, figures.end, incidents, incident_source, clauses
    )
    b.h(2, "Breaches")
    availability_breaches = service_breaches(services or (), figures.target)
    b.bullets(
        availability_breaches + _breaches(figures) + clause_breaches,
        empty="No breach of the service levels in the period.",
    )
    first, last = _days(figures)
    title = (
        f"SLA report (rapport de niveau de service) {first} to {last}: {playbook.contract.title}"
    )
    return b.document("sla-report", title)


_VERDICT_BADGES: dict[str, Span] = {
    "no target": badge(f"no target: {NOT_SET}", "unknown"),
    "not measured": badge("not measured", "unknown"),
    "met": badge("met", "met"),
    "breached": badge("breached", "breach"),
}


def _days(figures: SlaFigures) -> tuple[str, str]:
    """The first and last day of the period, as days of the contract's time zone."""
    last = figures.end - timedelta(microseconds=1)
    return (
        figures.start.astimezone(figures.zone).date().isoformat(),
        last.astimezone(figures.zone).date().isoformat(),
    )


def _local(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _no_incident(figures: SlaFigures, source: str | None) -> str:
    """The fact an empty incidents table states: which source was read, for which period."""
    if source is None:
        return "No incident source was read for this report: incidents are not reported."
    first, last = _days(figures)
    return f"No incident recorded in the incident journal ({source}) between {first} and {last}."


def _summary_fields(
    b: DocumentBuilder,
    playbook: Playbook,
    figures: SlaFigures,
    generated_at: datetime | None,
    incident_source: str | None,
) -> None:
    overall = figures.overall
    target = figures.target
    header_fields(
        b,
        playbook,
        generated_at,
        [
            (
                "Period",
                f"{_local(figures.start, figures.zone)} to {_local(figures.end, figures.zone)} "
                f"{figures.zone} (end excluded; {datetime_text(figures.start)} to "
                f"{datetime_text(figures.end)})",
            ),
            ("Availability target", f"{target:g}%" if target is not None else NOT_SET),
            ("Measured availability", f"{overall:.2f}%" if overall is not None else "not measured"),
            ("Verdict", _VERDICT_BADGES[figures.verdict]),
            ("Checks in the period", str(len(figures.checks))),
            ("Incidents read from", incident_source or "no incident source"),
            ("Response and resolution times counted on", figures.calendar),
        ],
    )


def _host_row(host: HostAvailability) -> list[Inline]:
    if host.percent is None:
        return [code(host.host), "0", "—", "—", badge("not measured", "unknown")]
    if host.target is None:
        return [
            code(host.host),
            str(host.checks),
            str(host.passed),
            f"{host.percent:.2f}%",
            badge(f"no target: {NOT_SET}", "unknown"),
        ]
    state = "met" if host.met else "breach"
    return [
        code(host.host),
        str(host.checks),
        str(host.passed),
        f"{host.percent:.2f}%",
        badge(state, state),
    ]


def _versus(actual: float | None, target: float | None) -> str:
    """`45 min (target 30 min)`; `open` while the incident waits for it."""
    shown = minutes_text(actual) if actual is not None else "open"
    return f"{shown} (target {minutes_text(target)})" if target is not None else shown


def _incident_row(times: IncidentTimes, sla_set: bool) -> list[Inline]:
    incident, severity, late = times.incident, times.severity, times.late
    if not sla_set:
        state = badge(f"no target: {NOT_SET}", "unknown")
    elif severity is None:
        state = badge(f"unknown severity {incident.severity}", "unknown")
    elif late:
        state = badge("breach: " + ", ".join(late), "breach")
    else:
        state = badge("met", "met")
    return [
        code(incident.id),
        incident.severity,
        incident.summary,
        datetime_text(incident.opened_at),
        _versus(times.response_minutes, severity.response_minutes if severity else None),
        _versus(times.resolution_minutes, severity.resolution_hours * 60 if severity else None),
        state,
    ]


def _breaches(figures: SlaFigures) -> list[Inline]:
    """Every miss of the period: hosts first (not measured or below target), then incidents."""
    breaches: list[Inline] = []
    for host in figures.hosts:
        if host.target is None:
            continue
        if host.percent is None:
            breaches.append(
                [
                    code(host.host),
                    ": availability not measured (no reachability check in the period)",
                ]
            )
        elif not host.met:
            breaches.append(
                [
                    code(host.host),
                    f": availability {host.percent:.2f}% below the {host.target:g}% target",
                ]
            )
    for times in figures.incidents:
        if times.late:
            incident = times.incident
            breaches.append(
                [
                    f"incident {incident.id} ({incident.severity}): ",
                    ", ".join(times.late),
                    " beyond the SLA",
                ]
            )
    return breaches
