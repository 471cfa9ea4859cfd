"""The periodic SLA report (rapport de niveau de service): the period's figures, rendered.

The figures (availability per host, incidents against their severity's
times, the verdict) come from `handover.operations.sla`; this module only
lays them out as tables and lists the breaches, so a reader finds every
miss in one place at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from handover.documents.blocks import Inline, Span, badge, code
from handover.documents.builder import DocumentBuilder
from handover.documents.document import Document
from handover.documents.formatting import date_text, datetime_text, minutes_text, scrub
from handover.documents.sections import header_fields
from handover.estate.health import HealthCheckResult
from handover.operations.incidents import Incident
from handover.operations.sla import HostAvailability, IncidentTimes, SlaFigures, sla_figures

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook


def sla_report(
    playbook: Playbook,
    period_start: date | datetime,
    period_end: date | datetime,
    checks: Sequence[HealthCheckResult],
    incidents: Sequence[Incident] = (),
    generated_at: datetime | None = None,
) -> Document:
    """The periodic SLA report: availability against the target, findings, incidents, breaches.

    Availability is sampled: per host, the share of `reachable` checks that
    passed during the period (a full disk or an expiring certificate is a
    finding, not downtime). A date bound covers the whole day (`period_end`
    inclusive); a datetime bound is exact (end exclusive). Checks outside the
    period are ignored; a host with no check in the period is "not measured",
    which is itself reported, never counted as available.
    """
    figures = sla_figures(playbook, period_start, period_end, checks, incidents)
    b = DocumentBuilder()
    _summary_fields(b, playbook, figures, generated_at)
    b.h(2, "Availability per host")
    b.table(
        ["Host", "Reachability checks", "Passed", "Availability", "Against target"],
        [_host_row(host) for host in figures.hosts],
    )
    b.p(
        "Availability is the share of reachability checks that passed in the period; each "
        "scheduled health-check run takes one sample per host.",
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
        [_incident_row(times) for times in figures.incidents],
        "No incident in the period.",
    )
    b.h(2, "Breaches")
    b.bullets(_breaches(figures), empty="No breach of the service levels in the period.")
    title = (
        f"SLA report (rapport de niveau de service) {date_text(figures.start)} to "
        f"{date_text(figures.end - timedelta(microseconds=1))}: {playbook.contract.title}"
    )
    return b.document("sla-report", title)


_VERDICT_BADGES: dict[str, Span] = {
    "not measured": badge("not measured", "unknown"),
    "met": badge("met", "met"),
    "breached": badge("breached", "breach"),
}


def _summary_fields(
    b: DocumentBuilder, playbook: Playbook, figures: SlaFigures, generated_at: datetime | None
) -> None:
    overall = figures.overall
    header_fields(
        b,
        playbook,
        generated_at,
        [
            (
                "Period",
                f"{datetime_text(figures.start)} to {datetime_text(figures.end)} (end excluded)",
            ),
            ("Availability target", f"{figures.target:g}%"),
            ("Measured availability", f"{overall:.2f}%" if overall is not None else "not measured"),
            ("Verdict", _VERDICT_BADGES[figures.verdict]),
            ("Checks in the period", str(len(figures.checks))),
        ],
    )


def _host_row(host: HostAvailability) -> list[Inline]:
    if host.percent is None:
        return [code(host.host), "0", "—", "—", badge("not measured", "unknown")]
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


def _incident_row(times: IncidentTimes) -> list[Inline]:
    incident, severity, late = times.incident, times.severity, times.late
    if severity is None:
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
                    f": availability {host.percent:.2f}% below the {figures.target:g}% target",
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
