"""The SLA report's availability per service, measured from the stored health samples.

When the report is given the period's service figures
(`handover.operations.availability`), they replace the per-host count of
reachability checks: the summary's figure is the weakest service's, the
verdict is "not measured" as soon as one service is, and each service shows
its samples against those expected, its longest gap and its planned
downtime, so the reader sees how much the percentage rests on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from handover.documents.blocks import Inline, badge, code
from handover.documents.builder import DocumentBuilder
from handover.i18n import Texts
from handover.i18n.recorded import unmeasured_reason_text
from handover.operations.availability import MIN_COVERAGE, ServiceAvailability
from handover.operations.sla import SlaFigures

__all__ = ["availability_section", "service_breaches", "with_services"]


def with_services(figures: SlaFigures, services: Sequence[ServiceAvailability]) -> SlaFigures:
    """The figures with the services' overall (the weakest, None if one is not measured)."""
    percents = [s.percent for s in services]
    overall = None
    if services and all(p is not None for p in percents):
        overall = min(p for p in percents if p is not None)
    return dataclasses.replace(figures, overall=overall, hosts=())


def availability_section(
    b: DocumentBuilder, services: Sequence[ServiceAvailability], target: float | None
) -> None:
    t = b.t
    b.h(2, t._("Availability per service"))
    b.table(
        [
            t._("Service"),
            t._("Checks"),
            t._("Samples (expected)"),
            t._("Longest gap"),
            t._("Planned downtime"),
            t._("Availability"),
            t._("Against target"),
        ],
        [_row(t, s, target) for s in services],
        t._("No health check is defined: availability is not measured."),
    )
    b.p(
        t._(
            "Measured from the health samples stored during the period (the health flow "
            "takes them every 5 minutes unless a check sets its own interval). Samples taken "
            "in the maintenance window are planned downtime and not counted. A service is not "
            "measured when it has under {coverage} of the expected samples or went more than "
            "one hour without one; a service with several checks has its weakest check's "
            "figure.",
            coverage=f"{MIN_COVERAGE:.0%}",
        ),
        "note",
    )


def _row(t: Texts, service: ServiceAvailability, target: float | None) -> list[Inline]:
    seconds = service.longest_gap.total_seconds()
    planned = service.planned_downtime.total_seconds()
    head: list[Inline] = [
        code(service.service),
        ", ".join(service.checks),
        f"{service.samples} ({service.expected})",
        t.minutes(seconds / 60),
        t.minutes(planned / 60) if planned else t._("none"),
    ]
    if service.percent is None:
        return [
            *head,
            "—",
            badge(
                t._("not measured: {reason}", reason=unmeasured_reason_text(t, service.reason)),
                "unknown",
            ),
        ]
    if target is None:
        return [
            *head,
            t.percent(service.percent, 2),
            badge(t._("no target: {why}", why=t._("not set in the contract")), "unknown"),
        ]
    state = (
        badge(t._("met"), "met") if service.percent >= target else badge(t._("breach"), "breach")
    )
    return [*head, t.percent(service.percent, 2), state]


def service_breaches(
    t: Texts, services: Sequence[ServiceAvailability], target: float | None
) -> list[Inline]:
    """Services not measured or below the target (nothing when the contract sets no target)."""
    if target is None:
        return []
    out: list[Inline] = []
    for s in services:
        if s.percent is None:
            out.append(
                [
                    code(s.service),
                    ": "
                    + t._(
                        "availability not measured ({reason})",
                        reason=unmeasured_reason_text(t, s.reason),
                    ),
                ]
            )
        elif s.percent < target:
            out.append(
                [
                    code(s.service),
                    ": "
                    + t._(
                        "availability {percent}% below {target}%",
                        percent=t.number(s.percent, 2),
                        target=t.number(target),
                    ),
                ]
            )
    return out
